"""Registry and promotion with a real embedded MLflow (SQLite): both outcomes and the guards."""

from __future__ import annotations

import pytest

from lr_recsys import schema
from lr_recsys.config import ModelConfig, TrainConfig
from lr_recsys.registry import CHAMPION, PromotionRefused, RegistryConfig, promote, register_model
from lr_recsys.train.experiment import run_model

TRAIN = TrainConfig(epochs=6, progress=False)


@pytest.fixture(scope="module")
def trained(planted):
    """The planted-signal LR-Recsys (good) and its no-explanation twin (worse), classification."""
    data, _ = planted
    good = run_model("lr-recsys", schema.CLASSIFICATION, data, ModelConfig(), TRAIN)
    bad = run_model("lr-recsys-noexp", schema.CLASSIFICATION, data, ModelConfig(), TRAIN)
    keys = data.prepared.split(schema.SPLIT_TEST)[schema.PAIR_KEY].tolist()
    assert good.test["auc"] > bad.test["auc"]
    return good, bad, keys


def _register(cfg, run, keys, gates=True):
    return register_model(
        cfg, run.model, run.model_name, run.task, {"auc": [run.test["auc"]]}, keys, gates,
        params={"epochs": TRAIN.epochs},
    )  # fmt: skip


def test_promotion_accepts_better_and_refuses_worse(tmp_path, trained):
    good, bad, keys = trained
    cfg = RegistryConfig(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    v1 = _register(cfg, bad, keys)
    first = promote(cfg)
    assert first.promoted and first.reason == "no champion yet" and first.challenger_version == v1
    v2 = _register(cfg, good, keys)
    second = promote(cfg, margin=0.01)
    assert second.promoted and second.champion_version == v1 and second.challenger_version == v2
    assert second.challenger_value > second.champion_value * 1.01
    _register(cfg, bad, keys)
    with pytest.raises(
        PromotionRefused, match=r"refused: auc: challenger v3 0\.\d{4} vs champion v2"
    ):
        promote(cfg)
    from mlflow import MlflowClient

    champion = MlflowClient(cfg.tracking_uri).get_model_version_by_alias(cfg.model_name, CHAMPION)
    assert str(champion.version) == v2  # the refused challenger did not move the alias


def test_promotion_refuses_failed_gates_and_other_splits(tmp_path, trained):
    good, bad, keys = trained
    cfg = RegistryConfig(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    _register(cfg, bad, keys)
    promote(cfg)
    _register(cfg, good, keys, gates=False)
    with pytest.raises(PromotionRefused, match="did not pass the validation gates"):
        promote(cfg)
    _register(cfg, good, keys[:-1])
    with pytest.raises(PromotionRefused, match="different test splits"):
        promote(cfg)
    with pytest.raises(PromotionRefused, match="no 'challenger' version"):
        promote(RegistryConfig(tracking_uri=f"sqlite:///{tmp_path}/empty.db"))


def test_promote_command_reports_both_outcomes(tmp_path, trained, capsys):
    from lr_recsys.cli import main

    good, bad, keys = trained
    cfg = RegistryConfig(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    _register(cfg, good, keys)
    assert main(["promote", "--tracking-uri", cfg.tracking_uri]) == 0
    assert "promoted v1 to champion" in capsys.readouterr().out
    _register(cfg, bad, keys)
    assert main(["promote", "--tracking-uri", cfg.tracking_uri, "--margin", "0.05"]) == 1
    assert "not promoted: refused: auc: challenger v2" in capsys.readouterr().out


def _train_dir(path, run, data, lr: float, variant: str):
    """A train step's artifact around a real run: its summary (curves, hyperparameters,
    fingerprint), AutoEncoder config and the explain/distill steps' lineage files."""
    import json
    from dataclasses import asdict

    from lr_recsys.config import AEConfig
    from lr_recsys.explain.config import LLMConfig
    from lr_recsys.lineage import dataset_fingerprint, llm_lineage

    (path / "autoencoder").mkdir(parents=True)
    (path / "distiller").mkdir()
    summary = {
        "model": run.model_name, "task": run.task, "seeds": [0], "per_seed": {"auc": [run.test["auc"]]},
        "configs": {run.model_name: {"model": asdict(ModelConfig()), "train": {**asdict(TRAIN), "lr": lr}}},
        "history": run.train.history, "dataset": dataset_fingerprint(data.prepared.examples),
    }  # fmt: skip
    (path / "summary.json").write_text(json.dumps(summary))
    (path / "autoencoder" / "config.json").write_text(json.dumps(asdict(AEConfig())))
    budget = {"llm_pairs": 10, "policy": "even", "seed": 0, "explained": 10, "all_pairs": 99}
    lineage = llm_lineage(LLMConfig(), variant) | {"budget": budget}
    (path / "distiller" / "lineage.json").write_text(json.dumps(lineage))
    (path / "distiller" / "quality.json").write_text(
        json.dumps({"positive": {"distinct_ratio": 0.9}})
    )
    (path / "distiller" / "distill.json").write_text(
        json.dumps({"fidelity_pos_r2": 0.3, "llm_pairs": 10})
    )
    return path


def test_registered_run_carries_lineage_and_promote_prints_the_diff(
    tmp_path, trained, planted, capsys
):
    from mlflow import MlflowClient

    from lr_recsys.cli import main
    from lr_recsys.lineage import model_lineage

    good, bad, keys = trained
    data, _ = planted
    cfg = RegistryConfig(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    for run, lr, variant in ((bad, 0.01, "attributes"), (good, 0.005, "no_profile")):
        lineage = model_lineage(_train_dir(tmp_path / run.model_name, run, data, lr, variant))
        register_model(cfg, run.model, run.model_name, run.task, {"auc": [run.test["auc"]]}, keys,
                       True, lineage=lineage)  # fmt: skip
        if run is bad:
            promote(cfg)
    client = MlflowClient(cfg.tracking_uri)
    version = client.get_model_version(cfg.model_name, "2")
    logged = client.get_run(version.run_id).data
    p = logged.params
    assert p["train.lr"] == "0.005" and p["model.embed_dim"] == "8" and p["ae.maxlen"] == "50"
    assert p["llm.backend"] == "llamacpp" and p["llm.variant"] == "no_profile"
    assert len(p["llm.model_sha256"]) == 64 and len(p["llm.template_version"]) == 12
    assert p["llm.temperature"] == "0.0" and p["llm.max_tokens"] == "32"
    assert p["budget.explained"] == "10" and len(p["data.interactions_hash"]) == 16
    assert len(p["code.git_commit"]) == 40 and p["code.package"]
    assert logged.metrics["quality_positive_distinct_ratio"] == 0.9
    assert logged.metrics["fidelity_pos_r2"] == 0.3
    curve = client.get_metric_history(version.run_id, "curve_val_auc")
    assert [m.step for m in sorted(curve, key=lambda m: m.step)] == list(
        range(len(good.train.history))
    )
    assert logged.tags["data.split_hash"] == p["data.split_hash"]
    assert version.description.startswith("lr-recsys (classification): AUC ")
    assert "explained 10 of 99 pairs" in version.description
    assert main(["promote", "--tracking-uri", cfg.tracking_uri]) == 0
    out = capsys.readouterr().out
    assert "challenger v2 vs champion v1" in out
    assert "train.lr: 0.01 -> 0.005" in out and "llm.variant: attributes -> no_profile" in out
    assert "test_auc_mean:" in out and "data.interactions_hash" not in out  # same data
