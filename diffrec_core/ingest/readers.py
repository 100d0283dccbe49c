"""Readers for raw interaction files: format detection and parsing into text fields.

Parsing runs in DuckDB (``sql/raw/parse_*.sql``): each reader fills the temp table
``ingest_fields`` (line_no, raw_text, n_fields, expected_fields, user_text, item_text,
rating_text, ts_text, rating_required); ``sql/raw/typed.sql`` then types it with
``try_cast`` and gives every bad row a reason.

Formats:

- ``ml-1m``: MovieLens-1M ``ratings.dat``, ``UserID::MovieID::Rating::Timestamp``.
- ``ml-100k``: MovieLens-100K ``u.data``, tab-separated ``user item rating timestamp``, no header.
- ``ml-latest``: ``ratings.csv`` with header ``userId,movieId,rating,timestamp``.
- ``csv``: any delimited file (``,`` ``;`` tab ``|``) with a header, one row per line; quoted
  fields allowed, split by Python's ``csv`` module.
- ``parquet``: any Parquet file.

``csv`` and ``parquet`` take a column mapping ``{"user": ..., "item": ..., "timestamp": ...,
"rating": ...}`` (rating optional: without it, or with empty fields, ratings are null =
implicit feedback). Timestamps are Unix seconds or ISO-8601 text (offsets are converted
to UTC); native Parquet timestamps work too.

A reader is made in two steps: ``prepare`` checks the file against its format and column
mapping (cheap; before the re-ingest check) and returns the ``Parse`` that fills
``ingest_fields`` inside the load's transaction.
"""

from __future__ import annotations

import csv
import itertools
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from diffrec_core.warehouse import run_sql

FORMATS = ("ml-1m", "ml-100k", "ml-latest", "csv", "parquet")

# Fixed-layout formats: separator and number of header lines.
_DELIMITED = {"ml-1m": ("::", 0), "ml-100k": ("\t", 0), "ml-latest": (",", 1)}
_ML_LATEST_HEADER = "userid,movieid,rating,timestamp"

_CSV_DELIMITERS = (",", ";", "\t", "|")
# DuckDB types of columns that hold more than one value per row.
_NON_SCALAR = re.compile(r"(STRUCT|MAP|UNION)\(|.*\]$")

MAPPING_KEYS = ("user", "item", "rating", "timestamp")
REQUIRED_MAPPING_KEYS = ("user", "item", "timestamp")
DEFAULT_COLUMNS = {"user": "user", "item": "item", "rating": "rating", "timestamp": "timestamp"}


class IngestError(ValueError):
    """A file that cannot be ingested. The message is one line and names the file."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return " ".join(text[0].split()) if text else type(error).__name__


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _first_line(path: Path) -> str:
    with path.open("rb") as handle:
        head = handle.read(65536)
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def detect_format(path: str | Path) -> str:
    """Name of the file's format (one of ``FORMATS``), where the file makes it unambiguous.

    Raises ``IngestError`` for unreadable, empty or unrecognised files.
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
        line = _first_line(path)
    except OSError as error:
        raise IngestError(f"cannot read {path}: {error.strerror or error}") from None
    if magic == b"PAR1" or path.suffix.lower() == ".parquet":
        return "parquet"
    if not line:
        raise IngestError(f"cannot detect the format of {path}: the file is empty")
    if "::" in line and len(line.split("::")) == 4:
        return "ml-1m"
    fields = line.split("\t")
    if len(fields) == 4 and all(_is_number(f.strip()) for f in fields):
        return "ml-100k"
    if line.replace(" ", "").lower() == _ML_LATEST_HEADER:
        return "ml-latest"
    delimiter = _sniff_delimiter(line)
    if delimiter is not None and not all(_is_number(f.strip().strip('"')) for f in line.split(delimiter)):
        return "csv"
    raise IngestError(
        f"cannot detect the format of {path} from its first line {line[:60]!r}; name it (diffrec ingest --format, or fmt=) as one of {', '.join(FORMATS)}"
    )


