"""Metrics exactly as the paper reports them (Sec. 5.2): RMSE and MAE of the rating prediction on
the [0, 1] scale (also on the original rating scale), AUC of the high/low classification."""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import rankdata

from lr_recsys import schema
from lr_recsys.features import TensorData
from lr_recsys.models.base import RecModel


def rmse(pred: np.ndarray, true: np.ndarray) -> float:
    """Root mean squared error."""
    return float(
        np.sqrt(np.mean((np.asarray(pred, np.float64) - np.asarray(true, np.float64)) ** 2))
    )


def mae(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean absolute error."""
    return float(np.mean(np.abs(np.asarray(pred, np.float64) - np.asarray(true, np.float64))))


def auc(score: np.ndarray, label: np.ndarray) -> float:
    """Area under the ROC curve via the Mann-Whitney U statistic (ties get half credit).

    Raises:
        ValueError: if ``label`` holds only one class.
    """
    label = np.asarray(label).astype(bool)
    n_pos, n_neg = int(label.sum()), int((~label).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(
            f"AUC needs both classes; got {n_pos} positive and {n_neg} negative labels"
        )
    ranks = rankdata(np.asarray(score, np.float64))  # average ranks for ties
    return float((ranks[label].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@torch.no_grad()
def predict_all(model: RecModel, data: TensorData, batch_size: int = 4096) -> np.ndarray:
    """Predictions in [0, 1] for every row of ``data``."""
    model.eval()
    out = []
    for start in range(0, len(data), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(data)))
        out.append(model.predict(data.batch(idx)))
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.float32)


def task_metrics(
    pred: np.ndarray, data: TensorData, task: str, rating_span: float = 4.0
) -> dict[str, float]:
    """The paper's metrics for one task.

    Args:
        pred: Predictions in [0, 1].
        data: The split predicted (targets and labels).
        task: ``regression`` -> RMSE, MAE (0-1 scale) and RMSE_5, MAE_5 (rating scale);
            ``classification`` -> AUC.
        rating_span: ``rating_max - rating_min`` to map errors back to the rating scale.
    """
    if task == schema.REGRESSION:
        target = data.target.numpy()
        r, m = rmse(pred, target), mae(pred, target)
        return {"rmse": r, "mae": m, "rmse_rating": r * rating_span, "mae_rating": m * rating_span}
    if task == schema.CLASSIFICATION:
        return {"auc": auc(pred, data.label.numpy())}
    raise ValueError(f"unknown task {task!r}; expected one of {schema.TASKS}")


def primary_metric(task: str) -> tuple[str, bool]:
    """(metric name, higher is better) used for checkpoint selection and comparison."""
    return ("rmse", False) if task == schema.REGRESSION else ("auc", True)
