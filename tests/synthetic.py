"""Synthetic data with a planted signal that lives only in the explanation text."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lr_recsys import schema
from lr_recsys.data import RawTables

LIKE_WORDS = ("adores", "cherishes", "relishes", "treasures")
DISLIKE_WORDS = ("loathes", "dreads", "despises", "resents")
FILLER = ("drama", "comedy", "western", "thriller", "romance", "action", "musical", "horror")


def planted_tables(
    n_users: int = 40, n_items: int = 50, per_user: int = 30, seed: int = 0
) -> RawTables:
    """Ratings drawn at random, independent of user, item and history."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        items = rng.choice(n_items, size=per_user, replace=False)
        for t, i in enumerate(items):
            rows.append((f"u{u}", f"i{i}", float(rng.integers(1, 6)), 1_000_000 + 100 * t))
    inter = pd.DataFrame(rows, columns=list(schema.INTERACTION_COLUMNS))
    items = pd.DataFrame(
        {
            schema.ITEM_ID: [f"i{i}" for i in range(n_items)],
            schema.TITLE: [f"Movie {i}" for i in range(n_items)],
            schema.DESCRIPTION: "",
            schema.CATEGORIES: [FILLER[i % len(FILLER)] for i in range(n_items)],
        }
    )
    users = pd.DataFrame(
        {
            schema.USER_ID: [f"u{u}" for u in range(n_users)],
            "gender": ["M" if u % 2 else "F" for u in range(n_users)],
        }
    )
    return RawTables(inter, items, users, "planted")


def planted_explanations(examples: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Explanations whose verb reveals whether the rating is high (>= 4); nothing else does."""
    rng = np.random.default_rng(seed)
    pos, neg = [], []
    for rating in examples[schema.RATING]:
        high = rating >= 4
        verb = rng.choice(LIKE_WORDS if high else DISLIKE_WORDS)
        genre, other = rng.choice(FILLER, size=2)
        pos.append(f"The consumer watched this movie because the consumer {verb} {genre} films")
        neg.append(
            f"The consumer did not watch this movie because the consumer {verb} {other} plots"
        )
    return pd.DataFrame(
        {
            schema.PAIR_KEY: examples[schema.PAIR_KEY].to_numpy(),
            schema.POSITIVE: pos,
            schema.NEGATIVE: neg,
        }
    )
