"""Training, evaluation, batch inference and publishing tasks."""

from __future__ import annotations

from prefect import task

from diffrec_core import runs
from diffrec_core.config import InferenceConfig, RunConfig


@task(name="train")
def train(warehouse_path: str, dataset: str, setting: str, run: RunConfig, artifacts_dir: str, embedding_run: str | None = None) -> str:
    """Train and checkpoint a model (L-variants: with the clusters of ``embedding_run``); returns its run id."""
    return runs.train_run(warehouse_path, dataset, setting, run, artifacts_dir, embedding_run=embedding_run)


@task(name="evaluate")
def evaluate(warehouse_path: str, run_id: str) -> dict:
    """Validation and test metrics (paper protocol)."""
    return runs.evaluate_run(warehouse_path, run_id)


@task(name="recommend")
def recommend(warehouse_path: str, run_id: str, inference: InferenceConfig) -> int:
    """Top-K per user (production protocol), written unpublished."""
    return runs.recommend_run(warehouse_path, run_id, inference)


@task(name="publish")
def publish(warehouse_path: str, run_id: str) -> None:
    """Switch ``latest_recommendations`` to the run in one transaction."""
    runs.publish_run(warehouse_path, run_id)
