"""The bias floor: global mean + user bias + item bias with L2 shrinkage (Koren, "Factorization
Meets the Neighborhood", KDD 2008, Sec. 2.1 "baseline predictors").

``y_hat(u, i) = mu + b_u + b_i``, fitted in closed form by alternating ridge updates
(each one exact given the other biases)::

    b_i = sum_{u in R(i)} (y - mu - b_u) / (lambda_item + |R(i)|)
    b_u = sum_{i in R(u)} (y - mu - b_i) / (lambda_user + |R(u)|)

One pass from ``b_u = 0`` is Koren's formula; more passes converge to the joint ridge solution.
``y`` is the [0, 1] rating (regression) or the high/low label (classification, a linear
probability model; AUC only needs the ranking). The shrinkage is chosen on the validation split
from a small grid unless ``ModelConfig.bias_reg`` fixes it: a fit is a few ``bincount`` calls,
so the whole grid takes well under a second on ml-100k.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lr_recsys import schema
from lr_recsys.config import ModelConfig
from lr_recsys.models.base import Batch, ModelInputs, RecModel, register

EPS = 1e-4  # predictions are clipped to [EPS, 1 - EPS] so that the logit is finite
REG_GRID = (0.0, 1.0, 3.0, 10.0, 25.0, 50.0, 100.0)  # lambda_user x lambda_item on validation


@dataclass(frozen=True)
class Biases:
    """A fitted bias model: global mean, per-user and per-item offsets (index 0 = unknown)."""

    mu: float
    user: np.ndarray  # (n_users,)
    item: np.ndarray  # (n_items,)

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.mu + self.user[users] + self.item[items]


def fit_biases(
    users: np.ndarray,
    items: np.ndarray,
    y: np.ndarray,
    n_users: int,
    n_items: int,
    reg_user: float,
    reg_item: float,
    iterations: int = 10,
) -> Biases:
    """Closed-form alternating ridge fit of ``mu + b_u + b_i`` (see the module docstring).

    Args:
        users: (N,) user indices.
        items: (N,) item indices.
        y: (N,) targets.
        n_users: Size of the user index (unseen users keep a zero bias).
        n_items: Size of the item index.
        reg_user: L2 shrinkage of the user biases (lambda_user >= 0).
        reg_item: L2 shrinkage of the item biases (lambda_item >= 0).
        iterations: Alternating passes (1 = Koren's one-pass formula: items first, then users).
    """
    if len(y) == 0:
        raise ValueError("bias model: no training rows")
    if reg_user < 0 or reg_item < 0:
        raise ValueError(f"bias shrinkage must be >= 0, got user {reg_user}, item {reg_item}")
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    y = np.asarray(y, np.float64)
    mu = float(y.mean())
    n_u = np.bincount(users, minlength=n_users).astype(np.float64)
    n_i = np.bincount(items, minlength=n_items).astype(np.float64)
    b_u, b_i = np.zeros(n_users), np.zeros(n_items)
    resid = y - mu
    for _ in range(iterations):
        s_i = np.bincount(items, weights=resid - b_u[users], minlength=n_items)
        b_i = np.divide(s_i, reg_item + n_i, out=np.zeros(n_items), where=(reg_item + n_i) > 0)
        s_u = np.bincount(users, weights=resid - b_i[items], minlength=n_users)
        b_u = np.divide(s_u, reg_user + n_u, out=np.zeros(n_users), where=(reg_user + n_u) > 0)
    return Biases(mu, b_u, b_i)


@register("bias")
class BiasModel(RecModel):
    """Global mean + user + item biases; fitted in closed form, not by gradient descent."""

    closed_form = True

    def __init__(self, inputs: ModelInputs, cfg: ModelConfig) -> None:
        super().__init__(inputs, cfg)
        self.mu = nn.Parameter(torch.zeros(1), requires_grad=False)
        self.bu = nn.Parameter(torch.zeros(inputs.n_users), requires_grad=False)
        self.bi = nn.Parameter(torch.zeros(inputs.n_items), requires_grad=False)
        # the chosen shrinkage, saved with the weights: [lambda_user, lambda_item]
        self.register_buffer("reg", torch.zeros(2))

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        y = self.mu + self.bu[batch["user"]] + self.bi[batch["item"]]  # (B,)
        y = y.clamp(EPS, 1 - EPS)
        return {"logit": torch.log(y) - torch.log1p(-y)}

    def set_biases(self, fit: Biases, reg: tuple[float, float]) -> None:
        with torch.no_grad():
            self.mu.fill_(fit.mu)
            self.bu.copy_(torch.as_tensor(fit.user, dtype=torch.float32))
            self.bi.copy_(torch.as_tensor(fit.item, dtype=torch.float32))
            self.reg.copy_(torch.tensor(reg, dtype=torch.float32))


def fit_bias_model(model: BiasModel, train_data, val_data, task: str) -> list[dict[str, float]]:
    """Fit ``model`` on ``train_data``; pick the shrinkage on ``val_data`` (never on test).

    Returns one row per shrinkage tried: ``reg_user``, ``reg_item`` and the validation metric.
    """
    from lr_recsys.evaluate import auc, rmse

    if task not in schema.TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {schema.TASKS}")
    cfg = model.cfg
    users, items = train_data.user.numpy(), train_data.item.numpy()
    field = "target" if task == schema.REGRESSION else "label"
    y = getattr(train_data, field).numpy()
    n_users, n_items = model.inputs.n_users, model.inputs.n_items
    if cfg.bias_reg is not None:
        grid = [(float(cfg.bias_reg), float(cfg.bias_reg))]
    elif len(val_data) == 0:
        grid = [(10.0, 25.0)]  # Koren's published values, when there is nothing to select on
    else:
        grid = list(itertools.product(REG_GRID, REG_GRID))
    rows, best = [], None
    for reg_u, reg_i in grid:
        fit = fit_biases(users, items, y, n_users, n_items, reg_u, reg_i, cfg.bias_iterations)
        row: dict[str, float] = {"reg_user": reg_u, "reg_item": reg_i}
        if len(val_data):
            pred = np.clip(fit.predict(val_data.user.numpy(), val_data.item.numpy()), EPS, 1 - EPS)
            if task == schema.REGRESSION:
                score = -rmse(pred, val_data.target.numpy())
                row["val_rmse"] = -score
            elif 0 < val_data.label.sum() < len(val_data):
                score = auc(pred, val_data.label.numpy())
                row["val_auc"] = score
            else:  # one class only in validation: select on the squared error of the label
                score = -rmse(pred, val_data.label.numpy())
        else:
            score = -math.inf
        rows.append(row)
        if best is None or score > best[0]:
            best = (score, fit, (reg_u, reg_i))
    model.set_biases(best[1], best[2])
    return rows