def _sniff_delimiter(header: str) -> str | None:
    counts = {d: header.count(d) for d in _CSV_DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else None


def _read_text(path: Path) -> str:
    """The file as UTF-8 text (a leading BOM dropped); an ``IngestError`` names the first bad line."""
    try:
        data = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    except OSError as error:
        raise IngestError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise IngestError(
            f"{path} is not UTF-8 text: line {line} has the byte 0x{data[error.start]:02x}; save the file as UTF-8"
        ) from None


def _check_mapping(path: Path, columns: Mapping[str, str | None]) -> dict[str, str | None]:
    unknown = sorted(set(columns) - set(MAPPING_KEYS))
    if unknown:
        raise IngestError(f"column mapping for {path} has unknown keys {unknown}; allowed: {list(MAPPING_KEYS)}")
    mapping = {key: columns.get(key) for key in MAPPING_KEYS}
    for key in REQUIRED_MAPPING_KEYS:
        if not mapping[key]:
            raise IngestError(f"column mapping for {path} names no column for {key!r}")
    for name in filter(None, mapping.values()):
        keys = [key for key, mapped in mapping.items() if mapped == name]
        if len(keys) > 1:
            raise IngestError(f"column mapping for {path} maps {' and '.join(keys)} to the same column {name!r}")
    return mapping


def _resolve(path: Path, available: list[str], columns: Mapping[str, str | None] | None) -> dict[str, str | None]:
    """Mapping key -> column name in the file; a missing or repeated column is an ``IngestError``.

    A field the mapping leaves out takes its ``DEFAULT_COLUMNS`` name when the file has that column and
    the mapping does not use it for another field (so ``-c user=uid`` is enough beside item and timestamp
    columns); rating is optional.
    """
    repeated = [name for index, name in enumerate(available) if name in available[:index]]
    if repeated:
        raise IngestError(f"{path} has more than one column named {repeated[0]!r}; its columns: {available}")
    given = dict(columns or {})
    used = set(filter(None, given.values()))
    defaults = {key: name for key, name in DEFAULT_COLUMNS.items()
                if key not in given and name not in used and (name in available or key != "rating")}
    mapping = _check_mapping(path, {**defaults, **given})
    for key, name in mapping.items():
        if name is not None and name not in available:
            raise IngestError(f"{path} has no column {name!r} (mapped to {key}); its columns: {available}")
    return mapping


def float_ids(source: str | Path, mapping: Mapping[str, str | None], types: Mapping[str, str]) -> frozenset[str]:
    """The id fields (``user``, ``item``) that a typed source holds as floats (``raw/typed``
    turns 1.0 into the key '1', like the same id in a text file).

    ``types``: column name -> DuckDB type. A mapped column with more than one value per row
    (list, struct, map) is an ``IngestError`` naming the column.
    """
    for key, name in mapping.items():
        if name is not None and _NON_SCALAR.match(types[name]):
            raise IngestError(f"{source}: column {name!r} (mapped to {key}) holds {types[name]} values, not one value per row")
    return frozenset(key for key in ("user", "item") if types[mapping[key]] in ("FLOAT", "DOUBLE"))


Parse = Callable[[duckdb.DuckDBPyConnection], frozenset[str]]
"""Fills temp table ``ingest_fields``; returns the id fields read from float columns (``float_ids``)."""


def prepare(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    fmt: str,
    columns: Mapping[str, str | None] | None = None,
    delimiter: str | None = None,
) -> tuple[Parse, dict[str, Any]]:
    """Check ``path`` as ``fmt`` with the column mapping and delimiter; return its ``Parse`` and the options
    it reads the file with (the resolved column mapping, and the delimiter for csv; ``{}`` for fixed formats).

    Raises ``IngestError`` (one line, naming the file) for an unknown format, options the
    format does not take, a file DuckDB cannot read, a missing, repeated or doubly mapped
    column, or a column with several values per row.
    """
    if fmt not in FORMATS:
        raise IngestError(f"unknown format {fmt!r} for {path}; known: {', '.join(FORMATS)}")
    if fmt in _DELIMITED:
        if columns is not None or delimiter is not None:
            raise IngestError(f"{path}: format {fmt} has fixed columns; a column mapping or delimiter is only for csv and parquet")
        return (lambda con: _parse_delimited(con, path, fmt)), {}
    if fmt == "csv":
        return _prepare_csv(path, columns, delimiter)
    return _prepare_parquet(con, path, columns)


def _parse_delimited(con: duckdb.DuckDBPyConnection, path: Path, fmt: str) -> frozenset[str]:
    separator, header_lines = _DELIMITED[fmt]
    try:
        run_sql(con, "raw/parse_delimited", path=str(path), delimiter=separator, header_lines=header_lines)
    except duckdb.Error:
        _read_text(path)  # a file that is not UTF-8 gets the error naming its line
        raise
    return frozenset()


csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))  # one line is one row, however long its fields


