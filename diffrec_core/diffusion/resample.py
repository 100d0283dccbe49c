"""Timestep samplers: uniform, and importance sampling by the loss second moment (paper Eq. 14)."""

from __future__ import annotations

import torch


class UniformSampler:
    """t ~ U{0..T-1} with weight 1."""

    def __init__(self, steps: int):
        self.steps = steps

    def sample(self, n: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (t, weights), both shape (n,)."""
        t = torch.randint(0, self.steps, (n,), generator=generator, device=generator.device if generator is not None else "cpu")
        return t.to(device), torch.ones(n, device=device)

    def update(self, t: torch.Tensor, losses: torch.Tensor) -> None:  # noqa: ARG002 - uniform keeps no history
        return None

    def state_dict(self) -> dict:
        return {}


class LossSecondMomentSampler(UniformSampler):
    """Importance sampling of steps, paper Eq. (14).

    Keeps the last ``history`` losses per step; samples uniformly until every step
    has a full history, then p_t ∝ sqrt(E[L_t^2]) (mixed with a small uniform share so
    no step starves) and weights each loss by 1 / (T * p_t).
    """

    def __init__(self, steps: int, history: int = 10, uniform_prob: float = 0.001):
        super().__init__(steps)
        self.history = history
        self.uniform_prob = uniform_prob
        self._losses = torch.zeros(steps, history, dtype=torch.float64)
        self._counts = torch.zeros(steps, dtype=torch.long)

    @property
    def warmed_up(self) -> bool:
        return bool((self._counts == self.history).all())

    def probabilities(self) -> torch.Tensor:
        """p_t, shape (T,); uniform until warmed up."""
        if not self.warmed_up:
            return torch.full((self.steps,), 1.0 / self.steps, dtype=torch.float64)
        p = torch.sqrt((self._losses**2).mean(dim=1))
        p = p / p.sum()
        return p * (1.0 - self.uniform_prob) + self.uniform_prob / self.steps

    def sample(self, n, generator=None, device="cpu"):
        if not self.warmed_up:
            return super().sample(n, generator, device)
        p = self.probabilities()
        t = torch.multinomial(p, n, replacement=True, generator=_cpu(generator))
        weights = 1.0 / (self.steps * p[t])
        return t.to(device), weights.to(device=device, dtype=torch.float32)

    def update(self, t: torch.Tensor, losses: torch.Tensor) -> None:
        """Record per-sample losses (shape (n,)) for their steps t (shape (n,))."""
        t = t.detach().cpu()
        losses = losses.detach().to("cpu", torch.float64)
        for step in torch.unique(t).tolist():
            new = losses[t == step]
            merged = torch.cat([self._losses[step, : self._counts[step]], new])[-self.history :]
            self._losses[step, : len(merged)] = merged
            self._counts[step] = len(merged)

    def state_dict(self) -> dict:
        return {"losses": self._losses.clone(), "counts": self._counts.clone()}


def _cpu(generator: torch.Generator | None) -> torch.Generator | None:
    return generator if generator is None or generator.device.type == "cpu" else None


def make_sampler(importance: bool, steps: int, history: int = 10) -> UniformSampler:
    return LossSecondMomentSampler(steps, history) if importance else UniformSampler(steps)
