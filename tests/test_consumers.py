"""A consumer process reading latest_recommendations every 200 ms while nightly runs write the warehouse.

The nightly flow runs three times on tiny built-in data delivered as landing files: a first run
trains and publishes; a second with no new file reuses the model; a third after a new file
arrives retrains and publishes through sharded inference on a local Dask cluster (2 workers).
The reader must never fail a query and must only ever see complete runs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import time

import duckdb
import pandas as pd
import pytest

from diffrec_core import runs, warehouse
from diffrec_core.config import InferenceConfig
from diffrec_core.ingest.synthetic import generate
from test_nightly import FAST_RUN, TINY

K = 10

READER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from diffrec_core.warehouse import read_query

    path, stop, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    sql = '''
        select run_id, count(*) as n_rows, count(distinct user_key) as n_users,
               bool_and(rank between 1 and $k) as ranks_ok
        from latest_recommendations where dataset = 'builtin' group by run_id
    '''
    per_user = '''
        select count(*) from (
            select user_key from latest_recommendations where dataset = 'builtin'
            group by user_key having count(*) <> $k or count(distinct rank) <> $k)
    '''
    with out.open("w") as log:
        while not stop.exists():
            started = time.monotonic()
            try:
                rows = read_query(path, sql, {"k": %d}).to_dict("records")
                broken = int(read_query(path, per_user, {"k": %d}).iloc[0, 0])
                log.write(json.dumps({"ok": True, "runs": rows, "broken_users": broken,
                                      "seconds": time.monotonic() - started}) + "\\n")
            except Exception as exc:
                log.write(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}) + "\\n")
            log.flush()
            time.sleep(max(0.0, 0.2 - (time.monotonic() - started)))
""" % (K, K))


@pytest.fixture(scope="module")
def harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def _landing_files(folder):
    """TINY as two CSV deliveries: the older 80% of the rows, then the newer 20%."""
    frame = generate(TINY).sort_values("ts", kind="stable")
    frame = pd.DataFrame({"user": frame["user_key"], "item": frame["item_key"], "rating": frame["rating"],
                          "timestamp": frame["ts"].astype("int64") // 10**6})
    cut = int(len(frame) * 0.8)
    first, second = folder / "2026-01-01.csv", folder.parent / "2026-01-02.csv"
    frame.iloc[:cut].to_csv(first, index=False)
    frame.iloc[cut:].to_csv(second, index=False)
    return second


def _reads(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.slow
def test_reader_sees_only_complete_runs_during_nightly_runs(harness, tmp_path):
    from flows.nightly import NightlyParams, nightly

    landing = tmp_path / "landing"
    landing.mkdir()
    later = _landing_files(landing)
    w = tmp_path / "w.duckdb"
    with warehouse.connect(w):
        pass  # the schema exists before the reader starts, so every read is a real query
    params = NightlyParams(warehouse=str(w), artifacts_dir=str(tmp_path / "art"), shard_dir=str(tmp_path / "shards"),
                           dataset="builtin", landing=str(landing), settle_seconds=0, run=FAST_RUN, inference=InferenceConfig(k=K),
                           gate_tolerance=1.0)
    stop, log = tmp_path / "stop", tmp_path / "reads.jsonl"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(w), str(stop), str(log)])
    try:
        first = nightly(params)
        second = nightly(params)
        shutil.move(str(later), landing / later.name)
        third = nightly(params.model_copy(update={"shards": 2, "task_runner": "dask", "dask_workers": 2}))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # let the reader see the last publish
            if any(r["ok"] and any(x["run_id"] == third.run_id for x in r["runs"]) for r in _reads(log)):
                break
            time.sleep(0.2)
    finally:
        stop.touch()
        reader.wait(timeout=30)
    assert reader.returncode == 0

    # the retrain policy
    assert not first.reused and first.promoted and first.recommendations > 0
    assert second.reused and second.run_id == first.run_id and second.recommendations == 0
    assert not third.reused and third.run_id != first.run_id and third.promoted and third.recommendations > 0
    # quality gates: raw and splits every night, recommendations whenever new ones are written
    assert [len(r.quality) for r in (first, second, third)] == [3, 2, 3]
    assert all(c["success"] for r in (first, second, third) for c in r.quality)
    with duckdb.connect(str(w), read_only=True) as con:
        assert con.execute("select count(*) from model_runs").fetchone()[0] == 2
        assert con.execute("select count(*) from ingest_batches").fetchone()[0] == 2
        lineage = set(con.execute("select batch_id, role, run_id from run_lineage").fetchall())
        final = {run_id: n for run_id, n in con.execute(
            "select run_id, count(*) from recommendations group by run_id").fetchall()}
    assert (2, "train", third.run_id) in lineage and (2, "recommend", third.run_id) in lineage
    assert (2, "train", first.run_id) not in lineage and (1, "train", first.run_id) in lineage

    # the run's markdown artifact compares it with the run it replaced
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["nightly-builtin"])))
    latest = max(artifacts, key=lambda a: a.created).data
    assert f"Model run `{third.run_id}`" in latest and f"previously published run `{first.run_id}`" in latest
    assert "| valid recall@20 |" in latest and "Regression gate: promoted" in latest

    # the reader: no failed query, only ever one complete run at a time
    reads = _reads(log)
    failures = [r for r in reads if not r["ok"]]
    slowest = max((r["seconds"] for r in reads if r["ok"]), default=0.0)
    print(f"reader: {len(reads)} reads, {len(failures)} failed, slowest read {slowest:.3f} s")
    assert not failures, failures[:3]
    assert len(reads) >= 20
    seen = set()
    for r in reads:
        assert len(r["runs"]) <= 1 and r["broken_users"] == 0, r
        for run in r["runs"]:
            assert run["ranks_ok"] and run["n_rows"] == final[run["run_id"]] == run["n_users"] * K, r
            seen.add(run["run_id"])
    assert seen == {first.run_id, third.run_id}

    # the same night again from the command line: nothing new, the published model is reused as it is
    from typer.testing import CliRunner

    from flows.cli import app

    config = tmp_path / "fast.json"
    config.write_text(json.dumps(FAST_RUN.model_dump(mode="json")))
    out = CliRunner().invoke(app, ["nightly", "--landing", str(landing), "-d", "builtin", "--settle-seconds", "0", "--config", str(config), "-k", str(K),
                                   "--warehouse", str(w), "--artifacts", str(tmp_path / "art")])
    assert out.exit_code == 0, out.output
    assert f"model {third.run_id} (reused) published" in out.output and "already up to date" in out.output

    # sharded on Dask (2 workers) wrote what the unsharded path writes
    sharded = _recs(w, third.run_id)
    copy = tmp_path / "copy.duckdb"
    shutil.copy(w, copy)
    runs.recommend_run(copy, third.run_id, InferenceConfig(k=K))
    pd.testing.assert_frame_equal(_recs(copy, third.run_id), sharded)


def _recs(path, run_id):
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("select user_key, item_key, rank, score from recommendations where run_id = ? "
                           "order by user_key, rank", [run_id]).df()
