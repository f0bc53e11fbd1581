"""The content-control model ``lr-recsys-content``: construction guards, the item-vector buffer
(shape checks, saved with the weights), which item vectors its two content tokens read, and the
registration of the LR-Recsys variants."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lr_recsys.config import ModelConfig
from lr_recsys.models import ModelInputs, build_model, explanation_source, model_names
from lr_recsys.models.io import load_model, save_model

N_USERS, N_ITEMS, TEXT_DIM, HIST = 6, 12, 16, 5
INPUTS = ModelInputs(N_USERS, N_ITEMS, (3,), item_text_dim=TEXT_DIM)


def _item_vectors(seed: int = 0) -> np.ndarray:
    """(N_ITEMS, TEXT_DIM) random vectors, row 0 (padding / unknown) zeros."""
    m = np.random.default_rng(seed).standard_normal((N_ITEMS, TEXT_DIM)).astype(np.float32)
    m[0] = 0.0
    return m


def _content_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model("lr-recsys-content", INPUTS, ModelConfig()).eval()
    model.set_item_vectors(_item_vectors(seed))
    return model


def _batch(n: int = 8, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    hist = torch.randint(1, N_ITEMS, (n, HIST), generator=g)
    hist[: n // 2, :2] = 0  # left padding in half the rows
    return {
        "user": torch.randint(1, N_USERS, (n,), generator=g),
        "item": torch.randint(1, N_ITEMS, (n,), generator=g),
        "hist": hist,
        "ctx": torch.randint(0, 3, (n, 1), generator=g),
    }


def test_registered_variants_and_their_sources():
    names = set(model_names())
    assert {"lr-recsys-content", "lr-recsys-llm", "lr-recsys-distilled"} <= names
    assert explanation_source("lr-recsys-content") is None  # trains on the plain splits
    assert explanation_source("lr-recsys-llm") == "ae-llm"
    assert explanation_source("lr-recsys-distilled") == "ae-distilled"


def test_only_the_content_model_uses_item_vectors():
    for name in model_names():
        model = build_model(name, INPUTS, ModelConfig())
        assert getattr(model, "uses_item_vectors", False) is (name == "lr-recsys-content"), name


def test_content_model_needs_the_item_text_width():
    with pytest.raises(ValueError, match=r"item_text_dim=0; expected their width"):
        build_model("lr-recsys-content", ModelInputs(N_USERS, N_ITEMS, (3,)), ModelConfig())


def test_set_item_vectors_checks_the_shape_and_values():
    model = build_model("lr-recsys-content", INPUTS, ModelConfig())
    with pytest.raises(ValueError, match=rf"shape \(11, 16\); expected \({N_ITEMS}, {TEXT_DIM}\)"):
        model.set_item_vectors(np.zeros((N_ITEMS - 1, TEXT_DIM), np.float32))
    with pytest.raises(ValueError, match=rf"shape \({N_ITEMS}, 384\); expected"):
        model.set_item_vectors(torch.zeros(N_ITEMS, 384))
    bad = _item_vectors()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        model.set_item_vectors(bad)
    twin = build_model("lr-recsys-noexp", INPUTS, ModelConfig())
    with pytest.raises(TypeError, match="reads no item vectors"):
        twin.set_item_vectors(_item_vectors())


def test_item_vectors_are_a_saved_buffer_not_a_parameter():
    model = _content_model()
    assert "item_text" in model.state_dict()
    assert all(p is not model.item_text for p in model.parameters())
    torch.testing.assert_close(model.item_text, torch.from_numpy(_item_vectors()))
    model.set_item_vectors(torch.from_numpy(_item_vectors(1)).double())  # any float tensor
    torch.testing.assert_close(model.item_text, torch.from_numpy(_item_vectors(1)))


def test_save_load_round_trip_keeps_item_vectors_and_predictions(tmp_path):
    model = _content_model()
    batch = _batch()
    save_model(model, "lr-recsys-content", "classification", tmp_path)
    loaded, config = load_model(tmp_path)
    assert config["inputs"]["item_text_dim"] == TEXT_DIM
    torch.testing.assert_close(loaded.item_text, model.item_text)
    torch.testing.assert_close(loaded.eval().predict(batch), model.predict(batch))


def test_models_saved_before_item_text_dim_existed_still_load(tmp_path):
    import json

    model = build_model("lr-recsys-noexp", INPUTS, ModelConfig())
    save_model(model, "lr-recsys-noexp", "regression", tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    del config["inputs"]["item_text_dim"]  # a config.json written by an older version
    (tmp_path / "config.json").write_text(json.dumps(config))
    loaded, _ = load_model(tmp_path)
    assert loaded.inputs.item_text_dim == 0


def test_the_score_reads_the_item_vectors():
    model = _content_model()
    batch = _batch()
    base = model.predict(batch)
    model.set_item_vectors(_item_vectors(seed=1))  # same ids, other texts
    assert not torch.allclose(model.predict(batch), base)


def test_content_tokens_are_candidate_text_and_masked_history_mean():
    model = _content_model()
    batch = _batch()
    tokens = model.tokens(batch)  # (B, 6, D)
    vectors = torch.from_numpy(_item_vectors())
    hist = batch["hist"][0]  # a padded row
    expected = vectors[hist[hist > 0]].mean(0)
    torch.testing.assert_close(tokens[0, 1], model.project_hist(expected))
    torch.testing.assert_close(tokens[:, 0], model.project(vectors[batch["item"]]))
    with torch.no_grad():
        model.item_text[0].fill_(7.0)  # garbage in the padding row must not leak in
    torch.testing.assert_close(model.tokens(batch), tokens)
    empty = dict(batch, hist=torch.zeros_like(batch["hist"]))
    torch.testing.assert_close(model.tokens(empty)[:, 1], model.project_hist.bias.expand(8, -1))
