"""Feast feature store: definitions, sources, apply/materialize, historical and online reads.

Every entity, view and feature name comes from ``lr_recsys.schema`` so training (historical,
point-in-time-correct retrieval) and serving (online reads) cannot disagree. Embedded default:
parquet sources with the DuckDB offline engine and an SQLite online store. Production: Redis
online store (``online="redis"``); BigQuery offline store arrives with the BigQuery source.
"""

from __future__ import annotations

import os
import warnings
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from lr_recsys import schema

TTL = timedelta(days=3650)  # features stay valid until replaced
PAIR_COLUMNS = [schema.USER_ID, schema.ITEM_ID, schema.POS_EMB, schema.NEG_EMB, schema.POSITIVE,
                schema.NEGATIVE, schema.EXPLANATION_SOURCE, schema.PAIR_KEY]  # fmt: skip
USER_COLUMNS = [schema.USER_ID, schema.HISTORY_IDS, schema.RATED_IDS]
EXAMPLE_ROW = "example_row"  # entity-frame column of historical reads


class StoreConfig(BaseModel):
    """Where the feature store keeps its registry, sources and online values."""

    model_config = ConfigDict(extra="forbid")

    repo_dir: Path = Path("runs/feature_repo")
    project: str = "lr_recsys"
    online: Literal["sqlite", "redis"] = "sqlite"
    redis_connection: str = "127.0.0.1:6379"


# features-step artifact metadata that is not a store setting: the FeatureService's version and
# (refresh) the lineage of the LLM that explained the new pairs
ARTIFACT_KEYS = ("model_version", "llm_lineage")


def store_config(fields: dict) -> StoreConfig:
    """A ``StoreConfig`` from the features step's artifact metadata (empty values = defaults;
    ``ARTIFACT_KEYS`` are not store settings)."""
    return StoreConfig.model_validate(
        {k: v for k, v in fields.items() if v not in (None, "") and k not in ARTIFACT_KEYS}
    )


def _sources_dir(cfg: StoreConfig) -> Path:
    return cfg.repo_dir / "data"


def definitions(cfg: StoreConfig, model_versions: list[str | int] = (1,)) -> list:
    """Entities -> sources -> feature views -> one FeatureService per model version."""
    from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
    from feast.types import Array, Float32, String

    data = _sources_dir(cfg)
    user = Entity(name=schema.ENTITY_USER, join_keys=[schema.USER_ID], value_type=ValueType.STRING)
    item = Entity(name=schema.ENTITY_ITEM, join_keys=[schema.ITEM_ID], value_type=ValueType.STRING)

    def source(name: str) -> FileSource:
        return FileSource(
            name=f"{name}_source",
            path=str((data / f"{name}.parquet").resolve()),
            timestamp_field=schema.EVENT_TIMESTAMP,
        )

    pair_src, user_src, item_src = (
        source(schema.FV_PAIR),
        source(schema.FV_USER),
        source(schema.FV_ITEM),
    )
    pair = FeatureView(
        name=schema.FV_PAIR,
        entities=[user, item],
        ttl=TTL,
        schema=[
            Field(name=schema.POS_EMB, dtype=Array(Float32)),
            Field(name=schema.NEG_EMB, dtype=Array(Float32)),
            Field(name=schema.POSITIVE, dtype=String),
            Field(name=schema.NEGATIVE, dtype=String),
            Field(name=schema.EXPLANATION_SOURCE, dtype=String),  # "llm" | "distilled"
            # the (user, history, item) pair the row explains: serving uses a stored explanation
            # only while the user's current history is the one it was written for
            Field(name=schema.PAIR_KEY, dtype=String),
        ],
        source=pair_src,
    )
    history = FeatureView(
        name=schema.FV_USER, entities=[user], ttl=TTL,
        schema=[Field(name=schema.HISTORY_IDS, dtype=Array(String)),
                Field(name=schema.RATED_IDS, dtype=Array(String))], source=user_src,
    )  # fmt: skip
    profile = FeatureView(
        name=schema.FV_ITEM, entities=[item], ttl=TTL,
        schema=[Field(name=schema.ITEM_TEXT, dtype=String)], source=item_src,
    )  # fmt: skip
    services = [
        FeatureService(name=schema.feature_service_name(v), features=[pair, history, profile])
        for v in model_versions
    ]
    return [user, item, pair_src, user_src, item_src, pair, history, profile, *services]


