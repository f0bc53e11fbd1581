"""Your own data through the pipeline: generic CSV files on a half-star 0.5-5 scale run end to
end (the real Gemma model included), and a broken file stops the run with one readable line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lr_recsys import schema
from pipelines.runner import PipelineFailed, run_local, task_failure
from tests.conftest import REPO_ROOT

ITEMS = pd.DataFrame(
    {
        "item_id": ["i1", "i2", "i3", "i4", "i5", "i6"],
        "title": ["Toy Story (1995)", "GoldenEye (1995)", "", "", "Heat (1995)", "Fargo (1996)"],
        "description": ["", "", "A boxer gets one shot at the heavyweight title.", "", "", ""],
        "categories": ["Animation|Comedy", "Action|Thriller", "Drama", "Comedy|Romance",
                       "Crime|Thriller", "Crime|Drama"],
    }
)  # fmt: skip
# 3 users x 4 half-star ratings; u1 rated i4 twice at the same time (merged by on_duplicate=mean)
INTERACTIONS = pd.DataFrame(
    [("u1", "i1", 4.5), ("u1", "i2", 0.5), ("u1", "i3", 3.5), ("u1", "i4", 5.0), ("u1", "i4", 4.0),
     ("u2", "i2", 2.5), ("u2", "i5", 4.0), ("u2", "i6", 1.5), ("u2", "i1", 3.0),
     ("u3", "i3", 5.0), ("u3", "i4", 2.0), ("u3", "i5", 0.5), ("u3", "i6", 4.5)],
    columns=["user_id", "item_id", "rating"],
)  # fmt: skip
INTERACTIONS["timestamp"] = [
    f"2024-03-0{1 + k}T12:00:00Z" for k in (0, 1, 2, 3, 3, 0, 1, 2, 3, 0, 1, 2, 3)
]


@pytest.mark.slow
def test_pipeline_runs_on_generic_half_star_files(tmp_path, tmp_csv):
    config = tmp_path / "data.toml"
    config.write_text('[data]\non_duplicate = "mean"\nhigh_rating = 4.5\n')
    tuned = tmp_path / "tuned.toml"
    tuned.write_text("[mf.regression.train]\nlr = 0.003\n[mf.regression.model]\ndropout = 0.2\n")
    params = {
        "interactions_path": str(tmp_csv("ratings.csv", INTERACTIONS)),
        "items_path": str(tmp_csv("items.csv", ITEMS)), "rating_min": 0.5,
        "config_path": str(config), "data_dir": str(tmp_path / "data"),
        "cache_path": str(tmp_path / "cache.sqlite"), "seeds": "0", "epochs": 2, "ae_epochs": 2,
        "tracking_uri": f"sqlite:///{tmp_path}/mlflow.db", "feature_repo_dir": str(tmp_path / "repo"),
        "tuned_config": str(tuned), "serving_k": 2, "explain_queue": str(tmp_path / "queue.sqlite"),
    }  # fmt: skip
    run_dir = run_local(params, tmp_path / "root")

    from lr_recsys.data import Prepared

    prepared = Prepared.load(run_dir / "ingest-op" / "prepared")
    cfg = prepared.config
    assert (cfg.dataset, cfg.rating_min, cfg.rating_max) == ("generic", 0.5, 5.0)
    assert (cfg.high_rating, cfg.on_duplicate) == (4.5, "mean")  # from the config file
    ex = prepared.examples
    assert len(ex) == 12  # the duplicate merged into one row
    assert ex[schema.TARGET].between(0, 1).all()
    expected = ((ex[schema.RATING] - 0.5) / 4.5).astype("float32")
    pd.testing.assert_series_equal(ex[schema.TARGET], expected, check_names=False)
    assert ex[schema.TARGET].min() == 0.0 and ex[schema.TARGET].max() == 1.0
    merged = ex[(ex[schema.USER_ID] == "u1") & (ex[schema.ITEM_ID] == "i4")]
    assert merged[schema.RATING].tolist() == [4.5]
    assert set(ex.loc[ex[schema.LABEL] == 1, schema.RATING]) == {4.5, 5.0}
    texts = prepared.items.set_index(schema.ITEM_ID)[schema.ITEM_TEXT]
    assert texts["i3"] == "A boxer gets one shot at the heavyweight title. | Drama"
    assert texts["i4"] == "Comedy, Romance"  # what the LLM read for an untitled item
    results = pd.read_csv(run_dir / "evaluate-op" / "evaluation" / "results.csv")
    assert results["model"].iloc[0] == "lr-recsys"  # the registered model, then baselines
    assert {"lr-recsys-noexp", "mf"} <= set(results["model"])
    assert results["rmse_mean"].between(0, 1).all()
    assert results["model"].iloc[-1] == "bias"  # the floor is always trained
    # the tuned config reached the train step: mf took its values, the others the defaults
    import json

    used = json.loads((run_dir / "train-op" / "model" / "summary.json").read_text())["configs"]
    assert (used["mf"]["train"]["lr"], used["mf"]["model"]["dropout"]) == (0.003, 0.2)
    assert used["lr-recsys"]["train"]["lr"] == 0.01
    assert (run_dir / "run.log").read_text().count("finished with status SUCCESS") >= 7


def test_failed_run_ends_with_the_task_and_its_error(tmp_path, tmp_csv):
    bad = INTERACTIONS.copy()
    bad.loc[2, "rating"] = 7.0  # file row 4
    inter, items = tmp_csv("ratings.csv", bad), tmp_csv("items.csv", ITEMS)
    root = tmp_path / "root"
    proc = subprocess.run(
        [sys.executable, "-m", "lr_recsys.cli", "pipeline", "run", "--local",
         "--pipeline-root", str(root), "--param", f"interactions_path={inter}",
         "--param", f"items_path={items}", "--param", "rating_min=0.5"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300,
    )  # fmt: skip  # one stream, as on a terminal
    assert proc.returncode == 1
    output = proc.stdout.strip()
    last = output.splitlines()[-1]
    assert last.startswith(
        f"pipeline failed in task ingest-op: DataError: interactions file {inter}: "
        "rating outside [0.5, 5.0] in 1 row(s): row 4 (7.0) (full log: "
    ), output[-3000:]
    log = Path(last.rsplit("(full log: ", 1)[1].rstrip(")"))
    assert log.parent.parent == root.resolve() and log.name == "ingest-op.log"
    assert "Traceback (most recent call last)" in log.read_text()


LOG = """\
12:00:00.000 - INFO - Executing task 'ingest-op'
12:00:00.001 - INFO - Streamed logs:

    [KFP Executor 2026-01-01 12:00:00,000 INFO]: Looking for component `ingest_op`
    Traceback (most recent call last):
      File "x.py", line 1, in <module>
        raise KeyError("x")
    KeyError: 'x'

    During handling of the above exception, another exception occurred:

    Traceback (most recent call last):
      File "/work/lr_recsys/validate/gates.py", line 117, in gate
        raise GateFailed(report)
    lr_recsys.validate.gates.GateFailed: gate 'raw_interactions': 1 of 6 expectation(s) failed
    - ExpectColumnValuesToBeBetween on 'rating': 1 row(s), e.g. [7.0]

12:00:01.000 - ERROR - Task \x1b[96m'ingest-op'\x1b[0m finished with status \x1b[91mFAILURE\x1b[0m
"""


def test_task_failure_reads_the_last_exception_of_the_failed_task():
    message = "Pipeline \x1b[95m'p'\x1b[0m finished with status FAILURE. Inner task failed: \x1b[96m'ingest-op'\x1b[0m."
    task, error, task_log = task_failure(LOG, message)
    assert task == "ingest-op"
    assert error == (
        "GateFailed: gate 'raw_interactions': 1 of 6 expectation(s) failed "
        "- ExpectColumnValuesToBeBetween on 'rating': 1 row(s), e.g. [7.0]"
    )
    assert task_log.splitlines()[3].startswith("[KFP Executor")  # kfp's indent removed
    no_trace = LOG.split("    Traceback")[0] + "12:00:01 - ERROR - Task 'ingest-op' finished"
    assert task_failure(no_trace, message)[1] == "no Python traceback in its output"
    assert task_failure("", "some other kfp error")[0] is None
    assert issubclass(PipelineFailed, RuntimeError)
