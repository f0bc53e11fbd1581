"""Typed configuration.

Model and training hyperparameters are dataclasses whose defaults are the paper's (Appendix A and
C.1); run settings are pydantic models with ``extra="forbid"`` so a misspelt key is an error.

Override order, lowest to highest: config file (TOML or JSON) < environment
(``LR_RECSYS__SECTION__FIELD=value``) < command line.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lr_recsys import schema

ENV_PREFIX = "LR_RECSYS__"
OnDuplicate = Literal["error", "keep_last", "mean"]  # rows sharing (user_id, item_id, timestamp)


@dataclass
class ModelConfig:
    """Network hyperparameters shared by LR-Recsys, its variants and the baselines."""

    embed_dim: int = 8  # Appendix A.2: user, item, history, context and explanation tokens are 8-d
    history_len: int = 5  # Sec. 5.1: the consumer's previous 5 items
    mlp_layers: tuple[int, ...] = (64, 8, 1)  # Appendix A.3: MLP after the token self-attention
    ncf_mlp_layers: tuple[int, ...] = (32, 16, 8)  # Robustness Check 1 / He et al. 2017 tower
    explanation_dim: int = 8  # AE bottleneck; 384 for the MiniLM raw-embedding ablation
    num_attention_blocks: int = 1  # SASRec-style baseline depth
    dropout: float = 0.0  # on embeddings/tokens and between MLP layers, in every neural model
    embedding_l2: float = 0.0  # L2 on the embedding rows a batch uses (per example), every model
    bias_reg: float | None = None  # `bias` model L2 shrinkage; None = chosen on validation
    bias_iterations: int = 10  # `bias` model alternating ridge passes (1 = Koren's formula)


@dataclass
class TrainConfig:
    """Optimisation settings of the rating/click DNN (Appendix A, C.1)."""

    lr: float = 0.01  # Adam learning rate
    batch_size: int = 128
    epochs: int = 100
    weight_decay: float = 0.0  # L2 on every parameter (Adam's coupled weight decay)
    patience: int | None = 10  # stop after this many epochs without a better validation score
    seed: int = 0
    num_threads: int = 1  # small networks train fastest single-threaded (see benchmarks/)
    progress: bool = True


@dataclass
class AEConfig:
    """Text AutoEncoder of Sec. 3.4.2 / Appendix A.1."""

    maxlen: int = 50  # sentences padded/truncated to 50 words
    word_dim: int = 8  # learned word embeddings
    hidden: int = 64  # 400 -> 64 -> 8 -> 64 -> 400
    bottleneck: int = 8  # the explanation embedding
    lr: float = 0.1
    optimizer: Literal["adagrad", "adam", "sgd"] = "adagrad"
    batch_size: int = 128
    epochs: int = 100
    min_count: int = 1  # words seen fewer times in the training split map to <unk>
    seed: int = 0
    progress: bool = True


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,1023}$")
_PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")


class BigQuerySource(BaseModel):
    """Which table and columns hold the interactions."""

    model_config = ConfigDict(extra="forbid")

    project: str
    dataset: str
    table: str
    user_column: str = schema.USER_ID
    item_column: str = schema.ITEM_ID
    rating_column: str = schema.RATING
    timestamp_column: str = schema.TIMESTAMP
    since: str | None = None  # ISO timestamp: only interactions at or after it
    limit: int | None = None
    location: str | None = None

    @field_validator(
        "dataset", "table", "user_column", "item_column", "rating_column", "timestamp_column"
    )
    @classmethod
    def _identifier(cls, v: str) -> str:
        if not _IDENT.match(v):
            raise ValueError(
                f"{v!r} is not a valid BigQuery identifier (letters, digits, underscores)"
            )
        return v

    @field_validator("project")
    @classmethod
    def _project(cls, v: str) -> str:
        if not _PROJECT.match(v):
            raise ValueError(f"{v!r} is not a valid Google Cloud project id")
        return v

    @field_validator("limit")
    @classmethod
    def _limit(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise ValueError(f"limit must be positive, got {v}")
        return v

    @classmethod
    def from_ref(cls, ref: str) -> BigQuerySource:
        """``project.dataset.table`` -> a source with the canonical column names."""
        parts = ref.split(".")
        if len(parts) != 3:
            raise ValueError(f"BigQuery table {ref!r}: expected project.dataset.table")
        return cls(project=parts[0], dataset=parts[1], table=parts[2])

    @property
    def table_ref(self) -> str:
        return f"{self.project}.{self.dataset}.{self.table}"


class DataConfig(BaseModel):
    """Which data to load and how to prepare it (Sec. 5.1)."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(
        "ml-100k",
        description="'ml-100k', 'generic' (bring your own files, see README) or 'bigquery' "
        "(interactions from the `bigquery` table, items/users from files)",
    )
    data_dir: Path = Path("data")
    source: Literal["auto", "grouplens", "pypi", "local"] = "auto"
    local_dir: Path | None = None
    interactions: Path | None = None
    items: Path | None = None
    users: Path | None = None
    bigquery: BigQuerySource | None = None  # dataset 'bigquery': where the interactions are
    rating_min: float = 1.0
    rating_max: float = 5.0
    high_rating: float = 4.0  # classification label = rating >= 4
    on_duplicate: OnDuplicate = "error"  # or keep_last (last in file order) / mean (mean rating)
    history_len: int = 5
    test_frac: float = 0.2  # user-temporal split: latest 20% per user
    val_frac: float = 0.1  # latest 10% of each user's training part
    min_user_interactions: int = 3
    max_per_user: int | None = None  # keep only each user's most recent N interactions
    max_users: int | None = None  # keep a random (seeded) sample of N users, for benchmark subsets
    sample_seed: int = 0
    # as-of runs and replays: only interactions at or before this Unix time (None: all); the
    # users sampled by max_users do not depend on it, so a later refresh sees the same users
    until: int | None = None
    train_fraction: float = 1.0  # 0.12, 0.25, 0.5, 1.0 in the learning-efficiency study

    @field_validator("test_frac", "val_frac")
    @classmethod
    def _frac(cls, v: float) -> float:
        if not 0.0 < v < 1.0:
            raise ValueError(f"must be strictly between 0 and 1, got {v}")
        return v

    @field_validator("history_len")
    @classmethod
    def _history(cls, v: int) -> int:
        if v < 1:
            raise ValueError(f"must be at least 1, got {v}")
        return v

    @field_validator("min_user_interactions")
    @classmethod
    def _min_inter(cls, v: int) -> int:
        if v < 2:
            raise ValueError(f"must be at least 2 (one training and one test interaction), got {v}")
        return v

    @model_validator(mode="after")
    def _rating_scale(self) -> DataConfig:
        if self.rating_max <= self.rating_min:
            raise ValueError(
                f"rating_max ({self.rating_max}) must exceed rating_min ({self.rating_min})"
            )
        if not self.rating_min <= self.high_rating <= self.rating_max:
            raise ValueError(
                f"high_rating ({self.high_rating}) must lie in [{self.rating_min}, {self.rating_max}]"
            )
        return self

    @field_validator("train_fraction")
    @classmethod
    def _train_frac(cls, v: float) -> float:
        if not 0.0 < v <= 1.0:
            raise ValueError(f"must be in (0, 1], got {v}")
        return v


