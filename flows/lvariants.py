"""Wiring shared by the flows: the embed → cluster steps an L-variant needs before training."""

from __future__ import annotations

from diffrec_core import embeddings as core_embeddings
from diffrec_core.config import RunConfig
from diffrec_core.quality import QualityConfig
from tasks import embeddings, quality


def embed_and_cluster(warehouse: str, dataset: str, setting: str, run: RunConfig, checks_config: QualityConfig) -> tuple[str | None, list]:
    """For an L-variant: LightGCN embeddings and k-means clusters (C = 1…5 and the run's C), both reused
    while the train split is unchanged, with their quality gates. Returns (embedding run id, gate results);
    (None, []) for models without clusters."""
    clusters = core_embeddings.clusters_for(run)
    if clusters is None:
        return None, []
    emb = embeddings.embed(warehouse, dataset, setting, core_embeddings.embedding_config(dataset, clusters.embedding_config))
    embedding_run = emb["embedding_run"]
    embeddings.cluster(warehouse, embedding_run, dataset, core_embeddings.cluster_counts(clusters), clusters.seed,
                        clusters.vectors)
    checks = []
    if checks_config.enabled:
        checks.append(quality.validate_embeddings(warehouse, dataset, embedding_run, checks_config))
        checks.append(quality.validate_clusters(warehouse, dataset, embedding_run, clusters.n_clusters, checks_config))
    return embedding_run, checks
