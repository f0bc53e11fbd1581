"""The KFP pipeline: compiled YAML against the golden file, and the whole pipeline run locally
through kfp.local.SubprocessRunner on a tiny real ml-100k sample with the real Gemma model."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lr_recsys.cli import main
from pipelines.runner import compile_pipeline, run_local
from tests.conftest import real_data_dir

GOLDEN = Path(__file__).parent / "golden" / "lr_recsys_pipeline.yaml"


def test_compiled_pipeline_matches_golden_file(tmp_path):
    out = compile_pipeline(tmp_path / "p.yaml")
    # regenerate with: lr-recsys pipeline compile --out tests/integration/golden/lr_recsys_pipeline.yaml
    assert out.read_text() == GOLDEN.read_text()


def test_whole_pipeline_runs_locally_and_promotes(tmp_path, redis_url):
    """The production online-store profile (a real Redis on loopback); the serving tests run the
    same pipeline on the embedded SQLite profile."""
    from mlflow import MlflowClient

    tracking = f"sqlite:///{tmp_path}/mlflow.db"
    params = {
        "data_dir": str(real_data_dir()), "max_users": 2, "max_per_user": 3,
        "cache_path": str(tmp_path / "cache.sqlite"), "seeds": "0", "epochs": 2, "ae_epochs": 2,
        "tracking_uri": tracking, "feature_repo_dir": str(tmp_path / "repo"),
        "online_store": "redis", "redis_connection": redis_url,
    }  # fmt: skip
    run_dir = run_local(params, tmp_path / "root")
    tasks = {p.name for p in run_dir.iterdir() if p.is_dir()}
    assert {
        "ingest-op",
        "explain-op",
        "encode-op",
        "features-op",
        "train-op",
        "evaluate-op",
        "promote-op",
    } <= tasks
    assert (run_dir / "ingest-op" / "prepared" / "examples.parquet").exists()
    assert (run_dir / "explain-op" / "explanations").exists()
    assert (run_dir / "train-op" / "model" / "weights.safetensors").exists()
    # the model was trained on Feast's features next to its baselines, and evaluated
    results = pd.read_csv(run_dir / "evaluate-op" / "evaluation" / "results.csv")
    assert list(results["model"]) == ["lr-recsys", "lr-recsys-noexp", "mf", "bias"]
    # each model's relative difference to the bias floor; the floor's own is zero
    assert results.loc[results["model"] == "bias", "rmse_vs_bias_pct"].item() == 0.0
    assert "% vs bias)" in (run_dir / "evaluate-op" / "report").read_text()
    assert results["rmse_mean"].between(0, 1).all()
    assert "<td>lr-recsys</td>" in (run_dir / "evaluate-op" / "report").read_text()
    assert (run_dir / "train-op" / "model" / "autoencoder" / "standardise.json").exists()
    champion = MlflowClient(tracking).get_model_version_by_alias("lr-recsys", "champion")
    assert str(champion.version) == "1"
    assert champion.tags["feature_service"] == "lr_recsys_v1"  # its versioned Feast service
    logged = {a.path for a in MlflowClient(tracking).list_artifacts(champion.run_id)}
    assert {"results.csv", "report.html", "evaluation.csv", "model", "autoencoder"} <= logged
    # the features step materialized the pairs to the online store (8-d AE embeddings + texts)
    from lr_recsys import schema
    from lr_recsys.data import Prepared
    from lr_recsys.feature_store import StoreConfig, online, open_store

    redis_store = StoreConfig(
        repo_dir=tmp_path / "repo", online="redis", redis_connection=redis_url
    )
    assert not (tmp_path / "repo" / "online.db").exists()  # nothing went to SQLite
    last = Prepared.load(run_dir / "ingest-op" / "prepared").examples.iloc[-1]
    keys = {schema.USER_ID: last[schema.USER_ID], schema.ITEM_ID: last[schema.ITEM_ID]}
    services = {fs.name for fs in open_store(redis_store).list_feature_services()}
    assert services == {"lr_recsys_v1"}
    row = online(open_store(redis_store), [keys]).iloc[0]
    assert len(row[schema.POS_EMB]) == 8 and len(row[schema.NEG_EMB]) == 8
    assert row[schema.POSITIVE].startswith("The consumer watched this movie because")
    assert row[schema.HISTORY_IDS][-1] == last[schema.ITEM_ID]  # the latest history ends with it
    # serving candidates (top-3 popular unrated items per user) have precomputed explanations too
    serving = pd.read_parquet(run_dir / "explain-op" / "explanations" / "serving_pairs.parquet")
    assert len(serving) == 3 * 2 and not set(serving[schema.ITEM_ID]) & set(
        rated_by(run_dir, serving)
    )
    cand = serving.iloc[0]
    keys = {schema.USER_ID: cand[schema.USER_ID], schema.ITEM_ID: cand[schema.ITEM_ID]}
    cand_row = online(open_store(redis_store), [keys]).iloc[0]
    assert cand_row[schema.NEGATIVE].startswith("The consumer did not watch this movie because")


def rated_by(run_dir, serving):
    from lr_recsys import schema
    from lr_recsys.data import Prepared

    ex = Prepared.load(run_dir / "ingest-op" / "prepared").examples
    user = serving.iloc[0][schema.USER_ID]
    return set(ex.loc[ex[schema.USER_ID] == user, schema.ITEM_ID]) & set(
        serving.loc[serving[schema.USER_ID] == user, schema.ITEM_ID]
    )


def test_pipeline_cli_compiles(tmp_path, capsys):
    assert main(["pipeline", "compile", "--out", str(tmp_path / "x.yaml")]) == 0
    assert (tmp_path / "x.yaml").read_text() == GOLDEN.read_text()
    assert main(["pipeline", "run"]) == 2  # --local is required
