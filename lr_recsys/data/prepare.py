"""Example preparation exactly as the paper's Sec. 5.1.

Per interaction: the consumer's previous ``history_len`` items (left-padded), a user-temporal
split (per user the earliest 80% train, the latest 20% test; validation = the latest slice of each
user's training part), the regression target (rating scaled to [0, 1]) and the classification
label (rating >= 4). Histories only ever look backwards in each user's time-ordered sequence, so no
future item can leak into an example.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lr_recsys import schema
from lr_recsys.config import DataConfig
from lr_recsys.data.errors import DataError
from lr_recsys.data.tables import RawTables, readable_categories

log = logging.getLogger(__name__)

TRAIN_FRACTIONS = (0.12, 0.25, 0.5, 1.0)  # the paper's learning-efficiency study


@dataclass
class Prepared:
    """Prepared examples plus the catalogue they refer to."""

    examples: pd.DataFrame  # one row per interaction, see schema for columns
    items: pd.DataFrame
    users: pd.DataFrame | None
    name: str
    config: DataConfig

    def split(self, name: str) -> pd.DataFrame:
        """Examples of one split (``train``, ``val`` or ``test``)."""
        return self.examples[self.examples[schema.SPLIT] == name]

    def save(self, directory: Path) -> None:
        """Write examples, items, users (parquet) and the config (JSON): a pipeline artifact."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.examples.to_parquet(directory / "examples.parquet", index=False)
        self.items.to_parquet(directory / "items.parquet", index=False)
        if self.users is not None:
            self.users.to_parquet(directory / "users.parquet", index=False)
        meta = {"name": self.name, "config": self.config.model_dump(mode="json")}
        (directory / "prepared.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, directory: Path) -> Prepared:
        """Read what ``save`` wrote."""
        directory = Path(directory)
        if not (directory / "prepared.json").exists():
            raise DataError(f"{directory} is not a prepared-data directory (no prepared.json)")
        meta = json.loads((directory / "prepared.json").read_text())
        examples = pd.read_parquet(directory / "examples.parquet")
        examples[schema.HISTORY] = examples[schema.HISTORY].map(list)
        users = (
            pd.read_parquet(directory / "users.parquet")
            if (directory / "users.parquet").exists()
            else None
        )
        items = pd.read_parquet(directory / "items.parquet")
        return cls(examples, items, users, meta["name"], DataConfig(**meta["config"]))


def item_text(items: pd.DataFrame) -> pd.Series:
    """Item text = title | categories | description: what the LLM and encoders read. Empty parts
    and a part equal to the title (an untitled item is named by its description or categories,
    see ``validate_items``) are left out."""
    cats = readable_categories(items[schema.CATEGORIES])
    desc = items[schema.DESCRIPTION].fillna("").astype(str)
    texts = [
        " | ".join(dict.fromkeys(p for p in parts if p))
        for parts in zip(items[schema.TITLE].astype(str), cats, desc, strict=True)
    ]
    return pd.Series(texts, index=items.index, dtype=object)


def _order(inter: pd.DataFrame) -> pd.DataFrame:
    # stable: ties in timestamp keep file order, so the result is deterministic
    return inter.sort_values([schema.USER_ID, schema.TIMESTAMP], kind="mergesort").reset_index(
        drop=True
    )


def _histories(inter: pd.DataFrame, length: int) -> list[list[str]]:
    grouped = inter.groupby(schema.USER_ID, sort=False)[schema.ITEM_ID]
    shifted = [grouped.shift(k).fillna(schema.PAD_ITEM) for k in range(length, 0, -1)]
    return np.stack([s.to_numpy(dtype=object) for s in shifted], axis=1).tolist()


def _assign_splits(inter: pd.DataFrame, test_frac: float, val_frac: float) -> np.ndarray:
    pos = inter.groupby(schema.USER_ID, sort=False).cumcount().to_numpy()
    n = inter.groupby(schema.USER_ID, sort=False)[schema.ITEM_ID].transform("size").to_numpy()
    n_test = np.maximum(1, np.rint(n * test_frac)).astype(int)
    n_train_part = n - n_test
    n_val = np.where(n_train_part >= 2, np.maximum(1, np.rint(n_train_part * val_frac)), 0).astype(
        int
    )
    split = np.full(len(inter), schema.SPLIT_TRAIN, dtype=object)
    split[pos >= n_train_part - n_val] = schema.SPLIT_VAL
    split[pos >= n_train_part] = schema.SPLIT_TEST
    return split


def prepare(tables: RawTables, cfg: DataConfig, seed: int = 0) -> Prepared:
    """Turn validated tables into split, labelled examples with histories.

    Args:
        tables: Validated canonical tables.
        cfg: Preparation settings (history length, split fractions, rating scale, ...).
        seed: Seed of the training-fraction sample.

    Returns:
        The prepared examples.
    """
    inter = _order(tables.interactions)
    if cfg.max_users is not None:
        users = inter[schema.USER_ID].unique()
        if cfg.max_users < len(users):
            keep = np.random.default_rng(cfg.sample_seed).choice(
                users, size=cfg.max_users, replace=False
            )
            inter = inter[inter[schema.USER_ID].isin(set(keep))].reset_index(drop=True)
            log.info("kept a seeded sample of %d of %d users", cfg.max_users, len(users))
    if cfg.until is not None:
        later = inter[schema.TIMESTAMP] > cfg.until
        if later.any():
            log.info(
                "as of %d: %d later interactions left for a refresh", cfg.until, int(later.sum())
            )
            inter = inter[~later].reset_index(drop=True)
    inter[schema.HISTORY] = _histories(inter, cfg.history_len)  # from the full past, before any cap

    counts = inter.groupby(schema.USER_ID)[schema.ITEM_ID].transform("size")
    few = counts < cfg.min_user_interactions
    if few.any():
        log.warning(
            "dropped %d interaction(s) of %d user(s) with fewer than %d interactions",
            int(few.sum()),
            inter.loc[few, schema.USER_ID].nunique(),
            cfg.min_user_interactions,
        )
        inter = inter[~few].reset_index(drop=True)
    if cfg.max_per_user is not None:
        rank_from_end = inter.groupby(schema.USER_ID, sort=False).cumcount(ascending=False)
        old = rank_from_end >= cfg.max_per_user
        if old.any():
            log.info(
                "kept each user's most recent %d interactions: %d older ones are history only",
                cfg.max_per_user,
                int(old.sum()),
            )
            inter = inter[~old].reset_index(drop=True)
    if inter.empty:
        raise DataError(
            f"{tables.name}: no interactions left after preparation (min_user_interactions={cfg.min_user_interactions})"
        )

    inter[schema.SPLIT] = _assign_splits(inter, cfg.test_frac, cfg.val_frac)
    span = cfg.rating_max - cfg.rating_min
    inter[schema.TARGET] = ((inter[schema.RATING] - cfg.rating_min) / span).astype("float32")
    inter[schema.LABEL] = (inter[schema.RATING] >= cfg.high_rating).astype("float32")
    inter[schema.PAIR_KEY] = [
        schema.pair_key(u, h, i)
        for u, h, i in zip(
            inter[schema.USER_ID], inter[schema.HISTORY], inter[schema.ITEM_ID], strict=True
        )
    ]
    if cfg.train_fraction < 1.0:
        inter = subsample_train(inter, cfg.train_fraction, seed)

    items = tables.items.copy()
    items[schema.ITEM_TEXT] = item_text(items)
    counts_by_split = inter[schema.SPLIT].value_counts().to_dict()
    log.info("prepared %s: %s", tables.name, counts_by_split)
    return Prepared(inter, items, tables.users, tables.name, cfg)


def subsample_train(examples: pd.DataFrame, fraction: float, seed: int) -> pd.DataFrame:
    """Keep a random ``fraction`` of the training rows; validation and test stay untouched."""
    is_train = (examples[schema.SPLIT] == schema.SPLIT_TRAIN).to_numpy()
    rng = np.random.default_rng(seed)
    keep = ~is_train | (rng.random(len(examples)) < fraction)
    log.info(
        "training fraction %.2f: kept %d of %d training rows",
        fraction,
        int((keep & is_train).sum()),
        int(is_train.sum()),
    )
    return examples[keep].reset_index(drop=True)
