"""Candidate generation for serving: the items a user has not rated, most popular first.

Popularity = number of interactions in the prepared data. The user's latest history is the last
``history_len`` items they consumed. Serving pairs are (user, latest history, candidate); their
explanations are precomputed by the pipeline so ranking never waits for the LLM (paper Sec. 6).
"""

from __future__ import annotations

import pandas as pd

from lr_recsys import schema
from lr_recsys.data.prepare import Prepared
from lr_recsys.explain.engine import Pair


def popularity(prepared: Prepared) -> pd.Series:
    """Interaction count per catalogue item (0 for never-rated items), most popular first;
    ties broken by item id so the order is deterministic."""
    counts = prepared.examples[schema.ITEM_ID].value_counts()
    pop = prepared.items[schema.ITEM_ID].map(counts).fillna(0).astype(int)
    frame = pd.DataFrame({schema.ITEM_ID: prepared.items[schema.ITEM_ID], "n": pop})
    frame = frame.sort_values(["n", schema.ITEM_ID], ascending=[False, True], kind="mergesort")
    return frame.set_index(schema.ITEM_ID)["n"]


def latest_histories(prepared: Prepared) -> dict[str, tuple[list[str], int]]:
    """Per user: (the last ``history_len`` items consumed, oldest first; the last timestamp)."""
    ex = prepared.examples.sort_values(schema.TIMESTAMP, kind="mergesort")
    last = ex.groupby(schema.USER_ID, sort=True).tail(1)
    length = prepared.config.history_len
    out = {}
    for user, hist, item, ts in zip(
        last[schema.USER_ID],
        last[schema.HISTORY],
        last[schema.ITEM_ID],
        last[schema.TIMESTAMP],
        strict=True,
    ):
        items = [i for i in [*hist, item] if i != schema.PAD_ITEM][-length:]
        out[user] = (items, int(ts))
    return out


def rated_items(prepared: Prepared) -> dict[str, set[str]]:
    """Per user: every item they have rated (the candidate generator skips them)."""
    return prepared.examples.groupby(schema.USER_ID)[schema.ITEM_ID].agg(set).to_dict()


def serving_pairs(prepared: Prepared, n: int) -> list[tuple[Pair, int]]:
    """The top-``n`` unrated popular candidates of every user against their latest history, with
    the time the pair becomes valid (just after the user's last interaction)."""
    if n <= 0:
        return []
    order = list(popularity(prepared).index)
    rated = rated_items(prepared)
    pairs = []
    length = prepared.config.history_len
    for user, (history, ts) in latest_histories(prepared).items():
        seen = rated.get(user, set())
        padded = [schema.PAD_ITEM] * (length - len(history)) + history
        for cand in [i for i in order if i not in seen][:n]:
            key = schema.pair_key(user, padded, cand)
            pairs.append((Pair(key, user, tuple(history), cand), ts + 1))
    return pairs
