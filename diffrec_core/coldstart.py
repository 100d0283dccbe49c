"""Cold-start scoring: a user absent from training, given a list of item keys, scored by the
published model without retraining (the denoiser takes an interaction vector, not a user id). The list's order is taken as
the interaction order."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from diffrec_core import interactions, runs, warehouse
from diffrec_core.config import RunConfig
from diffrec_core.models.registry import time_weights_for
from diffrec_core.recommend import run_top_k


@dataclass(frozen=True)
class ColdStartResult:
    """``recommendations``: columns rank, item_key, score (best first); ``unknown``: input keys the model does not know."""

    run_id: str
    dataset: str
    known: list[str]
    unknown: list[str]
    recommendations: pd.DataFrame = field(repr=False)


def read_history_file(path: str | Path) -> list[str]:
    """Item keys from a file: a JSON list of keys (``.json``), else one key per line
    (blank lines and lines starting with ``#`` ignored). Raises ``ValueError`` naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read history file ({type(exc).__name__})") from None
    if path.suffix.lower() == ".json":
        try:
            keys = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        if not isinstance(keys, list) or not all(isinstance(k, (str, int)) and not isinstance(k, bool) for k in keys):
            raise ValueError(f"{path}: expected a JSON list of item keys (strings or integers)")
        keys = [str(k) for k in keys]
    else:
        keys = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    if not keys:
        raise ValueError(f"{path}: no item keys in the history file")
    return keys


def score_history(
    warehouse_path: str | Path,
    dataset: str,
    item_keys: list[str],
    *,
    k: int = 20,
    run_id: str | None = None,
    device: str = "auto",
) -> ColdStartResult:
    """Top-``k`` items for a new user whose history is ``item_keys``, from the published model of ``dataset``
    (or ``run_id``). The history items are the model's input and are masked from the result.

    Unknown keys are returned in ``unknown`` and ignored; raises ``ValueError`` when no model is
    published, the model does not match the staged items, or none of the keys is known.
    """
    with warehouse.connect(warehouse_path, read_only=True) as con:
        run_id = run_id or warehouse.published_run(con, dataset)
        if run_id is None:
            raise ValueError(f"no published model for dataset {dataset!r}; run the pipeline first or pass a run id")
        info = runs.get_run(con, run_id)
        _, catalog = interactions.load_keys(con, info.dataset)
    from diffrec_core.training import checkpoint_keys

    index = {str(key): i for i, key in enumerate(catalog)}
    trained = checkpoint_keys(info.checkpoint_path) if info.checkpoint_path else None
    # known = an input the model reads: staged today and (when the checkpoint keeps its keys) trained on
    model_items = index if trained is None else set(trained[1].astype(str))
    seen_keys: dict[str, None] = dict.fromkeys(str(key) for key in item_keys)  # ordered, without repeats
    known = [key for key in seen_keys if key in index and key in model_items]
    unknown = [key for key in seen_keys if key not in index or key not in model_items]
    if not known:
        raise ValueError(f"none of the {len(seen_keys)} item keys is known to model run {run_id!r} of dataset {info.dataset!r} "
                         f"(e.g. {unknown[0]!r})")
    cols = np.array([index[key] for key in known], dtype=np.int64)
    # The list's order is the interaction order (it keys the T-variants' time weights).
    history, order = interactions.to_csr_with_order(np.zeros(len(cols), dtype=np.int64), cols,
                                                    np.arange(len(cols), dtype=np.float64), (1, len(catalog)))
    inputs = interactions.model_input(history, order, time_weights_for(RunConfig.model_validate(info.config)))
    recs = run_top_k(info, inputs, k, seen=history, new_users=True, item_keys=catalog, device=device)
    frame = pd.DataFrame({
        "rank": recs["rank"],
        "item_key": catalog[recs["item"]].astype(str),
        "score": recs["score"].astype("float64"),
    })
    return ColdStartResult(run_id, info.dataset, known, unknown, frame)
