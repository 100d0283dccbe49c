"""Embed and cluster tasks: the item embeddings and k-means clusters of the L-variants."""

from __future__ import annotations

import dataclasses

from prefect import task

from diffrec_core import embeddings
from diffrec_core.config import RunConfig


@task(name="embed")
def embed(warehouse_path: str, dataset: str, setting: str, run: RunConfig) -> dict:
    """LightGCN item embeddings of the split's train matrix; reused while the split's fingerprint and config are unchanged."""
    return dataclasses.asdict(embeddings.embed(warehouse_path, dataset, setting, run))


@task(name="cluster")
def cluster(warehouse_path: str, embedding_run: str, dataset: str, n_clusters: list[int], seed: int, vectors: str = "raw") -> dict:
    """Seeded FAISS k-means of the stored embeddings for each C; returns {C: cluster sizes}."""
    return embeddings.cluster(warehouse_path, embedding_run, dataset, n_clusters, seed, vectors)
