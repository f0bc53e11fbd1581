"""The report of one pipeline run: its evaluation table (the registered model, its baselines and
the bias floor over the run's seeds, with paired tests), the registered model's attention on the
test split and the per-item insights of the pairs the LLM explained.

The train step computes what needs the model (``write_model_analysis``: attention shares per
pair, the explained pairs' texts); the evaluate step renders (``pipeline_report``), so the KFP
``HTML`` output and the MLflow run carry the same self-contained page.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lr_recsys import schema
from lr_recsys.report.analysis import (
    attention_shares,
    attention_summary,
    item_insights,
    token_names,
)

ATTENTION = "attention.parquet"  # test pairs: pair_key, explanation_source, attn_<token>
INSIGHT_PAIRS = "insight_pairs.parquet"  # LLM-explained pairs with texts and attention
ATTN = "attn_"


def write_model_analysis(model, data, source: str | None, out_dir: Path) -> dict[str, Any]:
    """Attention shares of ``model`` on the test split and the insight pairs (every pair with
    an LLM text in ``data.texts``, any split) written to ``out_dir``; what was skipped and why."""
    from lr_recsys.report.build import insight_pairs

    out_dir = Path(out_dir)
    if getattr(model, "attn", None) is None:
        return {
            "attention": f"{type(model).__name__} {getattr(model, 'head', '')} has no attention"
        }
    splits = data.splits[source]
    shares = {s: attention_shares(model, splits[s])[0] for s in schema.SPLITS}
    tokens = token_names(shares[schema.SPLIT_TEST].shape[1])
    test = data.prepared.split(schema.SPLIT_TEST)
    frame = pd.DataFrame(shares[schema.SPLIT_TEST], columns=[ATTN + t for t in tokens])
    frame.insert(0, schema.PAIR_KEY, test[schema.PAIR_KEY].to_numpy())
    src = data.explanation_sources.get(schema.SPLIT_TEST)
    if src is not None:
        frame.insert(1, schema.EXPLANATION_SOURCE, np.asarray(src.to_numpy()).astype(str))
    frame.to_parquet(out_dir / ATTENTION, index=False)
    texts = getattr(data, "texts", None)
    if texts is None or texts.empty:
        return {"insights": "no LLM texts were read with the features"}
    table = texts.reset_index().rename(columns={"index": schema.PAIR_KEY})
    pairs = insight_pairs(data.prepared, table, shares)
    pairs[["item_id", "title", schema.PAIR_KEY, schema.POSITIVE, schema.NEGATIVE, "attn_positive",
           "attn_negative", "exclude"]].to_parquet(out_dir / INSIGHT_PAIRS, index=False)  # fmt: skip
    return {}


def results_doc(results: pd.DataFrame, task: str) -> dict[str, Any]:
    """``results.csv`` (model, seed, metrics) in ``lr-recsys compare``'s document layout."""
    from lr_recsys.compare import summarise

    metrics = [c for c in results.columns if c not in ("model", "seed")]
    runs = [{"model": r["model"], "task": task, "seed": int(r["seed"]),
             "test": {m: float(r[m]) for m in metrics if pd.notna(r[m])}}
            for _, r in results.sort_values(["model", "seed"], kind="stable").iterrows()]  # fmt: skip
    order = list(dict.fromkeys(results["model"]))
    summary = summarise(runs)
    return {"results": {m: summary[m] for m in order if m in summary},
            "meta": {"seeds": sorted({int(s) for s in results["seed"]})}}  # fmt: skip


def pipeline_report(train_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Render the run's report (``report.md`` + ``figures/``, ``report.html``, ``report.json``)
    to ``out_dir``; returns the JSON document.

    Raises:
        FileNotFoundError: ``train_dir`` is not a train step's output.
    """
    from lr_recsys.compare import markdown_table
    from lr_recsys.report.render import (
        FIGURES,
        REPORT_HTML,
        REPORT_JSON,
        REPORT_MD,
        attention_lines,
        demote,
        insight_lines,
        markdown_to_html,
    )
    from lr_recsys.steps.train import PREDICTIONS, RESULTS, SUMMARY

    train_dir, out_dir = Path(train_dir), Path(out_dir)
    if not (train_dir / SUMMARY).exists():
        raise FileNotFoundError(f"{train_dir} holds no {SUMMARY}: not a train step's output")
    (out_dir / FIGURES).mkdir(parents=True, exist_ok=True)
    summary = json.loads((train_dir / SUMMARY).read_text())
    task = summary["task"]
    doc = results_doc(pd.read_csv(train_dir / RESULTS), task)
    data, train = summary.get("dataset", {}), summary.get("configs", {}).get(summary["model"], {})
    doc["meta"] |= {
        "examples": {k[2:]: v for k, v in data.items() if k.startswith("n_")} or None,
        "epochs": train.get("train", {}).get("epochs"), "patience": train.get("train", {}).get("patience"),
    }  # fmt: skip
    lines = [f"# Evaluation of {summary['model']} ({task})", "",
             f"Seeds {summary['seeds']}; the registered model is seed {summary.get('best_seed')}. "
             "Δ positive = better; p: paired t-test across seeds. The paper's other analyses "
             "(learning curve, ablations, prompt variants, uncertainty vs gain) need several "
             "seeds of every variant: `lr-recsys study --config benchmarks/study_ml100k_report.toml`.",
             "", "## Test metrics", "", demote(markdown_table(doc)).rstrip(), ""]  # fmt: skip
    report: dict[str, Any] = {"model": summary["model"], "task": task, "table": doc["results"]}
    attention = train_dir / ATTENTION
    if attention.exists():
        att = pd.read_parquet(attention)
        pred = pd.read_parquet(train_dir / PREDICTIONS)
        merged = att.merge(pred, on=schema.PAIR_KEY, how="inner", validate="one_to_one")
        shares = merged[[c for c in att.columns if c.startswith(ATTN)]].to_numpy()
        # runs before the summary recorded it: the 1-5 scale's boundary (rating >= 4)
        cut = 0.5 if task == schema.CLASSIFICATION else summary.get("high_threshold", 0.75)
        src = merged.get(schema.EXPLANATION_SOURCE)
        s = attention_summary(shares, merged[schema.LABEL].to_numpy().astype(bool),
                              merged["prediction"].to_numpy() >= cut,
                              None if src is None else src.to_numpy())  # fmt: skip
        report["attention"] = {task: s}
        lines += attention_lines({task: s}, out_dir / FIGURES)
    else:
        lines += ["## Attention analysis", "", "Not available: the registered model has no "
                  "attention layer (or the run predates the analysis).", ""]  # fmt: skip
    pairs_path = train_dir / INSIGHT_PAIRS
    if pairs_path.exists():
        pairs = pd.read_parquet(pairs_path)
        pairs["exclude"] = pairs["exclude"].map(list)
        report["insights"] = {"task": task, "explained_pairs": int(len(pairs)),
                              "items": item_insights(pairs, 10, 6)}  # fmt: skip
        lines += insight_lines(report["insights"])
    md = "\n".join(lines) + "\n"
    (out_dir / REPORT_MD).write_text(md)
    (out_dir / REPORT_HTML).write_text(
        markdown_to_html(md, out_dir, f"{summary['model']} evaluation")
    )
    (out_dir / REPORT_JSON).write_text(json.dumps(report, indent=1, default=float))
    return report
