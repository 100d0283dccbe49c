"""Production batch inference: top-K unseen items per user, scored in batches."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
import torch

from diffrec_core.evaluation import check_scores, dense_rows, mask_seen

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
    Raises ``ValueError`` when the model scores NaN or infinity (``evaluation.check_scores``).
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
        scores = mask_seen(check_scores(raw.float()), mask)
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
    user_keys: np.ndarray | None = None,
    item_keys: np.ndarray | None = None,
    batch_size: int = 2048,
    device: str = "auto",
) -> dict[str, np.ndarray]:
    """``top_k`` with the checkpoint of a model run: the one scoring path of batch, sharded and cold-start inference.

    Row r of ``inputs``/``seen`` is the user with dense id ``first_user + r`` (``new_users``: users the
    model has never seen, e.g. a cold-start history); columns are today's dense item ids. When the
    checkpoint keeps the keys it was trained on and ``item_keys`` (today's, by dense id; ``user_keys``
    likewise) are given, items and users are matched by key, so a restage that added items or moved
    ids still serves: items the model never saw are not recommended. Returned ``item`` ids are today's.
    Raises ``ValueError`` when the run has no checkpoint, cannot be matched to today's items, or is an
    ID-based model asked for users it was not trained on.
    """
    from diffrec_core.models.base import Batch
    from diffrec_core.training import checkpoint_keys, load_checkpoint, select_device

    if not run.checkpoint_path:
        raise ValueError(f"model run {run.run_id!r} has no checkpoint (status {run.status})")
    dev = select_device(device)
    model, meta = load_checkpoint(run.checkpoint_path, dev)
    trained = checkpoint_keys(run.checkpoint_path) if item_keys is not None else None
    rows = np.arange(first_user, first_user + inputs.shape[0])
    if trained is None:  # a checkpoint without keys serves only the dense ids it was trained on
        if inputs.shape[1] != meta["n_items"]:
            raise ValueError(f"model run {run.run_id!r} was trained on {meta['n_items']} items but the warehouse now has {inputs.shape[1]}: retrain")
        to_today, model_users = None, rows
    else:
        trained_users, trained_items = trained
        to_model = _key_map(trained_items, item_keys)  # today's item id -> the model's column (-1: unknown)
        to_today = np.full(meta["n_items"], -1, dtype=np.int64)
        to_today[to_model[to_model >= 0]] = np.flatnonzero(to_model >= 0)
        inputs, seen = (_to_columns(m, to_model, meta["n_items"]) if m is not None else None for m in (inputs, seen))
        model_users = rows if user_keys is None else _key_map(trained_users, np.asarray(user_keys)[rows])
    if model.needs_user_ids and new_users:
        raise ValueError(f"model run {run.run_id!r} ({run.model}) scores only the users it was trained on; a new user's "
                         "history needs a model that reads it (e.g. diffrec, multivae, ease)")
    scored = np.diff(inputs.indptr) > 0  # the rows top_k scores: users with an input
    if model.needs_user_ids and ((model_users[scored] < 0) | (model_users[scored] >= meta["n_users"])).any():
        raise ValueError(f"model run {run.run_id!r} ({run.model}) scores the {meta['n_users']} users it was trained on "
                         f"but was asked for users it has not seen: retrain")
    user_ids = torch.as_tensor(np.maximum(model_users, 0), dtype=torch.long, device=dev)

    def scorer(x: torch.Tensor, batch_rows: torch.Tensor | None = None) -> torch.Tensor:
        users = torch.zeros(x.shape[0], dtype=torch.long, device=x.device) if batch_rows is None else user_ids[batch_rows]
        return model.score(Batch(users=users, x=x))

    recs = top_k(scorer, inputs, k, seen=seen, batch_size=batch_size, device=dev, pass_users=model.needs_user_ids)
    if to_today is not None:
        today = to_today[recs["item"]]
        keep = today >= 0  # a column the warehouse no longer holds (never after an append-only restage)
        recs = {**{name: values[keep] for name, values in recs.items()}, "item": today[keep]}
    return recs


def _key_map(trained: np.ndarray, today: np.ndarray) -> np.ndarray:
    """For each of ``today``'s keys, its index in ``trained`` (-1 where the model has none)."""
    import pandas as pd

    return pd.Index(np.asarray(trained).astype(str)).get_indexer(np.asarray(today).astype(str)).astype(np.int64)


def _to_columns(matrix: sp.csr_matrix, to_model: np.ndarray, n_columns: int) -> sp.csr_matrix:
    """``matrix`` with today's columns moved to the model's; columns the model never saw are dropped."""
    coo = matrix.tocoo()
    cols = to_model[coo.col]
    keep = cols >= 0
    return sp.csr_matrix((coo.data[keep], (coo.row[keep], cols[keep])), shape=(matrix.shape[0], n_columns))
