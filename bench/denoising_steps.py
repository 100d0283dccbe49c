"""How much of an L-variant's accuracy its denoiser carries: train once, then score with k = 0 … T denoising steps from μ.

    python bench/denoising_steps.py --splits ../shared/data/ml-1m_clean --item-emb ../shared/data/ml-1m_clean/item_emb.npy \
        --seed 2023 --threads 1 --out bench/results/ldiffrec-denoising-steps.json

Trains the dataset's shipped L-DiffRec config (or ``--config``) with one seed, selected on validation Recall@20 as
``bench/accuracy.py`` does, then evaluates validation and test with inference changed only in how many reverse steps run
from z = μ: k = 0 decodes μ directly, k = T is the model's own inference when its config has T' = 0 and no sampling
noise (μ is taken as x_T). A diagnostic of the architecture, never a way to choose a config (the trained model is the
same for every k).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import torch
import typer

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import accuracy  # noqa: E402
from diffrec_core.config import with_training  # noqa: E402
from diffrec_core.embeddings import clusters_for_presplit  # noqa: E402
from diffrec_core.evaluation import Target  # noqa: E402
from diffrec_core.interactions import load_npy_splits, model_input  # noqa: E402
from diffrec_core.models.registry import resolve_config, time_weights_for, validate_params  # noqa: E402
from diffrec_core.training import evaluate_model  # noqa: E402


def k_step_scorer(model, k: int):
    """Scores from k reverse steps t = k-1 … 0 starting at μ (k = 0: decode μ)."""

    def score(batch):
        z, _ = model.encode(batch.x)
        return model.decode(model.diffusion.denoise(model.denoiser, z, k))

    return score


def main(
    splits: Annotated[Path, typer.Option(help="folder with train_list.npy, valid_list.npy, test_list.npy")],
    out_path: Annotated[Path, typer.Option("--out", help="JSON output")],
    model_name: Annotated[str, typer.Option("--model", help="an L-variant: ldiffrec or ltdiffrec")] = "ldiffrec",
    config: Annotated[Optional[Path], typer.Option(help="run config (default: configs/<dataset>/<model>.yaml)")] = None,
    item_emb: Annotated[Optional[Path], typer.Option(help="item embeddings (.npy) to cluster, instead of the config's clusters.source")] = None,
    seed: Annotated[int, typer.Option(help="training seed")] = 2023,
    steps: Annotated[Optional[list[int]], typer.Option("--steps", help="k values to score (default 0, 1, 2, 5, 10, 20, T)")] = None,
    threads: Annotated[int, typer.Option(help="torch CPU threads (0 = torch default)")] = 0,
    emb_cache: Annotated[Path, typer.Option(help="cache of our LightGCN item embeddings")] = ROOT / "artifacts" / "embeddings",
) -> dict:
    if threads:
        torch.set_num_threads(threads)
    dataset = splits.resolve().name
    data = load_npy_splits(splits)
    run = with_training(resolve_config(dataset, model_name, config), seed=seed, device="cpu")
    params = validate_params(run.model)
    if not hasattr(params, "clusters"):
        raise SystemExit(f"error: --model {model_name!r} is not an L-variant (no clusters)")
    labels, _ = clusters_for_presplit(splits, data, params.clusters, item_emb=item_emb, cache_dir=emb_cache)
    net, result, metrics, _ = accuracy.run_seed(data, run, torch.device("cpu"), {"item_clusters": labels})
    n_steps = params.diffusion.steps
    ks = sorted({k for k in (steps or [0, 1, 2, 5, 10, 20, n_steps]) if 0 <= k <= n_steps})
    inputs = model_input(data.train, data.train_order, time_weights_for(run))
    targets = {"valid": Target(data.valid, data.train), "test": Target(data.test, data.train + data.valid)}
    # the model's own inference is the k = T path only when it starts from μ itself (T' = 0) without sampling noise
    own_is_k_steps = params.diffusion.sampling_steps == 0 and not params.diffusion.sampling_noise
    rows = []
    for k in ks:
        if k == n_steps and own_is_k_steps:  # already scored after training
            m = metrics
        else:
            net.score = k_step_scorer(net, k)
            m = evaluate_model(net, inputs, targets, run.training, torch.device("cpu"))
        rows.append({"k": k, **{f"{split}_{metric}": m[split][metric] for split in ("valid", "test") for metric in ("recall@20", "ndcg@20")}})
        print(json.dumps(rows[-1]), flush=True)
    out = {"dataset": dataset, "model": model_name, "seed": seed, "best_epoch": result.best_epoch, "T": n_steps, "rows": rows}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    from flows.cli import cli_errors  # a bad input: one line "error: …", exit 1

    typer.run(cli_errors(main))
