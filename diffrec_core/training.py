"""One model-agnostic training loop: Adam, early stopping on validation Recall@20, checkpoints."""

from __future__ import annotations

import copy
import json
import math
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from diffrec_core import distributed
from diffrec_core.config import RunConfig, TrainingConfig
from diffrec_core.evaluation import KS, Target, dense_rows, evaluate
from diffrec_core.models.base import Batch, Recommender
from diffrec_core.models.registry import build_model, spec

SELECTION_METRIC = "recall@20"


def select_device(requested: str = "auto") -> torch.device:
    """cuda when asked for (error if absent) or when 'auto' finds one, else cpu; anything else is a ValueError."""
    if requested not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device {requested!r}: use auto, cpu or cuda")
    if requested == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' requested but no CUDA device is available")
        return torch.device("cuda")
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device("cpu")


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a torch generator for the loop's own draws."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@dataclass
class FitResult:
    best_epoch: int
    best_valid: dict[str, float]
    epochs_run: int
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds_per_epoch: float = 0.0
    seconds_per_eval: float = 0.0
    seconds_to_best: float = 0.0
    seconds_total: float = 0.0
    stopped_by_time: bool = False


def make_scorer(model: Recommender, inputs: sp.csr_matrix, device: torch.device) -> Callable[[np.ndarray], torch.Tensor]:
    """Scores for a batch of user ids, from their rows of ``inputs``."""
    model.prepare(inputs)

    def scorer(rows: np.ndarray) -> torch.Tensor:
        users = torch.from_numpy(np.asarray(rows, dtype=np.int64)).to(device)
        return model.score(Batch(users=users, x=dense_rows(inputs, rows, device)))

    return scorer


def evaluate_model(model: Recommender, inputs: sp.csr_matrix, targets: dict[str, Target], cfg: TrainingConfig, device: torch.device) -> dict[str, dict[str, float]]:
    model.eval()
    model.prepare(inputs)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.eval_precision == "bfloat16"):
        return evaluate(make_scorer(model, inputs, device), targets, inputs.shape[0], ks=KS, batch_size=cfg.eval_batch_size, device=device)


def fit(
    model: Recommender,
    inputs: sp.csr_matrix,
    valid: Target,
    cfg: TrainingConfig,
    *,
    device: torch.device | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    progress: bool = False,
    max_seconds: float | None = None,
) -> FitResult:
    """Train ``model`` on ``inputs`` (n_users, n_items) and keep the state with the best validation Recall@20.

    The best weights are loaded back into ``model`` before returning. With ``max_seconds`` the
    loop also stops after the first epoch that ends past that wall-clock budget
    (``FitResult.stopped_by_time``). Under torchrun (an initialised process group) the loop is
    data-parallel, see ``diffrec_core.distributed``: the result is rank 0's.
    """
    device = device or select_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    generator = seed_everything(cfg.seed)
    rank = distributed.rank()
    if rank:  # the same batch order on every rank, but each rank its own noise and dropout draws
        torch.manual_seed(cfg.seed + rank)
        generator = torch.Generator().manual_seed(cfg.seed + rank)
    model.to(device)
    model.prepare(inputs)
    t_start = time.perf_counter()
    if model.closed_form:
        model.fit(inputs)
        t_eval = time.perf_counter()
        metrics = evaluate_model(model, inputs, {"valid": valid}, cfg, device)["valid"]
        now = time.perf_counter()
        return FitResult(0, metrics, 0, [{"epoch": 0, **metrics}], now - t_start, now - t_eval, now - t_start, now - t_start)

    optimizer = torch.optim.Adam(model.optimizer_groups(cfg.lr), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = _scheduler(optimizer, cfg)
    ema = _ema(model, cfg.ema_decay)
    scored = model if ema is None else ema.module  # the weights that are evaluated and kept
    trainable = [p for p in model.parameters() if p.requires_grad]
    train_users = np.flatnonzero(np.diff(inputs.indptr) > 0)
    rng = np.random.default_rng(cfg.seed)
    best = {"epoch": -1, "score": -1.0, "metrics": {}, "state": None, "time": 0.0}
    history: list[dict[str, Any]] = []
    epoch_times, eval_times = [], []
    epoch = 0
    stopped_by_time = False
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        order = rng.permutation(train_users)
        batches = range(0, len(order), cfg.batch_size)
        if progress:
            from tqdm import tqdm

            batches = tqdm(batches, desc=f"epoch {epoch}", leave=False, unit="batch")
        total, n = 0.0, 0
        for start in batches:
            whole = order[start : start + cfg.batch_size]
            rows = distributed.share(whole)
            optimizer.zero_grad(set_to_none=True)
            terms = 0  # what this rank's loss averages over: the epoch's loss is the mean over all terms
            if len(rows):
                batch = Batch(users=torch.from_numpy(rows).to(device), x=dense_rows(inputs, rows, device))
                loss = model.loss(batch, generator)
                loss.backward()
                terms = model.loss_terms(batch)
                total += float(loss.detach()) * terms
                n += terms
            distributed.average_gradients(trainable, terms)
            optimizer.step()
            if ema is not None:
                ema.update_parameters(model)
        total, n = distributed.sum_floats([total, n], device)
        if not math.isfinite(total):  # every rank sees the same sum, so all stop together
            raise ValueError(f"training diverged: the loss is {total} at epoch {epoch} (training.lr {cfg.lr:g}); "
                             "retrain with a lower learning rate")
        model.on_epoch_end(epoch)
        epoch_times.append(time.perf_counter() - t0)
        record: dict[str, Any] = {"epoch": epoch, "loss": total / max(n, 1), "lr": optimizer.param_groups[0]["lr"]}
        if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
            t1 = time.perf_counter()
            metrics = evaluate_model(scored, inputs, {"valid": valid}, cfg, device)["valid"] if rank == 0 else {}
            eval_times.append(time.perf_counter() - t1)
            record.update({f"valid_{k}": v for k, v in metrics.items()})
            # rank 0's score decides for all ranks, so every rank stops at the same epoch
            score = distributed.broadcast_float(metrics[SELECTION_METRIC] if rank == 0 else -1.0, device)
            if score > best["score"]:
                best = {"epoch": epoch, "score": score, "metrics": metrics, "state": copy.deepcopy(scored.state_dict()), "time": time.perf_counter() - t_start}
            if cfg.lr_schedule == "plateau":
                scheduler.step(score)
        if cfg.lr_schedule == "cosine" and scheduler is not None:
            scheduler.step()
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if epoch - best["epoch"] >= cfg.patience and best["epoch"] > 0:
            break
        if max_seconds is not None:
            # rank 0's clock decides for all ranks
            if distributed.broadcast_float(float(time.perf_counter() - t_start > max_seconds), device):
                stopped_by_time = True
                break
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    return FitResult(
        best_epoch=best["epoch"],
        best_valid=best["metrics"],
        epochs_run=epoch,
        history=history,
        seconds_per_epoch=statistics.median(epoch_times) if epoch_times else 0.0,
        seconds_per_eval=statistics.median(eval_times) if eval_times else 0.0,
        seconds_to_best=best["time"],
        seconds_total=time.perf_counter() - t_start,
        stopped_by_time=stopped_by_time,
    )


def _ema(model: Recommender, decay: float):
    """An exponential moving average of the model's parameters (torch's AveragedModel), or None."""
    if decay <= 0.0:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=False)


