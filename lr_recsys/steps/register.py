"""Registration step: the trained model becomes the MLflow ``challenger``, then the promotion
gate decides whether it becomes ``champion``."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from lr_recsys.models.io import load_model
from lr_recsys.serve.bundle import BUNDLE
from lr_recsys.steps.train import (
    AUTOENCODER,
    DISTILLER,
    EVAL_SUMMARY,
    EVAL_TABLE,
    REPORT,
    RESULTS,
    SUMMARY,
)

log = logging.getLogger(__name__)


def register_and_promote(
    train_dir: Path, evaluation_dir: Path, tracking_uri: str, margin: float = 0.0,
    feature_store: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Register the trained model (with its AutoEncoder, serving bundle and evaluation table) as
    challenger, give it its versioned Feast FeatureService (``feature_store``: the features
    step's store fields) and try to promote it to champion."""
    from lr_recsys.registry import PromotionRefused, RegistryConfig, promote, register_model

    train_dir, evaluation_dir = Path(train_dir), Path(evaluation_dir)
    summary = json.loads((train_dir / SUMMARY).read_text())
    evaluation = json.loads((evaluation_dir / EVAL_SUMMARY).read_text())
    cfg = RegistryConfig(tracking_uri=tracking_uri)
    model, _ = load_model(train_dir)
    ae_dir = train_dir / AUTOENCODER
    from lr_recsys.lineage import model_lineage

    lineage = model_lineage(train_dir, evaluation)
    version = register_model(
        cfg, model, summary["model"], summary["task"], summary["per_seed"], summary["test_pair_keys"],
        evaluation["gates_passed"], params={"seeds": summary["seeds"], "baselines": summary["baselines"]},
        encoder_dir=ae_dir if ae_dir.exists() else None,
        eval_table=pd.read_csv(evaluation_dir / EVAL_TABLE),
        extra_files=[p for p in [train_dir / BUNDLE] if p.exists()],
        extra_dirs=[p for p in (train_dir / DISTILLER, ae_dir) if p.exists()],
        run_files=[p for p in (evaluation_dir / RESULTS, evaluation_dir / REPORT,
                               evaluation_dir / "report.json") if p.exists()],
        feature_service=_feature_service(feature_store, cfg), lineage=lineage,
    )  # fmt: skip
    from lr_recsys.registry import promotion_diff

    diff = promotion_diff(cfg)  # logged before the gate moves the alias
    log.info("promotion diff:\n%s", diff)
    _log_run_text(cfg, version, "promotion_diff.txt", diff)
    try:
        decision = promote(cfg, margin)
        return {"version": version, "promoted": True, "reason": decision.reason, "diff": diff}
    except PromotionRefused as exc:
        return {"version": version, "promoted": False, "reason": str(exc), "diff": diff}


def _log_run_text(cfg, version: str, name: str, text: str) -> None:
    """Attach ``text`` as the artifact ``name`` of registered ``version``'s run."""
    import tempfile

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=cfg.tracking_uri)
    run_id = client.get_model_version(cfg.model_name, version).run_id
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_text(text)
        client.log_artifact(run_id, str(path))


def _feature_service(store: dict[str, Any] | None, registry) -> str | None:
    """Apply the FeatureService of the version about to be registered; returns its name."""
    if not store:
        return None
    from lr_recsys.feature_store import add_feature_service, store_config
    from lr_recsys.registry import next_version

    return add_feature_service(store_config(store), next_version(registry))
