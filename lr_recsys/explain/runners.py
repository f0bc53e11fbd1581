"""Where generation runs: in this process (small jobs, tests) or on a Ray cluster.

The Ray path uses Ray Data ``map_batches`` with an actor pool; each actor holds one backend
instance (one llama.cpp model per CPU worker, one vLLM engine per GPU). The driver receives every
finished batch and writes it to the cache at once, so a killed run keeps all finished batches.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from lr_recsys.explain.backends import Backend, Decoding, LLMConfig, build_backend
from lr_recsys.explain.cache import Record
from lr_recsys.explain.generate import Request, generate_records

log = logging.getLogger(__name__)


def batched(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class LocalRunner:
    """Generation in this process with one backend, built on first use (a fully cached run never
    loads the model)."""

    def __init__(self, llm: LLMConfig, backend: Backend | None = None) -> None:
        self.llm = llm
        self.backend = backend

    def run(
        self, requests: list[Request], decoding: Decoding, batch_size: int
    ) -> Iterator[list[Record]]:
        if not requests:
            return
        if self.backend is None:
            self.backend = build_backend(self.llm)
        for chunk in batched(requests, batch_size):
            yield generate_records(self.backend, chunk, decoding)

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()


class _RayGenerator:
    """Ray Data actor: one backend per actor, reused across batches."""

    def __init__(self, llm: dict, decoding: dict) -> None:
        self.backend = build_backend(LLMConfig(**llm))
        self.decoding = Decoding(**{**decoding, "stop": tuple(decoding["stop"])})

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        requests = [
            Request(k, kind, p, pre)
            for k, kind, p, pre in zip(
                batch["key"], batch["kind"], batch["prompt"], batch["prefix"], strict=True
            )
        ]
        records = generate_records(self.backend, requests, self.decoding)
        frame = pd.DataFrame([asdict(r) for r in records])
        frame["flags"] = frame["flags"].map(json.dumps)
        return frame


class RayRunner:
    """Ray Data actor pool; on a laptop it starts a local Ray, on a cluster it joins it."""

    def __init__(
        self,
        llm: LLMConfig,
        workers: int = 2,
        address: str | None = None,
        cpus_per_worker: float | None = None,
        gpus_per_worker: float = 0.0,
        temp_dir: Path | None = None,
    ) -> None:
        self.llm = llm
        self.workers = max(1, workers)
        self.address = address
        # on a 2-CPU machine, 1-CPU actors deadlock Ray Data (its own tasks need CPU): use 0.5
        self.cpus_per_worker = cpus_per_worker if cpus_per_worker is not None else 0.5
        self.gpus_per_worker = (
            gpus_per_worker if llm.backend != "vllm" else max(gpus_per_worker, 1.0)
        )
        self.temp_dir = temp_dir
        self._started = False

    def _init(self) -> None:
        from lr_recsys.raycluster import ensure_ray

        self._started = ensure_ray(self.address, self.temp_dir) or self._started

    def run(
        self, requests: list[Request], decoding: Decoding, batch_size: int
    ) -> Iterator[list[Record]]:
        if not requests:
            return
        import ray
        from ray.data import ActorPoolStrategy

        self._init()
        rows = [
            {"key": r.key, "kind": r.kind, "prompt": r.prompt, "prefix": r.prefix} for r in requests
        ]
        # contiguous blocks keep neighbouring (prefix-sharing) prompts on the same actor
        blocks = max(self.workers, min(len(rows) // max(batch_size, 1), self.workers * 8))
        ds = ray.data.from_items(rows, override_num_blocks=max(1, blocks))
        out = ds.map_batches(
            _RayGenerator,
            fn_constructor_kwargs={
                "llm": self.llm.model_dump(mode="json"),
                "decoding": asdict(decoding),
            },
            batch_size=batch_size,
            batch_format="pandas",
            compute=ActorPoolStrategy(size=self.workers),
            num_cpus=self.cpus_per_worker,
            num_gpus=self.gpus_per_worker or None,
        )
        for frame in out.iter_batches(batch_size=None, batch_format="pandas"):
            yield [
                Record(r.key, r.model, r.kind, r.text, json.loads(r.flags), int(r.prompt_tokens),
                       int(r.completion_tokens), float(r.latency_s), float(r.created_at))
                for r in frame.itertuples(index=False)
            ]  # fmt: skip

    def close(self) -> None:
        if self._started:
            import ray

            ray.shutdown()
            self._started = False
