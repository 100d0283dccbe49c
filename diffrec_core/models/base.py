"""The interface every recommender implements, so one loop trains and serves them all."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


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

    def loss(self, batch: Batch, generator: torch.Generator | None = None) -> torch.Tensor:
        """Scalar training loss for the batch."""
        raise NotImplementedError

    def score(self, batch: Batch) -> torch.Tensor:
        """(B, n_items) preference scores; higher is better. Seen items are masked by the caller."""
        raise NotImplementedError

    def on_epoch_end(self, epoch: int) -> None:
        """Hook for schedules kept inside a model (e.g. KL annealing)."""
        return None
