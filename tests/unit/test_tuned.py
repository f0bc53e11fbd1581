"""The tuned-config file: round trip, merging, overrides and clear errors."""

from __future__ import annotations

import pytest

from lr_recsys import schema
from lr_recsys.config import ModelConfig, TrainConfig
from lr_recsys.tuned import TunedConfigError, configs_for, read_tuned, write_tuned

ENTRY = {
    "val_rmse": 0.2431, "best_epoch": 7, "trials": 3,
    "model": {"embed_dim": 16, "dropout": 0.125},
    "train": {"lr": 0.003, "weight_decay": 1e-05, "batch_size": 512},
}  # fmt: skip


def test_round_trip_and_merge(tmp_path):
    path = tmp_path / "t.toml"
    write_tuned(path, {"mf": {schema.REGRESSION: ENTRY}}, {"dataset": "ml-100k"})
    write_tuned(path, {"lr-recsys-noexp": {schema.CLASSIFICATION: {**ENTRY, "val_auc": 0.8}}})
    tuned = read_tuned(path)
    assert tuned["mf"][schema.REGRESSION] == ENTRY  # kept when another model was added
    assert tuned["lr-recsys-noexp"][schema.CLASSIFICATION]["val_auc"] == 0.8
    assert 'dataset = "ml-100k"' in path.read_text()


def test_configs_for_applies_only_the_matching_entry(tmp_path):
    tuned = {"mf": {schema.REGRESSION: ENTRY}}
    m, t = configs_for("mf", schema.REGRESSION, ModelConfig(), TrainConfig(epochs=40), tuned)
    assert (m.embed_dim, m.dropout, t.lr, t.batch_size, t.epochs) == (16, 0.125, 0.003, 512, 40)
    m, t = configs_for("mf", schema.CLASSIFICATION, ModelConfig(), TrainConfig(), tuned)
    assert (m, t) == (ModelConfig(), TrainConfig())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[nosuch.regression.train]\nlr = 0.1\n", "unknown model 'nosuch'"),
        ("[mf.ranking.train]\nlr = 0.1\n", "unknown task"),
        ("[mf.regression.train]\nepochz = 3\n", r"unknown field\(s\) \['epochz'\]"),
        ("[mf.regression\n", "not valid TOML"),
    ],
)
def test_bad_files_are_named(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(TunedConfigError, match=message):
        read_tuned(path)
    with pytest.raises(TunedConfigError, match="does not exist"):
        read_tuned(tmp_path / "missing.toml")


def test_keep_better_keeps_the_better_validation_score(tmp_path):
    path = tmp_path / "t.toml"
    write_tuned(path, {"mf": {schema.REGRESSION: ENTRY, schema.CLASSIFICATION: {"val_auc": 0.7}}})
    worse = {**ENTRY, "val_rmse": 0.25, "train": {"lr": 0.001}}
    better_auc = {"val_auc": 0.71, "train": {"lr": 0.002}}
    write_tuned(path, {"mf": {schema.REGRESSION: worse, schema.CLASSIFICATION: better_auc}},
                keep_better=True)  # fmt: skip
    tuned = read_tuned(path)["mf"]
    assert tuned[schema.REGRESSION] == ENTRY  # lower RMSE kept
    assert tuned[schema.CLASSIFICATION] == better_auc  # higher AUC replaced
    write_tuned(path, {"mf": {schema.REGRESSION: worse}})  # without the flag: replaced
    assert read_tuned(path)["mf"][schema.REGRESSION] == worse
