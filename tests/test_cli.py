"""The diffrec CLI: each step on a tiny built-in dataset, and one-line errors on bad input."""

import json

import duckdb
import pytest
from typer.testing import CliRunner

from flows.cli import app, dataset_name

runner = CliRunner()
TINY = ["--users", "120", "--items", "60", "--interactions", "4000", "--seed", "3"]


@pytest.fixture
def fast_config(tmp_path):
    path = tmp_path / "fast.yaml"
    path.write_text(json.dumps({
        "model": {"name": "diffrec", "params": {
            "diffusion": {"steps": 5, "noise_scale": 0.01, "noise_min": 0.001, "noise_max": 0.01},
            "denoiser": {"hidden_dims": [32], "emb_size": 8}}},
        "training": {"epochs": 2, "eval_every": 1, "batch_size": 64},
    }))
    return path


def one_line_error(result) -> str:
    """The output's only non-blank line (fails when there are more)."""
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result


def test_steps_end_to_end(tmp_path, fast_config):
    w = tmp_path / "w.duckdb"
    r = invoke("ingest", *TINY, "--warehouse", w)
    assert r.exit_code == 0, r.output
    again = invoke("ingest", *TINY, "--warehouse", w)
    assert again.exit_code == 0 and "skipped" in again.output.lower()
    r = invoke("split", "--warehouse", w)
    assert r.exit_code == 0, r.output
    r = invoke("train", "--config", fast_config, "--model", "mf", "--warehouse", w, "--artifacts", tmp_path / "art")
    assert r.exit_code == 1 and one_line_error(r).startswith("error: --model 'mf': ") and "'diffrec'" in r.output, r.output
    r = invoke("train", "--config", fast_config, "--model", "diffrec", "--warehouse", w, "--artifacts", tmp_path / "art")
    assert r.exit_code == 0, r.output
    assert "valid Recall@20" in r.output
    run_id = r.output.split("run ", 1)[1].split(":", 1)[0]
    for command in ("evaluate", "recommend"):  # an unknown device, or a run of another dataset, is refused before anything is written
        r = invoke(command, "--warehouse", w, "--device", "gpu")
        assert r.exit_code == 1 and one_line_error(r) == "error: device 'gpu': use auto, cpu or cuda", r.output
        r = invoke(command, run_id, "--dataset", "other", "--warehouse", w)
        assert r.exit_code == 1 and one_line_error(r) == f"error: run '{run_id}' is of dataset 'builtin', not --dataset 'other'", r.output
    r = invoke("evaluate", "--warehouse", w)
    assert r.exit_code == 0 and "test Recall@20" in r.output, r.output
    import duckdb

    with duckdb.connect(str(w), read_only=True) as con:
        assert con.execute("select count(*) from recommendations").fetchone() == (0,)
        assert con.execute("select model, status from model_runs").fetchall() == [("diffrec", "evaluated")]
    r = invoke("recommend", "--warehouse", w, "-k", "5")
    assert r.exit_code == 0 and "published" in r.output, r.output

    with duckdb.connect(str(w), read_only=True) as con:
        user = con.execute("select user_key from latest_recommendations limit 1").fetchone()[0]
        assert con.execute("select max(rank) from latest_recommendations").fetchone()[0] == 5
        # lineage and fingerprint are recorded by the step commands too, not only by the nightly flow
        assert con.execute("select batch_id, role, run_id from run_lineage order by role").fetchall() == \
            [(1, "recommend", run_id), (1, "train", run_id)]
        assert len(con.execute("select data_fingerprint from model_runs").fetchone()[0]) == 64
    r = invoke("recs", "show", "--user", user, "--warehouse", w)
    assert r.exit_code == 0 and r.output.count("\n") == 6, r.output
    r = invoke("recs", "show", "--user", "no-such-user", "--warehouse", w)
    assert r.exit_code == 1 and "no-such-user" in r.output


@pytest.mark.parametrize(
    "content,expected",
    [
        ("", "empty"),
        ("1;2;5;881250949\n3;4;4;881250950\n", "u.data"),
    ],
)
def test_bad_file_is_one_line_error(tmp_path, content, expected):
    bad = tmp_path / "u.data"
    bad.write_text(content)
    r = invoke("ingest", bad, "--format", "ml-100k", "--warehouse", tmp_path / "w.duckdb")
    assert r.exit_code == 1
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "u.data" in lines[0], r.output


