"""The L-DiffRec measurements of one machine session, as parallel single-seed runs of bench/accuracy.py.

    python bench/l_suite.py --data ../shared/data --out bench/results/l-suite --device cuda

1. LightGCN on ml-1m_clean, 3 seeds (seed 2023's item embeddings saved for step 3), and in
   parallel a small grid of L-DiffRec settings on ml-1m_clean (authors' item_emb.npy, C = 2,
   one seed), ranked on validation Recall@20 only.
2. The best grid setting, 3 seeds each: ml-1m_clean on the authors' embeddings, ml-1m_clean on
   our LightGCN embeddings, ml-1m_noisy on the authors' noisy-split embeddings; and the C = 1..5
   sweep on our embeddings (one seed; C = 2 is seed 2023 of the run above).
3. Per-model summaries (mean ± std over seeds of the test metrics) as JSON and markdown.

Every run is one process (``--seeds 1 --first-seed S --threads 1``); a run that outlives its
phase's time limit is stopped and reported missing.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
import yaml

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("recall@10", "recall@20", "ndcg@10", "ndcg@20")
SEEDS = (2023, 2024, 2025)
GRID = {  # name -> overrides of configs/ml-1m_clean/ldiffrec.yaml (model params / training)
    "pc-lr1e-3": ({"decoder": "per_cluster"}, {"lr": 1e-3}),
    "sh-lr1e-3": ({"decoder": "shared"}, {"lr": 1e-3}),
    "pc-lr5e-4": ({"decoder": "per_cluster"}, {"lr": 5e-4}),
    "sh-lr5e-4": ({"decoder": "shared"}, {"lr": 5e-4}),
    "pc-lr2e-3": ({"decoder": "per_cluster"}, {"lr": 2e-3}),
    "sh-lr2e-3": ({"decoder": "shared"}, {"lr": 2e-3}),
}


def write_config(base: Path, params: dict, training: dict, path: Path) -> Path:
    cfg = yaml.safe_load(base.read_text())
    cfg["model"]["params"].update(params)
    cfg["training"].update(training)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


class Pool:
    """Background bench/accuracy.py processes, each logging to its own file."""

    def __init__(self, out: Path, device: str):
        self.out, self.device, self.procs = out, device, {}

    def start(self, name: str, splits: Path, model: str, seed: int, extra: list[str]) -> None:
        log = open(self.out / "logs" / f"{name}.log", "w")
        cmd = [sys.executable, str(ROOT / "bench" / "accuracy.py"), "--splits", str(splits), "--model", model,
               "--seeds", "1", "--first-seed", str(seed), "--threads", "1", "--device", self.device,
               "--out", str(self.out / "runs" / f"{name}.json"), *extra]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        self.procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)

    def wait(self, names: list[str], deadline: float) -> None:
        for name in names:
            proc = self.procs[name]
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                print(f"stopped {name}: over its phase's time limit", flush=True)

    def result(self, name: str) -> dict | None:
        path = self.out / "runs" / f"{name}.json"
        return json.loads(path.read_text()) if path.is_file() else None


def summary(pool: Pool, names: list[str], label: str) -> dict | None:
    runs = [r for r in (pool.result(n) for n in names) if r is not None]
    if not runs:
        return None
    rows = [r["per_seed"][0] for r in runs]
    return {
        "label": label,
        "dataset": runs[0]["dataset"],
        "model": runs[0]["model"],
        "config": runs[0]["config"],
        "clusters": runs[0].get("clusters"),
        "seeds": [r["seed"] for r in rows],
        "missing": [n for n in names if pool.result(n) is None],
        "mean": {m: statistics.fmean(r["test"][m] for r in rows) for m in METRICS},
        "std": {m: statistics.pstdev(r["test"][m] for r in rows) for m in METRICS},
        "valid_mean": {m: statistics.fmean(r["valid"][m] for r in rows) for m in METRICS},
        "per_seed": rows,
        "params": runs[0]["params"],
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "peak_gpu_memory_mb": max((r.get("peak_gpu_memory_mb") or 0.0) for r in runs) or None,
        "seconds_per_epoch": statistics.median(r["seconds_per_epoch"] for r in runs),
        "device": runs[0]["device"],
        "note": "one process per seed, run in parallel on one machine",
    }


def markdown(rows: list[dict]) -> str:
    lines = ["| run | dataset | seeds | Recall@10 | Recall@20 | NDCG@10 | NDCG@20 | valid Recall@20 | params | peak RSS MB | peak GPU MB |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for s in rows:
        cells = " | ".join(f"{s['mean'][m]:.4f} ± {s['std'][m]:.4f}" for m in METRICS)
        gpu = f"{s['peak_gpu_memory_mb']:.0f}" if s.get("peak_gpu_memory_mb") else "-"
        lines.append(f"| {s['label']} | {s['dataset']} | {len(s['seeds'])} | {cells} | {s['valid_mean']['recall@20']:.4f} | "
                     f"{s['params']:,} | {s['peak_rss_mb']:.0f} | {gpu} |")
    return "\n".join(lines) + "\n"


def main(
    data: Annotated[Path, typer.Option(help="folder holding ml-1m_clean/ and ml-1m_noisy/ in the authors' format")],
    out: Annotated[Path, typer.Option(help="output folder")],
    device: Annotated[str, typer.Option(help="cuda or cpu")] = "cuda",
    grid_seconds: Annotated[int, typer.Option(help="time limit of the grid phase")] = 200,
    final_seconds: Annotated[int, typer.Option(help="time limit of the final phase")] = 270,
    max_epochs: Annotated[int, typer.Option(help="epoch cap of every run")] = 300,
) -> None:
    t0 = time.monotonic()
    for sub in ("logs", "runs", "configs"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    pool = Pool(out, device)
    clean, noisy = data / "ml-1m_clean", data / "ml-1m_noisy"
    ours = out / "lightgcn-item-emb-ml-1m_clean-seed2023.npy"
    cap = ["--epochs", str(max_epochs)]

    # Phase 1: LightGCN (3 seeds) and the L-DiffRec grid (validation only).
    gcn = [f"lightgcn-clean-s{s}" for s in SEEDS]
    for s, name in zip(SEEDS, gcn):
        pool.start(name, clean, "lightgcn", s, cap + (["--save-item-emb", str(ours)] if s == SEEDS[0] else []))
    base = ROOT / "configs" / "ml-1m_clean" / "ldiffrec.yaml"
    for name, (params, training) in GRID.items():
        cfg = write_config(base, params, training, out / "configs" / f"grid-{name}.yaml")
        pool.start(f"grid-{name}", clean, "ldiffrec", SEEDS[0], cap + ["--config", str(cfg), "--item-emb", str(clean / "item_emb.npy")])
    pool.wait([f"grid-{n}" for n in GRID], t0 + grid_seconds)
    grid = {n: pool.result(f"grid-{n}") for n in GRID}
    ranked = sorted((r["valid_mean"]["recall@20"], n) for n, r in grid.items() if r is not None)
    if not ranked:
        raise SystemExit("error: no grid run finished")
    best = ranked[-1][1]
    print(json.dumps({"grid_valid_recall@20": {n: v for v, n in ranked}, "best": best}), flush=True)
    params, training = GRID[best]
    best_clean = write_config(base, params, training, out / "configs" / "best-ml-1m_clean.yaml")
    best_noisy = write_config(ROOT / "configs" / "ml-1m_noisy" / "ldiffrec.yaml", params, training, out / "configs" / "best-ml-1m_noisy.yaml")

    # Phase 2: the chosen setting with 3 seeds, on both embeddings, noisy, and the C sweep.
    t1 = time.monotonic()
    authors = [f"ldiffrec-clean-authors-s{s}" for s in SEEDS]
    for s, name in zip(SEEDS, authors):
        pool.start(name, clean, "ldiffrec", s, cap + ["--config", str(best_clean), "--item-emb", str(clean / "item_emb.npy")])
    noisy_runs = [f"ldiffrec-noisy-authors-s{s}" for s in SEEDS]
    for s, name in zip(SEEDS, noisy_runs):
        pool.start(name, noisy, "ldiffrec", s, cap + ["--config", str(best_noisy), "--item-emb", str(noisy / "item_emb.npy")])
    pool.wait([gcn[0]], t1 + final_seconds - 60)
    own = [f"ldiffrec-clean-lightgcn-s{s}" for s in SEEDS]
    sweep = [f"ldiffrec-clean-lightgcn-C{c}" for c in (1, 3, 4, 5)]
    if ours.is_file():
        for s, name in zip(SEEDS, own):
            pool.start(name, clean, "ldiffrec", s, cap + ["--config", str(best_clean), "--item-emb", str(ours)])
        for c, name in zip((1, 3, 4, 5), sweep):
            pool.start(name, clean, "ldiffrec", SEEDS[0], cap + ["--config", str(best_clean), "--item-emb", str(ours), "--n-clusters", str(c)])
    else:
        print("no LightGCN embeddings in time: L-DiffRec on our embeddings skipped", flush=True)
    started = [n for n in [*gcn, *authors, *noisy_runs, *own, *sweep] if n in pool.procs]
    pool.wait(started, t1 + final_seconds)

    rows = [s for s in (
        summary(pool, gcn, "LightGCN"),
        summary(pool, authors, f"L-DiffRec C=2, authors' item_emb.npy ({best})"),
        summary(pool, own, f"L-DiffRec C=2, our LightGCN embeddings ({best})"),
        summary(pool, noisy_runs, f"L-DiffRec C=2, authors' item_emb.npy ({best})"),
    ) if s is not None]
    sweep_rows = {}
    for c, name in [(1, sweep[0]), (2, own[0]), (3, sweep[1]), (4, sweep[2]), (5, sweep[3])]:
        r = pool.result(name)
        if r is not None:
            sweep_rows[c] = {"test": r["per_seed"][0]["test"], "valid": r["per_seed"][0]["valid"], "params": r["params"],
                             "sizes": (r.get("clusters") or {}).get("sizes")}
    result = {"grid": {n: (r["valid_mean"] if r else None) for n, r in grid.items()}, "best": best, "summaries": rows,
              "c_sweep": sweep_rows, "seconds": time.monotonic() - t0}
    (out / "summary.json").write_text(json.dumps(result, indent=2))
    (out / "summary.md").write_text(markdown(rows))
    print(markdown(rows), flush=True)
    print(json.dumps({"c_sweep": {c: v["test"]["recall@20"] for c, v in sweep_rows.items()}}), flush=True)


if __name__ == "__main__":
    typer.run(main)
