"""Ray Serve up and answering: the local pipeline's outputs (real ml-100k sample, real Gemma
explanations, Feast SQLite online store, MLflow champion) served by ``serving.app``; every bad
input gets a 4xx with a message and the service keeps serving; a new champion is picked up
without a restart; Ray shuts down cleanly."""

from __future__ import annotations

import httpx
import pandas as pd
import pytest

from lr_recsys import schema
from lr_recsys.data import Prepared
from pipelines.runner import run_local
from tests.conftest import free_port, real_data_dir


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """Run the pipeline on 3 users x 4 ratings (+3 serving candidates each, distilled), then
    serve it."""
    from lr_recsys.serve import local
    from lr_recsys.serve.ranker import ServeConfig
    from serving.app import build_app

    tmp = tmp_path_factory.mktemp("serving")
    tracking = f"sqlite:///{tmp}/mlflow.db"
    params = {
        "data_dir": str(real_data_dir()), "max_users": 3, "max_per_user": 4, "serving_candidates": 3,
        "cache_path": str(tmp / "cache.sqlite"), "seeds": "0", "epochs": 2, "ae_epochs": 2,
        "models": "lr-recsys", "tracking_uri": tracking, "feature_repo_dir": str(tmp / "repo"),
    }  # fmt: skip
    run_dir = run_local(params, tmp / "root")
    cfg = ServeConfig.model_validate({
        "registry": {"tracking_uri": tracking}, "store": {"repo_dir": str(tmp / "repo")},
        "port": free_port(), "model_cache": str(tmp / "models"), "candidate_cap": 50,
    })  # fmt: skip
    url = local.start(build_app(cfg.model_dump(mode="json")), cfg.host, cfg.port, num_cpus=2)
    client = httpx.Client(base_url=url, timeout=30)
    yield {"client": client, "run_dir": run_dir, "tracking": tracking, "tmp": tmp}
    client.close()
    local.stop()
    import ray

    assert not ray.is_initialized()  # shut down cleanly


@pytest.fixture(scope="module")
def sample(deployed):
    run_dir = deployed["run_dir"]
    prepared = Prepared.load(run_dir / "ingest-op" / "prepared")
    serving = pd.read_parquet(run_dir / "explain-op" / "explanations" / "serving_pairs.parquet")
    return prepared, serving


def _rank(client, **body) -> httpx.Response:
    return client.post("/rank", json=body)


def test_health_readiness_and_openapi(deployed):
    c = deployed["client"]
    assert c.get("/healthz").json() == {"status": "alive"}
    assert c.get("/readyz").json() == {"ready": True, "model_version": "1", "reason": None}
    from mlflow import MlflowClient

    champion = MlflowClient(deployed["tracking"]).get_model_version_by_alias(
        "lr-recsys", "champion"
    )
    assert champion.tags["feature_service"] == "lr_recsys_v1"  # checked against the store at load
    paths = c.get("/openapi.json").json()["paths"]
    assert {"/rank", "/healthz", "/readyz", "/admin/reload"} <= set(paths)


def test_rank_with_generated_candidates_returns_explanations_and_attention(deployed, sample):
    prepared, serving = sample
    user = serving[schema.USER_ID].iloc[0]
    r = _rank(deployed["client"], user_id=user, k=50)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_version"] == "1" and body["candidates"] == "generator"
    assert not body["cold_start"]
    items = body["items"]
    rated = set(prepared.examples.loc[prepared.examples[schema.USER_ID] == user, schema.ITEM_ID])
    assert items and not {i["item_id"] for i in items} & rated  # generator skips rated items
    scores = [i["score"] for i in items]
    assert scores == sorted(scores, reverse=True)  # ranked by the model
    # the pipeline distilled explanation vectors for the user's top-3 candidates: they are served
    # with source "distilled" and no text (no text was generated for these pairs)
    distilled = {i["item_id"]: i for i in items if i["explanation"]["source"] == "distilled"}
    assert set(distilled) == set(serving.loc[serving[schema.USER_ID] == user, schema.ITEM_ID])
    for item in distilled.values():
        assert item["explanation"]["positive"] is None and item["explanation"]["negative"] is None
    # every other candidate went through the documented fallback, counted
    assert body["fallbacks"] == len(items) - 3
    for item in items:
        att = item["attention"]
        assert set(att) == {"pos", "neg", "user", "item", "seq", "context"}
        assert sum(att.values()) == pytest.approx(1.0, abs=1e-4)
        assert 1.0 <= item["predicted_rating"] <= 5.0 and item["title"]
    assert set(body["timings_ms"]) == {"features", "model", "total"}


