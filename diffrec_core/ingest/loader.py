"""Load raw files and in-memory frames into ``raw_interactions``, one batch per file.

Every batch is recorded in ``ingest_batches`` with the content's sha256 and format; the same
content for the same dataset is ingested once (later calls with options that fit the file and
the same format are no-ops that report ``skipped``).
Bad rows go to ``rejected_rows`` with their line number, text and reason. A file that
cannot be read, or has no valid row, raises ``IngestError`` and writes nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from diffrec_core.ingest.readers import IngestError, Parse, _one_line, detect_format, float_ids, prepare
from diffrec_core.warehouse import delete_where, run_sql, transaction, utc_now, validate_identifier

FRAME_COLUMNS = ("user_key", "item_key", "rating", "ts")
_FRAME_MAPPING = dict(zip(("user", "item", "rating", "timestamp"), FRAME_COLUMNS))
_TEMP_TABLES = ("ingest_fields", "ingest_typed")


@dataclass(frozen=True)
class IngestResult:
    """What one ingest call did. ``skipped``: the same content was already ingested
    for this dataset (``batch_id`` and counts are then those of the earlier batch)."""

    batch_id: int
    dataset: str
    source: str
    format: str
    sha256: str
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    skipped: bool
    options: dict[str, Any] | None = None  # the reader options of a file batch (None: not recorded)


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes (streamed)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def frame_sha256(frame: pd.DataFrame) -> str:
    """Hex sha256 of a frame's interaction columns (row order matters)."""
    hashed = pd.util.hash_pandas_object(frame[list(FRAME_COLUMNS)], index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()


def find_batch(con: duckdb.DuckDBPyConnection, dataset: str, sha256: str) -> IngestResult | None:
    """The earlier batch of this content for ``dataset`` (as a ``skipped`` result), or ``None``."""
    rows = run_sql(con, "raw/find_batch", dataset=dataset, sha256=sha256).fetchall()
    if not rows:
        return None
    batch_id, source, fmt, rows_read, rows_loaded, rows_rejected, options = rows[0]
    return IngestResult(batch_id, dataset, source, fmt, sha256, rows_read, rows_loaded, rows_rejected, skipped=True,
                        options=None if options is None else json.loads(options))


def _drop_temp(con: duckdb.DuckDBPyConnection) -> None:
    for table in _TEMP_TABLES:
        con.execute("drop table if exists temp." + validate_identifier(table))


def _load_batch(
    con: duckdb.DuckDBPyConnection, *, dataset: str, source: str, fmt: str, sha256: str, started_at: datetime, parse: Parse,
    options: dict[str, Any] | None = None,
) -> IngestResult:
    """Parse (``parse(con)`` fills ``ingest_fields``), type, and write one batch in one transaction."""
    con.execute("set TimeZone = 'UTC'")
    try:
        with transaction(con):
            floats = parse(con)
            run_sql(con, "raw/typed", user_float="user" in floats, item_float="item" in floats)
            rows_read, rows_loaded, rows_rejected = run_sql(con, "raw/counts").fetchall()[0]
            if rows_loaded == 0:
                if rows_read == 0:
                    raise IngestError(f"{source} has no data rows")
                reasons = con.execute(
                    "select reason, count(*) as n from ingest_typed group by reason order by n desc, reason limit 1"
                ).fetchall()
                raise IngestError(
                    f"{source} has no valid row: all {rows_read} rows rejected (most common reason: {reasons[0][0]})"
                )
            batch_id = run_sql(
                con, "raw/insert_batch", dataset=dataset, source=source, format=fmt, sha256=sha256, started_at=started_at,
                options=None if options is None else json.dumps(options),
            ).fetchall()[0][0]
            run_sql(con, "raw/insert_raw", dataset=dataset, batch_id=batch_id)
            run_sql(con, "raw/insert_rejected", batch_id=batch_id)
            _drop_temp(con)
    except IngestError:
        raise
    except duckdb.Error as error:
        raise IngestError(f"cannot ingest {source} as {fmt}: {_one_line(error)}") from None
    finally:
        _drop_temp(con)
    return IngestResult(
        int(batch_id), dataset, source, fmt, sha256, int(rows_read), int(rows_loaded), int(rows_rejected), skipped=False
    )


def ingest_file(
    con: duckdb.DuckDBPyConnection,
    path: str | Path,
    dataset: str,
    fmt: str | None = None,
    columns: Mapping[str, str | None] | None = None,
    delimiter: str | None = None,
) -> IngestResult:
    """Ingest one raw file into ``raw_interactions`` for ``dataset``.

    ``fmt``: one of ``readers.FORMATS``; detected from the file when ``None``.
    ``columns``: for ``csv``/``parquet``, ``{"user", "item", "timestamp", "rating"?}`` ->
    column names (default: columns named user, item, timestamp and optionally rating).
    ``delimiter``: for ``csv`` (``,`` ``;`` tab ``|``), sniffed from the header when ``None``.

    Raises ``IngestError`` (one line, naming the file; nothing written) when the file cannot
    be read, the options do not fit it (``readers.prepare``; checked also when the content is
    already ingested), the same content was ingested in another format, or no row is valid.
    """
    path = Path(path)
    if not path.is_file():
        raise IngestError(f"cannot read {path}: not an existing file")
    if fmt is None:
        fmt = detect_format(path)
        if fmt not in ("csv", "parquet"):  # a landing folder's mapping is for its generic files, not a detected ml-1m one
            columns = delimiter = None
    parse, options = prepare(con, path, fmt, columns, delimiter)
    try:
        sha256 = file_sha256(path)
    except OSError as error:
        raise IngestError(f"cannot read {path}: {error.strerror or error}") from None
    previous = find_batch(con, dataset, sha256)
    if previous is not None:
        if previous.format != fmt:
            was, now = f"as format {previous.format}", fmt
        elif previous.options is not None and previous.options != options:
            was, now = f"with {_options_text(previous.options)}", _options_text(options)
        else:
            return previous
        raise IngestError(
            f"{path} has the content of batch {previous.batch_id} of dataset {dataset!r} ({previous.source}), ingested {was}, "
            f"not {now}: remove that batch first (diffrec remove-batch {previous.batch_id}) to load it again"
        )
    return _load_batch(
        con, dataset=dataset, source=str(path), fmt=fmt, sha256=sha256, started_at=utc_now(), parse=parse, options=options
    )


def _options_text(options: dict[str, Any]) -> str:
    columns = options.get("columns") or {}
    text = ", ".join(f"{key}={name}" for key, name in columns.items() if name is not None)
    return f"columns {text}" + (f", delimiter {options['delimiter']!r}" if options.get("delimiter") else "")


def remove_batch(con: duckdb.DuckDBPyConnection, batch_id: int) -> IngestResult:
    """Take one file batch out of the warehouse, in one transaction: its ``raw_interactions``, its
    ``rejected_rows`` and its ``ingest_batches`` row. The same file can then be ingested again (e.g. with
    another column mapping). Staged tables and splits change at the next stage/split; ``run_inputs``
    keeps the lineage of the runs that used it. When it was the dataset's last batch, the dataset's staged
    tables and splits go too (nothing would restage them). Raises ``ValueError`` for an unknown batch and
    for an imported split (``diffrec-splits``), which has no raw rows to remove."""
    from diffrec_core import splits

    rows = run_sql(con, "raw/get_batch", batch_id=batch_id).fetchall()
    if not rows:
        raise ValueError(f"no ingest batch {batch_id} in this warehouse")
    _, dataset, source, fmt, sha256, rows_read, rows_loaded, rows_rejected = rows[0]
    if fmt == "diffrec-splits":
        raise ValueError(f"batch {batch_id} ({source}) is an imported split of dataset {dataset!r}, not raw rows: "
                         "import the corrected files under a new setting name instead")
    with transaction(con):
        for table in ("raw_interactions", "rejected_rows", "ingest_batches"):
            delete_where(con, table, batch_id=batch_id)
        if not run_sql(con, "raw/dataset_batches", dataset=dataset).fetchall():
            splits.drop_splits(con, dataset)
            for table in splits.STAGED_TABLES:
                delete_where(con, table, dataset=dataset)
    return IngestResult(int(batch_id), dataset, source, fmt, sha256, int(rows_read), int(rows_loaded), int(rows_rejected), skipped=False)


def ingest_frame(
    con: duckdb.DuckDBPyConnection,
    frame: pd.DataFrame,
    dataset: str,
    source: str,
    sha256: str | None = None,
) -> IngestResult:
    """Ingest an in-memory frame (columns user_key, item_key, rating, ts) for ``dataset``.

    ``source`` describes where it came from (e.g. ``"synthetic:seed=0"``); ``sha256`` is its
    identity for the re-ingest check (default: a hash of the frame's content; the synthetic
    generator passes the hash of its config). Row numbers (1-based) stand in for line numbers.
    Float ``user_key``/``item_key`` columns give integer keys for whole numbers (1.0 -> '1').
    Raises ``IngestError`` if columns are missing, hold lists, or no row is valid (nothing written).
    """
    missing = [c for c in FRAME_COLUMNS if c not in frame.columns]
    if missing:
        raise IngestError(f"frame {source} is missing columns {missing}; needs {list(FRAME_COLUMNS)}")
    view = "_ingest_frame"  # the name raw/describe_frame and raw/parse_frame read
    numbered = frame[list(FRAME_COLUMNS)].assign(_line_no=np.arange(1, len(frame) + 1, dtype=np.int64))
    con.complete()  # DuckDB refuses register() while an earlier result is unfinished
    con.register(view, numbered)

    def parse(c: duckdb.DuckDBPyConnection) -> frozenset[str]:
        run_sql(c, "raw/parse_frame")
        return floats

    try:
        types = dict(run_sql(con, "raw/describe_frame").fetchall())
        floats = float_ids(f"frame {source}", _FRAME_MAPPING, types)  # before hashing: lists are unhashable
        sha256 = sha256 or frame_sha256(frame)
        previous = find_batch(con, dataset, sha256)
        if previous is not None:
            return previous
        return _load_batch(
            con, dataset=dataset, source=source, fmt="frame", sha256=sha256, started_at=utc_now(), parse=parse
        )
    finally:
        con.complete()
        con.unregister(view)
