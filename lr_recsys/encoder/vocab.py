"""Word-level vocabulary of the text AutoEncoder (Appendix A.1), built from training text only."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PAD, UNK = "<pad>", "<unk>"
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens (apostrophes kept inside words, punctuation dropped)."""
    return _WORD.findall(str(text).lower())


@dataclass
class Vocabulary:
    """Index 0 is padding, 1 is unknown; the rest are words by descending training frequency."""

    words: list[str]

    def __post_init__(self) -> None:
        self.index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 1) -> Vocabulary:
        """Count words in ``texts`` (the training split) and keep those seen ``min_count`` times."""
        counts = Counter(w for t in texts for w in tokenize(t))
        kept = sorted(
            (w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w)
        )
        return cls([PAD, UNK, *kept])

    def encode(self, texts: Iterable[str], maxlen: int) -> np.ndarray:
        """Texts -> (N, maxlen) int64 word indices, truncated and right-padded with 0."""
        rows = []
        for t in texts:
            ids = [self.index.get(w, 1) for w in tokenize(t)[:maxlen]]
            rows.append(ids + [0] * (maxlen - len(ids)))
        return np.asarray(rows, dtype=np.int64).reshape(-1, maxlen)

    def decode(self, ids: Iterable[int]) -> str:
        """Indices -> text, stopping at padding."""
        words = []
        for i in ids:
            if int(i) == 0:
                break
            words.append(self.words[int(i)])
        return " ".join(words)

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps({"words": self.words}, ensure_ascii=False))

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        data = json.loads(Path(path).read_text())
        words = data.get("words") if isinstance(data, dict) else None
        if not isinstance(words, list) or words[:2] != [PAD, UNK]:
            raise ValueError(
                f"{path}: not a vocabulary file (expected {{'words': ['{PAD}', '{UNK}', ...]}})"
            )
        return cls(words)
