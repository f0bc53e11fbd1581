"""MovieLens ml-100k, real, without needing the web.

Sources, tried in this order by ``source="auto"``:

1. the cache under ``<data_dir>/ml-100k/`` (canonical parquet, written on first load);
2. a local directory (``source="local"``) holding either the GroupLens files (``u.data``,
   ``u.item``, ``u.user``) or the RecBole atomic files (``ml-100k.inter/.item/.user``);
3. the official GroupLens zip (needs the open internet);
4. the ``recbole==1.2.1`` wheel from PyPI, which ships the RecBole atomic files (only the package
   registry is needed); its sha256 is checked.

GroupLens terms forbid redistribution: the data is cached locally and never committed.
"""

from __future__ import annotations

import hashlib
import io
import logging
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

import pandas as pd

from lr_recsys import schema
from lr_recsys.data.errors import DataError
from lr_recsys.data.tables import (
    RawTables,
    check_references,
    validate_interactions,
    validate_items,
    validate_users,
)

log = logging.getLogger(__name__)

NAME = "ml-100k"
GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
RECBOLE_WHEEL = "recbole-1.2.1-py3-none-any.whl"
RECBOLE_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
RECBOLE_PREFIX = "recbole/dataset_example/ml-100k/"
GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)  # fmt: skip
CACHE_FILES = ("interactions.parquet", "items.parquet", "users.parquet")


# --- parsers ----------------------------------------------------------------------------------
def _strip_types(df: pd.DataFrame) -> pd.DataFrame:
    """RecBole headers carry type suffixes (``user_id:token``)."""
    return df.rename(columns=lambda c: c.split(":")[0])


def parse_recbole(inter: bytes, item: bytes, user: bytes) -> tuple[pd.DataFrame, ...]:
    """RecBole atomic files -> raw interactions, items, users frames (generic column names)."""
    opts = dict(sep="\t", dtype=str, keep_default_na=False, quoting=3)
    i = _strip_types(pd.read_csv(io.BytesIO(inter), **opts))
    it = _strip_types(pd.read_csv(io.BytesIO(item), **opts))
    u = _strip_types(pd.read_csv(io.BytesIO(user), **opts))
    items = pd.DataFrame(
        {
            schema.ITEM_ID: it["item_id"],
            schema.TITLE: [
                f"{t} ({y})" if y else t
                for t, y in zip(it["movie_title"], it["release_year"], strict=True)
            ],
            schema.CATEGORIES: it["class"].str.split().str.join("|"),
        }
    )
    users = u[["user_id", "age", "gender", "occupation"]]
    return i[list(schema.INTERACTION_COLUMNS)], items, users


def parse_grouplens(data: bytes, item: bytes, user: bytes) -> tuple[pd.DataFrame, ...]:
    """GroupLens ``u.data``/``u.item`` (latin-1)/``u.user`` -> raw frames."""
    inter = pd.read_csv(
        io.BytesIO(data), sep="\t", header=None, dtype=str, names=list(schema.INTERACTION_COLUMNS)
    )
    cols = ["item_id", "title", "release", "video", "url", *GENRES]
    it = pd.read_csv(
        io.BytesIO(item),
        sep="|",
        header=None,
        dtype=str,
        names=cols,
        encoding="latin-1",
        keep_default_na=False,
    )
    flags = it[list(GENRES)].astype(int).to_numpy()
    cats = ["|".join(g for g, f in zip(GENRES, row, strict=True) if f) for row in flags]
    items = pd.DataFrame(
        {schema.ITEM_ID: it["item_id"], schema.TITLE: it["title"], schema.CATEGORIES: cats}
    )
    users = pd.read_csv(
        io.BytesIO(user),
        sep="|",
        header=None,
        dtype=str,
        names=["user_id", "age", "gender", "occupation", "zip"],
    )[["user_id", "age", "gender", "occupation"]]
    return inter, items, users


