"""Ingestion, staging and split tasks."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from prefect import task

from diffrec_core import ingest, splits, warehouse
from diffrec_core.ingest.synthetic import SyntheticConfig


@task(name="ingest-file")
def ingest_file(warehouse_path: str, path: str, dataset: str, fmt: str | None = None, columns: dict[str, str] | None = None) -> dict:
    """Load one raw file into ``raw_interactions`` (idempotent by content hash)."""
    with warehouse.connect(warehouse_path) as con:
        return _plain(ingest.ingest_file(con, Path(path), dataset, fmt=fmt, columns=columns))


@task(name="ingest-builtin")
def ingest_builtin(warehouse_path: str, dataset: str, config: SyntheticConfig) -> dict:
    """Generate the built-in synthetic log and load it (idempotent by config hash)."""
    with warehouse.connect(warehouse_path) as con:
        return _plain(ingest.ingest_synthetic(con, dataset, config))


@task(name="split")
def split(warehouse_path: str, dataset: str, config: splits.SplitConfig) -> dict:
    """Restage the dataset and make the chronological split of one setting, in one transaction (a refused
    split leaves staging and splits as they were); returns the split's report."""
    with warehouse.connect(warehouse_path) as con:
        return _plain(splits.stage_and_split(con, dataset, config)[1])


def _plain(result) -> dict:
    """A report dataclass as JSON-safe values (task results stay small and serialisable)."""
    return json.loads(json.dumps(dataclasses.asdict(result), default=str))