def open_store(cfg: StoreConfig):
    """A ``FeatureStore`` over ``cfg`` (registry and online store under ``repo_dir``)."""
    os.environ.setdefault("FEAST_USAGE", "False")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="ibis.*")
    from feast import FeatureStore, RepoConfig
    from feast.infra.offline_stores.duckdb import DuckDBOfflineStoreConfig

    repo_dir = cfg.repo_dir.resolve()  # Feast resolves relative paths against repo_path
    repo_dir.mkdir(parents=True, exist_ok=True)
    if cfg.online == "redis":
        from feast.infra.online_stores.redis import RedisOnlineStoreConfig

        online = RedisOnlineStoreConfig(connection_string=cfg.redis_connection)
    else:
        from feast.infra.online_stores.sqlite import SqliteOnlineStoreConfig

        online = SqliteOnlineStoreConfig(path=str(repo_dir / "online.db"))
    repo = RepoConfig(
        project=cfg.project,
        registry=str(repo_dir / "registry.db"),
        provider="local",
        online_store=online,
        offline_store=DuckDBOfflineStoreConfig(),
        entity_key_serialization_version=3,
        repo_path=str(repo_dir),
    )
    return FeatureStore(config=repo)


def write_sources(
    cfg: StoreConfig, pairs: pd.DataFrame, histories: pd.DataFrame, items: pd.DataFrame
) -> None:
    """Write the offline sources (parquet) the views read.

    Args:
        pairs: ``user_id, item_id, event_timestamp, pos_emb, neg_emb, positive, negative,
            explanation_source, pair_key`` (texts null where the vectors were distilled).
        histories: ``user_id, event_timestamp, history_item_ids, rated_item_ids``.
        items: ``item_id, event_timestamp, item_text``.
    """
    data = _sources_dir(cfg)
    data.mkdir(parents=True, exist_ok=True)
    need = {
        schema.FV_PAIR: (pairs, PAIR_COLUMNS),
        schema.FV_USER: (histories, USER_COLUMNS),
        schema.FV_ITEM: (items, [schema.ITEM_ID, schema.ITEM_TEXT]),
    }  # fmt: skip
    for name, (frame, cols) in need.items():
        missing = [c for c in [*cols, schema.EVENT_TIMESTAMP] if c not in frame.columns]
        if missing:
            raise ValueError(f"feature source {name}: missing column(s) {missing}")
        out = frame[[*cols, schema.EVENT_TIMESTAMP]].copy()
        out[schema.EVENT_TIMESTAMP] = pd.to_datetime(out[schema.EVENT_TIMESTAMP], utc=True)
        out.to_parquet(data / f"{name}.parquet", index=False)


def apply_and_materialize(cfg: StoreConfig, end: datetime, model_versions: list[str | int] = (1,)):
    """Register the definitions and load the latest values up to ``end`` into the online store."""
    store = open_store(cfg)
    store.apply(definitions(cfg, list(model_versions)))
    store.materialize(datetime(1970, 1, 2, tzinfo=end.tzinfo), end)
    return store


def append_sources(
    cfg: StoreConfig, pairs: pd.DataFrame | None = None, histories: pd.DataFrame | None = None
) -> dict[str, int]:
    """Append rows to the pair and user sources (a refresh, the served-text step); the previous
    rows stay, so point-in-time training reads are unchanged. Returns the rows appended per view.

    Raises:
        ValueError: a frame lacks a column, or the sources were never written (run the features
            step first).
    """
    data = _sources_dir(cfg)
    out = {}
    for name, frame, cols in ((schema.FV_PAIR, pairs, PAIR_COLUMNS), (schema.FV_USER, histories, USER_COLUMNS)):  # fmt: skip
        if frame is None or frame.empty:
            out[name] = 0
            continue
        path = data / f"{name}.parquet"
        if not path.exists():
            raise ValueError(f"feature source {path} does not exist: run the features step first")
        missing = [c for c in [*cols, schema.EVENT_TIMESTAMP] if c not in frame.columns]
        if missing:
            raise ValueError(f"feature source {name}: missing column(s) {missing}")
        new = frame[[*cols, schema.EVENT_TIMESTAMP]].copy()
        new[schema.EVENT_TIMESTAMP] = pd.to_datetime(new[schema.EVENT_TIMESTAMP], utc=True)
        old = pd.read_parquet(path)
        both = pd.concat([old, new], ignore_index=True)
        tmp = path.with_suffix(".parquet.tmp")
        both.to_parquet(tmp, index=False)
        tmp.replace(path)  # atomic: a reader never sees half a file
        out[name] = len(new)
    return out


def pair_source(cfg: StoreConfig, columns: list[str] | None = None) -> pd.DataFrame:
    """The pair view's offline source (every row ever written; empty when none was)."""
    path = _sources_dir(cfg) / f"{schema.FV_PAIR}.parquet"
    if not path.exists():
        return pd.DataFrame(columns=columns or [*PAIR_COLUMNS, schema.EVENT_TIMESTAMP])
    return pd.read_parquet(path, columns=columns)


def materialize_incremental(cfg: StoreConfig, end: datetime | None = None) -> None:
    """Load rows newer than each view's last materialisation (up to ``end``, default now) into
    the online store: Feast's ``materialize_incremental``; a running service reads them at once.
    """
    from datetime import UTC

    store = open_store(cfg)
    store.materialize_incremental(end or datetime.now(UTC))


