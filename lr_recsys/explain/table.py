"""The explanation table: pair key -> positive and negative explanation text.

Until the LLM engine writes it, users (and tests) supply it as parquet or CSV with the columns
``pair_key, positive, negative`` (see ``lr_recsys.schema.pair_key``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from lr_recsys import schema
from lr_recsys.data.errors import DataError, describe_rows
from lr_recsys.data.tables import read_table

log = logging.getLogger(__name__)


def validate_explanations(
    df: pd.DataFrame, source: str | Path, require_negative: bool = True
) -> pd.DataFrame:
    """Check columns, non-empty texts and unique keys; return the canonical table (the three
    explanation columns)."""
    missing = [c for c in schema.EXPLANATION_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(
            f"explanation table {source}: missing column(s) {missing}; found {list(df.columns)}"
        )
    out = df[list(schema.EXPLANATION_COLUMNS)].copy()
    for col in schema.EXPLANATION_COLUMNS:
        out[col] = out[col].fillna("").astype(str).str.strip()
        empty = (out[col] == "").to_numpy()
        if empty.any() and (col != schema.NEGATIVE or require_negative):
            rows = [int(i) + 2 for i in empty.nonzero()[0]]
            raise DataError(f"explanation table {source}: empty {col} in {describe_rows(rows)}")
    dup = out.duplicated(schema.PAIR_KEY, keep=False).to_numpy()
    if dup.any():
        rows = [int(i) + 2 for i in dup.nonzero()[0]]
        raise DataError(
            f"explanation table {source}: duplicate pair_key in "
            f"{describe_rows(rows, out[schema.PAIR_KEY][dup].tolist())}"
        )
    return out.reset_index(drop=True)


def load_explanations(path: Path, require_negative: bool = True) -> pd.DataFrame:
    """Read and validate an explanation table file."""
    return validate_explanations(read_table(path, "explanation table"), path, require_negative)


def save_explanations(df: pd.DataFrame, path: Path, require_negative: bool = True) -> None:
    """Validate and write an explanation table (extra columns such as ``flags`` kept) as
    zstd-compressed parquet."""
    validate_explanations(df, path, require_negative)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path, index=False, compression="zstd")


def attach_explanations(examples: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Add ``positive``/``negative`` columns to ``examples`` by pair key.

    Raises:
        DataError: if any example has no explanation (names how many and a few keys).
    """
    merged = examples.merge(table, on=schema.PAIR_KEY, how="left", validate="many_to_one")
    missing = merged[schema.POSITIVE].isna().to_numpy()
    if missing.any():
        keys = merged.loc[missing, schema.PAIR_KEY].head(5).tolist()
        raise DataError(
            f"{int(missing.sum())} of {len(merged)} examples have no explanation in the table "
            f"(e.g. pair_key {keys}); generate them first or drop those models"
        )
    return merged
