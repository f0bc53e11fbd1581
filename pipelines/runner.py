"""Compile the pipeline to KFP IR YAML, run it locally (``kfp.local.SubprocessRunner``, no
Docker, no cluster) or submit it to Kubeflow Pipelines / Vertex AI Pipelines."""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
from pathlib import Path
from typing import Any, TextIO

from pipelines.lr_recsys_pipeline import PIPELINE_NAME, lr_recsys_pipeline
from pipelines.refresh_pipeline import REFRESH_NAME, refresh_pipeline

PIPELINES = {"train": lr_recsys_pipeline, "refresh": refresh_pipeline}  # by CLI name
NAMES = {"train": PIPELINE_NAME, "refresh": REFRESH_NAME}


def compile_pipeline(out: Path, which: str = "train") -> Path:
    """Write the IR YAML of the ``train`` or ``refresh`` pipeline."""
    from kfp import compiler

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(PIPELINES[which], str(out))
    return out


RUN_LOG = "run.log"  # the run's console output (colours stripped), in its artifact directory
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_KFP_LOG_LINE = re.compile(r"^(\d\d:\d\d:\d\d\.\d{3} - |\[KFP Executor )")
_STREAM_INDENT = "    "  # kfp.local indents a task's streamed output by four spaces


class PipelineFailed(RuntimeError):
    """A local run stopped in a task: its name, its exception's last line and the log's path."""

    def __init__(self, task: str, error: str, log: Path) -> None:
        super().__init__(f"pipeline failed in task {task}: {error} (full log: {log})")
        self.task, self.error, self.log = task, error, log


class _Tee(io.TextIOBase):
    """Writes to the console as is and to a log file without colour codes."""

    def __init__(self, stream: TextIO, log: TextIO) -> None:
        self.stream, self.log = stream, log

    def write(self, text: str) -> int:
        self.log.write(_ANSI.sub("", text))
        return self.stream.write(text)

    def flush(self) -> None:
        self.log.flush()
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()


def run_local(params: dict[str, Any], pipeline_root: Path, which: str = "train") -> Path:
    """Run every step in subprocesses of this environment; returns the run's artifact directory,
    where the console output is kept as ``run.log``.

    Raises:
        PipelineFailed: a task failed; names the task and its exception's last line.
    """
    from kfp import local

    pipeline_root = Path(pipeline_root).resolve()
    pipeline_root.mkdir(parents=True, exist_ok=True)
    before = set(pipeline_root.iterdir())
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(pipeline_root),
        raise_on_error=True,
    )
    log = pipeline_root / f".{os.getpid()}-{RUN_LOG}"
    failure: RuntimeError | None = None
    with log.open("w") as log_file, contextlib.redirect_stdout(_Tee(sys.stdout, log_file)):
        try:
            PIPELINES[which](**params)
        except RuntimeError as exc:  # kfp.local: "Pipeline ... Inner task failed: 'task'."
            failure = exc
    new = [p for p in set(pipeline_root.iterdir()) - before if p.is_dir()]
    run_dir = max(new, key=lambda p: p.stat().st_mtime) if new else pipeline_root
    log = log.replace(run_dir / RUN_LOG)
    if failure is not None:
        task, error, task_log = task_failure(log.read_text(), str(failure))
        if task is None:
            raise failure
        (run_dir / f"{task}.log").write_text(task_log)
        raise PipelineFailed(task, error, run_dir / f"{task}.log") from failure
    if not new:
        raise RuntimeError(f"the local run wrote nothing under {pipeline_root}")
    return run_dir


def task_failure(log: str, message: str) -> tuple[str | None, str, str]:
    """The failed task, its exception's last line (``DataError: ...``, several message lines
    joined) and its own log, from a kfp.local run's console ``log`` and the ``message`` of the
    RuntimeError it raised; the task is None when neither names one."""
    log, message = _ANSI.sub("", log), _ANSI.sub("", message)
    named = re.search(r"Inner task failed: '([^']+)'", message)  # the innermost task first
    failed = re.findall(r"Task '([^']+)' finished with status FAILURE", log)
    task = named.group(1) if named else (failed[-1] if failed else None)
    if task is None:
        return None, message, log
    start = log.rfind(f"Executing task '{task}'")
    end = log.find(f"Task '{task}' finished with status FAILURE", max(start, 0))
    section = log[max(start, 0) : end if end >= 0 else len(log)]
    lines = [ln.removeprefix(_STREAM_INDENT) for ln in section.splitlines()]
    return task, _last_exception(lines) or "no Python traceback in its output", "\n".join(lines)


def _last_exception(lines: list[str]) -> str | None:
    """``Type: message`` of the last traceback in ``lines`` (module path dropped), or None."""
    starts = [i for i, ln in enumerate(lines) if ln.startswith("Traceback (most recent call last)")]
    if not starts:
        return None
    rest = lines[starts[-1] + 1 :]
    body = next((i for i, ln in enumerate(rest) if ln.strip() and not ln[0].isspace()), None)
    if body is None:
        return None
    message = []
    for ln in rest[body:]:
        if not ln.strip() or _KFP_LOG_LINE.match(ln):
            break
        message.append(ln.strip())
    kind, sep, text = message[0].partition(":")
    return " ".join([kind.rsplit(".", 1)[-1] + sep + text, *message[1:]])


def submit(package: Path, params: dict[str, Any], host: str | None = None, vertex_project: str | None = None,
           vertex_region: str = "us-central1", pipeline_root: str | None = None,
           which: str = "train") -> str:  # fmt: skip
    """Submit a compiled package to a Kubeflow endpoint (``host``) or Vertex AI (``vertex_project``)."""
    if vertex_project:
        from google.cloud import aiplatform  # the [vertex] extra

        aiplatform.init(project=vertex_project, location=vertex_region)
        job = aiplatform.PipelineJob(display_name=NAMES[which], template_path=str(package),
                                     pipeline_root=pipeline_root, parameter_values=params)  # fmt: skip
        job.submit()
        return job.resource_name
    if not host:
        raise ValueError("submit needs --host (Kubeflow Pipelines endpoint) or --vertex-project")
    import kfp

    client = kfp.Client(host=host, existing_token=os.environ.get("KFP_TOKEN"))
    run = client.create_run_from_pipeline_package(
        str(package), arguments=params, run_name=NAMES[which]
    )
    return run.run_id