# --- sources ----------------------------------------------------------------------------------
def _from_local_dir(path: Path) -> tuple[pd.DataFrame, ...]:
    if (path / "u.data").exists():
        return parse_grouplens(*((path / f).read_bytes() for f in ("u.data", "u.item", "u.user")))
    if (path / "ml-100k.inter").exists():
        return parse_recbole(
            *((path / f"ml-100k.{f}").read_bytes() for f in ("inter", "item", "user"))
        )
    raise DataError(
        f"local ml-100k directory {path}: expected u.data/u.item/u.user or ml-100k.inter/.item/.user"
    )


def _from_grouplens(timeout: float = 10.0) -> tuple[pd.DataFrame, ...]:
    with urllib.request.urlopen(GROUPLENS_URL, timeout=timeout) as resp:  # noqa: S310 (fixed https URL)
        payload = resp.read()
    with zipfile.ZipFile(io.BytesIO(payload)) as zf:
        return parse_grouplens(*(zf.read(f"ml-100k/{f}") for f in ("u.data", "u.item", "u.user")))


def _from_pypi_wheel() -> tuple[pd.DataFrame, ...]:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--quiet",
            "recbole==1.2.1",
            "-d",
            tmp,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wheel = Path(tmp) / RECBOLE_WHEEL
        if proc.returncode != 0 or not wheel.exists():
            raise DataError(
                f"could not download {RECBOLE_WHEEL} from the package registry: {proc.stderr.strip()}"
            )
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        if digest != RECBOLE_SHA256:
            raise DataError(
                f"{RECBOLE_WHEEL}: sha256 {digest} does not match the expected {RECBOLE_SHA256}"
            )
        with zipfile.ZipFile(wheel) as zf:
            return parse_recbole(
                *(zf.read(f"{RECBOLE_PREFIX}ml-100k.{f}") for f in ("inter", "item", "user"))
            )


def fetch_raw(
    source: str = "auto", local_dir: Path | None = None
) -> tuple[tuple[pd.DataFrame, ...], str]:
    """Obtain raw ml-100k frames from the requested source; returns (frames, source used)."""
    if source == "local":
        if local_dir is None:
            raise DataError("source='local' needs local_dir (a directory with the ml-100k files)")
        return _from_local_dir(Path(local_dir)), f"local:{local_dir}"
    if source in ("auto", "grouplens"):
        try:
            return _from_grouplens(), "grouplens"
        except (OSError, zipfile.BadZipFile, KeyError) as exc:
            if source == "grouplens":
                raise DataError(f"could not download {GROUPLENS_URL}: {exc}") from exc
            log.info("GroupLens unreachable (%s); using the recbole==1.2.1 wheel from PyPI", exc)
    return _from_pypi_wheel(), "pypi:recbole==1.2.1"


def load_movielens(
    data_dir: Path, source: str = "auto", local_dir: Path | None = None
) -> RawTables:
    """Load ml-100k as validated canonical tables, caching them under ``data_dir/ml-100k``."""
    cache = Path(data_dir) / NAME
    if source in ("auto",) and all((cache / f).exists() for f in CACHE_FILES):
        inter, items, users = (pd.read_parquet(cache / f) for f in CACHE_FILES)
        return RawTables(inter, items, users, NAME)
    (inter, items, users), used = fetch_raw(source, local_dir)
    tables = RawTables(
        validate_interactions(inter, f"{NAME}:{used}", 1.0, 5.0),
        validate_items(items, f"{NAME}:{used}"),
        validate_users(users, f"{NAME}:{used}"),
        NAME,
    )
    check_references(tables, f"{NAME}:{used}", f"{NAME}:{used}")
    tables.interactions = tables.interactions.reset_index(drop=True)
    if source == "local":
        return tables  # already on disk; never let a (possibly partial) copy replace the cache
    cache.mkdir(parents=True, exist_ok=True)
    for frame, fname in zip(
        (tables.interactions, tables.items, tables.users), CACHE_FILES, strict=True
    ):
        frame.to_parquet(cache / fname, index=False)
    log.info("cached ml-100k from %s under %s", used, cache)
    return tables
