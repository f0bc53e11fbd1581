"""Sec. 5.1 preparation: histories, user-temporal split, targets, caps and training fractions."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from lr_recsys import schema
from lr_recsys.config import DataConfig
from lr_recsys.data import DataError, RawTables, prepare, subsample_train


@pytest.fixture
def prepared(tiny_tables):
    return prepare(tiny_tables, DataConfig())


def user_sequences(inter: pd.DataFrame) -> dict[str, list[str]]:
    """Each user's item ids in time order, ties in file order (the spec, computed independently)."""
    ordered = inter.sort_values(schema.TIMESTAMP, kind="stable")
    return {u: g[schema.ITEM_ID].tolist() for u, g in ordered.groupby(schema.USER_ID, sort=False)}


def test_one_example_per_interaction(tiny_tables, prepared):
    ex = prepared.examples
    assert len(ex) == len(tiny_tables.interactions) == 67
    assert set(ex.columns) == {
        *schema.INTERACTION_COLUMNS,
        schema.HISTORY,
        schema.SPLIT,
        schema.TARGET,
        schema.LABEL,
        schema.PAIR_KEY,
    }
    keys = [schema.USER_ID, schema.ITEM_ID, schema.TIMESTAMP]
    pd.testing.assert_frame_equal(
        ex[keys].sort_values(keys).reset_index(drop=True),
        tiny_tables.interactions[keys].sort_values(keys).reset_index(drop=True),
    )


def test_history_has_length_5_and_is_left_padded(prepared):
    for _, group in prepared.examples.groupby(schema.USER_ID):
        group = group.sort_values(schema.TIMESTAMP, kind="stable")
        for k, history in enumerate(group[schema.HISTORY]):
            assert len(history) == 5
            n_pad = max(0, 5 - k)
            assert history[:n_pad] == [schema.PAD_ITEM] * n_pad
            assert schema.PAD_ITEM not in history[n_pad:]


def test_history_length_follows_config(tiny_tables):
    ex = prepare(tiny_tables, DataConfig(history_len=2)).examples
    assert set(ex[schema.HISTORY].map(len)) == {2}


def test_history_is_the_previous_items_of_the_same_user(tiny_tables, prepared):
    seqs = user_sequences(tiny_tables.interactions)
    ts_of = {
        (u, i): t
        for u, i, t in tiny_tables.interactions[
            [schema.USER_ID, schema.ITEM_ID, schema.TIMESTAMP]
        ].itertuples(index=False)
    }
    for row in prepared.examples.itertuples(index=False):
        seq = seqs[row.user_id]
        k = seq.index(row.item_id)  # items are distinct per user in tiny_tables
        expected = [schema.PAD_ITEM] * max(0, 5 - k) + seq[max(0, k - 5) : k]
        assert row.history == expected
        for h in row.history:
            if h != schema.PAD_ITEM:
                assert ts_of[(row.user_id, h)] <= row.timestamp
        assert row.item_id not in row.history


def test_tied_timestamps_keep_file_order():
    inter = pd.DataFrame(
        {
            schema.USER_ID: ["u1"] * 4,
            schema.ITEM_ID: ["late", "b", "a", "c"],
            schema.RATING: np.float32([3, 3, 3, 3]),
            schema.TIMESTAMP: [50, 10, 10, 20],  # "b" and "a" tie; "b" comes first in the file
        }
    )
    items = pd.DataFrame(
        {
            schema.ITEM_ID: ["a", "b", "c", "late"],
            schema.TITLE: ["A", "B", "C", "L"],
            schema.DESCRIPTION: "",
            schema.CATEGORIES: "",
        }
    )
    ex = prepare(RawTables(inter, items, None), DataConfig(history_len=3)).examples
    history = dict(zip(ex[schema.ITEM_ID], ex[schema.HISTORY], strict=True))
    assert history["b"] == ["", "", ""]
    assert history["a"] == ["", "", "b"]
    assert history["c"] == ["", "b", "a"]
    assert history["late"] == ["b", "a", "c"]


def test_split_is_user_temporal(prepared):
    for user, group in prepared.examples.groupby(schema.USER_ID):
        ts = {s: group.loc[group[schema.SPLIT] == s, schema.TIMESTAMP] for s in schema.SPLITS}
        assert all(len(t) > 0 for t in ts.values()), user
        assert ts["train"].max() <= ts["val"].min(), user
        assert ts["val"].max() <= ts["test"].min(), user


