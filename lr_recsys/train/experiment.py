"""From prepared data (+ explanations) to tensors, trained models and test metrics.

The text encoders are fitted on the **training split only** (positive and negative explanations
together); their vectors are standardised with training-split statistics before they enter the
DNN.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lr_recsys import schema
from lr_recsys.config import AEConfig, ModelConfig, TrainConfig
from lr_recsys.data.prepare import Prepared
from lr_recsys.evaluate import predict_all, task_metrics
from lr_recsys.explain.table import attach_explanations
from lr_recsys.features import FeatureSpace, TensorData, to_tensors
from lr_recsys.models import ModelInputs, RecModel, build_model, explanation_source
from lr_recsys.train.loop import TrainResult, seed_everything, train

log = logging.getLogger(__name__)


@dataclass
class ExperimentData:
    """Tensors of every split, per explanation source (``None`` = no explanation vectors)."""

    prepared: Prepared
    space: FeatureSpace
    splits: dict[str | None, dict[str, TensorData]] = field(default_factory=dict)
    encoder_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    encoders: dict[str, object] = field(default_factory=dict)
    standardisers: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def rating_span(self) -> float:
        return self.prepared.config.rating_max - self.prepared.config.rating_min

    def inputs(self, source: str | None) -> ModelInputs:
        pos = self.splits[source][schema.SPLIT_TRAIN].pos
        dim = int(pos.shape[1]) if pos is not None else 8
        return ModelInputs(
            self.space.n_users, self.space.n_items, tuple(self.space.context_sizes), dim
        )


def standardiser(train_pos: np.ndarray, train_neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) of the training split's positive and negative vectors together."""
    stacked = np.concatenate([train_pos, train_neg])
    return stacked.mean(0), stacked.std(0) + 1e-6


def _standardise(
    vectors: dict[str, tuple[np.ndarray, np.ndarray]],
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], tuple[np.ndarray, np.ndarray]]:
    """Standardise with training-split statistics; returns the vectors and (mean, std)."""
    mean, std = standardiser(*vectors[schema.SPLIT_TRAIN])
    return {k: ((p - mean) / std, (n - mean) / std) for k, (p, n) in vectors.items()}, (mean, std)


def build_experiment_data(
    prepared: Prepared,
    sources: set[str | None],
    explanations: pd.DataFrame | None = None,
    ae_cfg: AEConfig | None = None,
) -> ExperimentData:
    """Encode every split for each requested explanation source.

    Args:
        prepared: Prepared examples.
        sources: Explanation sources the models need (``None``, ``"ae"``, ``"minilm"``).
        explanations: Explanation table, required when a source other than ``None`` is asked.
        ae_cfg: AutoEncoder settings.
    """
    space = FeatureSpace.build(prepared)
    data = ExperimentData(prepared, space)
    frames = {s: prepared.split(s) for s in schema.SPLITS}
    data.splits[None] = {s: to_tensors(df, space) for s, df in frames.items()}
    text_sources = {s for s in sources if s is not None}
    if not text_sources:
        return data
    if explanations is None:
        raise ValueError(
            f"models need explanation vectors ({sorted(text_sources)}) but no explanation table was given"
        )
    frames = {s: attach_explanations(df, explanations) for s, df in frames.items()}
    for source in sorted(text_sources):
        if source == "ae":
            from lr_recsys.encoder import ExplanationEncoder

            train_df = frames[schema.SPLIT_TRAIN]
            corpus = train_df[schema.POSITIVE].tolist() + train_df[schema.NEGATIVE].tolist()
            encoder, metrics = ExplanationEncoder.fit(corpus, ae_cfg)
            data.encoder_metrics["ae"] = metrics
            data.encoders["ae"] = encoder
        elif source == "minilm":
            from lr_recsys.encoder.sentence import MiniLMEncoder

            encoder = MiniLMEncoder()
            data.encoders["minilm"] = encoder
        else:
            raise ValueError(f"unknown explanation source {source!r}; expected 'ae' or 'minilm'")
        vectors = {
            s: (
                encoder.encode(df[schema.POSITIVE].tolist()),
                encoder.encode(df[schema.NEGATIVE].tolist()),
            )
            for s, df in frames.items()
        }
        vectors, data.standardisers[source] = _standardise(vectors)
        data.splits[source] = {s: to_tensors(frames[s], space, vectors[s]) for s in schema.SPLITS}
    return data


