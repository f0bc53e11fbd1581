"""`lr-recsys tune` through Ray Tune on a small real ml-100k sample: 2 trials write a tuned
config that `compare` then reads (in process and as Ray tasks, with identical results)."""

from __future__ import annotations

import json

from lr_recsys.cli import main
from lr_recsys.tuned import read_tuned
from tests.conftest import real_data_dir


def test_tune_writes_a_config_that_compare_reads(tmp_path, capsys):
    tuned_path = tmp_path / "tuned.toml"
    data = ["--dataset", "ml-100k", "--data-dir", str(real_data_dir()), "--max-users", "40"]
    args = ["tune", *data, "--models", "mf", "--tasks", "regression", "--trials", "2",
            "--max-epochs", "2", "--grace-epochs", "1", "--storage", str(tmp_path / "ray"),
            "--out", str(tuned_path)]  # fmt: skip
    assert main(args) == 0
    entry = read_tuned(tuned_path)["mf"]["regression"]
    assert entry["trials"] == 2 and 0.0 < entry["val_rmse"] < 1.0
    assert set(entry["train"]) == {"lr", "weight_decay", "batch_size"}
    assert 1e-4 <= entry["train"]["lr"] <= 1e-2  # inside the documented search space
    assert "| mf | regression | rmse" in capsys.readouterr().out
    # a second run resumes the finished experiment instead of starting over
    assert main(args) == 0
    assert read_tuned(tuned_path)["mf"]["regression"]["val_rmse"] == entry["val_rmse"]

    docs = []
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}" / "results.json"
        code = main(["compare", *data, "--models", "mf", "--tasks", "regression", "--seeds", "2",
                     "--epochs", "2", "--tuned-config", str(tuned_path), "--workers", workers,
                     "--out", str(out), "--no-progress"])  # fmt: skip
        assert code == 0
        docs.append(
            (json.loads(out.read_text()), json.loads(out.with_suffix(".meta.json").read_text()))
        )
    (res1, meta1), (res2, _) = docs
    used = meta1["configs"]["mf"]["regression"]
    assert used["train"]["lr"] == entry["train"]["lr"]
    assert used["model"]["embed_dim"] == entry["model"]["embed_dim"]
    assert meta1["configs"]["bias"]["regression"]["train"]["lr"] == 0.01  # not tuned: defaults
    # seeded training is deterministic whether it runs in process or on Ray workers
    assert res1["mf"]["regression"]["rmse"]["runs"] == res2["mf"]["regression"]["rmse"]["runs"]
