"""The suites the pipeline gates on, one comment per expectation saying what it guards.

Inputs are DataFrames; list-valued columns (histories, embeddings) are summarised into scalar
columns first because expectations work on scalars.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lr_recsys import schema
from lr_recsys.validate.gates import Check

WORDS = "words"
FINITE = "finite"
DIM = "dim"


def interactions(rating_min: float = 1.0, rating_max: float = 5.0) -> list[Check]:
    """Raw interactions (canonical columns)."""
    import great_expectations as gx

    e = gx.expectations
    now = pd.Timestamp.now(tz="UTC").timestamp()
    return [
        (e.ExpectTableColumnsToMatchSet(column_set=list(schema.INTERACTION_COLUMNS), exact_match=False),
         "every column training reads is there"),
        (e.ExpectColumnValuesToNotBeNull(column=schema.USER_ID), "a null user would become 'unknown'"),
        (e.ExpectColumnValuesToNotBeNull(column=schema.ITEM_ID), "a null item would become 'unknown'"),
        (e.ExpectColumnValuesToBeBetween(column=schema.RATING, min_value=rating_min, max_value=rating_max),
         "ratings on the configured scale, so the [0,1] target is right"),
        (e.ExpectColumnValuesToBeBetween(column=schema.TIMESTAMP, min_value=0, max_value=now + 86_400),
         "timestamps are sane (not negative, not in the future): the temporal split depends on them"),
        (e.ExpectCompoundColumnsToBeUnique(column_list=[schema.USER_ID, schema.ITEM_ID, schema.TIMESTAMP]),
         "one row per (user, item, time): duplicates would leak across splits"),
    ]  # fmt: skip


def explanation_frame(table: pd.DataFrame) -> pd.DataFrame:
    """Scalar view of an explanation table: word counts per text."""
    out = table.copy()
    for col in (schema.POSITIVE, schema.NEGATIVE):
        out[f"{col}_{WORDS}"] = out[col].fillna("").str.split().str.len()
    return out


def explanations(positive_prefix: str, negative_prefix: str, max_words: int = 50) -> list[Check]:
    """Explanation table (after ``explanation_frame``)."""
    import great_expectations as gx

    e = gx.expectations
    checks: list[Check] = [
        (e.ExpectColumnValuesToBeUnique(column=schema.PAIR_KEY), "one explanation per pair"),
    ]
    for col, prefix in ((schema.POSITIVE, positive_prefix), (schema.NEGATIVE, negative_prefix)):
        checks += [
            (e.ExpectColumnValuesToNotBeNull(column=col), f"every pair has a {col} explanation"),
            (e.ExpectColumnValuesToMatchRegex(column=col, regex="^" + _escape(prefix) + " \\S"),
             f"{col} answers start with the required prefix and say something after it"),
            (e.ExpectColumnValuesToBeBetween(column=f"{col}_{WORDS}", min_value=len(prefix.split()) + 1, max_value=max_words),
             f"{col} answers are non-empty and at most {max_words} words (the AE reads 50)"),
        ]  # fmt: skip
    return checks


def embedding_frame(vectors: np.ndarray) -> pd.DataFrame:
    """Scalar view of an (N, D) embedding matrix: its width, finiteness and each component."""
    vectors = np.asarray(vectors, dtype=np.float64)
    out = pd.DataFrame({DIM: np.full(len(vectors), vectors.shape[1] if vectors.ndim == 2 else 0)})
    out[FINITE] = np.isfinite(vectors).all(axis=1) if vectors.ndim == 2 else False
    for k in range(vectors.shape[1] if vectors.ndim == 2 else 0):
        out[f"e{k}"] = vectors[:, k]
    return out


def embeddings(dim: int = 8, min_std: float = 1e-4) -> list[Check]:
    """AE embeddings (after ``embedding_frame``)."""
    import great_expectations as gx

    e = gx.expectations
    checks: list[Check] = [
        (e.ExpectColumnValuesToBeBetween(column=DIM, min_value=dim, max_value=dim), f"vectors are {dim}-d, what the DNN's tokens expect"),
        (e.ExpectColumnValuesToBeInSet(column=FINITE, value_set=[True]), "no NaN/inf reaches training or the feature store"),
    ]  # fmt: skip
    checks += [
        (e.ExpectColumnStdevToBeBetween(column=f"e{k}", min_value=min_std), f"component {k} varies: a collapsed AE carries no signal")
        for k in range(dim)
    ]  # fmt: skip
    return checks


def predictions() -> list[Check]:
    """Model predictions: a ``prediction`` column in [0, 1]."""
    import great_expectations as gx

    e = gx.expectations
    return [
        (e.ExpectColumnValuesToNotBeNull(column="prediction"), "no NaN prediction (NaN is null to pandas)"),
        (e.ExpectColumnValuesToBeBetween(column="prediction", min_value=0.0, max_value=1.0),
         "predictions are sigmoid outputs on the [0,1] scale"),
    ]  # fmt: skip


def _escape(text: str) -> str:
    import re

    return re.escape(text)
