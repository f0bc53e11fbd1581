"""`lr-recsys compare` end to end: generic files with an explanation table, and real ml-100k."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lr_recsys import schema
from lr_recsys.cli import main
from lr_recsys.config import DataConfig
from lr_recsys.data import prepare
from lr_recsys.explain import save_explanations
from tests.synthetic import planted_explanations, planted_tables

REPO = Path(__file__).parents[2]
DATA_DIR = Path(os.environ.get("LR_RECSYS_TEST_DATA_DIR", REPO / "data"))


@pytest.fixture()
def generic_files(tmp_path):
    tables = planted_tables(n_users=20, n_items=30, per_user=15)
    inter, items, users = tmp_path / "inter.csv", tmp_path / "items.parquet", tmp_path / "users.csv"
    tables.interactions.to_csv(inter, index=False)
    tables.items.to_parquet(items, index=False)
    tables.users.to_csv(users, index=False)
    prepared = prepare(tables, DataConfig(dataset="generic"))
    expl = tmp_path / "explanations.parquet"
    save_explanations(planted_explanations(prepared.examples), expl)
    return inter, items, users, expl


def test_compare_on_generic_files_with_explanations(generic_files, tmp_path, capsys):
    inter, items, users, expl = generic_files
    out = tmp_path / "res" / "results.json"
    code = main(
        ["compare", "--dataset", "generic", "--interactions", str(inter), "--items", str(items),
         "--users", str(users), "--explanations", str(expl), "--models", "mf,lr-recsys,lr-recsys-noexp",
         "--seeds", "2", "--epochs", "2", "--ae-epochs", "2", "--out", str(out), "--no-progress"]
    )  # fmt: skip
    assert code == 0
    results = json.loads(out.read_text())
    assert set(results) == {"mf", "lr-recsys", "lr-recsys-noexp", "bias"}  # the floor is added
    for tasks in results.values():
        assert set(tasks) == set(schema.TASKS)
        for metric in ("rmse", "mae", "rmse_rating", "mae_rating"):
            assert len(tasks["regression"][metric]["runs"]) == 2
        assert {"mean", "std", "runs"} <= set(tasks["classification"]["auc"])
    meta = json.loads(out.with_suffix(".meta.json").read_text())
    assert meta["autoencoder"]["ae"]["token_accuracy"] > 0
    printed = capsys.readouterr().out
    assert "| lr-recsys " in printed and "vs mf" in printed
    assert out.with_suffix(".md").read_text() in printed
    bias_row = next(r for r in printed.splitlines() if r.startswith("| bias "))
    assert "(floor)" in bias_row
    mf_row = next(r for r in printed.splitlines() if r.startswith("| mf "))
    assert mf_row.count("%") == 2  # vs the best baseline is itself: only the bias column
    # early stopping is on by default and recorded; the effective hyperparameters are recorded
    assert meta["patience"] == 10
    assert meta["configs"]["mf"]["regression"]["train"]["lr"] == 0.01


def test_learning_curve_table_json_and_png(generic_files, tmp_path):
    inter, items, users, _ = generic_files
    out = tmp_path / "lc" / "results.json"
    code = main(
        ["compare", "--dataset", "generic", "--interactions", str(inter), "--items", str(items),
         "--models", "mf", "--seeds", "2", "--epochs", "2", "--train-fractions", "0.5,1",
         "--out", str(out), "--no-progress"]
    )  # fmt: skip
    assert code == 0
    curve = json.loads(out.with_suffix(".learning_curve.json").read_text())
    assert set(curve) == {"0.5", "1.0"}
    n_half = curve["0.5"]["meta"]["examples"]["train"]
    n_full = curve["1.0"]["meta"]["examples"]["train"]
    assert 0.3 * n_full < n_half < 0.7 * n_full
    assert curve["0.5"]["meta"]["examples"]["test"] == curve["1.0"]["meta"]["examples"]["test"]
    md = out.with_suffix(".md").read_text()
    assert "Learning efficiency" in md and "| mf |" in md and "| bias |" in md
    png = out.with_suffix(".learning_curve.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    assert matplotlib.image.imread(png).shape[0] > 100  # decodes as an image


def test_compare_fails_clearly_without_explanations(generic_files, tmp_path, caplog):
    inter, items, _, _ = generic_files
    code = main(
        ["compare", "--dataset", "generic", "--interactions", str(inter), "--items", str(items),
         "--models", "lr-recsys", "--seeds", "1", "--epochs", "1", "--out", str(tmp_path / "r.json")]
    )  # fmt: skip
    assert code == 2
    assert "no explanation table was given" in caplog.text
    assert main(["compare", "--models", "nope", "--out", str(tmp_path / "r.json")]) == 2
    assert "unknown model(s) ['nope']" in caplog.text


def test_console_script_runs_compare_on_real_ml100k(tmp_path):
    exe = shutil.which("lr-recsys", path=str(Path(sys.executable).parent))
    assert exe is not None, "console script lr-recsys is not installed"
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [exe, "compare", "--dataset", "ml-100k", "--data-dir", str(DATA_DIR), "--models", "mf,sasrec",
         "--tasks", "regression,classification", "--seeds", "2", "--epochs", "1", "--out", str(out),
         "--no-progress"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())
    rmse = results["mf"]["regression"]["rmse"]["mean"]
    auc = results["sasrec"]["classification"]["auc"]["mean"]
    # sane learning on real data: better than predicting the mean (RMSE ~0.28) and than chance
    assert 0.15 < rmse < 0.28, rmse
    assert auc > 0.65, auc
    assert "### regression" in proc.stdout
