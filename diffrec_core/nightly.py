"""The nightly retrain policy: landing files, data fingerprints, model reuse, the regression gate, reports.

Each function opens the warehouse only briefly (DuckDB has one writer per file).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from diffrec_core import ingest, interactions, runs, warehouse
from diffrec_core.config import RunConfig

DEFAULT_LANDING_PATTERNS = ("*.csv", "*.parquet", "*.dat", "*.data", "*.tsv")
GATE_METRIC = "recall@20"


@dataclass(frozen=True)
class Landing:
    """The landing folder's files: ``ready`` to ingest (sorted by name, arrival order by convention), and
    ``waiting``: modified less than the settle time ago, so perhaps still being written; the next run takes them."""

    ready: list[str]
    waiting: list[str]


def landing_files(
    landing: str | Path,
    patterns: tuple[str, ...] | list[str] = DEFAULT_LANDING_PATTERNS,
    settle_seconds: float = 0.0,
    warehouse_path: str | Path | None = None,
    dataset: str | None = None,
) -> Landing:
    """Files in the landing folder matching any of ``patterns`` (hidden files left out).

    Already-ingested files stay in ``ready``: ingest is idempotent by content hash, so they are
    skipped there. Raises ``ValueError`` when ``landing`` is not a folder, when it has no file and
    ``warehouse_path`` does not exist yet (nothing to run on), and when a file was ingested into
    ``dataset`` before with other content: a landing file must not change, since the whole new content
    would land as a second batch beside the first (its old rows twice).
    """
    folder = Path(landing)
    if not folder.is_dir():
        raise ValueError(f"landing folder {folder} does not exist or is not a folder")
    found = sorted({p for pattern in patterns for p in folder.glob(pattern) if p.is_file() and not p.name.startswith(".")},
                   key=lambda p: p.name)
    now = time.time()
    ready = [p for p in found if not settle_seconds or now - p.stat().st_mtime >= settle_seconds]  # a future mtime waits
    waiting = [str(p) for p in sorted(set(found) - set(ready), key=lambda p: p.name)]
    if warehouse_path is not None and not Path(warehouse_path).exists():
        if not ready:
            raise ValueError(f"landing folder {folder} has no file to ingest ({', '.join(patterns)}"
                             f"{f'; {len(waiting)} still settling' if waiting else ''}) and warehouse {warehouse_path} does not exist yet")
    elif warehouse_path is not None and dataset is not None and ready:
        with warehouse.connect(warehouse_path, read_only=True) as con:
            earlier = warehouse.run_sql(con, "nightly/file_batches", dataset=dataset).fetchall()
        by_path: dict[Path, list[tuple]] = {}
        for batch_id, source, sha256, started_at in earlier:
            by_path.setdefault(Path(source).resolve(), []).append((batch_id, sha256, started_at))
        for p in ready:
            batches = by_path.get(p.resolve())
            if batches and ingest.file_sha256(p) not in {sha for _, sha, _ in batches}:
                batch_id, _, started_at = batches[-1]
                raise ValueError(f"landing file {p} changed after it was ingested as batch {batch_id} of dataset {dataset!r} "
                                 f"({started_at:%Y-%m-%d %H:%M} UTC): deliver new data as a new file, not by rewriting one")
    return Landing([str(p) for p in ready], waiting)


def data_fingerprint(warehouse_path: str | Path, dataset: str, setting: str) -> str:
    """``runs.split_fingerprint`` of the (dataset, setting) split: what every trained run records."""
    with warehouse.connect(warehouse_path, read_only=True) as con:
        return runs.split_fingerprint(con, dataset, setting)


def find_reusable_run(
    warehouse_path: str | Path,
    dataset: str,
    setting: str,
    run: RunConfig,
    fingerprint: str,
    max_age_hours: float,
) -> str | None:
    """The newest run of the same config trained on data with ``fingerprint`` at most ``max_age_hours`` ago.

    Its checkpoint folder must still exist. ``None`` when there is none (or ``max_age_hours <= 0``).
    """
    if max_age_hours <= 0:
        return None
    since = warehouse.utc_now() - timedelta(hours=max_age_hours)
    wanted = run.model_dump(mode="json")
    with warehouse.connect(warehouse_path, read_only=True) as con:
        rows = warehouse.run_sql(
            con, "nightly/reusable_runs", dataset=dataset, setting=setting, model=run.model.name,
            fingerprint=fingerprint, since=since,
        ).fetchall()
    for run_id, config, checkpoint, _status, _started in rows:
        if json.loads(config or "{}") == wanted and Path(checkpoint).is_dir():
            return run_id
    return None


def ensure_evaluated(warehouse_path: str | Path, run_id: str) -> dict[str, Any]:
    """The run's validation and test metrics: stored ones when it was evaluated already, else ``runs.evaluate_run``."""
    with warehouse.connect(warehouse_path, read_only=True) as con:
        info = runs.get_run(con, run_id)
    if "valid" in info.metrics and "test" in info.metrics:
        return {"valid": info.metrics["valid"], "test": info.metrics["test"]}
    return runs.evaluate_run(warehouse_path, run_id)


@dataclass(frozen=True)
class GateResult:
    """The regression gate's decision for a candidate run against the published one."""

    promote: bool
    candidate: str
    published: str | None
    candidate_score: float
    published_score: float | None
    tolerance: float
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _valid_score(info: runs.RunInfo) -> float | None:
    value = info.metrics.get("valid", {}).get(GATE_METRIC)
    return None if value is None else float(value)


