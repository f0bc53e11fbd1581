"""Neural Collaborative Filtering, NeuMF (He, Liao, Zhang, Nie, Hu & Chua, "Neural Collaborative
Filtering", WWW 2017): a GMF branch (element-wise product of user and item factors) and an MLP
branch (tower [32, 16, 8] over concatenated user and item embeddings), fused by a linear layer."""

from __future__ import annotations

import torch
from torch import nn

from lr_recsys.config import ModelConfig
from lr_recsys.models.base import Batch, ModelInputs, RecModel, mlp, register


@register("ncf")
class NCF(RecModel):
    """NeuMF with 8-d factors."""

    def __init__(self, inputs: ModelInputs, cfg: ModelConfig) -> None:
        super().__init__(inputs, cfg)
        d = cfg.embed_dim
        self.gmf_user = nn.Embedding(inputs.n_users, d)
        self.gmf_item = nn.Embedding(inputs.n_items, d)
        self.mlp_user = nn.Embedding(inputs.n_users, d)
        self.mlp_item = nn.Embedding(inputs.n_items, d)
        self.tower = mlp([2 * d, *cfg.ncf_mlp_layers], last_act=True, dropout=cfg.dropout)
        self.drop = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(d + cfg.ncf_mlp_layers[-1], 1)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        u, i = batch["user"], batch["item"]
        gmf = self.drop(self.gmf_user(u) * self.gmf_item(i))  # (B, D)
        tower = self.tower(torch.cat([self.mlp_user(u), self.mlp_item(i)], dim=-1))  # (B, 8)
        return {"logit": self.out(torch.cat([gmf, tower], dim=-1)).squeeze(-1)}
