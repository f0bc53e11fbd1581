"""Every model smoke-trains; invariance and directional checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lr_recsys import schema
from lr_recsys.config import AEConfig, ModelConfig, TrainConfig
from lr_recsys.encoder.items import ITEM_TEXT_DIM
from lr_recsys.models import (
    LRRecsys,
    build_model,
    explanation_source,
    model_names,
    token_importance,
)
from lr_recsys.train.experiment import build_experiment_data, run_model

ONE_EPOCH = TrainConfig(epochs=1, progress=False)


@pytest.fixture(scope="module")
def all_sources(planted):
    """Planted data encoded for every explanation source, MiniLM included, with random item-text
    vectors for the content control."""
    data, table = planted
    data = build_experiment_data(
        data.prepared, {None, "ae", "minilm"}, table, AEConfig(epochs=2, progress=False)
    )
    # the LLM-only / distilled-only ablations smoke-train on the AE vectors: same architecture
    # and width (building them for real fits the distilled explainer, not a model smoke test)
    for source in ("ae-llm", "ae-distilled"):
        data.splits[source] = data.splits["ae"]
    vectors = np.random.default_rng(0).standard_normal((data.space.n_items, ITEM_TEXT_DIM))
    vectors[0] = 0.0  # padding / unknown item
    data.item_vectors = vectors.astype(np.float32)
    return data


@pytest.mark.parametrize("name", model_names())
@pytest.mark.parametrize("task", schema.TASKS)
def test_every_model_trains_one_epoch(all_sources, name, task):
    run = run_model(name, task, all_sources, ModelConfig(), ONE_EPOCH)
    if name == "bias":  # closed form: its history is the shrinkage grid scored on validation
        assert len(run.train.history) > 1 and run.train.best_epoch == 0
    else:
        assert len(run.train.history) == 1
        assert np.isfinite(run.train.history[0]["train_loss"])
    metric = "rmse" if task == schema.REGRESSION else "auc"
    assert 0.0 <= run.test[metric] <= 1.0


def test_training_is_deterministic(planted):
    data, _ = planted
    cfg = TrainConfig(epochs=2, progress=False, seed=3)
    a = run_model("lr-recsys", schema.REGRESSION, data, ModelConfig(), cfg)
    b = run_model("lr-recsys", schema.REGRESSION, data, ModelConfig(), cfg)
    assert a.test == b.test
    c = run_model(
        "lr-recsys",
        schema.REGRESSION,
        data,
        ModelConfig(),
        TrainConfig(epochs=2, progress=False, seed=4),
    )
    assert a.test != c.test


def _batch(data, source="ae", n=64):
    split = data.splits[source][schema.SPLIT_TEST]
    return split.batch(torch.arange(min(n, len(split))))


def test_predictions_do_not_depend_on_batch_composition(planted):
    data, _ = planted
    model = build_model("lr-recsys", data.inputs("ae"), ModelConfig()).eval()
    batch = _batch(data)
    full = model.predict(batch)
    perm = torch.randperm(len(full), generator=torch.Generator().manual_seed(0))
    permuted = model.predict({k: v[perm] for k, v in batch.items()})
    torch.testing.assert_close(permuted, full[perm])
    single = model.predict({k: v[:1] for k, v in batch.items()})
    torch.testing.assert_close(single, full[:1])


def test_no_explanation_twin_ignores_explanation_vectors(planted):
    data, _ = planted
    model = build_model("lr-recsys-noexp", data.inputs(None), ModelConfig()).eval()
    batch = _batch(data)
    batch["pos"], batch["neg"] = (
        torch.randn(len(batch["user"]), 8),
        torch.randn(len(batch["user"]), 8),
    )
    a = model.predict(batch)
    batch["pos"], batch["neg"] = torch.randn_like(batch["pos"]), torch.randn_like(batch["neg"])
    torch.testing.assert_close(model.predict(batch), a)


def test_lr_recsys_uses_both_explanations_and_pos_only_ignores_negative(planted):
    data, _ = planted
    batch = _batch(data)
    full = build_model("lr-recsys", data.inputs("ae"), ModelConfig()).eval()
    pos_only = build_model("lr-recsys-pos", data.inputs("ae"), ModelConfig()).eval()
    changed = dict(batch, neg=torch.randn_like(batch["neg"]) * 3)
    assert not torch.allclose(full.predict(changed), full.predict(batch))
    torch.testing.assert_close(pos_only.predict(changed), pos_only.predict(batch))


def test_attention_over_six_tokens_is_returned(planted):
    data, _ = planted
    model = build_model("lr-recsys", data.inputs("ae"), ModelConfig()).eval()
    assert isinstance(model, LRRecsys)
    out = model(_batch(data, n=10))
    assert out["attention"].shape == (10, len(schema.TOKEN_NAMES), len(schema.TOKEN_NAMES))
    torch.testing.assert_close(out["attention"].sum(-1), torch.ones(10, 6))
    importance = token_importance(out["attention"])
    torch.testing.assert_close(importance.sum(-1), torch.ones(10))
    ncf = build_model("lr-recsys-ncf", data.inputs("ae"), ModelConfig())
    assert "attention" not in ncf(_batch(data, n=4))


def test_history_padding_does_not_change_the_sequence_embedding(planted):
    data, _ = planted
    model = build_model("lr-recsys", data.inputs("ae"), ModelConfig()).eval()
    # a history of one item vs the same history whose padded slots hold garbage that is masked:
    # pads are index 0 whose embedding is pinned at zero, so the output must not change when the
    # pad embedding row would be perturbed
    batch = _batch(data, n=8)
    batch["hist"] = torch.zeros_like(batch["hist"])
    batch["hist"][:, -1] = batch["item"]
    before = model.predict(batch)
    with torch.no_grad():
        model.item_emb.weight[0].fill_(5.0)
    after = model.predict(batch)
    torch.testing.assert_close(before, after)


def test_directional_high_explanation_raises_the_score(planted):
    """After learning the planted signal, swapping in a 'likes' explanation raises the score."""
    data, table = planted
    run = run_model(
        "lr-recsys",
        schema.CLASSIFICATION,
        data,
        ModelConfig(),
        TrainConfig(epochs=12, progress=False),
    )
    encoder = data.encoders["ae"]
    ex = data.prepared.split(schema.SPLIT_TEST)
    low = ex[schema.LABEL].to_numpy() == 0
    idx = torch.from_numpy(np.flatnonzero(low)[:50])
    batch = data.splits["ae"][schema.SPLIT_TEST].batch(idx)
    liked_pos = "The consumer watched this movie because the consumer adores drama films"
    liked_neg = "The consumer did not watch this movie because the consumer adores comedy plots"
    train_df = data.prepared.split(schema.SPLIT_TRAIN).merge(table, on=schema.PAIR_KEY)
    stacked = np.concatenate(
        [
            encoder.encode(train_df[schema.POSITIVE].tolist()),
            encoder.encode(train_df[schema.NEGATIVE].tolist()),
        ]
    )
    mean, std = stacked.mean(0), stacked.std(0) + 1e-6
    pos = torch.from_numpy((encoder.encode([liked_pos]) - mean) / std).expand(len(idx), -1)
    neg = torch.from_numpy((encoder.encode([liked_neg]) - mean) / std).expand(len(idx), -1)
    before = run.model.predict(batch)
    after = run.model.predict(dict(batch, pos=pos.float(), neg=neg.float()))
    assert (after > before).float().mean() > 0.9
    assert explanation_source("lr-recsys") == "ae" and explanation_source("mf") is None
