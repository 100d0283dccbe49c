"""CDAE (Wu et al. 2016, "Collaborative Denoising Auto-Encoders for Top-N Recommender Systems"):
a one-hidden-layer denoising autoencoder whose hidden layer adds a per-user embedding."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, PositiveInt
from torch import nn
from torch.nn import functional as F

from diffrec_core.config import _Frozen
from diffrec_core.models.base import Batch, Recommender
from diffrec_core.models.registry import register
from diffrec_core.models.vae import init_linear, multinomial_nll

_ACT = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": F.relu}


class CDAEParams(_Frozen):
    hidden: PositiveInt = Field(200, description="hidden layer size (also the user embedding size)")
    dropout: float = Field(0.5, ge=0.0, lt=1.0, description="input dropout q (the corruption) while training")
    activation: Literal["sigmoid", "tanh", "relu"] = "tanh"
    loss: Literal["bce", "mse", "multinomial"] = Field("bce", description="reconstruction loss against the clean x")


class CDAE(Recommender):
    """h = act(W drop(x) + V_u + b); logits = W' h + b'.  x: (B, n_items)."""

    needs_user_ids = True

    def __init__(self, n_users: int, n_items: int, hidden: int, dropout: float, activation: str, loss: str):
        super().__init__()
        self.encoder = nn.Linear(n_items, hidden)
        self.user_emb = nn.Embedding(n_users, hidden)
        self.decoder = nn.Linear(hidden, n_items)
        init_linear(self.encoder)
        init_linear(self.decoder)
        nn.init.normal_(self.user_emb.weight, 0.0, 0.01)
        self.drop = nn.Dropout(dropout)
        self.act = _ACT[activation]
        self.loss_type = loss

    def forward(self, users: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.encoder(self.drop(x)) + self.user_emb(users))
        return self.decoder(h)

    def loss(self, batch: Batch, generator: torch.Generator | None = None) -> torch.Tensor:
        logits = self(batch.users, batch.x)
        if self.loss_type == "multinomial":
            return multinomial_nll(logits, batch.x)
        if self.loss_type == "mse":
            return ((torch.sigmoid(logits) - batch.x) ** 2).sum(-1).mean()
        return F.binary_cross_entropy_with_logits(logits, batch.x, reduction="none").sum(-1).mean()

    def score(self, batch: Batch) -> torch.Tensor:
        return self(batch.users, batch.x)


@register("cdae", CDAEParams, "CDAE: denoising autoencoder with a user embedding (Wu et al. 2016)")
def build_cdae(params: CDAEParams, n_users: int, n_items: int) -> CDAE:
    return CDAE(n_users, n_items, params.hidden, params.dropout, params.activation, params.loss)
