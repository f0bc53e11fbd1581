"""The distilled explainer on a real sample: the committed LLM table (1,000 ml-100k pairs chosen by
the budget policy, attribute-aware prompts, Gemma 3 270M) -> AutoEncoder -> distiller; on held-out
LLM pairs (validation split) it must beat predicting the training mean. Plus the vector table's
contract: every pair gets a vector and its source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lr_recsys import schema
from lr_recsys.config import AEConfig
from lr_recsys.distill import (
    DISTILLED,
    LLM,
    DistillConfig,
    explanation_vectors,
    fit_distiller,
    load_distiller,
    predict,
    save_distiller,
)
from lr_recsys.explain.table import load_explanations
from lr_recsys.features import FeatureSpace
from lr_recsys.train.experiment import ExperimentData, attach_item_vectors, fit_ae_vectors

TABLE = Path(__file__).parents[2] / "benchmarks" / "data" / "ml100k_llm1000_attributes.parquet"


@pytest.fixture(scope="module")
def fitted(ml100k):
    table = load_explanations(TABLE)
    frames = {s: ml100k.split(s) for s in schema.SPLITS}
    _, _, llm, _ = fit_ae_vectors(frames, table, AEConfig(epochs=30, progress=False))
    space = FeatureSpace.build(ml100k)
    matrix = attach_item_vectors(ExperimentData(ml100k, space))
    ex = ml100k.examples
    train = ex[(ex[schema.SPLIT] == schema.SPLIT_TRAIN) & ex[schema.PAIR_KEY].isin(llm.index)]
    val = ex[(ex[schema.SPLIT] == schema.SPLIT_VAL) & ex[schema.PAIR_KEY].isin(llm.index)]
    model, metrics = fit_distiller(train, llm, space, matrix, DistillConfig(seed=0), heldout=val)
    return model, metrics, llm, space, val


def test_fidelity_on_heldout_llm_pairs_beats_the_mean_predictor(fitted):
    _, m, *_ = fitted
    assert m["heldout_pairs"] >= 50  # the budget policy reaches the validation split too
    for side in ("pos", "neg"):
        assert m[f"{side}_mse"] < m[f"{side}_mse_mean_predictor"], m
        assert m[f"{side}_cosine"] > m[f"{side}_cosine_mean_predictor"], m


def test_every_pair_gets_a_vector_and_its_source(fitted, ml100k):
    model, _, llm, space, _ = fitted
    sample = ml100k.examples.iloc[::500]
    mixed = explanation_vectors(sample, llm, model, space, "mixed")
    assert list(mixed.index) == list(sample[schema.PAIR_KEY])
    is_llm = sample[schema.PAIR_KEY].isin(llm.index).to_numpy()
    assert (mixed[schema.EXPLANATION_SOURCE].to_numpy() == np.where(is_llm, LLM, DISTILLED)).all()
    # an LLM pair keeps its own embedding; the others get the distiller's
    first = sample[schema.PAIR_KEY][is_llm].iloc[0] if is_llm.any() else None
    if first is not None:
        assert np.allclose(mixed.loc[first, schema.POS_EMB], llm.loc[first, schema.POS_EMB])
    dp, dn = predict(model, sample, space)
    assert np.allclose(np.stack(mixed[schema.POS_EMB][~is_llm]), dp[~is_llm])
    only_llm = explanation_vectors(sample, llm, model, space, "llm")
    assert np.allclose(np.stack(only_llm[schema.NEG_EMB][~is_llm]), 0.0)  # the training mean
    distilled = explanation_vectors(sample, llm, model, space, "distilled")
    assert (distilled[schema.EXPLANATION_SOURCE] == DISTILLED).all()
    with pytest.raises(ValueError, match="unknown explanation mode"):
        explanation_vectors(sample, llm, model, space, "average")


def test_saved_distiller_predicts_the_same(fitted, tmp_path):
    model, _, _, space, val = fitted
    save_distiller(model, space, tmp_path / "d")
    again, space2 = load_distiller(tmp_path / "d")
    assert space2.item_index == space.item_index
    for a, b in zip(predict(model, val, space), predict(again, val, space2), strict=True):
        assert np.allclose(a, b)


def test_too_few_llm_pairs_is_a_clear_error(fitted):
    _, _, llm, space, val = fitted
    with pytest.raises(ValueError, match="at least 2 are needed"):
        fit_distiller(val.head(1), llm, space, np.zeros((space.n_items, 384), np.float32))
    missing = pd.DataFrame(val.head(3)).assign(**{schema.PAIR_KEY: ["x", "y", "z"]})
    with pytest.raises(ValueError, match="have no LLM embedding"):
        fit_distiller(missing, llm, space, np.zeros((space.n_items, 384), np.float32))
