"""``lr-recsys compare``: every model x task x seed through the same loop and splits, aggregated
as the paper's tables (mean, std, relative improvement over the best baseline, paired
significance test across seeds)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from lr_recsys import schema
from lr_recsys.config import CompareConfig
from lr_recsys.data import load_prepared
from lr_recsys.explain.budget import needs_scores
from lr_recsys.explain.table import load_explanations
from lr_recsys.models import BASELINES, BIAS, explanation_source, model_names, model_spec
from lr_recsys.train.experiment import ExperimentData, build_experiment_data, run_model
from lr_recsys.tuned import Tuned, configs_for, read_tuned

log = logging.getLogger(__name__)

LOWER_IS_BETTER = {"rmse", "mae", "rmse_rating", "mae_rating"}
TABLE_METRICS = {schema.REGRESSION: ("rmse", "mae"), schema.CLASSIFICATION: ("auc",)}

Results = dict[str, dict[str, dict[str, dict[str, Any]]]]


def with_bias(models: list[str]) -> list[str]:
    """``models`` with the ``bias`` floor appended when it is missing (every table reports it)."""
    return list(models) if BIAS in models else [*models, BIAS]


def _run_unit(data, name: str, task: str, model_cfg, train_cfg) -> dict[str, Any]:
    """One model x task x seed; plain values only (it may run in a Ray worker)."""
    run = run_model(name, task, data, model_cfg, train_cfg)
    return {"model": name, "task": task, "seed": train_cfg.seed, "test": run.test,
            "best_epoch": run.train.best_epoch, "samples_per_s": run.train.samples_per_s,
            "seconds": run.train.seconds}  # fmt: skip


def run_units(
    data, units: list[tuple], workers: int, fn: Callable[..., dict[str, Any]] = _run_unit,
    on_result: Callable[[int, dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Run ``fn(data, *unit)`` for every unit, in process (``workers == 1``) or as Ray tasks of
    one CPU each; ``on_result(index, result)`` is called as each finishes (in finishing order),
    so a caller can persist results before the others are done."""

    def done(k: int, run: dict[str, Any]) -> None:
        log.info("compare: %d/%d done (%s %s seed %d: %s, %.0f s)", k, len(units), run["model"],
                 run["task"], run["seed"], run["test"], run["seconds"])  # fmt: skip

    if workers <= 1:
        runs = []
        for u in units:
            runs.append(fn(data, *u))
            done(len(runs), runs[-1])
            if on_result is not None:
                on_result(len(runs) - 1, runs[-1])
        return runs
    import ray

    from lr_recsys.raycluster import ensure_ray

    started = ensure_ray(num_cpus=workers)
    try:
        remote = ray.remote(num_cpus=1)(fn)
        ref = ray.put(data)
        pending = [remote.remote(ref, *u) for u in units]
        order = {p: k for k, p in enumerate(pending)}
        finished: dict[int, dict[str, Any]] = {}
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            k = order[ready[0]]
            finished[k] = ray.get(ready[0])
            done(len(finished), finished[k])
            if on_result is not None:
                on_result(k, finished[k])
        return [finished[k] for k in range(len(units))]
    finally:
        if started:
            ray.shutdown()


