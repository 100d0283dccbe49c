"""Embed -> cluster -> L-DiffRec through the warehouse: stored, reused while the split is unchanged."""

import numpy as np
import pytest

from diffrec_core import clustering, embeddings, runs, warehouse
from diffrec_core.config import ModelConfig, RunConfig, TrainingConfig
from diffrec_core.ingest import SyntheticConfig, ingest_synthetic
from diffrec_core.splits import SplitConfig, make_split, stage

TINY = SyntheticConfig(n_users=120, n_items=60, n_interactions=3000, seed=3)
GCN = RunConfig(model=ModelConfig(name="lightgcn", params={"emb_size": 8, "n_layers": 2}),
                training=TrainingConfig(epochs=2, batch_size=64, eval_every=1, seed=1))
LDIFF = RunConfig(
    model=ModelConfig(name="ldiffrec", params={
        "clusters": {"source": "lightgcn", "n_clusters": 3, "seed": 4}, "latent_size": 12,
        "diffusion": {"steps": 5, "noise_scale": 0.01, "noise_min": 0.001, "noise_max": 0.01},
        "denoiser": {"hidden_dims": [16], "emb_size": 4}}),
    training=TrainingConfig(epochs=2, batch_size=64, eval_every=1, seed=1),
)


@pytest.fixture
def wh(tmp_path):
    path = str(tmp_path / "w.duckdb")
    with warehouse.connect(path) as con:
        ingest_synthetic(con, "syn", TINY)
        stage(con, "syn")
        make_split(con, "syn", SplitConfig())
    return path


def test_embed_and_cluster_are_stored_and_reused(wh):
    first = embeddings.embed(wh, "syn", "clean", GCN)
    assert not first.reused and first.dim == 8 and first.embedding_run.startswith("emb-")
    again = embeddings.embed(wh, "syn", "clean", GCN)
    assert again.reused and again.embedding_run == first.embedding_run  # same split fingerprint and config
    other = embeddings.embed(wh, "syn", "clean", GCN.model_copy(update={"training": GCN.training.model_copy(update={"seed": 2})}))
    assert other.embedding_run != first.embedding_run

    sizes = embeddings.cluster(wh, first.embedding_run, "syn", [1, 2, 3, 4, 5], seed=4)
    assert all(sum(s) == first.n_items and len(s) == c for c, s in sizes.items())
    with warehouse.connect(wh, read_only=True) as con:
        vectors = embeddings.load_embeddings(con, first.embedding_run, "syn")
        labels = embeddings.item_clusters(con, first.embedding_run, "syn", 3, 4)
        n_rows = con.execute("select count(*) from item_clusters where embedding_run = ?", [first.embedding_run]).fetchone()[0]
        with pytest.raises(ValueError, match="run the cluster step first"):
            embeddings.item_clusters(con, first.embedding_run, "syn", 3, 99)
    assert vectors.shape == (first.n_items, 8) and np.isfinite(vectors).all()
    assert labels.shape == (first.n_items,) and set(labels) == {0, 1, 2}
    assert n_rows == 5 * first.n_items  # every item in exactly one cluster per C
    assert embeddings.cluster(wh, first.embedding_run, "syn", [3], seed=4) == {3: sizes[3]}  # reused, not duplicated
    with warehouse.connect(wh, read_only=True) as con:
        assert con.execute("select count(*) from item_clusters where embedding_run = ?", [first.embedding_run]).fetchone()[0] == n_rows

    # another vectors transform is another clustering: it replaces the stored one for that C, which is then found only by it
    embeddings.cluster(wh, first.embedding_run, "syn", [3], seed=4, vectors="centred_unit")
    with warehouse.connect(wh, read_only=True) as con:
        centred = embeddings.item_clusters(con, first.embedding_run, "syn", 3, 4, "centred_unit")
        with pytest.raises(ValueError, match="vectors=raw: run the cluster step first"):
            embeddings.item_clusters(con, first.embedding_run, "syn", 3, 4)
        assert con.execute("select count(*) from item_clusters where embedding_run = ?", [first.embedding_run]).fetchone()[0] == n_rows
    expected = clustering.kmeans(vectors, 3, 4, vectors="centred_unit")
    np.testing.assert_array_equal(centred, expected)


