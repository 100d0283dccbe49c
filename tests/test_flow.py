"""The pipeline flow under Prefect's test harness, on a small built-in dataset."""

import duckdb
import pytest

from diffrec_core.config import RunConfig, with_training
from diffrec_core.ingest.synthetic import SyntheticConfig

TINY = SyntheticConfig(n_users=150, n_items=80, n_interactions=6000, seed=5)
FAST_RUN = with_training(
    RunConfig.model_validate({"model": {"name": "diffrec", "params": {
        "diffusion": {"steps": 5, "noise_scale": 0.01, "noise_min": 0.001, "noise_max": 0.01},
        "denoiser": {"hidden_dims": [32], "emb_size": 8}}}}),
    epochs=3, eval_every=1, batch_size=64,
)


@pytest.fixture(scope="module")
def harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def test_pipeline_publishes_and_switches_atomically(harness, tmp_path):
    from flows.pipeline import PipelineParams, pipeline

    params = PipelineParams(warehouse=str(tmp_path / "w.duckdb"), artifacts_dir=str(tmp_path / "art"),
                            synthetic=TINY, run=FAST_RUN)
    first = pipeline(params)
    assert first.published and first.recommendations > 0
    assert 0.0 <= first.metrics["test"]["recall@20"] <= 1.0
    with duckdb.connect(params.warehouse, read_only=True) as con:
        rows = con.execute("select user_key, count(*), min(rank), max(rank) from latest_recommendations group by user_key").fetchall()
        assert rows and all(n == 20 and lo == 1 and hi == 20 for _, n, lo, hi in rows)
        assert {r[0] for r in con.execute("select distinct run_id from latest_recommendations").fetchall()} == {first.run_id}
        status = con.execute("select status from model_runs where run_id = ?", [first.run_id]).fetchone()[0]
        assert status == "published"
        # nothing recommended is in the user's history
        leaked = con.execute("""
            select count(*) from latest_recommendations r
            join raw_interactions h on h.dataset = r.dataset and h.user_key = r.user_key and h.item_key = r.item_key
        """).fetchone()[0]
        assert leaked == 0

    second = pipeline(params.model_copy(update={"run": with_training(FAST_RUN, seed=11)}))
    assert second.run_id != first.run_id
    with duckdb.connect(params.warehouse, read_only=True) as con:
        runs = {r[0] for r in con.execute("select distinct run_id from latest_recommendations").fetchall()}
        assert runs == {second.run_id}
        statuses = dict(con.execute("select run_id, status from model_runs").fetchall())
        assert statuses == {first.run_id: "evaluated", second.run_id: "published"}  # one published run per dataset
        # re-running the flow did not ingest the same data twice
        assert con.execute("select count(*) from ingest_batches").fetchone()[0] == 1


def test_nightly_l_variant_embeds_clusters_and_publishes(harness, tmp_path):
    """An L-variant in the nightly flow: LightGCN embeddings and k-means clusters are made (with their
    quality gates) before training, and the run serves recommendations."""
    from flows.nightly import NightlyParams, nightly

    run = with_training(RunConfig.model_validate({"model": {"name": "ldiffrec", "params": {
        "clusters": {"n_clusters": 2}, "latent_size": 16,
        "diffusion": {"steps": 5, "noise_scale": 0.01, "noise_min": 0.001, "noise_max": 0.01},
        "denoiser": {"hidden_dims": [32], "emb_size": 8}}}}), epochs=2, eval_every=1, batch_size=64)
    w = str(tmp_path / "w.duckdb")
    result = nightly(NightlyParams(warehouse=w, artifacts_dir=str(tmp_path / "art"), shard_dir=str(tmp_path / "shards"),
                                   synthetic=TINY, run=run))
    with duckdb.connect(w, read_only=True) as con:
        sizes = con.execute("select n_clusters, count(distinct cluster), count(*) from item_clusters group by 1 order by 1").fetchall()
        published = con.execute("select distinct run_id from latest_recommendations").fetchall()
    assert [s[0] for s in sizes] == [1, 2, 3, 4, 5]
    assert all(n_distinct == c for c, n_distinct, _ in sizes)
    assert published == [(result.run_id,)]


def test_nightly_reuses_a_model_only_while_its_checkpoint_exists(harness, tmp_path):
    import shutil

    from flows.nightly import NightlyParams, nightly

    w = str(tmp_path / "w.duckdb")
    params = NightlyParams(warehouse=w, artifacts_dir=str(tmp_path / "art"), shard_dir=str(tmp_path / "shards"),
                           synthetic=TINY, run=FAST_RUN)
    first = nightly(params)
    again = nightly(params)
    assert not first.reused and again.reused and again.run_id == first.run_id and again.recommendations == 0
    shutil.rmtree(tmp_path / "art" / first.run_id)  # the checkpoint is gone: train again, do not hand back the old run
    third = nightly(params)
    assert not third.reused and third.run_id != first.run_id and third.promoted
    with duckdb.connect(w, read_only=True) as con:
        assert con.execute("select distinct run_id from latest_recommendations").fetchall() == [(third.run_id,)]


def test_nightly_fails_a_bad_landing_file_at_once_and_retries_a_lock(harness, tmp_path, monkeypatch):
    """A deterministic error (here a file no reader can parse) fails the run on its first try; a lock
    that another process holds past the open's wait is retried."""
    import tasks.data
    from diffrec_core.ingest.readers import IngestError
    from flows.nightly import NightlyParams, nightly

    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "a.csv").write_text("user,item\n1,2\n")
    calls = []

    def failing(error):
        def ingest_file(con, path, dataset, fmt=None, columns=None):
            calls.append(path.name)
            raise error
        return ingest_file

    params = NightlyParams(warehouse=str(tmp_path / "w.duckdb"), artifacts_dir=str(tmp_path / "art"),
                           shard_dir=str(tmp_path / "shards"), landing=str(landing), settle_seconds=0, run=FAST_RUN)
    monkeypatch.setattr(tasks.data.ingest, "ingest_file", failing(IngestError("a.csv: no reader")))
    with pytest.raises(IngestError, match="a.csv: no reader"):
        nightly(params)
    assert calls == ["a.csv"]
    calls.clear()
    monkeypatch.setattr(tasks.data.ingest, "ingest_file", failing(duckdb.IOException("Could not set lock on file")))
    with pytest.raises(duckdb.IOException):
        nightly(params)
    assert calls == ["a.csv"] * 3  # the first try and two retries
