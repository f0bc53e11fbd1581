"""Serving candidates: popular unrated items against each user's latest history."""

from __future__ import annotations

from lr_recsys import schema
from lr_recsys.candidates import latest_histories, popularity, serving_pairs
from lr_recsys.config import DataConfig
from lr_recsys.data import prepare


def test_candidates_are_popular_unrated_items_keyed_on_the_latest_history(tiny_tables):
    prepared = prepare(tiny_tables, DataConfig(dataset="generic"))
    pop = popularity(prepared)
    assert list(pop.values) == sorted(pop.values, reverse=True)
    pairs = serving_pairs(prepared, 3)
    users = prepared.examples[schema.USER_ID].unique()
    assert len(pairs) == 3 * len(users)
    latest = latest_histories(prepared)
    for pair, valid_from in pairs:
        rated = set(
            prepared.examples.loc[prepared.examples[schema.USER_ID] == pair.user_id, schema.ITEM_ID]
        )
        assert pair.item_id not in rated
        history, last_ts = latest[pair.user_id]
        assert list(pair.history) == history and len(history) == 5 and valid_from == last_ts + 1
        padded = [schema.PAD_ITEM] * (5 - len(history)) + history
        assert pair.pair_key == schema.pair_key(pair.user_id, padded, pair.item_id)
    first_user = [p for p, _ in pairs if p.user_id == pairs[0][0].user_id]
    ranks = [list(pop.index).index(p.item_id) for p in first_user]
    assert ranks == sorted(ranks)  # most popular first
    assert serving_pairs(prepared, 0) == []
