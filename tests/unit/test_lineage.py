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


def test_model_lineage_of_a_bare_run_is_explicit_none_and_a_refresh_names_its_own_llm(tmp_path):
    import json

    from lr_recsys.feature_store import store_config
    from lr_recsys.lineage import REFRESH_LLM, model_lineage
    from lr_recsys.steps.refresh import _refresh_llm

    history = [{"epoch": 0, "train_loss": 0.2, "val_rmse": 0.3}, {"epoch": 1, "train_loss": 0.1}]
    summary = {
        "model": "mf", "task": "regression", "seeds": [0], "per_seed": {"rmse": [0.25]},
        "configs": {"mf": {"model": {"embed_dim": 8}, "train": {"lr": 0.01}}}, "history": history,
    }  # fmt: skip
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    bare = model_lineage(tmp_path)  # no AutoEncoder, explanations, fingerprint or distiller
    p = bare["params"]
    assert p["model.embed_dim"] == "8" and p["train.lr"] == "0.01"
    for key in ("ae.used", "llm.backend", "budget.llm_pairs", "data.interactions_hash"):
        assert p[key] == "none", key
    assert bare["tags"]["llm.model_sha256"] == bare["tags"]["data.split_hash"] == "none"
    assert not any(k.startswith("refresh.") for k in p) and bare["curves"] == history
    assert bare["description"] == "mf (regression): RMSE 0.2500 over 1 seed(s)."
    refresh = {
        "backend": "openai", "model": "openai:m", "model_sha256": "none", "variant": "attributes",
        "budget": {"llm_pairs": 10, "policy": "even", "seed": 0, "explained": 3, "all_pairs": 7},
    }  # fmt: skip
    (tmp_path / "summary.json").write_text(
        json.dumps(summary | {"mode": "finetune", REFRESH_LLM: refresh})
    )
    fresh = model_lineage(tmp_path)
    p = fresh["params"]
    assert p["refresh.llm.backend"] == "openai" and p["refresh.llm.model_sha256"] == "none"
    assert p["refresh.budget.explained"] == "3" and p["refresh.budget.all_pairs"] == "7"
    assert p["llm.backend"] == "none"  # the champion's explanations: none here
    assert "Refresh (finetune): the LLM explained 3 of 7 new pairs" in fresh["description"]
    # it travels in the refresh features step's artifact metadata, which is not a store setting
    meta = {"repo_dir": str(tmp_path), "model_version": 2, "llm_lineage": json.dumps(refresh)}
    assert store_config(meta).repo_dir == tmp_path
    assert _refresh_llm(meta) == refresh and _refresh_llm({}) == {}
