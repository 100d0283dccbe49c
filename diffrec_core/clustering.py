"""Item embeddings and their k-means clusters (the input of L-DiffRec, paper §3.5).

An *embedding run* is the item vectors of one LightGCN training on one train split. Its id is
derived from the LightGCN run config and the train split's fingerprint, so the same config on
an unchanged split is the same run and is reused, never retrained. Clusters are FAISS k-means
over those vectors, seeded: the same seed gives the same assignment.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:
    from diffrec_core.config import RunConfig


def train_fingerprint(train: sp.csr_matrix) -> str:
    """sha256 of a train matrix's shape, sparsity pattern and values (canonical CSR)."""
    m = train.tocsr(copy=True)
    m.sum_duplicates()
    m.sort_indices()
    h = hashlib.sha256()
    h.update(np.asarray(m.shape, dtype=np.int64).tobytes())
    h.update(np.asarray(m.indptr, dtype=np.int64).tobytes())
    h.update(np.asarray(m.indices, dtype=np.int64).tobytes())
    h.update(np.asarray(m.data, dtype=np.float32).tobytes())
    return h.hexdigest()


def embedding_run_id(run: "RunConfig", fingerprint: str) -> str:
    """``emb-<16 hex>``: a hash of the embedding model's run config and the train fingerprint."""
    payload = json.dumps({"run": run.model_dump(mode="json"), "train": fingerprint}, sort_keys=True)
    return "emb-" + hashlib.sha256(payload.encode()).hexdigest()[:16]


def train_item_embeddings(train: sp.csr_matrix, valid: sp.csr_matrix, run: "RunConfig") -> tuple[np.ndarray, dict]:
    """Train the run's model (LightGCN) on ``train`` with early stopping on ``valid``; return its item vectors.

    Returns ((n_items, d) float32 embeddings, a summary with the best epoch and validation metrics).
    """
    from diffrec_core.evaluation import Target
    from diffrec_core.models.registry import build_model
    from diffrec_core.training import fit

    model = build_model(run.model, train.shape[0], train.shape[1], seed=run.training.seed)
    if not hasattr(model, "item_embeddings"):
        raise ValueError(f"model {run.model.name!r} has no item embeddings to cluster; use lightgcn")
    result = fit(model, train, Target(valid, train), run.training)
    return model.item_embeddings(), {"best_epoch": result.best_epoch, "valid": result.best_valid}


Vectors = Literal["raw", "unit", "centred_unit"]
VECTORS: tuple[str, ...] = get_args(Vectors)


def prepare_vectors(embeddings: np.ndarray, vectors: str = "raw") -> np.ndarray:
    """What k-means clusters: ``raw`` item vectors (Euclidean k-means, the authors'); ``unit``: each scaled
    to length 1 (clusters by direction, not by the norm, which in LightGCN mostly tracks popularity);
    ``centred_unit``: the mean item vector subtracted first, then scaled to length 1."""
    if vectors not in VECTORS:
        raise ValueError(f"cluster vectors must be one of {', '.join(VECTORS)}, got {vectors!r}")
    if vectors == "raw":
        return np.ascontiguousarray(embeddings, dtype=np.float32)
    x = np.asarray(embeddings, dtype=np.float64)
    if vectors == "centred_unit":
        x = x - x.mean(axis=0)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError(f"{int((norms == 0).sum())} item vectors have length 0 and no direction; cluster the raw vectors")
    return np.ascontiguousarray(x / norms, dtype=np.float32)


def kmeans(embeddings: np.ndarray, n_clusters: int, seed: int, *, vectors: str = "raw", niter: int = 25, nredo: int = 5) -> np.ndarray:
    """FAISS k-means of the rows of ``embeddings`` (transformed by ``vectors``, see ``prepare_vectors``);
    returns (n_items,) int64 cluster ids in 0..C-1.

    Every item takes part in training (max_points_per_centroid covers all points, so FAISS does not
    subsample), the best of ``nredo`` seeded restarts is kept, and clusters are renumbered by
    decreasing size (ties: smallest item id first), so ids do not depend on FAISS's internal order.
    """
    import faiss

    x = np.asarray(embeddings)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"item embeddings must be a non-empty 2-d array, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("item embeddings contain NaN or infinite values")
    n = len(x)
    if not 1 <= n_clusters <= n:
        raise ValueError(f"n_clusters must be in [1, {n}] (the number of items), got {n_clusters}")
    x = prepare_vectors(x, vectors)  # before the C = 1 shortcut, so a bad transform is refused for every C
    if n_clusters == 1:
        return np.zeros(n, dtype=np.int64)
    km = faiss.Kmeans(
        x.shape[1], n_clusters, niter=niter, nredo=nredo, seed=int(seed) % (2**31),
        max_points_per_centroid=n, min_points_per_centroid=1, verbose=False,
    )
    km.train(x)
    _, labels = km.index.search(x, 1)
    return canonical_labels(labels.ravel().astype(np.int64), n_clusters)


def canonical_labels(labels: np.ndarray, n_clusters: int) -> np.ndarray:
    """Renumber cluster ids by decreasing size, ties by the smallest member id; refuse an empty cluster."""
    sizes = np.bincount(labels, minlength=n_clusters)
    if (sizes == 0).any():
        raise ValueError(f"k-means left {int((sizes == 0).sum())} of {n_clusters} clusters empty; use fewer clusters")
    first = np.array([np.flatnonzero(labels == c)[0] for c in range(n_clusters)])
    order = np.lexsort((first, -sizes))
    remap = np.empty(n_clusters, dtype=np.int64)
    remap[order] = np.arange(n_clusters)
    return remap[labels]


@dataclass(frozen=True)
class ClusterReport:
    n_clusters: int
    sizes: list[int]

    def __str__(self) -> str:
        total = sum(self.sizes)
        parts = ", ".join(f"{c}: {s} ({s / total:.0%})" for c, s in enumerate(self.sizes))
        return f"{self.n_clusters} clusters over {total} items: {parts}"


def cluster_report(labels: np.ndarray, n_clusters: int) -> ClusterReport:
    return ClusterReport(n_clusters, np.bincount(labels, minlength=n_clusters).astype(int).tolist())


def check_assignment(labels: np.ndarray, n_items: int, n_clusters: int | None = None) -> np.ndarray:
    """Validate an item -> cluster array: one non-negative id per item, every cluster used."""
    labels = np.asarray(labels)
    if labels.shape != (n_items,):
        raise ValueError(f"item clusters must have one id per item ({n_items}), got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"item clusters must be integers, got {labels.dtype}")
    k = int(labels.max()) + 1 if n_clusters is None else n_clusters
    if labels.min() < 0 or labels.max() >= k:
        raise ValueError(f"item cluster ids must be in [0, {k}), got [{labels.min()}, {labels.max()}]")
    sizes = np.bincount(labels, minlength=k)
    if (sizes == 0).any():
        raise ValueError(f"item clusters {np.flatnonzero(sizes == 0).tolist()} have no item")
    return labels.astype(np.int64)


def load_embedding_file(path, n_items: int) -> np.ndarray:
    """(n_items, d) float32 vectors from a .npy file (no pickle), checked against the item count."""
    from pathlib import Path

    path = Path(path)
    try:
        emb = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read item embeddings ({str(exc).splitlines()[0]})") from None
    if emb.ndim != 2 or emb.shape[0] != n_items:
        raise ValueError(f"{path}: item embeddings must have shape ({n_items}, d), got {emb.shape}")
    return emb.astype(np.float32)
