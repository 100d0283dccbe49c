"""One machine session's measurements as parallel single-seed runs of bench/accuracy.py, from a plan.

    python bench/suite.py --plan bench/plans/ml-1m-l-gpu.yaml --data ../shared/data --out OUT --device cuda

A plan (YAML) lists groups; each group is one configuration run with several seeds:

    seconds: 450            # the whole suite's time limit
    max_epochs: 1000        # epoch cap of every run (a group's training.epochs below it is kept)
    groups:
      - name: lightgcn-lr0.005
        splits: ml-1m_clean         # folder under --data in the authors' format
        model: lightgcn             # registered model; base config configs/<splits>/<model>.yaml
        seeds: [2023, 2024, 2025]
        overrides: {training.lr: 0.005}   # dotted keys into the base config
        item_emb: item_emb.npy      # L-variants: item embeddings to cluster (relative to the splits folder;
                                    #   OUT/emb/<group>-s<seed>.npy: one a save_item_emb group wrote into --out)
        save_item_emb: true         # save the first seed's item embeddings (LightGCN)
        select: lightgcn            # groups sharing a tag compete: best mean validation Recall@20 is chosen

Every run is one process (``--seeds 1 --first-seed S --threads 1``) started at once; training stops
early enough for the final evaluation before the suite's deadline (``--max-seconds``, recorded as
``stopped_by_time``), and a run still going at the deadline is killed and reported missing.
Writes OUT/groups/<group>.json (+ .md): the group's seeds merged as bench/merge_seeds.py does, and
OUT/summary.json and OUT/summary.md: per group the mean ± std of the test metrics over its seeds,
and per selection tag the group chosen on mean validation Recall@20 only.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.accuracy import METRICS, markdown as group_markdown  # noqa: E402
from bench.merge_seeds import merge as merge_seeds  # noqa: E402
from diffrec_core.config import load_yaml  # noqa: E402


def set_dotted(cfg: dict, key: str, value: Any) -> None:
    node = cfg
    *parents, last = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise SystemExit(f"error: override {key!r}: {part!r} is not a mapping in the base config")
    node[last] = value


def load_plan(path: Path) -> dict:
    plan = load_yaml(path.read_text())
    if not isinstance(plan, dict) or not isinstance(plan.get("groups"), list) or not plan["groups"]:
        raise SystemExit(f"error: {path}: a plan needs a non-empty 'groups' list")
    names = set()
    for i, g in enumerate(plan["groups"]):
        missing = [k for k in ("name", "splits", "model", "seeds") if k not in g]
        if missing:
            raise SystemExit(f"error: {path}: group {i} lacks {', '.join(missing)}")
        if g["name"] in names:
            raise SystemExit(f"error: {path}: group name {g['name']!r} is used twice")
        names.add(g["name"])
    return plan


def base_config(splits_name: str, model: str) -> dict:
    """The run config a group starts from: configs/<splits>/<model>.yaml, or for a variant without a
    file of its own (e.g. ltdiffrec) the one ``bench/accuracy.py`` resolves (its base model's, renamed)."""
    from diffrec_core.models.registry import resolve_config

    path = ROOT / "configs" / splits_name / f"{model}.yaml"
    if path.is_file():
        return load_yaml(path.read_text())
    return resolve_config(splits_name, model).model_dump(mode="json")


def item_emb_path(value: str, splits: Path, out: Path) -> Path:
    """A group's ``item_emb``: ``OUT/...`` is inside the suite's output folder, anything else relative to the splits folder."""
    return out / value.removeprefix("OUT/") if value.startswith("OUT/") else splits / value


def run_epochs(config: Path, cap: int) -> int:
    """A run's epoch limit: the plan's cap, or the group's own ``training.epochs`` where that is lower
    (an epoch count can be part of a configuration, e.g. the horizon of a cosine learning-rate schedule)."""
    epochs = (load_yaml(config.read_text()).get("training") or {}).get("epochs")
    return min(cap, int(epochs)) if epochs is not None else cap


def write_config(base: Path | dict, overrides: dict, path: Path) -> Path:
    cfg = load_yaml(base.read_text()) if isinstance(base, Path) else copy.deepcopy(base)
    for key, value in (overrides or {}).items():
        set_dotted(cfg, key, value)
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

    def wait_all(self) -> None:
        for name, proc in self.procs.items():
            try:
                proc.wait(timeout=max(self.deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                print(f"stopped {name}: still running at the suite's deadline", flush=True)

    def result(self, name: str) -> dict | None:
        path = self.out / "runs" / f"{name}.json"
        return json.loads(path.read_text()) if path.is_file() else None


def summary(pool: Pool, names: list[str], label: str) -> dict | None:
    """The group's seeds merged as bench/merge_seeds.py does (the accuracy benchmark's layout), plus
    the label, the seeds that did not finish, and those stopped by the time limit."""
    runs = [r for r in (pool.result(n) for n in names) if r is not None]
    if not runs:
        return None
    merged = merge_seeds(runs)
    merged.update({
        "label": label,
        "missing": [n for n in names if pool.result(n) is None],
        "stopped_by_time": [row["seed"] for row in merged["per_seed"] if row.get("stopped_by_time")],
        "note": "one process per seed, all of the suite's runs in parallel on one machine",
    })
    return merged


def markdown(rows: list[dict], chosen: dict[str, str]) -> str:
    lines = ["| run | dataset | seeds | Recall@10 | Recall@20 | NDCG@10 | NDCG@20 | valid Recall@20 | best epochs | params | peak RSS MB | peak GPU MB |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for s in rows:
        cells = " | ".join(f"{s['mean'][m]:.4f} ± {s['std'][m]:.4f}" for m in METRICS)
        gpu = f"{s['peak_gpu_memory_mb']:.0f}" if s.get("peak_gpu_memory_mb") else "-"
        timed = " (time cap)" if s["stopped_by_time"] else ""
        lines.append(f"| {s['label']} | {s['dataset']} | {len(s['seeds'])} | {cells} | {s['valid_mean']['recall@20']:.4f} | "
                     f"{', '.join(map(str, s['best_epoch']))}{timed} | {s['params']:,} | {s['peak_rss_mb']:.0f} | {gpu} |")
    if chosen:
        lines += ["", "Chosen on mean validation Recall@20: " + "; ".join(f"{tag}: {name}" for tag, name in chosen.items())]
    return "\n".join(lines) + "\n"


def main(
    plan_path: Annotated[Path, typer.Option("--plan", help="plan YAML (see the module docstring)")],
    data: Annotated[Path, typer.Option(help="folder holding the plan's split folders in the authors' format")],
    out: Annotated[Path, typer.Option(help="output folder")],
    device: Annotated[str, typer.Option(help="cuda, cpu or auto")] = "cuda",
) -> None:
    plan = load_plan(plan_path)
    t0 = time.monotonic()
    deadline = t0 + float(plan.get("seconds", 480))
    for sub in ("logs", "runs", "configs", "emb", "groups"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    pool = Pool(out, device, deadline)
    cap = int(plan.get("max_epochs", 1000))
    names: dict[str, list[str]] = {}
    # Every group's config first, so a bad group stops the suite before any process starts.
    configs = {g["name"]: write_config(base_config(g["splits"], g["model"]), g.get("overrides", {}),
                                       out / "configs" / f"{g['name']}.yaml") for g in plan["groups"]}
    for g in plan["groups"]:
        splits = data / g["splits"]
        config = configs[g["name"]]
        names[g["name"]] = []
        for i, seed in enumerate(g["seeds"]):
            name = f"{g['name']}-s{seed}"
            extra = ["--epochs", str(run_epochs(config, cap)), "--config", str(config)]
            if g.get("item_emb"):
                extra += ["--item-emb", str(item_emb_path(g["item_emb"], splits, out))]
            if g.get("save_item_emb") and i == 0:
                extra += ["--save-item-emb", str(out / "emb" / f"{g['name']}-s{seed}.npy")]
            pool.start(name, splits, g["model"], int(seed), extra)
            names[g["name"]].append(name)
    pool.wait_all()

    rows = [r for g in plan["groups"] if (r := summary(pool, names[g["name"]], g["name"])) is not None]
    for r in rows:  # each group also as one results file of bench/accuracy.py's layout
        (out / "groups" / f"{r['label']}.json").write_text(json.dumps(r, indent=2))
        (out / "groups" / f"{r['label']}.md").write_text(group_markdown(r))
    by_name = {r["label"]: r for r in rows}
    chosen: dict[str, str] = {}
    for tag in dict.fromkeys(g["select"] for g in plan["groups"] if g.get("select")):
        scored = [(by_name[g["name"]]["valid_mean"]["recall@20"], g["name"]) for g in plan["groups"]
                  if g.get("select") == tag and g["name"] in by_name and not by_name[g["name"]]["missing"]]
        if scored:
            chosen[tag] = max(scored)[1]
    result = {"plan": plan, "summaries": rows, "chosen_on_validation": chosen, "seconds": time.monotonic() - t0}
    (out / "summary.json").write_text(json.dumps(result, indent=2))
    (out / "summary.md").write_text(markdown(rows, chosen))
    print(markdown(rows, chosen), flush=True)


if __name__ == "__main__":
    from flows.cli import cli_errors  # a bad input: one line "error: …", exit 1

    typer.run(cli_errors(main))
