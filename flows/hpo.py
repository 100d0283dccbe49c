"""Hyperparameter search: a YAML grid mapped over trials, selection by validation Recall@20 only."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

import flows  # noqa: F401  (environment defaults before Prefect starts)
from prefect import flow, unmapped
from prefect.task_runners import ThreadPoolTaskRunner

from tasks import model, nightly, search


class HpoParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    warehouse: str = "warehouse.duckdb"
    artifacts_dir: str = "artifacts"
    dataset: str = "builtin"
    setting: str = "clean"
    grid: str = Field(..., description="grid YAML file (see diffrec_core/search.py)")
    sample: PositiveInt | None = Field(None, description="seeded random subset of the grid's trials")
    seed: int = 0


class HpoResult(BaseModel):
    best_run_id: str
    trials_run: int
    failures: list[str] = Field(default_factory=list, description="the error of each trial that failed")
    metrics: dict


# One trial at a time by default: a trial already uses every core. Raise max_workers on bigger machines.
@flow(name="hpo", task_runner=ThreadPoolTaskRunner(max_workers=1))
def hpo(params: HpoParams) -> HpoResult:
    w, d, s = params.warehouse, params.dataset, params.setting
    fingerprint = nightly.fingerprint(w, d, s)
    todo = search.pending_trials(params.grid, w, d, s, params.sample, params.seed, fingerprint)
    runs = nightly.train.map(unmapped(w), unmapped(d), unmapped(s), todo, unmapped(params.artifacts_dir), unmapped(fingerprint))
    runs.wait()
    failed = [r for r in runs if r.state.is_failed()]
    best = search.select_best(params.grid, w, d, s, params.sample, params.seed, fingerprint)
    if best is None:  # no trial of the grid has trained: the first failure's error, if any
        if failed:
            failed[0].result()
        raise ValueError(f"{params.grid}: no finished trial of this grid to select from")
    metrics = model.evaluate(w, best)
    errors = [str(r.state.result(raise_on_failure=False)) for r in failed]
    return HpoResult(best_run_id=best, trials_run=len(todo) - len(failed), failures=errors, metrics=metrics)
