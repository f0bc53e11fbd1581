"""DIN-style baseline (Zhou et al., "Deep Interest Network for Click-Through Rate Prediction",
KDD 2018): a candidate-aware activation unit scores each history item from
``[h, c, h - c, h * c]``; the weighted (not softmax-normalised) sum is the user interest, which is
concatenated with the user, candidate and context embeddings and fed to an MLP with PReLU."""

from __future__ import annotations

import torch
from torch import nn

from lr_recsys.config import ModelConfig
from lr_recsys.models.base import Batch, ModelInputs, RecModel, mlp, register
from lr_recsys.models.layers import ContextEmbedding


@register("din")
class DIN(RecModel):
    """Candidate-aware attention over the history."""

    def __init__(self, inputs: ModelInputs, cfg: ModelConfig) -> None:
        super().__init__(inputs, cfg)
        d = cfg.embed_dim
        self.user_emb = nn.Embedding(inputs.n_users, d)
        self.item_emb = nn.Embedding(inputs.n_items, d, padding_idx=0)
        self.context = ContextEmbedding(inputs.context_sizes, d)
        self.activation_unit = mlp([4 * d, 16, 1], act=nn.PReLU)
        self.mlp = mlp([4 * d, *cfg.mlp_layers], act=nn.PReLU, dropout=cfg.dropout)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        hist = batch["hist"]  # (B, L)
        mask = (hist > 0).float()
        h = self.item_emb(hist)  # (B, L, D)
        c = self.item_emb(batch["item"])[:, None, :].expand_as(h)  # (B, L, D)
        w = (
            self.activation_unit(torch.cat([h, c, h - c, h * c], dim=-1)).squeeze(-1) * mask
        )  # (B, L)
        interest = (w[..., None] * h).sum(1)  # (B, D)
        x = torch.cat(
            [self.user_emb(batch["user"]), interest, c[:, 0], self.context(batch["ctx"])], dim=-1
        )
        return {"logit": self.mlp(self.drop(x)).squeeze(-1), "history_weights": w}
