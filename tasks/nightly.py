"""Nightly tasks: landing files, fingerprints, model reuse, the regression gate, sharded inference, reports.

Steps that touch the warehouse file retry (another process may hold DuckDB's lock for longer
than the open waits); a deterministic error (bad data, a missing file) fails at once. Reuse of a trained model is decided by the warehouse alone
(``find_reusable``: same config, same data fingerprint, checkpoint still readable), not by
Prefect's result cache, which would hand back a run whose checkpoint is gone.
"""

from __future__ import annotations

import re

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from diffrec_core import nightly, runs, sharding
from diffrec_core.config import InferenceConfig, RunConfig
from diffrec_core.models import registry

DETERMINISTIC = (ValueError, KeyError, TypeError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)
"""Failures that a second try repeats: bad data or config (``IngestError`` and ``QualityError`` are ValueErrors), a missing path."""


def worth_retrying(task, task_run, state) -> bool:
    """Prefect's ``retry_condition_fn``: retry what may pass later (DuckDB's lock held past the open's wait,
    a lost worker), not a deterministic error."""
    return not isinstance(state.data, DETERMINISTIC)


TRANSIENT = {"retries": 2, "retry_delay_seconds": 3, "retry_condition_fn": worth_retrying}


@task(name="landing-files", **TRANSIENT)
def landing_files(landing: str, patterns: list[str], settle_seconds: float, warehouse_path: str, dataset: str) -> list[str]:
    """The files ready in the landing folder (ingest skips those already loaded); fresh ones wait for the next run."""
    found = nightly.landing_files(landing, tuple(patterns), settle_seconds, warehouse_path, dataset)
    if found.waiting:
        get_run_logger().warning(f"{len(found.waiting)} landing files modified less than {settle_seconds:g} s ago are left "
                                 f"for the next run: {', '.join(found.waiting[:5])}")
    return found.ready


@task(name="resolve-run-config")
def resolve_run(dataset: str, model: str, config_file: str | None) -> RunConfig:
    """The run config in ``config_file``, else the shipped one for (dataset, model), validated."""
    return registry.resolve_run(dataset, model, config_file)


@task(name="data-fingerprint", **TRANSIENT)
def fingerprint(warehouse_path: str, dataset: str, setting: str) -> str:
    """Hash of the train split and the staged id space."""
    return nightly.data_fingerprint(warehouse_path, dataset, setting)


@task(name="find-reusable-model", **TRANSIENT)
def find_reusable(warehouse_path: str, dataset: str, setting: str, run: RunConfig, data_fingerprint: str,
                  max_age_hours: float) -> str | None:
    """A run of the same config on the same data fingerprint, young enough to serve again."""
    return nightly.find_reusable_run(warehouse_path, dataset, setting, run, data_fingerprint, max_age_hours)


@task(name="train")
def train(warehouse_path: str, dataset: str, setting: str, run: RunConfig, artifacts_dir: str,
          embedding_run: str | None = None) -> str:
    """Train, checkpoint and record a model with its data fingerprint and input batches; returns its run id."""
    return runs.train_run(warehouse_path, dataset, setting, run, artifacts_dir, embedding_run=embedding_run)


@task(name="evaluate-run", **TRANSIENT)
def evaluate(warehouse_path: str, run_id: str) -> dict:
    """Validation and test metrics (stored ones for a run evaluated before)."""
    return nightly.ensure_evaluated(warehouse_path, run_id)


@task(name="regression-gate", **TRANSIENT)
def gate(warehouse_path: str, run_id: str, tolerance: float) -> dict:
    """Whether the run may replace the published one."""
    return nightly.regression_gate(warehouse_path, run_id, tolerance).as_dict()


@task(name="recommendations-current", **TRANSIENT)
def recommendations_current(warehouse_path: str, run_id: str) -> bool:
    """True when the run is published and its recommendations already used every batch."""
    return nightly.recommendations_current(warehouse_path, run_id)


@task(name="plan-shards", **TRANSIENT)
def plan_shards(warehouse_path: str, run_id: str, n_shards: int) -> list[tuple[int, int]]:
    """User-id ranges, one per shard."""
    return sharding.shard_ranges(warehouse_path, run_id, n_shards)


@task(name="score-shard", **TRANSIENT)
def score_shard(warehouse_path: str, run_id: str, user_range: tuple[int, int], out_dir: str,
                inference: InferenceConfig) -> str:
    """Top-K for one user range, written to Parquet; returns the file."""
    start, stop = user_range
    return sharding.score_shard(warehouse_path, run_id, start, stop, out_dir, inference)


@task(name="load-shards", **TRANSIENT)
def load_shards(warehouse_path: str, run_id: str, paths: list[str]) -> int:
    """The single writer: load the shard files as the run's (unpublished) recommendations."""
    return sharding.load_shards(warehouse_path, run_id, paths)


def _artifact_key(dataset: str) -> str:
    return "nightly-" + (re.sub(r"[^a-z0-9-]+", "-", dataset.lower()).strip("-") or "dataset")


@task(name="nightly-report", **TRANSIENT)
def report(warehouse_path: str, dataset: str, run_id: str, previous_run_id: str | None, gate_result: dict,
           reports: list[str]) -> str:
    """A markdown artifact: metrics against the previous published run, the gate, report links."""
    markdown = nightly.metrics_markdown(warehouse_path, run_id, previous_run_id, gate_result, reports)
    create_markdown_artifact(key=_artifact_key(dataset), markdown=markdown,
                             description=f"nightly metrics for dataset {dataset}")
    return markdown
