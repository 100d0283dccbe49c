"""Import pre-made splits in the DiffRec authors' format into the warehouse.

A folder holds ``train_list.npy``, ``valid_list.npy`` and ``test_list.npy``: int64
``[user, item]`` rows grouped by user in interaction order. They become one split
setting of a dataset: dense ids as given, keys = ids as text, and timestamps that keep
the files' order (train, then valid, then test; row order within each), so a temporal
model can read the interaction order back.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from diffrec_core.ingest.loader import IngestResult, file_sha256, find_batch
from diffrec_core.interactions import NPY_SPLIT_FILES, load_npy_splits
from diffrec_core.splits import STAGED_TABLES, check_setting, drop_splits
from diffrec_core.warehouse import delete_where, run_sql, transaction, utc_now

ORIGIN = np.datetime64("2000-01-01T00:00:00", "s")


def presplit_sha256(directory: Path) -> str:
    """One hash over the three split files' hashes (their identity for the re-ingest check)."""
    digest = hashlib.sha256(b"diffrec-splits-v1")
    for name in NPY_SPLIT_FILES:
        digest.update(file_sha256(directory / name).encode())
    return digest.hexdigest()


def ingest_presplit(con: duckdb.DuckDBPyConnection, directory: str | Path, dataset: str, setting: str = "clean") -> IngestResult:
    """Load the authors' split files as setting ``setting`` of ``dataset`` in one transaction.

    Raises ``ValueError`` (one line, naming the file) for malformed arrays: wrong dtype or
    shape, negative ids, or overlap between splits, and for an invalid setting name; nothing is written then. The same files
    again for the same dataset change nothing.
    """
    check_setting(setting)
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"{directory}: not a folder with {', '.join(NPY_SPLIT_FILES)}")
    data = load_npy_splits(directory)  # validates every file
    sha256 = presplit_sha256(directory)
    previous = find_batch(con, dataset, sha256)
    if previous is not None:
        return previous
    started = utc_now()
    parts = [np.load(directory / name, allow_pickle=False) for name in NPY_SPLIT_FILES]
    rows = pd.DataFrame({
        "split": np.repeat(np.array(["train", "valid", "test"]), [len(p) for p in parts]),
        "user_id": np.concatenate([p[:, 0] for p in parts]).astype(np.int32),
        "item_id": np.concatenate([p[:, 1] for p in parts]).astype(np.int32),
    })
    rows["ts"] = (ORIGIN + np.arange(len(rows)).astype("timedelta64[s]")).astype("datetime64[us]")
    with transaction(con):
        con.register("presplit_rows", rows)
        try:
            batch_id = run_sql(con, "raw/insert_presplit_batch", dataset=dataset, source=str(directory), sha256=sha256,
                               rows=len(rows), started_at=started).fetchone()[0]
            for table in STAGED_TABLES:  # the dataset is restaged whole
                delete_where(con, table, dataset=dataset)
            drop_splits(con, dataset, setting)
            run_sql(con, "staging/import_presplit_users", dataset=dataset, n_users=data.n_users)
            run_sql(con, "staging/import_presplit_items", dataset=dataset, n_items=data.n_items)
            run_sql(con, "staging/import_presplit_interactions", dataset=dataset)
            run_sql(con, "splits/import_presplit_rows", dataset=dataset, setting=setting)
            run_sql(con, "splits/report", dataset=dataset, setting=setting, method="imported", min_rating=None,
                    train_ratio=None, valid_ratio=None, test_ratio=None)
        finally:
            con.unregister("presplit_rows")
    return IngestResult(batch_id, dataset, str(directory), "diffrec-splits", sha256, len(rows), len(rows), 0, skipped=False)
