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
