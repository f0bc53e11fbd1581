"""The KFP pipeline: compiled YAML against the golden file, and the whole pipeline run locally
through kfp.local.SubprocessRunner on a tiny real ml-100k sample with the real Gemma model."""

from __future__ import annotations

import base64
import json
import re
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


def test_compiled_refresh_pipeline_matches_golden_file(tmp_path):
    out = compile_pipeline(tmp_path / "r.yaml", "refresh")
    # regenerate with: lr-recsys pipeline compile --pipeline refresh --out tests/integration/golden/refresh_pipeline.yaml
    assert out.read_text() == (GOLDEN.parent / "refresh_pipeline.yaml").read_text()


def test_whole_pipeline_runs_locally_and_promotes(tmp_path, redis_url):
    """The production online-store profile (a real Redis on loopback); the serving tests run the
    same pipeline on the embedded SQLite profile."""
    from mlflow import MlflowClient

    tracking = f"sqlite:///{tmp_path}/mlflow.db"
    params = {
        "data_dir": str(real_data_dir()), "max_users": 3, "max_per_user": 6, "llm_pairs": 10,
        "cache_path": str(tmp_path / "cache.sqlite"), "seeds": "0", "epochs": 2, "ae_epochs": 2,
        "tracking_uri": tracking, "feature_repo_dir": str(tmp_path / "repo"),
        "online_store": "redis", "redis_connection": redis_url, "serving_k": 3,
        "explain_queue": str(tmp_path / "queue.sqlite"),
    }  # fmt: skip
    run_dir = run_local(params, tmp_path / "root")
    tasks = {p.name for p in run_dir.iterdir() if p.is_dir()}
    assert {
        "ingest-op",
        "explain-op",
        "encode-op",
        "distill-op",
        "features-op",
        "train-op",
        "evaluate-op",
        "served-op",
        "promote-op",
    } <= tasks
    # the served-text step: every user's top 3 under the new model carries LLM text
    served = json.loads((run_dir / "served-op" / "executor_output.json").read_text())
    served = served["artifacts"]["metrics"]["artifacts"][0]["metadata"]
    assert served["serving_users"] == 3 and served["served_text_coverage"] == 1.0
    assert (run_dir / "ingest-op" / "prepared" / "examples.parquet").exists()
    assert (run_dir / "explain-op" / "explanations").exists()
    assert (run_dir / "train-op" / "model" / "weights.safetensors").exists()
    # the model was trained on Feast's features next to its baselines, and evaluated
    results = pd.read_csv(run_dir / "evaluate-op" / "evaluation" / "results.csv")
    assert list(results["model"]) == [
        "lr-recsys", "lr-recsys-noexp", "lr-recsys-content", "mf", "bias"
    ]  # fmt: skip
    # each model's relative difference to the bias floor; the floor's own is zero
    assert results.loc[results["model"] == "bias", "rmse_vs_bias_pct"].item() == 0.0
    assert results["rmse_mean"].between(0, 1).all()
    # the KFP HTML output: the self-contained report (table with paired tests, attention
    # analysis with embedded PNG figures, per-item insights of the LLM-explained pairs)
    page = (run_dir / "evaluate-op" / "report").read_text()
    assert "<td>lr-recsys</td>" in page and "Δ vs bias" in page
    assert 'id="attention-analysis"' in page and 'id="per-item-insights"' in page
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', page)
    assert images and all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    report = json.loads((run_dir / "evaluate-op" / "evaluation" / "report.json").read_text())
    assert abs(report["attention"]["regression"]["sum_max_error"]) < 1e-5
    assert report["insights"]["explained_pairs"] == 10
    assert (run_dir / "train-op" / "model" / "autoencoder" / "standardise.json").exists()
    champion = MlflowClient(tracking).get_model_version_by_alias("lr-recsys", "champion")
    assert str(champion.version) == "1"
    assert champion.tags["feature_service"] == "lr_recsys_v1"  # its versioned Feast service
    logged = {a.path for a in MlflowClient(tracking).list_artifacts(champion.run_id)}
    assert {"results.csv", "report.html", "evaluation.csv", "model", "autoencoder"} <= logged
    assert {"lineage.json", "promotion_diff.txt", "report.json"} <= logged
    # lineage: hyperparameters, data fingerprint, the LLM and its prompts, budget, quality,
    # fidelity, curves and the code version on the registered run; headline in the description
    run = MlflowClient(tracking).get_run(champion.run_id).data
    p = run.params
    assert p["ae.epochs"] == "2" and p["train.epochs"] == "2" and "model.embed_dim" in p
    assert p["llm.backend"] == "llamacpp" and p["llm.variant"] == "attributes"
    assert len(p["llm.model_sha256"]) == 64 and len(p["llm.template_version"]) == 12
    assert p["budget.explained"] == "10" and p["budget.all_pairs"] == "18"
    assert len(p["data.interactions_hash"]) == 16 and len(p["code.git_commit"]) == 40
    assert "quality_positive_distinct_ratio" in run.metrics and "fidelity_pos_r2" in run.metrics
    assert len(MlflowClient(tracking).get_metric_history(champion.run_id, "curve_train_loss")) >= 1
    assert champion.description.startswith("lr-recsys (regression): RMSE ")
    assert "explained 10 of 18 pairs" in champion.description
    # the features step materialized the pairs to the online store (8-d AE embeddings + texts)
    from lr_recsys import schema
    from lr_recsys.data import Prepared
    from lr_recsys.feature_store import StoreConfig, online, open_store

    redis_store = StoreConfig(
        repo_dir=tmp_path / "repo", online="redis", redis_connection=redis_url
    )
    assert not (tmp_path / "repo" / "online.db").exists()  # nothing went to SQLite
    examples = Prepared.load(run_dir / "ingest-op" / "prepared").examples
    last = examples.iloc[-1]
    services = {fs.name for fs in open_store(redis_store).list_feature_services()}
    assert services == {"lr_recsys_v1"}
    # the LLM budget: 10 of the 18 pairs were explained by the LLM, the rest distilled; both kinds
    # are in the online store with their source, texts only where the LLM wrote them
    explained = pd.read_parquet(run_dir / "explain-op" / "explanations" / "explanations.parquet")
    assert len(explained) == 10 and len(examples) == 18
    store = open_store(redis_store)
    rows = online(store, examples[[schema.USER_ID, schema.ITEM_ID]].to_dict("records"))
    llm = rows[schema.EXPLANATION_SOURCE] == "llm"
    assert llm.sum() == 10 and (rows.loc[~llm, schema.EXPLANATION_SOURCE] == "distilled").all()
    assert (
        rows.loc[llm, schema.POSITIVE]
        .str.startswith("The consumer watched this movie because")
        .all()
    )
    assert (
        rows.loc[~llm, schema.POSITIVE].isna().all()
        and rows.loc[~llm, schema.NEGATIVE].isna().all()
    )
    assert all(len(v) == 8 for v in rows[schema.POS_EMB]) and all(
        len(v) == 8 for v in rows[schema.NEG_EMB]
    )
    keys = {schema.USER_ID: last[schema.USER_ID], schema.ITEM_ID: last[schema.ITEM_ID]}
    row = online(store, [keys]).iloc[0]
    assert row[schema.HISTORY_IDS][-1] == last[schema.ITEM_ID]  # the latest history ends with it
    # training read the same mix through Feast's historical retrieval
    summary = json.loads((run_dir / "train-op" / "model" / "summary.json").read_text())
    seen = {k: v.get("llm", 0) for k, v in summary["explanation_sources"].items()}
    assert sum(seen.values()) == 10
    # the distill step's report: fidelity on held-out LLM pairs and the probe (too few pairs here)
    distilled = json.loads((run_dir / "distill-op" / "distiller" / "distill.json").read_text())
    assert distilled["llm_pairs"] == 10 and distilled["distilled_pairs"] == 18 - 10 + 9
    # serving candidates (top-3 popular unrated items per user) are distilled too
    serving = pd.read_parquet(run_dir / "explain-op" / "explanations" / "serving_pairs.parquet")
    assert len(serving) == 3 * 3 and not set(serving[schema.ITEM_ID]) & set(
        rated_by(run_dir, serving)
    )
    cand = serving.iloc[0]
    keys = {schema.USER_ID: cand[schema.USER_ID], schema.ITEM_ID: cand[schema.ITEM_ID]}
    cand_row = online(store, [keys]).iloc[0]
    if cand_row[schema.EXPLANATION_SOURCE] == "distilled":  # unless the served step explained it
        assert cand_row[schema.NEGATIVE] is None
    else:
        assert cand_row[schema.NEGATIVE].startswith("The consumer did not watch")


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
