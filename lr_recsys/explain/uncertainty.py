"""Uncertainty scores for the ``uncertainty`` LLM budget policy (``lr_recsys.explain.budget``).

The paper (Sec. 6) finds that the explanations help most where the recommender is uncertain. The
first pass measures that uncertainty without any explanation: the no-explanation twin
(``lr-recsys-noexp``, the same network LR-Recsys trains, with its tuned settings) is trained once
per seed on the **training split only**, each member early-stopped on the validation split, and
every prepared pair (every split) is scored by the standard deviation of the members'
predictions (a deep ensemble, Lakshminarayanan et al. 2017). No label of the validation or test
split enters a score beyond the validation-based early stopping every model uses; the test labels
are never read.

A deep ensemble rather than MC dropout: it needs no dropout at inference (the twin's tuned dropout
differs by task), its members disagree where the training data leave the prediction open (rare
users and items), and on full ml-100k three members cost about a minute of CPU each.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from lr_recsys import schema
from lr_recsys.config import ModelConfig, TrainConfig, UncertaintyConfig
from lr_recsys.data import Prepared

log = logging.getLogger(__name__)

FIRST_PASS_MODEL = "lr-recsys-noexp"
UNCERTAINTY = "uncertainty"  # the scores column


@dataclass
class FirstPass:
    """What the first pass produced: one score per pair and what it cost."""

    scores: pd.Series  # index pair_key, the std of the members' predictions (>= 0)
    mean: pd.Series  # index pair_key, the members' mean prediction in [0, 1]
    seconds: float  # wall clock of the whole first pass (training + scoring)
    best_epochs: list[int]  # per member, the epoch early stopping kept

    def summary(self) -> dict[str, object]:
        s = self.scores.to_numpy()
        return {"pairs": len(s), "seconds": round(self.seconds, 1),
                "best_epochs": self.best_epochs, "mean": float(s.mean()) if len(s) else 0.0,
                "max": float(s.max()) if len(s) else 0.0}  # fmt: skip


def first_pass(
    prepared: Prepared, cfg: UncertaintyConfig | None = None, tuned_config: Path | None = None
) -> FirstPass:
    """Train the first-pass ensemble and score every prepared pair.

    Args:
        prepared: Prepared examples (all splits are scored; only the training split is learnt).
        cfg: Ensemble seeds, task and stopping; ``cfg.tuned_config`` wins over ``tuned_config``.
        tuned_config: The tuned-config file whose ``lr-recsys-noexp`` entry sets the network and
            optimiser (None: the paper's defaults).

    Returns:
        The scores (one per distinct ``pair_key``; a key that occurs twice gets its mean).
    """
    from lr_recsys.evaluate import predict_all
    from lr_recsys.train.experiment import build_experiment_data, fit_model
    from lr_recsys.tuned import configs_for, read_tuned

    cfg = cfg or UncertaintyConfig()
    start = time.perf_counter()
    tuned = read_tuned(cfg.tuned_config or tuned_config)
    base_train = TrainConfig(epochs=cfg.epochs, patience=cfg.patience, progress=False)
    model_cfg, train_cfg = configs_for(FIRST_PASS_MODEL, cfg.task, ModelConfig(), base_train, tuned)
    data = build_experiment_data(prepared, {None})
    splits = data.splits[None]
    keys = np.concatenate([prepared.split(s)[schema.PAIR_KEY].to_numpy() for s in schema.SPLITS])
    preds, epochs = [], []
    for seed in cfg.seeds:
        model, result = fit_model(
            FIRST_PASS_MODEL, cfg.task, data, model_cfg, replace(train_cfg, seed=seed)
        )
        preds.append(np.concatenate([predict_all(model, splits[s]) for s in schema.SPLITS]))
        epochs.append(int(result.best_epoch))
    stacked = np.stack(preds).astype(np.float64)  # (n_seeds, n_pairs)
    index = pd.Index(keys, name=schema.PAIR_KEY)
    scores = pd.Series(stacked.std(axis=0), index=index, name=UNCERTAINTY)
    mean = pd.Series(stacked.mean(axis=0), index=index, name="prediction")
    scores, mean = (x.groupby(level=0, sort=False).mean() for x in (scores, mean))
    out = FirstPass(scores, mean, time.perf_counter() - start, epochs)
    log.info("uncertainty first pass: %s", out.summary())
    return out


def scores_for(examples: pd.DataFrame, scores: pd.Series) -> np.ndarray:
    """``scores`` (indexed by ``pair_key``) aligned with the rows of ``examples``.

    Raises:
        ValueError: a row whose pair has no score, or a score that is not finite.
    """
    keys = examples[schema.PAIR_KEY]
    missing = ~keys.isin(scores.index)
    if missing.any():
        raise ValueError(
            f"{int(missing.sum())} of {len(keys)} pairs have no uncertainty score, e.g. "
            f"{keys[missing].head(3).tolist()} (scores from another dataset or split?)"
        )
    out = scores.reindex(keys.to_numpy()).to_numpy(dtype=np.float64)
    if not np.isfinite(out).all():
        raise ValueError(f"{int((~np.isfinite(out)).sum())} uncertainty scores are not finite")
    return out


def save_scores(scores: pd.Series, path: Path) -> Path:
    """Write the scores as parquet (``pair_key``, ``uncertainty``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = scores.rename(UNCERTAINTY).rename_axis(schema.PAIR_KEY).reset_index()
    frame.to_parquet(path, index=False)
    return path


def load_scores(path: Path) -> pd.Series:
    """Read what ``save_scores`` wrote.

    Raises:
        ValueError: the file lacks the ``pair_key`` or ``uncertainty`` column.
    """
    frame = pd.read_parquet(path)
    missing = {schema.PAIR_KEY, UNCERTAINTY} - set(frame.columns)
    if missing:
        raise ValueError(f"uncertainty scores {path}: missing column(s) {sorted(missing)}")
    return frame.set_index(schema.PAIR_KEY)[UNCERTAINTY]


def budget_scores(
    prepared: Prepared, cfg: UncertaintyConfig, tuned_config: Path | None = None
) -> tuple[pd.Series, dict[str, object]]:
    """The scores the ``uncertainty`` policy routes by: read from ``cfg.scores`` when that file
    exists, else computed by ``first_pass`` (and written to ``cfg.scores`` when it is set).
    Returns the scores and a summary (where they came from, the first pass's cost)."""
    if cfg.scores is not None and Path(cfg.scores).exists():
        scores = load_scores(cfg.scores)
        log.info("uncertainty: %d scores read from %s", len(scores), cfg.scores)
        return scores, {"source": str(cfg.scores), "pairs": len(scores)}
    result = first_pass(prepared, cfg, tuned_config)
    if cfg.scores is not None:
        save_scores(result.scores, cfg.scores)
    return result.scores, {"source": "first_pass", **result.summary()}
