"""Production batch inference: top-K unseen items per user, scored in batches."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch

from diffrec_core.evaluation import dense_rows, mask_seen


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
