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
    item_vectors: np.ndarray | None = None  # (n_items, 384) item-text vectors, row 0 zeros
    distill_metrics: dict[str, object] = field(default_factory=dict)
    explanation_sources: dict[str, pd.Series] = field(default_factory=dict)  # llm|distilled
    texts: pd.DataFrame | None = None  # positive/negative LLM texts by pair_key, when read

    @property
    def rating_span(self) -> float:
        return self.prepared.config.rating_max - self.prepared.config.rating_min

    def inputs(self, source: str | None) -> ModelInputs:
        pos = self.splits[source][schema.SPLIT_TRAIN].pos
        dim = int(pos.shape[1]) if pos is not None else 8
        text_dim = int(self.item_vectors.shape[1]) if self.item_vectors is not None else 0
        return ModelInputs(
            self.space.n_users, self.space.n_items, tuple(self.space.context_sizes), dim, text_dim
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


# explanation sources built from the LLM table: how pairs without an LLM explanation are filled
AE_MODES = {"ae": "mixed", "ae-llm": "llm", "ae-distilled": "distilled"}


def attach_item_vectors(data: ExperimentData, cache_dir=None) -> np.ndarray:
    """The catalogue's item-text vectors aligned with ``data.space`` (computed once, cached)."""
    if data.item_vectors is None:
        from lr_recsys.encoder.items import item_text_matrix

        items = data.prepared.items
        texts = dict(zip(items[schema.ITEM_ID], items[schema.ITEM_TEXT], strict=True))
        data.item_vectors = item_text_matrix(data.space.item_index, texts, cache_dir)
    return data.item_vectors


def fit_ae_vectors(
    frames: dict[str, pd.DataFrame], explanations: pd.DataFrame, ae_cfg: AEConfig | None
) -> tuple[object, dict, pd.DataFrame, tuple[np.ndarray, np.ndarray]]:
    """Fit the AutoEncoder on the training split's LLM explanations and embed every LLM pair;
    returns (encoder, metrics, standardised vectors by pair key, (mean, std))."""
    from lr_recsys.encoder import ExplanationEncoder

    keyed = {
        s: df.merge(explanations, on=schema.PAIR_KEY, how="inner").drop_duplicates(schema.PAIR_KEY)
        for s, df in frames.items()
    }
    train_df = keyed[schema.SPLIT_TRAIN]
    if train_df.empty:
        raise ValueError(
            "no training-split pair has an LLM explanation; the AutoEncoder and the distiller "
            "learn from them (raise llm_pairs or explain the training split)"
        )
    corpus = train_df[schema.POSITIVE].tolist() + train_df[schema.NEGATIVE].tolist()
    encoder, metrics = ExplanationEncoder.fit(corpus, ae_cfg)
    keyed = {s: df for s, df in keyed.items() if len(df)}
    raw = {s: (encoder.encode(df[schema.POSITIVE].tolist()), encoder.encode(df[schema.NEGATIVE].tolist()))
           for s, df in keyed.items()}  # fmt: skip
    vectors, stats = _standardise(raw)
    rows = []
    for s, df in keyed.items():
        pos, neg = vectors[s]
        rows.append(pd.DataFrame({schema.POS_EMB: list(pos.astype(np.float32)),
                                  schema.NEG_EMB: list(neg.astype(np.float32))},
                                 index=pd.Index(df[schema.PAIR_KEY].to_numpy(), name=schema.PAIR_KEY)))  # fmt: skip
    return encoder, metrics, pd.concat(rows), stats


def build_experiment_data(
    prepared: Prepared,
    sources: set[str | None],
    explanations: pd.DataFrame | None = None,
    ae_cfg: AEConfig | None = None,
    item_vectors: bool = False,
    distill_cfg=None,
) -> ExperimentData:
    """Encode every split for each requested explanation source.

    Args:
        prepared: Prepared examples.
        sources: Explanation sources the models need: ``None``; ``"ae"`` (AutoEncoder vectors of
            the LLM's explanations where the table has the pair, distilled vectors elsewhere);
            ``"ae-llm"`` (LLM vectors, zeros = the training mean where the LLM did not explain);
            ``"ae-distilled"`` (distilled vectors for every pair); ``"minilm"`` (Ablation 2: raw
            sentence-encoder vectors; the table must cover every pair).
        explanations: Explanation table, required when a source other than ``None`` is asked.
        ae_cfg: AutoEncoder settings.
        item_vectors: Also attach the item-text vectors (content-control models need them).
        distill_cfg: ``lr_recsys.distill.DistillConfig`` of the distilled explainer.
    """
    space = FeatureSpace.build(prepared)
    data = ExperimentData(prepared, space)
    frames = {s: prepared.split(s) for s in schema.SPLITS}
    data.splits[None] = {s: to_tensors(df, space) for s, df in frames.items()}
    if item_vectors:
        attach_item_vectors(data)
    text_sources = {s for s in sources if s is not None}
    if not text_sources:
        return data
    if explanations is None:
        raise ValueError(
            f"models need explanation vectors ({sorted(text_sources)}) but no explanation table was given"
        )
    unknown = text_sources - set(AE_MODES) - {"minilm"}
    if unknown:
        raise ValueError(
            f"unknown explanation source(s) {sorted(unknown)}; expected {sorted(AE_MODES)} or 'minilm'"
        )
    ae_sources = sorted(text_sources & set(AE_MODES))
    if ae_sources:
        _build_ae_sources(data, frames, explanations, ae_sources, ae_cfg, distill_cfg)
    if "minilm" in text_sources:
        from lr_recsys.encoder.sentence import MiniLMEncoder

        attached = {s: attach_explanations(df, explanations) for s, df in frames.items()}
        encoder = MiniLMEncoder()
        data.encoders["minilm"] = encoder
        vectors = {
            s: (encoder.encode(df[schema.POSITIVE].tolist()), encoder.encode(df[schema.NEGATIVE].tolist()))
            for s, df in attached.items()
        }  # fmt: skip
        vectors, data.standardisers["minilm"] = _standardise(vectors)
        data.splits["minilm"] = {
            s: to_tensors(attached[s], space, vectors[s]) for s in schema.SPLITS
        }
    return data


def _build_ae_sources(
    data: ExperimentData, frames: dict[str, pd.DataFrame], explanations: pd.DataFrame,
    sources: list[str], ae_cfg: AEConfig | None, distill_cfg,
) -> None:  # fmt: skip
    """AutoEncoder vectors of the LLM pairs, the distilled explainer for the rest (when needed)."""
    from lr_recsys import distill

    encoder, metrics, llm, stats = fit_ae_vectors(frames, explanations, ae_cfg)
    data.encoder_metrics["ae"] = metrics
    data.encoders["ae"] = encoder
    data.standardisers["ae"] = stats
    every = pd.concat(frames.values())
    covered = bool(every[schema.PAIR_KEY].isin(llm.index).all())
    model = None
    if not covered or "ae-distilled" in sources:
        train = frames[schema.SPLIT_TRAIN]
        train = train[train[schema.PAIR_KEY].isin(llm.index)].drop_duplicates(schema.PAIR_KEY)
        val = frames[schema.SPLIT_VAL]
        val = val[val[schema.PAIR_KEY].isin(llm.index)].drop_duplicates(schema.PAIR_KEY)
        model, data.distill_metrics = distill.fit_distiller(
            train, llm, data.space, attach_item_vectors(data), distill_cfg, heldout=val
        )
        data.encoders["distiller"] = model
    for source in sources:
        mode = AE_MODES[source]
        splits = {}
        for s, df in frames.items():
            vec = distill.explanation_vectors(df, llm, model, data.space, mode)
            rows = vec.loc[df[schema.PAIR_KEY].to_numpy()]
            pos = np.stack(rows[schema.POS_EMB].to_numpy()).astype(np.float32)
            neg = np.stack(rows[schema.NEG_EMB].to_numpy()).astype(np.float32)
            splits[s] = to_tensors(df, data.space, (pos, neg))
            if source == "ae":
                data.explanation_sources[s] = rows[schema.EXPLANATION_SOURCE]
        data.splits[source] = splits


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
        if schema.EXPLANATION_SOURCE in rows.columns:
            data.explanation_sources[s] = rows[schema.EXPLANATION_SOURCE]
    data.splits[source] = splits
    if {schema.POSITIVE, schema.NEGATIVE} <= set(vectors.columns):
        texts = vectors[[schema.POSITIVE, schema.NEGATIVE]]
        data.texts = texts[texts[schema.POSITIVE].fillna("").astype(str).str.len() > 0]
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
    if getattr(model, "uses_item_vectors", False):
        if data.item_vectors is None:
            raise ValueError(f"model {name!r} reads item-text vectors, which were not built")
        model.set_item_vectors(data.item_vectors)
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
