"""The real deployment path: a Prefect server, the process work pool, deploy/prefect.yaml, a worker.

Starts `prefect server start` on 127.0.0.1 (free port, temporary PREFECT_HOME), creates the pool,
deploys the built-in nightly deployment from deploy/prefect.yaml, triggers it with tiny-data
parameters, runs a worker until the run finishes, checks the published recommendations, and
stops every process it started (SIGTERM, wait, kill).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx
import pytest
import yaml

from test_nightly import FAST_RUN, TINY

ROOT = Path(__file__).resolve().parents[1]
PREFECT = str(Path(sys.executable).with_name("prefect"))
POOL = "diffrec-process"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """SIGTERM the process group we started, wait, then SIGKILL it."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _wait_healthy(api: str, server: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"prefect server exited with {server.returncode}")
        try:
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"prefect server at {api} not healthy after {timeout:.0f} s")


def test_deployment_yaml_is_well_formed():
    spec = yaml.safe_load((ROOT / "deploy" / "prefect.yaml").read_text())
    names = {d["name"]: d for d in spec["deployments"]}
    assert {"builtin-nightly", "ml-1m-nightly", "builtin-hpo-weekly"} <= names.keys()
    for deployment in spec["deployments"]:
        path, _, fn = deployment["entrypoint"].partition(":")
        assert (ROOT / path).is_file() and fn, deployment["entrypoint"]  # repository-relative
        assert deployment["work_pool"]["name"] == POOL
        assert deployment["schedules"] and all(s["cron"] and s["timezone"] for s in deployment["schedules"])
    # anchors resolved: nightly deployments share the definitions' parameters
    assert names["ml-1m-nightly"]["parameters"]["params"]["gate_tolerance"] == spec["definitions"]["parameters"]["nightly"]["gate_tolerance"]
    from flows.nightly import NightlyParams

    for name in ("builtin-nightly", "ml-1m-nightly"):
        NightlyParams.model_validate(names[name]["parameters"]["params"])


@pytest.mark.slow
def test_nightly_deployment_runs_on_a_real_server(tmp_path):
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_API_URL": api,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "PREFECT_UI_ENABLED": "false",
           "PREFECT_LOGGING_LEVEL": "WARNING", "PREFECT_WORKER_QUERY_SECONDS": "2"}
    env.pop("PREFECT_API_KEY", None)
    logs = tmp_path / "logs"
    logs.mkdir()
    started: list[subprocess.Popen] = []

    def spawn(name: str, *args: str) -> subprocess.Popen:
        out = (logs / f"{name}.log").open("w")
        proc = subprocess.Popen([PREFECT, *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        started.append(proc)
        return proc

    def cli(*args: str) -> str:
        done = subprocess.run([PREFECT, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, f"prefect {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    try:
        server = spawn("server", "server", "start", "--host", "127.0.0.1", "--port", str(port))
        _wait_healthy(api, server)
        cli("work-pool", "create", POOL, "--type", "process")
        cli("--no-prompt", "deploy", "--name", "builtin-nightly", "--prefect-file", "deploy/prefect.yaml")

        deployment = httpx.get(f"{api}/deployments/name/nightly/builtin-nightly", timeout=10).json()
        assert deployment["schedules"] and deployment["schedules"][0]["schedule"]["cron"] == "0 2 * * *"
        assert deployment["entrypoint"] == "flows/nightly.py:nightly"
        # the pull step's {{ $PWD }} was resolved at deploy time to the repository root
        assert deployment["pull_steps"][0]["prefect.deployments.steps.set_working_directory"]["directory"] == str(ROOT)
        params = {"params": {
            "warehouse": str(tmp_path / "w.duckdb"), "artifacts_dir": str(tmp_path / "art"),
            "shard_dir": str(tmp_path / "shards"), "dataset": "builtin", "shards": 2, "task_runner": "thread",
            "synthetic": TINY.model_dump(mode="json"), "run": FAST_RUN.model_dump(mode="json"),
            "quality": {"enabled": False},  # the gates are tested elsewhere; this test is about the deployment
        }}
        run = httpx.post(f"{api}/deployments/{deployment['id']}/create_flow_run",
                         json={"parameters": params}, timeout=10).json()

        worker = spawn("worker", "worker", "start", "--pool", POOL, "--limit", "1")
        deadline = time.monotonic() + 240
        state = None
        while time.monotonic() < deadline:
            state = httpx.get(f"{api}/flow_runs/{run['id']}", timeout=10).json()["state"]
            if state and state["type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}:
                break
            assert worker.poll() is None, (logs / "worker.log").read_text()[-3000:]
            time.sleep(1)
        assert state and state["type"] == "COMPLETED", f"{state}\n{(logs / 'worker.log').read_text()[-3000:]}"
    finally:
        for proc in reversed(started):
            _stop(proc)
    assert all(proc.poll() is not None for proc in started)

    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        published = con.execute("select run_id from published where dataset = 'builtin'").fetchone()
        assert published is not None
        users, rows, ranks = con.execute(
            "select count(distinct user_key), count(*), max(rank) from latest_recommendations").fetchone()
        assert users > 0 and rows == users * 20 and ranks == 20
        assert con.execute("select status from model_runs where run_id = ?", published).fetchone()[0] == "published"
