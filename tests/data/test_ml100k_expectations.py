"""Great Expectations suite over the real prepared ml-100k examples (Sec. 5.1)."""

from __future__ import annotations

import os

os.environ["GX_ANALYTICS_ENABLED"] = "false"  # before great_expectations is imported

import great_expectations as gx
import pandas as pd
import pytest
from great_expectations.data_context.types.base import ProgressBarsConfig

from lr_recsys import schema

EXAMPLE_COLUMNS = [
    *schema.INTERACTION_COLUMNS,
    schema.HISTORY,
    schema.SPLIT,
    schema.TARGET,
    schema.LABEL,
    schema.PAIR_KEY,
]
HISTORY_LEN = "history_len"  # derived here: GE does not handle list-valued columns


def build_suite() -> gx.ExpectationSuite:
    e = gx.expectations
    suite = gx.ExpectationSuite(name="ml100k_examples")
    for expectation in [
        # every column that training, the explanation join and serving read is there
        e.ExpectTableColumnsToMatchSet(column_set=EXAMPLE_COLUMNS, exact_match=False),
        # the full dataset, nothing dropped or duplicated by loading or preparation
        e.ExpectTableRowCountToEqual(value=100_000),
        # every ml-100k user kept (each has >= 20 ratings, above min_user_interactions)
        e.ExpectColumnUniqueValueCountToBeBetween(
            column=schema.USER_ID, min_value=943, max_value=943
        ),
        # ids are present: a null id would silently map to the "unknown" index 0
        e.ExpectColumnValuesToNotBeNull(column=schema.USER_ID),
        e.ExpectColumnValuesToNotBeNull(column=schema.ITEM_ID),
        # ratings stay on the 1-5 star scale
        e.ExpectColumnValuesToBeBetween(column=schema.RATING, min_value=1, max_value=5),
        # the regression target is the rating scaled to [0, 1]
        e.ExpectColumnValuesToBeBetween(column=schema.TARGET, min_value=0, max_value=1),
        # the classification label is binary
        e.ExpectColumnValuesToBeInSet(column=schema.LABEL, value_set=[0, 1]),
        # only the three user-temporal splits exist, and each is non-empty
        e.ExpectColumnDistinctValuesToEqualSet(column=schema.SPLIT, value_set=list(schema.SPLITS)),
        # one interaction per (user, item, time): duplicates would leak between splits
        e.ExpectCompoundColumnsToBeUnique(
            column_list=[schema.USER_ID, schema.ITEM_ID, schema.TIMESTAMP]
        ),
        # explanations are joined on pair_key, so each example needs its own key
        e.ExpectColumnValuesToBeUnique(column=schema.PAIR_KEY),
        # every history holds exactly the previous 5 items (left-padded)
        e.ExpectColumnValuesToBeBetween(column=HISTORY_LEN, min_value=5, max_value=5),
    ]:
        suite.add_expectation(expectation)
    return suite


@pytest.fixture(scope="module")
def validate():
    """Validate a frame of examples against the suite; returns the GE result."""
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch_def = (
        ctx.data_sources.add_pandas("pandas")
        .add_dataframe_asset("examples")
        .add_batch_definition_whole_dataframe("whole")
    )
    suite = ctx.suites.add(build_suite())

    def run(examples: pd.DataFrame):
        df = examples.assign(**{HISTORY_LEN: examples[schema.HISTORY].map(len)})
        return batch_def.get_batch(batch_parameters={"dataframe": df}).validate(suite)

    return run


def failures(result) -> list[str]:
    return [
        f"{r.expectation_config.type} {r.expectation_config.kwargs}: {r.result}"
        for r in result.results
        if not r.success
    ]


def test_prepared_ml100k_meets_expectations(ml100k, validate):
    result = validate(ml100k.examples)
    failed = failures(result)
    print("\n".join(failed))
    assert result.success, failed
    assert len(result.results) == 12


def test_suite_catches_corrupted_examples(ml100k, validate):
    bad = ml100k.examples.copy()
    bad.loc[0, schema.RATING] = 6.0  # off the star scale
    bad.loc[1, schema.SPLIT] = "holdout"  # unknown split
    bad.at[2, schema.HISTORY] = bad.at[2, schema.HISTORY][:4]  # truncated history
    result = validate(bad)
    failed = {
        (r.expectation_config.type, r.expectation_config.kwargs.get("column"))
        for r in result.results
        if not r.success
    }
    assert failed == {
        ("expect_column_values_to_be_between", schema.RATING),
        ("expect_column_distinct_values_to_equal_set", schema.SPLIT),
        ("expect_column_values_to_be_between", HISTORY_LEN),
    }
