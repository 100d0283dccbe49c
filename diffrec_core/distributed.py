"""Data-parallel training over several processes (one per GPU, or CPU processes), launched with torchrun.

Every rank builds the same model from the same seed and walks the same batch order; each takes
its share of every batch, and the gradients are averaged over all ranks weighted by the rows each
took, so one update equals the single-process update on the whole batch and all ranks keep the
same weights. Rank 0 alone evaluates (its validation score decides early stopping for all) and
writes the warehouse and the checkpoint. One process (no torchrun) is the plain loop.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def init_from_env() -> None:
    """Join the process group torchrun describes (``WORLD_SIZE`` > 1): NCCL on GPUs, gloo on CPUs."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl")
    else:
        dist.init_process_group("gloo")


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def is_primary() -> bool:
    """True on rank 0, and in a single process: the one that records, checkpoints and prints."""
    return rank() == 0


def share(rows, size: int, index: int):
    """This rank's share of a batch: every ``size``-th row from ``index``."""
    return rows[index::size]


def average_gradients(parameters: list[torch.nn.Parameter], local_rows: int, batch_rows: int) -> None:
    """Replace each gradient with the row-weighted mean over ranks (a rank with no rows adds zeros)."""
    for p in parameters:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        p.grad.mul_(local_rows / batch_rows)
        dist.all_reduce(p.grad)


def broadcast_float(value: float, device: torch.device) -> float:
    """Rank 0's ``value`` on every rank."""
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.broadcast(t, src=0)
    return float(t.item())


def sum_floats(values: list[float], device: torch.device) -> list[float]:
    """Element-wise sum of ``values`` over all ranks."""
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()
