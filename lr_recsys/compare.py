"""``lr-recsys compare``: every model x task x seed through the same loop and splits, aggregated
as the paper's tables (mean, std, relative improvement over the best baseline, paired
significance test across seeds)."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from lr_recsys import schema
from lr_recsys.config import CompareConfig
from lr_recsys.data import load_prepared
from lr_recsys.explain.table import load_explanations
from lr_recsys.models import BASELINES, explanation_source, model_names, model_spec
from lr_recsys.train.experiment import build_experiment_data, run_model

log = logging.getLogger(__name__)

LOWER_IS_BETTER = {"rmse", "mae", "rmse_rating", "mae_rating"}
TABLE_METRICS = {schema.REGRESSION: ("rmse", "mae"), schema.CLASSIFICATION: ("auc",)}

Results = dict[str, dict[str, dict[str, dict[str, Any]]]]


def run_compare(cfg: CompareConfig) -> dict[str, Any]:
    """Train and test every model for every task and seed; return the results document."""
    unknown = [m for m in cfg.models if m not in model_names()]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; available: {model_names()}")
    prepared = load_prepared(cfg.data, seed=cfg.seeds[0] if cfg.seeds else 0)
    sources = {explanation_source(m) for m in cfg.models}
    needs_negative = any(model_spec(m)[1].get("explanations") != "pos" for m in cfg.models)
    table = (
        load_explanations(cfg.explanations, needs_negative)
        if cfg.explanations is not None
        else None
    )
    data = build_experiment_data(prepared, sources, table, cfg.ae)
    results: Results = {}
    timings: dict[str, list[float]] = {}
    for name in cfg.models:
        for task in cfg.tasks:
            for seed in cfg.seeds:
                run = run_model(name, task, data, cfg.model, replace(cfg.train, seed=seed))
                per_metric = results.setdefault(name, {}).setdefault(task, {})
                for metric, value in run.test.items():
                    per_metric.setdefault(metric, {"runs": []})["runs"].append(value)
                timings.setdefault(name, []).append(run.train.samples_per_s)
    for tasks in results.values():
        for metrics in tasks.values():
            for summary in metrics.values():
                runs = np.asarray(summary["runs"])
                summary["mean"] = float(runs.mean())
                summary["std"] = float(runs.std(ddof=1)) if len(runs) > 1 else 0.0
    counts = prepared.examples[schema.SPLIT].value_counts().to_dict()
    return {
        "results": results,
        "meta": {
            "dataset": prepared.name,
            "examples": {k: int(v) for k, v in counts.items()},
            "seeds": cfg.seeds,
            "epochs": cfg.train.epochs,
            "train_samples_per_s": {k: float(np.mean(v)) for k, v in timings.items()},
            "autoencoder": data.encoder_metrics,
        },
    }


def best_baseline(results: Results, task: str, metric: str) -> str | None:
    """The baseline with the best mean on ``metric`` (None if no baseline ran)."""
    present = [b for b in BASELINES if metric in results.get(b, {}).get(task, {})]
    if not present:
        return None
    key = lambda b: results[b][task][metric]["mean"]  # noqa: E731
    return min(present, key=key) if metric in LOWER_IS_BETTER else max(present, key=key)


def relative_improvement(value: float, reference: float, metric: str) -> float:
    """Improvement of ``value`` over ``reference`` in percent (positive = better)."""
    if metric in LOWER_IS_BETTER:
        return 100.0 * (reference - value) / reference
    return 100.0 * (value - reference) / reference


def paired_test(a: list[float], b: list[float]) -> float | None:
    """Two-sided paired t-test p-value across seeds (None with fewer than 2 pairs or no variance)."""
    if len(a) < 2 or len(a) != len(b):
        return None
    diff = np.asarray(a) - np.asarray(b)
    if np.allclose(diff, diff[0]):
        return 0.0 if diff[0] != 0 else 1.0
    return float(stats.ttest_rel(a, b).pvalue)


def markdown_table(doc: dict[str, Any]) -> str:
    """The comparison as a markdown table: mean ± std per metric, relative improvement over the
    best baseline and the paired-test p-value."""
    results: Results = doc["results"]
    lines = []
    for task, metrics in TABLE_METRICS.items():
        if not any(task in r for r in results.values()):
            continue
        header = ["model"]
        for m in metrics:
            header += [m.upper(), f"Δ{m.upper()} vs best baseline", "p (paired t)"]
        lines += [f"### {task}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for name, tasks in results.items():
            if task not in tasks:
                continue
            row = [name]
            for m in metrics:
                if m not in tasks[task]:
                    row += ["-", "-", "-"]
                    continue
                s = tasks[task][m]
                row.append(f"{s['mean']:.4f} ± {s['std']:.4f}")
                ref = best_baseline(results, task, m)
                if ref is None or ref == name:
                    row += ["(best baseline)" if ref == name else "-", "-"]
                    continue
                r = results[ref][task][m]
                row.append(f"{relative_improvement(s['mean'], r['mean'], m):+.2f}% vs {ref}")
                p = paired_test(s["runs"], r["runs"])
                row.append("-" if p is None else f"{p:.3f}")
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    meta = doc.get("meta", {})
    lines.append(
        f"Dataset {meta.get('dataset')}, examples {meta.get('examples')}, seeds {meta.get('seeds')}, "
        f"epochs {meta.get('epochs')}. RMSE/MAE on the [0,1] rating scale (×4 for the 1-5 scale)."
    )
    return "\n".join(lines) + "\n"


def write_outputs(doc: dict[str, Any], out: Path) -> Path:
    """Write ``out`` (``{model: {task: {metric: {mean, std, runs}}}}``), the run metadata as
    ``<out>.meta.json`` and the markdown table as ``<out>.md``; return the markdown path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc["results"], indent=2))
    out.with_suffix(".meta.json").write_text(json.dumps(doc.get("meta", {}), indent=2))
    md = out.with_suffix(".md")
    md.write_text(markdown_table(doc))
    return md
