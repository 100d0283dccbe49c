"""Batch inference wall time: unsharded (runs.recommend_run) against sharded mapped tasks on a local Dask cluster.

    python bench/inference.py --out bench/results/inference-builtin.json --shards 2 --workers 2 --threads 1

Builds a warehouse with the built-in synthetic data (3,000 users x 1,500 items x 150,000 ratings by
default), trains the shipped DiffRec config for --epochs epochs (inference cost does not depend on
them), then times, --repeats times each, (a) ``runs.recommend_run`` (score + write) and (b) the
nightly ``batch-inference`` subflow on ``DaskTaskRunner`` (cluster start, score shards to Parquet)
plus the single loader (``sharding.load_shards``). Checks that both write identical recommendations
and writes JSON.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import flows  # noqa: E402,F401  (Prefect environment defaults)

from flows.cli import cli_errors  # noqa: E402

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def _recs(path: Path, run_id: str):
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("select user_key, item_key, rank, score from recommendations where run_id = ? "
                           "order by user_key, rank", [run_id]).df()


@app.command()
@cli_errors  # a bad input: one line "error: …", exit 1
def main(
    out: Annotated[Path, typer.Option(help="JSON results file.")],
    shards: Annotated[int, typer.Option(help="User ranges for the sharded path.")] = 2,
    workers: Annotated[int, typer.Option(help="Local Dask workers.")] = 2,
    processes: Annotated[bool, typer.Option("--processes/--no-processes", help="Dask workers as processes (each starts its own Prefect client) or threads.")] = False,
    threads: Annotated[int, typer.Option(help="torch CPU threads per process.")] = 1,
    users: Annotated[int, typer.Option(help="Built-in data: users.")] = 3000,
    items: Annotated[int, typer.Option(help="Built-in data: items.")] = 1500,
    interactions: Annotated[int, typer.Option(help="Built-in data: interactions.")] = 150_000,
    epochs: Annotated[int, typer.Option(help="Training epochs before timing inference.")] = 1,
    repeats: Annotated[int, typer.Option(help="Timed repetitions of each path.")] = 3,
    work: Annotated[Optional[Path], typer.Option(help="Working folder (default: a temporary one).")] = None,
) -> None:
    import pandas as pd
    import torch

    from diffrec_core import ingest, runs, sharding, splits, warehouse
    from diffrec_core.config import InferenceConfig, with_training
    from diffrec_core.ingest.synthetic import SyntheticConfig
    from diffrec_core.models.registry import resolve_config
    from flows.nightly import batch_inference
    from flows.runners import make_task_runner

    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)  # inherited by Dask worker processes
    folder = Path(work or tempfile.mkdtemp(prefix="diffrec-inference-"))
    folder.mkdir(parents=True, exist_ok=True)
    w = folder / "w.duckdb"
    data = SyntheticConfig(n_users=users, n_items=items, n_interactions=interactions)
    with warehouse.connect(w) as con:
        ingest.ingest_synthetic(con, "builtin", data)
        splits.stage(con, "builtin")
        splits.make_split(con, "builtin", splits.SplitConfig())
    run = with_training(resolve_config("builtin", "diffrec"), epochs=epochs, threads=threads)
    run_id = runs.train_run(w, "builtin", "clean", run, folder / "art")
    inference = InferenceConfig()

    batch_inference.with_options(task_runner=make_task_runner("thread", workers=1))(  # warm the Prefect server
        str(w), run_id, inference, 1, str(folder / "warmup"))

    unsharded_s, sharded_s, score_s, load_s = [], [], [], []
    for i in range(repeats):
        start = time.perf_counter()
        n_unsharded = runs.recommend_run(w, run_id, inference)
        unsharded_s.append(time.perf_counter() - start)
        reference = _recs(w, run_id)

        start = time.perf_counter()
        runner = make_task_runner("dask", workers=workers, processes=processes)
        files = batch_inference.with_options(task_runner=runner)(str(w), run_id, inference, shards, str(folder / f"shards-{i}"))
        scored = time.perf_counter()
        n_sharded = sharding.load_shards(w, run_id, files)
        done = time.perf_counter()
        sharded_s.append(done - start)
        score_s.append(scored - start)
        load_s.append(done - scored)
        pd.testing.assert_frame_equal(_recs(w, run_id), reference)
        assert n_sharded == n_unsharded
        print(f"repeat {i + 1}: unsharded {unsharded_s[-1]:.2f} s, sharded {sharded_s[-1]:.2f} s "
              f"(score {score_s[-1]:.2f} + load {load_s[-1]:.2f}); {n_unsharded} rows identical", flush=True)

    result = {
        "data": data.model_dump(mode="json"),
        "model": run.model.model_dump(mode="json"),
        "rows": n_unsharded,
        "identical": True,
        "shards": shards, "dask_workers": workers, "dask_processes": processes, "torch_threads": threads,
        "unsharded_s": unsharded_s, "sharded_s": sharded_s, "sharded_score_s": score_s, "sharded_load_s": load_s,
        "unsharded_median_s": statistics.median(unsharded_s), "sharded_median_s": statistics.median(sharded_s),
        "machine": {"cpus": os.cpu_count(), "load_average_1m_at_end": os.getloadavg()[0],
                    "platform": platform.platform(), "torch": torch.__version__},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"median: unsharded {result['unsharded_median_s']:.2f} s, Dask {workers} workers x {shards} shards "
          f"{result['sharded_median_s']:.2f} s; identical recommendations ({n_unsharded} rows) -> {out}")


if __name__ == "__main__":
    app()