def regression_gate(warehouse_path: str | Path, run_id: str, tolerance: float) -> GateResult:
    """Promote ``run_id`` unless its validation Recall@20 is more than ``tolerance`` (absolute) below the published run's.

    Like is compared with like: the published model is scored again on the candidate's validation
    split when it can read it (same users and items, checkpoint on disk); otherwise its figure
    stored at its own evaluation is used, and the reason says so. A rejected candidate is marked
    ``rejected`` in ``model_runs``; the published run keeps serving. Raises ``ValueError`` for a
    negative tolerance or a candidate without validation metrics.
    """
    if tolerance < 0:
        raise ValueError(f"gate tolerance must be >= 0, got {tolerance}")
    with warehouse.connect(warehouse_path, read_only=True) as con:
        candidate = runs.get_run(con, run_id)
        published_id = warehouse.published_run(con, candidate.dataset)
        published = runs.get_run(con, published_id) if published_id else None
        rescore = published is not None and published.run_id != run_id
        data = interactions.load_split(con, candidate.dataset, candidate.setting) if rescore else None
    score = _valid_score(candidate)
    if score is None:
        raise ValueError(f"model run {run_id!r} has no validation {GATE_METRIC}; evaluate it before the gate")
    if published is None:
        return GateResult(True, run_id, None, score, None, tolerance, "no published model yet")
    if published.run_id == run_id:
        return GateResult(True, run_id, run_id, score, score, tolerance, "candidate is the published model")
    try:
        reference = runs.evaluate_checkpoint(published, data, ("valid",))["valid"][GATE_METRIC]
        basis = "the published model on the same validation split"
    except (ValueError, OSError, RuntimeError) as exc:  # another id space, a missing or unloadable checkpoint: its stored figure
        reference, basis = _valid_score(published), f"the published model's stored figure ({exc})"
    if reference is None:
        return GateResult(True, run_id, published.run_id, score, None, tolerance, "published model has no validation metric")
    if score + tolerance < reference:
        with warehouse.connect(warehouse_path) as con:
            warehouse.update_model_run(con, run_id, status="rejected")
        return GateResult(
            False, run_id, published.run_id, score, reference, tolerance,
            f"validation {GATE_METRIC} {score:.4f} is more than {tolerance:g} below {reference:.4f}, {basis}",
        )
    return GateResult(
        True, run_id, published.run_id, score, reference, tolerance,
        f"validation {GATE_METRIC} {score:.4f} within {tolerance:g} of (or above) {reference:.4f}, {basis}",
    )


def recommendations_current(warehouse_path: str | Path, run_id: str) -> bool:
    """True when ``run_id`` is published, has no pending list (a refresh that has not passed its gates),
    and its recommendations used every batch ingested so far."""
    with warehouse.connect(warehouse_path, read_only=True) as con:
        info = runs.get_run(con, run_id)
        if warehouse.published_run(con, info.dataset) != run_id:
            return False
        if warehouse.run_sql(con, "outputs/count_pending_recommendations", run_id=run_id, dataset=info.dataset).fetchone()[0]:
            return False
        used = [r[0] for r in warehouse.run_sql(con, "nightly/run_batches", run_id=run_id, role="recommend").fetchall()]
        now = [r[0] for r in warehouse.run_sql(con, "raw/dataset_batches", dataset=info.dataset).fetchall()]
    return bool(used) and used == now


# ---------------------------------------------------------------- report

_REPORT_METRICS = (("valid", "recall@20"), ("valid", "ndcg@20"), ("test", "recall@10"), ("test", "ndcg@10"),
                   ("test", "recall@20"), ("test", "ndcg@20"))


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def metrics_markdown(
    warehouse_path: str | Path,
    run_id: str,
    previous_run_id: str | None,
    gate: dict[str, Any] | None = None,
    reports: list[str] | tuple[str, ...] = (),
) -> str:
    """A markdown report: the run's metrics beside the previous published run's, the gate's decision,
    and links to the report files in ``reports`` that exist (``{dataset}`` in a path is replaced)."""
    with warehouse.connect(warehouse_path, read_only=True) as con:
        current = runs.get_run(con, run_id)
        previous = runs.get_run(con, previous_run_id) if previous_run_id and previous_run_id != run_id else None
    lines = [f"# Nightly run: dataset `{current.dataset}`", "",
             f"Model run `{run_id}` ({current.model}, setting `{current.setting}`, status `{current.status}`)."]
    if previous is not None:
        lines.append(f"Compared with the previously published run `{previous.run_id}`.")
    lines += ["", "| metric | this run | previous | change |", "| --- | --- | --- | --- |"]
    for split, name in _REPORT_METRICS:
        now = current.metrics.get(split, {}).get(name)
        before = previous.metrics.get(split, {}).get(name) if previous else None
        change = "–" if now is None or before is None else f"{now - before:+.4f}"
        lines.append(f"| {split} {name} | {_fmt(now)} | {_fmt(before)} | {change} |")
    if gate:
        verdict = "promoted" if gate.get("promote") else "NOT promoted (the published model keeps serving)"
        lines += ["", f"Regression gate: {verdict}: {gate.get('reason')}."]
    paths = [Path(p.replace("{dataset}", current.dataset)) for p in reports]
    existing = [str(p.resolve()) for p in paths if p.exists()]
    if existing:
        lines += ["", "Reports:"] + [f"- [{Path(p).name}](file://{p})" for p in existing]
    return "\n".join(lines) + "\n"
