"""Lineage: dataset fingerprints, file hashes, template version, flattening and diffs."""

from __future__ import annotations

import pandas as pd
import pytest

from lr_recsys import schema
from lr_recsys.lineage import (
    code_version,
    dataset_fingerprint,
    diff,
    file_sha256,
    flatten,
    template_version,
)


@pytest.fixture
def examples() -> pd.DataFrame:
    return pd.DataFrame({
        schema.PAIR_KEY: ["a", "b", "c", "d"], schema.USER_ID: ["1", "1", "2", "2"],
        schema.ITEM_ID: ["x", "y", "x", "z"], schema.TARGET: [1.0, 0.5, 0.25, 0.0],
        schema.TIMESTAMP: [10, 20, 30, 40], schema.SPLIT: ["train", "test", "train", "test"],
    })  # fmt: skip


def test_fingerprint_changes_with_a_rating_or_the_split_and_not_with_row_order(examples):
    base = dataset_fingerprint(examples)
    assert base["examples"] == 4 and base["n_train"] == 2
    assert dataset_fingerprint(examples.iloc[::-1]) == base
    rating = examples.copy()
    rating.loc[0, schema.TARGET] = 0.75
    changed = dataset_fingerprint(rating)
    assert changed["interactions_hash"] != base["interactions_hash"]
    assert changed["split_hash"] == base["split_hash"]
    split = examples.copy()
    split.loc[0, schema.SPLIT] = "val"
    moved = dataset_fingerprint(split)
    assert moved["split_hash"] != base["split_hash"]
    assert moved["interactions_hash"] == base["interactions_hash"]
    with pytest.raises(ValueError, match="timestamp"):
        dataset_fingerprint(examples.drop(columns=schema.TIMESTAMP))


def test_file_hash_is_remembered_and_follows_changes(tmp_path, monkeypatch):
    import hashlib

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    f = tmp_path / "model.gguf"
    f.write_bytes(b"weights v1")
    assert file_sha256(f) == hashlib.sha256(b"weights v1").hexdigest()
    assert (tmp_path / "cache" / "lr_recsys" / "file_hashes.json").exists()
    f.write_bytes(b"weights v2, longer")
    assert file_sha256(f) == hashlib.sha256(b"weights v2, longer").hexdigest()


def test_template_version_flatten_diff_and_code_version():
    v = template_version()
    assert len(v) == 12 and v == template_version()
    flat = flatten("model", {"mlp_layers": [64, 8, 1], "opt": {"lr": 0.01}, "dropout": 0.1})
    assert flat == {
        "model.mlp_layers": "[64, 8, 1]",
        "model.opt.lr": "0.01",
        "model.dropout": "0.1",
    }
    assert diff({"a": "1", "b": "2", "c": "3"}, {"a": "1", "b": "9", "d": "4"}) == [
        ("b", "9", "2"), ("c", "(absent)", "3"), ("d", "4", "(absent)"),
    ]  # fmt: skip
    code = code_version()
    assert (
        code["package"] and len(code["git_commit"]) == 40 and code["git_dirty"] in ("true", "false")
    )
