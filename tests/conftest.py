"""Shared fixtures: tiny synthetic tables, a file writer and the real ml-100k (cached locally).

Add new fixtures here only when more than one test folder needs them; keep each one small and
documented.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lr_recsys import schema
from lr_recsys.config import DataConfig
from lr_recsys.data import Prepared, RawTables, load_prepared

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_DATA_DIR_ENV = "LR_RECSYS_TEST_DATA_DIR"  # where the real datasets are cached between runs

TINY_COUNTS = (8, 9, 10, 12, 13, 15)  # interactions per user: 6 users, 67 interactions
TINY_N_ITEMS = 20
TINY_AGES = ("17", "24", "31", "45", "52", "60")
GENDERS = ("M", "F")
OCCUPATIONS = ("student", "writer", "engineer")
CATEGORIES = ("Drama", "Comedy", "Action", "Sci-Fi")


def _make_tables(
    counts: Sequence[int] = TINY_COUNTS,
    n_items: int = TINY_N_ITEMS,
    ages: Sequence[str] | None = None,
    seed: int = 0,
) -> RawTables:
    """Canonical tables (as ``load_generic`` returns them) with ``len(counts)`` users.

    User ``u{k}`` rates ``counts[k-1]`` distinct items at increasing timestamps; the middle
    interaction of every user shares its timestamp with the one before it (a tie). Rows are
    shuffled so that file order is not time order.
    """
    rng = np.random.default_rng(seed)
    item_ids = [f"i{k:02d}" for k in range(1, n_items + 1)]
    rows = []
    for u, n in enumerate(counts, start=1):
        steps = rng.integers(1, 100, size=n)
        steps[n // 2] = 0  # tie with the previous interaction
        timestamps = 1_000_000 + 1_000 * u + np.cumsum(steps)
        chosen = rng.choice(item_ids, size=n, replace=False)
        ratings = rng.integers(1, 6, size=n)
        rows += [
            {
                schema.USER_ID: f"u{u}",
                schema.ITEM_ID: str(i),
                schema.RATING: float(r),
                schema.TIMESTAMP: int(t),
            }
            for i, r, t in zip(chosen, ratings, timestamps, strict=True)
        ]
    inter = pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    inter[schema.RATING] = inter[schema.RATING].astype("float32")
    inter[schema.TIMESTAMP] = inter[schema.TIMESTAMP].astype("int64")

    items = pd.DataFrame(
        {
            schema.ITEM_ID: item_ids,
            schema.TITLE: [f"Movie {k} ({1980 + k})" for k in range(1, n_items + 1)],
            # odd items have a description and one category, even items two categories
            schema.DESCRIPTION: [
                f"Story number {k}." if k % 2 else "" for k in range(1, n_items + 1)
            ],
            schema.CATEGORIES: [
                "|".join(CATEGORIES[k % 4 : k % 4 + 2 - k % 2]) for k in range(1, n_items + 1)
            ],
        }
    )
    n_users = len(counts)
    ages = list(ages) if ages is not None else [TINY_AGES[k % 6] for k in range(n_users)]
    users = pd.DataFrame(
        {
            schema.USER_ID: [f"u{u}" for u in range(1, n_users + 1)],
            "age": ages,
            "gender": [GENDERS[k % 2] for k in range(n_users)],
            "occupation": [OCCUPATIONS[k % 3] for k in range(n_users)],
        }
    )
    return RawTables(inter, items, users, "tiny")


@pytest.fixture
def make_tables() -> Callable[..., RawTables]:
    """Factory of synthetic canonical tables; see ``_make_tables`` for the arguments."""
    return _make_tables


@pytest.fixture
def tiny_tables() -> RawTables:
    """6 users with 8-15 interactions each (67 in all), 20 items, a users table."""
    return _make_tables()


@pytest.fixture
def tmp_csv(tmp_path: Path) -> Callable[[str, pd.DataFrame | str | bytes], Path]:
    """Write a frame (or raw text/bytes) to ``tmp_path/name``; the extension picks the format.

    ``.parquet``/``.pq`` -> parquet, ``.tsv`` -> tab-separated, anything else -> CSV. Frames are
    written without their index; ``str``/``bytes`` are written verbatim.
    """

    def write(name: str, content: pd.DataFrame | str | bytes) -> Path:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content)
        elif path.suffix in (".parquet", ".pq"):
            content.to_parquet(path, index=False)
        else:
            content.to_csv(path, index=False, sep="\t" if path.suffix == ".tsv" else ",")
        return path

    return write


def real_data_dir() -> Path:
    """Where real datasets are cached: ``$LR_RECSYS_TEST_DATA_DIR`` or ``<repo>/data``."""
    return Path(os.environ.get(TEST_DATA_DIR_ENV) or REPO_ROOT / "data")


@pytest.fixture(scope="session")
def ml100k() -> Prepared:
    """Real ml-100k prepared with the default ``DataConfig``.

    Cached under ``$LR_RECSYS_TEST_DATA_DIR`` or ``<repo>/data`` (gitignored): the first run
    downloads the recbole wheel from PyPI, later runs read the parquet cache.
    """
    return load_prepared(DataConfig(data_dir=real_data_dir()))


def free_port() -> int:
    """A free TCP port on loopback (for the Redis and Ray Serve tests)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A real redis-server on loopback (installed by .ci/run), stopped after the session."""
    import shutil
    import subprocess
    import time

    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed (.ci/run installs it with apt)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.time() + 20
    while True:
        try:
            client.ping()
            break
        except redis.exceptions.ConnectionError:
            if time.time() > deadline:
                proc.kill()
                pytest.fail("redis-server did not start")
            time.sleep(0.1)
    yield f"127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)
