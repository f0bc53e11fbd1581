"""Layers shared by LR-Recsys and the baselines."""

from __future__ import annotations

import math

import torch
from torch import nn

NEG_INF = -1e9  # finite, so a fully masked row gives uniform weights instead of NaN


class SelfAttention(nn.Module):
    """Single-head scaled dot-product self-attention (Vaswani et al. 2017; paper Eq. 7-9, 26-28).

    ``softmax(Q K^T / sqrt(d)) V`` with learned Q, K, V projections; returns the output and the
    attention weights.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.scale = 1.0 / math.sqrt(dim)

    def forward(
        self, x: torch.Tensor, key_mask: torch.Tensor | None = None, causal: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # x: (B, T, D); key_mask: (B, T) True where the key is real
        scores = torch.bmm(self.q(x), self.k(x).transpose(1, 2)) * self.scale  # (B, T, T)
        if key_mask is not None:
            scores = scores.masked_fill(~key_mask[:, None, :], NEG_INF)
        if causal:
            t = x.shape[1]
            future = torch.triu(torch.ones(t, t, dtype=torch.bool, device=x.device), diagonal=1)
            scores = scores.masked_fill(future, NEG_INF)
        weights = torch.softmax(scores, dim=-1)  # (B, T, T)
        return torch.bmm(weights, self.v(x)), weights


class HistoryEncoder(nn.Module):
    """History embedding of Sec. 3.5 (Eq. 6-13): self-attention over the last items, then a GRU;
    the last hidden state is the sequence embedding. Histories are left-padded, so the GRU ends on
    the most recent real item."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.attn = SelfAttention(dim)
        self.gru = nn.GRU(dim, dim, batch_first=True)

    def forward(self, hist_emb: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # hist_emb: (B, L, D); mask: (B, L)
        attended, _ = self.attn(hist_emb, key_mask=mask)
        attended = attended * mask[..., None]  # padded positions stay zero
        _, h = self.gru(attended)  # h: (1, B, D)
        return h[0]  # (B, D)


class ContextEmbedding(nn.Module):
    """Context embedding from categorical user features: the mean of one embedding per field."""

    def __init__(self, sizes: tuple[int, ...], dim: int) -> None:
        super().__init__()
        offsets = torch.tensor([0, *list(sizes)[:-1]]).cumsum(0)
        self.register_buffer("offsets", offsets, persistent=False)
        self.emb = nn.Embedding(int(sum(sizes)), dim)

    def forward(self, ctx: torch.Tensor) -> torch.Tensor:
        # ctx: (B, F) per-field indices -> (B, D)
        return self.emb(ctx + self.offsets).mean(dim=1)
