"""Normalisation of LLM answers: one sentence, the required prefix, at most 50 words.

An answer that is empty or off-format is flagged; the engine retries it once with another seed
and then stores it with its flags (never silently dropped).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_WORDS = 50
MIN_WORDS = 2  # a continuation shorter than this is not an explanation
_SENTENCE_END = re.compile(r"(?<=[.!?])(\s|$)")
_RATING = re.compile(r"\b([1-5](?:\.\d+)?)\b")

EMPTY = "empty"
OFF_FORMAT = "off_format"
TRUNCATED = "truncated"
MAX_TOKENS = "max_tokens"  # the backend stopped at max_tokens, not at the end of the sentence
RETRIED = "retried"
FAILED = "failed"


@dataclass
class Normalized:
    """A cleaned answer, the continuation's word count and what was wrong with it."""

    text: str
    flags: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return EMPTY not in self.flags and OFF_FORMAT not in self.flags


def normalize(
    continuation: str, prefix: str, max_words: int = MAX_WORDS, min_words: int = MIN_WORDS
) -> Normalized:
    """Turn a raw completion (the text generated after ``prefix``) into one clean sentence.

    Args:
        continuation: What the model generated after the seeded prefix.
        prefix: The required beginning of the answer.
        max_words: Word cap of the whole sentence (prefix included).
        min_words: Fewest words the continuation needs (1 after an attribute seed).
    """
    flags: list[str] = []
    text = continuation.replace("\r", "\n").split("\n", 1)[0]
    text = re.sub(r"</?\s*item\s*>", " ", text, flags=re.IGNORECASE)
    text = " ".join(text.split()).strip(" \"'`*")
    # a model sometimes restarts the sentence with the prefix itself
    tail = prefix.split(" ")[-1]
    while text.lower().startswith(prefix.lower()):
        text = text[len(prefix) :].strip()
    if text.lower().startswith(tail.lower() + " " + tail.lower()):
        text = text[len(tail) :].strip()
    end = _SENTENCE_END.search(text)
    if end:
        text = text[: end.start()].strip()
    text = text.rstrip(" ,;:-")
    words = text.split()
    if not words or not re.search(r"[A-Za-z]", text):
        return Normalized(prefix + ".", [EMPTY, *flags])
    if len(words) < min_words:
        flags.append(OFF_FORMAT)
    budget = max_words - len(prefix.split())
    if len(words) > budget:
        words = words[:budget]
        flags.append(TRUNCATED)
    sentence = f"{prefix} {' '.join(words)}".rstrip(".!?") + "."
    return Normalized(sentence, flags)


def parse_rating(continuation: str, low: float = 1.0, high: float = 5.0) -> float | None:
    """First number in ``[low, high]`` in a direct-rating answer, or None."""
    for match in _RATING.finditer(continuation.split("\n", 1)[0] or continuation):
        value = float(match.group(1))
        if low <= value <= high:
            return value
    return None
