"""Staging (dedupe, dense ids) and train/valid/test splits, run as ``sql/`` files.

``stage`` rebuilds ``users``, ``items`` and ``interactions`` of a dataset from
``raw_interactions``; ``make_split`` rebuilds one ``(dataset, setting)`` of
``split_interactions`` and its ``split_reports`` row. Each runs in one transaction;
``stage_and_split`` runs both in one, so a split that fails leaves the staging as it was too.

Training settings (paper §4.1), all with the same test set: ``clean`` (ratings below 4
dropped), ``noisy-natural`` (low-rated interactions added to train/valid as false positives),
``noisy-random-p`` (p × each user's count of never-interacted items added to train/valid) and
``temporal`` (the clean split, its train timestamps ordering the T-variants' time weights).
``setting_config`` builds the ``SplitConfig`` of each; a ``SplitConfig`` named ``noisy-natural`` or
``noisy-random-p`` gets that noise from its name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import duckdb
import numpy as np
import pandas as pd
from pydantic import BaseModel, Field, PositiveFloat, field_validator, model_validator

from diffrec_core.config import FROZEN, Seed
from diffrec_core.warehouse import delete_where, run_sql, transaction

STAGED_TABLES = ("interactions", "users", "items")
SETTING_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
"""A split setting's name: letters, digits, '_', '.', '-', starting with a letter or digit."""
NOISY_NAMES = ("names starting 'noisy-' are the noise settings 'noisy-natural' and 'noisy-random-P' "
               "(P: the noise ratio in (0, 1], as stored, e.g. noisy-random-0.2)")


def _noise_of_name(name: str) -> dict | None:
    """The noise fields a setting's name fixes (None for a name not starting 'noisy-'), else ``ValueError``.

    'noisy-natural' -> natural noise; 'noisy-random-P' -> random noise of ratio P, P written as
    ``setting_config`` stores it (``f"{P:g}"``), so one ratio has one name.
    """
    if not name.startswith("noisy-"):
        return None
    if name == "noisy-natural":
        return {"noise": "natural"}
    try:
        ratio = float(name.removeprefix("noisy-random-"))
    except ValueError:
        ratio = None
    if ratio is None or name != f"noisy-random-{ratio:g}":  # its range: the noise_ratio field's
        raise ValueError(f"setting {name!r}: {NOISY_NAMES}")
    return {"noise": "random", "noise_ratio": ratio}


def check_setting(name: str) -> str:
    """``name`` if it is a valid setting name (``SETTING_PATTERN``), else ``ValueError`` naming it."""
    if not isinstance(name, str) or not re.fullmatch(SETTING_PATTERN, name):
        raise ValueError(f"setting {name!r}: a setting name is letters, digits, '_', '.' and '-', starting with a letter or digit")
    return name


def drop_splits(con: duckdb.DuckDBPyConnection, dataset: str, setting: str | None = None) -> None:
    """Delete the rows and report of split ``setting`` of ``dataset`` (every setting when None)."""
    keys = {"dataset": dataset} if setting is None else {"dataset": dataset, "setting": setting}
    for table in ("split_interactions", "split_reports"):
        delete_where(con, table, **keys)


