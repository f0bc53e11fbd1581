"""Typed config: paper defaults, override order file < env < CLI, unknown keys rejected."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from lr_recsys.config import (
    AEConfig,
    CompareConfig,
    DataConfig,
    ModelConfig,
    TrainConfig,
    load_compare_config,
)


def test_defaults_are_the_papers_hyperparameters():
    m, t, a = ModelConfig(), TrainConfig(), AEConfig()
    assert (m.embed_dim, m.history_len, m.mlp_layers) == (8, 5, (64, 8, 1))
    assert (t.lr, t.batch_size, t.epochs) == (0.01, 128, 100)
    assert (a.maxlen, a.word_dim, a.hidden, a.bottleneck, a.lr, a.batch_size, a.epochs) == (
        50, 8, 64, 8, 0.1, 128, 100,
    )  # fmt: skip


def test_override_order_file_then_env_then_cli(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(
        'seeds = [5]\nmodels = ["mf"]\n[train]\nepochs = 7\nlr = 0.5\n[data]\nhistory_len = 4\n'
    )
    env = {"LR_RECSYS__TRAIN__EPOCHS": "9", "LR_RECSYS__DATA__HISTORY_LEN": "3", "OTHER": "x"}
    cfg = load_compare_config(path, {"train": {"epochs": 11}}, environ=env)
    assert cfg.train.epochs == 11  # CLI beats env beats file
    assert cfg.train.lr == 0.5  # file value kept where nothing overrides it
    assert cfg.data.history_len == 3  # env beats file
    assert cfg.seeds == [5] and cfg.models == ["mf"]


def test_unknown_keys_and_bad_values_are_rejected(tmp_path):
    with pytest.raises(ValidationError, match="extra"):
        CompareConfig(modelz=["mf"])
    with pytest.raises(ValueError, match="unknown field"):
        load_compare_config(None, {"train": {"epoch": 3}}, environ={})
    with pytest.raises(ValidationError, match="unknown task"):
        CompareConfig(tasks=["ranking"])
    with pytest.raises(ValidationError, match="between 0 and 1"):
        load_compare_config(None, {"data": {"test_frac": 1.5}}, environ={})
    bad = tmp_path / "c.yaml"
    bad.write_text("x: 1")
    with pytest.raises(ValueError, match=".toml or .json"):
        load_compare_config(bad, environ={})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"rating_min": 5.0, "rating_max": 1.0}, "must exceed rating_min"),
        ({"high_rating": 9.0}, "high_rating"),
        ({"history_len": 0}, "at least 1"),
        ({"min_user_interactions": 1}, "at least 2"),
        ({"train_fraction": 0.0}, "in \\(0, 1\\]"),
    ],
)
def test_data_config_rejects_inconsistent_values(overrides, message):
    with pytest.raises(ValidationError, match=message):
        DataConfig(**overrides)


def test_data_config_file_then_env_then_cli(tmp_path):
    from lr_recsys.config import load_data_config

    path = tmp_path / "c.toml"
    path.write_text(
        '[data]\nrating_min = 0.0\nrating_max = 10.0\nhigh_rating = 8.0\non_duplicate = "mean"\n'
        "[train]\nepochs = 3\n"  # other sections are not the data command's business
    )
    env = {"LR_RECSYS__DATA__RATING_MIN": "0.5", "LR_RECSYS__DATA__HIGH_RATING": "7"}
    cfg = load_data_config(path, {"rating_min": 1.5}, environ=env)
    assert cfg.rating_min == 1.5  # flag beats env beats file
    assert cfg.high_rating == 7.0  # env beats file
    assert (cfg.rating_max, cfg.on_duplicate) == (10.0, "mean")  # file kept where nothing overrides
    assert load_data_config(None, None, environ={}) == DataConfig()


def test_data_config_errors_name_the_setting(tmp_path):
    from lr_recsys.config import load_data_config

    with pytest.raises(ValidationError, match="on_duplicate"):
        load_data_config(None, None, environ={"LR_RECSYS__DATA__ON_DUPLICATE": "first"})
    path = tmp_path / "c.json"
    path.write_text('{"data": 3}')
    with pytest.raises(ValueError, match="'data' must be a table of data settings, got 3"):
        load_data_config(path, environ={})
