"""Data: loading (ml-100k or the generic format), validation and Sec. 5.1 preparation."""

from __future__ import annotations

from lr_recsys.config import DataConfig
from lr_recsys.data.errors import DataError
from lr_recsys.data.prepare import TRAIN_FRACTIONS, Prepared, prepare, subsample_train
from lr_recsys.data.tables import RawTables, load_generic


def load_tables(cfg: DataConfig) -> RawTables:
    """Load the dataset named by ``cfg`` as validated canonical tables."""
    if cfg.dataset == "ml-100k":
        from lr_recsys.data.movielens import load_movielens

        return load_movielens(cfg.data_dir, cfg.source, cfg.local_dir)
    if cfg.dataset == "generic":
        if cfg.interactions is None or cfg.items is None:
            raise DataError("dataset 'generic' needs data.interactions and data.items file paths")
        return load_generic(
            cfg.interactions, cfg.items, cfg.users, cfg.rating_min, cfg.rating_max,
            on_duplicate=cfg.on_duplicate,
        )  # fmt: skip
    if cfg.dataset == "bigquery":
        if cfg.bigquery is None or cfg.items is None:
            raise DataError(
                "dataset 'bigquery' needs data.bigquery (project, dataset, table) and a data.items file"
            )
        from lr_recsys.data.bigquery import load_interactions

        inter = load_interactions(
            cfg.bigquery, rating_min=cfg.rating_min, rating_max=cfg.rating_max,
            on_duplicate=cfg.on_duplicate,
        )  # fmt: skip
        return load_generic(inter, cfg.items, cfg.users, cfg.rating_min, cfg.rating_max, "bigquery")
    raise DataError(f"unknown dataset {cfg.dataset!r}; expected 'ml-100k', 'generic' or 'bigquery'")


def load_prepared(cfg: DataConfig, seed: int = 0) -> Prepared:
    """Load and prepare the dataset named by ``cfg``."""
    return prepare(load_tables(cfg), cfg, seed)


__all__ = [
    "TRAIN_FRACTIONS",
    "DataConfig",
    "DataError",
    "Prepared",
    "RawTables",
    "load_generic",
    "load_prepared",
    "load_tables",
    "prepare",
    "subsample_train",
]