def test_split_sizes(prepared):
    sizes = prepared.examples.groupby(schema.USER_ID)[schema.SPLIT].value_counts().unstack()
    n = sizes.sum(axis=1)
    # latest ~20% per user is test; validation = latest ~10% of the training part
    expected_test = np.maximum(1, np.rint(n * 0.2)).astype(int)
    expected_val = np.maximum(1, np.rint((n - expected_test) * 0.1)).astype(int)
    assert sizes["test"].tolist() == expected_test.tolist()
    assert sizes["val"].tolist() == expected_val.tolist()
    share = (prepared.examples[schema.SPLIT] == schema.SPLIT_TEST).mean()
    assert 0.15 <= share <= 0.3


def test_split_helper_returns_one_split(prepared):
    val = prepared.split(schema.SPLIT_VAL)
    assert len(val) == 6  # one per user in tiny_tables
    assert set(val[schema.SPLIT]) == {schema.SPLIT_VAL}


def test_target_scaled_and_label_thresholded(prepared):
    ex = prepared.examples
    assert set(ex[schema.RATING]) == {1.0, 2.0, 3.0, 4.0, 5.0}
    np.testing.assert_allclose(ex[schema.TARGET], (ex[schema.RATING] - 1.0) / 4.0)
    assert ex[schema.TARGET].min() == 0.0 and ex[schema.TARGET].max() == 1.0
    assert (ex[schema.LABEL] == (ex[schema.RATING] >= 4).astype("float32")).all()
    assert set(ex[schema.LABEL]) == {0.0, 1.0}


def test_target_follows_configured_scale(tiny_tables):
    cfg = DataConfig(rating_min=0.0, rating_max=10.0, high_rating=5.0)
    ex = prepare(tiny_tables, cfg).examples
    np.testing.assert_allclose(ex[schema.TARGET], ex[schema.RATING] / 10.0)
    assert (ex[schema.LABEL] == (ex[schema.RATING] >= 5).astype("float32")).all()


def test_min_user_interactions_drops_users_and_logs(tiny_tables, caplog):
    caplog.set_level(logging.WARNING, logger="lr_recsys.data.prepare")
    ex = prepare(tiny_tables, DataConfig(min_user_interactions=10)).examples
    assert sorted(ex[schema.USER_ID].unique()) == ["u3", "u4", "u5", "u6"]  # u1: 8, u2: 9 dropped
    assert len(ex) == 67 - 8 - 9
    assert "dropped 17 interaction(s) of 2 user(s) with fewer than 10 interactions" in caplog.text


def test_min_user_interactions_keeps_everyone_when_met(tiny_tables, caplog):
    caplog.set_level(logging.WARNING, logger="lr_recsys.data.prepare")
    ex = prepare(tiny_tables, DataConfig(min_user_interactions=8)).examples
    assert ex[schema.USER_ID].nunique() == 6
    assert "dropped" not in caplog.text


def test_no_interactions_left_is_an_error(tiny_tables):
    with pytest.raises(DataError, match=r"tiny: no interactions left .*min_user_interactions=16"):
        prepare(tiny_tables, DataConfig(min_user_interactions=16))


def test_max_per_user_keeps_most_recent_with_full_histories(tiny_tables):
    ex = prepare(tiny_tables, DataConfig(max_per_user=4)).examples
    assert ex.groupby(schema.USER_ID).size().tolist() == [4] * 6
    seqs = user_sequences(tiny_tables.interactions)
    for user, group in ex.groupby(schema.USER_ID):
        assert group[schema.ITEM_ID].tolist() == seqs[user][-4:]
        dropped = seqs[user][:-4]
        oldest = group[schema.HISTORY].iloc[0]
        # the oldest kept example still sees the (dropped) interactions before it
        assert oldest == [schema.PAD_ITEM] * max(0, 5 - len(dropped)) + dropped[-5:]
        assert len(dropped) >= 4 and schema.PAD_ITEM not in oldest[1:]


def test_prepare_does_not_mutate_input(tiny_tables):
    before = tiny_tables.interactions.copy()
    prepare(tiny_tables, DataConfig(max_per_user=4, min_user_interactions=10))
    pd.testing.assert_frame_equal(tiny_tables.interactions, before)


def test_item_text_joins_title_categories_and_description(prepared):
    items = prepared.items.set_index(schema.ITEM_ID)
    assert items.loc["i01", schema.ITEM_TEXT] == "Movie 1 (1981) | Comedy | Story number 1."
    assert items.loc["i02", schema.ITEM_TEXT] == "Movie 2 (1982) | Action, Sci-Fi"


