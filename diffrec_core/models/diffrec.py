"""DiffRec: a Gaussian diffusion over each user's interaction vector (paper §3)."""

from __future__ import annotations

from functools import partial

import torch
from pydantic import Field

from diffrec_core.config import DenoiserConfig, DiffusionConfig, _Frozen
from diffrec_core.diffusion.gaussian import GaussianDiffusion
from diffrec_core.diffusion.resample import make_sampler
from diffrec_core.diffusion.schedule import linear_variance_schedule
from diffrec_core.models.base import Batch, Recommender
from diffrec_core.models.denoiser import Denoiser
from diffrec_core.models.registry import register


class DiffRecParams(_Frozen):
    diffusion: DiffusionConfig = Field(default_factory=DiffusionConfig)
    denoiser: DenoiserConfig = Field(default_factory=DenoiserConfig)


def build_diffusion(cfg: DiffusionConfig) -> GaussianDiffusion:
    betas = linear_variance_schedule(cfg.steps, cfg.noise_scale, cfg.noise_min, cfg.noise_max)
    return GaussianDiffusion(betas=betas, mean_type=cfg.mean_type)


class DiffRec(Recommender):
    """Diffusion over x (B, n): training by Eq. (11)-(14), scoring by Algorithm 2."""

    def __init__(self, denoiser: torch.nn.Module, cfg: DiffusionConfig):
        super().__init__()
        self.cfg = cfg
        self.denoiser = denoiser
        self.diffusion = build_diffusion(cfg)
        self.sampler = make_sampler(cfg.importance_sampling, cfg.steps, cfg.history_per_step)

    def loss(self, batch: Batch, generator: torch.Generator | None = None) -> torch.Tensor:
        x = batch.x
        t, weights = self.sampler.sample(x.shape[0], generator, x.device)
        denoiser = partial(self.denoiser, generator=generator) if generator is not None else self.denoiser
        losses = self.diffusion.training_losses(denoiser, x, t, reweight=self.cfg.reweight, generator=generator)
        self.sampler.update(t, losses)
        return (losses * weights).mean()

    def score(self, batch: Batch) -> torch.Tensor:
        return self.diffusion.p_sample(self.denoiser, batch.x, self.cfg.sampling_steps, sampling_noise=self.cfg.sampling_noise)


@register("diffrec", DiffRecParams, "DiffRec: diffusion over interaction vectors")
def build_diffrec(params: DiffRecParams, n_users: int, n_items: int) -> DiffRec:  # noqa: ARG001
    d = params.denoiser
    denoiser = Denoiser(n_items, d.hidden_dims, d.emb_size, d.activation, d.dropout, d.norm)
    return DiffRec(denoiser, params.diffusion)
