"""The DiffRec denoiser: an MLP over [x_t, step embedding] (paper §3.3)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from diffrec_core.models.base import init_linear

_ACTIVATIONS = {"tanh": torch.tanh, "relu": F.relu, "gelu": F.gelu, "sigmoid": torch.sigmoid}


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal step embedding, shape (B, dim) for t of shape (B,)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float().unsqueeze(-1) * freqs.unsqueeze(0)
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class Denoiser(nn.Module):
    """f_theta(x_t, t): n_items -> hidden_dims -> mirrored hidden dims -> n_items.

    Args:
        n_items: input and output size.
        hidden_dims: encoder sizes, e.g. [200, 600] gives n+e -> 600 -> 200 -> 600 -> n
            (the authors' layout: the list is the decoder, the encoder is its mirror).
        emb_size: step embedding size, concatenated to the (dropped-out) input.
    """

    def __init__(self, n_items: int, hidden_dims: list[int], emb_size: int = 10, activation: str = "tanh", dropout: float = 0.5, norm: bool = False):
        super().__init__()
        self.n_items = n_items
        self.emb_size = emb_size
        self.norm = norm
        self.act = _ACTIVATIONS[activation]
        self.emb_layer = nn.Linear(emb_size, emb_size)
        out_dims = list(hidden_dims) + [n_items]
        in_dims = out_dims[::-1]
        enc = [in_dims[0] + emb_size] + in_dims[1:]
        self.in_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(enc[:-1], enc[1:]))
        self.out_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(out_dims[:-1], out_dims[1:]))
        self.drop = nn.Dropout(dropout)
        self.reset_parameters()

    def _dropout(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        p = self.drop.p
        if not self.training or p == 0.0 or generator is None:
            return self.drop(x)
        keep = torch.rand(x.shape, generator=generator, device=generator.device) >= p
        return x * keep.to(x.device, x.dtype) / (1.0 - p)

    def reset_parameters(self) -> None:
        """Normal(0, sqrt(2 / (fan_in + fan_out))) weights, Normal(0, 0.001) biases (authors' init)."""
        for layer in [*self.in_layers, *self.out_layers, self.emb_layer]:
            init_linear(layer)

    def forward(self, x: torch.Tensor, t: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """x: (B, n_items), t: (B,) -> (B, n_items).

        With a ``generator`` the training dropout mask is drawn from it (on its device), so a
        seeded run gives the same masks on CPU and GPU.
        """
        emb = self.emb_layer(timestep_embedding(t, self.emb_size).to(x.dtype))
        if self.norm:
            x = F.normalize(x)
        h = torch.cat([self._dropout(x, generator), emb], dim=-1)
        for layer in self.in_layers:
            h = self.act(layer(h))
        last = len(self.out_layers) - 1
        for i, layer in enumerate(self.out_layers):
            h = layer(h)
            if i != last:
                h = self.act(h)
        return h
