"""Deployment files parse, and the commands they run are valid `lr-recsys` invocations."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from lr_recsys.cli import build_parser

INFRA = Path(__file__).parents[2] / "infra"
MANIFESTS = sorted(INFRA.rglob("*.yaml"))


def test_there_are_manifests():
    assert MANIFESTS, "no YAML under infra/"


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_parses_and_its_entrypoint_is_a_valid_command(path):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert docs and all({"apiVersion", "kind", "metadata"} <= set(d) for d in docs)
    for doc in docs:
        entry = doc.get("spec", {}).get("entrypoint")
        if entry:
            argv = shlex.split(entry)
            assert argv[0] == "lr-recsys"
            build_parser().parse_args(argv[1:])  # exits (SystemExit) on an unknown flag


DOCKERFILES = sorted((INFRA / "docker").glob("Dockerfile.*"))


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_copies_files_that_exist(path):
    repo = INFRA.parent
    copies = [
        line.split()[1:-1] for line in path.read_text().splitlines() if line.startswith("COPY ")
    ]
    assert copies, f"{path.name} copies nothing"
    for sources in copies:
        for src in sources:
            assert (repo / src).exists(), f"{path.name}: COPY {src} does not exist"
    assert "pip install" in path.read_text()


def test_ci_workflow_runs_valid_commands():
    workflow = yaml.safe_load((INFRA / "ci" / "pipeline.yml").read_text())
    steps = workflow["jobs"]["pipeline"]["steps"]
    commands = [s["run"] for s in steps if "run" in s]
    assert "make test" in commands
    for cmd in commands:
        if cmd.startswith(".venv/bin/lr-recsys"):
            argv = shlex.split(cmd.replace("${{ vars.KFP_HOST }}", "http://kfp"))
            build_parser().parse_args(argv[1:])


def test_rayservice_imports_the_serving_app_with_valid_args():
    import importlib

    from lr_recsys.serve.ranker import ServeConfig

    doc = yaml.safe_load((INFRA / "kuberay" / "serve-rayservice.yaml").read_text())
    serve_cfg = yaml.safe_load(doc["spec"]["serveConfigV2"])
    (app,) = serve_cfg["applications"]
    module, attr = app["import_path"].split(":")
    build_app = getattr(importlib.import_module(module), attr)
    cfg = ServeConfig.model_validate(app["args"])  # extra="forbid": a typo fails here
    assert cfg.store.online == "redis" and cfg.poll_s > 0
    assert build_app(app["args"]) is not None  # binds the deployment (no cluster needed)
    deployment_names = {d["name"] for d in app["deployments"]}
    assert deployment_names == {"lr-recsys-ranker"}
