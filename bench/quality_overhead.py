"""What the data-quality gates add to the pipeline's wall time on the built-in data.

    python bench/quality_overhead.py --pairs 5 --out bench/results/quality-overhead-builtin.json

Runs ``diffrec pipeline --no-quality`` and ``diffrec pipeline --quality`` alternately (--pairs
times each, a fresh warehouse every run, so both see the same machine load), timing each whole
process as a user does. Prints and writes the per-run wall times, the medians, the overhead
(median with gates / median without - 1) and the gates' own seconds as the CLI reports them.
"""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from flows.cli import cli_errors  # noqa: E402

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
GATES = re.compile(r"quality: \d+ gates passed .* in ([0-9.]+) s")


def _run(quality: bool, extra: list[str]) -> tuple[float, float | None]:
    """(wall seconds, gates' seconds) of one CLI pipeline run in a fresh folder."""
    with tempfile.TemporaryDirectory(prefix="diffrec-quality-bench-") as folder:
        command = [sys.executable, "-m", "flows.cli", "pipeline", "--warehouse", "w.duckdb",
                   "--artifacts", "artifacts", "--quality" if quality else "--no-quality", *extra]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=folder, capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
        wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"pipeline failed (exit {done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
    found = GATES.search(done.stderr)
    return wall, float(found.group(1)) if found else None


@app.command()
@cli_errors  # a bad input: one line "error: …", exit 1
def main(
    out: Annotated[Path, typer.Option(help="JSON file for the figures.")],
    pairs: Annotated[int, typer.Option(min=1, help="Runs of each variant, alternating.")] = 5,
    epochs: Annotated[Optional[int], typer.Option(help="Override the pipeline's training epochs.")] = None,
) -> None:
    extra = ["--epochs", str(epochs)] if epochs else []
    runs: dict[str, list[float]] = {"no_quality": [], "quality": []}
    gates: list[float] = []
    for i in range(pairs):
        for quality in (False, True):
            wall, gate_seconds = _run(quality, extra)
            runs["quality" if quality else "no_quality"].append(round(wall, 3))
            if gate_seconds is not None:
                gates.append(gate_seconds)
            print(f"pair {i + 1}/{pairs}: {'--quality   ' if quality else '--no-quality'} {wall:6.2f} s"
                  + (f" (gates {gate_seconds:.1f} s)" if gate_seconds is not None else ""), flush=True)
    median = {k: statistics.median(v) for k, v in runs.items()}
    overhead = median["quality"] / median["no_quality"] - 1
    paired = [q / n - 1 for n, q in zip(runs["no_quality"], runs["quality"])]
    result = {
        "runs": runs, "median_seconds": median, "overhead": round(overhead, 4),
        "paired_overhead_median": round(statistics.median(paired), 4),
        "gates_seconds": gates, "gates_seconds_median": statistics.median(gates) if gates else None,
        "pairs": pairs, "epochs": epochs, "cpus": os.cpu_count(), "load_before": os.getloadavg()[0],
        "python": platform.python_version(),
    }
    print(f"median wall: without gates {median['no_quality']:.2f} s, with gates {median['quality']:.2f} s "
          f"-> overhead {overhead:+.1%} (paired median {result['paired_overhead_median']:+.1%}); "
          f"gates themselves {result['gates_seconds_median']} s")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    app()
