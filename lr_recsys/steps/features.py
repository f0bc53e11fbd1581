"""Feature steps: the text AutoEncoder (Sec. 4.2) embeds every pair's explanations, and the
embeddings, user histories and item texts are registered in Feast (apply + materialize)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lr_recsys import schema
from lr_recsys.config import AEConfig
from lr_recsys.data import Prepared
from lr_recsys.validate import gate, suites

EMBEDDINGS = "embeddings.parquet"
STANDARDISE = "standardise.json"


def encode(
    prepared_dir: Path, explanations_path: Path, encoder_dir: Path, embeddings_dir: Path,
    ae_epochs: int = 100,
) -> dict[str, Any]:  # fmt: skip
    """Fit the AutoEncoder on the training split's LLM explanations (positive and negative),
    embed every LLM-explained pair, standardise with training-split statistics, gate the
    embeddings and write ``encoder_dir`` (AE + ``standardise.json``) and
    ``embeddings_dir/embeddings.parquet`` (LLM pairs only; the distill step adds the rest)."""
    from lr_recsys.explain.table import load_explanations
    from lr_recsys.train.experiment import fit_ae_vectors

    prepared = Prepared.load(prepared_dir)
    table = load_explanations(explanations_path)
    frames = {s: prepared.split(s) for s in schema.SPLITS}
    encoder, ae_metrics, vectors, (mean, std) = fit_ae_vectors(
        frames, table, AEConfig(epochs=ae_epochs, progress=False)
    )
    ex = prepared.examples[prepared.examples[schema.PAIR_KEY].isin(vectors.index)]
    ex = ex.drop_duplicates(schema.PAIR_KEY).merge(table, on=schema.PAIR_KEY, how="left")
    rows = vectors.loc[ex[schema.PAIR_KEY].to_numpy()]
    pos = np.stack(rows[schema.POS_EMB].to_numpy())
    neg = np.stack(rows[schema.NEG_EMB].to_numpy())
    is_train = (ex[schema.SPLIT] == schema.SPLIT_TRAIN).to_numpy()
    train_vectors = np.concatenate([pos[is_train], neg[is_train]])
    gate("embeddings", suites.embedding_frame(train_vectors), suites.embeddings(pos.shape[1]))
    encoder_dir, embeddings_dir = Path(encoder_dir), Path(embeddings_dir)
    encoder.save(encoder_dir)
    (encoder_dir / STANDARDISE).write_text(json.dumps({"mean": mean.tolist(), "std": std.tolist()}))
    embeddings_dir.mkdir(parents=True, exist_ok=True)
    pair_frame(ex, pos, neg, ex[schema.POSITIVE], ex[schema.NEGATIVE], LLM_SOURCE).to_parquet(
        embeddings_dir / EMBEDDINGS, index=False
    )
    return {"llm_pairs": len(ex), "dim": int(pos.shape[1]), **ae_metrics}


LLM_SOURCE = "llm"


def pair_frame(ex: pd.DataFrame, pos: np.ndarray, neg: np.ndarray, positive, negative,
               source) -> pd.DataFrame:  # fmt: skip
    """The pair feature table the feature store reads (one row per example / serving pair)."""
    return pd.DataFrame({
        schema.PAIR_KEY: ex[schema.PAIR_KEY].to_numpy(), schema.USER_ID: ex[schema.USER_ID].astype(str).to_numpy(),
        schema.ITEM_ID: ex[schema.ITEM_ID].astype(str).to_numpy(),
        schema.EVENT_TIMESTAMP: pd.to_datetime(ex[schema.TIMESTAMP].to_numpy(), unit="s", utc=True),
        schema.HISTORY: list(ex[schema.HISTORY]),
        schema.POS_EMB: list(np.asarray(pos, dtype=np.float32)), schema.NEG_EMB: list(np.asarray(neg, dtype=np.float32)),
        schema.POSITIVE: list(positive), schema.NEGATIVE: list(negative),
        schema.EXPLANATION_SOURCE: source if isinstance(source, str) else list(source),
    })  # fmt: skip


def register_features(
    prepared_dir: Path, embeddings_dir: Path, repo_dir: Path, model_version: int | None = None,
    online: str = "sqlite", redis_connection: str | None = None, tracking_uri: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Write the Feast sources (pair embeddings + texts, latest user histories, item texts) and
    apply + materialize them to the online store (``online="redis"``: the production profile).

    The FeatureService is named for the model version this run will register (the registry's
    next version when ``tracking_uri`` is given, else ``model_version`` or 1); the register step
    re-applies it under the version actually assigned, should another run have registered first.
    """
    if model_version is None:
        from lr_recsys.registry import RegistryConfig, next_version

        model_version = (
            next_version(RegistryConfig(tracking_uri=tracking_uri)) if tracking_uri else 1
        )
    from lr_recsys.candidates import latest_histories, rated_items
    from lr_recsys.feature_store import (
        StoreConfig,
        apply_and_materialize,
        write_sources,
        write_state,
    )

    prepared = Prepared.load(prepared_dir)
    pairs = pd.read_parquet(Path(embeddings_dir) / EMBEDDINGS)
    when = pairs[schema.EVENT_TIMESTAMP]
    latest = latest_histories(prepared)  # from the rated examples only
    rated = rated_items(prepared)
    # the serving views are valid from when they were computed (processing time): a refresh
    # appends newer rows and Feast's materialize_incremental picks up exactly those
    now = pd.Timestamp.now(tz="UTC").floor("s")
    histories = pd.DataFrame({
        schema.USER_ID: list(latest),
        schema.EVENT_TIMESTAMP: now,
        schema.HISTORY_IDS: [items for items, _ in latest.values()],
        schema.RATED_IDS: [sorted(rated.get(u, ())) for u in latest],
    })  # fmt: skip
    items = pd.DataFrame({
        schema.ITEM_ID: prepared.items[schema.ITEM_ID], schema.EVENT_TIMESTAMP: when.min(),
        schema.ITEM_TEXT: prepared.items[schema.ITEM_TEXT],
    })  # fmt: skip
    extra = {"redis_connection": redis_connection} if redis_connection else {}
    cfg = StoreConfig(repo_dir=Path(repo_dir), online=online, **extra)
    write_sources(cfg, pairs, histories, items)
    end = max(when.max(), now) + pd.Timedelta(seconds=1)
    apply_and_materialize(cfg, end.to_pydatetime(), [model_version])
    write_state(cfg, int(prepared.examples[schema.TIMESTAMP].max()))  # where a refresh starts
    return {
        "pairs": len(pairs),
        "users": len(histories),
        "items": len(items),
        "model_version": model_version,
    }