def test_rank_given_candidates_ranks_them_and_can_omit_texts(deployed, sample):
    prepared, serving = sample
    user = serving[schema.USER_ID].iloc[0]
    mine = prepared.examples[prepared.examples[schema.USER_ID] == user]
    rated_item = mine[schema.ITEM_ID].iloc[-1]  # has its training explanation online
    cands = [*serving.loc[serving[schema.USER_ID] == user, schema.ITEM_ID], rated_item]
    body = _rank(
        deployed["client"], user_id=user, candidate_item_ids=cands, k=2, explain=False
    ).json()
    assert body["candidates"] == "request" and len(body["items"]) == 2
    assert all(i["explanation"] is None and i["attention"] for i in body["items"])
    assert body["fallbacks"] == 0  # every pair has an LLM or a distilled explanation
    sources = {i["item_id"]: i["explanation"] for i in _rank(
        deployed["client"], user_id=user, candidate_item_ids=cands, k=len(cands)).json()["items"]}  # fmt: skip
    assert sources[rated_item]["source"] == "llm"  # a rated pair the LLM explained: its text
    assert sources[rated_item]["positive"].startswith("The consumer watched this movie because")


def test_unknown_user_gets_a_flagged_cold_start_answer(deployed, sample):
    prepared, _ = sample
    body = _rank(deployed["client"], user_id="no-such-user", k=5).json()
    assert body["cold_start"] is True
    assert body["fallbacks"] == 50  # no pair of an unknown user has an explanation (cap 50)
    from lr_recsys.candidates import popularity

    # cold start keeps the candidate generator's order (most popular first)
    assert [i["item_id"] for i in body["items"]] == list(popularity(prepared).index[:5])


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"user_id": "1", "candidate_item_ids": ["1", "nope", "zz"]}, 422, "['nope', 'zz']"),
        ({"user_id": "1", "k": 0}, 422, "greater than or equal to 1"),
        ({"user_id": "1", "k": 101}, 422, "less than or equal to 100"),
        ({"user_id": "1", "candidate_item_ids": []}, 422, "at least 1 item"),
        ({"user_id": "1", "candidate_item_ids": ["1"] * 1001}, 422, "at most 1000 items"),
        ({"user_id": 1}, 422, "valid string"),
        ({"user_id": "1", "k": "3"}, 422, "valid integer"),
        ({"user_id": "1", "explain": "yes"}, 422, "valid boolean"),
        (
            {"user_id": "1", "candidate_item_ids": ["1", "1"]},
            422,
            "duplicate candidate item ids: ['1']",
        ),
        ({"user_id": "1", "colour": "red"}, 422, "Extra inputs are not permitted"),
        ({}, 422, "Field required"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_problem(deployed, body, status, message):
    c = deployed["client"]
    r = c.post("/rank", json=body)
    assert r.status_code == status and message in r.text, r.text
    assert c.get("/healthz").status_code == 200


def test_malformed_json_then_service_keeps_serving(deployed, sample):
    c = deployed["client"]
    r = c.post("/rank", content=b'{"user_id": "1", ', headers={"content-type": "application/json"})
    assert r.status_code == 422 and "JSON decode error" in r.text
    user = sample[1][schema.USER_ID].iloc[0]
    assert _rank(c, user_id=user).status_code == 200


def test_new_champion_reaches_the_running_service(deployed, sample):
    """Register a retrained model, move ``champion`` to it, reload: no restart."""
    from mlflow import MlflowClient

    from lr_recsys.registry import RegistryConfig, register_model
    from lr_recsys.serve.bundle import BUNDLE
    from lr_recsys.steps import train_evaluate

    c, run_dir, tmp = deployed["client"], deployed["run_dir"], deployed["tmp"]
    user = sample[1][schema.USER_ID].iloc[0]
    before = _rank(c, user_id=user, k=5).json()
    assert c.post("/admin/reload").json() == {"model_version": "1", "changed": False}
    out = tmp / "retrained"
    train_evaluate(run_dir / "ingest-op" / "prepared", {"repo_dir": str(deployed["tmp"] / "repo")}, out,
                   ["lr-recsys"], seeds=[7], epochs=5)  # fmt: skip
    from lr_recsys.models.io import load_model

    summary = pd.read_json(out / "summary.json", typ="series")
    cfg = RegistryConfig(tracking_uri=deployed["tracking"])
    version = register_model(
        cfg, load_model(out)[0], "lr-recsys", "regression", summary["per_seed"],
        summary["test_pair_keys"], True, extra_files=[out / BUNDLE],
    )  # fmt: skip
    # the promotion decision itself is tested in tests/model/test_registry.py; here an engineer
    # moves the alias and the running service must follow
    MlflowClient(deployed["tracking"]).set_registered_model_alias("lr-recsys", "champion", version)
    assert c.post("/admin/reload").json() == {"model_version": version, "changed": True}
    after = _rank(c, user_id=user, k=5).json()
    assert after["model_version"] == version != before["model_version"]
    assert [i["score"] for i in after["items"]] != [i["score"] for i in before["items"]]
    assert c.get("/stats").json()["reloads"] == 1


def test_a_champion_whose_feature_service_is_missing_is_refused_and_the_old_one_kept(
    deployed, sample
):
    from mlflow import MlflowClient

    from lr_recsys.models.io import load_model
    from lr_recsys.registry import RegistryConfig, register_model
    from lr_recsys.serve.bundle import BUNDLE

    c, run_dir = deployed["client"], deployed["run_dir"]
    serving_now = c.get("/readyz").json()["model_version"]
    model_dir = run_dir / "train-op" / "model"
    cfg = RegistryConfig(tracking_uri=deployed["tracking"])
    version = register_model(cfg, load_model(model_dir)[0], "lr-recsys", "regression", {"rmse": [0.1]},
                             ["k"], True, extra_files=[model_dir / BUNDLE], feature_service="lr_recsys_v99")  # fmt: skip
    MlflowClient(deployed["tracking"]).set_registered_model_alias("lr-recsys", "champion", version)
    r = c.post("/admin/reload")
    assert r.status_code == 409 and "'lr_recsys_v99'" in r.json()["detail"]
    user = sample[1][schema.USER_ID].iloc[0]
    assert _rank(c, user_id=user).json()["model_version"] == serving_now  # still the old one


def test_readiness_fails_with_the_reason_until_a_champion_exists(deployed):
    """A second app whose registry has no champion: alive, not ready, /rank 503 with the reason."""
    from ray import serve

    from lr_recsys.serve import local
    from lr_recsys.serve.ranker import ServeConfig
    from serving.app import build_app

    tmp, port = deployed["tmp"], deployed["client"].base_url.port
    cfg = ServeConfig.model_validate({
        "registry": {"tracking_uri": f"sqlite:///{tmp}/empty.db"}, "store": {"repo_dir": str(tmp / "repo")},
    })  # fmt: skip
    app = build_app(cfg.model_dump(mode="json"))
    with pytest.raises(RuntimeError, match="has no 'champion' version"):
        local.start(app, "127.0.0.1", port, name="broken", route_prefix="/broken", timeout_s=60)
    try:
        c = deployed["client"]
        assert c.get("/broken/healthz").status_code == 200
        ready = c.get("/broken/readyz")
        assert ready.status_code == 503 and "run the pipeline" in ready.json()["reason"]
        r = c.post("/broken/rank", json={"user_id": "1"})
        assert r.status_code == 503 and "champion" in r.text
    finally:
        serve.delete("broken")
    assert c.get("/readyz").status_code == 200  # the real app is untouched


def test_replicas_polling_the_alias_follow_a_promotion(deployed):
    """A second app with ``poll_s`` set: moving ``champion`` reaches it with no request at all."""
    import time

    from mlflow import MlflowClient
    from ray import serve

    from lr_recsys.models.io import load_model
    from lr_recsys.registry import RegistryConfig, register_model
    from lr_recsys.serve import local
    from lr_recsys.serve.bundle import BUNDLE
    from lr_recsys.serve.ranker import ServeConfig
    from serving.app import build_app

    tmp, port, c = deployed["tmp"], deployed["client"].base_url.port, deployed["client"]
    registry = MlflowClient(deployed["tracking"])
    registry.set_registered_model_alias("lr-recsys", "champion", "1")
    cfg = ServeConfig.model_validate({
        "registry": {"tracking_uri": deployed["tracking"]}, "store": {"repo_dir": str(tmp / "repo")},
        "poll_s": 0.5,
    })  # fmt: skip
    local.start(build_app(cfg.model_dump(mode="json")), "127.0.0.1", port, name="poller",
                route_prefix="/poller", timeout_s=120)  # fmt: skip
    try:
        assert c.get("/poller/readyz").json()["model_version"] == "1"
        model_dir = deployed["run_dir"] / "train-op" / "model"
        version = register_model(
            RegistryConfig(tracking_uri=deployed["tracking"]), load_model(model_dir)[0], "lr-recsys",
            "regression", {"rmse": [0.2]}, ["k"], True, extra_files=[model_dir / BUNDLE],
        )  # fmt: skip
        registry.set_registered_model_alias("lr-recsys", "champion", version)
        deadline = time.monotonic() + 30
        while c.get("/poller/readyz").json()["model_version"] != version:
            assert time.monotonic() < deadline, "the polling replica did not follow the alias"
            time.sleep(0.25)
        assert c.get("/poller/stats").json()["reloads"] == 1
    finally:
        serve.delete("poller")
