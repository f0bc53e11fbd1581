"""LR-Recsys (paper Sec. 3.5, Appendix A.2-A.3) and its ablations.

Six 8-d input tokens ``[E_pos, E_neg, E_user, E_item, E_seq, E_context]``:

* ``E_pos``/``E_neg``: AutoEncoder embeddings of the LLM's positive and negative explanation
  (Sec. 3.4.2);
* ``E_user``/``E_item``: embedding tables;
* ``E_seq``: self-attention over the previous 5 items' embeddings, then a GRU (Eq. 6-13);
* ``E_context``: embedding of the user's features.

One self-attention layer runs across the tokens (Eq. 26-28); its weights are returned for analysis
(Sec. 5.5); the attended tokens are flattened into an MLP [64, 8, 1] whose sigmoid is the
prediction (Eq. 14).

Variants (selected by registered name, same code):

* ``lr-recsys-noexp`` — Ablation 1: the two explanation tokens are free learnable parameters;
* ``lr-recsys-pos`` — positive explanation only (five tokens);
* ``lr-recsys-raw`` — Ablation 2: explanation vectors from a pretrained sentence encoder
  (all-MiniLM-L6-v2, 384-d) linearly projected to 8-d instead of the AutoEncoder;
* ``lr-recsys-ncf`` — Robustness Check 1: NCF-style MLP [32, 16, 8] over the concatenated tokens,
  no attention;
* ``lr-recsys-llm`` / ``lr-recsys-distilled`` — feature ablations of the distilled explainer
  (``lr_recsys.distill``): AutoEncoder explanation vectors from the LLM only (source ``ae-llm``)
  or from the distilled explainer only (``ae-distilled``);
* ``lr-recsys-content`` — content control: the twin plus the item text the distilled explainer
  reads, no LLM. The two explanation slots hold ``Linear(384 -> 8)`` of the candidate's MiniLM
  catalogue-text vector and ``Linear(384 -> 8)`` of the masked mean of the history items'
  vectors (``lr_recsys.encoder.items``). What LR-Recsys gains over it is what the LLM's
  explanations add beyond item text. The item vectors live in a non-trainable buffer
  (``set_item_vectors``) saved with the weights.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import nn

from lr_recsys.config import ModelConfig
from lr_recsys.models.base import (
    Batch,
    ExplanationSource,
    ModelInputs,
    RecModel,
    mlp,
    register,
)
from lr_recsys.models.layers import ContextEmbedding, HistoryEncoder, SelfAttention

Explanations = Literal["pair", "free", "pos", "content"]
Head = Literal["attention", "ncf"]


@register("lr-recsys", explanations="pair", head="attention", source="ae")
@register("lr-recsys-noexp", explanations="free", head="attention", source=None)
@register("lr-recsys-pos", explanations="pos", head="attention", source="ae")
@register("lr-recsys-raw", explanations="pair", head="attention", source="minilm")
@register("lr-recsys-ncf", explanations="pair", head="ncf", source="ae")
@register("lr-recsys-llm", explanations="pair", head="attention", source="ae-llm")
@register("lr-recsys-distilled", explanations="pair", head="attention", source="ae-distilled")
@register("lr-recsys-content", explanations="content", head="attention", source=None)
class LRRecsys(RecModel):
    """The LR-Recsys network; see the module docstring for the variants."""

    def __init__(
        self,
        inputs: ModelInputs,
        cfg: ModelConfig,
        explanations: Explanations = "pair",
        head: Head = "attention",
        source: ExplanationSource = "ae",
    ) -> None:
        super().__init__(inputs, cfg)
        d = cfg.embed_dim
        self.explanations = explanations
        self.head = head
        self.explanation_source = source
        self.uses_item_vectors = explanations == "content"
        self.user_emb = nn.Embedding(inputs.n_users, d)
        self.item_emb = nn.Embedding(inputs.n_items, d, padding_idx=0)
        self.history = HistoryEncoder(d)
        self.context = ContextEmbedding(inputs.context_sizes, d)
        if explanations == "free":
            self.free_tokens = nn.Parameter(torch.randn(2, d) * 0.1)  # (2, D)
            self.project = nn.Identity()
        elif explanations == "content":
            if inputs.item_text_dim <= 0:
                raise ValueError(
                    f"explanations='content' reads item text vectors, but "
                    f"inputs.item_text_dim={inputs.item_text_dim}; expected their width (384)"
                )
            # (n_items, T) catalogue-text vectors, row 0 (padding / unknown) zeros; not trained
            self.register_buffer("item_text", torch.zeros(inputs.n_items, inputs.item_text_dim))
            self.project = nn.Linear(inputs.item_text_dim, d)  # candidate text -> token 1
            self.project_hist = nn.Linear(inputs.item_text_dim, d)  # history mean -> token 2
        elif inputs.explanation_dim != d:
            self.project = nn.Linear(inputs.explanation_dim, d)
        else:
            self.project = nn.Identity()
        self.n_tokens = 5 if explanations == "pos" else 6
        self.drop = nn.Dropout(cfg.dropout)  # on the flattened tokens before the MLP
        if head == "attention":
            self.attn = SelfAttention(d)
            self.mlp = mlp([self.n_tokens * d, *cfg.mlp_layers], dropout=cfg.dropout)
        else:
            self.attn = None
            self.mlp = mlp([self.n_tokens * d, *cfg.ncf_mlp_layers, 1], dropout=cfg.dropout)

    def set_item_vectors(self, matrix: np.ndarray | torch.Tensor) -> None:
        """Copy the item text vectors, ``(n_items, item_text_dim)`` aligned with the feature
        space's item index (``lr_recsys.encoder.items.item_text_matrix``), into the buffer.

        Raises:
            TypeError: the model reads no item vectors.
            ValueError: ``matrix`` has another shape, or non-finite values.
        """
        if not self.uses_item_vectors:
            raise TypeError(
                f"explanations={self.explanations!r} reads no item vectors; only 'content' does"
            )
        if isinstance(matrix, torch.Tensor):
            m = matrix.detach().to(torch.float32)
        else:
            m = torch.as_tensor(np.asarray(matrix, dtype=np.float32))
        expected = tuple(self.item_text.shape)
        if tuple(m.shape) != expected:
            raise ValueError(
                f"item vectors of shape {tuple(m.shape)}; expected {expected} "
                "(n_items, item_text_dim) as the model was built"
            )
        if not torch.isfinite(m).all():
            raise ValueError("item vectors contain NaN or infinite values")
        with torch.no_grad():
            self.item_text.copy_(m)

    def _content_tokens(self, batch: Batch) -> list[torch.Tensor]:
        """Candidate text token and history-mean text token, (B, D) each."""
        hist = batch["hist"]  # (B, L)
        mask = (hist > 0).unsqueeze(-1).to(self.item_text.dtype)  # (B, L, 1)
        mean = (self.item_text[hist] * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # (B, T)
        return [self.project(self.item_text[batch["item"]]), self.project_hist(mean)]

    def tokens(self, batch: Batch) -> torch.Tensor:
        """The input tokens, (B, T, D) with T = 6 (5 for positive-only)."""
        hist = batch["hist"]  # (B, L)
        b = hist.shape[0]
        seq = self.history(self.item_emb(hist), hist > 0)  # (B, D)
        rest = [
            self.user_emb(batch["user"]),
            self.item_emb(batch["item"]),
            seq,
            self.context(batch["ctx"]),
        ]
        if self.explanations == "free":
            expl = list(self.free_tokens[:, None, :].expand(2, b, -1).unbind(0))
        elif self.explanations == "content":
            expl = self._content_tokens(batch)
        elif self.explanations == "pos":
            expl = [self.project(batch["pos"])]
        else:
            expl = [self.project(batch["pos"]), self.project(batch["neg"])]
        return torch.stack(expl + rest, dim=1)  # (B, T, D)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        x = self.tokens(batch)  # (B, T, D)
        out: dict[str, torch.Tensor] = {}
        if self.attn is not None:
            x, weights = self.attn(x)  # (B, T, D), (B, T, T)
            out["attention"] = weights
        out["logit"] = self.mlp(self.drop(x.flatten(1))).squeeze(-1)  # (B,)
        return out


def token_importance(attention: torch.Tensor) -> torch.Tensor:
    """Attention each token receives, averaged over queries: (B, T, T) -> (B, T); rows sum to 1."""
    return attention.mean(dim=1)