STATE = "state.json"  # the data watermark: the latest interaction the store's features cover


def write_state(cfg: StoreConfig, watermark: int) -> None:
    """Record that the store's features cover interactions up to ``watermark`` (Unix time)."""
    import json

    path = cfg.repo_dir / STATE
    path.parent.mkdir(parents=True, exist_ok=True)
    now = datetime.now().astimezone().isoformat(timespec="seconds")
    path.write_text(json.dumps({"watermark": int(watermark), "updated": now}))


def read_watermark(cfg: StoreConfig) -> int:
    """The latest interaction time the store's features cover (a refresh takes later ones).

    Raises:
        FileNotFoundError: the store was never written by the features step.
    """
    import json

    path = cfg.repo_dir / STATE
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: run the training pipeline (its features step) on this store "
            "before a refresh, or give the refresh an explicit since"
        )
    return int(json.loads(path.read_text())["watermark"])


def add_feature_service(cfg: StoreConfig, model_version: str | int) -> str:
    """Register the FeatureService of ``model_version`` (same views); returns its name."""
    store = open_store(cfg)
    store.apply(definitions(cfg, [model_version]))
    return schema.feature_service_name(model_version)


def historical(store, entity_df: pd.DataFrame, model_version: str | int = 1) -> pd.DataFrame:
    """Point-in-time-correct features for training rows (``user_id, item_id, event_timestamp``)."""
    service = store.get_feature_service(schema.feature_service_name(model_version))
    return store.get_historical_features(entity_df=entity_df, features=service).to_df()


def online(store, rows: list[dict[str, str]], model_version: str | int = 1) -> pd.DataFrame:
    """Latest feature values for serving rows (``{"user_id": .., "item_id": ..}``)."""
    service = store.get_feature_service(schema.feature_service_name(model_version))
    return pd.DataFrame(store.get_online_features(features=service, entity_rows=rows).to_dict())


def training_vectors(store, examples: pd.DataFrame, model_version: str | int = 1) -> pd.DataFrame:
    """Explanation embeddings for training examples through point-in-time historical retrieval.

    Each example asks for the pair's features as of its own rating time, so a later
    re-explanation of the same pair can never leak into training.

    Args:
        store: An open ``FeatureStore`` whose pair view holds the examples' pairs.
        examples: Rows of ``Prepared.examples`` (``pair_key, user_id, item_id, timestamp``).
        model_version: Which versioned ``FeatureService`` to read.

    Returns:
        ``pos_emb`` and ``neg_emb`` arrays (float32, ``(N, D)`` each), ``explanation_source``
        (``llm`` | ``distilled``) and the ``positive``/``negative`` texts indexed by ``pair_key``,
        in the order of ``examples``.

    Raises:
        ValueError: when a pair has no embedding at or before its example's timestamp.
    """
    entity = pd.DataFrame({
        schema.USER_ID: examples[schema.USER_ID].astype(str).to_numpy(),
        schema.ITEM_ID: examples[schema.ITEM_ID].astype(str).to_numpy(),
        schema.EVENT_TIMESTAMP: pd.to_datetime(examples[schema.TIMESTAMP].to_numpy(), unit="s", utc=True),
        EXAMPLE_ROW: np.arange(len(examples)),  # not pair_key: the view has a feature of that name
    })  # fmt: skip
    got = (
        historical(store, entity, model_version).set_index(EXAMPLE_ROW).reindex(entity[EXAMPLE_ROW])
    )
    got.index = pd.Index(examples[schema.PAIR_KEY].to_numpy(), name=schema.PAIR_KEY)
    missing = got[schema.POS_EMB].isna() | got[schema.NEG_EMB].isna()
    if missing.any():
        sample = entity.loc[missing.to_numpy(), [schema.USER_ID, schema.ITEM_ID]].head(5)
        raise ValueError(
            f"feature store: {int(missing.sum())} of {len(entity)} training pairs have no "
            f"explanation embedding in {schema.FV_PAIR!r} at their rating time, e.g. "
            f"{sample.to_dict('records')}; run the features step on the same explanations first"
        )
    return pd.DataFrame(
        {
            schema.POS_EMB: list(np.stack(got[schema.POS_EMB].to_numpy()).astype(np.float32)),
            schema.NEG_EMB: list(np.stack(got[schema.NEG_EMB].to_numpy()).astype(np.float32)),
            schema.EXPLANATION_SOURCE: got[schema.EXPLANATION_SOURCE].to_numpy(),
            # the LLM's texts where it explained the pair (empty for distilled rows): the
            # report's per-item insights read them
            **{c: got[c].to_numpy() for c in (schema.POSITIVE, schema.NEGATIVE) if c in got},
        },
        index=got.index,
    )