def test_failed_first_commands_leave_no_warehouse(tmp_path):
    w = tmp_path / "w.duckdb"
    bad = tmp_path / "u.data"
    bad.write_text("1;2;5;881250949\n")
    r = invoke("ingest", bad, "--format", "ml-100k", "--warehouse", w)
    assert r.exit_code == 1 and "u.data" in r.output and not w.exists(), r.output
    r = invoke("split", "--warehouse", w)
    assert r.exit_code == 1 and "w.duckdb: no such warehouse" in r.output and not w.exists(), r.output
    r = invoke("ingest", *TINY, "--warehouse", w)
    assert r.exit_code == 0, r.output
    r = invoke("train", "--warehouse", w)  # ingested, never split: names the missing step
    assert r.exit_code == 1 and "run 'diffrec split' first" in r.output, r.output


@pytest.mark.parametrize("args,expected", [
    (["split", "--setting", "noisy-random", "--noise-ratio", "1.5"], "noise_ratio: Input should be less than or equal to 1 (got 1.5)"),
    (["split", "--method", "bogus"], "method: Input should be 'global' or 'per_user' (got 'bogus')"),
    (["train", "--epochs", "0"], "training.epochs: Input should be greater than 0 (got 0)"),
    (["train", "--device", "tpu"], "training.device: Input should be 'auto', 'cpu' or 'cuda' (got 'tpu')"),
    (["train", "--seed", "-1"], "training.seed: Input should be greater than or equal to 0 (got -1)"),
])
def test_bad_option_values_name_the_field_and_value(tmp_path, args, expected):
    w = tmp_path / "w.duckdb"
    assert invoke("ingest", *TINY, "--warehouse", w).exit_code == 0
    r = invoke(*args, "--warehouse", w)
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert r.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error:") and expected in lines[0], r.output


def test_named_settings_resolve_to_their_stored_split(tmp_path, fast_config):
    w = tmp_path / "w.duckdb"
    assert invoke("ingest", *TINY, "--warehouse", w).exit_code == 0
    r = invoke("split", "--setting", "noisy-random", "--warehouse", w)
    assert r.exit_code == 0 and "noisy-random-0.1" in r.output, r.output
    r = invoke("train", "--setting", "noisy-random", "--config", fast_config, "--warehouse", w, "--artifacts", tmp_path / "art")
    assert r.exit_code == 0, r.output
    with duckdb.connect(str(w), read_only=True) as con:
        assert con.execute("select setting from model_runs").fetchall() == [("noisy-random-0.1",)]


def test_default_run_skips_a_rejected_one(tmp_path, fast_config):
    from diffrec_core import warehouse

    w = tmp_path / "w.duckdb"
    assert invoke("ingest", *TINY, "--warehouse", w).exit_code == 0
    assert invoke("split", "--warehouse", w).exit_code == 0
    ids = []
    for seed in (1, 2):
        r = invoke("train", "--config", fast_config, "--seed", seed, "--warehouse", w, "--artifacts", tmp_path / "art")
        assert r.exit_code == 0, r.output
        ids.append(r.output.split("run ")[-1].split(":")[0])
    with warehouse.connect(w) as con:
        warehouse.update_model_run(con, ids[1], status="rejected")
    r = invoke("recommend", "--no-publish", "--warehouse", w)
    assert r.exit_code == 0 and f"run {ids[0]}:" in r.output, r.output
    r = invoke("recommend", ids[1], "--no-publish", "--warehouse", w)  # named, it is served
    assert r.exit_code == 0 and f"run {ids[1]}:" in r.output, r.output


def test_built_in_data_defaults_are_the_pipelines():
    from diffrec_core.ingest.synthetic import SyntheticConfig
    from flows.cli import _synthetic
    from flows.nightly import NightlyParams
    from flows.pipeline import PipelineParams

    assert _synthetic(None, None, None, None) == SyntheticConfig() == PipelineParams().synthetic == NightlyParams().synthetic
    assert _synthetic(10, None, None, 5) == SyntheticConfig(n_users=10, seed=5)


