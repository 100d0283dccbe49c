"""Model runs recorded in the warehouse: train, evaluate, recommend, publish.

Each function opens the warehouse only for short reads and writes (DuckDB has one
writer per file), never while a model trains or scores.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from diffrec_core import distributed, embeddings, interactions, warehouse
from diffrec_core.config import InferenceConfig, RunConfig
from diffrec_core.evaluation import Target
from diffrec_core.models.registry import build_model, spec, time_weights_for, validate_params
from diffrec_core.paths import output_folder
from diffrec_core.recommend import run_top_k
from diffrec_core.training import evaluate_model, fit, load_checkpoint, save_checkpoint, select_device


def new_run_id(model: str) -> str:
    return f"{model}-{warehouse.utc_now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    dataset: str
    setting: str
    model: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    checkpoint_path: str | None
    status: str


def get_run(con, run_id: str) -> RunInfo:
    row = warehouse.run_sql(con, "outputs/get_model_run", run_id=run_id).fetchone()
    if row is None:
        raise ValueError(f"no model run {run_id!r} in the warehouse")
    run_id, dataset, setting, model, config, metrics, ckpt, status = row
    return RunInfo(run_id, dataset, setting, model, json.loads(config or "{}"), json.loads(metrics or "{}"), ckpt, status)


def train_run(
    warehouse_path: str | Path,
    dataset: str,
    setting: str,
    run: RunConfig,
    artifacts_dir: str | Path,
    *,
    progress: bool = False,
    embedding_run: str | None = None,
) -> str | None:
    """Train ``run`` on the (dataset, setting) split; save the best checkpoint; record it in ``model_runs``.

    L-variants take their item clusters from ``embedding_run`` (``diffrec_core.embeddings``).
    Returns the run id. A failed training leaves the run marked ``failed``. Under torchrun every
    rank trains its share (``diffrec_core.distributed``) and rank 0 alone records and checkpoints;
    the other ranks return ``None``.
    """
    params = validate_params(run.model)
    artifacts_dir = output_folder(artifacts_dir, "artifacts folder").resolve()  # before training, not after it; absolute in
    # model_runs, so that the checkpoint is found from any working directory
    side = None
    with warehouse.connect(warehouse_path, read_only=True) as con:
        data = interactions.load_split(con, dataset, setting)
        fingerprint = split_fingerprint(con, dataset, setting)
        if "item_clusters" in spec(run.model.name).side:
            if embedding_run is None:
                raise ValueError(f"model {run.model.name!r} needs item clusters: run the embed and cluster steps first (the pipeline does)")
            c = params.clusters
            side = {"item_clusters": embeddings.item_clusters(con, embedding_run, dataset, c.n_clusters, c.seed, c.vectors)}
    if not distributed.is_primary():
        model = build_model(run.model, data.n_users, data.n_items, seed=run.training.seed, side=side)
        fit(model, interactions.model_input(data.train, data.train_order, time_weights_for(run)), Target(data.valid, data.train), run.training)
        return None
    run_id = new_run_id(run.model.name)
    with warehouse.connect(warehouse_path) as con:
        warehouse.record_model_run(
            con, run_id=run_id, dataset=dataset, setting=setting, model=run.model.name,
            config=run.model_dump(mode="json"), status="running", started_at=warehouse.utc_now(),
        )
        warehouse.claim_run(con, run_id)  # a process killed outright cannot mark its run failed: the next writer does
    try:
        model = build_model(run.model, data.n_users, data.n_items, seed=run.training.seed, side=side)
        inputs = interactions.model_input(data.train, data.train_order, time_weights_for(run))
        result = fit(model, inputs, Target(data.valid, data.train), run.training, progress=progress)
        ckpt = save_checkpoint(Path(artifacts_dir) / run_id, model, run, data.n_users, data.n_items, {"dataset": dataset, "setting": setting},
                               keys=(data.user_keys, data.item_keys))
    except BaseException:
        with warehouse.connect(warehouse_path) as con:
            warehouse.update_model_run(con, run_id, status="failed", finished_at=warehouse.utc_now())
        raise
    metrics = {
        "valid": result.best_valid,
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "seconds_per_epoch": result.seconds_per_epoch,
        "seconds_per_eval": result.seconds_per_eval,
        "seconds_total": result.seconds_total,
        "params": sum(p.numel() for p in model.parameters()),
        **_peak_memory(),
        **({"embedding_run": embedding_run} if side is not None else {}),
    }
    with warehouse.connect(warehouse_path) as con, warehouse.transaction(con):
        warehouse.update_model_run(con, run_id, status="trained", metrics=metrics, checkpoint_path=str(ckpt), finished_at=warehouse.utc_now())
        warehouse.run_sql(con, "outputs/set_fingerprint", run_id=run_id, fingerprint=fingerprint)
        record_inputs(con, run_id, dataset, "train")
    return run_id


def split_fingerprint(con, dataset: str, setting: str) -> str:
    """sha256 over the (dataset, setting) train split (original keys and weights), the staged id space
    and the warehouse's instance id.

    Two splits of one warehouse with the same fingerprint give a model the same input matrix,
    so a model trained on one serves the other. Raises ``ValueError`` when the split has no train rows.
    """
    rows, train_hash, users_hash, items_hash, instance = warehouse.run_sql(
        con, "outputs/train_fingerprint", dataset=dataset, setting=setting
    ).fetchone()
    if not rows:
        raise ValueError(f"split {setting!r} of dataset {dataset!r} has no train rows: make it with 'diffrec split' first")
    text = json.dumps([dataset, setting, int(rows), train_hash, users_hash, items_hash, instance])
    return hashlib.sha256(text.encode()).hexdigest()


def record_inputs(con, run_id: str, dataset: str, role: str) -> None:
    """Lineage: link ``run_id`` to every batch of ``dataset`` ingested so far, as what it was trained on
    (``role`` 'train') or what its recommendations' history came from ('recommend')."""
    warehouse.run_sql(con, "outputs/record_inputs", run_id=run_id, dataset=dataset, role=role)


