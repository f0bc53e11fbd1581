"""FeatureSpace: index 0 reserved for padding/unknown, context bucketing, tensor shapes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lr_recsys import schema
from lr_recsys.config import DataConfig
from lr_recsys.data import prepare
from lr_recsys.features import AGE_BUCKETS, FeatureSpace, to_tensors


@pytest.fixture
def prepared(tiny_tables):
    return prepare(tiny_tables, DataConfig())


@pytest.fixture
def space(prepared):
    return FeatureSpace.build(prepared)


def test_index_zero_is_reserved(space, prepared):
    assert sorted(space.user_index.values()) == list(range(1, 7))
    assert sorted(space.item_index.values()) == list(range(1, 21))
    assert (space.n_users, space.n_items) == (7, 21)
    for vocab in space.context_index:
        assert sorted(vocab.values()) == list(range(1, len(vocab) + 1))
    assert space.context_sizes == [len(v) + 1 for v in space.context_index]


def test_items_come_from_the_catalogue_and_users_from_examples(make_tables):
    tables = make_tables(counts=(5, 5), n_items=12)
    extra_user = pd.DataFrame(
        {schema.USER_ID: ["ghost"], "age": ["30"], "gender": ["F"], "occupation": ["writer"]}
    )
    tables.users = pd.concat([tables.users, extra_user], ignore_index=True)
    space = FeatureSpace.build(prepare(tables, DataConfig()))
    assert set(space.item_index) == {f"i{k:02d}" for k in range(1, 13)}  # incl. never rated
    assert set(space.user_index) == {"u1", "u2"}  # "ghost" has no interactions
    assert "ghost" in space.user_context  # but its context is known


def test_unknown_ids_map_to_zero(space):
    users = space.users_to_idx(pd.Series(["u1", "nobody", "u6"]))
    items = space.items_to_idx(pd.Series(["i01", "i99", schema.PAD_ITEM]))
    assert users.dtype == items.dtype == np.int64
    assert users.tolist() == [space.user_index["u1"], 0, space.user_index["u6"]]
    assert items.tolist() == [space.item_index["i01"], 0, 0]
    ctx = space.context_to_idx(pd.Series(["u1", "nobody"]))
    assert ctx.shape == (2, 3)
    assert ctx[1].tolist() == [0, 0, 0]
    assert 0 not in ctx[0]


def test_histories_to_idx(space, prepared):
    ex = prepared.examples
    hist = space.histories_to_idx(ex[schema.HISTORY])
    assert hist.shape == (len(ex), 5)
    assert hist.dtype == np.int64
    first = ex.groupby(schema.USER_ID).head(1).index
    assert (hist[first] == 0).all()  # a user's first example has only padding
    row = ex[schema.HISTORY].map(lambda h: schema.PAD_ITEM not in h).idxmax()
    assert hist[row].tolist() == [space.item_index[i] for i in ex.at[row, schema.HISTORY]]


def test_histories_to_idx_of_no_rows(space):
    assert space.histories_to_idx(pd.Series([], dtype=object)).shape[0] == 0


def test_context_fields_skip_zip(make_tables):
    tables = make_tables()
    tables.users["zip"] = ["55105", "94043", "32067", "43537", "15213", "98101"]
    space = FeatureSpace.build(prepare(tables, DataConfig()))
    assert space.context_fields == ["age", "gender", "occupation"]


def test_age_is_bucketed_into_movielens_groups(make_tables):
    ages = ["7", "17", "18", "24", "25", "34", "35", "44", "45", "49", "50", "55", "56", "73"]
    tables = make_tables(counts=[4] * len(ages), ages=ages)
    space = FeatureSpace.build(prepare(tables, DataConfig()))
    age = space.context_fields.index("age")
    by_age = {a: space.user_context[f"u{k}"][age] for k, a in enumerate(ages, start=1)}
    buckets = [by_age[a] for a in ages]
    # same group <=> same index: <18, 18-24, 25-34, 35-44, 45-49, 50-55, 56+
    assert buckets == [buckets[i] for i in (0, 0, 2, 2, 4, 4, 6, 6, 8, 8, 10, 10, 12, 12)]
    assert len(set(buckets)) == len(AGE_BUCKETS) + 1
    assert len(space.context_index[age]) == 7


def test_few_distinct_ages_stay_categories(make_tables):
    # with at most 10 distinct values a numeric column is used as-is, one index per value
    tables = make_tables(counts=(4, 4, 4), ages=["18", "20", "24"])
    space = FeatureSpace.build(prepare(tables, DataConfig()))
    age = space.context_fields.index("age")
    assert len({space.user_context[u][age] for u in ("u1", "u2", "u3")}) == 3


def test_to_tensors_shapes(space, prepared):
    train = prepared.split(schema.SPLIT_TRAIN)
    data = to_tensors(train, space)
    n = len(train)
    assert len(data) == n
    assert tuple(data.hist.shape) == (n, 5)
    assert tuple(data.ctx.shape) == (n, 3)
    assert data.target.tolist() == pytest.approx(train[schema.TARGET].tolist())
    assert data.pos is None
    vectors = np.ones((n, 8)), np.zeros((n, 8))
    batch = to_tensors(train, space, vectors).batch(np.arange(3))
    assert tuple(batch["pos"].shape) == (3, 8)
    with pytest.raises(ValueError, match=rf"explanation vectors have 2/2 rows, expected {n}"):
        to_tensors(train, space, (np.ones((2, 8)), np.ones((2, 8))))


def test_missing_context_value_maps_to_unknown_index(make_tables):
    ages = ["7", "17", "18", "24", "25", "34", "35", "44", "45", "49", "50", "55", "56", ""]
    tables = make_tables(counts=[4] * len(ages), ages=ages)
    space = FeatureSpace.build(prepare(tables, DataConfig()))
    age = space.context_fields.index("age")
    assert space.user_context[f"u{len(ages)}"][age] == 0  # missing age: unknown, not "under 18"
    assert space.user_context["u1"][age] != 0
