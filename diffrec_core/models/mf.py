"""Matrix factorisation trained with BPR (Rendle et al. 2009, "BPR: Bayesian Personalized Ranking
from Implicit Feedback")."""

from __future__ import annotations

import torch
from pydantic import Field, NonNegativeFloat, PositiveInt
from torch import nn
from torch.nn import functional as F

from diffrec_core.config import _Frozen
from diffrec_core.models.base import Batch, Recommender, rand
from diffrec_core.models.registry import register


class MFParams(_Frozen):
    factors: PositiveInt = Field(64, description="embedding size of users and items")
    reg: NonNegativeFloat = Field(1e-4, description="L2 weight on the embeddings of each (u, i, j) triple")
    init_std: float = Field(0.1, gt=0.0, description="std of the normal initialisation")


class MF(Recommender):
    """score(u, i) = <p_u, q_i>; a batch of users yields one (u, i, j) triple per train interaction
    (u, i), with j drawn uniformly among the items u has not interacted with."""

    needs_user_ids = True

    def __init__(self, n_users: int, n_items: int, factors: int, reg: float, init_std: float):
        super().__init__()
        self.user_emb = nn.Embedding(n_users, factors)
        self.item_emb = nn.Embedding(n_items, factors)
        nn.init.normal_(self.user_emb.weight, 0.0, init_std)
        nn.init.normal_(self.item_emb.weight, 0.0, init_std)
        self.reg = reg

    @staticmethod
    def sample_triples(batch: Batch, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(rows, pos, neg), each (P,): every positive (row, item) of ``batch.x`` once, with an item
        drawn uniformly among that row's unseen items (exactly, through the cumulative count of unseen items)."""
        x = batch.x
        rows, pos = x.nonzero(as_tuple=True)
        counts = torch.bincount(rows, minlength=x.shape[0])
        within = torch.arange(rows.shape[0], device=x.device) - (torch.cumsum(counts, 0) - counts)[rows]
        unseen = (x <= 0).to(torch.int64)
        n_unseen = unseen.sum(1, keepdim=True)
        cum = torch.cumsum(unseen, 1)
        draws = rand((x.shape[0], max(int(counts.max()) if rows.numel() else 1, 1)), x.device, generator)
        k = torch.minimum((draws * n_unseen).long(), (n_unseen - 1).clamp(min=0)) + 1
        neg = torch.searchsorted(cum, k).clamp(max=x.shape[1] - 1)
        return rows, pos, neg[rows, within]

    def loss_terms(self, batch: Batch) -> int:
        """One BPR triple per train interaction of the batch's users."""
        return int(torch.count_nonzero(batch.x))

    def loss(self, batch: Batch, generator: torch.Generator | None = None) -> torch.Tensor:
        rows, pos, neg = self.sample_triples(batch, generator)
        u = self.user_emb(batch.users[rows])
        i = self.item_emb(pos)
        j = self.item_emb(neg)
        diff = (u * i).sum(-1) - (u * j).sum(-1)
        reg = (u.pow(2).sum(-1) + i.pow(2).sum(-1) + j.pow(2).sum(-1)).mean() / 2.0
        return -F.logsigmoid(diff).mean() + self.reg * reg

    def score(self, batch: Batch) -> torch.Tensor:
        """(B, n_items) = P[users] Q^T; the history in ``batch.x`` is not used (MF needs known users)."""
        return self.user_emb(batch.users) @ self.item_emb.weight.T


@register("mf", MFParams, "MF: matrix factorisation with BPR loss (Rendle et al. 2009)")
def build_mf(params: MFParams, n_users: int, n_items: int) -> MF:
    return MF(n_users, n_items, params.factors, params.reg, params.init_std)
