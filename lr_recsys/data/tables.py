"""Reading and validating the generic input format.

Interactions: ``user_id, item_id, rating, timestamp`` (CSV or parquet). Items: ``item_id, title``
plus optional ``description`` and ``categories``. Users (optional): ``user_id`` plus any context
columns (age, gender, occupation, ...). Timestamps are unix seconds or ISO-8601 strings.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

import numpy as np
import pandas as pd

from lr_recsys import schema
from lr_recsys.config import OnDuplicate
from lr_recsys.data.errors import DataError, describe_rows

log = logging.getLogger(__name__)

FILE_ROWS = "file_rows"  # DataFrame.attrs flag: the index holds file row numbers
KEY = (schema.USER_ID, schema.ITEM_ID, schema.TIMESTAMP)  # one interaction
ON_DUPLICATE = get_args(OnDuplicate)


@dataclass
class RawTables:
    """Validated canonical tables; ids are strings, timestamps are int64 unix seconds."""

    interactions: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame | None
    name: str = "generic"


def read_table(path: Path, what: str) -> pd.DataFrame:
    """Read a CSV/TSV or parquet file, failing clearly on a missing or empty file."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{what} file {path} does not exist")
    if path.stat().st_size == 0:
        raise DataError(f"{what} file {path} is empty")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            df = pd.read_parquet(path)
        elif suffix in (".csv", ".tsv", ".txt"):
            sep = "\t" if suffix == ".tsv" else ","
            df = pd.read_csv(
                path,
                sep=sep,
                dtype=str,
                keep_default_na=False,
                na_values=[""],
                skip_blank_lines=False,
            )
        else:
            raise DataError(
                f"{what} file {path}: unsupported extension {suffix!r}; use .csv, .tsv or .parquet"
            )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{what} file {path} cannot be parsed: {exc}") from exc
    df.index = pd.RangeIndex(2, len(df) + 2)  # file row numbers: the header is row 1
    blank = df.isna().all(axis=1)
    if blank.any():
        log.info("%s file %s: skipped %d blank line(s)", what, path, int(blank.sum()))
        df = df[~blank]
    if len(df) == 0:
        raise DataError(f"{what} file {path} has a header but no rows")
    df.attrs[FILE_ROWS] = True
    return df


def _require_columns(
    df: pd.DataFrame, required: tuple[str, ...], path: Path | str, what: str
) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(
            f"{what} file {path}: missing column(s) {missing}; found {list(df.columns)}, "
            f"expected at least {list(required)}"
        )


def _file_rows(df: pd.DataFrame, mask: np.ndarray) -> list[int]:
    """File row numbers of the rows selected by ``mask`` (header = row 1, first data row = 2)."""
    if df.attrs.get(FILE_ROWS):
        return [int(i) for i in df.index.to_numpy()[mask]]
    return [int(i) + 2 for i in np.flatnonzero(mask)]


def _ids(df: pd.DataFrame, col: str, path: Path | str, what: str) -> pd.Series:
    s = df[col]
    bad = s.isna().to_numpy() | (s.astype(str).str.strip() == "").to_numpy()
    if bad.any():
        raise DataError(f"{what} file {path}: empty {col} in {describe_rows(_file_rows(df, bad))}")
    if pd.api.types.is_float_dtype(s) and (s == s.round()).all():
        s = s.astype("int64")
    return s.astype(str).str.strip()


