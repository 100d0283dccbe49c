"""DuckDB warehouse: connections, running ``sql/`` files with bound parameters, outputs.

Every query lives in ``sql/<layer>/<name>.sql`` (shipped as package ``diffrec_core.sql``)
and runs on a connection passed in; values are always bound as ``$named`` parameters,
never formatted into SQL text.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib.resources import files
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

DEFAULT_WAREHOUSE = "warehouse.duckdb"

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SQL_NAME = re.compile(r"^[a-z0-9_]+(/[a-z0-9_]+)*$")
# `$name` not preceded by a word character or another `$` (so `$$` strings are left alone).
_PARAM = re.compile(r"(?<![\w$])\$([A-Za-z_][A-Za-z0-9_]*)")
_LINE_COMMENT = re.compile(r"--[^\n]*")
_STRING_LITERAL = re.compile(r"'(?:[^']|'')*'")

RECOMMENDATION_COLUMNS = ("user_key", "item_key", "rank", "score")


def validate_identifier(name: str) -> str:
    """Return ``name`` if it is a plain SQL identifier, else raise ``ValueError`` naming it."""
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise ValueError(f"not a valid SQL identifier: {name!r} (allowed: ^[A-Za-z_][A-Za-z0-9_]*$)")
    return name


def sql_text(name: str) -> str:
    """Text of ``sql/<name>.sql``, e.g. ``sql_text("splits/split_global")``."""
    if not _SQL_NAME.match(name):
        raise ValueError(f"not a valid sql file name: {name!r}")
    resource = files("diffrec_core.sql").joinpath(*f"{name}.sql".split("/"))
    if not resource.is_file():
        raise FileNotFoundError(f"no sql file named {name!r} in package diffrec_core.sql")
    return resource.read_text(encoding="utf-8")


def query_params(sql: str) -> set[str]:
    """Names of the ``$named`` parameters a query uses (comments and string literals ignored)."""
    stripped = _STRING_LITERAL.sub("''", _LINE_COMMENT.sub("", sql))
    return set(_PARAM.findall(stripped))


def run_sql(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> duckdb.DuckDBPyConnection:
    """Execute ``sql/<name>.sql`` with exactly the ``$named`` parameters it uses bound.

    Raises ``ValueError`` when a parameter the query uses is missing or an unknown one is
    passed. Returns the connection, so ``run_sql(...).fetchall()`` / ``.df()`` work.
    """
    sql = sql_text(name)
    used = query_params(sql)
    missing = used - params.keys()
    unknown = params.keys() - used
    if missing or unknown:
        raise ValueError(
            f"sql/{name}.sql: missing parameters {sorted(missing)}, unknown parameters {sorted(unknown)}"
        )
    if used:
        return con.execute(sql, {key: params[key] for key in used})
    return con.execute(sql)


def delete_where(con: duckdb.DuckDBPyConnection, table: str, **keys: Any) -> None:
    """``delete from <table> where k1 = $k1 and ...``: identifiers validated, values bound."""
    if not keys:
        raise ValueError("delete_where needs at least one key")
    condition = " and ".join(validate_identifier(k) + " = $" + k for k in keys)
    con.execute("delete from " + validate_identifier(table) + " where " + condition, keys)


def scalar(con: duckdb.DuckDBPyConnection, sql: str, **params: Any) -> Any:
    """First column of the first row of a short inline query (``None`` if no row).

    Fetches the whole result: DuckDB 2.0 refuses ``register``/``unregister`` on a
    connection with an unfinished result.
    """
    rows = con.execute(sql, params).fetchall() if params else con.execute(sql).fetchall()
    return rows[0][0] if rows else None


def schema_files() -> list[str]:
    """Names of the schema files, in the order they are applied."""
    folder = files("diffrec_core.sql").joinpath("schema")
    return sorted(
        f"schema/{entry.name[:-4]}"
        for entry in folder.iterdir()
        if entry.name.endswith(".sql") and not entry.name.startswith("_")
    )


def apply_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create every table and view (idempotent: ``if not exists`` / ``or replace``)."""
    for name in schema_files():
        con.execute(sql_text(name))
    con.execute(sql_text(CONSUMER_VIEWS))


