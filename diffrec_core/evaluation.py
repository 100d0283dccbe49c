"""Ranking metrics (pure functions over arrays) and full-ranking evaluation (the paper's protocol).

Protocol: the model's input is the train interactions; on validation the train items are
masked, on test the train and validation items are masked. Recall@K = hits in the top K /
number of held-out items; NDCG@K = DCG / ideal DCG over min(K, n) positions; both averaged
over users with held-out items.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

KS = (10, 20)


def mask_seen(scores: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
    """Scores (B, n) with seen items (nonzero in ``seen``, (B, n)) set to -inf."""
    return scores.masked_fill(seen != 0, float("-inf"))


def check_scores(scores: torch.Tensor) -> torch.Tensor:
    """``scores`` unchanged; ``ValueError`` when any is NaN or infinite (a diverged model: top-k would rank those first)."""
    bad = ~torch.isfinite(scores)
    if bad.any():
        users = int(bad.any(dim=1).sum())
        raise ValueError(f"the model scored NaN or infinity for {users} of {scores.shape[0]} users: its weights are not "
                         "finite (training diverged); retrain it, e.g. with a lower training.lr")
    return scores


def ranking_metrics(topk: torch.Tensor, relevant: torch.Tensor, ks: Sequence[int] = KS) -> dict[str, torch.Tensor]:
    """Per-user Recall@K and NDCG@K.

    Args:
        topk: (B, K_max) item indices ranked best first; only min(K_max, n) with fewer than K_max items
            (a list cannot be longer than the catalogue).
        relevant: (B, n) held-out indicator (nonzero = relevant).
    Returns:
        {"recall@k": (B,), "ndcg@k": (B,)} for each k; users without held-out items get NaN.
    """
    kmax = max(ks)
    if topk.shape[1] < min(kmax, relevant.shape[1]):
        raise ValueError(f"topk has {topk.shape[1]} columns, need {min(kmax, relevant.shape[1])}")
    rel = (relevant != 0)
    n_rel = rel.sum(dim=1).to(torch.float64)
    hits = rel.gather(1, topk[:, :kmax]).to(torch.float64)
    if hits.shape[1] < kmax:  # fewer items than K: the positions past the catalogue hold no hit
        hits = torch.nn.functional.pad(hits, (0, kmax - hits.shape[1]))
    discounts = 1.0 / torch.log2(torch.arange(kmax, device=topk.device, dtype=torch.float64) + 2.0)
    ideal = torch.cumsum(discounts, 0)
    out: dict[str, torch.Tensor] = {}
    nan = torch.full_like(n_rel, float("nan"))
    for k in ks:
        h = hits[:, :k]
        out[f"recall@{k}"] = torch.where(n_rel > 0, h.sum(1) / n_rel.clamp(min=1), nan)
        idcg = ideal[(n_rel.clamp(min=1, max=k) - 1).long()]
        out[f"ndcg@{k}"] = torch.where(n_rel > 0, (h * discounts[:k]).sum(1) / idcg, nan)
    return out


@dataclass(frozen=True)
class Target:
    """One evaluation: held-out items and the items to mask (both (n_users, n_items) CSR)."""

    heldout: sp.csr_matrix
    mask: sp.csr_matrix


def dense_rows(matrix: sp.csr_matrix, rows: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """Rows of a CSR matrix as a dense float32 tensor (B, n) — the only place batches are densified."""
    return torch.from_numpy(matrix[rows].toarray().astype(np.float32, copy=False)).to(device)


@torch.no_grad()
def evaluate(
    scorer: Callable[[np.ndarray], torch.Tensor],
    targets: Mapping[str, Target],
    n_users: int,
    *,
    ks: Sequence[int] = KS,
    batch_size: int = 2048,
    device: torch.device | str = "cpu",
) -> dict[str, dict[str, float]]:
    """Score every evaluable user once and compute metrics for every target from the same scores.

    Args:
        scorer: maps a batch of user ids (B,) to scores (B, n_items) on ``device``.
        targets: e.g. {"valid": Target(valid, train), "test": Target(test, train + valid)}.
    Returns:
        {target: {"recall@10": ..., "ndcg@20": ..., "users": n}} averaged over users with held-out items.
    """
    users_with = {name: np.diff(t.heldout.indptr) > 0 for name, t in targets.items()}
    any_user = np.flatnonzero(np.logical_or.reduce(list(users_with.values())))
    sums = {name: {m: 0.0 for k in ks for m in (f"recall@{k}", f"ndcg@{k}")} for name in targets}
    counts = {name: 0 for name in targets}
    kmax = max(ks)
    for start in range(0, len(any_user), batch_size):
        rows = any_user[start : start + batch_size]
        scores = check_scores(scorer(rows))
        for name, target in targets.items():
            keep = users_with[name][rows]
            if not keep.any():
                continue
            sub_rows = rows[keep]
            keep_t = torch.from_numpy(keep).to(scores.device)
            masked = mask_seen(scores[keep_t], dense_rows(target.mask, sub_rows, scores.device))
            topk = torch.topk(masked, min(kmax, masked.shape[1]), dim=1).indices
            metrics = ranking_metrics(topk, dense_rows(target.heldout, sub_rows, scores.device), ks)
            for m, v in metrics.items():
                sums[name][m] += float(v.sum())
            counts[name] += len(sub_rows)
    return {
        name: {**{m: s / max(counts[name], 1) for m, s in sums[name].items()}, "users": counts[name]}
        for name in targets
    }
