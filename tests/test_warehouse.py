from datetime import datetime

import duckdb
import pandas as pd
import pytest

from diffrec_core import warehouse
from diffrec_core.warehouse import (
    connect,
    publish,
    published_run,
    query_params,
    record_model_run,
    run_sql,
    sql_text,
    update_model_run,
    validate_identifier,
    write_recommendations,
)

TABLES = {
    "ingest_batches", "raw_interactions", "rejected_rows", "users", "items", "interactions",
    "split_interactions", "split_reports", "item_embeddings", "item_clusters", "model_runs",
    "recommendations", "recommendations_pending", "published", "latest_recommendations", "recommendations_candidate",
}


def recs(prefix: str, n_users: int = 3, k: int = 2) -> pd.DataFrame:
    rows = [(f"u{u}", f"{prefix}{r}", r, 1.0 / r) for u in range(n_users) for r in range(1, k + 1)]
    return pd.DataFrame(rows, columns=["user_key", "item_key", "rank", "score"])


def test_connect_applies_schema_idempotently(tmp_path):
    path = tmp_path / "w.duckdb"
    with connect(path) as con:
        names = {row[0] for row in con.execute("show tables").fetchall()}
        con.execute("insert into published values ('d', 'r', now())")
    assert TABLES <= names
    with connect(path) as con:  # re-applying the schema keeps the data
        assert con.execute("select count(*) from published").fetchall() == [(1,)]
    with connect(path, read_only=True) as con:
        assert con.execute("select run_id from published").fetchall() == [("r",)]
        with pytest.raises(duckdb.Error):
            con.execute("insert into published values ('e', 'r', now())")


def test_only_a_creating_open_makes_a_warehouse_and_a_failed_first_one_leaves_none(tmp_path):
    path = tmp_path / "w.duckdb"
    for kwargs in ({"read_only": True}, {"create": False}):
        with pytest.raises(FileNotFoundError, match="w.duckdb: no such warehouse"):
            with connect(path, **kwargs):
                pass
        assert not path.exists()
    with pytest.raises(ValueError, match="boom"):
        with connect(path) as con:
            con.execute("insert into published values ('d', 'r', now())")
            raise ValueError("boom")
    assert not path.exists() and not (tmp_path / "w.duckdb.wal").exists()
    with connect(path) as con:
        con.execute("insert into published values ('d', 'r', now())")
    with pytest.raises(ValueError, match="boom"):  # a failure on an existing warehouse keeps it
        with connect(path, create=False):
            raise ValueError("boom")
    with connect(path, read_only=True) as con:
        assert con.execute("select run_id from published").fetchall() == [("r",)]


def test_schema_and_queries_come_from_the_package():
    assert warehouse.schema_files()[0] == "schema/01_ingest"
    assert "create table if not exists raw_interactions" in sql_text("schema/01_ingest")
    with pytest.raises(FileNotFoundError):
        sql_text("schema/nope")
    with pytest.raises(ValueError):
        sql_text("../pyproject")


def test_validate_identifier():
    assert validate_identifier("user_key") == "user_key"
    for bad in ["1abc", "a-b", "a b", "x; drop table users", ""]:
        with pytest.raises(ValueError, match="identifier"):
            validate_identifier(bad)


def test_query_params_ignore_comments_and_strings():
    sql = "-- uses $nothing\nselect '$not_a_param', $a from t where b = $b and c = $a"
    assert query_params(sql) == {"a", "b"}


def test_run_sql_binds_exactly_the_used_parameters(tmp_path):
    with connect(tmp_path / "w.duckdb") as con:
        with pytest.raises(ValueError, match="missing parameters"):
            run_sql(con, "outputs/count_recommendations", run_id="r")
        with pytest.raises(ValueError, match="unknown parameters"):
            run_sql(con, "outputs/count_recommendations", run_id="r", dataset="d", extra=1)
        # A value that would break formatted SQL is just a value.
        hostile = "d'; drop table recommendations; --"
        assert run_sql(con, "outputs/count_recommendations", run_id="r", dataset=hostile).fetchall() == [(0,)]
        assert con.execute("select count(*) from recommendations").fetchall() == [(0,)]


def test_model_runs_round_trip(tmp_path):
    with connect(tmp_path / "w.duckdb") as con:
        started = datetime(2024, 1, 1, 12)
        record_model_run(
            con, run_id="r1", dataset="d", setting="clean", model="diffrec", config={"lr": 1e-3, "dims": [200, 600]},
            metrics=None, checkpoint_path=None, status="running", started_at=started, finished_at=None,
        )
        update_model_run(con, "r1", status="trained", metrics={"recall@20": 0.17}, checkpoint_path=tmp_path / "c.pt")
        row = con.execute(
            "select config->>'$.lr', metrics->>'$.recall@20', status, checkpoint_path, started_at from model_runs"
        ).fetchall()[0]
        assert row == ("0.001", "0.17", "trained", str(tmp_path / "c.pt"), started)
        with pytest.raises(KeyError):
            update_model_run(con, "nope", status="failed")
        with pytest.raises(duckdb.ConstraintException):
            record_model_run(con, run_id="r1", dataset="d", setting="clean", model="m", config={}, status="running")


