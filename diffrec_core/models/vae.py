"""Multinomial autoencoders (Liang et al. 2018, "Variational Autoencoders for Collaborative
Filtering"): MultiDAE, MultiVAE, and MultiDAE++ (DiffRec paper §4.1.2).

All three read a user's L2-normalised interaction vector x (B, n_items), encode it through
``hidden_dims`` (e.g. [600, 200]: n -> 600 -> 200) with tanh, decode through the mirror
(200 -> 600 -> n) and are trained with the multinomial log-likelihood
    log p(x | z) = sum_i x_i log softmax(f(z))_i.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, PositiveInt
from torch import nn
from torch.nn import functional as F

from diffrec_core.config import DiffusionConfig, _Frozen
from diffrec_core.models.base import Batch, Recommender, init_linear, randn_like
from diffrec_core.models.diffrec import build_diffusion
from diffrec_core.models.registry import register


class MultDAEParams(_Frozen):
    hidden_dims: list[PositiveInt] = Field(default_factory=lambda: [600, 200], description="encoder sizes; the decoder mirrors them")
    dropout: float = Field(0.5, ge=0.0, lt=1.0, description="input dropout (the corruption) while training")


class MultVAEParams(MultDAEParams):
    anneal_cap: float = Field(0.2, ge=0.0, le=1.0, description="largest KL weight beta")
    total_anneal_steps: int = Field(200000, ge=0, description="training steps over which beta grows linearly to 1 (capped); 0 means beta = anneal_cap at once")


class MultDAEPPParams(MultDAEParams):
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="optional input dropout on top of the Gaussian corruption")
    diffusion: DiffusionConfig = Field(default_factory=lambda: DiffusionConfig(steps=40, noise_scale=0.005, noise_min=0.005, noise_max=0.01))
    loss: Literal["multinomial", "mse"] = Field("multinomial", description="reconstruction loss against the clean x")


def mlp(dims: list[int]) -> nn.ModuleList:
    layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
    for layer in layers:
        init_linear(layer)
    return layers


def run_mlp(layers: nn.ModuleList, h: torch.Tensor, last_activation: bool = False) -> torch.Tensor:
    last = len(layers) - 1
    for i, layer in enumerate(layers):
        h = layer(h)
        if i != last or last_activation:
            h = torch.tanh(h)
    return h


def multinomial_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean over users of -sum_i x_i log softmax(logits)_i.  logits, x: (B, n)."""
    return -(F.log_softmax(logits, dim=-1) * x).sum(dim=-1).mean()


class MultDAE(Recommender):
    """Denoising autoencoder: dropout-corrupted, L2-normalised x -> logits over items (B, n)."""

    def __init__(self, n_items: int, hidden_dims: list[int], dropout: float):
        super().__init__()
        dims = [n_items, *hidden_dims]
        self.encoder = mlp(dims)
        self.decoder = mlp(dims[::-1])
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, n) -> logits (B, n)."""
        h = self.drop(F.normalize(x, dim=-1))
        h = run_mlp(self.encoder, h, last_activation=True)
        return run_mlp(self.decoder, h)

    def loss(self, batch: Batch, generator: torch.Generator | None = None) -> torch.Tensor:
        return multinomial_nll(self(batch.x), batch.x)

    def score(self, batch: Batch) -> torch.Tensor:
        return self(batch.x)


class MultVAE(Recommender):
    """Variational autoencoder with a Gaussian latent; the KL weight beta is annealed per training step.

    beta = min(anneal_cap, steps_done / total_anneal_steps); the step counter is a buffer, so it
    is part of the model's state (and its checkpoint).
    """

    def __init__(self, n_items: int, hidden_dims: list[int], dropout: float, anneal_cap: float, total_anneal_steps: int):
        super().__init__()
        dims = [n_items, *hidden_dims]
        self.latent = dims[-1]
        self.encoder = mlp([*dims[:-1], 2 * dims[-1]])  # last layer gives (mu, logvar)
        self.decoder = mlp(dims[::-1])
        self.drop = nn.Dropout(dropout)
        self.anneal_cap = anneal_cap
        self.total_anneal_steps = total_anneal_steps
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))

    @property
    def beta(self) -> float:
        if self.total_anneal_steps == 0:
            return self.anneal_cap
        return min(self.anneal_cap, float(self.steps_done) / self.total_anneal_steps)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, n) -> mu, logvar, each (B, latent)."""
        h = run_mlp(self.encoder, self.drop(F.normalize(x, dim=-1)))
        return h[:, : self.latent], h[:, self.latent :]

    def loss(self, batch: Batch, generator: torch.Generator | None = None) -> torch.Tensor:
        mu, logvar = self.encode(batch.x)
        std = torch.exp(0.5 * logvar)
        z = mu + std * randn_like(std, generator)
        logits = run_mlp(self.decoder, z)
        kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=-1)).mean()
        beta = self.beta
        if self.training:
            self.steps_done += 1
        return multinomial_nll(logits, batch.x) + beta * kl

    def score(self, batch: Batch) -> torch.Tensor:
        mu, _ = self.encode(batch.x)
        return run_mlp(self.decoder, mu)


class MultDAEPP(MultDAE):
    """MultiDAE++: a MultiDAE trained to recover the clean x from x_t = q_sample(x, t, eps) (Eq. 3),
    t uniform over DiffRec's noise schedule; it scores by decoding the clean history in one step."""

    def __init__(self, n_items: int, hidden_dims: list[int], dropout: float, diffusion: DiffusionConfig, loss: str):
        super().__init__(n_items, hidden_dims, dropout)
        self.diffusion = build_diffusion(diffusion)  # q_sample only: its mean_type is not used
        self.loss_type = loss

    def loss(self, batch: Batch, generator: torch.Generator | None = None) -> torch.Tensor:
        x = batch.x
        t = torch.randint(0, self.diffusion.steps, (x.shape[0],), generator=generator).to(x.device)
        x_t = self.diffusion.q_sample(x, t, randn_like(x, generator))
        out = self(x_t)
        if self.loss_type == "mse":
            return ((out - x) ** 2).mean()
        return multinomial_nll(out, x)


@register("multidae", MultDAEParams, "MultiDAE: denoising autoencoder with multinomial likelihood (Liang et al. 2018)")
def build_multidae(params: MultDAEParams, n_users: int, n_items: int) -> MultDAE:  # noqa: ARG001
    return MultDAE(n_items, params.hidden_dims, params.dropout)


@register("multivae", MultVAEParams, "MultiVAE: variational autoencoder with multinomial likelihood and KL annealing (Liang et al. 2018)")
def build_multivae(params: MultVAEParams, n_users: int, n_items: int) -> MultVAE:  # noqa: ARG001
    return MultVAE(n_items, params.hidden_dims, params.dropout, params.anneal_cap, params.total_anneal_steps)


@register("multidae_pp", MultDAEPPParams, "MultiDAE++: MultiDAE trained on DiffRec's Gaussian corruption, decoded in one step")
def build_multidae_pp(params: MultDAEPPParams, n_users: int, n_items: int) -> MultDAEPP:  # noqa: ARG001
    return MultDAEPP(n_items, params.hidden_dims, params.dropout, params.diffusion, params.loss)
