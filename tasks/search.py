"""Hyperparameter-search tasks."""

from __future__ import annotations

from prefect import task

from diffrec_core import search, warehouse
from diffrec_core.config import RunConfig


@task(name="pending-trials")
def pending_trials(grid_path: str, warehouse_path: str, dataset: str, setting: str, sample: int | None, seed: int) -> list[RunConfig]:
    """The grid's trials (optionally a seeded sample) that have no finished run yet."""
    trials = search.sample_trials(search.load_grid(grid_path, dataset).trials(), sample, seed)
    with warehouse.connect(warehouse_path, read_only=True) as con:
        return search.pending(trials, search.finished_trials(con, dataset, setting))


@task(name="select-best")
def select_best(grid_path: str, warehouse_path: str, dataset: str, setting: str, sample: int | None, seed: int) -> str:
    """Run id of the grid's best finished trial by validation Recall@20."""
    trials = search.sample_trials(search.load_grid(grid_path, dataset).trials(), sample, seed)
    with warehouse.connect(warehouse_path, read_only=True) as con:
        return search.best_trial(trials, search.finished_trials(con, dataset, setting))[0]