def _scheduler(optimizer: torch.optim.Optimizer, cfg: TrainingConfig):
    if cfg.lr_schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=cfg.lr_decay, patience=cfg.lr_patience, min_lr=cfg.min_lr)
    if cfg.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs, eta_min=cfg.min_lr)
    return None


# ----- checkpoints ---------------------------------------------------------------
CHECKPOINT_WEIGHTS = "model.pt"
CHECKPOINT_CONFIG = "config.json"
CHECKPOINT_KEYS = "keys.npz"


def save_checkpoint(directory: str | Path, model: Recommender, run: RunConfig, n_users: int, n_items: int,
                    extra: dict[str, Any] | None = None, keys: tuple[np.ndarray, np.ndarray] | None = None) -> Path:
    """Write the state_dict and the validated config beside it, and ``keys`` = (user keys, item keys) of the
    model's rows and columns when given (so it can serve after a restage moves dense ids); returns the directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), directory / CHECKPOINT_WEIGHTS)
    meta = {"run": run.model_dump(mode="json"), "n_users": n_users, "n_items": n_items, **(extra or {})}
    (directory / CHECKPOINT_CONFIG).write_text(json.dumps(meta, indent=2))
    if keys is not None:
        user_keys, item_keys = (np.asarray(k).astype(str) for k in keys)
        if (len(user_keys), len(item_keys)) != (n_users, n_items):
            raise ValueError(f"checkpoint keys: {len(user_keys)} users x {len(item_keys)} items for a {n_users} x {n_items} model")
        np.savez(directory / CHECKPOINT_KEYS, user_keys=user_keys, item_keys=item_keys)
    return directory


def checkpoint_keys(directory: str | Path) -> tuple[np.ndarray, np.ndarray] | None:
    """(user keys, item keys) of a checkpoint's rows and columns; ``None`` for a checkpoint saved without them."""
    path = Path(directory) / CHECKPOINT_KEYS
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as stored:
        return stored["user_keys"], stored["item_keys"]


def load_checkpoint(directory: str | Path, device: str | torch.device = "cpu") -> tuple[Recommender, dict[str, Any]]:
    """Rebuild a model from its own files (weights loaded with ``weights_only=True``)."""
    directory = Path(directory)
    try:
        meta = json.loads((directory / CHECKPOINT_CONFIG).read_text())
        run = RunConfig.model_validate(meta["run"])
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{directory}: not a readable checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    state = torch.load(directory / CHECKPOINT_WEIGHTS, map_location=device, weights_only=True)
    # Side data (e.g. L-DiffRec's item clusters) is kept in the state under its own name.
    side = {key: state[key].cpu().numpy() for key in spec(run.model.name).side if key in state}
    model = build_model(run.model, meta["n_users"], meta["n_items"], side=side)
    model.load_state_dict(state)
    model.to(device).eval()
    return model, meta
