"""Grid (or seeded random) search on pre-split data, selected on validation Recall@20 only.

    python bench/grid.py --splits ../shared/data/ml-1m_clean --grid configs/grids/diffrec.yaml \
        --out bench/results/grid-ml-1m_clean-diffrec.jsonl --sample 64 --workers 4

Each trial trains one seed and records its best validation metrics as one JSON line;
trials already in --out are skipped, so an interrupted search resumes. Test metrics are
never computed here: run bench/accuracy.py on the chosen configuration.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _worker(args) -> dict:
    splits, run_json, device, threads = args
    import torch

    from diffrec_core.config import RunConfig
    from diffrec_core.evaluation import Target
    from diffrec_core.interactions import load_npy_splits
    from diffrec_core.models.registry import build_model
    from diffrec_core.training import fit, select_device

    torch.set_num_threads(threads)
    data = _DATA.get(splits) or _DATA.setdefault(splits, load_npy_splits(splits))
    run = RunConfig.model_validate(run_json)
    dev = select_device(device)
    model = build_model(run.model, data.n_users, data.n_items, seed=run.training.seed)
    t0 = time.perf_counter()
    result = fit(model, data.train, Target(data.valid, data.train), run.training, device=dev)
    return {
        "valid": result.best_valid,
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "seconds": time.perf_counter() - t0,
        "seconds_per_epoch": result.seconds_per_epoch,
        "seconds_per_eval": result.seconds_per_eval,
    }


_DATA: dict = {}


def main(
    splits: Annotated[Path, typer.Option(help="folder with train_list.npy, valid_list.npy, test_list.npy")],
    grid: Annotated[Path, typer.Option(help="grid YAML (see diffrec_core/search.py)")],
    out: Annotated[Path, typer.Option(help="JSON lines, one per finished trial (resumed when it exists)")],
    sample: Annotated[Optional[int], typer.Option(help="run a seeded random subset of this many trials")] = None,
    seed: Annotated[int, typer.Option(help="seed of the random subset")] = 0,
    workers: Annotated[int, typer.Option(help="trials run at once (processes)")] = 1,
    threads: Annotated[int, typer.Option(help="torch CPU threads per worker")] = 1,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "auto",
    epochs: Annotated[Optional[int], typer.Option(help="override the maximum epochs")] = None,
    best_config: Annotated[Optional[Path], typer.Option(help="write the best recorded trial (validation Recall@20, every trial in --out) as a run config YAML")] = None,
) -> None:
    """Run the trials of GRID on SPLITS; print the best by validation Recall@20."""
    from diffrec_core.config import with_training
    from diffrec_core.search import config_key, load_grid, sample_trials

    dataset = splits.resolve().name
    g = load_grid(grid, dataset)
    trials = sample_trials([with_training(t, epochs=epochs) for t in g.trials()], sample, seed)
    done = {}
    if out.exists():
        for line in out.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                done[row["key"]] = row
    todo = [t for t in trials if config_key(t) not in done]
    print(f"{len(trials)} trials, {len(trials) - len(todo)} already done, {len(todo)} to run", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    jobs = [(str(splits), t.model_dump(mode="json"), device, threads) for t in todo]
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers, maxtasksperchild=None) as pool, out.open("a") as sink:
        for trial, res in zip(todo, pool.imap(_worker, jobs)):
            row = {"key": config_key(trial), "config": trial.model_dump(mode="json"), **res}
            done[row["key"]] = row
            sink.write(json.dumps(row) + "\n")
            sink.flush()
            print(f"valid R@20 {res['valid']['recall@20']:.4f} N@20 {res['valid']['ndcg@20']:.4f} "
                  f"epoch {res['best_epoch']} ({res['seconds']:.0f}s) {row['key']}", flush=True)
    keys = {config_key(t) for t in trials}
    ranked = sorted((r for k, r in done.items() if k in keys), key=lambda r: -r["valid"]["recall@20"])
    for r in ranked[:5]:
        print(json.dumps({"valid": r["valid"], "best_epoch": r["best_epoch"], "config": r["config"]}))
    if best_config is not None and done:
        import yaml

        best = max(done.values(), key=lambda r: r["valid"]["recall@20"])
        header = f"# chosen by bench/grid.py on validation Recall@20 = {best['valid']['recall@20']:.4f} ({len(done)} trials in {out.name})\n"
        best_config.write_text(header + yaml.safe_dump(best["config"], sort_keys=False))
        print(f"best of {len(done)} recorded trials written to {best_config}")


if __name__ == "__main__":
    from flows.cli import cli_errors  # a bad input: one line "error: …", exit 1

    typer.run(cli_errors(main))