def _csv_fields(line: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader((line,), delimiter=delimiter, skipinitialspace=True))
    except csv.Error:  # e.g. a lone carriage return inside the line: its fields as plain text, for the typed checks
        return line.split(delimiter)


_CSV_CHUNK_LINES = 100_000
"""Lines split per step: the Python objects of one chunk at a time, the rows themselves in Arrow buffers."""


def _csv_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of the file's non-blank lines, streamed (a BOM and line ends dropped); an
    ``IngestError`` names the first line that is not UTF-8."""
    try:
        with path.open(encoding="utf-8-sig", newline="\n") as handle:
            for no, line in enumerate(handle, 1):
                line = line.removesuffix("\n").removesuffix("\r")
                if line.strip():
                    yield no, line
    except UnicodeDecodeError:
        _read_text(path)  # raises the error naming the line
        raise
    except OSError as error:
        raise IngestError(f"cannot read {path}: {error.strerror or error}") from None


def _csv_table(lines: list[tuple[int, str]], header: list[str], mapping: Mapping[str, str | None], delimiter: str) -> pa.Table:
    rows = [_csv_fields(line, delimiter) for _, line in lines]

    def texts(key: str) -> pa.Array:  # null where the key is unmapped or the row has the wrong width
        if mapping[key] is None:
            return pa.nulls(len(rows), pa.string())
        index = header.index(mapping[key])
        return pa.array([row[index].strip() if len(row) == len(header) else None for row in rows], pa.string())

    return pa.table({
        "line_no": pa.array([no for no, _ in lines], pa.int64()),
        "raw_text": pa.array([line for _, line in lines], pa.string()),
        "n_fields": pa.array([len(row) for row in rows], pa.int64()),
        **{f"{key}_text": texts(key) for key in MAPPING_KEYS},
    })


def _prepare_csv(path: Path, columns: Mapping[str, str | None] | None, delimiter: str | None) -> tuple[Parse, dict[str, Any]]:
    header_line = next((line for _, line in _csv_lines(path)), None)
    if header_line is None:
        raise IngestError(f"{path} has no header line (the file is empty)")
    delimiter = delimiter or _sniff_delimiter(header_line) or ","
    if delimiter not in _CSV_DELIMITERS:
        raise IngestError(f"unsupported delimiter {delimiter!r} for {path}; use one of {list(_CSV_DELIMITERS)}")
    header = [name.strip() for name in _csv_fields(header_line, delimiter)]
    mapping = _resolve(path, header, columns)

    def parse(con: duckdb.DuckDBPyConnection) -> frozenset[str]:
        body = _csv_lines(path)
        next(body)  # the header
        chunks = []
        while chunk := list(itertools.islice(body, _CSV_CHUNK_LINES)):
            chunks.append(_csv_table(chunk, header, mapping, delimiter))
        table = pa.concat_tables(chunks) if chunks else _csv_table([], header, mapping, delimiter)
        con.register("_ingest_csv", table)
        try:
            run_sql(con, "raw/parse_csv", n_columns=len(header))
        finally:
            con.unregister("_ingest_csv")
        return frozenset()

    return parse, {"columns": mapping, "delimiter": delimiter}


def _prepare_parquet(con: duckdb.DuckDBPyConnection, path: Path, columns: Mapping[str, str | None] | None) -> tuple[Parse, dict[str, Any]]:
    try:
        types = dict(run_sql(con, "raw/describe_parquet", path=str(path)).fetchall())
    except duckdb.Error as error:
        raise IngestError(f"cannot read {path} as parquet: {_one_line(error)}") from None
    mapping = _resolve(path, list(types), columns)
    floats = float_ids(path, mapping, types)

    def parse(con: duckdb.DuckDBPyConnection) -> frozenset[str]:
        run_sql(
            con,
            "raw/parse_parquet",
            path=str(path),
            user_col=mapping["user"],
            item_col=mapping["item"],
            rating_col=mapping["rating"] or mapping["user"],
            has_rating=mapping["rating"] is not None,
            ts_col=mapping["timestamp"],
        )
        return floats

    return parse, {"columns": mapping}
