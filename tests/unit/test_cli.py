"""Every data command reads one config path: file ([data]) < LR_RECSYS__DATA__* < flags."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from lr_recsys import schema
from lr_recsys.cli import main


@pytest.fixture
def half_star_files(tmp_csv):
    """3 users x 4 ratings on a 0.5-5 scale, half stars included."""
    ratings = [0.6, 2.75, 5.0, 3.5, 1.5, 4.5, 0.5, 2.0, 5.0, 4.0, 3.0, 1.0]
    inter = pd.DataFrame(
        {
            "user_id": [f"u{k // 4}" for k in range(12)],
            "item_id": [f"i{k % 5}" for k in range(12)],
            "rating": ratings,
            "timestamp": [100 + k for k in range(12)],
        }
    )
    items = pd.DataFrame({"item_id": [f"i{k}" for k in range(5)], "title": list("ABCDE")})
    return tmp_csv("inter.csv", inter), tmp_csv("items.csv", items)


def data_args(files) -> list[str]:
    inter, items = files
    return ["--dataset", "generic", "--interactions", str(inter), "--items", str(items)]


def test_data_command_honours_the_environment(half_star_files, tmp_path, monkeypatch, caplog):
    out = tmp_path / "examples.parquet"
    assert main(["data", *data_args(half_star_files), "--out", str(out)]) == 2
    assert "rating outside [1.0, 5.0] in 2 row(s): row 2 (0.6), row 8 (0.5)" in caplog.text
    monkeypatch.setenv("LR_RECSYS__DATA__RATING_MIN", "0.5")
    monkeypatch.setenv("LR_RECSYS__DATA__HIGH_RATING", "4.5")
    assert main(["data", *data_args(half_star_files), "--out", str(out)]) == 0
    ex = pd.read_parquet(out).set_index(schema.PAIR_KEY)
    by_rating = dict(zip(ex[schema.RATING], ex[schema.TARGET], strict=True))
    assert by_rating[0.5] == 0.0 and by_rating[5.0] == 1.0 and by_rating[2.75] == 0.5
    assert set(ex.loc[ex[schema.LABEL] == 1, schema.RATING]) == {4.5, 5.0}


@pytest.mark.parametrize("command", ["data", "explain", "compare"])
def test_flag_beats_env_beats_config_file(command, half_star_files, tmp_path, monkeypatch, caplog):
    """The loader's error names the rating scale in force, so it shows which setting won."""
    config = tmp_path / "c.toml"
    config.write_text("[data]\nrating_min = 0.9\nrating_max = 5.0\n")
    extra = {"compare": ["--models", "mf", "--seeds", "1", "--epochs", "1"]}.get(command, [])
    args = [command, "--config", str(config), *data_args(half_star_files), *extra]
    assert main(args) == 2
    assert "rating outside [0.9, 5.0]" in caplog.text  # the file alone
    caplog.clear()
    monkeypatch.setenv("LR_RECSYS__DATA__RATING_MIN", "0.8")
    assert main(args) == 2
    assert "rating outside [0.8, 5.0]" in caplog.text  # env beats file
    caplog.clear()
    assert main([*args, "--rating-min", "0.7", "--rating-max", "4.9"]) == 2
    assert "rating outside [0.7, 4.9] in 4 row(s): row 2 (0.6), row 4 (5.0)" in caplog.text


def test_on_duplicate_flag_reaches_the_loader(tmp_csv, tmp_path, caplog):
    inter = pd.DataFrame(
        {"user_id": ["u1"] * 4, "item_id": ["i1", "i1", "i2", "i3"], "rating": [1, 5, 2, 4],
         "timestamp": [100, 100, 200, 300]}
    )  # fmt: skip
    items = pd.DataFrame({"item_id": ["i1", "i2", "i3"], "title": ["A", "B", "C"]})
    args = ["data", "--dataset", "generic", "--interactions", str(tmp_csv("i.csv", inter)),
            "--items", str(tmp_csv("t.csv", items)), "--out", str(tmp_path / "ex.parquet")]  # fmt: skip
    assert main(args) == 2
    assert "set data.on_duplicate = keep_last or mean (CLI --on-duplicate)" in caplog.text
    with caplog.at_level(logging.WARNING):
        assert main([*args, "--on-duplicate", "mean"]) == 0
    ex = pd.read_parquet(tmp_path / "ex.parquet")
    assert ex.loc[ex[schema.ITEM_ID] == "i1", schema.RATING].tolist() == [3.0]
