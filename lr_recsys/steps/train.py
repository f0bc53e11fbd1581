"""Training and evaluation steps: LR-Recsys and its baselines over seeds, with explanation
vectors read through Feast (point-in-time historical retrieval), then the evaluation table and
the predictions gate."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lr_recsys import schema
from lr_recsys.config import ModelConfig, TrainConfig
from lr_recsys.data import Prepared
from lr_recsys.models.io import save_model
from lr_recsys.serve.bundle import ServingBundle
from lr_recsys.validate import gate, suites

SUMMARY = "summary.json"
PREDICTIONS = "predictions.parquet"
RESULTS = "results.csv"  # per model: mean and std of each test metric
EVAL_TABLE = "evaluation.csv"  # per test pair: prediction, target, label
EVAL_SUMMARY = "evaluation.json"
REPORT = "report.html"
DISTILLER = "distiller"  # the distilled explainer, inside the model artifact (serving runs it)
AUTOENCODER = "autoencoder"


def _experiment_data(prepared: Prepared, models: list[str], store: dict[str, Any] | None):
    """Tensors for ``models``: explanation vectors (LLM or distilled, with their source) read
    through the feature store, item-text vectors when a content control is trained."""
    from lr_recsys.models import explanation_source, model_spec
    from lr_recsys.train.experiment import (
        attach_item_vectors,
        build_experiment_data,
        build_from_vectors,
    )

    sources = {explanation_source(m) for m in models}
    if sources - {None, "ae"}:
        raise ValueError(
            f"the pipeline serves AutoEncoder explanation features only; models {models} need "
            f"{sorted(s for s in sources if s)} (use `lr-recsys compare` for the other variants)"
        )
    if sources <= {None}:
        data = build_experiment_data(prepared, {None})
    elif store is None:
        raise ValueError(
            f"models {models} need explanation features but no feature store was given"
        )
    else:
        from lr_recsys.feature_store import open_store, store_config, training_vectors

        vectors = training_vectors(
            open_store(store_config(store)), prepared.examples, int(store.get("model_version", 1))
        )  # KFP metadata may hold 1.0
        data = build_from_vectors(prepared, "ae", vectors)
    if any(model_spec(m)[1].get("explanations") == "content" for m in models):
        attach_item_vectors(data)  # the content control reads the catalogue's text vectors
    return data


def train_evaluate(
    prepared_dir: Path,
    feature_store: dict[str, Any] | None,
    out_dir: Path,
    models: list[str] = ("lr-recsys",),
    task: str = schema.REGRESSION,
    seeds: list[int] = (0,),
    epochs: int = 100,
    encoder_dir: Path | None = None,
    tuned_config: Path | str | None = None,
    distiller_dir: Path | None = None,
) -> dict[str, Any]:
    """Train every model in ``models`` for each seed on the same tensors; the first is the model
    the pipeline registers, the others are its baselines. Explanation features are read through
    the feature store ``feature_store`` (``StoreConfig`` fields + the FeatureService's
    ``model_version``, as the features step's artifact carries them).

    The ``bias`` floor is always trained too (appended when missing). ``tuned_config`` (a TOML
    written by ``lr-recsys tune``) sets each model's hyperparameters for ``task``; early stopping
    on the validation split ends every run.

    Writes to ``out_dir``: the first model's best-seed weights and config, copies of the
    AutoEncoder (``encoder_dir``) and the distilled explainer (``distiller_dir``) so the model
    artifact is self-contained, its test predictions,
    the per-model, per-seed test metrics (``results.csv``) and ``summary.json``.
    """
    from lr_recsys.compare import with_bias
    from lr_recsys.evaluate import predict_all, primary_metric
    from lr_recsys.models import explanation_source
    from lr_recsys.train.experiment import run_model
    from lr_recsys.tuned import configs_for, read_tuned

    if not models:
        raise ValueError("train: no models given")
    tuned = read_tuned(tuned_config)  # fail before any training on a bad file
    models = with_bias(list(models))
    prepared = Prepared.load(prepared_dir)
    data = _experiment_data(prepared, list(models), feature_store)
    metric, higher = primary_metric(task)
    rows, best, configs = [], None, {}
    for name in models:
        base = TrainConfig(epochs=epochs, progress=False)
        model_cfg, train_cfg = configs_for(name, task, ModelConfig(), base, tuned)
        configs[name] = {"model": asdict(model_cfg), "train": asdict(train_cfg)}
        runs = [run_model(name, task, data, model_cfg, replace(train_cfg, seed=s)) for s in seeds]
        rows += [{"model": name, "seed": r.seed, **r.test} for r in runs]
        if best is None:  # the registered model: its best seed
            best = max(runs, key=lambda r: r.test[metric] if higher else -r.test[metric])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    primary = models[0]
    save_model(best.model, primary, task, out_dir)
    ServingBundle.from_prepared(prepared, data.space).save(out_dir)  # indices serving must use
    if encoder_dir is not None and explanation_source(primary) == "ae":
        shutil.copytree(encoder_dir, out_dir / AUTOENCODER, dirs_exist_ok=True)
    if distiller_dir is not None and explanation_source(primary) == "ae":
        # serving computes the distilled vectors of unexplained candidates at request time
        shutil.copytree(distiller_dir, out_dir / DISTILLER, dirs_exist_ok=True)
    test = data.splits[explanation_source(primary)][schema.SPLIT_TEST]
    ex = prepared.split(schema.SPLIT_TEST)
    pd.DataFrame({
        schema.PAIR_KEY: ex[schema.PAIR_KEY].to_numpy(), "prediction": predict_all(best.model, test),
        schema.TARGET: ex[schema.TARGET].to_numpy(), schema.LABEL: ex[schema.LABEL].to_numpy(),
    }).to_parquet(out_dir / PREDICTIONS, index=False)  # fmt: skip
    from lr_recsys.lineage import code_version, dataset_fingerprint
    from lr_recsys.report.build import high_threshold
    from lr_recsys.report.model import write_model_analysis

    skipped = write_model_analysis(best.model, data, explanation_source(primary), out_dir)
    results = pd.DataFrame(rows)
    results.to_csv(out_dir / RESULTS, index=False)
    mine = results[results["model"] == primary]
    per_seed = {k: mine[k].tolist() for k in best.test}
    summary = {
        "model": primary, "task": task, "seeds": list(seeds), "baselines": list(models[1:]),
        "per_seed": per_seed, "mean": {k: float(np.mean(v)) for k, v in per_seed.items()},
        "test_pair_keys": ex[schema.PAIR_KEY].tolist(), "best_seed": best.seed,
        "configs": configs,  # the effective hyperparameters of every model (tuned or default)
        "explanation_sources": {k: v.value_counts().to_dict() for k, v in data.explanation_sources.items()},
        "high_threshold": high_threshold(prepared), "analysis_skipped": skipped,
        "history": best.train.history,  # the registered seed's per-epoch train/validation curves
        "dataset": dataset_fingerprint(prepared.examples), "code": code_version(),
    }  # fmt: skip
    (out_dir / SUMMARY).write_text(json.dumps(summary))
    return {k: v for k, v in summary.items() if k not in ("test_pair_keys", "history")}


def evaluate(train_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Gate the registered model's test predictions and build the evaluation table: mean and
    standard deviation of every test metric per model (the model first, then its baselines,
    the ``bias`` floor last) and each model's relative difference to ``bias`` in percent.

    Writes ``evaluation.csv`` (per-pair predictions), ``results.csv`` (the table),
    ``report.html`` (self-contained: the table with paired tests, the attention analysis and
    per-item insights; ``lr_recsys.report.model``) with ``report.md``/``report.json``/
    ``figures/``, and ``evaluation.json`` (gates passed, the table as records)."""
    from lr_recsys.compare import relative_improvement
    from lr_recsys.models import BIAS

    train_dir, out_dir = Path(train_dir), Path(out_dir)
    pred = pd.read_parquet(train_dir / PREDICTIONS)
    gate("predictions", pred[["prediction"]], suites.predictions())
    results = pd.read_csv(train_dir / RESULTS)
    metrics = [c for c in results.columns if c not in ("model", "seed")]
    order = list(dict.fromkeys(results["model"]))
    grouped = results.groupby("model", sort=False)[metrics]
    table = grouped.mean().add_suffix("_mean").join(grouped.std(ddof=0).add_suffix("_std"))
    table = table.loc[order].reset_index()
    if BIAS in order:  # each model's relative difference to the bias floor (positive = better)
        floor = table.set_index("model").loc[BIAS]
        for m in metrics:
            table[f"{m}_vs_bias_pct"] = relative_improvement(
                table[f"{m}_mean"], floor[f"{m}_mean"], m
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    pred.to_csv(out_dir / EVAL_TABLE, index=False)
    table.to_csv(out_dir / RESULTS, index=False)
    from lr_recsys.report.model import pipeline_report

    pipeline_report(train_dir, out_dir)  # report.html (+ .md, .json, figures/)
    records = table.round(6).to_dict("records")
    (out_dir / EVAL_SUMMARY).write_text(json.dumps({"gates_passed": True, "table": records}))
    return {"gates_passed": True, "table": records}
