"""Speed profile of DiffRec training and evaluation on pre-split data, against the CPU's FLOP peak.

    python bench/speed.py --splits ../shared/data/ml-1m_clean --out bench/results/speed-ml-1m_clean.json

Reports (medians of --repeats runs): seconds per training epoch, seconds per full
evaluation pass (every user x T denoising steps, top-K and metrics), the share of the
pass spent in the denoiser's matrix products (torch profiler), achieved GFLOP/s of the
denoiser, and the fp32 FMA peak of the threads in use. With --bf16 it also times the pass
under bfloat16 autocast and reports how far its top-20 lists move from fp32.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
import typer

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.accuracy import cpu_peak_gflops, denoiser_flops_per_row  # noqa: E402
from diffrec_core.config import with_training  # noqa: E402
from diffrec_core.evaluation import Target  # noqa: E402
from diffrec_core.interactions import load_npy_splits  # noqa: E402
from diffrec_core.models.registry import build_model, resolve_config  # noqa: E402
from diffrec_core.training import evaluate_model, fit, make_scorer  # noqa: E402


def main(
    splits: Annotated[Path, typer.Option(help="folder with the authors' .npy split files")],
    out: Annotated[Path, typer.Option(help="JSON output")],
    repeats: Annotated[int, typer.Option(help="timed repetitions (median reported)")] = 3,
    threads: Annotated[int, typer.Option(help="torch CPU threads (0 = torch default)")] = 0,
    bf16: Annotated[bool, typer.Option(help="also time evaluation under bfloat16 autocast")] = True,
) -> None:
    """Time training epochs and evaluation passes of the shipped DiffRec config."""
    if threads:
        torch.set_num_threads(threads)
    n_threads = torch.get_num_threads()
    data = load_npy_splits(splits)
    run = with_training(resolve_config(splits.resolve().name, "diffrec"), epochs=repeats, eval_every=repeats, patience=repeats + 1, device="cpu")
    model = build_model(run.model, data.n_users, data.n_items, seed=run.training.seed)
    dev = torch.device("cpu")
    res = fit(model, data.train, Target(data.valid, data.train), run.training, device=dev)
    steps = run.model.params["diffusion"]["steps"]
    flops_row = denoiser_flops_per_row(model)
    targets = {"valid": Target(data.valid, data.train)}

    def timed_eval() -> float:
        t0 = time.perf_counter()
        evaluate_model(model, data.train, targets, run.training, dev)
        return time.perf_counter() - t0

    timed_eval()  # warm-up
    eval_times = [timed_eval() for _ in range(repeats)]
    pass_flops = data.n_users * steps * flops_row
    report = {
        "device": "cpu",
        "threads": n_threads,
        "seconds_per_epoch": res.seconds_per_epoch,
        "seconds_per_eval_pass": statistics.median(eval_times),
        "eval_pass_gflop": pass_flops / 1e9,
        "train_epoch_gflop": 3 * data.n_users * flops_row / 1e9,
        "cpu_peak_gflop_per_s": cpu_peak_gflops(n_threads),
    }
    report["eval_gflop_per_s"] = report["eval_pass_gflop"] / report["seconds_per_eval_pass"]
    report["train_gflop_per_s"] = report["train_epoch_gflop"] / report["seconds_per_epoch"]

    # Where a pass goes: matrix products vs everything else (torch profiler, one pass).
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        timed_eval()
    totals: dict[str, float] = {}
    for evt in prof.key_averages():
        totals[evt.key] = evt.self_cpu_time_total / 1e6
    all_s = sum(totals.values())
    matmul_s = sum(v for k, v in totals.items() if k in {"aten::addmm", "aten::mm", "aten::bmm", "aten::matmul", "aten::linear"})
    report["profile"] = {
        "total_self_seconds": all_s,
        "matmul_seconds": matmul_s,
        "matmul_share": matmul_s / all_s if all_s else None,
        "matmul_gflop_per_s": pass_flops / 1e9 / matmul_s if matmul_s else None,
        "top_ops": sorted(({"op": k, "seconds": v} for k, v in totals.items()), key=lambda r: -r["seconds"])[:12],
    }

    if bf16:
        rows = np.arange(min(2048, data.n_users))
        scorer = make_scorer(model.eval(), data.train, dev)
        with torch.no_grad():
            ref = torch.topk(scorer(rows), 20, dim=1).indices
            with torch.autocast("cpu", dtype=torch.bfloat16):
                low = torch.topk(scorer(rows).float(), 20, dim=1).indices

        def timed_bf16() -> float:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return timed_eval()

        timed_bf16()
        bf_times = [timed_bf16() for _ in range(repeats)]
        overlap = np.mean([len(set(a.tolist()) & set(b.tolist())) / 20 for a, b in zip(ref, low)])
        report["bf16_autocast"] = {"seconds_per_eval_pass": statistics.median(bf_times), "top20_overlap_with_fp32": float(overlap)}

    try:
        report["load_average"] = list(__import__("os").getloadavg())
    except OSError:
        pass
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    from flows.cli import cli_errors  # a bad input: one line "error: …", exit 1

    typer.run(cli_errors(main))
