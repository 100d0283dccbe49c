from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from conftest import shared_dataset

from diffrec_core.ingest import ingest_frame
from diffrec_core.interactions import load_history, load_npy_splits, load_split
from diffrec_core.splits import SplitConfig, make_split, stage
from diffrec_core.warehouse import connect

ROWS = [("a", "x", 5, 0), ("a", "y", 5, 1), ("b", "x", 5, 2), ("b", "y", 4, 3), ("a", "z", 2, 4),
        ("c", "x", 5, 5), ("a", "w", 5, 6), ("d", "v", None, 7), ("b", "w", 5, 8), ("c", "y", 5, 9)]


@pytest.fixture
def con(tmp_path):
    with connect(tmp_path / "w.duckdb") as con:
        base = datetime(2024, 1, 1)
        frame = pd.DataFrame(ROWS, columns=["user_key", "item_key", "rating", "day"])
        frame["ts"] = [base + timedelta(days=d) for d in frame.pop("day")]
        ingest_frame(con, frame, "d", "test rows")
        stage(con, "d")
        make_split(con, "d", SplitConfig(ratios=(0.5, 0.25, 0.25)))
        yield con


def pairs(matrix, data):
    coo = matrix.tocoo()
    return sorted((str(data.user_keys[u]), str(data.item_keys[i])) for u, i in zip(coo.row, coo.col))


def test_load_split_matrices(con):
    data = load_split(con, "d", "clean")
    assert (data.n_users, data.n_items) == (4, 5)  # every staged user and item, z and d included
    for matrix in (data.train, data.valid, data.test):
        assert sp.isspmatrix_csr(matrix) and matrix.dtype == np.float32 and matrix.shape == (4, 5)
        assert set(np.unique(matrix.data)) <= {1.0}
    assert list(data.user_keys) == ["a", "b", "c", "d"] and list(data.item_keys) == ["v", "w", "x", "y", "z"]
    assert pairs(data.train, data) == [("a", "x"), ("a", "y"), ("b", "x"), ("b", "y"), ("c", "x")]
    assert pairs(data.valid, data) == []  # a-w and d-v are not evaluable
    assert pairs(data.test, data) == [("c", "y")]  # b-w is not evaluable


def test_load_split_errors(con):
    with pytest.raises(ValueError, match="no train rows"):
        load_split(con, "d", "missing-setting")
    with pytest.raises(ValueError, match="not staged"):
        load_split(con, "nope", "clean")


def test_load_history(con):
    history, user_keys, item_keys = load_history(con, "d")
    assert history.shape == (4, 5) and history.dtype == np.float32
    assert history.nnz == 9  # a-z (rating 2) dropped, d-v (implicit) kept
    everything, _, _ = load_history(con, "d", min_rating=None)
    assert everything.nnz == 10
    assert list(user_keys) == ["a", "b", "c", "d"] and list(item_keys) == ["v", "w", "x", "y", "z"]


def test_load_npy_splits_reference_data():
    data = load_npy_splits(shared_dataset("ml-1m_clean"))
    assert (data.n_users, data.n_items) == (5_949, 2_810)
    assert (data.train.nnz, data.valid.nnz, data.test.nnz) == (403_277, 110_722, 57_532)
    assert data.train.dtype == np.float32 and sp.isspmatrix_csr(data.train)
    assert data.user_keys[0] == "0" and data.item_keys[-1] == "2809"


def save_splits(tmp_path, train, valid, test):
    for name, array in [("train_list.npy", train), ("valid_list.npy", valid), ("test_list.npy", test)]:
        np.save(tmp_path / name, array)


def good():
    train = np.array([[0, 0], [0, 1], [1, 1], [2, 3]], dtype=np.int64)
    valid = np.array([[0, 2], [1, 0]], dtype=np.int64)
    test = np.array([[2, 1]], dtype=np.int64)
    return train, valid, test


def test_load_npy_splits_small(tmp_path):
    save_splits(tmp_path, *good())
    data = load_npy_splits(tmp_path)
    assert (data.n_users, data.n_items) == (3, 4)
    assert data.train[2, 3] == 1.0 and data.valid[1, 0] == 1.0 and data.test.nnz == 1


@pytest.mark.parametrize(
    "which, array, message",
    [
        ("train", np.array([[0, 0], [1, 1]], dtype=np.float64), "dtype int64"),
        ("valid", np.array([[0, 2, 1]], dtype=np.int64), r"shape \(n, 2\)"),
        ("test", np.array([0, 1], dtype=np.int64), r"shape \(n, 2\)"),
        ("test", np.array([[-1, 1]], dtype=np.int64), "non-negative"),
        ("test", np.array([[0, 0]], dtype=np.int64), "also in train_list.npy"),
        ("valid", np.array([[0, 0]], dtype=np.int32), "dtype int64"),
        ("train", np.array([{"a": 1}], dtype=object), "not a readable .npy"),
    ],
)
def test_load_npy_splits_rejects_malformed(tmp_path, which, array, message):
    train, valid, test = good()
    arrays = {"train": train, "valid": valid, "test": test}
    arrays[which] = array
    save_splits(tmp_path, arrays["train"], arrays["valid"], arrays["test"])
    with pytest.raises(ValueError, match=message) as error:
        load_npy_splits(tmp_path)
    text = str(error.value)
    assert "\n" not in text and f"{which}_list.npy" in text


def test_load_npy_splits_missing_file(tmp_path):
    train, valid, _ = good()
    np.save(tmp_path / "train_list.npy", train)
    np.save(tmp_path / "valid_list.npy", valid)
    with pytest.raises(ValueError, match="test_list.npy: file not found"):
        load_npy_splits(tmp_path)
