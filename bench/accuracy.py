"""Accuracy and speed benchmark on pre-split data in the authors' format (paper protocol).

    python bench/accuracy.py --splits ../shared/data/ml-1m_clean --model diffrec --seeds 3 --out bench/results/ml-1m_clean-diffrec.json

Trains with N seeds (selection on validation Recall@20 only), evaluates the best
checkpoint on validation and test in one scoring pass, and writes JSON plus a
markdown table beside the paper's published figures.
"""

from __future__ import annotations

import json
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import typer
from typing import Annotated, Optional

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from diffrec_core.config import with_training  # noqa: E402
from diffrec_core.evaluation import Target  # noqa: E402
from diffrec_core.interactions import load_npy_splits, model_input  # noqa: E402
from diffrec_core.embeddings import clusters_for_presplit  # noqa: E402
from diffrec_core.models.registry import build_model, resolve_config, spec, time_weights_for, validate_params  # noqa: E402
from diffrec_core.training import evaluate_model, fit, select_device  # noqa: E402

METRICS = ("recall@10", "recall@20", "ndcg@10", "ndcg@20")

# Paper Tables 2, 3, 4 and 6 (../shared/data/README.md): (R@10, R@20, N@10, N@20).
PAPER = {
    ("ml-1m_clean", "multivae"): (0.1007, 0.1726, 0.0825, 0.1076),
    ("ml-1m_clean", "lightgcn"): (0.0987, 0.1707, 0.0833, 0.1083),
    ("ml-1m_clean", "diffrec"): (0.1058, 0.1787, 0.0901, 0.1148),
    ("ml-1m_clean", "ldiffrec"): (0.1060, 0.1809, 0.0868, 0.1122),
    ("ml-1m_noisy", "multivae"): (0.0653, 0.1247, 0.0469, 0.0680),
    ("ml-1m_noisy", "diffrec"): (0.0658, 0.1236, 0.0488, 0.0703),
    ("ml-1m_noisy", "ldiffrec"): (0.0665, 0.1272, 0.0493, 0.0710),
}


def cpu_peak_gflops(threads: int) -> float | None:
    """fp32 FMA peak: threads x 2 FMA units x 8 lanes (AVX2) x 2 flops x clock; None if unknown."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    mhz = [float(line.split(":")[1]) for line in text.splitlines() if line.startswith("cpu MHz")]
    flags = next((line for line in text.splitlines() if line.startswith("flags")), "")
    if not mhz or "fma" not in flags.split():
        return None
    lanes = 16 if "avx512f" in flags.split() else 8
    return threads * 2 * lanes * 2 * (statistics.median(mhz) / 1000.0)


def denoiser_flops_per_row(model: torch.nn.Module) -> int:
    """Multiply-add flops of one forward pass of every Linear layer, per input row."""
    return sum(2 * m.in_features * m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear))


def seed_statistics(per_seed: list[dict]) -> dict:
    """Mean and std of the seeds' test metrics, their validation means and best epochs (per-seed rows as ``main`` writes them)."""
    return {
        "seeds": [row["seed"] for row in per_seed],
        "mean": {m: statistics.fmean(row["test"][m] for row in per_seed) for m in METRICS},
        "std": {m: statistics.pstdev([row["test"][m] for row in per_seed]) for m in METRICS},
        "valid_mean": {m: statistics.fmean(row["valid"][m] for row in per_seed) for m in METRICS},
        "per_seed": per_seed,
        "best_epoch": [row["best_epoch"] for row in per_seed],
    }