def test_missing_input_and_bad_config(tmp_path):
    r = invoke("pipeline", "--input", tmp_path / "nope.csv", "--warehouse", tmp_path / "w.duckdb")
    assert r.exit_code == 1 and "nope.csv" in r.output
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("model: {name: diffrec, params: {diffusion: {noise_min: 0.1, noise_max: 0.01}}}\n")
    r = invoke("train", "--config", cfg, "--warehouse", tmp_path / "w.duckdb")
    assert r.exit_code == 1 and "noise_min must be < noise_max" in r.output, r.output
    r = invoke("evaluate", "--warehouse", tmp_path / "missing.duckdb")
    assert r.exit_code == 1 and "missing.duckdb" in r.output
    data = tmp_path / "ratings.csv"
    data.write_text("user,item\n1,2\n")
    r = invoke("ingest", *TINY, "--warehouse", data)  # the data file where the warehouse goes: nothing written
    assert r.exit_code == 1 and r.output.startswith("error:") and "ratings.csv: not a DuckDB database file" in r.output, r.output
    assert data.read_text() == "user,item\n1,2\n"
    for where, expected in ((tmp_path, "is a folder; the warehouse is a .duckdb file"),
                            (tmp_path / "no-such-folder" / "w.duckdb", "its folder")):
        r = invoke("ingest", *TINY, "--warehouse", where)
        assert r.exit_code == 1 and r.output == f"error: {where}: {expected}" + r.output.split(expected, 1)[1], r.output
        assert len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "no-such-folder").exists()
    cfg.write_text("model: {name: diffrec}\ntraining: {lr: .inf}\n")
    r = invoke("train", "--config", cfg, "--warehouse", tmp_path / "w.duckdb")
    assert r.exit_code == 1 and "training.lr: Input should be a finite number (got inf)" in r.output, r.output


def test_a_catalogue_smaller_than_k_trains_evaluates_and_recommends(tmp_path, fast_config):
    w = tmp_path / "w.duckdb"
    assert invoke("ingest", "--users", "40", "--items", "12", "--interactions", "200", "--seed", "3", "--warehouse", w).exit_code == 0
    assert invoke("split", "--warehouse", w).exit_code == 0
    r = invoke("train", "--config", fast_config, "--warehouse", w, "--artifacts", tmp_path / "art")
    assert r.exit_code == 0 and "valid Recall@20" in r.output, r.output
    r = invoke("evaluate", "--warehouse", w)
    assert r.exit_code == 0 and "test Recall@20" in r.output, r.output
    r = invoke("recommend", "--warehouse", w)
    assert r.exit_code == 0, r.output
    with duckdb.connect(str(w), read_only=True) as con:
        per_user = con.execute("select max(n), count(*) from (select user_key, count(*) as n from latest_recommendations group by 1)").fetchone()
        seen = con.execute("select count(*) from latest_recommendations r join raw_interactions h "
                           "on h.user_key = r.user_key and h.item_key = r.item_key").fetchone()[0]
    assert per_user[0] < 12 and per_user[1] > 0 and seen == 0  # every unseen item, never a seen one


def test_help_on_every_command():
    for cmd in (["--help"], ["ingest", "--help"], ["split", "--help"], ["train", "--help"], ["evaluate", "--help"],
                ["recommend", "--help"], ["pipeline", "--help"], ["recs", "show", "--help"]):
        r = invoke(*cmd)
        assert r.exit_code == 0 and "--warehouse" in r.output or cmd == ["--help"], cmd


def test_dataset_name_derivation(tmp_path):
    from pathlib import Path

    assert dataset_name(None, None) == "builtin"
    assert dataset_name("x", Path("a/b.csv")) == "x"
    assert dataset_name(None, Path("data/ml-100k/u.data")) == "ml-100k"
    assert dataset_name(None, Path("logs/clicks 2024.parquet")) == "clicks_2024"


