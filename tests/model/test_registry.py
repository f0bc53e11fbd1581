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
