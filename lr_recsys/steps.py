"""Pipeline steps: each composes the core modules into one unit of work with file inputs and
outputs, so a KFP component (or any orchestrator) is a thin call into exactly one function here.

ingest (+ interactions gate) -> explain (+ explanations gate) -> train and evaluate (+ embeddings
and predictions gates) -> register (MLflow challenger) -> promote (champion if better).
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lr_recsys import schema
from lr_recsys.config import AEConfig, DataConfig, ModelConfig, TrainConfig
from lr_recsys.data import Prepared, load_tables, prepare
from lr_recsys.models.io import load_model, save_model
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
            serving_candidates: int = 0) -> dict[str, Any]:  # fmt: skip
    """Generate (or fetch from the cache) explanations for every prepared pair and for each
    user's top ``serving_candidates`` unrated candidates against their latest history (so that
    serving never waits for the LLM), then gate them."""
    from lr_recsys.candidates import serving_pairs
    from lr_recsys.explain.config import ExplainConfig, LLMConfig
    from lr_recsys.explain.prompts import get_domain, negative_prefix, positive_prefix
    from lr_recsys.explain.run import explain_dataset

    prepared = Prepared.load(prepared_dir)
    cfg = ExplainConfig(
        data=prepared.config, llm=LLMConfig(**(llm or {})), variant=variant,
        cache_path=cache_path, out=out_path, progress=False,
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


def train_evaluate(
    prepared_dir: Path,
    explanations_path: Path | None,
    out_dir: Path,
    model_name: str = "lr-recsys",
    task: str = schema.REGRESSION,
    seeds: list[int] = (0,),
    epochs: int = 100,
    ae_epochs: int = 100,
) -> dict[str, Any]:
    """Train ``model_name`` for each seed, gate embeddings and predictions, save the best-seed
    model (safetensors), the AutoEncoder and the evaluation table; return mean test metrics."""
    from lr_recsys.evaluate import predict_all, primary_metric
    from lr_recsys.explain.table import load_explanations
    from lr_recsys.models import explanation_source
    from lr_recsys.train.experiment import build_experiment_data, run_model

    prepared = Prepared.load(prepared_dir)
    source = explanation_source(model_name)
    table = load_explanations(explanations_path) if explanations_path is not None else None
    data = build_experiment_data(
        prepared, {source}, table, AEConfig(epochs=ae_epochs, progress=False)
    )
    splits = data.splits[source]
    if source is not None:
        train = splits[schema.SPLIT_TRAIN]
        vectors = np.concatenate([train.pos.numpy(), train.neg.numpy()])
        gate("embeddings", suites.embedding_frame(vectors), suites.embeddings(vectors.shape[1]))
    runs = [
        run_model(
            model_name,
            task,
            data,
            ModelConfig(),
            replace(TrainConfig(epochs=epochs, progress=False), seed=s),
        )
        for s in seeds
    ]
    metric, higher = primary_metric(task)
    best = max(runs, key=lambda r: r.test[metric] if higher else -r.test[metric])
    test = splits[schema.SPLIT_TEST]
    pred = predict_all(best.model, test)
    gate("predictions", pd.DataFrame({"prediction": pred}), suites.predictions())
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_model(best.model, model_name, task, out_dir)
    if "ae" in data.encoders:
        data.encoders["ae"].save(out_dir / "autoencoder")
        mean, std = data.standardisers["ae"]
        (out_dir / "autoencoder" / "standardise.json").write_text(
            json.dumps({"mean": mean.tolist(), "std": std.tolist()})
        )
    ex = prepared.split(schema.SPLIT_TEST)
    pd.DataFrame({schema.PAIR_KEY: ex[schema.PAIR_KEY].to_numpy(), "prediction": pred,
                  schema.TARGET: ex[schema.TARGET].to_numpy(), schema.LABEL: ex[schema.LABEL].to_numpy()}
                 ).to_csv(out_dir / "evaluation.csv", index=False)  # fmt: skip
    per_seed = {k: [r.test[k] for r in runs] for k in runs[0].test}
    summary = {
        "model": model_name, "task": task, "seeds": list(seeds), "per_seed": per_seed,
        "mean": {k: float(np.mean(v)) for k, v in per_seed.items()}, "gates_passed": True,
        "test_pair_keys": ex[schema.PAIR_KEY].tolist(), "best_seed": best.seed,
    }  # fmt: skip
    (out_dir / "summary.json").write_text(json.dumps(summary))
    return {k: v for k, v in summary.items() if k != "test_pair_keys"}


def register_features(
    prepared_dir: Path,
    explanations_path: Path,
    train_dir: Path,
    repo_dir: Path,
    model_version: int = 1,
) -> dict[str, Any]:
    """Encode every pair's explanations with the trained AutoEncoder (standardised exactly as in
    training), write the Feast sources (pair embeddings + texts, latest user histories, item
    texts) and apply + materialize them to the online store."""
    from lr_recsys.candidates import latest_histories
    from lr_recsys.encoder import ExplanationEncoder
    from lr_recsys.explain.table import attach_explanations, load_explanations
    from lr_recsys.feature_store import StoreConfig, apply_and_materialize, write_sources

    prepared = Prepared.load(prepared_dir)
    ae_dir = Path(train_dir) / "autoencoder"
    encoder = ExplanationEncoder.load(ae_dir)
    stats = json.loads((ae_dir / "standardise.json").read_text())
    mean, std = np.asarray(stats["mean"]), np.asarray(stats["std"])
    table = load_explanations(explanations_path)
    ex = attach_explanations(prepared.examples, table)
    serving_path = Path(explanations_path).parent / SERVING_PAIRS
    if serving_path.exists():  # serving candidates: valid from just after the user's last rating
        serving = pd.read_parquet(serving_path).merge(table, on=schema.PAIR_KEY, how="inner")
        ex = pd.concat([ex, serving], ignore_index=True)

    def vec(texts: list[str]) -> list[list[float]]:
        return [list(v) for v in ((encoder.encode(texts) - mean) / std).astype(np.float32)]

    when = pd.to_datetime(ex[schema.TIMESTAMP], unit="s", utc=True)
    pairs = pd.DataFrame({
        schema.USER_ID: ex[schema.USER_ID], schema.ITEM_ID: ex[schema.ITEM_ID], schema.EVENT_TIMESTAMP: when,
        schema.POS_EMB: vec(ex[schema.POSITIVE].tolist()), schema.NEG_EMB: vec(ex[schema.NEGATIVE].tolist()),
        schema.POSITIVE: ex[schema.POSITIVE], schema.NEGATIVE: ex[schema.NEGATIVE],
    })  # fmt: skip
    latest = latest_histories(prepared)  # from the rated examples only
    histories = pd.DataFrame({
        schema.USER_ID: list(latest),
        schema.EVENT_TIMESTAMP: pd.to_datetime([ts for _, ts in latest.values()], unit="s", utc=True),
        schema.HISTORY_IDS: [items for items, _ in latest.values()],
    })  # fmt: skip
    start = when.min()
    items = pd.DataFrame({
        schema.ITEM_ID: prepared.items[schema.ITEM_ID], schema.EVENT_TIMESTAMP: start,
        schema.ITEM_TEXT: prepared.items[schema.ITEM_TEXT],
    })  # fmt: skip
    cfg = StoreConfig(repo_dir=Path(repo_dir))
    write_sources(cfg, pairs, histories, items)
    apply_and_materialize(cfg, when.max().to_pydatetime() + pd.Timedelta(days=1), [model_version])
    return {"pairs": len(pairs), "users": len(histories), "items": len(items)}


def register_and_promote(
    train_dir: Path, prepared_dir: Path, tracking_uri: str, margin: float = 0.0
) -> dict[str, Any]:
    """Register the trained model as challenger and try to promote it to champion."""
    from lr_recsys.registry import PromotionRefused, RegistryConfig, promote, register_model

    train_dir = Path(train_dir)
    summary = json.loads((train_dir / "summary.json").read_text())
    cfg = RegistryConfig(tracking_uri=tracking_uri)
    model, _ = load_model(train_dir)
    ae_dir = train_dir / "autoencoder"
    version = register_model(
        cfg, model, summary["model"], summary["task"], summary["per_seed"], summary["test_pair_keys"],
        summary["gates_passed"], params={"seeds": summary["seeds"]},
        encoder_dir=ae_dir if ae_dir.exists() else None,
        eval_table=pd.read_csv(train_dir / "evaluation.csv"),
    )  # fmt: skip
    try:
        decision = promote(cfg, margin)
        return {"version": version, "promoted": True, "reason": decision.reason}
    except PromotionRefused as exc:
        return {"version": version, "promoted": False, "reason": str(exc)}
