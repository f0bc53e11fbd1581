"""llama.cpp backend with the real Gemma model: batched decoding, prefix sharing, retries."""

from __future__ import annotations

import pytest

from lr_recsys.explain.backends.base import Decoding
from lr_recsys.explain.backends.llamacpp import LlamaCppBackend
from lr_recsys.explain.backends.llamacpp_batch import _plan_sharing
from lr_recsys.explain.generate import Request, generate_records
from lr_recsys.explain.normalize import FAILED, MAX_TOKENS, OFF_FORMAT, RETRIED

PROMPTS = [
    "A list of fruits: apple, banana,",
    "A list of colours: red, green,",
    "Counting: 1, 2, 3, 4,",
    "Movies people like: Toy Story is",
    "Movies people like: Heat is",
]


@pytest.fixture(scope="module")
def batched():
    backend = LlamaCppBackend(n_threads=2, parallel=4, n_ctx=256)
    yield backend
    backend.close()


def test_plan_sharing_makes_followers_of_prompts_with_long_common_prefixes():
    base = list(range(100))
    leaders, follows = _plan_sharing([base + [1, 2], list(range(500, 540)), base + [3], base])
    assert leaders == [0, 1]
    assert follows == {2: (0, 100), 3: (0, 99)}  # a follower keeps at least one token of its own


def test_batched_decoding_answers_every_prompt_in_order(batched):
    dec = Decoding(max_tokens=12, stop=("\n",))
    out = batched.complete(PROMPTS, dec)  # 5 prompts: groups of 4 + 1
    assert len(out) == len(PROMPTS)
    assert all(c.completion_tokens >= 1 and c.prompt_tokens > 3 for c in out)
    assert out[2].text.lstrip().startswith("5")
    assert all("\n" not in c.text for c in out)
    # deterministic: greedy decoding of the same batch gives the same text
    assert [c.text for c in batched.complete(PROMPTS, dec)] == [c.text for c in out]


def test_batched_and_sequential_agree_on_an_unambiguous_prompt(batched):
    single = LlamaCppBackend(n_threads=2)
    try:
        dec = Decoding(max_tokens=6, stop=("\n", "."))
        a = batched.complete(["Counting: 1, 2, 3, 4,"], dec)[0].text
        b = single.complete(["Counting: 1, 2, 3, 4,"], dec)[0].text
    finally:
        single.close()
    assert a.lstrip().startswith("5") and b.lstrip().startswith("5")


def test_max_tokens_cut_is_reported(batched):
    out = batched.complete(
        ["Count: one two three four five six seven"], Decoding(max_tokens=3, stop=())
    )
    assert out[0].completion_tokens == 3 and out[0].finish_reason == "length"


def test_off_format_answer_is_retried_once_then_flagged_not_dropped(batched):
    prefix = "The consumer watched this movie because the consumer likes"
    req = Request("k", "positive", f"Why did the consumer watch it?\nAnswer: {prefix}", prefix)
    (record,) = generate_records(batched, [req], Decoding(max_tokens=1, stop=()))
    # one generated word is not an explanation: retried with another seed, still too short
    assert RETRIED in record.flags and FAILED in record.flags
    assert OFF_FORMAT in record.flags or MAX_TOKENS in record.flags
    assert record.text.startswith(prefix)


def test_context_overflow_is_a_clear_error():
    small = LlamaCppBackend(n_threads=1, parallel=2, n_ctx=32)
    try:
        with pytest.raises(ValueError, match="exceeds the context"):
            small.complete(["word " * 100], Decoding(max_tokens=4))
    finally:
        small.close()
