"""Text AutoEncoder (Appendix A.1): vocabulary, shapes, round trip and safe persistence."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lr_recsys.config import AEConfig
from lr_recsys.encoder import ExplanationEncoder, TextAutoEncoder, Vocabulary, tokenize

CORPUS = [
    "The consumer watched this movie because the consumer likes funny comedies",
    "The consumer watched this movie because the consumer likes dark thrillers",
    "The consumer did not watch this movie because the consumer hates slow dramas",
    "The consumer did not watch this movie because the consumer hates loud westerns",
] * 20


def test_tokenize_lowercases_and_drops_punctuation():
    assert tokenize("The consumer's TASTE: sci-fi, 1995!") == [
        "the",
        "consumer's",
        "taste",
        "sci",
        "fi",
        "1995",
    ]


def test_vocabulary_reserves_pad_and_unk_and_pads_to_maxlen():
    vocab = Vocabulary.build(["b a a", "c a"])
    assert vocab.words[:2] == ["<pad>", "<unk>"] and vocab.words[2] == "a"
    ids = vocab.encode(["a b unseen", " ".join(["a"] * 60)], maxlen=50)
    assert ids.shape == (2, 50)
    assert ids[0, :3].tolist() == [vocab.index["a"], vocab.index["b"], 1]
    assert (ids[0, 3:] == 0).all() and (ids[1] != 0).all()
    assert vocab.decode(ids[0]) == "a b <unk>"


def test_vocabulary_min_count_maps_rare_words_to_unk():
    vocab = Vocabulary.build(["a a b"], min_count=2)
    assert "b" not in vocab.index
    assert vocab.encode(["b"], 3)[0, 0] == 1


def test_network_shapes_follow_the_paper():
    cfg = AEConfig()
    model = TextAutoEncoder(vocab_size=30, cfg=cfg)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (400, 64),
        (64, 8),
        (8, 64),
        (64, 400),
    ]
    logits, z = model(torch.randint(0, 30, (5, 50)))
    assert logits.shape == (5, 50, 30) and z.shape == (5, 8)


def test_autoencoder_round_trip_reconstructs_toy_corpus():
    enc, metrics = ExplanationEncoder.fit(CORPUS, AEConfig(epochs=60, progress=False))
    assert metrics["token_accuracy"] > 0.95, metrics
    vectors = enc.encode(CORPUS[:4])
    assert vectors.shape == (4, 8) and np.isfinite(vectors).all()
    # different sentences get different codes
    assert np.linalg.norm(vectors[0] - vectors[2]) > 1e-3


def test_save_load_is_exact_and_pickle_free(tmp_path):
    enc, _ = ExplanationEncoder.fit(CORPUS, AEConfig(epochs=2, progress=False))
    enc.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "config.json",
        "vocab.json",
        "weights.safetensors",
    ]
    loaded = ExplanationEncoder.load(tmp_path)
    np.testing.assert_array_equal(loaded.encode(CORPUS[:4]), enc.encode(CORPUS[:4]))
    assert json.loads((tmp_path / "vocab.json").read_text())["words"] == enc.vocab.words


def test_load_rejects_incomplete_or_foreign_directories(tmp_path):
    with pytest.raises(FileNotFoundError, match="weights.safetensors"):
        ExplanationEncoder.load(tmp_path)
    (tmp_path / "v.json").write_text('{"words": ["x"]}')
    with pytest.raises(ValueError, match="not a vocabulary file"):
        Vocabulary.load(tmp_path / "v.json")


def test_fit_rejects_empty_corpus():
    with pytest.raises(ValueError, match="empty"):
        ExplanationEncoder.fit([], AEConfig(epochs=1, progress=False))