def _peak_memory() -> dict[str, float]:
    """Peak resident memory of this process (MB) and, on a GPU, the peak allocated GPU memory (MB)."""
    import resource
    import sys

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {"peak_rss_mb": rss / (2**20 if sys.platform == "darwin" else 1024.0)}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["peak_gpu_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def evaluate_run(warehouse_path: str | Path, run_id: str, device: str = "auto") -> dict[str, dict[str, float]]:
    """Validation and test metrics of a trained run (paper protocol), stored in its ``metrics``.

    A ``trained`` run becomes ``evaluated``; a ``published`` or ``rejected`` one keeps its status.
    """
    with warehouse.connect(warehouse_path, read_only=True) as con:
        info = get_run(con, run_id)
        data = interactions.load_split(con, info.dataset, info.setting)
    results = evaluate_checkpoint(info, data, ("valid", "test"), device)
    with warehouse.connect(warehouse_path) as con:
        warehouse.mark_evaluated(con, run_id, {**info.metrics, **results})
    return results


def evaluate_checkpoint(info: RunInfo, data: interactions.SplitData, parts: tuple[str, ...] = ("valid", "test"),
                        device: str = "auto") -> dict[str, dict[str, float]]:
    """Metrics (paper protocol) of a run's checkpoint on ``data``, its own split or another of the same id space.

    Raises ``ValueError`` when the run has no checkpoint or was trained on other users/items.
    """
    if not info.checkpoint_path:
        raise ValueError(f"model run {info.run_id!r} has no checkpoint (status {info.status})")
    dev = select_device(device)
    model, meta = load_checkpoint(info.checkpoint_path, dev)
    if data.train.shape != (meta["n_users"], meta["n_items"]):
        raise ValueError(f"model run {info.run_id!r} was trained on {meta['n_users']} users x {meta['n_items']} items, "
                         f"not the {data.train.shape[0]} x {data.train.shape[1]} of this split")
    run = RunConfig.model_validate(meta["run"])
    targets = {"valid": Target(data.valid, data.train), "test": Target(data.test, data.train + data.valid)}
    inputs = interactions.model_input(data.train, data.train_order, time_weights_for(run))
    return evaluate_model(model, inputs, {part: targets[part] for part in parts}, run.training, dev)


def recommend_run(warehouse_path: str | Path, run_id: str, inference: InferenceConfig = InferenceConfig(), device: str = "auto") -> int:
    """Top-K for every user with history (production protocol), written under ``run_id`` but not published.

    Input = each user's known history in the run's setting (time-weighted for the T-variants);
    every known interaction is masked. Returns the number of rows written.
    """
    with warehouse.connect(warehouse_path, read_only=True) as con:
        info = get_run(con, run_id)
        row = warehouse.run_sql(con, "splits/setting_min_rating", dataset=info.dataset, setting=info.setting).fetchone()
        if row is None:
            raise ValueError(f"dataset {info.dataset!r} has no split setting {info.setting!r}")
        inputs, user_keys, item_keys = interactions.load_history(con, info.dataset, min_rating=row[0])
        seen, _, _ = interactions.load_history(con, info.dataset, min_rating=None)
        if info.checkpoint_path:
            weights = time_weights_for(RunConfig.model_validate(info.config))
            if weights is not None:
                history, order = interactions.load_history_order(con, info.dataset, min_rating=row[0])
                inputs = interactions.model_input(history, order, weights)
    recs = run_top_k(info, inputs, inference.k, seen=seen, user_keys=user_keys, item_keys=item_keys,
                     batch_size=inference.batch_size, device=device)
    frame = pd.DataFrame({
        "user_key": user_keys[recs["user"]],
        "item_key": item_keys[recs["item"]],
        "rank": recs["rank"],
        "score": recs["score"].astype("float64"),
    })
    with warehouse.connect(warehouse_path) as con:
        warehouse.write_recommendations(con, run_id, info.dataset, frame)
        record_inputs(con, run_id, info.dataset, "recommend")
    return len(frame)


def publish_run(warehouse_path: str | Path, run_id: str) -> None:
    """Switch ``latest_recommendations`` for the run's dataset to ``run_id`` in one transaction."""
    with warehouse.connect(warehouse_path) as con:
        info = get_run(con, run_id)
        if warehouse.run_sql(con, "outputs/count_recommendations", run_id=run_id, dataset=info.dataset).fetchone()[0] == 0:
            raise ValueError(f"model run {run_id!r} has no recommendations to publish")
        warehouse.publish(con, info.dataset, run_id)