# --- training fraction --------------------------------------------------------------------------
def test_train_fraction_keeps_val_and_test(tiny_tables):
    full = prepare(tiny_tables, DataConfig()).examples
    part = prepare(tiny_tables, DataConfig(train_fraction=0.5), seed=3).examples
    for split in (schema.SPLIT_VAL, schema.SPLIT_TEST):
        pd.testing.assert_frame_equal(
            part[part[schema.SPLIT] == split].reset_index(drop=True),
            full[full[schema.SPLIT] == split].reset_index(drop=True),
        )
    full_train = set(full.loc[full[schema.SPLIT] == schema.SPLIT_TRAIN, schema.PAIR_KEY])
    part_train = set(part.loc[part[schema.SPLIT] == schema.SPLIT_TRAIN, schema.PAIR_KEY])
    assert part_train < full_train
    assert 0 < len(part_train) < len(full_train)


def test_train_fraction_is_deterministic_by_seed(tiny_tables):
    cfg = DataConfig(train_fraction=0.5)
    a = prepare(tiny_tables, cfg, seed=1).examples
    b = prepare(tiny_tables, cfg, seed=1).examples
    c = prepare(tiny_tables, cfg, seed=2).examples
    pd.testing.assert_frame_equal(a, b)
    assert a[schema.PAIR_KEY].tolist() != c[schema.PAIR_KEY].tolist()


@pytest.mark.parametrize("fraction", [0.12, 0.25, 0.5])
def test_subsample_train_keeps_about_the_fraction(fraction):
    n_train, n_other = 20_000, 3_000
    examples = pd.DataFrame(
        {
            schema.SPLIT: [schema.SPLIT_TRAIN] * n_train
            + [schema.SPLIT_VAL] * n_other
            + [schema.SPLIT_TEST] * n_other,
            "row": np.arange(n_train + 2 * n_other),
        }
    )
    kept = subsample_train(examples, fraction, seed=0)
    counts = kept[schema.SPLIT].value_counts()
    assert counts[schema.SPLIT_VAL] == counts[schema.SPLIT_TEST] == n_other
    assert abs(counts[schema.SPLIT_TRAIN] / n_train - fraction) < 0.02
    assert kept["row"].is_monotonic_increasing  # order preserved
    again = subsample_train(examples, fraction, seed=0)
    pd.testing.assert_frame_equal(kept, again)


# --- pair keys ----------------------------------------------------------------------------------
def test_pair_key_is_stable():
    key = schema.pair_key("196", ["", "", "", "242", "302"], "377")
    # pinned: stored explanation tables are joined on this key, so it must never change
    assert key == "9fe291c7f875196bbbd4"
    assert key == schema.pair_key("196", ("", "", "", "242", "302"), "377")


@pytest.mark.parametrize(
    ("user", "history", "item"),
    [
        ("197", ["", "", "", "242", "302"], "377"),  # other user
        ("196", ["", "", "", "302", "242"], "377"),  # same items, other order
        ("196", ["", "", "242", "302", ""], "377"),  # other padding
        ("196", ["", "", "", "242", "303"], "377"),  # other item in history
        ("196", ["", "", "", "242", "302"], "378"),  # other candidate
    ],
)
def test_pair_key_distinguishes_pairs(user, history, item):
    assert schema.pair_key(user, history, item) != schema.pair_key(
        "196", ["", "", "", "242", "302"], "377"
    )


def test_pair_key_column_matches_schema(prepared):
    ex = prepared.examples
    expected = [
        schema.pair_key(u, h, i)
        for u, h, i in zip(ex[schema.USER_ID], ex[schema.HISTORY], ex[schema.ITEM_ID], strict=True)
    ]
    assert ex[schema.PAIR_KEY].tolist() == expected
    assert ex[schema.PAIR_KEY].is_unique


def test_pair_key_distinct_for_ids_with_commas():
    assert schema.pair_key("u", ["a,b", "c"], "i") != schema.pair_key("u", ["a", "b,c"], "i")


def test_prepared_save_load_round_trip(tiny_tables, tmp_path):
    from lr_recsys.data import Prepared

    prepared = prepare(tiny_tables, DataConfig(dataset="generic", max_per_user=6))
    prepared.save(tmp_path / "prep")
    loaded = Prepared.load(tmp_path / "prep")
    pd.testing.assert_frame_equal(loaded.examples, prepared.examples)
    pd.testing.assert_frame_equal(loaded.items, prepared.items)
    assert loaded.config == prepared.config and loaded.name == prepared.name
    assert isinstance(loaded.examples[schema.HISTORY].iloc[0], list)
    with pytest.raises(DataError, match="not a prepared-data directory"):
        Prepared.load(tmp_path)