def _train_until_running(tmp_path, fast_config):
    """A ``diffrec train`` subprocess that would run for ever, once its run is recorded as running."""
    import os
    import subprocess
    import sys
    import time

    from diffrec_core.warehouse import open_database

    w = tmp_path / "w.duckdb"
    assert invoke("ingest", *TINY, "--warehouse", w).exit_code == 0
    assert invoke("split", "--warehouse", w).exit_code == 0
    endless = json.loads(fast_config.read_text())
    endless["training"]["patience"] = 100000  # early stopping would end the run before the signal comes
    fast_config.write_text(json.dumps(endless))
    cmd = [sys.executable, "-c", "from flows.cli import app; app()", "train", "--config", str(fast_config),
           "--epochs", "100000", "--warehouse", str(w), "--artifacts", str(tmp_path / "art")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "DIFFREC_LOCK_TIMEOUT": "60"})
    deadline = time.monotonic() + 120
    status = None
    while status != "running" and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.5)
        with open_database(w, read_only=True, lock_timeout=30) as con:  # waits while the trainer records its run
            row = con.execute("select status from model_runs").fetchone()
        status = row[0] if row else None
    if status != "running":
        proc.kill()
        raise AssertionError(proc.communicate())
    time.sleep(1.0)
    return proc, w


def _status(w):
    with duckdb.connect(str(w), read_only=True) as con:
        return con.execute("select status, finished_at is not null, metrics ->> 'failure' from model_runs").fetchall()


def test_sigterm_during_training_marks_the_run_failed(tmp_path, fast_config):
    import signal

    proc, w = _train_until_running(tmp_path, fast_config)
    try:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == "error: stopped by SIGTERM", err  # after the progress bars
    assert _status(w) == [("failed", True, None)]


def test_a_run_whose_trainer_was_killed_outright_is_marked_failed_by_the_next_command(tmp_path, fast_config):
    proc, w = _train_until_running(tmp_path, fast_config)
    proc.kill()  # SIGKILL: nothing in the process can mark its run
    proc.communicate(timeout=60)
    assert _status(w) == [("running", False, None)]
    assert invoke("split", "--warehouse", w).exit_code == 0  # any command that writes the warehouse
    (status, finished, failure), = _status(w)
    assert status == "failed" and finished and f"pid {proc.pid}" in failure, failure


def test_an_artifacts_path_that_is_a_file_is_refused_before_training(tmp_path, fast_config):
    w = tmp_path / "w.duckdb"
    assert invoke("ingest", *TINY, "--warehouse", w).exit_code == 0
    assert invoke("split", "--warehouse", w).exit_code == 0
    afile = tmp_path / "afile"
    afile.write_text("")
    grid = tmp_path / "g.yaml"
    grid.write_text("model: diffrec\ngrid:\n  training.lr: [0.001]\n")
    for args in (("train", "--config", fast_config), ("search", "--grid", grid)):
        r = invoke(*args, "--warehouse", w, "--artifacts", afile)
        assert r.exit_code == 1 and one_line_error(r) == f"error: artifacts folder {afile}: it is a file, not a folder", r.output
    r = invoke("train", "--config", fast_config, "--warehouse", w, "--artifacts", afile / "sub")
    assert r.exit_code == 1 and one_line_error(r) == f"error: artifacts folder {afile / 'sub'}: {afile} is a file, not a folder", r.output
    r = invoke("search", "--grid", grid, "--sample", "0", "--warehouse", w, "--artifacts", tmp_path / "art")
    assert r.exit_code == 1 and one_line_error(r).startswith("error: HpoParams sample: Input should be greater than 0"), r.output
    r = invoke("nightly", "--warehouse", w, "--config", fast_config, "--shards", "0", "--artifacts", tmp_path / "art")
    assert r.exit_code == 1 and one_line_error(r).startswith("error: "), r.output
    assert not (tmp_path / "art").exists()  # a refused command leaves no empty artifacts folder behind
    with duckdb.connect(str(w), read_only=True) as con:
        assert con.execute("select count(*) from model_runs").fetchone() == (0,)


