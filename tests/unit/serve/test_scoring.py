"""Request-time scoring on real ml-100k ids: distilled vectors computed online are exactly the
ones training computed for the same pair (``lr_recsys.distill.predict``), LLM vectors are used
where given, and a fallback always says why."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from lr_recsys import schema
from lr_recsys.config import ModelConfig
from lr_recsys.distill import DistilledExplainer, predict
from lr_recsys.features import FeatureSpace
from lr_recsys.models import ModelInputs, build_model
from lr_recsys.serve.scoring import (
    NO_DISTILLER,
    NO_EXPLANATIONS,
    NO_HISTORY,
    Distiller,
    distil,
    pair_keys,
    score_candidates,
)


@pytest.fixture(scope="module")
def setup(ml100k):
    torch.manual_seed(0)
    space = FeatureSpace.build(ml100k)
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(space.n_items, 16)).astype(np.float32)
    matrix[0] = 0.0  # the padding / unknown row, as attach_item_vectors builds it
    explainer = DistilledExplainer(space.n_items, 16, tuple(space.context_sizes))
    explainer.set_item_vectors(matrix)
    explainer.eval()
    inputs = ModelInputs(space.n_users, space.n_items, tuple(space.context_sizes))
    model = build_model("lr-recsys", inputs, ModelConfig()).eval()
    return ml100k, space, Distiller(explainer, space), model


@pytest.mark.parametrize("position", [-1, 1])  # a full history and a padded one (2nd rating)
def test_online_distillation_equals_the_training_path(setup, position):
    prepared, space, distiller, _ = setup
    mine = prepared.examples[prepared.examples[schema.USER_ID] == "1"].sort_values(schema.TIMESTAMP)
    rows = mine.iloc[[position]]
    user, history = "1", [h for h in rows[schema.HISTORY].iloc[0] if h != schema.PAD_ITEM]
    assert (len(history) == 5) == (position == -1)
    cands = ["50", "181", "258", "1682"]
    pos, neg = distil(distiller, user, history, cands)
    frame = pd.DataFrame({
        schema.USER_ID: [user] * 4, schema.ITEM_ID: cands,
        schema.HISTORY: [list(rows[schema.HISTORY].iloc[0])] * 4,
    })  # fmt: skip
    want_pos, want_neg = predict(distiller.model, frame, space)
    np.testing.assert_allclose(pos, want_pos, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(neg, want_neg, rtol=1e-6, atol=1e-6)
    assert not np.allclose(pos[0], pos[1])  # per-candidate vectors, not one constant


def test_llm_vectors_where_given_distilled_elsewhere(setup):
    _, space, distiller, model = setup
    cands = ["50", "181", "258"]
    llm_pos = np.full((3, 8), 2.0, np.float32)
    llm_neg = np.full((3, 8), -2.0, np.float32)
    has = np.array([True, False, False])
    out = score_candidates(model, space, distiller, "1", ["1", "2"], cands, llm_pos, llm_neg, has)
    assert list(out.source) == ["llm", "distilled", "distilled"] and out.reason is None
    assert out.attention.shape == (3, 6)
    np.testing.assert_allclose(out.attention.sum(1), 1.0, atol=1e-5)
    # the LLM vector changes the first candidate's score; the distilled ones do not depend on it
    other = score_candidates(model, space, distiller, "1", ["1", "2"], cands, -llm_pos, -llm_neg, has)  # fmt: skip
    assert other.scores[0] != pytest.approx(out.scores[0], abs=1e-7)
    np.testing.assert_allclose(other.scores[1:], out.scores[1:], rtol=1e-6)


@pytest.mark.parametrize(
    ("user", "history", "with_distiller", "reads", "reason"),
    [
        ("1", ["1"], False, True, NO_DISTILLER),
        ("1", ["1"], True, False, NO_EXPLANATIONS),
        ("nobody", None, True, True, NO_HISTORY),
    ],
)
def test_fallback_only_where_nothing_can_be_distilled_and_says_why(setup, user, history, with_distiller, reads, reason):  # fmt: skip
    _, space, distiller, model = setup
    out = score_candidates(
        model, space, distiller if with_distiller else None, user, history, ["50", "181"],
        reads_explanations=reads,
    )  # fmt: skip
    assert list(out.source) == ["fallback", "fallback"] and out.reason == reason


def test_a_new_user_with_a_history_is_distilled(setup):
    _, space, distiller, model = setup
    out = score_candidates(model, space, distiller, "new-user", ["50", "181"], ["1", "2"])
    assert list(out.source) == ["distilled", "distilled"]


def test_pair_keys_follow_the_current_history():
    a = pair_keys("1", ["10", "20"], ["5"], 5)[0]
    assert a == schema.pair_key("1", ["", "", "", "10", "20"], "5")
    assert pair_keys("1", ["10", "20", "30"], ["5"], 5)[0] != a  # a new history: another pair
