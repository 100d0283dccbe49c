"""The nightly retrain policy, sharded inference and the nightly flow on tiny built-in data."""

from diffrec_core.config import RunConfig, with_training
from diffrec_core.ingest.synthetic import SyntheticConfig

TINY = SyntheticConfig(n_users=150, n_items=80, n_interactions=6000, seed=5)
FAST_RUN = with_training(
    RunConfig.model_validate({"model": {"name": "diffrec", "params": {
        "diffusion": {"steps": 5, "noise_scale": 0.01, "noise_min": 0.001, "noise_max": 0.01},
        "denoiser": {"hidden_dims": [32], "emb_size": 8}}}}),
    epochs=3, eval_every=1, batch_size=64,
)

import json
import shutil
from pathlib import Path
from datetime import datetime, timedelta

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from diffrec_core import coldstart, ingest, nightly, runs, sharding, splits, warehouse
from diffrec_core.config import InferenceConfig


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A warehouse with TINY staged and split, one fingerprinted, evaluated model run (not published)."""
    root = tmp_path_factory.mktemp("nightly")
    w = root / "w.duckdb"
    with warehouse.connect(w) as con:
        ingest.ingest_synthetic(con, "builtin", TINY)
        splits.stage(con, "builtin")
        splits.make_split(con, "builtin", splits.SplitConfig())
    fp = nightly.data_fingerprint(w, "builtin", "clean")
    run_id = runs.train_run(w, "builtin", "clean", FAST_RUN, root / "art")
    runs.evaluate_run(w, run_id)
    return w, run_id, fp


@pytest.fixture
def copy(trained, tmp_path):
    """A private copy of the trained warehouse (same checkpoints) to change."""
    w, run_id, fp = trained
    target = tmp_path / "w.duckdb"
    shutil.copy(w, target)
    return target, run_id, fp


def _recs(path, run_id):
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("select user_key, item_key, rank, score from recommendations where run_id = ? "
                           "order by user_key, rank", [run_id]).df()


def test_plan_shards_cover_users_once():
    assert sharding.plan_shards(10, 3) == [(0, 3), (3, 7), (7, 10)]
    assert sharding.plan_shards(2, 5) == [(0, 1), (1, 2)]
    assert sharding.plan_shards(0, 4) == []
    ranges = sharding.plan_shards(1001, 7)
    assert ranges[0][0] == 0 and ranges[-1][1] == 1001 and all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    with pytest.raises(ValueError, match="shards"):
        sharding.plan_shards(10, 0)


def test_landing_files_sorted_and_filtered(tmp_path):
    for name in ("b.csv", "a.parquet", "notes.txt", ".hidden.csv"):
        (tmp_path / name).write_text("x")
    assert [p.split("/")[-1] for p in nightly.landing_files(tmp_path).ready] == ["a.parquet", "b.csv"]
    with pytest.raises(ValueError, match="landing folder"):
        nightly.landing_files(tmp_path / "missing")


def test_fresh_landing_files_wait_and_a_rewritten_one_is_refused(tmp_path):
    import os
    import time

    landing = tmp_path / "landing"
    landing.mkdir()
    w = tmp_path / "w.duckdb"
    with pytest.raises(ValueError, match=f"landing folder {landing} has no file to ingest .* and warehouse {w} does not exist yet"):
        nightly.landing_files(landing, warehouse_path=w, dataset="d")
    old, new = landing / "old.csv", landing / "new.csv"
    old.write_text("user,item,rating,timestamp\n" + "".join(f"{u},{i},5,{1600000000 + u * 10 + i}\n" for u in range(6) for i in range(6)))
    new.write_text("user,item\n1,2\n")  # still being written, perhaps
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    found = nightly.landing_files(landing, settle_seconds=60, warehouse_path=w, dataset="d")
    assert (found.ready, found.waiting) == ([str(old)], [str(new)])
    with warehouse.connect(w) as con:
        ingest.ingest_file(con, old, "d")
    assert nightly.landing_files(landing, settle_seconds=60, warehouse_path=w, dataset="d").ready == [str(old)]  # ingest skips it
    with old.open("a") as f:
        f.write("9,9,5,1600009999\n")
    os.utime(old, (an_hour_ago, an_hour_ago))
    with pytest.raises(ValueError, match=f"landing file {old} changed after it was ingested as batch 1 of dataset 'd' "):
        nightly.landing_files(landing, settle_seconds=60, warehouse_path=w, dataset="d")
    assert nightly.landing_files(landing, settle_seconds=60, warehouse_path=w, dataset="other").ready == [str(old)]
    in_an_hour = time.time() + 3600  # a clock ahead of this one: waits, unless there is no settle time
    os.utime(new, (in_an_hour, in_an_hour))
    assert nightly.landing_files(landing, settle_seconds=60).waiting == [str(new)]
    assert nightly.landing_files(landing, settle_seconds=0).ready == [str(new), str(old)]


def test_fingerprint_stable_and_follows_the_train_split(copy, trained):
    w, run_id, fp = copy
    here = nightly.data_fingerprint(w, "builtin", "clean")
    assert here == fp  # a copy of the file is the same warehouse with the same data
    with warehouse.connect(w) as con:
        splits.make_split(con, "builtin", splits.SplitConfig(ratios=(0.6, 0.2, 0.2)))
    assert nightly.data_fingerprint(w, "builtin", "clean") != here
    with pytest.raises(ValueError, match="no train rows"):
        nightly.data_fingerprint(w, "builtin", "no-such-setting")


def test_reuse_needs_same_fingerprint_config_and_age(trained):
    w, run_id, fp = trained
    assert nightly.find_reusable_run(w, "builtin", "clean", FAST_RUN, fp, 24) == run_id
    assert nightly.find_reusable_run(w, "builtin", "clean", with_training(FAST_RUN, seed=7), fp, 24) is None
    assert nightly.find_reusable_run(w, "builtin", "clean", FAST_RUN, "0" * 64, 24) is None
    assert nightly.find_reusable_run(w, "builtin", "clean", FAST_RUN, fp, 0) is None
    assert nightly.find_reusable_run(w, "builtin", "clean", FAST_RUN, fp, 1e-9) is None  # older than ~4 µs
    with duckdb.connect(str(w), read_only=True) as con:
        assert con.execute("select data_fingerprint from model_runs where run_id = ?", [run_id]).fetchone()[0] == fp
        roles = con.execute("select role, count(*) from run_inputs where run_id = ? group by role", [run_id]).fetchall()
        assert roles == [("train", 1)]


def _fake_run(w, base_run: str, run_id: str, recall: float) -> None:
    with warehouse.connect(w) as con:
        info = runs.get_run(con, base_run)
        warehouse.record_model_run(
            con, run_id=run_id, dataset=info.dataset, setting=info.setting, model=info.model, config=info.config,
            metrics={**info.metrics, "valid": {**info.metrics["valid"], "recall@20": recall}},
            checkpoint_path=info.checkpoint_path, status="evaluated", started_at=datetime(2026, 1, 1),
        )


def test_regression_gate(copy):
    w, run_id, _ = copy
    first = nightly.regression_gate(w, run_id, 0.01)
    assert first.promote and first.published is None
    runs.recommend_run(w, run_id)
    runs.publish_run(w, run_id)
    score = first.candidate_score
    _fake_run(w, run_id, "worse", score - 0.05)
    _fake_run(w, run_id, "slightly-worse", score - 0.005)
    rejected = nightly.regression_gate(w, "worse", 0.01)
    assert not rejected.promote and rejected.published == run_id and "more than 0.01 below" in rejected.reason
    assert nightly.regression_gate(w, "worse", 0.1).promote
    assert nightly.regression_gate(w, "slightly-worse", 0.01).promote
    assert nightly.regression_gate(w, run_id, 0.0).promote  # the published model itself
    with duckdb.connect(str(w), read_only=True) as con:
        assert con.execute("select run_id from published").fetchone()[0] == run_id
        assert con.execute("select status from model_runs where run_id = 'worse'").fetchone()[0] == "rejected"
        history = con.execute("select run_id, is_published, valid_recall_20 from model_metrics_history "
                              "where run_id = 'worse'").fetchone()
        assert history[1] is False and history[2] == pytest.approx(score - 0.05)
    with pytest.raises(ValueError, match="tolerance"):
        nightly.regression_gate(w, run_id, -1)
    # like with like: a stale stored figure of the published run does not decide; it is scored on today's split
    with warehouse.connect(w) as con:
        info = runs.get_run(con, run_id)
        warehouse.update_model_run(con, run_id, metrics={**info.metrics, "valid": {**info.metrics["valid"], "recall@20": 0.99}})
    fair = nightly.regression_gate(w, "slightly-worse", 0.01)
    assert fair.promote and fair.published_score == pytest.approx(score) and "same validation split" in fair.reason
    with duckdb.connect(str(w)) as con:  # the published checkpoint is gone: only its stored figure is left
        con.execute("update model_runs set checkpoint_path = '/nonexistent' where run_id = ?", [run_id])
    stale = nightly.regression_gate(w, "slightly-worse", 0.01)
    assert not stale.promote and stale.published_score == 0.99 and "stored figure" in stale.reason


def test_sharded_inference_equals_unsharded(copy, tmp_path):
    w, run_id, _ = copy
    n = runs.recommend_run(w, run_id, InferenceConfig(k=20, batch_size=32))
    unsharded = _recs(w, run_id)
    paths = [sharding.score_shard(w, run_id, a, b, tmp_path / "shards", InferenceConfig(k=20, batch_size=32))
             for a, b in sharding.shard_ranges(w, run_id, 3)]
    assert len(paths) == 3 and all(pq.read_table(p).num_rows > 0 for p in paths)
    assert sharding.load_shards(w, run_id, paths) == n
    sharded = _recs(w, run_id)
    pd.testing.assert_frame_equal(sharded, unsharded)
    with pytest.raises(ValueError, match="overlap"):
        sharding.load_shards(w, run_id, paths + paths[:1])
    with pytest.raises(ValueError, match="does not exist"):
        sharding.load_shards(w, run_id, [str(tmp_path / "missing.parquet")])
    assert _recs(w, run_id).equals(sharded)  # failed loads changed nothing


def test_cold_start_scores_a_history_like_batch_inference(copy, tmp_path):
    w, run_id, _ = copy
    runs.recommend_run(w, run_id)
    runs.publish_run(w, run_id)
    with duckdb.connect(str(w), read_only=True) as con:
        user = con.execute("select user_key from latest_recommendations order by user_key limit 1").fetchone()[0]
        liked = [r[0] for r in con.execute("select item_key from raw_interactions where user_key = ? and rating >= 4 "
                                           "order by ts", [user]).fetchall()]
        disliked = {r[0] for r in con.execute("select item_key from raw_interactions where user_key = ? and rating < 4",
                                              [user]).fetchall()}
        batch = [r[0] for r in con.execute("select item_key from latest_recommendations where user_key = ? order by rank",
                                           [user]).fetchall()]
    result = coldstart.score_history(w, "builtin", liked + ["no-such-item", liked[0]], k=20 + len(disliked))
    assert result.run_id == run_id and result.unknown == ["no-such-item"] and result.known == liked
    items = list(result.recommendations["item_key"])
    assert not set(items) & set(liked)
    # the same input scores the same: batch inference also masks the low-rated items it did not take as input
    assert [i for i in items if i not in disliked][:20] == batch
    with pytest.raises(ValueError, match="none of the"):
        coldstart.score_history(w, "builtin", ["x", "y"])
    with pytest.raises(ValueError, match="no published model"):
        coldstart.score_history(w, "other", liked)

    from flows.cli import app

    path = tmp_path / "history.json"
    path.write_text(json.dumps(liked[:3] + ["unknown-1"]))
    out = CliRunner().invoke(app, ["recommend", "--history", str(path), "-k", "5", "--warehouse", str(w)])
    assert out.exit_code == 0, out.output
    assert "1 unknown item keys: unknown-1" in out.output and out.output.count("\n") == 7
    path.write_text("not json")
    out = CliRunner().invoke(app, ["recommend", "--history", str(path), "--warehouse", str(w)])
    assert out.exit_code == 1 and "not valid JSON" in out.output


def test_read_helpers_and_consumer_views(copy):
    w, run_id, _ = copy
    runs.recommend_run(w, run_id, InferenceConfig(k=5))
    runs.publish_run(w, run_id)
    frame = warehouse.read_query(w, "select * from recommendations_for($d, $u)", {"d": "builtin", "u": "1"})
    assert list(frame["rank"]) == [1, 2, 3, 4, 5] and set(frame["run_id"]) == {run_id}
    named = warehouse.read_named(w, "outputs/user_recommendations", dataset="builtin", user_key="1")
    assert list(named["item_key"]) == list(frame["item_key"])
    with warehouse.connect(w) as con:  # another process's writer would hold this lock
        con.execute("select 1")
    lineage = warehouse.read_query(w, "select * from run_lineage where run_id = $r", {"r": run_id})
    assert set(lineage["role"]) == {"train", "recommend"} and lineage["n_recommendations"].iloc[0] > 0


@pytest.mark.parametrize("args,message", [
    (["--landing", "/no/such/folder"], "no such folder"),
    (["--task-runner", "ray"], "--task-runner must be thread or dask"),
    (["--landing", "EMPTY"], "has no file to ingest (*.csv, *.parquet, *.dat, *.data, *.tsv) and warehouse"),
])
def test_nightly_cli_rejects_bad_options(tmp_path, args, message):
    from flows.cli import app

    (tmp_path / "empty").mkdir()
    args = [str(tmp_path / "empty") if a == "EMPTY" else a for a in args]
    out = CliRunner().invoke(app, ["nightly", *args, "--warehouse", str(tmp_path / "w.duckdb")])
    assert out.exit_code == 1 and message in out.output and not (tmp_path / "w.duckdb").exists()


def test_a_model_serves_by_key_after_a_restage_adds_items(copy, tmp_path):
    """New items are staged (dense ids move); the published model keeps serving, matched by key, and never
    recommends what it has not seen. A checkpoint without its keys refuses on every inference path."""
    w, run_id, _ = copy
    runs.recommend_run(w, run_id)
    runs.publish_run(w, run_id)
    before = _recs(w, run_id)
    with duckdb.connect(str(w), read_only=True) as con:
        user = con.execute("select min(user_key) from latest_recommendations").fetchone()[0]
        first_id = dict(con.execute("select item_key, item_id from items where dataset = 'builtin'").fetchall())
        liked = [r[0] for r in con.execute("select item_key from raw_interactions where user_key = ? and rating >= 4 order by ts",
                                           [user]).fetchall()]
    cold = coldstart.score_history(w, "builtin", liked, k=10).recommendations
    with warehouse.connect(w) as con:  # new items arrive and are staged; negative keys sort first, so every id moves
        con.execute("insert into raw_interactions by name select batch_id, line_no + 1000000 as line_no, dataset, user_key, "
                    "'-' || item_key as item_key, rating, ts from raw_interactions limit 5")
        assert splits.stage(con, "builtin").splits_dropped == ("clean",)  # its rows held the old ids
        splits.make_split(con, "builtin", splits.SplitConfig())
        now_id = dict(con.execute("select item_key, item_id from items where dataset = 'builtin'").fetchall())
    assert len(now_id) == len(first_id) + 5 and all(now_id[key] == i + 5 for key, i in first_id.items())
    assert runs.recommend_run(w, run_id) == len(before)
    with duckdb.connect(str(w), read_only=True) as con:  # a refresh of the published run: its pending list
        after = con.execute("select user_key, item_key, rank, score from recommendations_candidate where run_id = ? "
                            "order by user_key, rank", [run_id]).df()
    pd.testing.assert_frame_equal(after, before, check_dtype=False, atol=1e-5)
    assert not after["item_key"].str.startswith("-").any()
    path = sharding.score_shard(w, run_id, 0, 150, tmp_path / "shards")
    shard = pq.read_table(path).to_pandas().sort_values(["user_key", "rank"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(shard[["user_key", "item_key", "rank"]], before[["user_key", "item_key", "rank"]], check_dtype=False)
    again = coldstart.score_history(w, "builtin", liked, k=10).recommendations
    assert list(again["item_key"]) == list(cold["item_key"])
    new_keys = sorted(key for key in now_id if key.startswith("-"))  # staged today, unknown to the model
    mixed = coldstart.score_history(w, "builtin", liked + new_keys, k=10)
    assert mixed.known == liked and mixed.unknown == new_keys
    with pytest.raises(ValueError, match=f"none of the {len(new_keys)} item keys is known to model run '{run_id}'"):
        coldstart.score_history(w, "builtin", new_keys)

    (Path(runs_checkpoint(w, run_id)) / "keys.npz").unlink()
    expected = "trained on 80 items but the warehouse now has 85: retrain"
    with pytest.raises(ValueError, match=expected):
        runs.recommend_run(w, run_id)
    with pytest.raises(ValueError, match=expected):
        sharding.score_shard(w, run_id, 0, 10, tmp_path / "other-shards")
    with pytest.raises(ValueError, match=expected):
        coldstart.score_history(w, "builtin", liked)
    assert not (tmp_path / "other-shards").exists()


def runs_checkpoint(w, run_id):
    with warehouse.connect(w, read_only=True) as con:
        return runs.get_run(con, run_id).checkpoint_path


def test_a_refresh_that_was_not_published_is_not_current(copy, tmp_path):
    w, run_id, _ = copy
    path = sharding.score_shard(w, run_id, 0, 150, tmp_path / "shards")
    sharding.load_shards(w, run_id, [path])
    runs.publish_run(w, run_id)
    assert nightly.recommendations_current(w, run_id)
    sharding.load_shards(w, run_id, [path])  # a refresh of the published run waits for its gates
    assert not nightly.recommendations_current(w, run_id)
    runs.publish_run(w, run_id)
    assert nightly.recommendations_current(w, run_id)


def test_an_id_based_model_finds_its_users_by_key_after_their_ids_move(copy, tmp_path):
    w, _, _ = copy
    mf = with_training(RunConfig.model_validate({"model": {"name": "mf", "params": {"factors": 8}}}), epochs=2, batch_size=256)
    run_id = runs.train_run(w, "builtin", "clean", mf, tmp_path / "art")
    before = pq.read_table(sharding.score_shard(w, run_id, 0, 150, tmp_path / "a")).to_pandas()
    with warehouse.connect(w) as con:  # three new users whose keys sort first: every known user's id moves by 3
        con.execute("insert into raw_interactions by name select batch_id, line_no + 1000000 as line_no, dataset, "
                    "'-' || user_key as user_key, item_key, rating, ts from raw_interactions "
                    "where user_key in (select distinct user_key from raw_interactions order by 1 limit 3)")
        assert splits.stage(con, "builtin").splits_dropped == ("clean",)  # its rows held the old ids
        splits.make_split(con, "builtin", splits.SplitConfig())
    moved = pq.read_table(sharding.score_shard(w, run_id, 3, 153, tmp_path / "b")).to_pandas()
    pd.testing.assert_frame_equal(moved.sort_values(["user_key", "rank"]).reset_index(drop=True),
                                  before.sort_values(["user_key", "rank"]).reset_index(drop=True), check_dtype=False)
    with pytest.raises(ValueError, match="users it has not seen: retrain"):
        sharding.score_shard(w, run_id, 0, 3, tmp_path / "c")
