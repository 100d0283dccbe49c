"""Noise schedules as pure functions (float64, no state, no device)."""

from __future__ import annotations

import torch


def linear_variance_schedule(steps: int, scale: float, noise_min: float, noise_max: float, max_beta: float = 0.999) -> torch.Tensor:
    """Betas whose cumulative variance 1 - alpha_bar_t is linear in t (paper Eq. 4).

    1 - alpha_bar_t = s * (alpha_min + (t - 1) / (T - 1) * (alpha_max - alpha_min)),  t = 1..T

    Returns:
        betas, shape (T,), float64, each in (0, max_beta].
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not 0.0 < noise_min < noise_max:
        raise ValueError(f"need 0 < noise_min < noise_max, got {noise_min}, {noise_max}")
    if scale <= 0.0 or scale * noise_max >= 1.0:
        raise ValueError(f"need 0 < scale * noise_max < 1, got scale={scale}")
    variance = torch.linspace(scale * noise_min, scale * noise_max, steps, dtype=torch.float64)
    alphas_cumprod = 1.0 - variance
    betas = torch.empty(steps, dtype=torch.float64)
    betas[0] = variance[0]
    betas[1:] = 1.0 - alphas_cumprod[1:] / alphas_cumprod[:-1]
    return betas.clamp(max=max_beta)
