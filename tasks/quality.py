"""Data-quality gate tasks: each runs one Great Expectations suite and fails the flow on a failed expectation."""

from __future__ import annotations

from prefect import task

from diffrec_core import quality
from diffrec_core.quality import QualityConfig
from diffrec_core.splits import SplitConfig


def _summary(result: quality.QualityResult) -> dict:
    return {"suite": result.suite, "success": result.success, "rows": result.rows,
            "expectations": result.evaluated, "seconds": round(result.seconds, 3), "message": result.message()}


def prewarm(config: QualityConfig) -> None:
    """Start loading Great Expectations in the background when the gates are on (not a task: no state to track)."""
    if config.enabled:
        quality.prewarm()


@task(name="validate-raw")
def validate_raw(warehouse_path: str, dataset: str, config: QualityConfig) -> dict:
    """raw_interactions suite on the dataset's raw rows; raises ``QualityError`` on a failure."""
    return _summary(quality.validate(warehouse_path, "raw_interactions", config=config, raise_on_failure=True, dataset=dataset))


@task(name="validate-splits")
def validate_splits(warehouse_path: str, dataset: str, split: SplitConfig, config: QualityConfig) -> dict:
    """split_interactions suite on one split setting, against its configured ratios."""
    return _summary(quality.validate(warehouse_path, "split_interactions", config=config, raise_on_failure=True,
                                     dataset=dataset, setting=split.setting, ratios=split.ratios))


@task(name="validate-embeddings")
def validate_embeddings(warehouse_path: str, dataset: str, embedding_run: str, config: QualityConfig) -> dict:
    """item_embeddings suite on one embedding run's item vectors."""
    return _summary(quality.validate(warehouse_path, "item_embeddings", config=config, raise_on_failure=True,
                                     dataset=dataset, embedding_run=embedding_run))


@task(name="validate-clusters")
def validate_clusters(warehouse_path: str, dataset: str, embedding_run: str, n_clusters: int, config: QualityConfig) -> dict:
    """item_clusters suite on one embedding run's k-means clustering into ``n_clusters``."""
    return _summary(quality.validate(warehouse_path, "item_clusters", config=config, raise_on_failure=True,
                                     dataset=dataset, embedding_run=embedding_run, n_clusters=n_clusters))


@task(name="validate-recommendations")
def validate_recommendations(warehouse_path: str, run_id: str, k: int, config: QualityConfig) -> dict:
    """recommendations suite on a run's unpublished top-K; a failure marks the run rejected and raises."""
    return _summary(quality.gate_recommendations(warehouse_path, run_id, k, config))


@task(name="quality-report")
def report(warehouse_path: str, out_dir: str, config: QualityConfig) -> str:
    """Every suite on everything in the warehouse; Data Docs and summary.html in ``out_dir``. Returns the summary path."""
    return str(quality.build_report(warehouse_path, out_dir, config).summary)
