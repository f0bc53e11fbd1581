"""Saving and loading a trained model without pickle: ``weights.safetensors`` + ``config.json``
(architecture name, task, input sizes, hyperparameters)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from safetensors.torch import load_file, save_file

from lr_recsys.config import ModelConfig
from lr_recsys.models.base import ModelInputs, RecModel, build_model


def save_model(model: RecModel, name: str, task: str, directory: Path) -> None:
    """Write the model's weights and everything needed to rebuild it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()},
        directory / "weights.safetensors",
    )
    config = {
        "model": name,
        "task": task,
        "inputs": asdict(model.inputs),
        "model_config": asdict(model.cfg),
    }
    (directory / "config.json").write_text(json.dumps(config))


def load_model(directory: Path) -> tuple[RecModel, dict]:
    """Rebuild a model written by ``save_model``; returns it with its config."""
    directory = Path(directory)
    config = json.loads((directory / "config.json").read_text())
    inputs = {**config["inputs"], "context_sizes": tuple(config["inputs"]["context_sizes"])}
    hyper = {k: tuple(v) if isinstance(v, list) else v for k, v in config["model_config"].items()}
    model = build_model(config["model"], ModelInputs(**inputs), ModelConfig(**hyper))
    model.load_state_dict(load_file(directory / "weights.safetensors"))
    return model, config
