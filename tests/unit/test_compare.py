"""Aggregation of the comparison: best baseline, relative improvement, paired test, table."""

from __future__ import annotations

import pytest
from scipy import stats

from lr_recsys.compare import best_baseline, markdown_table, paired_test, relative_improvement


def _s(runs):
    import numpy as np

    return {"runs": runs, "mean": float(np.mean(runs)), "std": float(np.std(runs, ddof=1))}


RESULTS = {
    "mf": {
        "regression": {"rmse": _s([0.25, 0.26, 0.27])},
        "classification": {"auc": _s([0.70, 0.71, 0.72])},
    },
    "din": {
        "regression": {"rmse": _s([0.24, 0.25, 0.25])},
        "classification": {"auc": _s([0.74, 0.73, 0.75])},
    },
    "lr-recsys": {
        "regression": {"rmse": _s([0.22, 0.23, 0.22])},
        "classification": {"auc": _s([0.78, 0.79, 0.79])},
    },
}


def test_best_baseline_respects_metric_direction():
    assert best_baseline(RESULTS, "regression", "rmse") == "din"
    assert best_baseline(RESULTS, "classification", "auc") == "din"
    assert best_baseline({"lr-recsys": RESULTS["lr-recsys"]}, "regression", "rmse") is None


def test_relative_improvement_sign():
    assert relative_improvement(0.9, 1.0, "rmse") == pytest.approx(10.0)
    assert relative_improvement(0.9, 1.0, "auc") == pytest.approx(-10.0)


def test_paired_test_matches_scipy():
    a, b = [0.22, 0.23, 0.22], [0.24, 0.25, 0.25]
    assert paired_test(a, b) == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert paired_test([0.1], [0.2]) is None


def test_markdown_table_lists_models_and_improvements():
    md = markdown_table({"results": RESULTS, "meta": {"dataset": "x"}})
    assert "### regression" in md and "### classification" in md
    line = next(row for row in md.splitlines() if row.startswith("| lr-recsys "))
    assert "vs din" in line and "+" in line
    assert "(best baseline)" in next(row for row in md.splitlines() if row.startswith("| din "))
