"""Gaussian diffusion over interaction vectors (paper §3.1–3.4).

The process never owns the denoiser: every method that needs it takes it as an
argument. Schedule tensors are buffers and move with ``.to(device)``.
"""

from __future__ import annotations

from typing import Callable, Literal

import torch
from torch import nn

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _extract(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """values[t] as a column broadcastable against ``like`` (B, n), in its dtype."""
    return values[t].to(like.dtype).unsqueeze(-1)


class GaussianDiffusion(nn.Module):
    """Forward process q(x_t | x_0) and reverse process p(x_{t-1} | x_t).

    Args:
        betas: shape (T,), float64 (see ``schedule.linear_variance_schedule``).
        mean_type: "x0" if the denoiser predicts x_0 (paper's default), "eps" if it predicts the noise.
    """

    def __init__(self, *, betas: torch.Tensor, mean_type: Literal["x0", "eps"] = "x0"):
        super().__init__()
        if betas.ndim != 1 or not bool(((betas > 0) & (betas <= 1)).all()):
            raise ValueError("betas must be a 1-d tensor with values in (0, 1]")
        self.mean_type = mean_type
        self.steps = int(betas.shape[0])
        betas = betas.to(torch.float64)
        alphas = 1.0 - betas
        alphas_cumprod = torch.cumprod(alphas, dim=0)
        alphas_cumprod_prev = torch.cat([torch.ones(1, dtype=torch.float64), alphas_cumprod[:-1]])
        buffers = {
            "betas": betas,
            "alphas_cumprod": alphas_cumprod,
            "alphas_cumprod_prev": alphas_cumprod_prev,
            "sqrt_alphas_cumprod": alphas_cumprod.sqrt(),
            "sqrt_one_minus_alphas_cumprod": (1.0 - alphas_cumprod).sqrt(),
            "sqrt_recip_alphas_cumprod": (1.0 / alphas_cumprod).sqrt(),
            "sqrt_recipm1_alphas_cumprod": (1.0 / alphas_cumprod - 1.0).sqrt(),
            # Eq. (7)-(8): posterior q(x_{t-1} | x_t, x_0)
            "posterior_variance": betas * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod),
            "posterior_mean_coef1": betas * alphas_cumprod_prev.sqrt() / (1.0 - alphas_cumprod),
            "posterior_mean_coef2": (1.0 - alphas_cumprod_prev) * alphas.sqrt() / (1.0 - alphas_cumprod),
            "snr": alphas_cumprod / (1.0 - alphas_cumprod),
        }
        log_var = torch.log(torch.cat([buffers["posterior_variance"][1:2], buffers["posterior_variance"][1:]]))
        buffers["posterior_log_variance_clipped"] = log_var
        for name, value in buffers.items():
            self.register_buffer(name, value, persistent=False)

    # ----- forward process -------------------------------------------------
    def q_sample(self, x_start: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Eq. (3): x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps.  Shapes (B, n), (B,), (B, n)."""
        return _extract(self.sqrt_alphas_cumprod, t, x_start) * x_start + _extract(self.sqrt_one_minus_alphas_cumprod, t, x_start) * noise

    def q_posterior_mean(self, x_start: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Eq. (8): mean of q(x_{t-1} | x_t, x_0), shape (B, n)."""
        return _extract(self.posterior_mean_coef1, t, x_t) * x_start + _extract(self.posterior_mean_coef2, t, x_t) * x_t

    def predict_x_start_from_eps(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        return _extract(self.sqrt_recip_alphas_cumprod, t, x_t) * x_t - _extract(self.sqrt_recipm1_alphas_cumprod, t, x_t) * eps

    # ----- reverse process ---------------------------------------------------
    def predict_x_start(self, model: Denoiser, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        out = model(x_t, t)
        return out if self.mean_type == "x0" else self.predict_x_start_from_eps(x_t, t, out)

    def p_mean(self, model: Denoiser, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Eq. (10): mu_theta(x_t, t), the posterior mean at the predicted x_0."""
        return self.q_posterior_mean(self.predict_x_start(model, x_t, t), x_t, t)

    def p_sample(
        self,
        model: Denoiser,
        x_start: torch.Tensor,
        sampling_steps: int = 0,
        *,
        sampling_noise: bool = False,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Algorithm 2: noise x_0 for T' steps, then denoise for T steps through mu_theta.

        Args:
            x_start: (B, n) interaction vectors.
            sampling_steps: T' (0 means the input is used as x_T without noise, the paper's default).
        Returns:
            (B, n) reconstructed scores x_0-hat.
        """
        if not 0 <= sampling_steps <= self.steps:
            raise ValueError(f"sampling_steps must be in [0, {self.steps}], got {sampling_steps}")
        if sampling_steps == 0:
            x_t = x_start
        else:
            t = torch.full((x_start.shape[0],), sampling_steps - 1, dtype=torch.long, device=x_start.device)
            x_t = self.q_sample(x_start, t, randn_like(x_start, generator))
        return self.denoise(model, x_t, self.steps, sampling_noise=sampling_noise, generator=generator)

    def denoise(
        self,
        model: Denoiser,
        x_t: torch.Tensor,
        steps: int,
        *,
        sampling_noise: bool = False,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """The reverse steps t = steps-1 … 0 through mu_theta from x_t (p_sample runs all T of them)."""
        if not 0 <= steps <= self.steps:
            raise ValueError(f"steps must be in [0, {self.steps}], got {steps}")
        for i in reversed(range(steps)):
            t = torch.full((x_t.shape[0],), i, dtype=torch.long, device=x_t.device)
            mean = self.p_mean(model, x_t, t)
            if sampling_noise and i > 0:
                std = torch.exp(0.5 * _extract(self.posterior_log_variance_clipped, t, x_t))
                x_t = mean + std * randn_like(x_t, generator)
            else:
                x_t = mean
        return x_t

    # ----- training ------------------------------------------------------------
    def step_weights(self, t: torch.Tensor) -> torch.Tensor:
        """Eq. (11)-(12) per-sample loss weights, shape (B,).

        x0: SNR(t-1) - SNR(t) for t > 1 and 1 for the first step (applied as in the authors' code,
        without the 1/2 factor). eps: the equivalent weight for an eps-prediction loss.
        """
        prev = t.clamp(min=1) - 1
        if self.mean_type == "x0":
            w = self.snr[prev] - self.snr[t]
        else:
            w = (1.0 - self.alphas_cumprod[t]) / ((1.0 - self.alphas_cumprod_prev[t]) ** 2 * (1.0 - self.betas[t]))
        return torch.where(t == 0, torch.ones_like(w), w).float()

    def training_losses(
        self,
        model: Denoiser,
        x_start: torch.Tensor,
        t: torch.Tensor,
        *,
        reweight: bool,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Per-sample loss, shape (B,): mean squared error of the denoiser's target (Eq. 11-12).

        With ``reweight`` the x0 loss is multiplied by ``step_weights(t)``; for eps the first step
        uses the x0 likelihood term as in the authors' code.
        """
        noise = randn_like(x_start, generator)
        x_t = self.q_sample(x_start, t, noise)
        out = model(x_t, t)
        target = x_start if self.mean_type == "x0" else noise
        mse = ((target - out) ** 2).mean(dim=-1)
        if not reweight:
            return mse
        if self.mean_type == "eps":
            x0_hat = self.predict_x_start_from_eps(x_t, t, out)
            likelihood = ((x_start - x0_hat) ** 2).mean(dim=-1) / 2.0
            mse = torch.where(t == 0, likelihood, mse)
        return self.step_weights(t) * mse


def randn_like(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard normal noise shaped like ``x`` (on its device), drawn from ``generator`` when given
    (a CPU generator also serves a model on another device)."""
    if generator is None or generator.device == x.device:
        return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=generator.device).to(x.device)
