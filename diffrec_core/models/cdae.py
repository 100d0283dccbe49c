"""CDAE (Wu et al. 2016, "Collaborative Denoising Auto-Encoders for Top-N Recommender Systems"):
a one-hidden-layer denoising autoencoder whose hidden layer adds a per-user embedding."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, PositiveInt, model_validator
from torch import nn
from torch.nn import functional as F

from diffrec_core.config import _Frozen
from diffrec_core.models.base import Batch, Recommender, rand
from diffrec_core.models.registry import register
from diffrec_core.models.vae import init_linear, multinomial_nll

_ACT = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": F.relu}


class CDAEParams(_Frozen):
    hidden: PositiveInt = Field(200, description="hidden layer size (also the user embedding size)")
    dropout: float = Field(0.5, ge=0.0, lt=1.0, description="input dropout q (the corruption) while training")
    activation: Literal["sigmoid", "tanh", "relu"] = "tanh"
    loss: Literal["bce", "mse", "multinomial"] = Field("bce", description="reconstruction loss against the clean x")
    negative_ratio: float | None = Field(
        None, gt=0.0, description="bce/mse only: the loss covers a user's positives and about this many sampled negatives per positive "
        "(Wu et al.'s negative sampling, each unobserved item kept with probability ratio * n_pos / n_neg); None = every item")

    @model_validator(mode="after")
    def _sampling_needs_a_per_item_loss(self) -> "CDAEParams":
        if self.negative_ratio is not None and self.loss == "multinomial":
            raise ValueError("negative_ratio applies to the bce and mse losses, not multinomial")
        return self


class CDAE(Recommender):
    """h = act(W drop(x) + V_u + b); logits = W' h + b'.  x: (B, n_items)."""

    needs_user_ids = True

    def __init__(self, n_users: int, n_items: int, hidden: int, dropout: float, activation: str, loss: str,
                 negative_ratio: float | None = None):
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
        self.negative_ratio = negative_ratio

    def forward(self, users: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.encoder(self.drop(x)) + self.user_emb(users))
        return self.decoder(h)

    def loss(self, batch: Batch, generator: torch.Generator | None = None) -> torch.Tensor:
        logits = self(batch.users, batch.x)
        if self.loss_type == "multinomial":
            return multinomial_nll(logits, batch.x)
        x = batch.x
        if self.loss_type == "mse":
            per_item = (torch.sigmoid(logits) - x) ** 2
        else:
            per_item = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        if self.negative_ratio is not None:
            per_item = per_item * self.sample_mask(x, generator)
        return per_item.sum(-1).mean()

    def sample_mask(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """1 on a user's positives and on the sampled negatives, 0 elsewhere; x: (B, n_items) binary."""
        positive = x > 0
        n_pos = positive.sum(dim=1, keepdim=True).float()
        keep = (self.negative_ratio * n_pos / (x.shape[1] - n_pos).clamp(min=1.0)).clamp(max=1.0)
        return (positive | (rand(tuple(x.shape), x.device, generator) < keep)).to(x.dtype)

    def score(self, batch: Batch) -> torch.Tensor:
        return self(batch.users, batch.x)


@register("cdae", CDAEParams, "CDAE: denoising autoencoder with a user embedding (Wu et al. 2016)")
def build_cdae(params: CDAEParams, n_users: int, n_items: int) -> CDAE:
    return CDAE(n_users, n_items, params.hidden, params.dropout, params.activation, params.loss, params.negative_ratio)
