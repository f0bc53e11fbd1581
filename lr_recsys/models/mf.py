"""Matrix factorisation with biases (Koren, Bell & Volinsky, "Matrix Factorization Techniques for
Recommender Systems", IEEE Computer 2009): ``mu + b_u + b_i + p_u . q_i``."""

from __future__ import annotations

import torch
from torch import nn

from lr_recsys.config import ModelConfig
from lr_recsys.models.base import Batch, ModelInputs, RecModel, register


@register("mf")
class MF(RecModel):
    """Biased MF over 8-d factors."""

    def __init__(self, inputs: ModelInputs, cfg: ModelConfig) -> None:
        super().__init__(inputs, cfg)
        d = cfg.embed_dim
        self.p = nn.Embedding(inputs.n_users, d)
        self.q = nn.Embedding(inputs.n_items, d)
        self.bu = nn.Embedding(inputs.n_users, 1)
        self.bi = nn.Embedding(inputs.n_items, 1)
        self.mu = nn.Parameter(torch.zeros(1))
        self.drop = nn.Dropout(cfg.dropout)  # on the factor interaction
        for emb in (self.p, self.q):
            nn.init.normal_(emb.weight, std=0.1)
        nn.init.zeros_(self.bu.weight)
        nn.init.zeros_(self.bi.weight)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        u, i = batch["user"], batch["item"]  # (B,)
        dot = self.drop(self.p(u) * self.q(i)).sum(-1)  # (B,)
        return {"logit": self.mu + self.bu(u).squeeze(-1) + self.bi(i).squeeze(-1) + dot}
