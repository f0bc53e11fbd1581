"""Model registry and promotion (MLflow, embedded SQLite backend by default).

A trained model is logged as an MLflow run (parameters, per-seed and mean test metrics, the DNN
weights as safetensors with their config, the AutoEncoder and vocabulary when used, the
evaluation table), registered as a new version of the registered model and given the alias
``challenger``. ``promote`` moves the ``champion`` alias to the challenger only if it passed the
validation gates, was evaluated on the same test split as the champion and beats it on the task's
primary metric by the configured margin; otherwise it refuses with the numbers.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict

from lr_recsys.evaluate import primary_metric
from lr_recsys.models.base import RecModel
from lr_recsys.models.io import save_model

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER = "champion", "challenger"
TAG_SPLIT, TAG_GATES, TAG_TASK, TAG_MODEL = "test_split_hash", "gates_passed", "task", "model_name"
TAG_FEATURE_SERVICE = "feature_service"  # model-version tag: the Feast FeatureService it reads


class RegistryConfig(BaseModel):
    """Where runs and registered models live."""

    model_config = ConfigDict(extra="forbid")

    tracking_uri: str = "sqlite:///runs/mlflow.db"  # or an MLflow server URI
    experiment: str = "lr-recsys"
    model_name: str = "lr-recsys"


class PromotionRefused(RuntimeError):
    """The challenger may not become champion; the message holds the numbers."""


@dataclass
class Decision:
    """The outcome of a promotion attempt."""

    promoted: bool
    challenger_version: str
    champion_version: str | None
    metric: str
    challenger_value: float
    champion_value: float | None
    reason: str


def split_hash(pair_keys: list[str]) -> str:
    """Identity of a test split: models are only comparable on the same pairs."""
    return hashlib.sha256("\n".join(sorted(pair_keys)).encode()).hexdigest()[:16]


def _client(cfg: RegistryConfig):
    os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")
    import mlflow
    from mlflow import MlflowClient

    if cfg.tracking_uri.startswith("sqlite:///"):
        Path(cfg.tracking_uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(cfg.tracking_uri)
    return mlflow, MlflowClient(tracking_uri=cfg.tracking_uri)


def register_model(
    cfg: RegistryConfig,
    model: RecModel,
    model_name: str,
    task: str,
    test_metrics: dict[str, list[float]],
    test_pair_keys: list[str],
    gates_passed: bool,
    params: dict[str, Any] | None = None,
    encoder_dir: Path | None = None,
    eval_table: pd.DataFrame | None = None,
    extra_files: list[Path] = (),
    run_files: list[Path] = (),
    feature_service: str | None = None,
    extra_dirs: list[Path] = (),
    lineage: dict[str, Any] | None = None,
) -> str:
    """Log a trained model and register it as the new ``challenger``; returns its version.

    Args:
        cfg: Registry location.
        model: The trained network (weights are stored as safetensors, no pickle).
        model_name: Registered architecture name (e.g. ``lr-recsys``).
        task: ``regression`` or ``classification``.
        test_metrics: Test metrics per seed, e.g. ``{"rmse": [0.25, 0.26]}``.
        test_pair_keys: Pair keys of the test split the metrics were computed on.
        gates_passed: Whether every validation gate of the run passed.
        params: Extra parameters to log.
        encoder_dir: Saved AutoEncoder directory (weights, vocabulary, config), if used.
        eval_table: Per-example evaluation table to attach.
        extra_files: Files stored next to the weights (e.g. the serving bundle).
        run_files: Files logged at the run's root (e.g. the baselines' results table, a report).
        feature_service: The Feast FeatureService this version reads (tagged on the version).
        extra_dirs: Directories stored next to the weights under their own names (the
            distilled explainer and the AutoEncoder serving and refresh runs need).
        lineage: ``lr_recsys.lineage.model_lineage``: hyperparameters, data/LLM/code lineage
            (params), quality and fidelity (metrics), per-epoch ``curves`` (metrics
            ``curve_<name>`` by epoch), ``tags`` and the version ``description``.
    """
    mlflow, client = _client(cfg)
    mlflow.set_experiment(cfg.experiment)
    with mlflow.start_run() as run, tempfile.TemporaryDirectory() as tmp:
        mlflow.log_params({"model": model_name, "task": task, **(params or {})})
        for metric, runs in test_metrics.items():
            for seed, value in enumerate(runs):
                mlflow.log_metric(f"test_{metric}", value, step=seed)
            mlflow.log_metric(f"test_{metric}_mean", float(sum(runs) / len(runs)))
        mlflow.set_tags(
            {
                TAG_SPLIT: split_hash(test_pair_keys),
                TAG_GATES: str(bool(gates_passed)).lower(),
                TAG_TASK: task,
                TAG_MODEL: model_name,
            }
        )
        if lineage:
            _log_lineage(client, run.info.run_id, lineage, Path(tmp))
        out = Path(tmp) / "model"
        save_model(model, model_name, task, out)
        for extra in extra_files:
            shutil.copyfile(extra, out / Path(extra).name)
        for extra in extra_dirs:
            shutil.copytree(extra, out / Path(extra).name)
        mlflow.log_artifacts(str(out), artifact_path="model")
        if encoder_dir is not None:
            mlflow.log_artifacts(str(encoder_dir), artifact_path="autoencoder")
        for path in run_files:
            mlflow.log_artifact(str(path))
        if eval_table is not None:
            eval_table.to_csv(Path(tmp) / "evaluation.csv", index=False)
            mlflow.log_artifact(str(Path(tmp) / "evaluation.csv"))
        artifact_uri = run.info.artifact_uri
        run_id = run.info.run_id
    try:
        client.get_registered_model(cfg.model_name)
    except Exception:  # noqa: BLE001 - MLflow raises a generic RestException when absent
        client.create_registered_model(cfg.model_name)
    version = client.create_model_version(
        cfg.model_name, source=f"{artifact_uri}/model", run_id=run_id
    )
    if lineage and lineage.get("description"):
        client.update_model_version(
            cfg.model_name, version.version, description=lineage["description"]
        )
    if feature_service:
        client.set_model_version_tag(
            cfg.model_name, version.version, TAG_FEATURE_SERVICE, feature_service
        )
    client.set_registered_model_alias(cfg.model_name, CHALLENGER, version.version)
    log.info("registered %s version %s as %s", cfg.model_name, version.version, CHALLENGER)
    return str(version.version)


def _log_lineage(client, run_id: str, lineage: dict[str, Any], tmp: Path) -> None:
    """Params, metrics, per-epoch curves and tags of ``lineage`` in batches, plus the whole
    document as the run artifact ``lineage.json``."""
    import json
    import time

    from mlflow.entities import Metric, Param, RunTag

    params = [Param(k, str(v)) for k, v in lineage.get("params", {}).items()]
    for i in range(0, len(params), 100):
        client.log_batch(run_id, params=params[i : i + 100])
    now = int(time.time() * 1000)
    metrics = [Metric(k, float(v), now, 0) for k, v in lineage.get("metrics", {}).items()]
    for row in lineage.get("curves", []):
        step = int(row.get("epoch", 0))
        metrics += [Metric(f"curve_{k}", float(v), now, step) for k, v in row.items()
                    if k != "epoch" and isinstance(v, int | float)]  # fmt: skip
    for i in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[i : i + 1000])
    tags = [RunTag(k, str(v)) for k, v in lineage.get("tags", {}).items()]
    if tags:
        client.log_batch(run_id, tags=tags)
    path = tmp / "lineage.json"
    path.write_text(json.dumps(lineage, indent=1, default=str))
    client.log_artifact(run_id, str(path))


def _alias(client, name: str, alias: str):
    try:
        return client.get_model_version_by_alias(name, alias)
    except Exception:  # noqa: BLE001 - absent alias
        return None


def promote(cfg: RegistryConfig, margin: float = 0.0) -> Decision:
    """Move ``champion`` to the ``challenger`` if it is better by ``margin`` (relative, e.g. 0.01
    = 1%) on the primary metric (RMSE for regression, AUC for classification).

    Raises:
        PromotionRefused: with the numbers, if the challenger may not be promoted.
    """
    _, client = _client(cfg)
    challenger = _alias(client, cfg.model_name, CHALLENGER)
    if challenger is None:
        raise PromotionRefused(f"registered model {cfg.model_name!r} has no {CHALLENGER!r} version")
    c_run = client.get_run(challenger.run_id)
    task = c_run.data.tags.get(TAG_TASK, "")
    metric, higher = primary_metric(task)
    c_value = c_run.data.metrics.get(f"test_{metric}_mean")
    if c_value is None:
        raise PromotionRefused(f"challenger v{challenger.version} logged no test_{metric}_mean")
    if c_run.data.tags.get(TAG_GATES) != "true":
        raise PromotionRefused(
            f"challenger v{challenger.version} did not pass the validation gates ({metric} {c_value:.4f})"
        )
    champion = _alias(client, cfg.model_name, CHAMPION)
    if champion is None:
        client.set_registered_model_alias(cfg.model_name, CHAMPION, challenger.version)
        return Decision(
            True, str(challenger.version), None, metric, c_value, None, "no champion yet"
        )
    if champion.version == challenger.version:
        raise PromotionRefused(f"v{challenger.version} is already the champion")
    k_run = client.get_run(champion.run_id)
    k_value = k_run.data.metrics.get(f"test_{metric}_mean")
    if k_run.data.tags.get(TAG_TASK) != task or k_value is None:
        raise PromotionRefused(
            f"champion v{champion.version} was trained for {k_run.data.tags.get(TAG_TASK)!r}, "
            f"the challenger for {task!r}: not comparable"
        )
    if k_run.data.tags.get(TAG_SPLIT) != c_run.data.tags.get(TAG_SPLIT):
        raise PromotionRefused(
            f"challenger v{challenger.version} and champion v{champion.version} were evaluated on "
            f"different test splits ({c_run.data.tags.get(TAG_SPLIT)} vs {k_run.data.tags.get(TAG_SPLIT)})"
        )
    needed = k_value * (1 + margin) if higher else k_value * (1 - margin)
    better = (
        (c_value >= needed and c_value > k_value)
        if higher
        else (c_value <= needed and c_value < k_value)
    )
    summary = (
        f"{metric}: challenger v{challenger.version} {c_value:.4f} vs champion v{champion.version} "
        f"{k_value:.4f}; needed {'>=' if higher else '<='} {needed:.4f} (margin {margin:.1%})"
    )
    if not better:
        raise PromotionRefused(f"refused: {summary}")
    client.set_registered_model_alias(cfg.model_name, CHAMPION, challenger.version)
    log.info("promoted: %s", summary)
    return Decision(
        True, str(challenger.version), str(champion.version), metric, c_value, k_value, summary
    )


def next_version(cfg: RegistryConfig) -> int:
    """The version number the next registration will get (versions count up from 1)."""
    _, client = _client(cfg)
    versions = client.search_model_versions(f"name='{cfg.model_name}'")
    return max((int(v.version) for v in versions), default=0) + 1


def download_alias(cfg: RegistryConfig, alias: str, dst: Path) -> tuple[str, Path, dict[str, str]]:
    """Download the model files of the version ``alias`` points at; returns (version, directory,
    version tags).

    Raises:
        LookupError: when the registered model or the alias does not exist.
    """
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow, client = _client(cfg)
    version = _alias(client, cfg.model_name, alias)
    if version is None:
        raise LookupError(
            f"registered model {cfg.model_name!r} at {cfg.tracking_uri} has no {alias!r} version; "
            "run the pipeline (or `lr-recsys promote`) first"
        )
    out = Path(dst) / f"v{version.version}"
    local = mlflow.artifacts.download_artifacts(artifact_uri=version.source, dst_path=str(out))
    return str(version.version), Path(local), dict(version.tags or {})


def alias_version(cfg: RegistryConfig, alias: str) -> str | None:
    """The version ``alias`` points at now (``None`` if unset): cheap, for reload polling."""
    _, client = _client(cfg)
    version = _alias(client, cfg.model_name, alias)
    return None if version is None else str(version.version)


DIFF_TAG_PREFIXES = ("data.", "llm.", "code.")


def promotion_diff(cfg: RegistryConfig) -> str:
    """The challenger against the champion, as text: headline test metrics with their change,
    then every parameter (hyperparameters, data, LLM and code lineage) and lineage tag whose
    value differs. Empty when there is no challenger; only the challenger's when no champion."""
    from lr_recsys.lineage import diff

    _, client = _client(cfg)
    challenger = _alias(client, cfg.model_name, CHALLENGER)
    if challenger is None:
        return ""
    c_run = client.get_run(challenger.run_id)
    champion = _alias(client, cfg.model_name, CHAMPION)
    head = f"challenger v{challenger.version}"
    if champion is None or champion.version == challenger.version:
        return f"{head}: {challenger.description or '(no description)'}\n(no other champion to compare)\n"
    k_run = client.get_run(champion.run_id)
    lines = [f"{head} vs champion v{champion.version}", "",
             f"  challenger: {challenger.description or '(no description)'}",
             f"  champion:   {champion.description or '(no description)'}", "",
             "  test metrics (mean over seeds):"]  # fmt: skip
    means = sorted(k for k in set(c_run.data.metrics) | set(k_run.data.metrics)
                   if k.startswith("test_") and k.endswith("_mean"))  # fmt: skip
    for k in means:
        a, b = k_run.data.metrics.get(k), c_run.data.metrics.get(k)
        if a is None or b is None:
            lines.append(f"    {k}: {a} -> {b}")
            continue
        rel = f" ({100.0 * (b - a) / a:+.2f}%)" if a else ""
        lines.append(f"    {k}: {a:.4f} -> {b:.4f}{rel}")

    def lineage_tags(run) -> dict[str, str]:
        return {k: v for k, v in run.data.tags.items() if k.startswith(DIFF_TAG_PREFIXES)}

    changed = diff({**c_run.data.params, **lineage_tags(c_run)},
                   {**k_run.data.params, **lineage_tags(k_run)})  # fmt: skip
    lines += ["", f"  changed parameters and lineage ({len(changed)}):"]
    lines += [f"    {k}: {a} -> {b}" for k, a, b in changed] or ["    (none)"]
    return "\n".join(lines) + "\n"
