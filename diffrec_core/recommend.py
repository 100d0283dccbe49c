"""Production batch inference: top-K unseen items per user, scored in batches."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
import torch

from diffrec_core.evaluation import dense_rows, mask_seen

if TYPE_CHECKING:
    from diffrec_core.runs import RunInfo


@torch.no_grad()
def top_k(
    scorer: Callable[[torch.Tensor], torch.Tensor],
    history: sp.csr_matrix,
    k: int,
    *,
    seen: sp.csr_matrix | None = None,
    batch_size: int = 2048,
    device: torch.device | str = "cpu",
    pass_users: bool = False,
) -> dict[str, np.ndarray]:
    """Top-k unseen items for every user with history.

    Args:
        scorer: maps a dense input batch x (B, n_items) to scores (B, n_items).
        history: (n_users, n_items) CSR of each user's known history: the model's input.
        seen: (n_users, n_items) CSR of everything to mask (default: ``history``), e.g. also
            interactions the model's setting does not take as input (low ratings).
        pass_users: call ``scorer(x, users)`` with the batch's row ids (B,) as well (ID-based models).
    Returns:
        arrays user (int64), item (int64), rank (1..k), score (float32), one row per recommendation.
        A user with fewer than k unseen items gets only those.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    users = np.flatnonzero(np.diff(history.indptr) > 0)
    kk = min(k, history.shape[1])
    out_u, out_i, out_r, out_s = [], [], [], []
    for start in range(0, len(users), batch_size):
        rows = users[start : start + batch_size]
        x = dense_rows(history, rows, device)
        mask = x if seen is None else dense_rows(seen, rows, device)
        raw = scorer(x, torch.from_numpy(rows).to(x.device)) if pass_users else scorer(x)
        scores = mask_seen(raw.float(), mask)
        vals, idx = torch.topk(scores, kk, dim=1)
        vals, idx = vals.cpu().numpy(), idx.cpu().numpy()
        valid = np.isfinite(vals)
        ranks = np.broadcast_to(np.arange(1, kk + 1), vals.shape)
        out_u.append(np.broadcast_to(rows[:, None], vals.shape)[valid])
        out_i.append(idx[valid])
        out_r.append(ranks[valid])
        out_s.append(vals[valid])
    if not out_u:
        empty = np.empty(0, dtype=np.int64)
        return {"user": empty, "item": empty, "rank": empty, "score": np.empty(0, dtype=np.float32)}
    return {
        "user": np.concatenate(out_u).astype(np.int64),
        "item": np.concatenate(out_i).astype(np.int64),
        "rank": np.concatenate(out_r).astype(np.int64),
        "score": np.concatenate(out_s).astype(np.float32),
    }


def run_top_k(
    run: RunInfo,
    inputs: sp.csr_matrix,
    k: int,
    *,
    seen: sp.csr_matrix | None = None,
    first_user: int = 0,
    new_users: bool = False,
    batch_size: int = 2048,
    device: str = "auto",
) -> dict[str, np.ndarray]:
    """``top_k`` with the checkpoint of a model run: the one scoring path of batch, sharded and cold-start inference.

    Row r of ``inputs``/``seen`` is the user with dense id ``first_user + r`` (``new_users``: users the
    model has never seen, e.g. a cold-start history). Raises ``ValueError`` when the run has no
    checkpoint, was trained on another item space, or is an ID-based model asked for users it
    was not trained on.
    """
    from diffrec_core.models.base import Batch
    from diffrec_core.training import load_checkpoint, select_device

    if not run.checkpoint_path:
        raise ValueError(f"model run {run.run_id!r} has no checkpoint (status {run.status})")
    dev = select_device(device)
    model, meta = load_checkpoint(run.checkpoint_path, dev)
    if inputs.shape[1] != meta["n_items"]:
        raise ValueError(f"model run {run.run_id!r} was trained on {meta['n_items']} items but the warehouse now has {inputs.shape[1]}: retrain")
    if model.needs_user_ids and new_users:
        raise ValueError(f"model run {run.run_id!r} ({run.model}) scores only the users it was trained on; a new user's "
                         "history needs a model that reads it (e.g. diffrec, multivae, ease)")
    if model.needs_user_ids and first_user + inputs.shape[0] > meta["n_users"]:
        raise ValueError(f"model run {run.run_id!r} ({run.model}) scores the {meta['n_users']} users it was trained on "
                         f"but was asked for users up to {first_user + inputs.shape[0]}: retrain")

    def scorer(x: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        users = torch.zeros(x.shape[0], dtype=torch.long, device=x.device) if rows is None else rows + first_user
        return model.score(Batch(users=users, x=x))

    return top_k(scorer, inputs, k, seen=seen, batch_size=batch_size, device=dev, pass_users=model.needs_user_ids)