def test_write_recommendations_replaces_and_validates(tmp_path):
    with connect(tmp_path / "w.duckdb") as con:
        assert write_recommendations(con, "r1", "d", recs("a")) == 6
        assert write_recommendations(con, "r1", "d", recs("b", n_users=2)) == 4
        assert con.execute("select count(*), min(item_key) from recommendations").fetchall() == [(4, "b1")]
        with pytest.raises(ValueError, match="missing columns"):
            write_recommendations(con, "r1", "d", recs("a").drop(columns="score"))
        bad = recs("a")
        bad.loc[0, "item_key"] = None
        with pytest.raises(ValueError, match="null"):
            write_recommendations(con, "r1", "d", bad)
        assert con.execute("select count(*) from recommendations").fetchall() == [(4,)]


def test_a_new_list_for_the_published_run_waits_until_it_is_published(tmp_path):
    with connect(tmp_path / "w.duckdb") as con:
        def served():
            return con.execute("select user_key, item_key from latest_recommendations order by 1, 2").fetchall()

        def candidate(run_id):
            return con.execute("select count(*), min(item_key) from recommendations_candidate where run_id = ?", [run_id]).fetchall()

        write_recommendations(con, "r1", "d", recs("a"))
        publish(con, "d", "r1")
        before = served()
        assert write_recommendations(con, "r1", "d", recs("b", n_users=2)) == 4  # a refresh of the published run
        assert served() == before  # consumers keep the list that passed its gates
        assert candidate("r1") == [(4, "b1")]  # what gates and counts see
        assert con.execute("select count(*) from recommendations_pending").fetchall() == [(4,)]
        publish(con, "d", "r1")
        assert served() == [(f"u{u}", f"b{r}") for u in range(2) for r in (1, 2)]
        assert con.execute("select count(*) from recommendations_pending").fetchall() == [(0,)]
        write_recommendations(con, "r2", "d", recs("c"))  # an unpublished run's list is stored at once
        assert con.execute("select count(*) from recommendations where run_id = 'r2'").fetchall() == [(6,)]
        assert con.execute("select count(*) from recommendations_pending").fetchall() == [(0,)]


def test_an_empty_list_replaces_an_unpublished_runs_list(tmp_path):
    with connect(tmp_path / "w.duckdb") as con:
        write_recommendations(con, "r1", "d", recs("a"))
        assert write_recommendations(con, "r1", "d", recs("a").iloc[0:0]) == 0
        assert con.execute("select count(*) from recommendations_candidate where run_id = 'r1'").fetchall() == [(0,)]


def test_a_failed_open_keeps_a_warehouse_another_process_created_meanwhile(tmp_path, monkeypatch):
    path = tmp_path / "w.duckdb"
    opened = warehouse.open_database

    def racing(p, **kwargs):  # while this open waited for the lock, another command created and filled the file
        with duckdb.connect(str(p)) as other:
            warehouse.apply_schema(other)
            other.execute("insert into published values ('d', 'r', now())")
        return opened(p, **kwargs)

    monkeypatch.setattr(warehouse, "open_database", racing)
    with pytest.raises(ValueError, match="boom"):
        with connect(path):
            raise ValueError("boom")
    monkeypatch.setattr(warehouse, "open_database", opened)
    with connect(path, read_only=True) as con:
        assert con.execute("select run_id from published").fetchall() == [("r",)]


def test_publish_switches_the_view_atomically(tmp_path):
    with connect(tmp_path / "w.duckdb") as con:
        reader = con.cursor()  # a second connection to the same database

        def visible():
            return {row[0] for row in reader.execute("select distinct run_id from latest_recommendations").fetchall()}

        write_recommendations(con, "r1", "d", recs("a"))
        publish(con, "d", "r1")
        assert visible() == {"r1"} and published_run(con, "d") == "r1"

        write_recommendations(con, "r2", "d", recs("b"))
        assert visible() == {"r1"}  # written but not published
        con.begin()
        run_sql(con, "outputs/publish", dataset="d", run_id="r2")
        assert visible() == {"r1"}  # switch in flight: readers still see the previous run
        con.commit()
        assert visible() == {"r2"}
        items = reader.execute("select distinct item_key from latest_recommendations order by 1").fetchall()
        assert items == [("b1",), ("b2",)]

        with pytest.raises(ValueError, match="no recommendations"):
            publish(con, "d", "r3")
        assert visible() == {"r2"}
        assert published_run(con, "other") is None


