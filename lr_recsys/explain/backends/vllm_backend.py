"""vLLM backend (``pip install 'lr-recsys[gpu]'``): offline batched generation with automatic
prefix caching, for Llama-3.1-8B-class models on GPUs. ``vllm`` is imported only when this
backend is constructed, so CPU-only installs never touch it."""

from __future__ import annotations

import time

from lr_recsys.explain.backends.base import Backend, Completion, Decoding


class VLLMBackend(Backend):
    """A ``vllm.LLM`` engine; one ``generate`` call per batch of prompts."""

    def __init__(
        self,
        model: str,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.85,
        max_model_len: int = 4096,
        dtype: str = "auto",
    ) -> None:
        try:
            from vllm import LLM
        except ImportError as exc:  # pragma: no cover - GPU machines only
            raise ImportError(
                "the vLLM backend needs `pip install 'lr-recsys[gpu]'` on a GPU machine"
            ) from exc
        self.model_id = f"vllm:{model}"
        self.llm = LLM(
            model=model,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            dtype=dtype,
            enable_prefix_caching=True,
        )

    def complete(self, prompts: list[str], decoding: Decoding) -> list[Completion]:
        from vllm import SamplingParams

        params = SamplingParams(
            max_tokens=decoding.max_tokens,
            temperature=decoding.temperature,
            top_p=decoding.top_p,
            seed=decoding.seed,
            stop=list(decoding.stop),
        )
        start = time.perf_counter()
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        per = (time.perf_counter() - start) / max(len(prompts), 1)
        return [
            Completion(
                o.outputs[0].text,
                len(o.prompt_token_ids),
                len(o.outputs[0].token_ids),
                per,
                o.outputs[0].finish_reason or "stop",
            )
            for o in outputs
        ]
