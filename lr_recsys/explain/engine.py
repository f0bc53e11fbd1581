"""The contrastive-explanation engine (paper Sec. 3.4.1, 3.6).

For every (consumer, history, candidate) pair it writes a positive and a negative explanation,
optionally after a chain-of-thought profile of every item (cached per item). Work is
deduplicated and resolved against the persistent cache first; only missing prompts are
generated, ordered so that neighbours share prefixes (same history, then candidate, then
positive before negative), and every finished batch is written to the cache at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd
from tqdm.auto import tqdm

from lr_recsys import schema
from lr_recsys.explain.backends import Decoding, LLMConfig
from lr_recsys.explain.cache import GenerationCache, Record, cache_key
from lr_recsys.explain.generate import Request
from lr_recsys.explain.normalize import FAILED, RETRIED
from lr_recsys.explain.prompts import (
    Domain,
    ItemAttributes,
    Variant,
    answer_prefix,
    attribute_prompt,
    attribute_seed,
    item_attributes,
    pair_prompt,
    profile_prefix,
    profile_prompt,
)

log = logging.getLogger(__name__)

FLAGS = "flags"


class Runner(Protocol):
    def run(
        self, requests: list[Request], decoding: Decoding, batch_size: int
    ) -> Iterable[list[Record]]: ...

    def close(self) -> None: ...


def model_id_for(llm: LLMConfig) -> str:
    """The model identity used in cache keys, known without loading the model."""
    if llm.backend == "llamacpp":
        from lr_recsys.explain.backends.llamacpp import GEMMA_MODEL_ID

        return llm.model_path.name if llm.model_path else GEMMA_MODEL_ID
    return f"{llm.backend if llm.backend == 'vllm' else 'openai'}:{llm.model}"


@dataclass(frozen=True)
class Pair:
    """One (consumer, history, candidate) pair; history holds real item ids, oldest first."""

    pair_key: str
    user_id: str
    history: tuple[str, ...]
    item_id: str


def pairs_from_examples(examples: pd.DataFrame) -> list[Pair]:
    """Pairs of prepared examples (padding removed from histories)."""
    return [
        Pair(k, u, tuple(h for h in hist if h != schema.PAD_ITEM), i)
        for k, u, hist, i in zip(
            examples[schema.PAIR_KEY],
            examples[schema.USER_ID],
            examples[schema.HISTORY],
            examples[schema.ITEM_ID],
            strict=True,
        )
    ]


@dataclass
class ExplainStats:
    """What a run did."""

    pairs: int = 0
    requests: int = 0
    cache_hits: int = 0
    generated: int = 0
    flagged: int = 0  # retried or failed answers among the pairs' outputs
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    by_stage: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def pairs_per_s(self) -> float:
        return self.pairs / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, float]:
        s = self.seconds or 1e-9
        return {
            "pairs": self.pairs,
            "requests": self.requests,
            "cache_hits": self.cache_hits,
            "generated": self.generated,
            "flagged": self.flagged,
            "failed": self.failed,
            "seconds": round(self.seconds, 3),
            "pairs_per_s": round(self.pairs / s, 3),
            "prompt_tokens_per_s": round(self.prompt_tokens / s, 1),
            "generated_tokens_per_s": round(self.completion_tokens / s, 1),
        }


class ExplanationEngine:
    """Resolve profiles and explanations through the cache and a runner."""

    def __init__(
        self,
        runner: Runner,
        cache: GenerationCache,
        model_id: str,
        item_texts: dict[str, str],
        domain: Domain,
        variant: Variant,
        decoding: Decoding,
        batch_size: int = 8,
        progress: bool = True,
        item_attrs: dict[str, ItemAttributes] | None = None,
    ) -> None:
        self.runner = runner
        self.cache = cache
        self.model_id = model_id
        self.item_texts = item_texts
        self.domain = domain
        self.variant = variant
        self.decoding = decoding
        self.batch_size = batch_size
        self.progress = progress
        self.item_attrs = item_attrs or {}
        self.stats = ExplainStats()

    # -- plumbing -------------------------------------------------------------------------------
    def _request(self, kind: str, prompt: str, prefix: str, order: tuple) -> Request:
        return Request(
            cache_key(self.model_id, self.decoding.key(), prompt), kind, prompt, prefix, order
        )

    def _attrs(self, item_id: str) -> ItemAttributes:
        """Title + categories for the attribute-aware prompt (the item text as title when the
        catalogue gave none)."""
        if item_id not in self.item_attrs:
            self.item_attrs[item_id] = item_attributes(self._text(item_id), "")
        return self.item_attrs[item_id]

    def _text(self, item_id: str) -> str:
        if item_id not in self.item_texts:
            raise KeyError(f"item {item_id!r} has no text in the catalogue")
        return self.item_texts[item_id]

    def _resolve(
        self, requests: Sequence[Request], stage: str, per_pair: float = 1.0
    ) -> dict[str, Record]:
        unique: dict[str, Request] = {}
        for r in requests:
            unique.setdefault(r.key, r)
        keys = list(unique)
        have = self.cache.get_many(keys)
        missing = sorted((unique[k] for k in keys if k not in have), key=lambda r: r.order)
        st = self.stats.by_stage.setdefault(stage, {"requests": 0, "cache_hits": 0, "generated": 0})
        st["requests"] += len(keys)
        st["cache_hits"] += len(keys) - len(missing)
        self.stats.requests += len(keys)
        self.stats.cache_hits += len(keys) - len(missing)
        if missing:
            start = time.perf_counter()
            done = ptok = ctok = 0
            bar = tqdm(total=len(missing), desc=stage, unit="req", disable=not self.progress)
            bar.set_postfix(hits=len(keys) - len(missing))
            for records in self.runner.run(missing, self.decoding, self.batch_size):
                self.cache.put_many(records)  # durable before we go on
                done += len(records)
                ptok += sum(r.prompt_tokens for r in records)
                ctok += sum(r.completion_tokens for r in records)
                el = time.perf_counter() - start
                bar.update(len(records))
                bar.set_postfix(
                    hits=len(keys) - len(missing),
                    pairs_s=f"{done / per_pair / el:.2f}",
                    tok_s=f"{(ptok + ctok) / el:.0f}",
                )
            bar.close()
            self.stats.generated += done
            self.stats.prompt_tokens += ptok
            self.stats.completion_tokens += ctok
            st["generated"] += done
        out = self.cache.get_many(keys)
        lost = [k for k in keys if k not in out]
        if lost:
            raise RuntimeError(
                f"{stage}: {len(lost)} request(s) produced no record (runner failure)"
            )
        return out

    # -- stages ---------------------------------------------------------------------------------
    def profiles(self, item_ids: Iterable[str]) -> dict[str, str]:
        """CoT profile per item, cached per item (the prompt depends only on the item text)."""
        ids = sorted(set(item_ids))
        prefix = profile_prefix(self.domain)
        reqs = {
            i: self._request("profile", profile_prompt(self._text(i), self.domain), prefix, (i,))
            for i in ids
        }
        records = self._resolve(list(reqs.values()), "profiles")
        return {i: records[r.key].text for i, r in reqs.items()}

    def _kinds(self) -> tuple[str, ...]:
        if self.variant.style == "summary":
            return ("summary",)
        if self.variant.style == "rating":
            return ("rating",)
        return ("positive", "negative") if self.variant.negative else ("positive",)

    def explain(self, pairs: Sequence[Pair]) -> pd.DataFrame:
        """Explanation table for ``pairs``: ``pair_key, positive, negative, flags``."""
        start = time.perf_counter()
        profiles: dict[str, str] = {}
        if self.variant.profiles:
            items = {i for p in pairs for i in (*p.history, p.item_id)}
            profiles = self.profiles(items)

        def described(i: str) -> tuple[str, str | None]:
            return self._text(i), profiles.get(i)

        kinds = self._kinds()
        per_pair: list[dict[str, Request]] = []
        for p in pairs:
            hist = [described(i) for i in p.history] if self.variant.style != "attributes" else []
            cand = described(p.item_id) if self.variant.style != "attributes" else ("", None)
            reqs = {}
            for rank, kind in enumerate(kinds):
                if self.variant.style == "attributes":
                    h_at, c_at = [self._attrs(i) for i in p.history], self._attrs(p.item_id)
                    prompt = attribute_prompt(kind, h_at, c_at, self.domain)  # type: ignore[arg-type]
                    prefix = attribute_seed(kind, h_at, c_at, self.domain)  # type: ignore[arg-type]
                else:
                    prompt = pair_prompt(kind, hist, cand, self.domain, self.variant)  # type: ignore[arg-type]
                    prefix = answer_prefix(kind, self.domain, self.variant)  # type: ignore[arg-type]
                reqs[kind] = self._request(kind, prompt, prefix, (p.history, p.item_id, rank))
            per_pair.append(reqs)
        records = self._resolve(
            [r for reqs in per_pair for r in reqs.values()], "explanations", len(kinds)
        )
        rows = []
        for p, reqs in zip(pairs, per_pair, strict=True):
            recs = {k: records[r.key] for k, r in reqs.items()}
            flags = sorted({f"{k}:{f}" for k, rec in recs.items() for f in rec.flags})
            first = recs[kinds[0]]
            rows.append(
                {
                    schema.PAIR_KEY: p.pair_key,
                    schema.POSITIVE: first.text,
                    schema.NEGATIVE: recs["negative"].text if "negative" in recs else "",
                    FLAGS: ",".join(flags),
                }
            )
        table = pd.DataFrame(
            rows, columns=[schema.PAIR_KEY, schema.POSITIVE, schema.NEGATIVE, FLAGS]
        )
        table = table.drop_duplicates(schema.PAIR_KEY).reset_index(drop=True)
        self.stats.pairs += len(pairs)
        self.stats.flagged += int(table[FLAGS].str.contains(RETRIED).sum())
        self.stats.failed += int(table[FLAGS].str.contains(FAILED).sum())
        self.stats.seconds += time.perf_counter() - start
        return table
