"""SASRec-style baseline (Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018):
item + learned positional embeddings, causal self-attention blocks (attention, residual,
LayerNorm, point-wise feed-forward) over the history; the representation at the last position is
scored against the candidate item's embedding (plus user/item biases for rating prediction)."""

from __future__ import annotations

import torch
from torch import nn

from lr_recsys.config import ModelConfig
from lr_recsys.models.base import Batch, ModelInputs, RecModel, register
from lr_recsys.models.layers import SelfAttention


class _Block(nn.Module):
    def __init__(self, d: int, dropout: float) -> None:
        super().__init__()
        self.attn = SelfAttention(d)
        self.norm1 = nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))
        self.norm2 = nn.LayerNorm(d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        a, _ = self.attn(self.norm1(x), key_mask=mask, causal=True)
        x = x + self.drop(a)
        x = x + self.drop(self.ffn(self.norm2(x)))
        return x * mask[..., None]


@register("sasrec")
class SASRec(RecModel):
    """Causal self-attention over the last items, scored against the candidate."""

    def __init__(self, inputs: ModelInputs, cfg: ModelConfig) -> None:
        super().__init__(inputs, cfg)
        d = cfg.embed_dim
        self.item_emb = nn.Embedding(inputs.n_items, d, padding_idx=0)
        self.pos_emb = nn.Embedding(cfg.history_len, d)
        self.blocks = nn.ModuleList(_Block(d, cfg.dropout) for _ in range(cfg.num_attention_blocks))
        self.norm = nn.LayerNorm(d)
        self.drop = nn.Dropout(cfg.dropout)  # on the input embeddings, as in SASRec
        self.user_bias = nn.Embedding(inputs.n_users, 1)
        self.item_bias = nn.Embedding(inputs.n_items, 1)
        self.mu = nn.Parameter(torch.zeros(1))
        nn.init.zeros_(self.user_bias.weight)
        nn.init.zeros_(self.item_bias.weight)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        hist = batch["hist"]  # (B, L)
        mask = hist > 0
        positions = torch.arange(hist.shape[1], device=hist.device)
        x = self.drop(self.item_emb(hist) + self.pos_emb(positions)) * mask[..., None]  # (B, L, D)
        for block in self.blocks:
            x = block(x, mask)
        h = self.norm(x[:, -1])  # (B, D): the most recent position (left padding)
        h = h * mask[:, -1:]  # empty history -> no sequential signal
        cand = self.item_emb(batch["item"])  # (B, D)
        logit = (h * cand).sum(-1) + self.item_bias(batch["item"]).squeeze(-1)
        return {"logit": logit + self.user_bias(batch["user"]).squeeze(-1) + self.mu}
