"""Settings of the explanation engine and its LLM backend (override order as in
``lr_recsys.config``: file < environment < command line)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from lr_recsys.config import DataConfig, UncertaintyConfig


class LLMConfig(BaseModel):
    """Which LLM writes the explanations, and how it decodes."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["llamacpp", "vllm", "openai"] = "llamacpp"
    model_path: Path | None = None  # llamacpp: a GGUF file; default Gemma 3 270M Q4_K_M from PyPI
    model: str | None = None  # vllm: HF id or path; openai: the served model name
    base_url: str | None = None  # openai: e.g. http://127.0.0.1:8000/v1
    api_key_env: str = "OPENAI_API_KEY"  # the key is read from this environment variable
    n_ctx: int = 1024  # llama.cpp context per sequence
    n_threads: int = 2  # llama.cpp threads per worker
    parallel: int = 8  # llama.cpp sequences decoded together (batched decoding, shared prefixes)
    timeout_s: float = 60.0
    max_retries: int = 3
    concurrency: int = 4  # in-flight HTTP requests per worker
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.85
    max_tokens: int = 32  # answers stop at the first period; this caps run-ons
    temperature: float = 0.0
    seed: int = 0


class ExplainConfig(BaseModel):
    """Settings of ``lr-recsys explain``."""

    model_config = ConfigDict(extra="forbid")

    data: DataConfig = Field(default_factory=DataConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    domain: str = "movie"
    domain_overrides: dict[str, str] = Field(default_factory=dict)  # item_noun, verb_past, ...
    variant: str = "attributes"  # see lr_recsys.explain.prompts.VARIANTS
    cache_path: Path = Path("data/llm_cache.sqlite")
    max_pairs: int | None = None  # the first N pairs in user/time order (a quick look)
    llm_pairs: int | None = None  # the LLM budget: pairs explained (None: all); see explain.budget
    budget_policy: Literal["even", "random", "uncertainty"] = "even"
    budget_seed: int = 0
    # policy "uncertainty": its first pass (scores written beside ``out`` unless ``scores`` is set)
    uncertainty: UncertaintyConfig = Field(default_factory=UncertaintyConfig)
    executor: Literal["local", "ray"] = "local"
    workers: int = 1
    batch_size: int = 8  # requests per durable cache write
    ray_address: str | None = None  # None: start a local Ray; "auto": join a cluster
    out: Path = Path("data/explanations.parquet")
    progress: bool = True
