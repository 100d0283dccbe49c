"""Sharded batch inference: users split into id ranges, each scored on its own and written to Parquet;
one publisher loads the shards into the warehouse (DuckDB has a single writer).

A shard computes exactly what ``runs.recommend_run`` computes for its users: the same model input
(each user's history in the run's setting, time-weighted for the T-variants), the same masking
of every known interaction and the same ``top_k``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from diffrec_core import interactions, runs, warehouse
from diffrec_core.config import InferenceConfig, RunConfig
from diffrec_core.models.registry import time_weights_for
from diffrec_core.recommend import run_top_k

SHARD_SCHEMA = pa.schema([("user_key", pa.string()), ("item_key", pa.string()), ("rank", pa.int32()), ("score", pa.float64())])


def plan_shards(n_users: int, n_shards: int) -> list[tuple[int, int]]:
    """``n_shards`` contiguous, nearly equal ranges ``[start, stop)`` covering dense user ids ``0..n_users``.

    Fewer ranges when there are fewer users than shards; none for no users.
    """
    if n_shards < 1:
        raise ValueError(f"number of shards must be >= 1, got {n_shards}")
    if n_users <= 0:
        return []
    n = min(n_shards, n_users)
    bounds = np.linspace(0, n_users, n + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def shard_ranges(warehouse_path: str | Path, run_id: str, n_shards: int) -> list[tuple[int, int]]:
    """The user-id ranges of the run's dataset for ``n_shards`` shards (see ``plan_shards``)."""
    with warehouse.connect(warehouse_path, read_only=True) as con:
        info = runs.get_run(con, run_id)
        user_keys, _ = interactions.load_keys(con, info.dataset)
    return plan_shards(len(user_keys), n_shards)


def shard_path(out_dir: str | Path, run_id: str, start: int, stop: int) -> Path:
    return Path(out_dir) / run_id / f"users-{start:010d}-{stop:010d}.parquet"


def score_shard(
    warehouse_path: str | Path,
    run_id: str,
    user_start: int,
    user_stop: int,
    out_dir: str | Path,
    inference: InferenceConfig = InferenceConfig(),
    device: str = "auto",
) -> str:
    """Top-K of the users with dense ids in ``[user_start, user_stop)``, written to one Parquet file.

    Reads the warehouse read-only; writes ``<out_dir>/<run_id>/users-<start>-<stop>.parquet``
    (columns user_key, item_key, rank, score) through a temporary file, so a file that exists is
    complete. Returns its path.
    """
    if not 0 <= user_start < user_stop:
        raise ValueError(f"a shard needs 0 <= user_start < user_stop, got [{user_start}, {user_stop})")
    with warehouse.connect(warehouse_path, read_only=True) as con:
        info = runs.get_run(con, run_id)
        row = warehouse.run_sql(con, "splits/setting_min_rating", dataset=info.dataset, setting=info.setting).fetchone()
        if row is None:
            raise ValueError(f"dataset {info.dataset!r} has no split setting {info.setting!r}")
        user_keys, item_keys = interactions.load_keys(con, info.dataset)
        kept = warehouse.run_sql(con, "staging/history_range", dataset=info.dataset, user_start=user_start,
                                 user_stop=user_stop, min_rating=row[0]).fetchnumpy()
        every = warehouse.run_sql(con, "staging/history_range", dataset=info.dataset, user_start=user_start,
                                  user_stop=user_stop, min_rating=None).fetchnumpy()
    if user_stop > len(user_keys):
        raise ValueError(f"shard [{user_start}, {user_stop}) goes past the {len(user_keys)} users of dataset {info.dataset!r}")
    shape = (user_stop - user_start, len(item_keys))
    history, order = interactions.to_csr_with_order(
        np.asarray(kept["user_id"]) - user_start, np.asarray(kept["item_id"]), np.asarray(kept["t"]), shape
    )
    inputs = interactions.model_input(history, order, time_weights_for(RunConfig.model_validate(info.config)))
    seen = interactions.to_csr(np.asarray(every["user_id"]) - user_start, np.asarray(every["item_id"]), shape)
    recs = run_top_k(info, inputs, inference.k, seen=seen, first_user=user_start, user_keys=user_keys, item_keys=item_keys,
                     batch_size=inference.batch_size, device=device)
    table = pa.table({
        "user_key": pa.array(user_keys[recs["user"] + user_start].astype(str), pa.string()),
        "item_key": pa.array(item_keys[recs["item"]].astype(str), pa.string()),
        "rank": pa.array(recs["rank"].astype(np.int32)),
        "score": pa.array(recs["score"].astype(np.float64)),
    }, schema=SHARD_SCHEMA)
    path = shard_path(out_dir, run_id, user_start, user_stop)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp-{os.getpid()}")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return str(path)


def load_shards(warehouse_path: str | Path, run_id: str, paths: list[str]) -> int:
    """Load the shards' Parquet files as the run's recommendations (one transaction) and record lineage.

    The single writer: replaces whatever the run had, unpublished runs stay unpublished.
    Raises ``ValueError`` for a missing file, a file with other columns, or a user in two shards.
    """
    if not paths:
        raise ValueError(f"no shard files to load for model run {run_id!r}")
    tables = []
    for path in paths:
        if not Path(path).is_file():
            raise ValueError(f"shard file {path} does not exist")
        table = pq.read_table(path)
        if table.schema.names != SHARD_SCHEMA.names:
            raise ValueError(f"shard file {path} has columns {table.schema.names}, expected {SHARD_SCHEMA.names}")
        tables.append(table.cast(SHARD_SCHEMA))
    users = [set(t.column("user_key").to_pylist()) for t in tables]
    if sum(len(u) for u in users) != len(set().union(*users)):
        raise ValueError(f"shard files of model run {run_id!r} overlap: a user appears in more than one shard")
    frame = pa.concat_tables(tables)
    with warehouse.connect(warehouse_path) as con:
        info = runs.get_run(con, run_id)
        n = warehouse.write_recommendations(con, run_id, info.dataset, frame)
        runs.record_inputs(con, run_id, info.dataset, "recommend")
    return n
