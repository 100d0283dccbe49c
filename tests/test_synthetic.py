from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from diffrec_core.ingest import SyntheticConfig, generate, ingest_synthetic
from diffrec_core.warehouse import connect

SMALL = SyntheticConfig(n_users=600, n_items=400, n_interactions=24_000, seed=3)


@pytest.fixture(scope="module")
def small():
    return generate(SMALL)


def test_same_seed_same_frame(small):
    pd.testing.assert_frame_equal(small, generate(SMALL))
    other = generate(SMALL.model_copy(update={"seed": 4}))
    assert not small.equals(other)


def test_shape_types_and_ranges(small):
    assert list(small.columns) == ["user_key", "item_key", "rating", "ts"]
    assert abs(len(small) - SMALL.n_interactions) <= 0.15 * SMALL.n_interactions
    assert small.user_key.nunique() == SMALL.n_users
    assert small.item_key.nunique() <= SMALL.n_items
    assert not small.duplicated(["user_key", "item_key"]).any()
    assert set(small.rating.unique()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    start = SMALL.start
    assert small.ts.min() >= start and small.ts.max() < start + timedelta(days=SMALL.days)
    assert small.groupby("user_key").size().min() >= SMALL.min_per_user


def test_realistic_structure(small):
    shares = small.rating.value_counts(normalize=True)
    assert 0.2 <= shares[[1.0, 2.0, 3.0]].sum() <= 0.6  # a real share of low (noisy) ratings
    popularity = small.item_key.value_counts()
    top_tenth = popularity.iloc[: len(popularity) // 10].sum() / len(small)
    assert top_tenth > 0.3  # long tail: the top 10 % of items get far more than 10 % of rows
    activity = small.user_key.value_counts()
    assert activity.max() > 4 * activity.median()  # heavy and light users


def test_tastes_drive_choices_so_a_recommender_beats_popularity(small):
    """Item-kNN on each user's earlier 80 % beats popularity at Recall@20 on the later 20 %."""
    users = small.user_key.astype(int).to_numpy() - 1
    items = small.item_key.astype(int).to_numpy() - 1
    position = np.arange(len(small)) - np.searchsorted(users, users)  # rows are sorted by user, then time
    size = np.bincount(users)[users]
    liked = small.rating.to_numpy() >= 4
    test = position >= np.ceil(0.8 * size)
    shape = (SMALL.n_users, SMALL.n_items)
    train = sp.csr_matrix((np.ones((~test & liked).sum()), (users[~test & liked], items[~test & liked])), shape=shape)
    held = sp.csr_matrix((np.ones((test & liked).sum()), (users[test & liked], items[test & liked])), shape=shape)
    counts = np.maximum(np.asarray(train.sum(axis=0)).ravel(), 1)
    similarity = (train.T @ train).toarray() / np.sqrt(np.outer(counts, counts))
    np.fill_diagonal(similarity, 0)

    def recall_at_20(scores):
        scores = np.array(scores, dtype=float)
        scores[train.nonzero()] = -np.inf
        top = np.argsort(-scores, axis=1)[:, :20]
        hits = np.take_along_axis(held.toarray(), top, axis=1).sum(axis=1)
        n_held = np.asarray(held.sum(axis=1)).ravel()
        return (hits[n_held > 0] / n_held[n_held > 0]).mean()

    popularity = recall_at_20(np.tile(counts, (SMALL.n_users, 1)))
    knn = recall_at_20(train @ similarity)
    assert knn > 1.3 * popularity, (knn, popularity)


def test_large_catalogue_is_never_densified():
    # 1,000 users x 200,000 items would be 800 MB as a dense float32 matrix.
    config = SyntheticConfig(n_users=1_000, n_items=200_000, n_interactions=20_000, seed=1, user_chunk=256)
    frame = generate(config)
    assert abs(len(frame) - 20_000) <= 2_000 and frame.user_key.nunique() == 1_000


def test_config_validation_and_fingerprint():
    assert SyntheticConfig().fingerprint() == SyntheticConfig().fingerprint()
    assert SyntheticConfig().fingerprint() != SyntheticConfig(seed=1).fingerprint()
    for bad in [dict(n_users=0), dict(noise_share=1.0), dict(min_per_user=10, n_items=5),
                dict(n_users=100, n_interactions=50), dict(unknown=1)]:
        with pytest.raises(ValueError):
            SyntheticConfig(**bad)
    with pytest.raises(ValueError):
        SyntheticConfig(seed="x")


def test_ingest_synthetic_once(tmp_path):
    config = SyntheticConfig(n_users=50, n_items=40, n_interactions=1_000, seed=0)
    with connect(tmp_path / "w.duckdb") as con:
        first = ingest_synthetic(con, "syn", config)
        again = ingest_synthetic(con, "syn", config)
        assert not first.skipped and again.skipped and again.batch_id == first.batch_id
        assert first.sha256 == config.fingerprint() and first.rows_rejected == 0
        assert con.execute("select count(*) from raw_interactions").fetchall() == [(first.rows_loaded,)]
        assert con.execute("select min(ts) >= $s from raw_interactions", {"s": datetime(2022, 1, 1)}).fetchall() == [
            (True,)
        ]
