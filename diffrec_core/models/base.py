"""The interface every recommender implements, so one loop trains and serves them all."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from diffrec_core.diffusion.gaussian import randn_like  # noqa: F401  (the models' noise draws, one definition)


@dataclass
class Batch:
    """A batch of users.

    Attributes:
        users: (B,) dense user ids.
        x: (B, n_items) float interaction vectors (train history, possibly time-weighted).
    """

    users: torch.Tensor
    x: torch.Tensor


class Recommender(nn.Module):
    """Base class: ``loss`` on a training batch, ``score`` for a batch of users.

    Models that are fitted in closed form (no gradient steps) set ``closed_form = True``
    and implement ``fit``.
    """

    closed_form: bool = False
    #: True when ``score`` reads ``batch.users`` (ID-based models such as MF or CDAE): production
    #: scoring must then pass the dense user ids the model was trained with.
    needs_user_ids: bool = False

    def loss(self, batch: Batch, generator: torch.Generator | None = None) -> torch.Tensor:
        """Scalar training loss for the batch."""
        raise NotImplementedError

    def loss_terms(self, batch: Batch) -> int:
        """How many terms ``loss`` averages over for ``batch``: its rows by default. Data-parallel
        training weights each rank's gradient by it, so the update is that of the whole batch."""
        return int(batch.users.shape[0])

    def score(self, batch: Batch) -> torch.Tensor:
        """(B, n_items) preference scores; higher is better. Seen items are masked by the caller."""
        raise NotImplementedError

    def on_epoch_end(self, epoch: int) -> None:
        """Hook for schedules kept inside a model (e.g. KL annealing)."""
        return None

    def prepare(self, inputs) -> None:
        """Hook called by the loop with the (n_users, n_items) input CSR before training or scoring.

        Models that need the whole interaction graph (LightGCN) build it here; the default does nothing.
        Called again before every evaluation, so an implementation should cache by ``inputs``.
        """
        return None

    def optimizer_groups(self, lr: float) -> list[dict]:
        """Parameter groups for the loop's optimizer; override for per-part learning rates."""
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]


def randint(high: int, size: tuple[int, ...], device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniform integers in [0, high) on ``device``, drawn from ``generator`` when given."""
    if generator is None or generator.device == device:
        return torch.randint(0, high, size, generator=generator, device=device)
    return torch.randint(0, high, size, generator=generator).to(device)


def rand(size: tuple[int, ...], device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniform [0, 1) floats on ``device``, drawn from ``generator`` when given."""
    if generator is None or generator.device == device:
        return torch.rand(size, generator=generator, device=device)
    return torch.rand(size, generator=generator).to(device)


def init_linear(layer: nn.Linear) -> None:
    """Normal(0, sqrt(2 / (fan_in + fan_out))) weights, Normal(0, 0.001) biases (Liang et al.'s and DiffRec's authors' init)."""
    fan_out, fan_in = layer.weight.shape
    nn.init.normal_(layer.weight, 0.0, math.sqrt(2.0 / (fan_in + fan_out)))
    nn.init.normal_(layer.bias, 0.0, 0.001)
