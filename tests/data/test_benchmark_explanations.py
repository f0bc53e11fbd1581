"""The stored explanation table of the first real result matches the subset it was made for."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from lr_recsys import schema
from lr_recsys.config import DataConfig
from lr_recsys.data import load_prepared
from lr_recsys.explain.prompts import get_domain, negative_prefix, positive_prefix
from lr_recsys.explain.table import load_explanations
from tests.conftest import real_data_dir

REPO = Path(__file__).parents[2]
CONFIG = REPO / "benchmarks" / "first_real_result.toml"


@pytest.fixture(scope="module")
def stored():
    cfg = tomllib.loads(CONFIG.read_text())
    path = REPO / cfg["explanations"]
    if not path.exists():
        pytest.fail(f"{path} is missing: the first real result cannot be reproduced")
    data = DataConfig(**cfg["data"], data_dir=real_data_dir())
    return load_explanations(path), load_prepared(data)


def test_every_pair_of_the_subset_has_an_explanation(stored):
    table, prepared = stored
    assert set(prepared.examples[schema.PAIR_KEY]) == set(table[schema.PAIR_KEY])


def test_explanations_have_the_required_format(stored):
    table, _ = stored
    movie = get_domain("movie")
    # required prefixes (the generator seeds them), one sentence, at most 50 words
    assert table[schema.POSITIVE].str.startswith(positive_prefix(movie)).all()
    assert table[schema.NEGATIVE].str.startswith(negative_prefix(movie)).all()
    for col in (schema.POSITIVE, schema.NEGATIVE):
        assert (table[col].str.split().str.len() <= 50).all()
        assert not table[col].str.contains("\n").any()


def test_stored_file_carries_no_ratings():
    import pandas as pd

    raw = pd.read_parquet(REPO / tomllib.loads(CONFIG.read_text())["explanations"])
    # our own generated text only: GroupLens terms forbid redistributing the ratings
    assert set(raw.columns) <= {schema.PAIR_KEY, schema.POSITIVE, schema.NEGATIVE, "flags"}


def test_explanations_are_not_all_the_same(stored):
    table, _ = stored
    # a degenerate generator (one sentence for everything) would carry no signal
    assert table[schema.POSITIVE].nunique() > 50
    assert table[schema.NEGATIVE].nunique() > 50
