"""The analyses of a study's trained model: attention, per-item insights, uncertainty vs gain."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from lr_recsys import schema
from lr_recsys.models import explanation_source
from lr_recsys.report.analysis import (
    attention_shares,
    attention_summary,
    item_insights,
    uncertainty_gain,
    words,
)

log = logging.getLogger(__name__)


def high_threshold(prepared) -> float:
    """The high/low boundary on the [0, 1] prediction scale (rating >= high_rating)."""
    c = prepared.config
    return (c.high_rating - c.rating_min) / (c.rating_max - c.rating_min)


def insight_pairs(prepared, table: pd.DataFrame, shares: dict[str, np.ndarray]) -> pd.DataFrame:
    """Every explained pair of ``prepared`` with its texts, its attention shares on the two
    explanation tokens (``shares``: per split, (N, T) aligned with ``prepared.split``) and the
    words of the titles its explanation may name (candidate and history), not to be counted."""
    titles = dict(zip(prepared.items[schema.ITEM_ID].astype(str),
                      prepared.items[schema.TITLE].astype(str), strict=True))  # fmt: skip
    frames = []
    for split, s in shares.items():
        ex = prepared.split(split).reset_index(drop=True)
        ex = ex.assign(attn_positive=s[:, 0], attn_negative=s[:, 1] if s.shape[1] == 6 else 0.0)
        frames.append(ex.merge(table[[schema.PAIR_KEY, schema.POSITIVE, schema.NEGATIVE]],
                               on=schema.PAIR_KEY, how="inner"))  # fmt: skip
    pairs = pd.concat(frames, ignore_index=True).drop_duplicates(schema.PAIR_KEY)

    def exclude(row) -> list[str]:
        named = [str(row[schema.ITEM_ID]), *[str(h) for h in row[schema.HISTORY] if h]]
        return sorted({w for i in named for w in words(titles.get(i, ""))})

    pairs["exclude"] = [exclude(r) for _, r in pairs.iterrows()]
    pairs["title"] = pairs[schema.ITEM_ID].astype(str).map(titles)
    return pairs.rename(columns={schema.ITEM_ID: "item_id"})


def analyse(study, jobs, cache, built: dict[str, Any]) -> dict[str, Any]:
    """The analyses of ``study.analysis.model`` (weights of its ``seed``) on the analysis
    section's full-data job; sections that cannot run say why instead of failing the study."""
    from lr_recsys.compare import experiment_data
    from lr_recsys.explain.table import load_explanations
    from lr_recsys.models.io import load_model
    from lr_recsys.study import unit_predictions

    a = study.analysis
    candidates = [j for j in jobs if j.section == a.section and not j.label]
    if not candidates:
        return {
            "error": f"analysis section {a.section!r} is not a compare/curve section of the study"
        }
    job = max(candidates, key=lambda j: j.fraction)
    out: dict[str, Any] = {"model": a.model, "seed": a.seed, "section": a.section}
    if a.model not in job.models:
        out["error"] = f"{a.model} is not trained in section {a.section!r}"
        return out
    data = built.get(job.data_key) or experiment_data(job.cfg, job.fraction)
    prepared = data.prepared
    source = explanation_source(a.model)
    splits = data.splits[source]
    test_ex = prepared.split(schema.SPLIT_TEST)
    src = data.explanation_sources.get(schema.SPLIT_TEST)
    threshold = high_threshold(prepared)
    out["attention"], models = {}, {}
    for name, task, _, tcfg, key in job.units:
        if name != a.model or tcfg.seed != a.seed or not cache.model_dir(key).exists():
            continue
        model, _ = load_model(cache.model_dir(key))
        models[task] = model
        try:
            shares, pred = attention_shares(model, splits[schema.SPLIT_TEST])
        except TypeError as exc:
            out["attention"][task] = {"error": str(exc)}
            continue
        cut = 0.5 if task == schema.CLASSIFICATION else threshold
        summary = attention_summary(
            shares, test_ex[schema.LABEL].to_numpy().astype(bool), pred >= cut,
            None if src is None else src.to_numpy(),
        )  # fmt: skip
        summary["threshold"] = cut
        out["attention"][task] = summary
    if job.cfg.explanations is not None and a.insight_task in models:
        table = load_explanations(job.cfg.explanations, require_negative=False)
        model = models[a.insight_task]
        shares = {s: attention_shares(model, splits[s])[0] for s in schema.SPLITS}
        pairs = insight_pairs(prepared, table, shares)
        out["insights"] = {
            "task": a.insight_task, "explained_pairs": int(len(pairs)),
            "items": item_insights(pairs, a.insight_items, a.insight_keywords),
        }  # fmt: skip
    else:
        out["insights"] = {"error": "no explanation table or no kept model for the insight task"}
    twin = unit_predictions(job, cache, a.twin, schema.REGRESSION)
    mine = unit_predictions(job, cache, a.model, schema.REGRESSION)
    try:
        out["uncertainty"] = uncertainty_gain(
            twin, mine, test_ex[schema.TARGET].to_numpy(), a.uncertainty_bins
        )
        out["uncertainty"]["twin"] = a.twin
    except ValueError as exc:
        out["uncertainty"] = {"error": str(exc)}
    return out
