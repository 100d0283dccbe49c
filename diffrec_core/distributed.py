"""Data-parallel training over several processes (one per GPU, or CPU processes), launched with torchrun.

Every rank builds the same model from the same seed and walks the same batch order; each takes
its share of every batch, and the gradients are averaged over all ranks weighted by the terms each
rank's loss averaged (``Recommender.loss_terms``: rows for the autoencoders and diffusion models,
BPR triples for MF and LightGCN), so one update equals the single-process update on the whole batch
(up to each rank's own noise, dropout and negative draws) and all ranks keep the same weights.
Rank 0 alone evaluates (its validation score and clock decide stopping for all) and writes the
warehouse and the checkpoint. In one process (no torchrun) every function here is the identity,
and the loop is the plain one.
"""

from __future__ import annotations

import atexit
import os
import sys
from datetime import timedelta

import torch
import torch.distributed as dist


def init_from_env() -> None:
    """Join the process group torchrun describes (``WORLD_SIZE`` > 1): gloo for CPU tensors, NCCL for
    GPU ones, so CPU training also works on a GPU host. Rank 0's validation can take long: the others
    wait up to an hour for it."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available() and local < torch.cuda.device_count():
        torch.cuda.set_device(local)
        dist.init_process_group("cpu:gloo,cuda:nccl", timeout=timedelta(hours=1))
    else:
        dist.init_process_group("gloo", timeout=timedelta(hours=1))
    atexit.register(_leave)  # gloo's threads stopped before the interpreter exits (else a rank can abort at exit)


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def finish() -> None:
    """End a torchrun rank whose work is done: leave the process group, flush, and exit 0 at once.

    With torch 2.13 a rank that trained (backward and Adam steps over gloo) aborts now and then in
    the interpreter's teardown, after its work and ``destroy_process_group`` returned ("terminate called
    without an active exception", about one exit in five on a busy 2-core machine), and torchrun then
    reports the whole run failed. ``os._exit`` skips that teardown. In one process this does nothing.
    """
    if not dist.is_initialized():
        return
    _leave()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def is_primary() -> bool:
    """True on rank 0, and in a single process: the one that records, checkpoints and prints."""
    return rank() == 0


def share(rows):
    """This rank's share of a batch: every ``world_size()``-th row from its rank."""
    return rows[rank()::world_size()]


def average_gradients(parameters: list[torch.nn.Parameter], terms: float) -> None:
    """Replace each gradient with the mean over ranks weighted by ``terms`` (what this rank's loss
    averaged over; 0 for a rank without rows). A parameter no rank used keeps no gradient (as in
    one process, so the optimizer skips it); one used elsewhere gets this rank's zeros."""
    if world_size() == 1:
        return
    state = torch.tensor([float(p.grad is not None) for p in parameters] + [float(terms)], dtype=torch.float64)
    dist.all_reduce(state)  # one call: which parameters any rank used, and the batch's terms
    *used, total = state.tolist()
    for p, anywhere in zip(parameters, used):
        if not anywhere:
            continue
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        p.grad.mul_(terms / total)
        dist.all_reduce(p.grad)


def broadcast_float(value: float, device: torch.device) -> float:
    """Rank 0's ``value`` on every rank."""
    if world_size() == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.broadcast(t, src=0)
    return float(t.item())


def sum_floats(values: list[float], device: torch.device) -> list[float]:
    """Element-wise sum of ``values`` over all ranks."""
    if world_size() == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()
