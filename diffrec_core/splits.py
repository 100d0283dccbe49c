"""Staging (dedupe, dense ids) and train/valid/test splits, run as ``sql/`` files.

``stage`` rebuilds ``users``, ``items`` and ``interactions`` of a dataset from
``raw_interactions``; ``make_split`` rebuilds one ``(dataset, setting)`` of
``split_interactions`` and its ``split_reports`` row. Each runs in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import duckdb
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, field_validator, model_validator

from diffrec_core.warehouse import run_sql, transaction

_STAGED_TABLES = ("interactions", "users", "items")


class SplitConfig(BaseModel):
    """How to split a staged dataset into train/valid/test."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    setting: str = Field(
        default="clean",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="Name of the split in split_interactions (clean, noisy-natural, temporal, ...).",
    )
    min_rating: float | None = Field(
        default=4.0,
        description="Drop rated rows below this rating (null ratings are always kept); None keeps every row.",
    )
    method: Literal["global", "per_user"] = Field(
        default="global",
        description="global: one chronological cut over all rows (tie-break ts, user_id, item_id); "
        "per_user: each user's rows in time order cut by the ratios (>= 3 rows: one in every split).",
    )
    ratios: tuple[PositiveFloat, PositiveFloat, PositiveFloat] = Field(
        default=(0.7, 0.1, 0.2), description="train, valid, test shares; positive, summing to 1."
    )

    @field_validator("ratios")
    @classmethod
    def _ratios_sum_to_one(cls, ratios: tuple[float, float, float]) -> tuple[float, float, float]:
        if abs(sum(ratios) - 1.0) > 1e-9:
            raise ValueError(f"split ratios must sum to 1, got {ratios} (sum {sum(ratios)})")
        return ratios

    @model_validator(mode="after")
    def _finite_min_rating(self) -> "SplitConfig":
        if self.min_rating is not None and self.min_rating != self.min_rating:
            raise ValueError("min_rating must be a number or None, got NaN")
        return self


@dataclass(frozen=True)
class StageReport:
    """Counts after staging a dataset."""

    dataset: str
    n_users: int
    n_items: int
    n_interactions: int
    n_raw: int

    @property
    def duplicates_dropped(self) -> int:
        return self.n_raw - self.n_interactions


@dataclass(frozen=True)
class SplitReport:
    """Counts of one split; *_excluded: held-out rows/users/items not in train (not evaluated)."""

    dataset: str
    setting: str
    method: str
    min_rating: float | None
    train_rows: int
    valid_rows: int
    test_rows: int
    valid_rows_excluded: int
    test_rows_excluded: int
    users_excluded: int
    items_excluded: int
    created_at: datetime


def stage(con: duckdb.DuckDBPyConnection, dataset: str) -> StageReport:
    """Rebuild ``users``, ``items`` and ``interactions`` of ``dataset`` from ``raw_interactions``.

    Duplicates keep the user's latest interaction with an item (ties: later batch, then
    later line). Ids are dense from 0; integer-like keys sort numerically. One transaction.
    Raises ``ValueError`` if the dataset has no raw interactions.
    """
    with transaction(con):
        for table in _STAGED_TABLES:
            con.execute(f"delete from {table} where dataset = $dataset", {"dataset": dataset})
        run_sql(con, "staging/users", dataset=dataset)
        run_sql(con, "staging/items", dataset=dataset)
        run_sql(con, "staging/interactions", dataset=dataset)
        n_users, n_items, n_interactions, n_raw = run_sql(con, "staging/counts", dataset=dataset).fetchall()[0]
        if n_raw == 0:
            raise ValueError(f"dataset {dataset!r} has no raw interactions; ingest a file first")
    return StageReport(dataset, int(n_users), int(n_items), int(n_interactions), int(n_raw))


def make_split(con: duckdb.DuckDBPyConnection, dataset: str, config: SplitConfig | None = None) -> SplitReport:
    """Replace split ``config.setting`` of ``dataset`` in ``split_interactions`` (one transaction).

    Valid/test rows whose user or item never appears in train are kept but excluded from
    evaluation (see ``interactions.load_split``), and counted in the report, which is also
    written to ``split_reports``. Raises ``ValueError`` if the dataset has no staged
    interaction passing the rating filter.
    """
    config = config or SplitConfig()
    train_ratio, valid_ratio, _ = config.ratios
    with transaction(con):
        con.execute(
            "delete from split_interactions where dataset = $dataset and setting = $setting",
            {"dataset": dataset, "setting": config.setting},
        )
        con.execute(
            "delete from split_reports where dataset = $dataset and setting = $setting",
            {"dataset": dataset, "setting": config.setting},
        )
        run_sql(
            con,
            f"splits/split_{config.method}",
            dataset=dataset,
            setting=config.setting,
            min_rating=config.min_rating,
            train_ratio=train_ratio,
            valid_ratio=valid_ratio,
        )
        run_sql(
            con, "splits/report", dataset=dataset, setting=config.setting, method=config.method,
            min_rating=config.min_rating,
        )
        row = run_sql(con, "splits/get_report", dataset=dataset, setting=config.setting).fetchall()[0]
        if row[0] == 0:
            raise ValueError(
                f"dataset {dataset!r} has no staged interaction with rating >= {config.min_rating} "
                "(or null); stage it first or lower min_rating"
            )
    return SplitReport(dataset, config.setting, config.method, config.min_rating, *(int(v) for v in row[:-1]), row[-1])