# Views and macros for consumers (sql/outputs/consumer_views.sql), applied after the schema.
CONSUMER_VIEWS = "outputs/consumer_views"
# How long an open waits for another process's lock on the file (seconds); env overrides.
LOCK_TIMEOUT_ENV = "DIFFREC_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = 60.0


def is_lock_error(exc: BaseException) -> bool:
    """True for DuckDB's "Could not set lock on file" (another process holds the file)."""
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


def open_database(path: str | Path, read_only: bool = False, lock_timeout: float | None = None) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect`` that waits up to ``lock_timeout`` seconds while another process holds the file.

    DuckDB fails an open at once while another process writes the file; this retries with a
    short backoff (20 ms doubling to 200 ms). ``lock_timeout=None`` reads ``$DIFFREC_LOCK_TIMEOUT``
    (default 60 s). Other errors, and the last lock error after the timeout, are raised.
    Raises ``ValueError`` for an existing file that is not a DuckDB database: DuckDB would open a
    ``.csv`` or ``.parquet`` one as an in-memory database that reads it, where nothing written persists.
    """
    _check_database_file(Path(path))
    timeout = float(os.environ.get(LOCK_TIMEOUT_ENV, DEFAULT_LOCK_TIMEOUT)) if lock_timeout is None else lock_timeout
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if not is_lock_error(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def _check_database_file(path: Path) -> None:
    """``ValueError`` when ``path`` holds bytes that do not start with DuckDB's header (magic ``DUCK`` at byte 8).

    An empty file is left to DuckDB: another process may be creating the database this moment.
    A folder, or a file to create in a folder that does not exist, is refused too (DuckDB's own error there
    is a raw I/O message).
    """
    if path.is_dir():
        raise ValueError(f"{path}: is a folder; the warehouse is a .duckdb file (e.g. {path / 'diffrec.duckdb'})")
    if not path.parent.is_dir():
        raise ValueError(f"{path}: its folder {path.parent} does not exist")
    if path.is_file():
        with path.open("rb") as fh:
            head = fh.read(12)
        if head and head[8:12] != b"DUCK":
            raise ValueError(f"{path}: not a DuckDB database file; the warehouse is a .duckdb file that "
                             "'diffrec ingest' creates")


@contextmanager
def connect(
    path: str | Path = DEFAULT_WAREHOUSE, read_only: bool = False, lock_timeout: float | None = None, create: bool = True
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse file; apply the schema unless ``read_only``; close on exit.

    A missing file is created only by a read-write open with ``create`` (the commands that
    load data); every other open of a missing file raises ``FileNotFoundError``. A connection
    that created the file and ends in an exception removes it again, so a first command that
    fails leaves no empty warehouse behind.
    The session time zone is UTC, so naive timestamps mean UTC everywhere.
    DuckDB allows one writer per file: while one process holds it read-write, any
    other open fails at once, so the open is retried for up to ``lock_timeout`` seconds
    (see ``open_database``) and connections are meant to be held briefly.
    """
    path = Path(path)
    created = not path.exists()
    if created and (read_only or not create):
        raise FileNotFoundError(f"{path}: no such warehouse (run 'diffrec ingest' or 'diffrec pipeline' first)")
    con = open_database(path, read_only=read_only, lock_timeout=lock_timeout)
    try:
        # another process may have created (and filled) the file while this open waited for the lock
        created = created and not scalar(con, "select count(*) from information_schema.tables")
        con.execute("set TimeZone = 'UTC'")
        if not read_only:
            apply_schema(con)
            fail_orphaned_runs(con)
        yield con
    except BaseException:
        con.close()
        if created:
            for leftover in (path, path.with_name(path.name + ".wal")):
                leftover.unlink(missing_ok=True)
        raise
    finally:
        con.close()


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """``begin`` … ``commit``; ``rollback`` and re-raise on any exception."""
    con.begin()
    try:
        yield con
    except BaseException:
        con.rollback()
        raise
    con.commit()


# ---------------------------------------------------------------- outputs


