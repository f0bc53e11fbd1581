"""Compile the pipeline to KFP IR YAML, run it locally (``kfp.local.SubprocessRunner``, no
Docker, no cluster) or submit it to Kubeflow Pipelines / Vertex AI Pipelines."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pipelines.lr_recsys_pipeline import PIPELINE_NAME, lr_recsys_pipeline


def compile_pipeline(out: Path) -> Path:
    """Write the pipeline's IR YAML."""
    from kfp import compiler

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(lr_recsys_pipeline, str(out))
    return out


def run_local(params: dict[str, Any], pipeline_root: Path) -> Path:
    """Run every step in subprocesses of this environment; returns the run's artifact directory."""
    from kfp import local

    pipeline_root = Path(pipeline_root).resolve()
    pipeline_root.mkdir(parents=True, exist_ok=True)
    before = set(pipeline_root.iterdir())
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(pipeline_root),
        raise_on_error=True,
    )
    lr_recsys_pipeline(**params)
    new = sorted(set(pipeline_root.iterdir()) - before, key=lambda p: p.stat().st_mtime)
    if not new:
        raise RuntimeError(f"the local run wrote nothing under {pipeline_root}")
    return new[-1]


def submit(package: Path, params: dict[str, Any], host: str | None = None, vertex_project: str | None = None,
           vertex_region: str = "us-central1", pipeline_root: str | None = None) -> str:  # fmt: skip
    """Submit a compiled package to a Kubeflow endpoint (``host``) or Vertex AI (``vertex_project``)."""
    if vertex_project:
        from google.cloud import aiplatform  # the [vertex] extra

        aiplatform.init(project=vertex_project, location=vertex_region)
        job = aiplatform.PipelineJob(display_name=PIPELINE_NAME, template_path=str(package),
                                     pipeline_root=pipeline_root, parameter_values=params)  # fmt: skip
        job.submit()
        return job.resource_name
    if not host:
        raise ValueError("submit needs --host (Kubeflow Pipelines endpoint) or --vertex-project")
    import kfp

    client = kfp.Client(host=host, existing_token=os.environ.get("KFP_TOKEN"))
    run = client.create_run_from_pipeline_package(
        str(package), arguments=params, run_name=PIPELINE_NAME
    )
    return run.run_id