class SplitConfig(BaseModel):
    """How to split a staged dataset into train/valid/test."""

    model_config = FROZEN

    setting: str = Field(
        default="clean",
        pattern=SETTING_PATTERN,
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
    noise: Literal["none", "natural", "random"] = Field(
        default="none",
        description="none: the clean split; natural: add low-rated (< min_rating) interactions of the train/valid "
        "window to train/valid; random: add never-interacted items to train/valid. The test set is the clean one.",
    )
    noise_ratio: float = Field(
        default=0.1, gt=0.0, le=1.0,
        description="random: each user's train and valid receive round(ratio x their clean count) items; "
        "natural: at most that many low-rated interactions, so train+valid stays within (1 + ratio) of clean.",
    )
    seed: Seed = Field(default=2023, description="seed of the noise draws")

    @model_validator(mode="before")
    @classmethod
    def _noise_from_name(cls, data: object) -> object:
        """A noise setting's name gives the noise fields not set (``_noise_matches_name`` checks those set)."""
        if isinstance(data, dict) and isinstance(data.get("setting"), str):
            return {**(_noise_of_name(data["setting"]) or {}), **data}
        return data

    @model_validator(mode="after")
    def _noise_matches_name(self) -> "SplitConfig":
        for field, value in (_noise_of_name(self.setting) or {}).items():
            actual = getattr(self, field)
            # a ratio as the name writes it (f"{ratio:g}", 6 significant digits): 0.1234567 is noisy-random-0.123457
            if (f"{actual:g}" != f"{value:g}") if isinstance(value, float) else actual != value:
                raise ValueError(f"setting {self.setting!r} means {field} {value!r}, but {field} is {actual!r}")
        return self

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
        if self.noise == "natural" and self.min_rating is None:
            raise ValueError("natural noise needs min_rating (the rating below which an interaction is a false positive)")
        return self


SETTINGS = ("clean", "noisy-natural", "noisy-random", "temporal")


def setting_config(
    setting: str,
    noise_ratio: float | None = None,
    *,
    method: Literal["global", "per_user"] = "global",
    min_rating: float = 4.0,
    seed: int = 2023,
) -> SplitConfig:
    """The ``SplitConfig`` of a training setting, named as it is stored in ``split_interactions``.

    clean -> 'clean'; noisy-natural -> 'noisy-natural'; noisy-random -> 'noisy-random-<p>'
    (p = ``noise_ratio``, default 0.1); temporal -> 'temporal' (the clean rows). Raises
    ``ValueError`` for an unknown setting or a noise ratio given to a setting without noise.
    """
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; choose one of {', '.join(SETTINGS)}")
    if noise_ratio is not None and setting in ("clean", "temporal"):
        raise ValueError(f"setting {setting!r} adds no noise; --noise-ratio applies to noisy-natural and noisy-random")
    ratio = 0.1 if noise_ratio is None else noise_ratio
    common = {"method": method, "min_rating": min_rating, "seed": seed}
    if setting == "noisy-natural":
        return SplitConfig(setting=setting, noise="natural", noise_ratio=ratio, **common)
    if setting == "noisy-random":
        return SplitConfig(setting=f"noisy-random-{ratio:g}", noise="random", noise_ratio=ratio, **common)
    return SplitConfig(setting=setting, **common)


@dataclass(frozen=True)
class StageReport:
    """Counts after staging a dataset."""

    dataset: str
    n_users: int
    n_items: int
    n_interactions: int
    n_raw: int
    splits_dropped: tuple[str, ...] = ()  # settings whose rows restaging made stale (ids moved)

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
    Split rows hold these ids: when new keys move any existing key to another id, every split
    of the dataset is dropped (``StageReport.splits_dropped``) rather than left pointing at
    other users and items; split them again.
    Raises ``ValueError`` if the dataset has no raw interactions.
    """
    with transaction(con):
        return _stage(con, dataset)


def stage_and_split(
    con: duckdb.DuckDBPyConnection, dataset: str, config: SplitConfig | None = None
) -> tuple[StageReport, SplitReport]:
    """``stage`` then ``make_split`` in one transaction: when the split is refused, the staged
    tables and every split of the dataset stay as they were."""
    with transaction(con):
        return _stage(con, dataset), _make_split(con, dataset, config or SplitConfig())


def _stage(con: duckdb.DuckDBPyConnection, dataset: str) -> StageReport:
    """``stage`` inside the caller's transaction."""
    run_sql(con, "staging/ids_before", dataset=dataset)
    for table in STAGED_TABLES:
        delete_where(con, table, dataset=dataset)
    run_sql(con, "staging/users", dataset=dataset)
    run_sql(con, "staging/items", dataset=dataset)
    run_sql(con, "staging/interactions", dataset=dataset)
    n_users, n_items, n_interactions, n_raw = run_sql(con, "staging/counts", dataset=dataset).fetchall()[0]
    if n_raw == 0:
        raise ValueError(f"dataset {dataset!r} has no raw interactions; ingest a file first")
    dropped: tuple[str, ...] = ()
    if run_sql(con, "staging/moved_keys", dataset=dataset).fetchone()[0]:
        dropped = tuple(row[0] for row in run_sql(con, "splits/settings", dataset=dataset).fetchall())
        drop_splits(con, dataset)
    run_sql(con, "staging/drop_ids_before")
    return StageReport(dataset, int(n_users), int(n_items), int(n_interactions), int(n_raw), dropped)


def make_split(con: duckdb.DuckDBPyConnection, dataset: str, config: SplitConfig | None = None) -> SplitReport:
    """Replace split ``config.setting`` of ``dataset`` in ``split_interactions`` (one transaction).

    Valid/test rows whose user or item never appears in train are kept but excluded from
    evaluation (see ``interactions.load_split``), and counted in the report, which is also
    written to ``split_reports``. Raises ``ValueError`` if the dataset has no staged
    interaction passing the rating filter, if the validation or test part is empty, or if a
    noise setting adds no noise row.
    """
    with transaction(con):
        return _make_split(con, dataset, config or SplitConfig())


def _make_split(con: duckdb.DuckDBPyConnection, dataset: str, config: SplitConfig) -> SplitReport:
    """``make_split`` inside the caller's transaction."""
    train_ratio, valid_ratio, _ = config.ratios
    drop_splits(con, dataset, config.setting)
    if config.noise == "natural":
        n_interactions, n_rated = run_sql(con, "splits/rating_counts", dataset=dataset).fetchall()[0]
        if n_interactions and not n_rated:
            raise ValueError(
                f"setting {config.setting!r} needs ratings (natural noise = ratings below {config.min_rating:g}), "
                f"but dataset {dataset!r} has none (implicit feedback); use clean, noisy-random or temporal"
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
    added = 0
    if config.noise == "natural":
        added = run_sql(
            con, "splits/noise_natural", dataset=dataset, setting=config.setting, min_rating=config.min_rating,
            per_user=config.method == "per_user", noise_ratio=config.noise_ratio, seed=config.seed,
        ).fetchone()[0]
    elif config.noise == "random":
        added = _add_random_noise(con, dataset, config)
    run_sql(
        con, "splits/report", dataset=dataset, setting=config.setting, method=config.method,
        min_rating=config.min_rating, train_ratio=config.ratios[0], valid_ratio=config.ratios[1],
        test_ratio=config.ratios[2],
    )
    row = run_sql(con, "splits/get_report", dataset=dataset, setting=config.setting).fetchall()[0]
    report = SplitReport(dataset, config.setting, config.method, config.min_rating, *(int(v) for v in row[:-1]), row[-1])
    _check_split(report, config, added)
    return report


def _check_split(report: SplitReport, config: SplitConfig, added: int) -> None:
    """``ValueError`` for a split with no train row, an empty validation or test part, or noise that adds nothing."""
    where = f"dataset {report.dataset!r}, setting {report.setting!r}"
    if report.train_rows == 0:
        raise ValueError(
            f"dataset {report.dataset!r} has no staged interaction with rating >= {config.min_rating} "
            "(or null); stage it first or lower min_rating"
        )
    if not (report.valid_rows and report.test_rows):
        raise ValueError(
            f"{where}: train {report.train_rows}, valid {report.valid_rows}, test {report.test_rows} rows; "
            "validation and test each need at least one: ingest more interactions"
        )
    if config.noise == "natural" and not added:
        raise ValueError(
            f"{where}: natural noise adds no interaction: none rated below {config.min_rating:g} fits a user's "
            f"train/valid window within round({config.noise_ratio:g} x their clean count); raise min_rating or noise_ratio"
        )
    if config.noise == "random" and not added:
        raise ValueError(
            f"{where}: random noise adds no interaction: round({config.noise_ratio:g} x each user's count) is 0 "
            "or they have no item left; raise noise_ratio"
        )


def random_noise(
    seen: tuple[np.ndarray, np.ndarray],
    base_users: np.ndarray,
    base_parts: np.ndarray,
    base_times: np.ndarray,
    n_items: int,
    ratio: float,
    seed: int,
) -> dict[str, np.ndarray]:
    """Never-interacted items added to each user's train and valid (random noise, paper §4.1).

    Args:
        seen: (indptr (n_users + 1,), indices) of each user's interacted items, sorted per user.
        base_users, base_parts, base_times: the clean train (part 0) and valid (part 1) rows,
            sorted by user then part; times order the rows (epoch microseconds).
        ratio: each user's part receives round(ratio x their rows in it) items.
    Returns:
        arrays user, part, item, time: the noise rows. A user's train and valid noise are
        distinct items no one of which the user ever interacted with; each row takes the time
        of a random clean row of the same user and part. The draws of a user depend only on
        (seed, user), so they do not change when other users change.
    """
    indptr, indices = seen
    out_u, out_p, out_i, out_t = [], [], [], []
    starts = np.flatnonzero(np.r_[True, base_users[1:] != base_users[:-1]]) if len(base_users) else np.empty(0, int)
    ends = np.r_[starts[1:], len(base_users)]
    for start, end in zip(starts, ends):
        user = int(base_users[start])
        parts, times = base_parts[start:end], base_times[start:end]
        counts = [int(np.floor(ratio * int(np.sum(parts == p)) + 0.5)) for p in (0, 1)]
        user_seen = indices[indptr[user] : indptr[user + 1]]
        n_free = n_items - len(user_seen)
        total = min(sum(counts), n_free)
        if total <= 0:
            continue
        counts = [min(counts[0], total), total - min(counts[0], total)]
        rng = np.random.default_rng([seed, user])
        free = rng.choice(n_free, size=total, replace=False)
        # The j-th item the user never saw: j plus the number of seen items at or below it.
        shifted = np.asarray(user_seen, dtype=np.int64) - np.arange(len(user_seen))
        items = free + np.searchsorted(shifted, free, side="right")
        for p, (lo, hi) in enumerate(((0, counts[0]), (counts[0], total))):
            if hi <= lo:
                continue
            pool = times[parts == p]
            out_u.append(np.full(hi - lo, user, dtype=np.int64))
            out_p.append(np.full(hi - lo, p, dtype=np.int64))
            out_i.append(items[lo:hi].astype(np.int64))
            out_t.append(pool[rng.integers(0, len(pool), size=hi - lo)])
    if not out_u:
        empty = np.empty(0, dtype=np.int64)
        return {"user": empty, "part": empty, "item": empty, "time": empty}
    return {"user": np.concatenate(out_u), "part": np.concatenate(out_p), "item": np.concatenate(out_i), "time": np.concatenate(out_t)}


def _add_random_noise(con: duckdb.DuckDBPyConnection, dataset: str, config: SplitConfig) -> int:
    """Insert random-noise rows into the clean rows of ``config.setting`` (inside the caller's transaction);
    returns how many."""
    base = run_sql(con, "splits/noise_base", dataset=dataset, setting=config.setting).fetchnumpy()
    pairs = run_sql(con, "splits/user_items", dataset=dataset).fetchnumpy()
    n_items = int(run_sql(con, "splits/n_items", dataset=dataset).fetchall()[0][0])
    users = np.asarray(pairs["user_id"], dtype=np.int64)
    n_users = int(users.max()) + 1 if len(users) else 0
    indptr = np.r_[0, np.cumsum(np.bincount(users, minlength=n_users))]
    noise = random_noise(
        (indptr, np.asarray(pairs["item_id"], dtype=np.int64)),
        np.asarray(base["user_id"], dtype=np.int64),
        np.asarray(base["part"], dtype=np.int64),
        np.asarray(base["t"], dtype=np.int64),
        n_items,
        config.noise_ratio,
        config.seed,
    )
    frame = pd.DataFrame({
        "split": np.where(noise["part"] == 0, "train", "valid"),
        "user_id": noise["user"].astype(np.int32),
        "item_id": noise["item"].astype(np.int32),
        "ts": pd.to_datetime(noise["time"], unit="us"),
    })
    con.register("_noise_rows", frame)
    try:
        run_sql(con, "splits/insert_noise", dataset=dataset, setting=config.setting)
    finally:
        con.unregister("_noise_rows")
    return len(frame)