def _json_or_none(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(dict(value), sort_keys=True, default=str)


def record_model_run(
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: str,
    dataset: str,
    setting: str,
    model: str,
    config: Mapping[str, Any],
    metrics: Mapping[str, Any] | None = None,
    checkpoint_path: str | Path | None = None,
    status: str = "running",
    started_at: datetime | None = None,
    finished_at: datetime | None = None,
) -> None:
    """Insert one ``model_runs`` row (config and metrics stored as JSON).

    Raises ``duckdb.ConstraintException`` if ``run_id`` already exists.
    """
    run_sql(
        con,
        "outputs/insert_model_run",
        run_id=run_id,
        dataset=dataset,
        setting=setting,
        model=model,
        config=_json_or_none(config),
        metrics=_json_or_none(metrics),
        checkpoint_path=None if checkpoint_path is None else str(checkpoint_path),
        status=status,
        started_at=started_at,
        finished_at=finished_at,
    )


def update_model_run(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    *,
    status: str | None = None,
    metrics: Mapping[str, Any] | None = None,
    checkpoint_path: str | Path | None = None,
    finished_at: datetime | None = None,
) -> None:
    """Set the given fields of a ``model_runs`` row (``None`` leaves a field as it is).

    Raises ``KeyError`` if no run has this ``run_id``.
    """
    if not scalar(con, "select count(*) from model_runs where run_id = $run_id", run_id=run_id):
        raise KeyError(f"no model run with run_id {run_id!r}")
    run_sql(
        con,
        "outputs/update_model_run",
        run_id=run_id,
        status=status,
        metrics=_json_or_none(metrics),
        checkpoint_path=None if checkpoint_path is None else str(checkpoint_path),
        finished_at=finished_at,
    )


def utc_now() -> datetime:
    """Now as a naive UTC timestamp, as the warehouse stores every time (its session zone is UTC)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def claim_run(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Record that this process trains ``run_id`` (host, pid, process start), for ``fail_orphaned_runs``."""
    import socket

    import psutil

    me = psutil.Process()
    run_sql(con, "outputs/set_run_owner", run_id=run_id, host=socket.gethostname(), pid=me.pid, process_started=me.create_time())


def fail_orphaned_runs(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Mark ``failed`` every ``running`` run claimed by a process of this host that no longer exists
    (killed with SIGKILL, by the out-of-memory killer, …: nothing in it could mark the run itself).

    A process is the same when its pid exists with the recorded start time, so a reused pid does
    not keep a dead run ``running``. Runs claimed on other hosts, or by no one, are left alone.
    Returns the run ids marked. Every read-write ``connect`` calls this.
    """
    import socket

    import psutil

    host = socket.gethostname()
    orphans = []
    for run_id, pid, started in run_sql(con, "outputs/running_runs", host=host).fetchall():
        try:
            alive = abs(psutil.Process(pid).create_time() - started) < 0.5
        except psutil.NoSuchProcess:  # also a zombie: exited, not yet reaped
            alive = False
        except psutil.Error:  # exists, but not ours to inspect: assume it is still training
            alive = True
        if not alive:
            orphans.append(run_id)
            update_model_run(
                con, run_id, status="failed", finished_at=utc_now(),
                metrics={"failure": f"its training process (pid {pid} on {host}) ended without finishing"},
            )
    return orphans


def write_recommendations(
    con: duckdb.DuckDBPyConnection, run_id: str, dataset: str, frame: pd.DataFrame | Any
) -> int:
    """Replace the recommendations of ``(run_id, dataset)`` with ``frame`` in one transaction.

    ``frame``: pandas DataFrame or pyarrow Table with columns user_key, item_key, rank
    (1 = best), score. Keys are stored as text. Returns the number of rows written.
    Raises ``ValueError`` for missing columns or null keys/ranks/scores.
    The list of the run published for ``dataset`` is not touched: the new one waits in
    ``recommendations_pending`` (gates see it through ``recommendations_candidate``) until
    ``publish`` swaps it in, so a refresh that fails its gates leaves consumers the old list.
    """
    # pyarrow tables also have a ``columns`` attribute (the arrays), so ask for column_names first
    columns = list(frame.column_names) if hasattr(frame, "column_names") else list(frame.columns)
    missing = [c for c in RECOMMENDATION_COLUMNS if c not in columns]
    if missing:
        raise ValueError(f"recommendations frame is missing columns {missing}; needs {list(RECOMMENDATION_COLUMNS)}")
    view = "_recommendations_frame"  # the name outputs/frame_nulls and outputs/insert_recommendations read
    con.complete()  # DuckDB refuses register() while an earlier result is unfinished
    con.register(view, frame)
    try:
        nulls = run_sql(con, "outputs/frame_nulls").fetchall()[0][0]
        if nulls:
            raise ValueError(f"recommendations frame has {nulls} rows with null user_key/item_key/rank/score")
        with transaction(con):
            delete_where(con, "recommendations_pending", run_id=run_id, dataset=dataset)
            run_sql(con, "outputs/insert_recommendations", run_id=run_id, dataset=dataset)
            if published_run(con, dataset) != run_id:  # nobody reads an unpublished run's list: store it now
                _store_pending(con, run_id, dataset)
        return int(run_sql(con, "outputs/count_recommendations", run_id=run_id, dataset=dataset).fetchall()[0][0])
    finally:
        con.unregister(view)


def _store_pending(con: duckdb.DuckDBPyConnection, run_id: str, dataset: str) -> None:
    """Inside a transaction: the run's pending list (even an empty one) replaces its stored list."""
    delete_where(con, "recommendations", run_id=run_id, dataset=dataset)
    run_sql(con, "outputs/promote_recommendations", run_id=run_id, dataset=dataset)
    delete_where(con, "recommendations_pending", run_id=run_id, dataset=dataset)


def mark_evaluated(con: duckdb.DuckDBPyConnection, run_id: str, metrics: Mapping[str, Any]) -> None:
    """Store an evaluation's ``metrics``; a ``trained`` run becomes ``evaluated``, any other status stays.

    Raises ``KeyError`` if no run has this ``run_id``.
    """
    if not scalar(con, "select count(*) from model_runs where run_id = $run_id", run_id=run_id):
        raise KeyError(f"no model run with run_id {run_id!r}")
    run_sql(con, "outputs/mark_evaluated", run_id=run_id, metrics=_json_or_none(metrics))


def publish(con: duckdb.DuckDBPyConnection, dataset: str, run_id: str) -> None:
    """Make ``run_id`` the run that ``latest_recommendations`` shows for ``dataset``, with its pending list if it has one.

    One transaction: readers see the previous list until it commits. The run's ``model_runs`` status
    becomes ``published``, and the run published before goes back to ``evaluated`` (or ``trained``).
    Raises ``ValueError`` (and changes nothing) if the run has no recommendations for the dataset.
    """
    with transaction(con):
        count = run_sql(con, "outputs/count_recommendations", run_id=run_id, dataset=dataset).fetchall()[0][0]
        if count == 0:
            raise ValueError(f"run {run_id!r} has no recommendations for dataset {dataset!r}; nothing published")
        if run_sql(con, "outputs/count_pending_recommendations", run_id=run_id, dataset=dataset).fetchall()[0][0]:
            _store_pending(con, run_id, dataset)
        run_sql(con, "outputs/publish", run_id=run_id, dataset=dataset)
        run_sql(con, "outputs/publish_status", run_id=run_id, dataset=dataset)


def published_run(con: duckdb.DuckDBPyConnection, dataset: str) -> str | None:
    """The run currently published for ``dataset``, or ``None``."""
    return scalar(con, "select run_id from published where dataset = $dataset", dataset=dataset)


def is_published(con: duckdb.DuckDBPyConnection, run_id: str) -> bool:
    """Whether ``run_id`` is the run published for its dataset."""
    return bool(scalar(con, "select count(*) from published where run_id = $run_id", run_id=run_id))


# ---------------------------------------------------------------- consumers


def read_query(
    path: str | Path, sql: str, params: Mapping[str, Any] | None = None, *, lock_timeout: float = 10.0
) -> pd.DataFrame:
    """Run one read-only query on the warehouse file and return it as a DataFrame.

    For consumers in other processes: opens read-only (waiting up to ``lock_timeout`` seconds
    while the pipeline holds its short write transactions), reads, and closes at once so the
    pipeline is never kept waiting. ``params`` are bound as ``$named`` parameters.
    """
    with connect(path, read_only=True, lock_timeout=lock_timeout) as con:
        return (con.execute(sql, dict(params)) if params else con.execute(sql)).df()


def read_named(path: str | Path, name: str, *, lock_timeout: float = 10.0, **params: Any) -> pd.DataFrame:
    """``read_query`` for ``sql/<name>.sql`` with its ``$named`` parameters (see ``run_sql``)."""
    with connect(path, read_only=True, lock_timeout=lock_timeout) as con:
        return run_sql(con, name, **params).df()
