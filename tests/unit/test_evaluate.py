"""Metrics as the paper reports them, checked against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import mean_absolute_error, mean_squared_error, roc_auc_score

from lr_recsys.evaluate import auc, mae, primary_metric, rmse


@pytest.mark.parametrize("seed", range(5))
def test_metrics_match_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    y = rng.random(500)
    p = np.clip(y + rng.normal(0, 0.2, 500), 0, 1)
    label = (y > 0.6).astype(int)
    score = np.round(p, 1)  # many ties
    assert rmse(p, y) == pytest.approx(np.sqrt(mean_squared_error(y, p)))
    assert mae(p, y) == pytest.approx(mean_absolute_error(y, p))
    assert auc(score, label) == pytest.approx(roc_auc_score(label, score))


def test_auc_extremes_and_single_class_error():
    assert auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == 1.0
    assert auc(np.array([0.9, 0.8, 0.2, 0.1]), np.array([0, 0, 1, 1])) == 0.0
    with pytest.raises(ValueError, match="both classes"):
        auc(np.array([0.1, 0.2]), np.array([1, 1]))


def test_primary_metrics():
    assert primary_metric("regression") == ("rmse", False)
    assert primary_metric("classification") == ("auc", True)
