"""Sparse user×item matrices from the warehouse's splits or the authors' ``.npy`` splits.

Matrices are ``scipy.sparse.csr_matrix`` float32 of shape (n_users, n_items), built
straight from coordinate arrays; the user×item matrix is never densified.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import scipy.sparse as sp

from diffrec_core.warehouse import run_sql

if TYPE_CHECKING:
    from diffrec_core.config import TimeWeightsConfig

NPY_SPLIT_FILES = ("train_list.npy", "valid_list.npy", "test_list.npy")


@dataclass(frozen=True)
class SplitData:
    """One split as binary sparse matrices.

    train, valid, test: csr float32 (n_users, n_items), 1.0 where the user interacted.
    valid/test hold only evaluable rows (user and item seen in train).
    user_keys: (n_users,) original user keys by dense id; item_keys: (n_items,) likewise.
    train_order: (train.nnz,) float64 sort key of each stored train entry, aligned with
        ``train.indices`` (the interaction's time, or its row position in the source file):
        the order the T-variants' time weights follow; None when the source has no order.
    """

    train: sp.csr_matrix
    valid: sp.csr_matrix
    test: sp.csr_matrix
    user_keys: np.ndarray
    item_keys: np.ndarray
    train_order: np.ndarray | None = None

    @property
    def n_users(self) -> int:
        return self.train.shape[0]

    @property
    def n_items(self) -> int:
        return self.train.shape[1]


def to_csr(user_ids: np.ndarray, item_ids: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """Binary csr float32 of ``shape`` with 1.0 at each (user, item); duplicates count once."""
    data = np.ones(len(user_ids), dtype=np.float32)
    matrix = sp.csr_matrix(
        (data, (np.asarray(user_ids, dtype=np.int64), np.asarray(item_ids, dtype=np.int64))),
        shape=shape,
        dtype=np.float32,
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def to_csr_with_order(
    user_ids: np.ndarray, item_ids: np.ndarray, order: np.ndarray, shape: tuple[int, int]
) -> tuple[sp.csr_matrix, np.ndarray]:
    """Binary csr float32 of ``shape`` and each stored entry's ``order`` key, aligned with its ``indices``.

    A repeated (user, item) keeps the key of its first occurrence. Returns (matrix, order (nnz,) float64).
    """
    users = np.asarray(user_ids, dtype=np.int64)
    items = np.asarray(item_ids, dtype=np.int64)
    codes = users * shape[1] + items
    # np.unique sorts by (user, item): the canonical CSR order of the stored entries.
    _, first = np.unique(codes, return_index=True)
    matrix = to_csr(users[first], items[first], shape)
    return matrix, np.asarray(order, dtype=np.float64)[first]


def time_weights(train: sp.csr_matrix, order: np.ndarray, w_min: float, w_max: float = 1.0) -> sp.csr_matrix:
    """Per-user time weights (T-DiffRec, paper §3.6) with the sparsity pattern of ``train``.

    Each user's M train interactions, sorted by ``order`` (ties: lower item id first), get
    w_m = w_min + (m - 1) / (M - 1) * (w_max - w_min) for m = 1..M; a user with a single
    interaction gets w_max.

    Args:
        train: (n_users, n_items) csr in canonical form (sorted indices, no duplicates).
        order: (train.nnz,) sort key of each stored entry, aligned with ``train.indices``.
    Returns:
        csr float32 (n_users, n_items) holding the weights.
    """
    if not 0.0 <= w_min <= w_max:
        raise ValueError(f"time weights need 0 <= w_min <= w_max, got w_min={w_min}, w_max={w_max}")
    order = np.asarray(order, dtype=np.float64)
    if order.shape != (train.nnz,):
        raise ValueError(f"order must have one key per stored train entry ({train.nnz}), got shape {order.shape}")
    counts = np.diff(train.indptr)
    rows = np.repeat(np.arange(train.shape[0], dtype=np.int64), counts)
    ranked = np.lexsort((train.indices, order, rows))  # by user, then order, then item id
    rank = np.empty(train.nnz, dtype=np.float64)
    rank[ranked] = np.arange(train.nnz) - train.indptr[rows[ranked]]  # m - 1
    m_total = counts[rows].astype(np.float64)
    weights = np.where(
        m_total > 1, w_min + rank / np.maximum(m_total - 1.0, 1.0) * (w_max - w_min), w_max
    ).astype(np.float32)
    return sp.csr_matrix((weights, train.indices.copy(), train.indptr.copy()), shape=train.shape)


def model_input(train: sp.csr_matrix, order: np.ndarray | None, weights: "TimeWeightsConfig | None") -> sp.csr_matrix:
    """The model's input matrix: ``train`` itself, or its time weights when ``weights`` is set.

    Raises ``ValueError`` when time weights are asked for but ``order`` is None.
    """
    if weights is None:
        return train
    if order is None:
        raise ValueError("time weights need each train interaction's time or position, and this split has none")
    return time_weights(train, order, weights.w_min, weights.w_max)


def load_keys(con: duckdb.DuckDBPyConnection, dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """(user_keys, item_keys) of a staged dataset, indexed by dense id.

    Raises ``ValueError`` if the dataset is not staged.
    """
    users = run_sql(con, "staging/user_keys", dataset=dataset).fetchnumpy()
    items = run_sql(con, "staging/item_keys", dataset=dataset).fetchnumpy()
    if len(users["user_id"]) == 0 or len(items["item_id"]) == 0:
        raise ValueError(f"dataset {dataset!r} is not staged (no users/items): run 'diffrec split' first")
    for name, ids in (("user_id", users["user_id"]), ("item_id", items["item_id"])):
        if not np.array_equal(np.asarray(ids), np.arange(len(ids))):
            raise ValueError(f"dataset {dataset!r}: {name}s are not dense from 0: run 'diffrec split' again")
    return np.asarray(users["user_key"], dtype=object), np.asarray(items["item_key"], dtype=object)


def load_split(con: duckdb.DuckDBPyConnection, dataset: str, setting: str = "clean") -> SplitData:
    """The ``(dataset, setting)`` split as ``SplitData`` over all staged users and items.

    Raises ``ValueError`` if the dataset is not staged or the split has no train rows.
    """
    user_keys, item_keys = load_keys(con, dataset)
    rows = run_sql(con, "splits/load_split", dataset=dataset, setting=setting).fetchnumpy()
    part = np.asarray(rows["part"])
    users = np.asarray(rows["user_id"])
    items = np.asarray(rows["item_id"])
    if not np.any(part == 0):
        raise ValueError(f"split {setting!r} of dataset {dataset!r} has no train rows: make it with 'diffrec split' first")
    shape = (len(user_keys), len(item_keys))
    is_train = part == 0
    train, order = to_csr_with_order(users[is_train], items[is_train], np.asarray(rows["t"])[is_train], shape)
    valid, test = (to_csr(users[part == p], items[part == p], shape) for p in (1, 2))
    return SplitData(train, valid, test, user_keys, item_keys, train_order=order)


def load_history(
    con: duckdb.DuckDBPyConnection, dataset: str, min_rating: float | None = 4.0
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Every staged interaction of ``dataset`` kept by the rating filter, for production inference.

    Returns (history csr float32 (n_users, n_items), user_keys, item_keys). Rows with a null
    rating (implicit feedback) are always kept; ``min_rating=None`` keeps every row.
    """
    user_keys, item_keys = load_keys(con, dataset)
    rows = run_sql(con, "staging/history", dataset=dataset, min_rating=min_rating).fetchnumpy()
    history = to_csr(np.asarray(rows["user_id"]), np.asarray(rows["item_id"]), (len(user_keys), len(item_keys)))
    return history, user_keys, item_keys


def load_history_order(
    con: duckdb.DuckDBPyConnection, dataset: str, min_rating: float | None = 4.0
) -> tuple[sp.csr_matrix, np.ndarray]:
    """``load_history``'s matrix with each stored entry's time (epoch microseconds), aligned with its indices."""
    user_keys, item_keys = load_keys(con, dataset)
    rows = run_sql(con, "staging/history", dataset=dataset, min_rating=min_rating).fetchnumpy()
    return to_csr_with_order(
        np.asarray(rows["user_id"]), np.asarray(rows["item_id"]), np.asarray(rows["t"]), (len(user_keys), len(item_keys))
    )


def _read_pairs(path: Path) -> np.ndarray:
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    try:
        pairs = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        message = " ".join(str(error).split())
        raise ValueError(f"{path}: not a readable .npy array ({message})") from None
    if pairs.dtype != np.int64:
        raise ValueError(f"{path}: expected dtype int64, got {pairs.dtype}")
    if pairs.ndim != 2 or pairs.shape[1] != 2:
        raise ValueError(f"{path}: expected shape (n, 2) of [user, item] rows, got {pairs.shape}")
    if pairs.size and pairs.min() < 0:
        raise ValueError(f"{path}: ids must be non-negative, found {int(pairs.min())}")
    return pairs


def load_npy_splits(directory: str | Path) -> SplitData:
    """The authors' ``train_list.npy`` / ``valid_list.npy`` / ``test_list.npy`` as ``SplitData``.

    Each file: int64 (n, 2) rows of [user, item]. n_users / n_items = max id + 1 over the
    three files; keys are the ids as strings; ``train_order`` is each train row's position in
    ``train_list.npy`` (the authors' files list a user's rows in interaction order). Raises ``ValueError`` (one line, naming the
    file) for a missing file, wrong dtype or shape, negative ids, or rows of one split that
    also appear in another.
    """
    directory = Path(directory)
    paths = [directory / name for name in NPY_SPLIT_FILES]
    parts = [_read_pairs(path) for path in paths]
    if len(parts[0]) == 0:
        raise ValueError(f"{paths[0]}: no train rows")
    n_users = int(max(int(p[:, 0].max()) for p in parts if len(p))) + 1
    n_items = int(max(int(p[:, 1].max()) for p in parts if len(p))) + 1
    codes = [np.unique(p[:, 0] * n_items + p[:, 1]) for p in parts]
    for i in range(3):
        for j in range(i + 1, 3):
            overlap = np.intersect1d(codes[i], codes[j], assume_unique=True)
            if len(overlap):
                user, item = divmod(int(overlap[0]), n_items)
                raise ValueError(
                    f"{paths[j]}: {len(overlap)} rows also in {paths[i].name} (first: user {user}, item {item})"
                )
    shape = (n_users, n_items)
    # Within a user, train_list.npy's row order is the interaction order: it keys the time weights.
    train, order = to_csr_with_order(parts[0][:, 0], parts[0][:, 1], np.arange(len(parts[0])), shape)
    valid, test = (to_csr(p[:, 0], p[:, 1], shape) for p in parts[1:])
    user_keys = np.array([str(i) for i in range(n_users)], dtype=object)
    item_keys = np.array([str(i) for i in range(n_items)], dtype=object)
    return SplitData(train, valid, test, user_keys, item_keys, train_order=order)
