"""The L-DiffRec measurements of one machine session, as parallel single-seed runs of bench/accuracy.py.

    python bench/l_suite.py --data ../shared/data --out bench/results/l-suite --device cuda

1. LightGCN on ml-1m_clean, 3 seeds; seed 2023's item embeddings are saved for step 3.
2. L-DiffRec with C = 2 on the authors' item_emb.npy, ml-1m_clean and ml-1m_noisy, 3 seeds, for
   both decoder variants (per-cluster decoders; the authors' one shared layer).
3. Once LightGCN seed 2023 is done: L-DiffRec on our LightGCN embeddings (both variants, 3 seeds)
   and the C = 1, 3, 4, 5 sweep (per-cluster variant, seed 2023; C = 2 is that seed's run above).
4. Per-run summaries (mean ± std over seeds of the test metrics) as JSON and markdown, and per
   (dataset, embeddings) the decoder variant chosen on mean validation Recall@20 only.

Every run is one process (``--seeds 1 --first-seed S --threads 1``). Training stops early
enough for the final evaluation before the suite's deadline (``--max-seconds``, recorded as
``stopped_by_time``); a run still going at the deadline is killed and reported missing.
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
VARIANTS = {  # name -> overrides of configs/<dataset>/ldiffrec.yaml (model params, training)
    "per_cluster": ({"decoder": "per_cluster"}, {}),
    "shared": ({"decoder": "shared"}, {}),
}
SWEEP_VARIANT = "per_cluster"


def write_config(base: Path, params: dict, training: dict, path: Path) -> Path:
    cfg = yaml.safe_load(base.read_text())
    cfg["model"]["params"].update(params)
    cfg["training"].update(training)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


class Pool:
    """Background bench/accuracy.py processes, each logging to its own file."""

    def __init__(self, out: Path, device: str, deadline: float, margin: float = 75.0):
        self.out, self.device, self.procs = out, device, {}
        self.deadline, self.margin = deadline, margin

    def start(self, name: str, splits: Path, model: str, seed: int, extra: list[str]) -> None:
        log = open(self.out / "logs" / f"{name}.log", "w")
        cmd = [sys.executable, str(ROOT / "bench" / "accuracy.py"), "--splits", str(splits), "--model", model,
               "--seeds", "1", "--first-seed", str(seed), "--threads", "1", "--device", self.device,
               "--out", str(self.out / "runs" / f"{name}.json"),
               # training stops in time for the final evaluation before the suite's deadline
               "--max-seconds", f"{max(self.deadline - time.monotonic() - self.margin, 10.0):.0f}", *extra]
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
    seconds: Annotated[int, typer.Option(help="time limit of the whole suite; runs still going then are stopped")] = 480,
    max_epochs: Annotated[int, typer.Option(help="epoch cap of every run")] = 400,
) -> None:
    t0 = time.monotonic()
    deadline = t0 + seconds
    for sub in ("logs", "runs", "configs"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    pool = Pool(out, device, deadline)
    clean, noisy = data / "ml-1m_clean", data / "ml-1m_noisy"
    ours = out / "lightgcn-item-emb-ml-1m_clean-seed2023.npy"
    cap = ["--epochs", str(max_epochs)]
    configs = {
        (ds, v): write_config(ROOT / "configs" / ds / "ldiffrec.yaml", params, training, out / "configs" / f"{ds}-{v}.yaml")
        for ds in ("ml-1m_clean", "ml-1m_noisy") for v, (params, training) in VARIANTS.items()
    }
    names: dict[str, list[str]] = {}

    def group(key: str, splits: Path, model: str, extra_for_seed) -> None:
        names[key] = [f"{key}-s{s}" for s in SEEDS]
        for s, name in zip(SEEDS, names[key]):
            pool.start(name, splits, model, s, cap + extra_for_seed(s))

    # LightGCN (3 seeds; seed 2023's item embeddings feed the runs on our embeddings).
    group("lightgcn-clean", clean, "lightgcn", lambda s: ["--save-item-emb", str(ours)] if s == SEEDS[0] else [])
    # L-DiffRec, C = 2, on the authors' embeddings: both decoder variants, clean and noisy.
    for v in VARIANTS:
        group(f"ldiffrec-clean-authors-{v}", clean, "ldiffrec",
              lambda s, v=v: ["--config", str(configs["ml-1m_clean", v]), "--item-emb", str(clean / "item_emb.npy")])
        group(f"ldiffrec-noisy-authors-{v}", noisy, "ldiffrec",
              lambda s, v=v: ["--config", str(configs["ml-1m_noisy", v]), "--item-emb", str(noisy / "item_emb.npy")])
    pool.wait([names["lightgcn-clean"][0]], deadline - 150)
    sweep = {c: f"ldiffrec-clean-lightgcn-{SWEEP_VARIANT}-C{c}" for c in (1, 3, 4, 5)}
    if ours.is_file():
        for v in VARIANTS:
            group(f"ldiffrec-clean-lightgcn-{v}", clean, "ldiffrec",
                  lambda s, v=v: ["--config", str(configs["ml-1m_clean", v]), "--item-emb", str(ours)])
        for c, name in sweep.items():
            pool.start(name, clean, "ldiffrec", SEEDS[0], cap + ["--config", str(configs["ml-1m_clean", SWEEP_VARIANT]),
                                                                   "--item-emb", str(ours), "--n-clusters", str(c)])
    else:
        print("no LightGCN embeddings in time: L-DiffRec on our embeddings skipped", flush=True)
    pool.wait(list(pool.procs), deadline)

    rows = []
    for key, runs in names.items():
        label = key.replace("ldiffrec-", "L-DiffRec C=2 ").replace("lightgcn-clean", "LightGCN")
        row = summary(pool, runs, label)
        if row is not None:
            rows.append(row)
    # Selection on validation only: per (dataset, embeddings), the decoder variant with the best mean valid Recall@20.
    chosen = {}
    for prefix in ("ldiffrec-clean-authors", "ldiffrec-noisy-authors", "ldiffrec-clean-lightgcn"):
        scored = []
        for v in VARIANTS:
            r = summary(pool, names.get(f"{prefix}-{v}", []), v) if f"{prefix}-{v}" in names else None
            if r is not None and not r["missing"]:
                scored.append((r["valid_mean"]["recall@20"], v))
        if scored:
            chosen[prefix] = max(scored)[1]
    sweep_rows = {}
    own_first = names.get(f"ldiffrec-clean-lightgcn-{SWEEP_VARIANT}", [None])[0]
    for c, name in sorted([*sweep.items(), (2, own_first)]):
        r = pool.result(name) if name else None
        if r is not None:
            sweep_rows[c] = {"test": r["per_seed"][0]["test"], "valid": r["per_seed"][0]["valid"], "params": r["params"],
                             "sizes": (r.get("clusters") or {}).get("sizes")}
    result = {"variants": {v: {"params": p, "training": t} for v, (p, t) in VARIANTS.items()}, "chosen_on_validation": chosen,
              "summaries": rows, "c_sweep": {"variant": SWEEP_VARIANT, "seed": SEEDS[0], "runs": sweep_rows},
              "seconds": time.monotonic() - t0}
    (out / "summary.json").write_text(json.dumps(result, indent=2))
    (out / "summary.md").write_text(markdown(rows))
    print(markdown(rows), flush=True)
    print(json.dumps({"chosen_on_validation": chosen, "c_sweep": {c: v["test"]["recall@20"] for c, v in sweep_rows.items()}}), flush=True)


if __name__ == "__main__":
    typer.run(main)
