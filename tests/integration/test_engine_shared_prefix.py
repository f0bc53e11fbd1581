"""The engine's batched llama.cpp path (shared headers, negative prompts that copy their positive's
prefix, several sequences per step) writes exactly what the plain sequential path writes, with
the real Gemma 3 270M model and the default "attributes" prompts."""

from __future__ import annotations

import pytest

from lr_recsys.explain.backends.base import Backend, Completion, Decoding
from lr_recsys.explain.backends.llamacpp import LlamaCppBackend
from lr_recsys.explain.backends.llamacpp_batch import _plan_sharing
from lr_recsys.explain.cache import GenerationCache
from lr_recsys.explain.config import LLMConfig
from lr_recsys.explain.engine import ExplanationEngine, Pair
from lr_recsys.explain.normalize import RETRIED
from lr_recsys.explain.prompts import get_domain, get_variant, item_attributes
from lr_recsys.explain.runners import LocalRunner

# (item id, MovieLens-style title, genres)
CATALOGUE = [
    ("1", "Toy Story (1995)", "Animation|Children's|Comedy"),
    ("2", "GoldenEye (1995)", "Action|Adventure|Thriller"),
    ("3", "Usual Suspects, The (1995)", "Crime|Thriller"),
    ("4", "Sense and Sensibility (1995)", "Drama|Romance"),
    ("5", "Star Wars (1977)", "Action|Adventure|Romance|Sci-Fi|War"),
    ("6", "Fargo (1996)", "Crime|Drama|Thriller"),
    ("7", "Princess Bride, The (1987)", "Action|Adventure|Comedy|Romance"),
    ("8", "Alien (1979)", "Action|Horror|Sci-Fi|Thriller"),
    ("9", "Groundhog Day (1993)", "Comedy|Romance"),
    ("10", "Schindler's List (1993)", "Drama|War"),
    ("11", "Lion King, The (1994)", "Animation|Children's|Musical"),
    ("12", "Heat (1995)", "Action|Crime|Thriller"),
    ("13", "Casablanca (1942)", "Drama|Romance|War"),
    ("14", "Scream (1996)", "Horror|Thriller"),
]
PAIRS = [
    Pair("p1", "u1", ("1", "11", "9"), "7"),
    Pair("p2", "u1", ("1", "11", "9", "7"), "8"),
    Pair("p3", "u2", ("2", "12", "5", "8"), "3"),
    Pair("p4", "u3", ("4", "13", "10"), "6"),
    Pair("p5", "u4", ("5", "8", "2", "12", "3"), "14"),
    Pair("p6", "u5", ("9", "1", "7"), "13"),
    Pair("p7", "u6", ("6", "3", "12", "10"), "1"),
    Pair("p8", "u7", ("13", "4", "9", "11", "1"), "2"),
]
GREEDY = Decoding(max_tokens=32)


class Recording(Backend):
    """Passes calls through and keeps every greedy completion by prompt."""

    def __init__(self, inner: LlamaCppBackend) -> None:
        self.inner, self.model_id, self.greedy = inner, inner.model_id, {}

    def complete(self, prompts: list[str], decoding: Decoding) -> list[Completion]:
        out = self.inner.complete(prompts, decoding)
        if decoding.temperature == 0:
            self.greedy.update({p: c.text for p, c in zip(prompts, out, strict=True)})
        return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, dict]:
    """The same pairs explained through the sequential and the batched backend."""
    texts = {i: title for i, title, _ in CATALOGUE}
    attrs = {i: item_attributes(title, genres) for i, title, genres in CATALOGUE}
    out = {}
    # batched as configured by default: 8 sequences per lane, one single-threaded lane per thread
    for name, parallel, threads in (("sequential", 1, 1), ("batched", 8, 2)):
        backend = Recording(LlamaCppBackend(n_ctx=256, n_threads=threads, parallel=parallel))
        cache = GenerationCache(tmp_path_factory.mktemp(name) / "cache.sqlite")
        engine = ExplanationEngine(
            LocalRunner(LLMConfig(), backend),
            cache,
            backend.model_id,
            texts,
            get_domain("movie"),
            get_variant("attributes"),
            GREEDY,
            progress=False,
            item_attrs=attrs,
        )
        try:
            table = engine.explain(PAIRS)
            out[name] = {
                "table": table,
                "greedy": backend.greedy,
                "tokens": [backend.inner.tokenize(p) for p in backend.greedy],
                "stats": [b.stats for b in backend.inner.batchers],
            }
        finally:
            cache.close()
            backend.inner.close()
    return out


def test_batched_path_writes_the_sequential_paths_greedy_texts(runs):
    seq, batched = runs["sequential"]["greedy"], runs["batched"]["greedy"]
    assert len(seq) == 2 * len(PAIRS)  # a positive and a negative prompt per pair
    assert batched == seq


def test_explanation_tables_agree_except_sampled_retries(runs):
    a, b = runs["sequential"]["table"], runs["batched"]["table"]
    assert a[["pair_key", "flags"]].equals(b[["pair_key", "flags"]])
    kept = ~a["flags"].str.contains(RETRIED)  # a retry samples: the two paths draw differently
    assert kept.sum() >= len(PAIRS) // 2
    assert a[kept].equals(b[kept])


def test_negative_prompts_copied_their_positives_prefix(runs):
    tokens = runs["batched"]["tokens"]  # in the engine's order: positive, then its negative
    _, follows = _plan_sharing(tokens)
    negatives = range(1, len(tokens), 2)
    assert all(follows[j][0] == j - 1 and follows[j][1] > 40 for j in negatives)
    stats = runs["batched"]["stats"]
    assert len(stats) == 2 and all(s.prompts for s in stats)  # both lanes decoded
    assert sum(s.followers for s in stats) >= len(PAIRS)  # the decoders did copy prefixes
    evaluated = sum(s.evaluated_tokens for s in stats)
    assert evaluated < 0.8 * sum(s.prompt_tokens for s in stats)
