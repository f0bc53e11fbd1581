"""Data steps: ingest (+ interactions gate) and explanations (+ explanations gate)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from lr_recsys import schema
from lr_recsys.config import DataConfig
from lr_recsys.data import Prepared, load_tables, prepare
from lr_recsys.validate import gate, suites

log = logging.getLogger(__name__)


def ingest(data: DataConfig, out_dir: Path) -> dict[str, Any]:
    """Load the dataset, gate the raw interactions, prepare (Sec. 5.1) and save the artifact."""
    tables = load_tables(data)
    gate(
        "raw_interactions",
        tables.interactions,
        suites.interactions(data.rating_min, data.rating_max),
    )
    prepared = prepare(tables, data)
    prepared.save(out_dir)
    counts = prepared.examples[schema.SPLIT].value_counts().to_dict()
    return {"examples": len(prepared.examples), **{f"n_{k}": int(v) for k, v in counts.items()}}


SERVING_PAIRS = "serving_pairs.parquet"  # written next to the explanation table


def explain(prepared_dir: Path, out_path: Path, cache_path: Path, llm: dict[str, Any] | None = None,
            variant: str = "contrastive", max_flagged: float = 0.2,
            serving_candidates: int = 0, executor: str = "local", workers: int = 1) -> dict[str, Any]:  # fmt: skip
    """Generate (or fetch from the cache) explanations for every prepared pair and for each
    user's top ``serving_candidates`` unrated candidates against their latest history (so that
    serving never waits for the LLM), then gate them. ``executor="ray"`` runs the engine as a
    Ray Data actor pool of ``workers`` (joins the cluster in ``$RAY_ADDRESS`` when set)."""
    from lr_recsys.candidates import serving_pairs
    from lr_recsys.explain.config import ExplainConfig, LLMConfig
    from lr_recsys.explain.prompts import get_domain, negative_prefix, positive_prefix
    from lr_recsys.explain.run import explain_dataset

    prepared = Prepared.load(prepared_dir)
    cfg = ExplainConfig(
        data=prepared.config, llm=LLMConfig(**(llm or {})), variant=variant,
        cache_path=cache_path, out=out_path, progress=False, executor=executor, workers=workers,
    )  # fmt: skip
    serving = serving_pairs(prepared, serving_candidates)
    table, stats = explain_dataset(cfg, prepared, extra_pairs=[p for p, _ in serving])
    pd.DataFrame(
        {schema.PAIR_KEY: [p.pair_key for p, _ in serving], schema.USER_ID: [p.user_id for p, _ in serving],
         schema.ITEM_ID: [p.item_id for p, _ in serving], schema.TIMESTAMP: [t for _, t in serving]}
    ).to_parquet(Path(out_path).parent / SERVING_PAIRS, index=False)  # fmt: skip
    movie = get_domain(cfg.domain)
    gate(
        "explanations",
        suites.explanation_frame(table),
        suites.explanations(positive_prefix(movie), negative_prefix(movie)),
    )
    flagged = stats.flagged / max(len(table), 1)
    if flagged > max_flagged:
        raise ValueError(
            f"explanations: {flagged:.1%} of pairs flagged, above the {max_flagged:.0%} limit"
        )
    return {**stats.summary(), "flagged_fraction": flagged}