class UncertaintyConfig(BaseModel):
    """The first pass of the ``uncertainty`` LLM budget (``lr_recsys.explain.uncertainty``): the
    no-explanation twin trained once per seed on the training split (early-stopped on
    validation); a pair's score is the spread of the seeds' predictions."""

    model_config = ConfigDict(extra="forbid")

    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2])  # a deep ensemble, >= 2 members
    task: Literal["regression", "classification"] = "regression"
    tuned_config: Path | None = None  # the twin's tuned settings (None: compare's, else defaults)
    epochs: int = 100  # an upper bound: early stopping on validation ends each member
    patience: int = 10
    # scores file (pair_key, uncertainty): read when it exists, else computed and written there
    scores: Path | None = None

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if len(set(v)) < 2:
            raise ValueError(f"the ensemble needs at least 2 distinct seeds, got {v}")
        return v


class CompareConfig(BaseModel):
    """Settings of ``lr-recsys compare``."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    data: DataConfig = Field(default_factory=DataConfig)
    models: list[str] = Field(
        default_factory=lambda: ["mf", "ncf", "sasrec", "din", "lr-recsys-noexp"]
    )
    tasks: list[str] = Field(default_factory=lambda: list(schema.TASKS))
    seeds: list[int] = Field(default_factory=lambda: [0, 1])
    explanations: Path | None = None  # explanation table (pair_key, positive, negative)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    ae: AEConfig = Field(default_factory=AEConfig)
    out: Path = Path("results.json")
    tuned_config: Path | None = None  # per model and task overrides written by `lr-recsys tune`
    train_fractions: list[float] | None = None  # learning curve, e.g. [0.12, 0.25, 0.5, 1.0]
    # parallel training runs (Ray tasks, one CPU each; $RAY_ADDRESS joins a cluster)
    workers: int = 1
    # LLM budget: use the table's explanations only for the first N pairs of the budget order
    # (lr_recsys.explain.budget; the rest are distilled), None = every explanation in the table
    llm_pairs: int | None = None
    budget_seed: int = 0
    budget_policy: Literal["even", "random", "uncertainty"] = "even"
    uncertainty: UncertaintyConfig = Field(default_factory=UncertaintyConfig)

    @field_validator("train_fractions")
    @classmethod
    def _fractions(cls, v: list[float] | None) -> list[float] | None:
        if v is None:
            return v
        bad = [f for f in v if not 0.0 < f <= 1.0]
        if bad or not v:
            raise ValueError(f"train fractions must lie in (0, 1], got {v}")
        return sorted(set(v))

    @field_validator("workers")
    @classmethod
    def _workers(cls, v: int) -> int:
        if v < 1:
            raise ValueError(f"workers must be at least 1, got {v}")
        return v

    @field_validator("tasks")
    @classmethod
    def _tasks(cls, v: list[str]) -> list[str]:
        bad = [t for t in v if t not in schema.TASKS]
        if bad:
            raise ValueError(f"unknown task(s) {bad}; expected a subset of {list(schema.TASKS)}")
        return v


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a TOML or JSON config file into a dict."""
    if not path.exists():
        raise FileNotFoundError(f"config file {path} does not exist")
    text = path.read_text()
    if path.suffix == ".toml":
        return tomllib.loads(text)
    if path.suffix == ".json":
        return json.loads(text)
    raise ValueError(f"config file {path}: expected a .toml or .json file")