def build_from_vectors(prepared: Prepared, source: str, vectors: pd.DataFrame) -> ExperimentData:
    """Tensors of every split from explanation vectors computed elsewhere (the feature store).

    Args:
        prepared: Prepared examples.
        source: The explanation source the vectors came from (``"ae"``).
        vectors: ``pos_emb`` / ``neg_emb`` arrays indexed by ``pair_key``, already standardised
            with training-split statistics (as the features step writes them).
    """
    data = build_experiment_data(prepared, {None})
    splits = {}
    for s in schema.SPLITS:
        df = prepared.split(s)
        missing = sorted(set(df[schema.PAIR_KEY]) - set(vectors.index))
        if missing:
            raise ValueError(
                f"{len(missing)} {s} pairs have no explanation vectors, e.g. {missing[:3]}"
            )
        rows = vectors.loc[df[schema.PAIR_KEY]]
        pos, neg = (
            np.stack(rows[c].to_numpy()).astype(np.float32)
            for c in (schema.POS_EMB, schema.NEG_EMB)
        )
        splits[s] = to_tensors(df, data.space, (pos, neg))
    data.splits[source] = splits
    return data


def _fit_closed_form(
    model: RecModel, splits: dict[str, TensorData], task: str, span: float
) -> TrainResult:
    """Fit a closed-form model (``bias``); its shrinkage grid plays the role of epochs."""
    import time

    from lr_recsys.models.bias import fit_bias_model

    start = time.perf_counter()
    grid = fit_bias_model(model, splits[schema.SPLIT_TRAIN], splits[schema.SPLIT_VAL], task)
    val = splits[schema.SPLIT_VAL]
    best_val = task_metrics(predict_all(model, val), val, task, span) if len(val) else {}
    seconds = time.perf_counter() - start
    n = len(splits[schema.SPLIT_TRAIN]) * len(grid)
    return TrainResult(0, best_val, grid, seconds, n / max(seconds, 1e-9))


@dataclass
class RunResult:
    """One trained model on one task and seed."""

    model_name: str
    task: str
    seed: int
    test: dict[str, float]
    train: TrainResult
    model: RecModel


def fit_model(
    name: str,
    task: str,
    data: ExperimentData,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> tuple[RecModel, TrainResult]:
    """Build and train one model (best validation state restored); the test split is not read."""
    source = explanation_source(name)
    if source not in data.splits:
        raise ValueError(
            f"model {name!r} needs {source!r} explanation vectors, which were not built"
        )
    splits = data.splits[source]
    seed_everything(train_cfg.seed)  # model initialisation is part of the seeded run
    model = build_model(name, data.inputs(source), model_cfg)
    if getattr(model, "closed_form", False):
        return model, _fit_closed_form(model, splits, task, data.rating_span)
    result = train(
        model,
        splits[schema.SPLIT_TRAIN],
        splits[schema.SPLIT_VAL],
        task,
        train_cfg,
        data.rating_span,
        desc=f"{name}/{task}/seed{train_cfg.seed}",
        on_epoch=on_epoch,
    )
    return model, result


def run_model(
    name: str,
    task: str,
    data: ExperimentData,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
) -> RunResult:
    """Build, train (validation-based checkpoint selection) and test one model."""
    model, result = fit_model(name, task, data, model_cfg, train_cfg)
    test_split = data.splits[explanation_source(name)][schema.SPLIT_TEST]
    test = task_metrics(predict_all(model, test_split), test_split, task, data.rating_span)
    log.info(
        "%s %s seed %d: best epoch %d, test %s", name, task, train_cfg.seed, result.best_epoch, test
    )
    return RunResult(name, task, train_cfg.seed, test, result, model)