def run_seed(data, run, device, side=None, max_seconds=None):
    model = build_model(run.model, data.n_users, data.n_items, seed=run.training.seed, side=side)
    # T-variants: the per-user time-weighted train matrix replaces the binary one as the input.
    inputs = model_input(data.train, data.train_order, time_weights_for(run))
    result = fit(model, inputs, Target(data.valid, data.train), run.training, device=device, max_seconds=max_seconds,
                 on_epoch=lambda rec: print(json.dumps(rec), file=sys.stderr, flush=True))
    targets = {"valid": Target(data.valid, data.train), "test": Target(data.test, data.train + data.valid)}
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    metrics = evaluate_model(model, inputs, targets, run.training, device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return model, result, metrics, time.perf_counter() - t0


def main(
    splits: Annotated[Path, typer.Option(help="folder with train_list.npy, valid_list.npy, test_list.npy")],
    out_path: Annotated[Path, typer.Option("--out", help="JSON output; a .md table is written beside it")],
    model: Annotated[str, typer.Option(help="registered model name")] = "diffrec",
    config: Annotated[Optional[Path], typer.Option(help="run config (default: configs/<dataset>/<model>.yaml)")] = None,
    seeds: Annotated[int, typer.Option(help="number of seeds (seed, seed+1, ...)")] = 3,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "auto",
    threads_opt: Annotated[int, typer.Option("--threads", help="torch CPU threads (0 = torch default)")] = 0,
    epochs: Annotated[Optional[int], typer.Option(help="override the maximum epochs (quick checks)")] = None,
    first_seed: Annotated[Optional[int], typer.Option(help="override the config's first seed")] = None,
    item_emb: Annotated[Optional[Path], typer.Option(help="L-variants: item embeddings (.npy) to cluster, instead of the config's clusters.source")] = None,
    n_clusters: Annotated[Optional[int], typer.Option(help="L-variants: override clusters.n_clusters")] = None,
    emb_cache: Annotated[Path, typer.Option(help="L-variants with clusters.source lightgcn: cache of our LightGCN item embeddings")] = ROOT / "artifacts" / "embeddings",
    max_seconds: Annotated[Optional[float], typer.Option(help="per seed: stop training after the first epoch past this many seconds (keeps the best)")] = None,
    save_item_emb: Annotated[Optional[Path], typer.Option(help="save the first seed's item embeddings (.npy; models with item_embeddings(), e.g. lightgcn)")] = None,
) -> dict:
    """Train and evaluate MODEL on pre-split data with N seeds; write JSON and a markdown table."""
    dataset = splits.resolve().name
    data = load_npy_splits(splits)
    base = resolve_config(dataset, model, config)
    if model != base.model.name:
        raise SystemExit(f"error: --config is for model {base.model.name!r}, not {model!r}")
    if first_seed is not None:
        base = with_training(base, seed=first_seed)
    side, clusters_info = None, None
    if "item_clusters" in spec(model).side:
        # L-variants: the item -> cluster assignment is side data of the model (diffrec_core.embeddings).
        if n_clusters is not None:
            params = dict(base.model.params)
            params["clusters"] = {**params.get("clusters", {}), "n_clusters": n_clusters}
            base = base.model_copy(update={"model": base.model.model_copy(update={"params": params})})
        cfg = validate_params(base.model).clusters
        labels, clusters_info = clusters_for_presplit(splits, data, cfg, item_emb=item_emb, cache_dir=emb_cache)
        side = {"item_clusters": labels}
        print(json.dumps({"clusters": clusters_info}), flush=True)
    if threads_opt:
        torch.set_num_threads(threads_opt)
    dev = select_device(device)
    threads = torch.get_num_threads()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()

    per_seed = []
    t_all = time.perf_counter()
    for i in range(seeds):
        run = with_training(base, seed=base.training.seed + i, epochs=epochs, device=dev.type)
        net, result, metrics, eval_seconds = run_seed(data, run, dev, side, max_seconds)
        if save_item_emb is not None and i == 0 and hasattr(net, "item_embeddings"):
            save_item_emb.parent.mkdir(parents=True, exist_ok=True)
            np.save(save_item_emb, net.item_embeddings())
        row = {
            "seed": run.training.seed,
            "valid": {m: metrics["valid"][m] for m in METRICS},
            "test": {m: metrics["test"][m] for m in METRICS},
            "best_epoch": result.best_epoch,
            "epochs_run": result.epochs_run,
            "stopped_by_time": result.stopped_by_time,
            "seconds_per_epoch": result.seconds_per_epoch,
            "seconds_per_eval": result.seconds_per_eval,
            "seconds_final_eval_valid_and_test": eval_seconds,
            "seconds_to_best": result.seconds_to_best,
            "seconds_total": result.seconds_total,
            # validation Recall@20 at every evaluated epoch: what a shorter patience would have kept
            "valid_curve": [[h["epoch"], h["valid_recall@20"]] for h in result.history if "valid_recall@20" in h],
        }
        per_seed.append(row)
        print(json.dumps(row), flush=True)

    n_params = sum(p.numel() for p in net.parameters())
    med = lambda key: statistics.median(r[key] for r in per_seed)  # noqa: E731
    out = {
        "dataset": dataset,
        "model": model,
        "config": base.model_dump(mode="json"),
        "clusters": clusters_info,
        **seed_statistics(per_seed),
        "seconds_per_epoch": med("seconds_per_epoch"),
        "seconds_per_eval": med("seconds_per_eval"),
        "seconds_to_best": med("seconds_to_best"),
        "seconds_total": time.perf_counter() - t_all,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "params": n_params,
        "device": torch.cuda.get_device_name(0) if dev.type == "cuda" else f"cpu ({platform.processor() or platform.machine()})",
        "threads": threads,
        "torch": torch.__version__,
    }
    if dev.type == "cuda":
        out["peak_gpu_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
    flops = denoiser_flops_per_row(net)
    steps = base.model.params.get("diffusion", {}).get("steps", 1) if model in {"diffrec", "tdiffrec"} else 1
    eval_flops = data.n_users * steps * flops
    train_flops = 3 * int((data.train.getnnz(axis=1) > 0).sum()) * flops
    out["gflops"] = {
        "eval_pass_gflop": eval_flops / 1e9,
        "eval_gflop_per_s": eval_flops / 1e9 / out["seconds_per_eval"] if out["seconds_per_eval"] else None,
        "train_epoch_gflop": train_flops / 1e9,
        "train_gflop_per_s": train_flops / 1e9 / out["seconds_per_epoch"] if out["seconds_per_epoch"] else None,
        "cpu_peak_gflop_per_s": cpu_peak_gflops(threads) if dev.type == "cpu" else None,
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(out, indent=2))
    out_path.with_suffix(".md").write_text(markdown(out))
    print(markdown(out))
    return out


def markdown(out: dict) -> str:
    paper = PAPER.get((out["dataset"], out["model"]))
    lines = [
        f"### {out['model']} on {out['dataset']} (test, mean ± std of {len(out['seeds'])} seeds, chosen on validation Recall@20)",
        "",
        "| | Recall@10 | Recall@20 | NDCG@10 | NDCG@20 |",
        "| --- | --- | --- | --- | --- |",
        "| this project | " + " | ".join(f"{out['mean'][m]:.4f} ± {out['std'][m]:.4f}" for m in METRICS) + " |",
    ]
    if paper:
        lines.append("| paper | " + " | ".join(f"{v:.4f}" for v in paper) + " |")
    lines += [
        "",
        f"best epochs {out['best_epoch']}; {out['seconds_per_epoch']:.2f} s/epoch; {out['seconds_per_eval']:.2f} s per validation pass; "
        f"{out['seconds_to_best']:.0f} s to the best model; peak RSS {out['peak_rss_mb']:.0f} MB; {out['params']:,} parameters; "
        f"device {out['device']}, {out['threads']} threads",
        "",
    ]
    if out.get("clusters"):
        c = out["clusters"]
        lines += [f"item clusters: C = {c['n_clusters']} from {c['source']} embeddings (k-means seed {c['seed']}), sizes {c['sizes']}", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    from flows.cli import cli_errors  # a bad input: one line "error: …", exit 1

    typer.run(cli_errors(main))
