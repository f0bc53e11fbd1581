"""Item text embeddings from the stack's sentence encoder (all-MiniLM-L6-v2, 384-d).

What is known about an item at serving time without an LLM: its catalogue text. The distilled
explainer (``lr_recsys.distill``) and the content-control model read these vectors, aligned with a
``FeatureSpace``'s item index (row 0, the padding / unknown item, is all zeros). Vectors are cached
on disk by a hash of the texts, so a catalogue is encoded once (1,682 ml-100k titles: ~10 s on
2 cores).
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np

from lr_recsys.encoder.sentence import MINILM_DIM

log = logging.getLogger(__name__)

ITEM_TEXT_DIM = MINILM_DIM


def default_cache_dir() -> Path:
    """``$LR_RECSYS_CACHE_DIR`` or ``~/.cache/lr_recsys``."""
    return Path(os.environ.get("LR_RECSYS_CACHE_DIR", Path.home() / ".cache" / "lr_recsys"))


def encode_texts(texts: list[str], cache_dir: Path | None = None) -> np.ndarray:
    """MiniLM vectors of ``texts`` ((N, 384) float32, L2-normalised), cached by content hash."""
    digest = hashlib.sha256("\x1f".join(texts).encode("utf-8")).hexdigest()[:24]
    path = (cache_dir or default_cache_dir()) / "item_vectors" / f"minilm-{digest}.npy"
    if path.exists():
        vectors = np.load(path)
        if vectors.shape == (len(texts), ITEM_TEXT_DIM):
            return vectors
    from lr_recsys.encoder.sentence import MiniLMEncoder

    vectors = MiniLMEncoder().encode(texts) if texts else np.zeros((0, ITEM_TEXT_DIM), np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, vectors)
    tmp.replace(path)
    return vectors


def item_text_matrix(
    item_index: dict[str, int], item_texts: dict[str, str], cache_dir: Path | None = None
) -> np.ndarray:
    """``(len(item_index) + 1, 384)`` float32: row ``item_index[i]`` is item ``i``'s text vector,
    row 0 (padding / unknown) zeros.

    Raises:
        KeyError: an indexed item has no text.
    """
    ids = sorted(item_index, key=item_index.get)
    missing = [i for i in ids if i not in item_texts]
    if missing:
        raise KeyError(f"{len(missing)} indexed item(s) have no text, e.g. {missing[:5]}")
    out = np.zeros((len(ids) + 1, ITEM_TEXT_DIM), dtype=np.float32)
    if ids:
        vectors = encode_texts([item_texts[i] for i in ids], cache_dir)
        out[[item_index[i] for i in ids]] = vectors
    return out
