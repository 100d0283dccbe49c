"""Importing the paper authors' pre-made splits (train/valid/test_list.npy) into the warehouse."""

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import shared_dataset
from diffrec_core import warehouse
from diffrec_core.ingest.presplit import ingest_presplit
from diffrec_core.interactions import load_split
from flows.cli import app


def write_splits(folder, train, valid, test, dtype=np.int64):
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train_list", train), ("valid_list", valid), ("test_list", test)):
        np.save(folder / f"{name}.npy", np.asarray(rows, dtype=dtype))
    return folder


TRAIN = [[0, 0], [0, 1], [1, 1], [1, 2], [2, 0], [2, 3]]
VALID = [[0, 2], [1, 0], [2, 1]]
TEST = [[0, 3], [1, 3], [2, 2]]


def test_import_round_trip_and_order(tmp_path):
    folder = write_splits(tmp_path / "splits", TRAIN, VALID, TEST)
    with warehouse.connect(tmp_path / "w.duckdb") as con:
        result = ingest_presplit(con, folder, "toy", "clean")
        assert not result.skipped and result.rows_loaded == 12
        data = load_split(con, "toy", "clean")
        assert data.train.nnz == 6 and data.valid.nnz == 3 and data.test.nnz == 3
        assert data.train[1, 2] == 1 and data.test[2, 2] == 1
        assert list(data.user_keys) == ["0", "1", "2"]
        # timestamps keep the file order (the authors' per-user interaction order)
        ts = con.execute("select user_id, item_id from split_interactions where split = 'train' order by ts").fetchall()
        assert [list(r) for r in ts] == TRAIN
        assert con.execute("select method from split_reports where dataset = 'toy'").fetchone()[0] == "imported"
        again = ingest_presplit(con, folder, "toy", "clean")
        assert again.skipped
        assert con.execute("select count(*) from split_interactions").fetchone()[0] == 12


@pytest.mark.parametrize(
    "train,valid,test,dtype,message",
    [
        (TRAIN, VALID, TEST, np.int32, "expected dtype int64"),
        ([[0, 0, 1]], VALID, TEST, np.int64, "expected shape"),
        ([[0, -1]] + TRAIN, VALID, TEST, np.int64, "non-negative"),
        (TRAIN, VALID + [[0, 0]], TEST, np.int64, "also in train_list.npy"),
    ],
)
def test_malformed_arrays_are_refused_and_nothing_written(tmp_path, train, valid, test, dtype, message):
    folder = write_splits(tmp_path / "bad", train, valid, test)
    if dtype is not np.int64:
        np.save(folder / "train_list.npy", np.asarray(train, dtype=dtype))
    with warehouse.connect(tmp_path / "w.duckdb") as con:
        with pytest.raises(ValueError, match=message):
            ingest_presplit(con, folder, "toy")
        assert con.execute("select count(*) from split_interactions").fetchone()[0] == 0
        assert con.execute("select count(*) from ingest_batches").fetchone()[0] == 0


def test_pickled_array_is_refused(tmp_path):
    folder = write_splits(tmp_path / "p", TRAIN, VALID, TEST)
    np.save(folder / "valid_list.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with warehouse.connect(tmp_path / "w.duckdb") as con:
        with pytest.raises(ValueError, match="valid_list.npy"):
            ingest_presplit(con, folder, "toy")


def test_cli_import(tmp_path):
    folder = write_splits(tmp_path / "toy_splits", TRAIN, VALID, TEST)
    w = tmp_path / "w.duckdb"
    r = CliRunner().invoke(app, ["ingest", "--format", "diffrec-splits", str(folder), "--dataset", "toy", "--setting", "paper", "--warehouse", str(w)])
    assert r.exit_code == 0 and "12 rows loaded" in r.output, r.output
    r = CliRunner().invoke(app, ["ingest", "--format", "diffrec-splits", str(tmp_path / "missing"), "--warehouse", str(w)])
    assert r.exit_code == 1 and "missing" in r.output
    r = CliRunner().invoke(app, ["ingest", "--format", "diffrec-splits", str(folder), "--dataset", "other", "--setting", "my split;",
                                 "--warehouse", str(w)])
    assert r.exit_code == 1 and "setting 'my split;'" in r.output and r.output.count("\n") == 1, r.output
    with warehouse.connect(w, read_only=True) as con:
        assert con.execute("select count(*) from split_interactions where dataset = 'other'").fetchone()[0] == 0


def test_paper_split_imports_with_published_counts(tmp_path):
    folder = shared_dataset("ml-1m_clean")
    with warehouse.connect(tmp_path / "w.duckdb") as con:
        ingest_presplit(con, folder, "ml-1m", "clean")
        data = load_split(con, "ml-1m", "clean")
    assert (data.n_users, data.n_items) == (5949, 2810)
    assert (data.train.nnz, data.valid.nnz, data.test.nnz) == (403277, 110722, 57532)
