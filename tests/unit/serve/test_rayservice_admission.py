"""The RayService manifest wires what the serving app needs: the admin token from a Kubernetes
Secret on every Ray container, and the admission-control settings through ``build_app``."""

from __future__ import annotations

from pathlib import Path

import yaml

from lr_recsys.serve.ranker import ServeConfig
from serving.app import build_app

MANIFEST = Path(__file__).parents[3] / "infra" / "kuberay" / "serve-rayservice.yaml"


def _doc() -> dict:
    return yaml.safe_load(MANIFEST.read_text())


def _app_args() -> dict:
    (app,) = yaml.safe_load(_doc()["spec"]["serveConfigV2"])["applications"]
    return app["args"]


def test_every_ray_container_reads_the_admin_token_from_a_secret():
    cluster = _doc()["spec"]["rayClusterConfig"]
    templates = [cluster["headGroupSpec"]["template"]]
    templates += [group["template"] for group in cluster["workerGroupSpecs"]]
    env_name = ServeConfig.model_validate(_app_args()).admin_token_env
    for template in templates:
        for container in template["spec"]["containers"]:
            (var,) = [e for e in container["env"] if e["name"] == env_name]
            ref = var["valueFrom"]["secretKeyRef"]  # never a literal value in the manifest
            assert ref["name"] == "lr-recsys-admin" and ref["key"] == "token", container["name"]


def test_admission_settings_reach_the_deployment_options():
    args = _app_args()
    cfg = ServeConfig.model_validate(args)
    deployment = build_app(args)._bound_deployment
    assert deployment.max_ongoing_requests == cfg.max_ongoing_requests
    assert deployment.max_queued_requests == cfg.max_queued_requests
    assert deployment.backpressure_config.status_code == 503
    assert deployment.backpressure_config.retry_after_s == cfg.retry_after_s
    # a `deployments:` entry would override build_app's options: they are set in args only
    (app,) = yaml.safe_load(_doc()["spec"]["serveConfigV2"])["applications"]
    for entry in app["deployments"]:
        assert not {"max_ongoing_requests", "max_queued_requests", "backpressure_config"} & set(
            entry
        )
