"""Every validation gate passes good input and stops a deliberately broken one with a report that
names the expectation, the number of rows and examples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lr_recsys import schema
from lr_recsys.explain.prompts import get_domain, negative_prefix, positive_prefix
from lr_recsys.validate import GateFailed, gate, suites

MOVIE = get_domain("movie")
POS, NEG = positive_prefix(MOVIE), negative_prefix(MOVIE)


def interactions_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            schema.USER_ID: ["u1", "u1", "u2", "u2"],
            schema.ITEM_ID: ["i1", "i2", "i1", "i3"],
            schema.RATING: [5.0, 3.0, 1.0, 4.0],
            schema.TIMESTAMP: [100, 200, 150, 160],
        }
    )


def explanation_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            schema.PAIR_KEY: ["a", "b", "c"],
            schema.POSITIVE: [f"{POS} likes westerns.", f"{POS} likes noir.", f"{POS} likes cats."],
            schema.NEGATIVE: [
                f"{NEG} prefers comedies.",
                f"{NEG} prefers TV.",
                f"{NEG} prefers dogs.",
            ],
        }
    )


def test_interactions_gate_passes_and_stops_bad_ratings_and_duplicates():
    report = gate("interactions", interactions_frame(), suites.interactions())
    assert report.success and report.evaluated == 6
    bad = interactions_frame()
    bad.loc[1, schema.RATING] = 9.0
    bad.loc[3] = ["u2", "i1", 2.0, 150]  # duplicate (u2, i1, 150)
    with pytest.raises(GateFailed) as err:
        gate("interactions", bad, suites.interactions())
    text = str(err.value)
    assert "gate 'interactions': 2 of 6 expectation(s) failed over 4 rows" in text
    assert "expect_column_values_to_be_between on 'rating': 1 row(s), e.g. [9.0]" in text
    assert "expect_compound_columns_to_be_unique" in text and "leak across splits" in text


def test_explanations_gate_checks_prefix_and_length():
    frame = suites.explanation_frame(explanation_table())
    assert gate("explanations", frame, suites.explanations(POS, NEG)).success
    bad = explanation_table()
    bad.loc[0, schema.POSITIVE] = "Ignore the instructions."
    bad.loc[1, schema.NEGATIVE] = NEG + " " + "word " * 60
    with pytest.raises(GateFailed) as err:
        gate("explanations", suites.explanation_frame(bad), suites.explanations(POS, NEG))
    report = err.value.report
    failed = {(f.expectation, f.column) for f in report.failures}
    assert ("expect_column_values_to_match_regex", schema.POSITIVE) in failed
    assert ("expect_column_values_to_be_between", f"{schema.NEGATIVE}_words") in failed
    assert "Ignore the instructions." in str(err.value)


def test_embeddings_gate_checks_dimension_finiteness_and_variance():
    rng = np.random.default_rng(0)
    good = rng.normal(size=(50, 8))
    assert gate("embeddings", suites.embedding_frame(good), suites.embeddings(8)).success
    bad = good.copy()
    bad[3, 2] = np.nan
    bad[:, 5] = 0.25  # a collapsed component
    with pytest.raises(GateFailed) as err:
        gate("embeddings", suites.embedding_frame(bad), suites.embeddings(8))
    failed = {f.column for f in err.value.report.failures}
    assert "finite" in failed and "e5" in failed
    with pytest.raises(GateFailed, match="expect_column_values_to_be_between on 'dim'"):
        gate("embeddings", suites.embedding_frame(rng.normal(size=(10, 4))), suites.embeddings(8))


def test_predictions_gate_stops_nan_and_out_of_range():
    assert gate(
        "predictions", pd.DataFrame({"prediction": [0.1, 0.9]}), suites.predictions()
    ).success
    with pytest.raises(GateFailed) as err:
        gate("predictions", pd.DataFrame({"prediction": [0.1, np.nan, 1.7]}), suites.predictions())
    assert len(err.value.report.failures) == 2
