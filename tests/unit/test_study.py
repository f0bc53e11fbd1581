"""Study config validation, the unit cache and failed generations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lr_recsys.config import ModelConfig, TrainConfig
from lr_recsys.study import StudyConfig, UnitCache, drop_failed


def test_config_names_what_is_wrong():
    with pytest.raises(ValueError, match="distinct names"):
        StudyConfig(sections=[{"name": "a"}, {"name": "a"}])
    with pytest.raises(ValueError, match=r"unknown model\(s\) \['nope'\]"):
        StudyConfig(sections=[{"name": "a", "models": ["mf", "nope"]}])
    with pytest.raises(ValueError, match="section name 'Main!'"):
        StudyConfig(sections=[{"name": "Main!"}])
    with pytest.raises(ValueError, match="extra"):
        StudyConfig(sections=[{"name": "a", "modles": ["mf"]}])


def test_unit_cache_keys_and_round_trip(tmp_path):
    cache = UnitCache(tmp_path)
    k = cache.key("data", "mf", "regression", ModelConfig(), TrainConfig(seed=1))
    assert k == cache.key(
        "data", "mf", "regression", ModelConfig(), TrainConfig(seed=1, progress=False)
    )
    assert k != cache.key("data", "mf", "regression", ModelConfig(), TrainConfig(seed=2))
    assert k != cache.key("other", "mf", "regression", ModelConfig(), TrainConfig(seed=1))
    assert cache.get(k) is None
    cache.put(k, {"model": "mf", "test": {"rmse": 0.25}, "pred": np.array([0.1, 0.9])})
    hit = cache.get(k)
    assert hit["test"] == {"rmse": 0.25} and hit["pred"].tolist() == pytest.approx([0.1, 0.9])
    assert not list(tmp_path.glob("*.tmp"))


def test_failed_generations_are_dropped_not_trained_on():
    table = pd.DataFrame({
        "pair_key": ["a", "b", "c"], "positive": ["The consumer ... action.", "Aspects:.", "x"],
        "negative": ["n", "Aspects:.", "y"],
        "flags": [None, "positive:empty,positive:failed,negative:failed", "positive:retried"],
    })  # fmt: skip
    kept, failed = drop_failed(table)
    assert failed == 1 and kept["pair_key"].tolist() == ["a", "c"]
    assert drop_failed(table.drop(columns="flags"))[1] == 0