def parse_timestamps(
    s: pd.Series, path: Path | str, frame: pd.DataFrame | None = None
) -> pd.Series:
    """Unix seconds (numbers), ISO-8601 strings or a datetime column -> int64 unix seconds.

    ``frame`` is the table ``s`` came from, so that errors name its file rows.
    """
    frame = s.to_frame() if frame is None else frame
    if pd.api.types.is_datetime64_any_dtype(s):
        if s.isna().any():
            bad = s.isna().to_numpy()
            raise DataError(
                f"interactions file {path}: missing timestamp in {describe_rows(_file_rows(frame, bad))}"
            )
        utc = s.dt.tz_localize("UTC") if s.dt.tz is None else s.dt.tz_convert("UTC")
        return ((utc - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).astype("int64")
    numeric = pd.to_numeric(s, errors="coerce")
    if numeric.notna().all():
        return numeric.astype("int64")
    parsed = pd.to_datetime(s.where(numeric.isna()), errors="coerce", utc=True, format="mixed")
    bad = (numeric.isna() & parsed.isna()).to_numpy()
    if bad.any():
        rows = _file_rows(frame, bad)
        raise DataError(
            f"interactions file {path}: unparsable timestamp in "
            f"{describe_rows(rows, s[bad].tolist())}; expected unix seconds or ISO-8601"
        )
    secs = (parsed - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    return numeric.fillna(secs).astype("int64")


def validate_interactions(
    df: pd.DataFrame,
    path: Path | str,
    rating_min: float,
    rating_max: float,
    on_duplicate: OnDuplicate = "error",
) -> pd.DataFrame:
    """Check and canonicalise an interactions table (see module docstring); rows sharing a
    (user_id, item_id, timestamp) key are an error or merged, as ``on_duplicate`` says."""
    what = "interactions"
    _require_columns(df, schema.INTERACTION_COLUMNS, path, what)
    out = pd.DataFrame(
        {
            schema.USER_ID: _ids(df, schema.USER_ID, path, what),
            schema.ITEM_ID: _ids(df, schema.ITEM_ID, path, what),
        }
    )
    rating = pd.to_numeric(df[schema.RATING], errors="coerce")
    bad = rating.isna().to_numpy()
    if bad.any():
        raise DataError(
            f"{what} file {path}: non-numeric rating in "
            f"{describe_rows(_file_rows(df, bad), df[schema.RATING][bad].tolist())}"
        )
    bad = ((rating < rating_min) | (rating > rating_max)).to_numpy()
    if bad.any():
        raise DataError(
            f"{what} file {path}: rating outside [{rating_min}, {rating_max}] in "
            f"{describe_rows(_file_rows(df, bad), rating[bad].tolist())}"
        )
    out[schema.RATING] = rating.astype("float32")
    out[schema.TIMESTAMP] = parse_timestamps(df[schema.TIMESTAMP], path, df)
    out = _resolve_duplicates(out, df, path, on_duplicate)
    out.attrs[FILE_ROWS] = bool(df.attrs.get(FILE_ROWS))
    return out


def _resolve_duplicates(
    out: pd.DataFrame, df: pd.DataFrame, path: Path | str, on_duplicate: OnDuplicate
) -> pd.DataFrame:
    """Apply ``on_duplicate`` to rows sharing a (user_id, item_id, timestamp) key: ``error``
    raises, ``keep_last`` keeps the last such row in file order, ``mean`` keeps one row per key
    with the mean of their ratings. ``out`` is the canonical frame of file rows ``df``."""
    if on_duplicate not in ON_DUPLICATE:
        raise ValueError(f"on_duplicate must be one of {list(ON_DUPLICATE)}, got {on_duplicate!r}")
    dup = out.duplicated(list(KEY), keep=False).to_numpy()
    if not dup.any():
        return out
    if on_duplicate == "error":
        keys = out.loc[dup, list(KEY)].astype(str)
        raise DataError(
            f"interactions file {path}: duplicate (user_id, item_id, timestamp) key in "
            f"{describe_rows(_file_rows(df, dup), keys.agg('/'.join, axis=1).tolist())}; "
            "set data.on_duplicate = keep_last or mean (CLI --on-duplicate) to merge them"
        )
    if on_duplicate == "mean":
        out = out.copy()
        out[schema.RATING] = out.groupby(list(KEY))[schema.RATING].transform("mean")
        out[schema.RATING] = out[schema.RATING].astype("float32")
    kept = out.drop_duplicates(list(KEY), keep="last")
    log.warning(
        "interactions file %s: merged %d row(s) sharing %d (user_id, item_id, timestamp) key(s) "
        "into one row per key (on_duplicate=%s)",
        path,
        int(dup.sum()),
        int(dup.sum()) - (len(out) - len(kept)),
        on_duplicate,
    )
    return kept


def _check_unique(
    df: pd.DataFrame, out: pd.DataFrame, col: str, path: Path | str, what: str
) -> None:
    dup = out.duplicated(col, keep=False).to_numpy()
    if dup.any():
        rows = describe_rows(_file_rows(df, dup), out[col][dup].tolist())
        raise DataError(f"{what} file {path}: duplicate {col} in {rows}")


def readable_categories(categories: pd.Series) -> pd.Series:
    """``"Electronics|Headphones"`` -> ``"Electronics, Headphones"`` (empty parts dropped)."""
    parts = categories.fillna("").astype(str).str.split("|")
    return parts.map(lambda ps: ", ".join(p.strip() for p in ps if p.strip()))


def _text_column(df: pd.DataFrame, col: str) -> pd.Series:
    if col not in df.columns:
        return pd.Series("", index=df.index)
    return df[col].fillna("").astype(str).str.strip()


def validate_items(df: pd.DataFrame, path: Path | str) -> pd.DataFrame:
    """Check and canonicalise an items table. An empty title falls back to the description,
    then to the categories as text (``"A|B"`` -> ``"A, B"``), so every item has text for the LLM;
    an item with none of the three is an error."""
    what = "items"
    _require_columns(df, schema.ITEM_REQUIRED_COLUMNS, path, what)
    out = pd.DataFrame({schema.ITEM_ID: _ids(df, schema.ITEM_ID, path, what)})
    for col in schema.ITEM_OPTIONAL_COLUMNS:
        out[col] = _text_column(df, col)
    title = _text_column(df, schema.TITLE)
    untitled = title == ""
    title = title.mask(untitled, out[schema.DESCRIPTION])
    title = title.mask(title == "", readable_categories(out[schema.CATEGORIES]))
    bad = (title == "").to_numpy()
    if bad.any():
        raise DataError(
            f"{what} file {path}: item without text (no title, description or categories) in "
            f"{describe_rows(_file_rows(df, bad), out[schema.ITEM_ID][bad].tolist())}"
        )
    if untitled.any():
        log.info(
            "%s file %s: %d item(s) without a title named by their description or categories",
            what,
            path,
            int(untitled.sum()),
        )
    out.insert(1, schema.TITLE, title)
    _check_unique(df, out, schema.ITEM_ID, path, what)
    return out.reset_index(drop=True)


def validate_users(df: pd.DataFrame, path: Path | str) -> pd.DataFrame:
    """Check and canonicalise a users table (user_id + context columns as strings)."""
    what = "users"
    _require_columns(df, (schema.USER_ID,), path, what)
    out = df.copy()
    out[schema.USER_ID] = _ids(df, schema.USER_ID, path, what)
    for col in out.columns:
        if col != schema.USER_ID:
            out[col] = out[col].fillna("").astype(str).str.strip()
    _check_unique(df, out, schema.USER_ID, path, what)
    return out.reset_index(drop=True)


def check_references(
    tables: RawTables, items_path: Path | str, interactions_path: Path | str | None = None
) -> None:
    """Every interacted item must have text in the items table."""
    inter = tables.interactions
    unknown = ~inter[schema.ITEM_ID].isin(set(tables.items[schema.ITEM_ID])).to_numpy()
    if unknown.any():
        missing = sorted(set(inter[schema.ITEM_ID][unknown]))
        shown = ", ".join(missing[:10]) + (
            f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        )
        rows = describe_rows(_file_rows(inter, unknown), inter[schema.ITEM_ID][unknown].tolist())
        raise DataError(
            f"items file {items_path}: {len(missing)} interacted item(s) have no row (no text): {shown}; "
            f"referenced by interactions file {interactions_path or '?'} {rows}"
        )


def load_generic(
    interactions: Path | pd.DataFrame,
    items: Path,
    users: Path | None = None,
    rating_min: float = 1.0,
    rating_max: float = 5.0,
    name: str = "generic",
    on_duplicate: OnDuplicate = "error",
) -> RawTables:
    """Load and validate user-provided files in the generic format (``interactions`` may be an
    already validated frame, e.g. from BigQuery); ``on_duplicate`` says what to do with rows
    sharing a (user_id, item_id, timestamp) key: ``error``, ``keep_last`` or ``mean``."""
    if isinstance(interactions, pd.DataFrame):
        inter, interactions = interactions, Path(f"<{name} interactions>")
    else:
        raw = read_table(interactions, "interactions")
        inter = validate_interactions(raw, interactions, rating_min, rating_max, on_duplicate)
    item_df = validate_items(read_table(items, "items"), items)
    user_df = validate_users(read_table(users, "users"), users) if users is not None else None
    tables = RawTables(inter, item_df, user_df, name)
    check_references(tables, items, interactions)
    tables.interactions = inter.reset_index(drop=True)
    if user_df is not None:
        unknown = set(inter[schema.USER_ID]) - set(user_df[schema.USER_ID])
        if unknown:
            log.warning(
                "%d user(s) have no row in %s; their context is unknown", len(unknown), users
            )
    log.info(
        "loaded %s: %d interactions, %d users, %d items",
        name,
        len(inter),
        inter[schema.USER_ID].nunique(),
        len(item_df),
    )
    return tables