def summarise(runs: list[dict[str, Any]]) -> Results:
    """``{model: {task: {metric: {runs, mean, std}}}}`` of unit results (runs in seed order as
    given; the std is the sample std across seeds, 0 for one seed)."""
    results: Results = {}
    for run in runs:
        per_metric = results.setdefault(run["model"], {}).setdefault(run["task"], {})
        for metric, value in run["test"].items():
            per_metric.setdefault(metric, {"runs": []})["runs"].append(value)
    for tasks in results.values():
        for metrics in tasks.values():
            for summary in metrics.values():
                values = np.asarray(summary["runs"])
                summary["mean"] = float(values.mean())
                summary["std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return results


def experiment_data(cfg: CompareConfig, fraction: float | None = None) -> ExperimentData:
    """Prepared data (at ``fraction`` of the training split) encoded for the explanation sources
    the models of ``cfg`` need (the ``bias`` floor included)."""
    update = {} if fraction is None else {"train_fraction": fraction}
    prepared = load_prepared(
        cfg.data.model_copy(update=update), seed=cfg.seeds[0] if cfg.seeds else 0
    )
    models = with_bias(cfg.models)
    sources = {explanation_source(m) for m in models}
    needs_negative = any(model_spec(m)[1].get("explanations") != "pos" for m in models)
    table = (
        load_explanations(cfg.explanations, needs_negative)
        if cfg.explanations is not None
        else None
    )
    if table is not None and cfg.llm_pairs is not None:
        from lr_recsys.explain.budget import select_budget

        full = load_prepared(cfg.data.model_copy(update={"train_fraction": 1.0}))  # every pair
        scores = budget_scores(cfg, full)
        budget = select_budget(
            full.examples, cfg.llm_pairs, cfg.budget_seed, cfg.budget_policy, scores
        )[schema.PAIR_KEY]
        table = table[table[schema.PAIR_KEY].isin(set(budget))].reset_index(drop=True)
        log.info(
            "compare: LLM budget %d pairs (%s) -> %d explained in the table",
            cfg.llm_pairs, cfg.budget_policy, len(table),
        )  # fmt: skip
        if len(table) < min(cfg.llm_pairs, len(full.examples)):
            log.warning(
                "compare: the table lacks %d of the %d budget pairs (they are distilled); explain "
                "them with the same policy, seed and scores first",
                min(cfg.llm_pairs, len(full.examples)) - len(table), cfg.llm_pairs,
            )  # fmt: skip
    content = any(model_spec(m)[1].get("explanations") == "content" for m in models)
    return build_experiment_data(prepared, sources, table, cfg.ae, item_vectors=content)


def budget_scores(cfg: CompareConfig, full) -> Any:
    """The per-pair scores ``cfg.budget_policy`` routes by (None for a policy without scores):
    ``cfg.uncertainty.scores`` when that file exists (the explain run's), else a first pass with
    the twin's tuned settings (``cfg.uncertainty.tuned_config``, else ``cfg.tuned_config``)."""
    if not needs_scores(cfg.budget_policy):
        return None
    from lr_recsys.explain.uncertainty import budget_scores as scores_of

    scores, info = scores_of(full, cfg.uncertainty, cfg.tuned_config)
    log.info("compare: budget scores %s", info)
    return scores


def compare_once(cfg: CompareConfig, fraction: float, tuned: Tuned) -> dict[str, Any]:
    """Every model x task x seed at one training fraction; the results and run metadata."""
    data = experiment_data(cfg, fraction)
    prepared = data.prepared
    models = with_bias(cfg.models)
    units, configs = [], {}
    for name in models:
        for task in cfg.tasks:
            model_cfg, train_cfg = configs_for(name, task, cfg.model, cfg.train, tuned)
            configs.setdefault(name, {})[task] = {
                "model": asdict(model_cfg),
                "train": asdict(train_cfg),
            }
            units += [(name, task, model_cfg, replace(train_cfg, seed=s)) for s in cfg.seeds]
    t0 = time.perf_counter()
    runs = run_units(data, units, cfg.workers)
    results = summarise(runs)
    timings: dict[str, list[float]] = {}
    epochs: dict[str, dict[str, list[int]]] = {}
    for run in runs:
        timings.setdefault(run["model"], []).append(run["samples_per_s"])
        epochs.setdefault(run["model"], {}).setdefault(run["task"], []).append(run["best_epoch"])
    counts = prepared.examples[schema.SPLIT].value_counts().to_dict()
    scored = cfg.llm_pairs is not None and needs_scores(cfg.budget_policy)
    meta = {
        "dataset": prepared.name,
        "examples": {k: int(v) for k, v in counts.items()},
        "seeds": cfg.seeds,
        "epochs": cfg.train.epochs,
        "patience": cfg.train.patience,
        "train_fraction": fraction,
        "tuned_config": str(cfg.tuned_config) if cfg.tuned_config else None,
        "llm_budget": cfg.llm_pairs,
        "budget_policy": cfg.budget_policy,
        "budget_seed": cfg.budget_seed,
        "uncertainty": cfg.uncertainty.model_dump(mode="json") if scored else None,
        "best_epochs": epochs,
        "configs": configs,  # the effective hyperparameters of every model and task
        "seconds": round(time.perf_counter() - t0, 1),
        "workers": cfg.workers,
        "train_samples_per_s": {k: float(np.mean(v)) for k, v in timings.items()},
        "autoencoder": data.encoder_metrics,
        "distiller": data.distill_metrics,
        "llm_pairs": {k: int((v == "llm").sum()) for k, v in data.explanation_sources.items()},
    }
    return {"results": results, "meta": meta}


def run_compare(cfg: CompareConfig) -> dict[str, Any]:
    """Train and test every model (the ``bias`` floor included) for every task and seed, at
    every training fraction when ``cfg.train_fractions`` is set; return the results document:
    ``results``/``meta`` of the full training split (or the largest fraction) and, for a
    learning curve, ``learning_curve`` keyed by fraction."""
    unknown = [m for m in cfg.models if m not in model_names()]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; available: {model_names()}")
    tuned = read_tuned(cfg.tuned_config)
    fractions = cfg.train_fractions or [cfg.data.train_fraction]
    curve = {}
    for fraction in fractions:
        log.info("compare: training fraction %.2f", fraction)
        curve[fraction] = compare_once(cfg, fraction, tuned)
    doc = dict(curve[max(fractions)])
    if cfg.train_fractions:
        doc["learning_curve"] = {str(f): d for f, d in curve.items()}
    return doc


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


def _versus(s: dict[str, Any], ref: dict[str, Any] | None, metric: str) -> list[str]:
    """[relative improvement, paired-test p] of summary ``s`` against summary ``ref``."""
    if ref is None:
        return ["-", "-"]
    p = paired_test(s["runs"], ref["runs"])
    return [
        f"{relative_improvement(s['mean'], ref['mean'], metric):+.2f}%",
        "-" if p is None else f"{p:.3f}",
    ]


def markdown_table(doc: dict[str, Any]) -> str:
    """The comparison as markdown: per task, mean ± std of each metric, the relative improvement
    over the best (neural) baseline and over the ``bias`` floor, each with its paired-test p-value
    across seeds; then the learning curve when the document has one."""
    results: Results = doc["results"]
    lines = []
    for task, metrics in TABLE_METRICS.items():
        if not any(task in r for r in results.values()):
            continue
        # no neural baseline in this table (e.g. ablations only): no "vs best baseline" columns
        baselines = any(best_baseline(results, task, m) for m in metrics)
        versus_best = ["Δ vs best baseline", "p"] if baselines else []
        header = ["model"]
        for m in metrics:
            header += [m.upper(), *versus_best, "Δ vs bias", "p (bias)"]
        lines += [f"### {task}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for name, tasks in results.items():
            if task not in tasks:
                continue
            row = [name]
            for m in metrics:
                if m not in tasks[task]:
                    row += ["-"] * (3 + len(versus_best))
                    continue
                s = tasks[task][m]
                row.append(f"{s['mean']:.4f} ± {s['std']:.4f}")
                ref = best_baseline(results, task, m)
                if ref == name:
                    row += ["(best baseline)", "-"]
                elif ref:
                    versus = _versus(s, results[ref][task][m], m)
                    row += [f"{versus[0]} vs {ref}", versus[1]]
                bias = results.get(BIAS, {}).get(task, {}).get(m)
                row += ["(floor)", "-"] if name == BIAS else _versus(s, bias, m)
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    meta = doc.get("meta", {})
    facts = [f"{label} {meta[key]}" for key, label in (
        ("dataset", "Dataset"), ("examples", "examples"), ("seeds", "seeds"), ("epochs", "max epochs"),
        ("patience", "early stopping patience"), ("tuned_config", "tuned config"),
    ) if meta.get(key) is not None]  # fmt: skip
    lines.append(
        (", ".join(facts) + ". " if facts else "") + "RMSE/MAE on the [0,1] rating scale (×4 for "
        "the 1-5 scale); Δ positive = better; p: two-sided paired t-test across seeds."
    )
    controls = controls_table(results)
    if controls:
        lines += ["", controls]
    if doc.get("learning_curve"):
        lines += ["", learning_curve_table(doc["learning_curve"])]
    return "\n".join(lines) + "\n"


TWIN, CONTENT = "lr-recsys-noexp", "lr-recsys-content"


def controls_table(results: Results) -> str:
    """What the explanations add: every explanation-reading LR-Recsys variant against the twin
    (no explanations) and the content control (the same item-text vectors, no LLM)."""
    readers = [n for n in results if n.startswith("lr-recsys") and n not in (TWIN, CONTENT)]
    refs = [r for r in (TWIN, CONTENT) if r in results]
    if not readers or not refs:
        return ""
    lines = ["## Against its controls (what the explanations add)", ""]
    for task, metrics in TABLE_METRICS.items():
        header = ["model"] + [f"{m.upper()} Δ vs {r}" for m in metrics for r in refs]
        rows = []
        for name in readers:
            if task not in results[name]:
                continue
            row = [name]
            for m in metrics:
                for r in refs:
                    ref = results[r].get(task, {}).get(m)
                    s = results[name][task].get(m)
                    row.append(" (p ".join(_versus(s, ref, m)) + ")" if s and ref else "-")
            rows.append("| " + " | ".join(row) + " |")
        if rows:
            lines += [f"### {task}", "", "| " + " | ".join(header) + " |",
                      "|" + "---|" * len(header), *rows, ""]  # fmt: skip
    return "\n".join(lines)


def learning_curve_table(curve: dict[str, dict[str, Any]]) -> str:
    """Paper Table 3 layout: per task and metric, one row per model, one column per fraction."""
    fractions = sorted(curve, key=float)
    lines = ["## Learning efficiency (test metric vs fraction of the training split)", ""]
    for task, metrics in TABLE_METRICS.items():
        for m in metrics:
            models = [n for n, r in curve[fractions[-1]]["results"].items() if m in r.get(task, {})]
            if not models:
                continue
            counts = [
                curve[f]["meta"].get("examples", {}).get(schema.SPLIT_TRAIN) for f in fractions
            ]
            head = [f"{float(f):.0%}" + (f" ({n} train)" if n else "")
                    for f, n in zip(fractions, counts, strict=True)]  # fmt: skip
            lines += [f"### {task}: {m.upper()}", "", "| model | " + " | ".join(head) + " |",
                      "|" + "---|" * (len(fractions) + 1)]  # fmt: skip
            for name in models:
                cells = []
                for f in fractions:
                    s = curve[f]["results"].get(name, {}).get(task, {}).get(m)
                    cells.append(f"{s['mean']:.4f} ± {s['std']:.4f}" if s else "-")
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
            lines.append("")
    return "\n".join(lines)


def plot_learning_curve(curve: dict[str, dict[str, Any]], out: Path) -> Path:
    """PNG: one panel per task metric, test metric (mean ± std over seeds) vs training fraction,
    one line per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fractions = sorted(curve, key=float)
    panels = [(t, m) for t, ms in TABLE_METRICS.items() for m in ms
              if any(t in r for r in curve[fractions[-1]]["results"].values())]  # fmt: skip
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, (task, m) in zip(axes[0], panels, strict=True):
        for name, tasks in curve[fractions[-1]]["results"].items():
            if m not in tasks.get(task, {}):
                continue
            pts = [(float(f), curve[f]["results"].get(name, {}).get(task, {}).get(m))
                   for f in fractions]  # fmt: skip
            pts = [(x, s) for x, s in pts if s]
            xs = [x for x, _ in pts]
            ax.errorbar(xs, [s["mean"] for _, s in pts], yerr=[s["std"] for _, s in pts],
                        marker="o", capsize=3, label=name,
                        linestyle="--" if name == BIAS else "-")  # fmt: skip
        ax.set_xscale("log")
        ax.minorticks_off()  # only the fractions as ticks
        ax.set_xticks([float(f) for f in fractions], [f"{float(f):.0%}" for f in fractions])
        ax.set_xlabel("fraction of the training split")
        ax.set_ylabel(f"test {m.upper()}" + (" (lower is better)" if m in LOWER_IS_BETTER else ""))
        ax.set_title(f"{task}: {m.upper()}")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def write_outputs(doc: dict[str, Any], out: Path) -> Path:
    """Write ``out`` (``{model: {task: {metric: {mean, std, runs}}}}``), the run metadata as
    ``<out>.meta.json``, the markdown tables as ``<out>.md`` and, for a learning curve,
    ``<out>.learning_curve.json`` + ``<out>.learning_curve.png``; return the markdown path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc["results"], indent=2))
    out.with_suffix(".meta.json").write_text(json.dumps(doc.get("meta", {}), indent=2))
    if doc.get("learning_curve"):
        out.with_suffix(".learning_curve.json").write_text(
            json.dumps(doc["learning_curve"], indent=2)
        )
        plot_learning_curve(doc["learning_curve"], out.with_suffix(".learning_curve.png"))
    md = out.with_suffix(".md")
    md.write_text(markdown_table(doc))
    return md