def env_overrides(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Nested overrides from ``LR_RECSYS__SECTION__FIELD=value`` variables (values parsed as JSON
    when they parse, else kept as strings)."""
    environ = dict(os.environ if environ is None else environ)
    out: dict[str, Any] = {}
    for key, raw in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        path = [p.lower() for p in key[len(ENV_PREFIX) :].split("__") if p]
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return out


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``over`` into a copy of ``base``."""
    merged = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(merged.get(k), dict):
            merged[k] = deep_merge(merged[k], v)
        else:
            merged[k] = v
    return merged


def _to_dataclass(cls: type, values: dict[str, Any] | Any) -> Any:
    if not isinstance(values, dict):
        return values
    known = set(cls.__dataclass_fields__)
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown field(s) {unknown}; expected {sorted(known)}")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return cls(**kwargs)


def load_settings(
    path: Path | None = None,
    cli: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Nested settings from file < environment (``os.environ`` when ``environ`` is None) <
    command line, not yet validated."""
    merged = read_config_file(Path(path)) if path is not None else {}
    merged = deep_merge(merged, env_overrides(environ))
    return deep_merge(merged, cli or {})


def load_data_config(
    path: Path | None = None,
    cli: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> DataConfig:
    """The ``[data]`` settings of a config file < ``LR_RECSYS__DATA__*`` variables < ``cli``
    (the data fields alone): what ``lr-recsys data`` and the pipeline's ingest step use."""
    data = load_settings(path, None, environ).get("data", {})
    if not isinstance(data, dict):
        raise ValueError(f"config: 'data' must be a table of data settings, got {data!r}")
    return DataConfig(**deep_merge(data, cli or {}))


def load_compare_config(
    path: Path | None = None,
    cli: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> CompareConfig:
    """Build a ``CompareConfig`` from file < environment < command line."""
    return compare_config(load_settings(path, cli, environ))


def compare_config(settings: dict[str, Any]) -> CompareConfig:
    """A ``CompareConfig`` from nested settings (its dataclass tables converted)."""
    merged = dict(settings)
    for key, cls in (("model", ModelConfig), ("train", TrainConfig), ("ae", AEConfig)):
        if key in merged:
            merged[key] = _to_dataclass(cls, merged[key])
    return CompareConfig(**merged)


__all__ = [
    "AEConfig",
    "CompareConfig",
    "DataConfig",
    "ModelConfig",
    "OnDuplicate",
    "TrainConfig",
    "deep_merge",
    "env_overrides",
    "compare_config",
    "load_compare_config",
    "load_data_config",
    "load_settings",
    "read_config_file",
]
