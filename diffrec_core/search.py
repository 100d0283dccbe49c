"""Hyperparameter grids: a YAML file of dotted paths into a run config, expanded to trials.

    model: diffrec
    base: ml-1m_clean            # optional: configs/<base>/<model>.yaml is the starting point
    grid:
      training.lr: [0.0001, 0.001]
      model.params.diffusion.steps: [5, 40]

Trials are the cartesian product, in file order; each is a validated ``RunConfig``.
Selection uses validation metrics only.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from diffrec_core.config import RunConfig, _first_error, read_yaml
from diffrec_core.models.registry import resolve_config, validate_params


GRID_KEYS = ("model", "base", "grid")


@dataclass(frozen=True)
class Grid:
    model: str
    base: RunConfig
    axes: dict[str, list[Any]]

    def trials(self) -> list[RunConfig]:
        """Every valid combination (combinations a validator refuses, e.g. noise_min >= noise_max, are left out)."""
        return [trial for _, trial, _ in self._expansion if trial is not None]

    @cached_property
    def _expansion(self) -> list[tuple[tuple[int, ...], RunConfig | None, str | None]]:
        """(value indices, trial or None, error or None) for every combination, in file order;
        validated once, for ``check`` and ``trials`` both."""
        keys = list(self.axes)
        out = []
        for indices in itertools.product(*(range(len(self.axes[k])) for k in keys)):
            try:
                trial = apply_overrides(self.base, {k: self.axes[k][i] for k, i in zip(keys, indices)})
                validate_params(trial.model, strict=True)
            except ValueError as exc:
                out.append((indices, None, str(exc)))
                continue
            out.append((indices, trial, None))
        return out

    def check(self) -> None:
        """ValueError naming the first value of an axis that no valid combination uses (a typo, a
        wrong type or an out-of-range value would otherwise drop out of the search unseen)."""
        keys = list(self.axes)
        used = [set() for _ in keys]
        first_error: dict[tuple[int, int], str] = {}
        for indices, trial, error in self._expansion:
            for axis, i in enumerate(indices):
                if trial is not None:
                    used[axis].add(i)
                else:
                    first_error.setdefault((axis, i), error)
        for axis, key in enumerate(keys):
            for i, value in enumerate(self.axes[key]):
                if i not in used[axis]:
                    raise ValueError(f"grid.{key} value {value!r} is in no valid configuration: {first_error[(axis, i)]}")


def load_grid(path: str | Path, dataset: str | None = None) -> Grid:
    """Read and validate a grid file: its keys, its model, its base, and that every value of every
    axis is in at least one valid trial (the error names the file, the key and the value)."""
    from diffrec_core.config import config_folders
    from diffrec_core.models.registry import spec

    path = Path(path)
    raw = read_yaml(path, "grid")
    if not isinstance(raw, dict) or "model" not in raw or not isinstance(raw.get("grid"), dict) or not raw["grid"]:
        raise ValueError(f"{path}: a grid file needs 'model' and a non-empty 'grid' mapping")
    unknown = [str(k) for k in raw if k not in GRID_KEYS]
    if unknown:
        raise ValueError(f"{path}: unknown key {unknown[0]!r} (a grid file has {', '.join(GRID_KEYS)})")
    for name in ("model", "base"):
        if name in raw and not isinstance(raw[name], str):
            raise ValueError(f"{path}: {name} must be a name, not {raw[name]!r}")
    try:
        spec(raw["model"])
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    if raw.get("base") is not None and raw["base"] not in config_folders():
        raise ValueError(f"{path}: base {raw['base']!r} has no shipped configs; known: {', '.join(config_folders())}")
    for key, values in raw["grid"].items():
        if not isinstance(key, str):
            raise ValueError(f"{path}: grid key {key!r} must be a dotted path such as training.lr")
        if not isinstance(values, list) or not values:
            raise ValueError(f"{path}: grid.{key} must be a non-empty list")
    base = resolve_config(raw.get("base") or dataset or "default", raw["model"])
    if base.model.name != raw["model"]:
        raise ValueError(f"{path}: base config is for model {base.model.name!r}, not {raw['model']!r}")
    grid = Grid(raw["model"], base, dict(raw["grid"]))
    try:
        grid.check()
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return grid


def apply_overrides(run: RunConfig, overrides: dict[str, Any]) -> RunConfig:
    """``run`` with dotted-path values replaced, re-validated (ValueError names the path)."""
    data = copy.deepcopy(run.model_dump(mode="json"))
    for dotted, value in overrides.items():
        node = data
        parts = dotted.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"grid path {dotted!r} does not lead into a mapping")
        node[parts[-1]] = value
    try:
        return RunConfig.model_validate(data, strict=True)
    except Exception as exc:  # pydantic.ValidationError
        raise ValueError(f"grid values {overrides}: {_first_error(exc)}") from None


def config_key(run: RunConfig) -> str:
    """Stable identity of a trial: sha256 of its canonical JSON."""
    return hashlib.sha256(json.dumps(run.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:16]


def finished_trials(con, dataset: str, setting: str, fingerprint: str) -> dict[str, tuple[str, float]]:
    """{config_key: (run_id, validation Recall@20)} of the trained runs of (dataset, setting) on the data ``fingerprint``."""
    from diffrec_core.warehouse import run_sql

    out: dict[str, tuple[str, float]] = {}
    for run_id, config, metrics in run_sql(con, "outputs/finished_runs", dataset=dataset, setting=setting, fingerprint=fingerprint).fetchall():
        try:
            key = config_key(RunConfig.model_validate(json.loads(config)))
        except ValueError:
            continue  # a run recorded under an older config schema is not a trial of this grid
        recall = json.loads(metrics or "{}").get("valid", {}).get("recall@20", float("-inf"))
        if key not in out or recall > out[key][1]:
            out[key] = (run_id, recall)
    return out


def pending(trials: list[RunConfig], finished: dict[str, tuple[str, float]]) -> list[RunConfig]:
    """The trials with no finished run yet."""
    return [t for t in trials if config_key(t) not in finished]


def best_trial(trials: list[RunConfig], finished: dict[str, tuple[str, float]]) -> tuple[str, float] | None:
    """(run_id, validation Recall@20) of the grid's best finished trial, None when none has finished;
    selection on validation only."""
    scored = [finished[config_key(t)] for t in trials if config_key(t) in finished]
    return max(scored, key=lambda pair: pair[1]) if scored else None


def sample_trials(trials: list[RunConfig], sample: int | None, seed: int) -> list[RunConfig]:
    """A seeded random subset of ``sample`` trials (all when ``sample`` is None or larger)."""
    import random

    if sample is None or sample >= len(trials):
        return trials
    return random.Random(seed).sample(trials, sample)
