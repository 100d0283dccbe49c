"""Hyperparameter-search tasks."""

from __future__ import annotations

from prefect import task

from diffrec_core import search, warehouse
from diffrec_core.config import RunConfig


def _trials(grid_path: str, warehouse_path: str, dataset: str, setting: str, sample: int | None, seed: int,
            fingerprint: str) -> tuple[list[RunConfig], dict[str, tuple[str, float]]]:
    """The grid's trials (optionally a seeded sample) and the finished ones on the data ``fingerprint``."""
    trials = search.sample_trials(search.load_grid(grid_path, dataset).trials(), sample, seed)
    with warehouse.connect(warehouse_path, read_only=True) as con:
        return trials, search.finished_trials(con, dataset, setting, fingerprint)


@task(name="pending-trials")
def pending_trials(grid_path: str, warehouse_path: str, dataset: str, setting: str, sample: int | None, seed: int,
                   fingerprint: str) -> list[RunConfig]:
    """The trials with no finished run on this train split yet."""
    return search.pending(*_trials(grid_path, warehouse_path, dataset, setting, sample, seed, fingerprint))


@task(name="select-best")
def select_best(grid_path: str, warehouse_path: str, dataset: str, setting: str, sample: int | None, seed: int,
                fingerprint: str) -> str | None:
    """Run id of the grid's best finished trial on this train split, by validation Recall@20; None when none has finished."""
    best = search.best_trial(*_trials(grid_path, warehouse_path, dataset, setting, sample, seed, fingerprint))
    return best[0] if best else None
