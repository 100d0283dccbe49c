"""FAISS k-means item clusters, train fingerprints, and embedding runs in the warehouse."""

import numpy as np
import pytest
import scipy.sparse as sp

from diffrec_core import clustering
from diffrec_core.config import ModelConfig, RunConfig, TrainingConfig


def _blobs(seed=0, n=300, d=8, centers=4):
    rng = np.random.default_rng(seed)
    c = rng.normal(0, 5, size=(centers, d))
    labels = rng.integers(0, centers, n)
    return (c[labels] + rng.normal(0, 1, size=(n, d))).astype(np.float32)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_every_item_in_exactly_one_cluster(k):
    x = _blobs()
    labels = clustering.kmeans(x, k, seed=1)
    assert labels.shape == (len(x),) and labels.dtype == np.int64
    assert set(np.unique(labels)) == set(range(k))  # ids 0..k-1, none empty
    sizes = clustering.cluster_report(labels, k).sizes
    assert sum(sizes) == len(x) and sizes == sorted(sizes, reverse=True)


def test_same_seed_same_clusters_and_seed_matters():
    x = np.random.default_rng(0).uniform(size=(500, 6)).astype(np.float32)  # no clear structure: many optima
    a = clustering.kmeans(x, 5, seed=3)
    b = clustering.kmeans(x, 5, seed=3)
    np.testing.assert_array_equal(a, b)
    others = [clustering.kmeans(x, 5, seed=s) for s in range(4, 12)]
    assert any(not np.array_equal(a, o) for o in others)


def test_separated_blobs_are_recovered():
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(-10, 1, (50, 4)), rng.normal(10, 1, (30, 4))]).astype(np.float32)
    labels = clustering.kmeans(x, 2, seed=0)
    assert (labels[:50] == 0).all() and (labels[50:] == 1).all()  # the larger cluster is 0


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="n_clusters must be in"):
        clustering.kmeans(np.zeros((3, 2), dtype=np.float32), 4, seed=0)
    with pytest.raises(ValueError, match="NaN"):
        clustering.kmeans(np.array([[np.nan, 0.0], [1.0, 1.0]], dtype=np.float32), 2, seed=0)
    with pytest.raises(ValueError, match="one id per item"):
        clustering.check_assignment(np.array([0, 1]), 3)


def test_embedding_file_is_checked(tmp_path):
    np.save(tmp_path / "e.npy", np.zeros((4, 3), dtype=np.float32))
    assert clustering.load_embedding_file(tmp_path / "e.npy", 4).shape == (4, 3)
    with pytest.raises(ValueError, match=r"shape \(5, d\)"):
        clustering.load_embedding_file(tmp_path / "e.npy", 5)
    with pytest.raises(ValueError, match="cannot read"):
        clustering.load_embedding_file(tmp_path / "missing.npy", 4)


def test_fingerprint_and_run_id_change_with_the_split_and_the_config():
    a = sp.csr_matrix(np.array([[1, 0, 1], [0, 1, 0]], dtype=np.float32))
    b = sp.csr_matrix(np.array([[1, 0, 1], [0, 1, 1]], dtype=np.float32))
    assert clustering.train_fingerprint(a) == clustering.train_fingerprint(a.copy())
    assert clustering.train_fingerprint(a) != clustering.train_fingerprint(b)
    run = RunConfig(model=ModelConfig(name="lightgcn"), training=TrainingConfig(seed=1))
    other = RunConfig(model=ModelConfig(name="lightgcn"), training=TrainingConfig(seed=2))
    fa = clustering.train_fingerprint(a)
    assert clustering.embedding_run_id(run, fa) == clustering.embedding_run_id(run, fa)
    assert clustering.embedding_run_id(run, fa) != clustering.embedding_run_id(other, fa)
    assert clustering.embedding_run_id(run, fa) != clustering.embedding_run_id(run, clustering.train_fingerprint(b))


def test_vectors_transform_decides_what_is_clustered():
    rng = np.random.default_rng(0)
    directions = np.vstack([rng.normal([5, 0, 0], 0.3, (40, 3)), rng.normal([0, 5, 0], 0.3, (60, 3))])
    scale = np.where(rng.uniform(size=(100, 1)) < 0.5, 0.1, 10.0)  # norms in two far-apart groups, unrelated to direction
    x = (directions * scale).astype(np.float32)
    by_direction = np.r_[np.ones(40), np.zeros(60)]  # the larger cluster is 0
    unit = clustering.kmeans(x, 2, seed=0, vectors="unit")
    np.testing.assert_array_equal(unit, by_direction)
    raw = clustering.kmeans(x, 2, seed=0)
    assert not np.array_equal(raw, by_direction) and not np.array_equal(raw, 1 - by_direction)  # raw follows the norm
    # centred_unit ignores a shift common to every vector
    shifted = x + np.array([0, 0, 50], dtype=np.float32)
    np.testing.assert_array_equal(clustering.kmeans(shifted, 2, seed=0, vectors="centred_unit"),
                                  clustering.kmeans(x, 2, seed=0, vectors="centred_unit"))
    norms = np.linalg.norm(clustering.prepare_vectors(x, "centred_unit"), axis=1)
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)


def test_bad_vectors_transform_is_refused():
    with pytest.raises(ValueError, match="must be one of raw, unit, centred_unit, got 'cosine'"):
        clustering.kmeans(np.ones((4, 2), dtype=np.float32), 2, seed=0, vectors="cosine")
    with pytest.raises(ValueError, match="1 item vectors have length 0"):
        clustering.kmeans(np.array([[0, 0], [1, 0], [0, 1]], dtype=np.float32), 2, seed=0, vectors="unit")