def test_a_checkpoint_recorded_from_a_relative_artifacts_folder_is_found_from_any_folder(tmp_path, fast_config, monkeypatch):
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    w = tmp_path / "w.duckdb"
    monkeypatch.chdir(work)
    for args in (("ingest", *TINY), ("split",), ("train", "--config", fast_config, "--artifacts", "art")):
        r = invoke(*args, "--warehouse", w)
        assert r.exit_code == 0, r.output
    with duckdb.connect(str(w), read_only=True) as con:
        (path,), = con.execute("select checkpoint_path from model_runs").fetchall()
    assert path.startswith(str(work / "art")), path
    monkeypatch.chdir(elsewhere)
    r = invoke("recommend", "--warehouse", w, "--no-publish")
    assert r.exit_code == 0 and "recommendations" in r.output, r.output


@pytest.mark.parametrize("argv, expected", [
    (["search", "--grid", "g.yaml", "--device", "cpu"], "error: No such option: --device (see 'diffrec search --help')"),
    (["train", "--epochs", "many"], "error: Invalid value for '--epochs': "),
    (["nosuch"], "error: No such command 'nosuch'."),
])
def test_the_diffrec_command_reports_a_usage_error_in_one_line(monkeypatch, capsys, argv, expected):
    from flows.cli import main

    monkeypatch.setattr("sys.argv", ["diffrec", *argv])
    with pytest.raises(SystemExit) as exit_:
        main()
    out, err = capsys.readouterr()
    assert exit_.value.code == 2 and out == "" and len(err.strip().splitlines()) == 1 and err.startswith(expected), err


def test_remove_batch_takes_a_file_out_and_the_next_split_restages_without_it(tmp_path):
    w = tmp_path / "w.duckdb"
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("user,item,timestamp\n" + "".join(f"u{u},i{i},{1600000000 + 10 * u + i}\n" for u in range(8) for i in range(8)))
    second.write_text("user,item,timestamp\nu0,x1,1700000000\nu1,x2,1700000001\n")
    for path in (first, second):
        assert invoke("ingest", path, "-d", "d", "--warehouse", w).exit_code == 0
    r = invoke("remove-batch", "2", "--warehouse", w)
    assert r.exit_code == 0 and r.output.startswith(f"removed batch 2 of dataset 'd' ({second}, 2 rows)"), r.output
    r = invoke("remove-batch", "2", "--warehouse", w)
    assert r.exit_code == 1 and one_line_error(r) == "error: no ingest batch 2 in this warehouse", r.output
    assert invoke("split", "-d", "d", "--warehouse", w).exit_code == 0
    with duckdb.connect(str(w), read_only=True) as con:
        assert con.execute("select count(*) from items where dataset = 'd'").fetchone() == (8,)  # x1, x2 are gone
        con.close()
    with duckdb.connect(str(w)) as con:  # lineage of a run that used both batches (as train_run records it)
        con.execute("insert into model_runs (run_id, dataset, setting, model, config, status, started_at) "
                    "values ('r1', 'd', 'clean', 'mf', '{}', 'trained', now())")
        con.execute("insert into run_inputs values ('r1', 'd', 1, 'train', now()), ('r1', 'd', 2, 'train', now())")
    r = invoke("remove-batch", "1", "--warehouse", w)  # the last one: staged rows and splits go with it
    assert r.exit_code == 0, r.output
    with duckdb.connect(str(w), read_only=True) as con:
        assert con.execute("select (select count(*) from interactions), (select count(*) from split_interactions), "
                           "(select count(*) from items)").fetchone() == (0, 0, 0)
        assert con.execute("select batch_id, batch_removed from run_lineage order by 1").fetchall() == [(1, True), (2, True)]


def test_rating_with_no_column_reads_implicit_feedback_and_a_landing_folder_names_the_dataset(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("uid,item,rating,timestamp\nu1,i1,2,1600000000\n")
    assert invoke("ingest", log, "-c", "user=uid", "-c", "rating=", "--warehouse", tmp_path / "w.duckdb").exit_code == 0
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.execute("select user_key, rating from raw_interactions").fetchall() == [("u1", None)]
    exports = tmp_path / "exports.daily"
    exports.mkdir()
    assert dataset_name(None, exports) == "exports.daily" and dataset_name(None, tmp_path / "ml-1m" / "ratings.dat") == "ml-1m"