def test_publish_moves_the_published_status_and_an_evaluation_keeps_a_decision(tmp_path):
    with connect(tmp_path / "w.duckdb") as con:
        def status(run_id):
            return con.execute("select status from model_runs where run_id = ?", [run_id]).fetchone()[0]

        for run_id, state, metrics in (("r1", "evaluated", {"test": {"recall@20": 0.1}}), ("r2", "trained", {}),
                                       ("r3", "rejected", {}), ("r4", "trained", {})):
            record_model_run(con, run_id=run_id, dataset="d", setting="clean", model="m", config={}, metrics=metrics, status=state)
            write_recommendations(con, run_id, "d", recs(run_id))
        record_model_run(con, run_id="o1", dataset="other", setting="clean", model="m", config={}, status="published")
        publish(con, "d", "r1")
        assert status("r1") == "published"
        publish(con, "d", "r2")
        assert (status("r1"), status("r2")) == ("evaluated", "published")  # the run published before has test metrics
        publish(con, "d", "r4")
        assert (status("r2"), status("r4")) == ("trained", "published")  # and this one has none
        assert status("o1") == "published"  # another dataset's run is not touched

        warehouse.mark_evaluated(con, "r4", {"test": {"recall@20": 0.2}})
        warehouse.mark_evaluated(con, "r3", {"test": {"recall@20": 0.3}})
        warehouse.mark_evaluated(con, "r2", {"test": {"recall@20": 0.4}})
        assert (status("r4"), status("r3"), status("r2")) == ("published", "rejected", "evaluated")
        assert con.execute("select metrics->>'$.test.recall@20' from model_runs where run_id = 'r3'").fetchone()[0] == "0.3"
        with pytest.raises(KeyError, match="nope"):
            warehouse.mark_evaluated(con, "nope", {})


@pytest.mark.parametrize("read_only", [False, True])
def test_a_data_file_named_as_the_warehouse_is_refused_not_opened_in_memory(tmp_path, read_only):
    data = tmp_path / "ratings.csv"
    data.write_text("user,item\n1,2\n")
    with pytest.raises(ValueError, match="ratings.csv: not a DuckDB database file"):
        with connect(data, read_only=read_only):
            pass
    assert data.read_text() == "user,item\n1,2\n"
    with connect(tmp_path / "w.duckdb") as con:  # a real warehouse still opens
        con.execute("insert into published values ('d', 'r', now())")
    with connect(tmp_path / "w.duckdb", read_only=read_only) as con:
        assert con.execute("select run_id from published").fetchall() == [("r",)]


def test_a_running_run_whose_process_is_gone_is_marked_failed_by_the_next_writer(tmp_path):
    import os
    import socket
    import subprocess
    import sys

    import psutil

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    me = psutil.Process()
    host = socket.gethostname()
    owners = {  # run id: (host, pid, process start)
        "killed": (host, dead.pid, me.create_time()),
        "pid-reused": (host, os.getpid(), me.create_time() - 3600.0),  # the pid lives, but it is another process
        "mine": None,  # claimed by this process, alive
        "elsewhere": ("another-host", dead.pid, 0.0),
        "unclaimed": (),
    }
    w = tmp_path / "w.duckdb"
    with connect(w) as con:
        for run_id, owner in owners.items():
            record_model_run(con, run_id=run_id, dataset="d", setting="clean", model="m", config={}, status="running",
                             started_at=datetime(2024, 1, 1))
            if owner is None:
                warehouse.claim_run(con, run_id)
            elif owner:
                run_sql(con, "outputs/set_run_owner", run_id=run_id, host=owner[0], pid=owner[1], process_started=owner[2])
        record_model_run(con, run_id="done", dataset="d", setting="clean", model="m", config={}, status="trained")
        run_sql(con, "outputs/set_run_owner", run_id="done", host=host, pid=dead.pid, process_started=0.0)
    with connect(w, read_only=True) as con:  # a reader changes nothing
        assert con.execute("select count(*) from model_runs where status = 'running'").fetchone() == (5,)
    with connect(w) as con:
        rows = dict(con.execute("select run_id, status from model_runs").fetchall())
        assert rows == {"killed": "failed", "pid-reused": "failed", "mine": "running", "elsewhere": "running",
                        "unclaimed": "running", "done": "trained"}
        failure, finished = con.execute("select metrics ->> 'failure', finished_at from model_runs where run_id = 'killed'").fetchone()
        assert f"pid {dead.pid}" in failure and "ended without finishing" in failure and finished is not None
        assert warehouse.fail_orphaned_runs(con) == []  # already marked
