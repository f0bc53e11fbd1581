"""Submitting the compiled pipeline: Vertex AI through the real ``google-cloud-aiplatform``
module with its ``PipelineJob`` replaced by a recording double (a paid cloud service that cannot
run here), and the argument checks of both targets."""

from __future__ import annotations

import pytest
import yaml

from lr_recsys.cli import main
from pipelines.runner import compile_pipeline, submit


class _RecordedJob:
    """Stands in for ``aiplatform.PipelineJob``: records what would be sent to Vertex."""

    calls: list[dict] = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.resource_name = "projects/proj/locations/europe-west4/pipelineJobs/lr-recsys-1"

    def submit(self):
        _RecordedJob.calls.append(self.kwargs)


@pytest.fixture
def vertex(monkeypatch):
    from google.cloud import aiplatform

    inits: list[dict] = []
    _RecordedJob.calls = []
    monkeypatch.setattr(aiplatform, "init", lambda **kw: inits.append(kw))
    monkeypatch.setattr(aiplatform, "PipelineJob", _RecordedJob)
    return inits


def test_vertex_submit_sends_the_compiled_template_and_parameters(tmp_path, vertex):
    package = compile_pipeline(tmp_path / "p.yaml")
    ref = submit(package, {"max_users": 50, "backend": "vllm"}, vertex_project="proj",
                 vertex_region="europe-west4", pipeline_root="gs://bucket/runs")  # fmt: skip
    assert ref.endswith("pipelineJobs/lr-recsys-1")
    assert vertex == [{"project": "proj", "location": "europe-west4"}]
    (job,) = _RecordedJob.calls
    assert job["template_path"] == str(package) and job["pipeline_root"] == "gs://bucket/runs"
    assert job["parameter_values"] == {"max_users": 50, "backend": "vllm"}
    # every parameter sent is one the compiled pipeline declares
    declared = yaml.safe_load(package.read_text())["root"]["inputDefinitions"]["parameters"]
    assert set(job["parameter_values"]) <= set(declared)


def test_cli_submit_passes_typed_parameters_to_vertex(tmp_path, vertex, capsys):
    code = main(["pipeline", "submit", "--out", str(tmp_path / "p.yaml"), "--vertex-project", "proj",
                 "--remote-root", "gs://b/r", "--param", "epochs=3", "--param", "task=classification"])  # fmt: skip
    assert code == 0
    assert "submitted: projects/proj" in capsys.readouterr().out
    (job,) = _RecordedJob.calls
    assert job["parameter_values"] == {"epochs": 3, "task": "classification"}


def test_submit_without_a_target_names_the_missing_options(tmp_path, caplog):
    with pytest.raises(ValueError, match="--host .* or --vertex-project"):
        submit(compile_pipeline(tmp_path / "p.yaml"), {})
    assert main(["pipeline", "submit", "--out", str(tmp_path / "q.yaml")]) == 2
    assert "--vertex-project" in caplog.text


def test_cli_params_are_typed_by_the_pipeline_declaration(tmp_path, vertex, caplog):
    argv = ["pipeline", "submit", "--out", str(tmp_path / "p.yaml"), "--vertex-project", "proj"]
    assert (
        main([*argv, "--param", "seeds=0", "--param", "margin=0.01", "--param", "max_users=5"]) == 0
    )
    (job,) = _RecordedJob.calls
    assert job["parameter_values"] == {"seeds": "0", "margin": 0.01, "max_users": 5}
    assert main([*argv, "--param", "max_users=many"]) == 2
    assert "--param max_users='many': expected Integer" in caplog.text
    assert main([*argv, "--param", "epochz=3"]) == 2
    assert "'epochz': not a pipeline parameter" in caplog.text
