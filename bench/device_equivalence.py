"""CPU vs CUDA: the same seed must give the same training and scores up to floating-point noise.

    python bench/device_equivalence.py --splits ../shared/data/ml-1m_clean --epochs 3 --out equivalence.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
import typer

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from diffrec_core.config import with_training  # noqa: E402
from diffrec_core.evaluation import Target  # noqa: E402
from diffrec_core.interactions import load_npy_splits  # noqa: E402
from diffrec_core.models.registry import build_model, resolve_config  # noqa: E402
from diffrec_core.training import fit, make_scorer  # noqa: E402


def main(
    splits: Annotated[Path, typer.Option(help="folder with the authors' .npy split files")],
    out: Annotated[Path, typer.Option(help="JSON output")],
    model: Annotated[str, typer.Option(help="registered model")] = "diffrec",
    epochs: Annotated[int, typer.Option(help="epochs to train on each device")] = 3,
) -> None:
    """Train the same seeded model on CPU and CUDA; compare losses, validation metrics and scores."""
    if not torch.cuda.is_available():
        raise SystemExit("error: no CUDA device")
    data = load_npy_splits(splits)
    run = with_training(resolve_config(splits.resolve().name, model), epochs=epochs, eval_every=1, patience=epochs + 1)
    results, scores = {}, {}
    rows = np.arange(512)
    for device in ("cpu", "cuda"):
        dev = torch.device(device)
        net = build_model(run.model, data.n_users, data.n_items, seed=run.training.seed)
        res = fit(net, data.train, Target(data.valid, data.train), run.training, device=dev)
        results[device] = {"loss": [h["loss"] for h in res.history], "valid": res.best_valid}
        net.eval()
        scores[device] = make_scorer(net, data.train, dev)(rows).float().cpu()
    diff = (scores["cpu"] - scores["cuda"]).abs()
    top_cpu = torch.topk(scores["cpu"], 20, dim=1).indices
    top_gpu = torch.topk(scores["cuda"], 20, dim=1).indices
    overlap = np.mean([len(set(a.tolist()) & set(b.tolist())) / 20 for a, b in zip(top_cpu, top_gpu)])
    report = {
        **results,
        "max_abs_score_diff": float(diff.max()),
        "mean_abs_score": float(scores["cpu"].abs().mean()),
        "top20_overlap": float(overlap),
        "device": torch.cuda.get_device_name(0),
    }
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    from flows.cli import cli_errors  # a bad input: one line "error: …", exit 1

    typer.run(cli_errors(main))
