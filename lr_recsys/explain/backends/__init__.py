"""LLM backends behind one interface, built from config; heavy imports happen lazily."""

from __future__ import annotations

from lr_recsys.explain.backends.base import Backend, Completion, Decoding
from lr_recsys.explain.config import LLMConfig


def build_backend(cfg: LLMConfig, reset_each_call: bool = False) -> Backend:
    """Instantiate the backend ``cfg.backend`` names."""
    if cfg.backend == "llamacpp":
        from lr_recsys.explain.backends.llamacpp import LlamaCppBackend

        return LlamaCppBackend(
            cfg.model_path,
            cfg.n_ctx,
            cfg.n_threads,
            reset_each_call=reset_each_call,
            parallel=cfg.parallel,
        )
    if cfg.backend == "openai":
        from lr_recsys.explain.backends.openai_http import OpenAIHTTPBackend

        if not cfg.base_url or not cfg.model:
            raise ValueError("the openai backend needs llm.base_url and llm.model")
        return OpenAIHTTPBackend(
            cfg.base_url,
            cfg.model,
            cfg.api_key_env,
            cfg.timeout_s,
            cfg.max_retries,
            concurrency=cfg.concurrency,
        )
    if cfg.backend == "vllm":
        from lr_recsys.explain.backends.vllm_backend import VLLMBackend

        if not cfg.model:
            raise ValueError("the vllm backend needs llm.model (a Hugging Face id or a local path)")
        return VLLMBackend(
            cfg.model, cfg.tensor_parallel_size, cfg.gpu_memory_utilization, cfg.n_ctx
        )
    raise ValueError(f"unknown backend {cfg.backend!r}; expected llamacpp, openai or vllm")


__all__ = ["Backend", "Completion", "Decoding", "LLMConfig", "build_backend"]
