"""Readers for raw interaction files: format detection and parsing into text fields.

Parsing runs in DuckDB (``sql/raw/parse_*.sql``): each reader fills the temp table
``ingest_fields`` (line_no, raw_text, n_fields, expected_fields, user_text, item_text,
rating_text, ts_text, rating_required); ``sql/raw/typed.sql`` then types it with
``try_cast`` and gives every bad row a reason.

Formats:

- ``ml-1m``: MovieLens-1M ``ratings.dat``, ``UserID::MovieID::Rating::Timestamp``.
- ``ml-100k``: MovieLens-100K ``u.data``, tab-separated ``user item rating timestamp``, no header.
- ``ml-latest``: ``ratings.csv`` with header ``userId,movieId,rating,timestamp``.
- ``csv``: any delimited file (``,`` ``;`` tab ``|``) with a header; quoted fields allowed.
- ``parquet``: any Parquet file.

``csv`` and ``parquet`` take a column mapping ``{"user": ..., "item": ..., "timestamp": ...,
"rating": ...}`` (rating optional: without it, or with empty fields, ratings are null =
implicit feedback). Timestamps are Unix seconds or ISO-8601 text (offsets are converted
to UTC); native Parquet timestamps work too.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import duckdb

from diffrec_core.warehouse import run_sql

FORMATS = ("ml-1m", "ml-100k", "ml-latest", "csv", "parquet")

# Fixed-layout formats: separator and number of header lines.
_DELIMITED = {"ml-1m": ("::", 0), "ml-100k": ("\t", 0), "ml-latest": (",", 1)}
_ML_LATEST_HEADER = "userid,movieid,rating,timestamp"

# RE2 pattern for one field (quoted or not) after the line start or a separator.
_CSV_FIELD = {
    ",": r'(?:^|,)("(?:[^"]|"")*"|[^,]*)',
    ";": r'(?:^|;)("(?:[^"]|"")*"|[^;]*)',
    "\t": r'(?:^|\t)("(?:[^"]|"")*"|[^\t]*)',
    "|": r'(?:^|\|)("(?:[^"]|"")*"|[^|]*)',
}

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
    counts = {d: header.count(d) for d in _CSV_FIELD}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else None


def _check_mapping(path: Path, columns: Mapping[str, str | None]) -> dict[str, str | None]:
    unknown = sorted(set(columns) - set(MAPPING_KEYS))
    if unknown:
        raise IngestError(f"column mapping for {path} has unknown keys {unknown}; allowed: {list(MAPPING_KEYS)}")
    mapping = {key: columns.get(key) for key in MAPPING_KEYS}
    for key in REQUIRED_MAPPING_KEYS:
        if not mapping[key]:
            raise IngestError(f"column mapping for {path} needs a {key!r} column")
    return mapping


def _resolve(path: Path, available: list[str], columns: Mapping[str, str | None] | None) -> dict[str, str | None]:
    """Mapping key -> column name in the file; a missing column is an ``IngestError``.

    Without an explicit mapping, ``DEFAULT_COLUMNS`` is used and rating is optional.
    """
    explicit = columns is not None
    mapping = _check_mapping(path, columns if explicit else DEFAULT_COLUMNS)
    if not explicit and mapping["rating"] not in available:
        mapping["rating"] = None
    for key, name in mapping.items():
        if name is not None and name not in available:
            raise IngestError(f"{path} has no column {name!r} (mapped to {key}); its columns: {available}")
    return mapping


def parse_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    fmt: str,
    columns: Mapping[str, str | None] | None = None,
    delimiter: str | None = None,
) -> None:
    """Fill temp table ``ingest_fields`` from ``path`` read as ``fmt``.

    Raises ``IngestError`` (one line, naming the file) when DuckDB cannot read the file
    or a mapped column is missing.
    """
    if fmt not in FORMATS:
        raise IngestError(f"unknown format {fmt!r} for {path}; known: {', '.join(FORMATS)}")
    try:
        if fmt in _DELIMITED:
            separator, header_lines = _DELIMITED[fmt]
            run_sql(con, "raw/parse_delimited", path=str(path), delimiter=separator, header_lines=header_lines)
        elif fmt == "csv":
            _parse_csv(con, path, columns, delimiter)
        else:
            _parse_parquet(con, path, columns)
    except IngestError:
        raise
    except duckdb.Error as error:
        raise IngestError(f"cannot read {path} as {fmt}: {_one_line(error)}") from None


def _parse_csv(
    con: duckdb.DuckDBPyConnection, path: Path, columns: Mapping[str, str | None] | None, delimiter: str | None
) -> None:
    if delimiter is None:
        delimiter = _sniff_delimiter(_first_line(path)) or ","
    if delimiter not in _CSV_FIELD:
        raise IngestError(f"unsupported delimiter {delimiter!r} for {path}; use one of {list(_CSV_FIELD)}")
    pattern = _CSV_FIELD[delimiter]
    rows = run_sql(con, "raw/csv_header", path=str(path), pattern=pattern).fetchall()
    if not rows:
        raise IngestError(f"{path} has no header line (the file is empty)")
    header = list(rows[0][0])
    mapping = _resolve(path, header, columns)

    def position(key: str) -> int:
        name = mapping[key]
        return 0 if name is None else header.index(name) + 1

    run_sql(
        con,
        "raw/parse_csv",
        path=str(path),
        pattern=pattern,
        n_columns=len(header),
        user_idx=position("user"),
        item_idx=position("item"),
        rating_idx=position("rating"),
        ts_idx=position("timestamp"),
    )


def _parse_parquet(con: duckdb.DuckDBPyConnection, path: Path, columns: Mapping[str, str | None] | None) -> None:
    described = con.execute("describe select * from read_parquet($path)", {"path": str(path)}).fetchall()
    mapping = _resolve(path, [row[0] for row in described], columns)
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