def test_a_warehouse_from_before_the_vectors_column_keeps_its_clusters(tmp_path):
    path = str(tmp_path / "old.duckdb")
    import duckdb

    con = duckdb.connect(path)  # the item_clusters table as warehouses made before the vectors column hold it
    con.execute("create table item_clusters (embedding_run varchar not null, dataset varchar not null, n_clusters integer not null, "
                "seed bigint not null, item_id integer not null, cluster integer not null, "
                "primary key (embedding_run, dataset, n_clusters, item_id))")
    con.execute("insert into item_clusters values ('emb-x', 'syn', 2, 7, 0, 1), ('emb-x', 'syn', 2, 7, 1, 0)")
    con.close()
    with warehouse.connect(path, read_only=False) as con:
        np.testing.assert_array_equal(embeddings.item_clusters(con, "emb-x", "syn", 2, 7), [1, 0])


def test_ldiffrec_trains_evaluates_and_recommends_from_stored_clusters(wh, tmp_path):
    emb = embeddings.embed(wh, "syn", "clean", GCN)
    embeddings.cluster(wh, emb.embedding_run, "syn", [3], seed=4)
    with pytest.raises(ValueError, match="run the embed and cluster steps first"):
        runs.train_run(wh, "syn", "clean", LDIFF, tmp_path / "art")
    run_id = runs.train_run(wh, "syn", "clean", LDIFF, tmp_path / "art", embedding_run=emb.embedding_run)
    metrics = runs.evaluate_run(wh, run_id, device="cpu")  # rebuilt from its checkpoint, clusters included
    assert 0.0 <= metrics["test"]["recall@20"] <= 1.0
    assert runs.recommend_run(wh, run_id, device="cpu") > 0


def test_an_ldiffrec_run_trains_on_the_clustering_of_its_own_vectors_transform(wh, tmp_path):
    emb = embeddings.embed(wh, "syn", "clean", GCN)
    embeddings.cluster(wh, emb.embedding_run, "syn", [3], seed=4)  # raw only
    params = {**LDIFF.model.params, "clusters": {**LDIFF.model.params["clusters"], "vectors": "unit"}}
    unit_run = LDIFF.model_copy(update={"model": LDIFF.model.model_copy(update={"params": params})})
    with pytest.raises(ValueError, match="vectors=unit: run the cluster step first"):
        runs.train_run(wh, "syn", "clean", unit_run, tmp_path / "art", embedding_run=emb.embedding_run)
    embeddings.cluster(wh, emb.embedding_run, "syn", [3], seed=4, vectors="unit")
    run_id = runs.train_run(wh, "syn", "clean", unit_run, tmp_path / "art", embedding_run=emb.embedding_run)
    with warehouse.connect(wh, read_only=True) as con:
        stored = embeddings.item_clusters(con, emb.embedding_run, "syn", 3, 4, "unit")
        vectors = embeddings.load_embeddings(con, emb.embedding_run, "syn")
    np.testing.assert_array_equal(stored, clustering.kmeans(vectors, 3, 4, vectors="unit"))
    assert runs.recommend_run(wh, run_id, device="cpu") > 0


def test_authors_source_is_refused_in_the_pipeline():
    bad = RunConfig(model=ModelConfig(name="ldiffrec", params={"clusters": {"source": "authors"}}))
    with pytest.raises(ValueError, match="pre-split data"):
        embeddings.clusters_for(bad)
    assert embeddings.clusters_for(RunConfig()) is None


def test_an_l_variant_gets_the_sweeps_clusterings_and_its_own():
    clusters = embeddings.clusters_for(LDIFF)
    assert embeddings.cluster_counts(clusters) == [1, 2, 3, 4, 5]
    eight = RunConfig.model_validate({**LDIFF.model_dump(mode="json"), "model": {
        "name": "ldiffrec", "params": {**LDIFF.model.params, "clusters": {"source": "lightgcn", "n_clusters": 8, "seed": 4}}}})
    assert embeddings.cluster_counts(embeddings.clusters_for(eight)) == [1, 2, 3, 4, 5, 8]
    assert embeddings.clusters_for(GCN) is None
