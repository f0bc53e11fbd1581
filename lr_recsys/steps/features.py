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
from lr_recsys.steps.data import SERVING_PAIRS
from lr_recsys.validate import gate, suites

EMBEDDINGS = "embeddings.parquet"
STANDARDISE = "standardise.json"


def encode(
    prepared_dir: Path, explanations_path: Path, encoder_dir: Path, embeddings_dir: Path,
    ae_epochs: int = 100,
) -> dict[str, Any]:  # fmt: skip
    """Fit the AutoEncoder on the training split's explanations (positive and negative), embed
    every pair (rated examples and serving candidates), standardise with training-split
    statistics, gate the embeddings and write ``encoder_dir`` (AE + ``standardise.json``) and
    ``embeddings_dir/embeddings.parquet``."""
    from lr_recsys.encoder import ExplanationEncoder
    from lr_recsys.explain.table import attach_explanations, load_explanations
    from lr_recsys.train.experiment import standardiser

    prepared = Prepared.load(prepared_dir)
    table = load_explanations(explanations_path)
    ex = attach_explanations(prepared.examples, table)
    train = ex[ex[schema.SPLIT] == schema.SPLIT_TRAIN]
    encoder, ae_metrics = ExplanationEncoder.fit(
        train[schema.POSITIVE].tolist() + train[schema.NEGATIVE].tolist(),
        AEConfig(epochs=ae_epochs, progress=False),
    )
    serving_path = Path(explanations_path).parent / SERVING_PAIRS
    if serving_path.exists():  # serving candidates: valid from just after the user's last rating
        serving = pd.read_parquet(serving_path).merge(table, on=schema.PAIR_KEY, how="inner")
        ex = pd.concat([ex, serving], ignore_index=True)
    pos = encoder.encode(ex[schema.POSITIVE].tolist())  # (N, 8)
    neg = encoder.encode(ex[schema.NEGATIVE].tolist())
    is_train = (ex[schema.SPLIT] == schema.SPLIT_TRAIN).to_numpy()
    mean, std = standardiser(pos[is_train], neg[is_train])
    pos, neg = ((pos - mean) / std).astype(np.float32), ((neg - mean) / std).astype(np.float32)
    train_vectors = np.concatenate([pos[is_train], neg[is_train]])
    gate("embeddings", suites.embedding_frame(train_vectors), suites.embeddings(pos.shape[1]))
    encoder_dir, embeddings_dir = Path(encoder_dir), Path(embeddings_dir)
    encoder.save(encoder_dir)
    (encoder_dir / STANDARDISE).write_text(json.dumps({"mean": mean.tolist(), "std": std.tolist()}))
    embeddings_dir.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({
        schema.PAIR_KEY: ex[schema.PAIR_KEY], schema.USER_ID: ex[schema.USER_ID].astype(str),
        schema.ITEM_ID: ex[schema.ITEM_ID].astype(str),
        schema.EVENT_TIMESTAMP: pd.to_datetime(ex[schema.TIMESTAMP], unit="s", utc=True),
        schema.POS_EMB: list(pos), schema.NEG_EMB: list(neg),
        schema.POSITIVE: ex[schema.POSITIVE], schema.NEGATIVE: ex[schema.NEGATIVE],
    }).to_parquet(embeddings_dir / EMBEDDINGS, index=False)  # fmt: skip
    return {"pairs": len(ex), "dim": int(pos.shape[1]), **ae_metrics}


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
    from lr_recsys.feature_store import StoreConfig, apply_and_materialize, write_sources

    prepared = Prepared.load(prepared_dir)
    pairs = pd.read_parquet(Path(embeddings_dir) / EMBEDDINGS)
    when = pairs[schema.EVENT_TIMESTAMP]
    latest = latest_histories(prepared)  # from the rated examples only
    rated = rated_items(prepared)
    histories = pd.DataFrame({
        schema.USER_ID: list(latest),
        schema.EVENT_TIMESTAMP: pd.to_datetime([ts for _, ts in latest.values()], unit="s", utc=True),
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
    apply_and_materialize(cfg, when.max().to_pydatetime() + pd.Timedelta(days=1), [model_version])
    return {
        "pairs": len(pairs),
        "users": len(histories),
        "items": len(items),
        "model_version": model_version,
    }
