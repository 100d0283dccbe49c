"""CODIGEM (Walker et al. 2022, "Recommendation via Collaborative Diffusion Generative Model"):
one autoencoder per diffusion step, each trained to recover x_0 from x_t; as the DiffRec paper
describes it, only the first step's autoencoder is used for prediction."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, PositiveInt
from torch import nn

from diffrec_core.config import DiffusionConfig, _Frozen
from diffrec_core.models.base import Batch, Recommender, randint, randn_like
from diffrec_core.models.diffrec import build_diffusion
from diffrec_core.models.registry import register
from diffrec_core.models.vae import MultDAE


class CODIGEMParams(_Frozen):
    diffusion: DiffusionConfig = Field(default_factory=lambda: DiffusionConfig(steps=5, noise_scale=0.1, noise_min=0.001, noise_max=0.01))
    hidden_dims: list[PositiveInt] = Field(default_factory=lambda: [200], description="each step's autoencoder: n -> dims -> mirror -> n")
    dropout: float = Field(0.5, ge=0.0, lt=1.0, description="input dropout of each autoencoder while training")
    loss: Literal["multinomial", "mse"] = "multinomial"


class CODIGEM(Recommender):
    """T step-specific MultiDAEs; a training sample at step t (uniform) trains autoencoder t on x_t
    (Eq. 3); scores come from autoencoder 0 on the clean history."""

    def __init__(self, n_items: int, diffusion: DiffusionConfig, hidden_dims: list[int], dropout: float, loss: str):
        super().__init__()
        self.diffusion = build_diffusion(diffusion)  # q_sample only: its mean_type is not used
        self.autoencoders = nn.ModuleList(MultDAE(n_items, hidden_dims, dropout) for _ in range(diffusion.steps))
        self.loss_type = loss

    def loss(self, batch: Batch, generator: torch.Generator | None = None) -> torch.Tensor:
        x = batch.x
        t = randint(self.diffusion.steps, (x.shape[0],), x.device, generator)
        x_t = self.diffusion.q_sample(x, t, randn_like(x, generator))
        total = x.new_zeros(())
        for step in torch.unique(t).tolist():
            rows = t == step
            out = self.autoencoders[step](x_t[rows])
            if self.loss_type == "mse":
                per = ((out - x[rows]) ** 2).mean(-1)
            else:
                per = -(torch.log_softmax(out, -1) * x[rows]).sum(-1)
            total = total + per.sum()
        return total / x.shape[0]

    def score(self, batch: Batch) -> torch.Tensor:
        return self.autoencoders[0](batch.x)


@register("codigem", CODIGEMParams, "CODIGEM: step-specific autoencoders over a diffusion (Walker et al. 2022)")
def build_codigem(params: CODIGEMParams, n_users: int, n_items: int) -> CODIGEM:  # noqa: ARG001
    return CODIGEM(n_items, params.diffusion, params.hidden_dims, params.dropout, params.loss)
