"""Embedding runs and item clusters in the warehouse (the embed → cluster steps of the L-variants).

``embed`` trains LightGCN on a split's train matrix and stores its item vectors, unless an
embedding run with the same id (same config, same train fingerprint) is already there;
``cluster`` runs seeded FAISS k-means over a stored run's vectors for C = 1..5 and stores the
assignments, again reusing what is there. ``item_clusters`` reads an assignment back for
building an L-variant.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from diffrec_core import clustering, interactions, warehouse
from diffrec_core.config import RunConfig, resolve_run_config

EMBEDDING_MODEL = "lightgcn"
CLUSTER_SWEEP = (1, 2, 3, 4, 5)  # the clusterings the pipeline keeps beside the run's own (paper Figure 7's C)


@dataclass(frozen=True)
class EmbeddingRun:
    embedding_run: str
    dataset: str
    setting: str
    train_fingerprint: str
    n_items: int
    dim: int
    reused: bool


def embedding_config(dataset: str, path: str | Path | None = None) -> RunConfig:
    """The LightGCN run config for ``dataset``: the file at ``path``, else the shipped one."""
    run = resolve_run_config(dataset, EMBEDDING_MODEL, path)
    if run.model.name != EMBEDDING_MODEL:
        raise ValueError(f"embedding config must be for model {EMBEDDING_MODEL!r}, got {run.model.name!r}")
    return run


def embed(warehouse_path: str | Path, dataset: str, setting: str, run: RunConfig) -> EmbeddingRun:
    """Train (or reuse) the embedding run of ``run`` on the (dataset, setting) train split."""
    with warehouse.connect(warehouse_path, read_only=True) as con:
        data = interactions.load_split(con, dataset, setting)
    fingerprint = clustering.train_fingerprint(data.train)
    run_id = clustering.embedding_run_id(run, fingerprint)
    with warehouse.connect(warehouse_path, read_only=True) as con:
        row = warehouse.run_sql(con, "embeddings/get_embedding_run", embedding_run=run_id).fetchone()
    if row is not None:
        return EmbeddingRun(run_id, dataset, setting, fingerprint, int(row[6]), int(row[7]), reused=True)
    vectors, summary = clustering.train_item_embeddings(data.train, data.valid, run)
    frame = pd.DataFrame({"item_id": np.arange(len(vectors), dtype=np.int64), "vector": list(vectors.astype(np.float32))})
    with warehouse.connect(warehouse_path) as con, warehouse.transaction(con):
        warehouse.run_sql(
            con, "embeddings/insert_embedding_run", embedding_run=run_id, dataset=dataset, setting=setting,
            model=run.model.name, config=json.dumps(run.model_dump(mode="json")), train_fingerprint=fingerprint,
            n_items=int(vectors.shape[0]), dim=int(vectors.shape[1]), metrics=json.dumps(summary),
            created_at=warehouse.utc_now(),
        )
        _insert_frame(con, "_item_embeddings_frame", frame, "embeddings/insert_item_embeddings", embedding_run=run_id, dataset=dataset)
    return EmbeddingRun(run_id, dataset, setting, fingerprint, int(vectors.shape[0]), int(vectors.shape[1]), reused=False)


def load_embeddings(con, embedding_run: str, dataset: str) -> np.ndarray:
    rows = warehouse.run_sql(con, "embeddings/item_embeddings", embedding_run=embedding_run, dataset=dataset).fetchall()
    if not rows:
        raise ValueError(f"no item embeddings for embedding run {embedding_run!r} of dataset {dataset!r}")
    return np.asarray([r[1] for r in rows], dtype=np.float32)


def cluster(warehouse_path: str | Path, embedding_run: str, dataset: str, n_clusters: list[int] | tuple[int, ...] = CLUSTER_SWEEP,
            seed: int = 2023, vectors: str = "raw") -> dict[int, list[int]]:
    """Seeded k-means of a stored run's vectors (transformed by ``vectors``) for each C, reusing a stored
    clustering made with the same seed and vectors; returns {C: cluster sizes}."""
    report: dict[int, list[int]] = {}
    with warehouse.connect(warehouse_path, read_only=True) as con:
        item_vectors = load_embeddings(con, embedding_run, dataset)
        existing = {c: _read_clusters(con, embedding_run, dataset, c, seed, vectors) for c in n_clusters}
    new = {}
    for c in n_clusters:
        labels = existing[c] if existing[c] is not None else clustering.kmeans(item_vectors, c, seed, vectors=vectors)
        if existing[c] is None:
            new[c] = labels
        report[c] = clustering.cluster_report(labels, c).sizes
    if new:
        with warehouse.connect(warehouse_path) as con, warehouse.transaction(con):
            for c, labels in new.items():
                warehouse.delete_where(con, "item_clusters", embedding_run=embedding_run, dataset=dataset, n_clusters=c)
                frame = pd.DataFrame({"item_id": np.arange(len(labels), dtype=np.int64), "cluster": labels})
                _insert_frame(con, "_item_clusters_frame", frame, "embeddings/insert_item_clusters",
                              embedding_run=embedding_run, dataset=dataset, n_clusters=c, seed=seed, vectors=vectors)
    return report


def item_clusters(con, embedding_run: str, dataset: str, n_clusters: int, seed: int, vectors: str = "raw") -> np.ndarray:
    """The stored (n_items,) cluster ids of one clustering; ValueError if it was never computed."""
    labels = _read_clusters(con, embedding_run, dataset, n_clusters, seed, vectors)
    if labels is None:
        raise ValueError(f"no item clusters for embedding run {embedding_run!r}, C={n_clusters}, seed={seed}, "
                         f"vectors={vectors}: run the cluster step first")
    return labels


def _read_clusters(con, embedding_run: str, dataset: str, n_clusters: int, seed: int, vectors: str) -> np.ndarray | None:
    """The stored clustering for C = n_clusters if it was made with ``seed`` and ``vectors``, else None."""
    rows = warehouse.run_sql(con, "embeddings/item_clusters", embedding_run=embedding_run, dataset=dataset,
                             n_clusters=n_clusters).fetchall()
    if not rows or int(rows[0][2]) != seed or rows[0][3] != vectors:
        return None
    return np.asarray([r[1] for r in rows], dtype=np.int64)


def _insert_frame(con, view: str, frame: pd.DataFrame, sql_name: str, **params) -> None:
    con.complete() if hasattr(con, "complete") else None
    con.register(view, frame)
    try:
        warehouse.run_sql(con, sql_name, **params)
    finally:
        con.unregister(view)


def clusters_for_presplit(
    splits_dir: str | Path,
    data: interactions.SplitData,
    clusters,
    *,
    item_emb: str | Path | None = None,
    cache_dir: str | Path | None = None,
) -> tuple[np.ndarray, dict]:
    """Item clusters for an L-variant on pre-split data (benchmarks), from a ``ClustersConfig``.

    The vectors come from ``item_emb`` when given, else by ``clusters.source``: "authors" reads
    ``<splits_dir>/item_emb.npy``; "lightgcn" trains our LightGCN on the split (config
    ``clusters.embedding_config`` or the shipped one), caching its vectors in
    ``<cache_dir>/<embedding run id>.npy`` so an unchanged split is embedded once.
    Returns ((n_items,) cluster ids, a description with the source, run id and cluster sizes).
    """
    splits_dir = Path(splits_dir)
    info: dict = {"source": clusters.source, "n_clusters": clusters.n_clusters, "seed": clusters.seed}
    if item_emb is not None:
        vectors = clustering.load_embedding_file(item_emb, data.n_items)
        info.update(source="file", embeddings=str(item_emb))
    elif clusters.source == "authors":
        path = splits_dir / "item_emb.npy"
        vectors = clustering.load_embedding_file(path, data.n_items)
        info["embeddings"] = str(path)
    else:
        run = embedding_config(splits_dir.resolve().name, clusters.embedding_config)
        run_id = clustering.embedding_run_id(run, clustering.train_fingerprint(data.train))
        cache = Path(cache_dir) / f"{run_id}.npy" if cache_dir is not None else None
        if cache is not None and cache.is_file():
            vectors = clustering.load_embedding_file(cache, data.n_items)
        else:
            vectors, summary = clustering.train_item_embeddings(data.train, data.valid, run)
            info["embedding_training"] = summary
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                tmp = cache.with_suffix(".tmp.npy")
                np.save(tmp, vectors)
                tmp.replace(cache)
        info.update(embedding_run=run_id, embeddings=str(cache) if cache is not None else None)
    labels = clustering.kmeans(vectors, clusters.n_clusters, clusters.seed, vectors=clusters.vectors)
    info["vectors"] = clusters.vectors
    info["sizes"] = clustering.cluster_report(labels, clusters.n_clusters).sizes
    return labels, info


def clusters_for(run: RunConfig):
    """The ``ClustersConfig`` of an L-variant run (None for a model without item clusters).

    The pipeline embeds with our LightGCN; the authors' embeddings exist only beside their
    pre-split data, so ``source: authors`` is refused here (use bench/accuracy.py).
    """
    from diffrec_core.models.registry import spec, validate_params

    if "item_clusters" not in spec(run.model.name).side:
        return None
    clusters = validate_params(run.model).clusters
    if clusters.source != "lightgcn":
        raise ValueError(f"model.params.clusters.source {clusters.source!r} works only on the authors' pre-split data "
                         "(bench/accuracy.py); the pipeline clusters our own LightGCN embeddings: use 'lightgcn'")
    return clusters


def cluster_counts(clusters) -> list[int]:
    """The numbers of clusters to make for a run with ``clusters``: the sweep's and the run's own."""
    return sorted({*CLUSTER_SWEEP, clusters.n_clusters})
