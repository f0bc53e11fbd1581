"""Generation of one batch of requests: complete, normalise, retry off-format answers once.

Shared by the in-process runner and the Ray actors, so both paths produce identical records.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from lr_recsys.explain.backends.base import Backend, Decoding
from lr_recsys.explain.cache import Record
from lr_recsys.explain.normalize import (
    FAILED,
    MAX_TOKENS,
    RETRIED,
    Normalized,
    normalize,
    parse_rating,
)
from lr_recsys.explain.prompts import min_answer_words


@dataclass(frozen=True)
class Request:
    """One prompt to complete; ``key`` is its cache address."""

    key: str
    kind: str  # profile | positive | negative | summary | rating
    prompt: str
    prefix: str  # the answer's required beginning (already at the end of the prompt)
    order: tuple = ()  # sort key that puts prompts with shared prefixes next to each other


def _normalise(kind: str, text: str, prefix: str) -> Normalized:
    if kind == "rating":
        value = parse_rating(text)
        return Normalized(
            "" if value is None else f"{value:g}", [] if value is not None else ["empty"]
        )
    return normalize(text, prefix, min_words=min_answer_words(prefix))


def generate_records(backend: Backend, requests: list[Request], decoding: Decoding) -> list[Record]:
    """Complete ``requests`` in order; an empty/off-format answer is retried once with
    ``decoding.retry()`` and, if still bad, stored flagged ``failed``."""
    if not requests:
        return []
    completions = backend.complete([r.prompt for r in requests], decoding)
    results = [
        _normalise(r.kind, c.text, r.prefix) for r, c in zip(requests, completions, strict=True)
    ]
    for n, c in zip(results, completions, strict=True):
        if c.finish_reason == "length":
            n.flags.append(MAX_TOKENS)
    bad = [i for i, n in enumerate(results) if not n.ok]
    if bad:
        retried = backend.complete([requests[i].prompt for i in bad], decoding.retry())
        for i, comp in zip(bad, retried, strict=True):
            again = _normalise(requests[i].kind, comp.text, requests[i].prefix)
            first = results[i]
            results[i] = again if again.ok else first
            results[i].flags = [*results[i].flags, RETRIED] + ([] if again.ok else [FAILED])
            c = completions[i]
            c.prompt_tokens += comp.prompt_tokens
            c.completion_tokens += comp.completion_tokens
            c.latency_s += comp.latency_s
    now = time.time()
    return [
        Record(
            r.key,
            backend.model_id,
            r.kind,
            n.text,
            n.flags,
            c.prompt_tokens,
            c.completion_tokens,
            c.latency_s,
            now,
        )
        for r, n, c in zip(requests, results, completions, strict=True)
    ]
