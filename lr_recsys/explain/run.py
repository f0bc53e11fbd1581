"""``lr-recsys explain``: explanations for a dataset's pairs, through the cache and a runner."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from lr_recsys import schema
from lr_recsys.data import Prepared, load_prepared
from lr_recsys.explain.backends import Decoding
from lr_recsys.explain.budget import needs_scores, select_budget
from lr_recsys.explain.cache import GenerationCache
from lr_recsys.explain.config import ExplainConfig
from lr_recsys.explain.engine import (
    ExplainStats,
    ExplanationEngine,
    Pair,
    model_id_for,
    pairs_from_examples,
)
from lr_recsys.explain.prompts import ItemAttributes, get_domain, get_variant, item_attributes
from lr_recsys.explain.runners import LocalRunner, RayRunner

log = logging.getLogger(__name__)


def decoding_for(cfg: ExplainConfig) -> Decoding:
    return Decoding(
        max_tokens=cfg.llm.max_tokens, temperature=cfg.llm.temperature, seed=cfg.llm.seed
    )


def catalogue(items: pd.DataFrame) -> tuple[dict[str, str], dict[str, ItemAttributes]]:
    """What the prompts read per item: its text and its attributes (title + categories; a
    catalogue without categories gives none)."""
    ids = items[schema.ITEM_ID].astype(str)
    cats = (
        items[schema.CATEGORIES].fillna("").astype(str)
        if schema.CATEGORIES in items.columns
        else pd.Series("", index=items.index)
    )
    texts = dict(zip(ids, items[schema.ITEM_TEXT], strict=True))
    attrs = {
        i: item_attributes(str(t), c)
        for i, t, c in zip(ids, items[schema.TITLE], cats, strict=True)
    }
    return texts, attrs


def build_engine(
    cfg: ExplainConfig, prepared: Prepared, cache: GenerationCache
) -> ExplanationEngine:
    """An engine over ``prepared``'s catalogue with the runner ``cfg.executor`` names."""
    if cfg.executor == "ray":
        runner = RayRunner(
            cfg.llm,
            cfg.workers,
            cfg.ray_address,
            temp_dir=Path(tempfile.gettempdir()) / "lr_recsys_ray",
        )
    else:
        if cfg.workers != 1:
            log.warning(
                "executor 'local' runs one worker; use --executor ray for %d workers", cfg.workers
            )
        runner = LocalRunner(cfg.llm)
    texts, attrs = catalogue(prepared.items)
    return ExplanationEngine(
        runner,
        cache,
        model_id_for(cfg.llm),
        texts,
        get_domain(cfg.domain, **cfg.domain_overrides),
        get_variant(cfg.variant),
        decoding_for(cfg),
        cfg.batch_size,
        cfg.progress,
        attrs,
    )


def scores_path(out: Path) -> Path:
    """Where the ``uncertainty`` policy's scores are written beside the table ``out``."""
    return Path(out).with_name(f"{Path(out).stem}.uncertainty.parquet")


def routing_scores(cfg: ExplainConfig, prepared: Prepared) -> pd.Series:
    """The ``uncertainty`` policy's per-pair scores: read from ``cfg.uncertainty.scores`` when
    that file exists, else a fresh first pass, written beside ``cfg.out``."""
    from lr_recsys.explain.uncertainty import budget_scores, save_scores

    scores, info = budget_scores(prepared, cfg.uncertainty)
    if cfg.uncertainty.scores is None:
        save_scores(scores, scores_path(cfg.out))
    log.info("explain: uncertainty scores %s", info)
    return scores


def explain_pairs(
    cfg: ExplainConfig, prepared: Prepared, pairs: Sequence[Pair]
) -> tuple[pd.DataFrame, ExplainStats]:
    """Explain ``pairs`` with an engine over ``prepared``'s catalogue and the LLM cache (opened
    and closed here); returns the table and the run's statistics."""
    cache = GenerationCache(cfg.cache_path)
    engine = build_engine(cfg, prepared, cache)
    try:
        table = engine.explain(pairs)
    finally:
        engine.runner.close()
        cache.close()
    return table, engine.stats


def explain_dataset(
    cfg: ExplainConfig, prepared: Prepared | None = None, extra_pairs: Sequence[Pair] = ()
) -> tuple[pd.DataFrame, ExplainStats]:
    """Explain the first ``cfg.max_pairs`` pairs (in user/time order) of the dataset, or the
    ``cfg.llm_pairs`` the budget policy selects (``lr_recsys.explain.budget``), and write the
    table to ``cfg.out``; returns it with the run's statistics. ``extra_pairs`` (e.g. serving
    candidates) are explained in the same run."""
    prepared = prepared if prepared is not None else load_prepared(cfg.data)
    examples = prepared.examples
    if cfg.max_pairs is not None:
        if cfg.max_pairs < 1:
            raise ValueError(f"max_pairs must be at least 1, got {cfg.max_pairs}")
        examples = examples.head(cfg.max_pairs)
    scores = None
    if needs_scores(cfg.budget_policy) and cfg.llm_pairs is not None:
        scores = routing_scores(cfg, prepared)
    examples = select_budget(examples, cfg.llm_pairs, cfg.budget_seed, cfg.budget_policy, scores)
    pairs = pairs_from_examples(examples) + list(extra_pairs)
    table, stats = explain_pairs(cfg, prepared, pairs)
    cfg.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(cfg.out, index=False, compression="zstd")
    log.info("explain: %s -> %s", stats.summary(), cfg.out)
    return table, stats
