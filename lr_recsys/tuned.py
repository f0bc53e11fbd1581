"""Tuned hyperparameters per model and task: the TOML file ``lr-recsys tune`` writes and
``compare``, the pipeline (``--param tuned_config=...``) and ``tune``'s own report read.

Layout (one table per model and task; only the fields listed in ``MODEL_FIELDS`` /
``TRAIN_FIELDS`` may be overridden, anything else is an error naming the key)::

    [meta]
    dataset = "ml-100k"

    [mf.regression]
    val_rmse = 0.2431      # the selection metric, on the validation split
    best_epoch = 7
    trials = 16

    [mf.regression.model]
    embed_dim = 16
    dropout = 0.1

    [mf.regression.train]
    lr = 0.003
    weight_decay = 1e-05
    batch_size = 512

The ``epochs`` a tuned run trains for is not tuned: early stopping on the validation split
(``TrainConfig.patience``) ends it.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

from lr_recsys import schema
from lr_recsys.config import ModelConfig, TrainConfig

MODEL_FIELDS = ("embed_dim", "dropout", "embedding_l2", "bias_reg")
TRAIN_FIELDS = ("lr", "weight_decay", "batch_size", "patience")

Tuned = dict[str, dict[str, dict[str, Any]]]  # model -> task -> {"model": {...}, "train": {...}}


class TunedConfigError(ValueError):
    """A tuned-config file that cannot be used (missing, malformed, unknown keys)."""


def read_tuned(path: Path | str | None) -> Tuned:
    """Read and check a tuned-config file; ``None`` or ``""`` gives an empty overlay."""
    if path is None or str(path) == "":
        return {}
    path = Path(path)
    if not path.exists():
        raise TunedConfigError(
            f"tuned config {path} does not exist (write one with lr-recsys tune)"
        )
    try:
        doc = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise TunedConfigError(f"tuned config {path} is not valid TOML: {exc}") from exc
    from lr_recsys.models import model_names

    out: Tuned = {}
    for name, tasks in doc.items():
        if name == "meta":
            continue
        if name not in model_names():
            raise TunedConfigError(
                f"tuned config {path}: unknown model {name!r}; available: {model_names()}"
            )
        if not isinstance(tasks, dict):
            raise TunedConfigError(f"tuned config {path}: [{name}] must be a table of tasks")
        for task, entry in tasks.items():
            if task not in schema.TASKS:
                raise TunedConfigError(
                    f"tuned config {path}: [{name}.{task}]: unknown task; expected one of "
                    f"{list(schema.TASKS)}"
                )
            for section, allowed in (("model", MODEL_FIELDS), ("train", TRAIN_FIELDS)):
                bad = sorted(set(entry.get(section, {})) - set(allowed))
                if bad:
                    raise TunedConfigError(
                        f"tuned config {path}: [{name}.{task}.{section}]: unknown field(s) {bad}; "
                        f"tunable: {list(allowed)}"
                    )
            out.setdefault(name, {})[task] = entry
    return out


# models without a tuned entry of their own -> the model whose entry they use
SHARED_ENTRY = {
    m: "lr-recsys-noexp"
    for m in (
        "lr-recsys",
        "lr-recsys-llm",
        "lr-recsys-distilled",
        "lr-recsys-content",
        "lr-recsys-pos",
    )
}


def configs_for(
    name: str, task: str, model_cfg: ModelConfig, train_cfg: TrainConfig, tuned: Tuned
) -> tuple[ModelConfig, TrainConfig]:
    """The base configs with the tuned overrides of ``name``/``task`` applied (if any). LR-Recsys
    variants without an entry of their own take the twin's (``lr-recsys-noexp``: the same
    network, so the same optimisation settings), as ``SHARED_ENTRY`` lists."""
    entry = tuned.get(name, {}).get(task) or tuned.get(SHARED_ENTRY.get(name, ""), {}).get(task)
    if not entry:
        return model_cfg, train_cfg
    return replace(model_cfg, **entry.get("model", {})), replace(
        train_cfg, **entry.get("train", {})
    )


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"cannot write a non-finite number ({v}) to TOML")
        return repr(v)
    if isinstance(v, str):
        escaped = v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    raise TypeError(f"cannot write {type(v).__name__} {v!r} to TOML")


def _table(header: str, values: dict[str, Any]) -> list[str]:
    lines = [f"[{header}]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in values.items() if not isinstance(v, dict)]
    return lines + [""]


def validation_score(entry: dict[str, Any]) -> tuple[str, float] | None:
    """(metric, value) of an entry's selection metric (``val_rmse`` or ``val_auc``)."""
    for key in ("val_rmse", "val_auc"):
        if key in entry:
            return key, float(entry[key])
    return None


def better(new: dict[str, Any], old: dict[str, Any]) -> bool:
    """Whether ``new`` has the better validation score (True when they cannot be compared)."""
    a, b = validation_score(new), validation_score(old)
    if a is None or b is None or a[0] != b[0]:
        return True
    return a[1] < b[1] if a[0] == "val_rmse" else a[1] > b[1]


def write_tuned(
    path: Path | str,
    tuned: Tuned,
    meta: dict[str, Any] | None = None,
    keep_better: bool = False,
) -> Path:
    """Write ``tuned`` to ``path``, merged over the entries already there (other models and
    tasks are kept). An entry in ``tuned`` replaces the file's entry for its model and task,
    or, with ``keep_better``, only when its validation score is better (a second search with
    another space or seed then adds to the first instead of undoing it)."""
    path = Path(path)
    merged = read_tuned(path) if path.exists() else {}
    old_meta = tomllib.loads(path.read_text()).get("meta", {}) if path.exists() else {}
    for name, tasks in tuned.items():
        for task, entry in tasks.items():
            old = merged.get(name, {}).get(task)
            if old is None or not keep_better or better(entry, old):
                merged.setdefault(name, {})[task] = entry
    lines = [
        "# Tuned hyperparameters per model and task, written by `lr-recsys tune`.",
        "# Selected on the validation split only; read by `lr-recsys compare --tuned-config` and",
        "# the pipeline (`--param tuned_config=...`).",
        "",
    ]
    lines += _table("meta", {**old_meta, **(meta or {})})
    for name in sorted(merged):
        for task in sorted(merged[name]):
            entry = merged[name][task]
            lines += _table(f"{name}.{task}", entry)
            for section in ("model", "train"):
                if entry.get(section):
                    lines += _table(f"{name}.{task}.{section}", entry[section])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return path
