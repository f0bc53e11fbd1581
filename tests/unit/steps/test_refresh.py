"""Refresh ingest on real ml-100k: the last run's examples come back identical (pairs and splits),
the later interactions are added as training examples only, and an as-of cut-off does not change
which users a max_users sample holds."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lr_recsys import schema
from lr_recsys.config import DataConfig
from lr_recsys.data import Prepared, load_tables, prepare
from lr_recsys.steps.refresh import NEW_PAIRS, new_examples, refresh_ingest
from tests.conftest import real_data_dir


@pytest.fixture(scope="module")
def data():
    cfg = DataConfig(data_dir=real_data_dir(), max_users=30)
    full = prepare(load_tables(cfg), cfg).examples
    since = int(np.quantile(full[schema.TIMESTAMP], 0.99))  # the last ~1% are new
    return cfg, full, since


def test_refresh_keeps_the_last_runs_examples_and_adds_the_new_ones_to_training(data, tmp_path):
    cfg, full, since = data
    last = prepare(load_tables(cfg), cfg.model_copy(update={"until": since})).examples
    assert last[schema.TIMESTAMP].max() <= since
    assert set(last[schema.USER_ID]) <= set(full[schema.USER_ID])  # the same sampled users
    summary = refresh_ingest(cfg, tmp_path, since)
    prepared = Prepared.load(tmp_path)
    ex = prepared.examples
    old = ex[ex[schema.PAIR_KEY].isin(set(last[schema.PAIR_KEY]))]
    assert len(old) == len(last)
    merged = last.set_index(schema.PAIR_KEY)[[schema.SPLIT, schema.TARGET]]
    assert old.set_index(schema.PAIR_KEY)[[schema.SPLIT, schema.TARGET]].loc[merged.index].equals(merged)  # fmt: skip
    _, new = new_examples(tmp_path)
    want = full[full[schema.TIMESTAMP] > since]
    assert set(new[schema.PAIR_KEY]) == set(want[schema.PAIR_KEY]) and len(new) > 0
    assert (new[schema.SPLIT] == schema.SPLIT_TRAIN).all()  # the test split stays the last run's
    assert summary["new_examples"] == len(new) and summary["old_examples"] == len(last)
    assert summary["watermark"] == int(full[schema.TIMESTAMP].max())
    assert json.loads((tmp_path / NEW_PAIRS).read_text()) == new[schema.PAIR_KEY].tolist()


def test_until_not_after_the_watermark_is_refused(data, tmp_path):
    cfg, _, since = data
    with pytest.raises(ValueError, match="not after the watermark"):
        refresh_ingest(cfg.model_copy(update={"until": since}), tmp_path, since)
