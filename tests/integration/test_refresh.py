"""Ranking that explains what it returns, kept fresh: the training pipeline (real ml-100k users
as of a cut-off time, real Gemma explanations) has the LLM explain each serving user's top k;
the running service returns that text, distils every other candidate at request time and queues
what it returned without text; the refresh pipeline then takes the interactions after the
cut-off, explains only new pairs (the LLM cache's counts prove it) plus the queue, materialises
incrementally, and the same service, never restarted, returns the queued items' text."""

from __future__ import annotations

import json
import time

import httpx
import numpy as np
import pytest

from lr_recsys import schema
from lr_recsys.config import DataConfig
from lr_recsys.data import Prepared, load_tables, prepare
from lr_recsys.serve.queue import ExplainQueue
from pipelines.runner import run_local
from tests.conftest import free_port, real_data_dir

K = 3  # the pipeline's serving_k
CAP = 40  # candidates per request (the service's and the served-text step's generator)


def _metrics(run_dir, task: str) -> dict:
    out = json.loads((run_dir / task / "executor_output.json").read_text())
    return out["artifacts"]["metrics"]["artifacts"][0]["metadata"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from lr_recsys.serve import local
    from lr_recsys.serve.ranker import ServeConfig
    from serving.app import build_app

    tmp = tmp_path_factory.mktemp("refresh")
    data = {"data_dir": str(real_data_dir()), "max_users": 4, "max_per_user": 6}
    full = prepare(load_tables(DataConfig(**data)), DataConfig(**data)).examples
    until = int(np.sort(full[schema.TIMESTAMP].to_numpy())[-4]) - 1  # the last 3-4 are new
    common = {
        **data, "cache_path": str(tmp / "cache.sqlite"), "tracking_uri": f"sqlite:///{tmp}/mlflow.db",
        "feature_repo_dir": str(tmp / "repo"), "explain_queue": str(tmp / "queue.sqlite"),
        "serving_k": K, "candidate_cap": CAP,
    }  # fmt: skip
    train_dir = run_local(
        {**common, "until": until, "seeds": "0", "epochs": 2, "ae_epochs": 2,
         "models": "lr-recsys", "serving_candidates": 0}, tmp / "root",
    )  # fmt: skip
    cfg = ServeConfig.model_validate({
        "registry": {"tracking_uri": common["tracking_uri"]}, "store": {"repo_dir": str(tmp / "repo")},
        "port": free_port(), "model_cache": str(tmp / "models"), "candidate_cap": CAP,
        "explain_queue": str(tmp / "queue.sqlite"),
    })  # fmt: skip
    url = local.start(build_app(cfg.model_dump(mode="json")), cfg.host, cfg.port, num_cpus=2)
    client = httpx.Client(base_url=url, timeout=60)
    prepared = Prepared.load(train_dir / "ingest-op" / "prepared")
    new = full[full[schema.TIMESTAMP] > until]
    yield {"client": client, "tmp": tmp, "common": common, "prepared": prepared, "new": new,
           "train_dir": train_dir, "state": {}}  # fmt: skip
    client.close()
    local.stop()


def _rank(world, user: str, k: int) -> dict:
    r = world["client"].post("/rank", json={"user_id": user, "k": k})
    assert r.status_code == 200, r.text
    return r.json()


def test_served_top_k_carries_llm_text_and_every_other_candidate_is_distilled(world):
    users = sorted(world["prepared"].examples[schema.USER_ID].unique())
    served = _metrics(world["train_dir"], "served-op")
    assert served["serving_users"] == len(users) and served["served_text_coverage"] == 1.0
    for user in users:
        body = _rank(world, user, K)
        assert [i["explanation"]["source"] for i in body["items"]] == ["llm"] * K
        for item in body["items"]:  # the text written for this user's current history and item
            assert item["explanation"]["positive"].startswith("The consumer watched this movie")
        assert body["fallbacks"] == 0 and body["distilled"] == CAP - K


def test_items_returned_without_text_are_queued_then_a_refresh_explains_them(world):
    tmp, new = world["tmp"], world["new"]
    quiet = sorted(set(world["prepared"].examples[schema.USER_ID]) - set(new[schema.USER_ID]))
    assert quiet, "every sampled user has new interactions: pick another cut-off"
    user = quiet[0]
    body = _rank(world, user, K + 3)
    extra = body["items"][K:]
    assert [i["explanation"]["source"] for i in extra] == ["distilled"] * 3
    assert all(i["explanation"]["positive"] is None for i in extra)  # never another pair's text
    queue = ExplainQueue(tmp / "queue.sqlite")
    deadline = time.monotonic() + 10
    while len(queue) < 3 and time.monotonic() < deadline:  # the writer flushes every 0.5 s
        time.sleep(0.2)
    queued = queue.peek()
    assert {(q.user_id, q.item_id) for q in queued} == {(user, i["item_id"]) for i in extra}

    cache = tmp / "cache.sqlite"
    before = _cache_rows(cache)
    refresh_dir = run_local({**world["common"], "llm_pairs": -1, "epochs": 1}, tmp / "root", "refresh")  # fmt: skip
    ingest = _metrics(refresh_dir, "refresh-ingest-op")
    feats = _metrics(refresh_dir, "refresh-features-op")
    served = _metrics(refresh_dir, "refresh-served-op")
    assert ingest["new_examples"] == len(new) and ingest["old_examples"] == len(world["prepared"].examples)  # fmt: skip
    # the LLM was asked for the new pairs only, and generated exactly their two sentences each
    assert feats["new_pairs"] == len(new) and feats["llm_requested_pairs"] == len(new)
    assert feats["llm_generated"] + feats["llm_cache_hits"] == 2 * len(new)
    assert feats["llm_generated"] == 2 * len(new) - feats["llm_cache_hits"]
    assert served["queue_explained"] == 3 and served["queue_left"] == 0
    # the cache grew by what the refresh generated, nothing re-generated for old pairs
    assert _cache_rows(cache) - before == feats["llm_generated"] + served["llm_generated"]
    assert len(queue) == 0
    # its registered run names the LLM that explained the new pairs and that budget, next to
    # the champion's (inherited) explanation lineage
    from mlflow import MlflowClient

    registry = MlflowClient(world["common"]["tracking_uri"])
    version = registry.get_model_version_by_alias("lr-recsys", "challenger")
    p = registry.get_run(version.run_id).data.params
    assert p["refresh.llm.backend"] == p["llm.backend"] == "llamacpp"
    assert len(p["refresh.llm.model_sha256"]) == 64 and p["refresh.budget.llm_pairs"] == "all"
    explained = int(feats["llm_pairs"])
    assert p["refresh.budget.explained"] == str(explained) and p["refresh.budget.all_pairs"] == str(len(new))  # fmt: skip
    assert f"the LLM explained {explained} of {len(new)} new pairs" in version.description

    # the service, never restarted, now returns those items with their LLM text
    again = _rank(world, user, K + 3)
    assert again["model_version"] == body["model_version"]  # the same model: features changed
    got = {i["item_id"]: i["explanation"] for i in again["items"]}
    for item in extra:
        assert got[item["item_id"]]["source"] == "llm"
        assert got[item["item_id"]]["positive"].startswith("The consumer watched this movie")


def _cache_rows(path) -> int:
    import sqlite3

    with sqlite3.connect(path) as con:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return sum(con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables)  # noqa: S608
