"""The bias floor: closed form checked by hand on a tiny table, ridge optimality, validation-only
selection of the shrinkage."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lr_recsys import schema
from lr_recsys.config import ModelConfig
from lr_recsys.features import TensorData
from lr_recsys.models import ModelInputs, build_model
from lr_recsys.models.bias import EPS, REG_GRID, fit_bias_model, fit_biases

# users 1, 2; items 1, 2 (index 0 = unknown); y on the [0, 1] scale
USERS = np.array([1, 1, 2])
ITEMS = np.array([1, 2, 1])
Y = np.array([1.0, 0.5, 0.5])


def test_one_pass_matches_the_hand_computed_formula():
    # mu = 2/3
    # b_i1 = ((1 - 2/3) + (0.5 - 2/3)) / (1 + 2) = 1/18 ; b_i2 = (0.5 - 2/3) / (1 + 1) = -1/12
    # b_u1 = ((1 - 2/3 - 1/18) + (0.5 - 2/3 + 1/12)) / (1 + 2) = 7/108
    # b_u2 = (0.5 - 2/3 - 1/18) / (1 + 1) = -1/9
    fit = fit_biases(USERS, ITEMS, Y, 3, 3, reg_user=1.0, reg_item=1.0, iterations=1)
    assert fit.mu == pytest.approx(2 / 3)
    assert fit.item == pytest.approx([0.0, 1 / 18, -1 / 12])
    assert fit.user == pytest.approx([0.0, 7 / 108, -1 / 9])
    # an unseen user and item get the global mean
    assert fit.predict(np.array([0]), np.array([0])) == pytest.approx([2 / 3])
    assert fit.predict(np.array([2]), np.array([2])) == pytest.approx([2 / 3 - 1 / 9 - 1 / 12])


def test_converged_fit_solves_the_ridge_normal_equations():
    rng = np.random.default_rng(0)
    users, items = rng.integers(1, 30, 500), rng.integers(1, 40, 500)
    y = rng.random(500)
    fit = fit_biases(users, items, y, 30, 40, reg_user=3.0, reg_item=5.0, iterations=200)
    resid = y - fit.predict(users, items)
    # d/db_i: sum over the item's rows of the residual = lambda_item * b_i (same for users)
    assert np.bincount(items, resid, 40) == pytest.approx(5.0 * fit.item, abs=1e-8)
    assert np.bincount(users, resid, 30) == pytest.approx(3.0 * fit.user, abs=1e-8)
    # without shrinkage a table it can fit exactly is reproduced
    exact = fit_biases(USERS, ITEMS, Y, 3, 3, 0.0, 0.0, iterations=200)
    assert exact.predict(USERS, ITEMS) == pytest.approx(Y, abs=1e-6)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="shrinkage must be >= 0"):
        fit_biases(USERS, ITEMS, Y, 3, 3, -1.0, 1.0)
    with pytest.raises(ValueError, match="no training rows"):
        fit_biases(USERS[:0], ITEMS[:0], Y[:0], 3, 3, 1.0, 1.0)


def _split(users, items, y):
    n = len(users)
    return TensorData(
        user=torch.as_tensor(users), item=torch.as_tensor(items),
        hist=torch.zeros(n, 5, dtype=torch.long), ctx=torch.zeros(n, 1, dtype=torch.long),
        target=torch.as_tensor(y, dtype=torch.float32),
        label=torch.as_tensor((np.asarray(y) >= 0.75).astype(np.float32)),
    )  # fmt: skip


def _noisy(seed, n=2000):
    rng = np.random.default_rng(seed)
    true_u, true_i = rng.normal(0, 0.1, 50), rng.normal(0, 0.15, 80)
    users, items = rng.integers(1, 50, n), rng.integers(1, 80, n)
    y = np.clip(0.6 + true_u[users] + true_i[items] + rng.normal(0, 0.2, n), 0, 1)
    return users, items, y


@pytest.mark.parametrize("task", schema.TASKS)
def test_model_selects_shrinkage_on_validation_and_predicts_probabilities(task):
    train, val = _split(*_noisy(1)), _split(*_noisy(2, 500))
    model = build_model("bias", ModelInputs(50, 80, (1,)), ModelConfig())
    grid = fit_bias_model(model, train, val, task)
    assert len(grid) == len(REG_GRID) ** 2
    key = "val_rmse" if task == schema.REGRESSION else "val_auc"
    best = (min if task == schema.REGRESSION else max)(grid, key=lambda r: r[key])
    assert model.reg.tolist() == [best["reg_user"], best["reg_item"]]
    pred = model.predict(val.batch(torch.arange(len(val)))).numpy()
    assert ((pred >= EPS - 1e-6) & (pred <= 1 - EPS + 1e-6)).all()
    if task == schema.REGRESSION:  # noisy data: some shrinkage beats none
        assert best["reg_user"] + best["reg_item"] > 0


def test_fixed_shrinkage_skips_the_grid():
    train = _split(*_noisy(1))
    model = build_model("bias", ModelInputs(50, 80, (1,)), ModelConfig(bias_reg=7.0))
    grid = fit_bias_model(model, train, _split(*_noisy(2, 100)), schema.REGRESSION)
    assert [(r["reg_user"], r["reg_item"]) for r in grid] == [(7.0, 7.0)]


def test_embedding_l2_adds_the_squared_norm_of_the_rows_in_use():
    """Not the bias model, but the same base class: the per-example embedding penalty."""
    inputs = ModelInputs(5, 7, (1,))
    plain = build_model("mf", inputs, ModelConfig())
    reg = build_model("mf", inputs, ModelConfig(embedding_l2=0.5))
    reg.load_state_dict(plain.state_dict())
    batch = _split(np.array([1, 2, 2]), np.array([3, 4, 5]), [0.2, 0.9, 0.5]).batch(torch.arange(3))
    rows = [plain.p(batch["user"]), plain.q(batch["item"]), plain.bu(batch["user"]),
            plain.bi(batch["item"])]  # fmt: skip
    expected = 0.5 * sum(r.pow(2).sum() for r in rows) / 3
    diff = reg.loss(batch, schema.REGRESSION) - plain.loss(batch, schema.REGRESSION)
    assert diff.item() == pytest.approx(expected.item(), rel=1e-5)
    assert expected.item() > 0
