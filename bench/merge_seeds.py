"""Merge single-seed ``bench/accuracy.py`` results of one (dataset, model, config) into one results file.

    python bench/merge_seeds.py --out bench/results/ml-1m_clean-mf.json seed0.json seed1.json seed2.json

Used when the seeds of a measurement run as parallel processes; the output has the layout of
``bench/accuracy.py``'s (mean and std over the seeds' test metrics, validation means, per-seed rows).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Annotated

import typer

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.accuracy import markdown, seed_statistics  # noqa: E402


def merge(results: list[dict]) -> dict:
    first = results[0]
    for r in results[1:]:
        if (r["dataset"], r["model"]) != (first["dataset"], first["model"]):
            raise ValueError(f"cannot merge {r['dataset']}/{r['model']} with {first['dataset']}/{first['model']}")
        a, b = dict(first["config"]), dict(r["config"])
        a["training"] = {k: v for k, v in a["training"].items() if k != "seed"}
        b["training"] = {k: v for k, v in b["training"].items() if k != "seed"}
        if a != b:
            raise ValueError("cannot merge results of different configurations")
    per_seed = [row for r in results for row in r["per_seed"]]
    med = lambda key: statistics.median(r[key] for r in results)  # noqa: E731
    out = dict(first)
    out.update({
        **seed_statistics(per_seed),
        "seconds_per_epoch": med("seconds_per_epoch"),
        "seconds_per_eval": med("seconds_per_eval"),
        "seconds_to_best": med("seconds_to_best"),
        "seconds_total": max(r["seconds_total"] for r in results),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in results),
        "merged_from_parallel_processes": len(results),
    })
    if all("peak_gpu_memory_mb" in r for r in results):
        out["peak_gpu_memory_mb"] = max(r["peak_gpu_memory_mb"] for r in results)
    return out


def main(
    inputs: Annotated[list[Path], typer.Argument(help="single-seed results files")],
    out_path: Annotated[Path, typer.Option("--out", help="merged JSON; a .md table is written beside it")],
) -> None:
    """Merge results files of the same dataset, model and configuration (seeds differ)."""
    out = merge([json.loads(p.read_text()) for p in inputs])
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(out, indent=2))
    out_path.with_suffix(".md").write_text(markdown(out))
    print(markdown(out))


if __name__ == "__main__":
    from flows.cli import cli_errors  # a bad input: one line "error: …", exit 1

    typer.run(cli_errors(main))
