"""Data steps: ingest (+ interactions gate) and explanations (+ explanations gate)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from lr_recsys import schema
from lr_recsys.config import BigQuerySource, DataConfig, load_data_config
from lr_recsys.data import Prepared, load_tables, prepare
from lr_recsys.data.paths import local_path
from lr_recsys.validate import gate, suites

log = logging.getLogger(__name__)


def ingest_config(
    config_path: str = "", *, dataset: str = "ml-100k", data_dir: str = "data",
    max_users: int = 0, max_per_user: int = 0, bigquery_table: str = "", until: int = 0,
    interactions_path: str = "", items_path: str = "", users_path: str = "",
    rating_min: float = 1.0, rating_max: float = 5.0, high_rating: float = 4.0,
    on_duplicate: str = "error", environ: dict[str, str] | None = None,
) -> DataConfig:  # fmt: skip
    """The ingest step's data settings from the pipeline's parameters, with the CLI's meaning:
    the ``[data]`` table of ``config_path`` (TOML/JSON; "" = none) < ``LR_RECSYS__DATA__*``
    variables < parameters. A parameter left empty (``""``, 0) or at ``DataConfig``'s default
    keeps the value below it. Paths may be ``gs://bucket/object`` (read at Vertex's ``/gcs``
    mount). ``interactions_path`` makes the dataset ``generic`` and ``bigquery_table``
    (``project.dataset.table``) ``bigquery``.
    """
    defaults = {k: f.default for k, f in DataConfig.model_fields.items()}
    params: dict[str, Any] = {
        "dataset": dataset, "data_dir": Path(data_dir), "rating_min": rating_min,
        "rating_max": rating_max, "high_rating": high_rating, "on_duplicate": on_duplicate,
    }  # fmt: skip
    cli = {k: v for k, v in params.items() if v not in (defaults[k], "", Path(""))}
    cli.update({k: v for k, v in (("max_users", max_users), ("max_per_user", max_per_user),
                                  ("until", until)) if v})  # fmt: skip
    for key, uri in (
        ("interactions", interactions_path),
        ("items", items_path),
        ("users", users_path),
    ):
        if uri.strip():
            cli[key] = local_path(uri)
    if interactions_path.strip():
        cli["dataset"] = "generic"
    if bigquery_table.strip():
        cli["dataset"] = "bigquery"
        src = BigQuerySource.from_ref(bigquery_table.strip())  # the file may map its columns
        cli["bigquery"] = {"project": src.project, "dataset": src.dataset, "table": src.table}
    path = local_path(config_path) if config_path.strip() else None
    return load_data_config(path, cli, environ)


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
            variant: str = "attributes", max_flagged: float = 0.2,
            serving_candidates: int = 0, executor: str = "local", workers: int = 1,
            llm_pairs: int | None = None, budget_seed: int = 0,
            budget_policy: str = "even", tuned_config: str = "") -> dict[str, Any]:  # fmt: skip
    """Generate (or fetch from the cache) explanations for the ``llm_pairs`` prepared pairs the
    budget policy selects (all when None), then gate them and measure their quality. Policy
    ``uncertainty`` first trains the no-explanation twin (``tuned_config``'s settings; "" = the
    defaults) on the training split and writes its per-pair scores beside the table. Each user's
    top ``serving_candidates`` unrated candidates against their latest history are listed next
    to the table (``serving_pairs.parquet``); the distill step gives them their vectors.
    ``executor="ray"`` runs the engine as a Ray Data actor pool of ``workers`` (joins the cluster
    in ``$RAY_ADDRESS`` when set)."""
    from lr_recsys.candidates import serving_pairs
    from lr_recsys.config import UncertaintyConfig
    from lr_recsys.explain.config import ExplainConfig, LLMConfig
    from lr_recsys.explain.prompts import get_domain, negative_prefix, positive_prefix
    from lr_recsys.explain.quality import text_quality
    from lr_recsys.explain.run import explain_dataset

    prepared = Prepared.load(prepared_dir)
    cfg = ExplainConfig(
        data=prepared.config, llm=LLMConfig(**(llm or {})), variant=variant,
        cache_path=cache_path, out=out_path, progress=False, executor=executor, workers=workers,
        llm_pairs=llm_pairs, budget_seed=budget_seed, budget_policy=budget_policy,
        uncertainty=UncertaintyConfig(tuned_config=local_path(tuned_config) if tuned_config else None),
    )  # fmt: skip
    serving = serving_pairs(prepared, serving_candidates)
    table, stats = explain_dataset(cfg, prepared)
    pd.DataFrame(
        {schema.PAIR_KEY: [p.pair_key for p, _ in serving], schema.USER_ID: [p.user_id for p, _ in serving],
         schema.ITEM_ID: [p.item_id for p, _ in serving], schema.HISTORY: [_padded(p.history, prepared.config.history_len) for p, _ in serving],
         schema.TIMESTAMP: [t for _, t in serving]}
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
    quality = text_quality(table, prepared, variant=variant, domain=cfg.domain)
    (Path(out_path).parent / QUALITY).write_text(json.dumps(quality, indent=2, default=str))
    from lr_recsys.lineage import LINEAGE, llm_lineage

    lineage = llm_lineage(cfg.llm, variant, cfg.domain) | {"budget": {
        "llm_pairs": "all" if llm_pairs is None else llm_pairs, "policy": budget_policy,
        "seed": budget_seed, "explained": len(table), "all_pairs": len(prepared.examples),
    }}  # fmt: skip
    (Path(out_path).parent / LINEAGE).write_text(json.dumps(lineage, indent=2))
    flat = {f"{side}_{k}": v for side in (schema.POSITIVE, schema.NEGATIVE)
            for k, v in quality.get(side, {}).items() if isinstance(v, int | float)}  # fmt: skip
    return {**stats.summary(), "flagged_fraction": flagged, "llm_pairs": len(table),
            "all_pairs": len(prepared.examples), **flat}  # fmt: skip


QUALITY = "quality.json"  # the explanation-quality report, next to the table


def _padded(history: tuple[str, ...], length: int) -> list[str]:
    return [schema.PAD_ITEM] * (length - len(history)) + list(history)
