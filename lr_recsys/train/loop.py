"""One training loop for every model and both tasks.

Seeded and deterministic on CPU; Adam; mini-batches drawn by a seeded permutation; after every
epoch the validation split is scored and the best state (by RMSE for regression, AUC for
classification) is kept and restored at the end.
"""

from __future__ import annotations

import copy
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from lr_recsys.config import TrainConfig
from lr_recsys.evaluate import predict_all, primary_metric, task_metrics
from lr_recsys.features import TensorData
from lr_recsys.models.base import RecModel

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What training produced: the best epoch, its validation metrics and the history."""

    best_epoch: int
    best_val: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    samples_per_s: float = 0.0


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch; make torch deterministic."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)


def train(
    model: RecModel,
    train_data: TensorData,
    val_data: TensorData,
    task: str,
    cfg: TrainConfig,
    rating_span: float = 4.0,
    desc: str = "train",
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``train_data``; keep the best state on ``val_data``.

    Args:
        model: Any registered model.
        train_data: Training split.
        val_data: Validation split (temporal slice of each user's training part).
        task: ``regression`` or ``classification``.
        cfg: Optimisation settings.
        rating_span: Rating range, for metrics on the rating scale.
        desc: Progress bar label.
        on_epoch: Called with each epoch's row (train loss, validation metrics); Ray Tune
            reports through it so that its scheduler can stop a trial early.

    Returns:
        The training result; ``model`` holds the best validation state.
    """
    if len(train_data) == 0:
        raise ValueError("training split is empty")
    torch.set_num_threads(cfg.num_threads)
    seed_everything(cfg.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    generator = torch.Generator().manual_seed(cfg.seed)
    metric, higher = primary_metric(task)
    best_score, best_state, best_epoch, best_val = None, None, -1, {}
    history: list[dict[str, float]] = []
    n, stale, seen, start = len(train_data), 0, 0, time.perf_counter()
    bar = tqdm(range(cfg.epochs), desc=desc, disable=not cfg.progress, leave=False)
    for epoch in bar:
        model.train()
        perm = torch.randperm(n, generator=generator)
        total = 0.0
        for s in range(0, n, cfg.batch_size):
            batch = train_data.batch(perm[s : s + cfg.batch_size])
            loss = model.loss(batch, task)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch["user"])
        seen += n
        val = (
            task_metrics(predict_all(model, val_data), val_data, task, rating_span)
            if len(val_data)
            else {}
        )
        row = {"epoch": epoch, "train_loss": total / n, **{f"val_{k}": v for k, v in val.items()}}
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)
        score = val.get(metric, -total if higher else total)
        improved = best_score is None or (score > best_score if higher else score < best_score)
        if improved:
            best_score, best_epoch, best_val = score, epoch, val
            best_state = copy.deepcopy(model.state_dict())
            stale = 0
        else:
            stale += 1
        bar.set_postfix(loss=f"{total / n:.4f}", **{f"val_{metric}": f"{score:.4f}"})
        if cfg.patience is not None and stale >= cfg.patience:
            log.info("%s: early stop at epoch %d (best %d)", desc, epoch, best_epoch)
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    seconds = time.perf_counter() - start
    return TrainResult(best_epoch, best_val, history, seconds, seen / max(seconds, 1e-9))
