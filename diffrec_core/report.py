"""Comparison report: models side by side on one dataset (test Recall/NDCG@10/20, size, memory,
training time), as a markdown table and a bar chart in the manner of the DiffRec paper's Table 2.

Inputs are evaluated ``model_runs`` of the warehouse (for each model and setting, the run with
the best validation Recall@20 is shown: selection never looks at test) and, optionally, the
JSON results that ``bench/accuracy.py`` writes (mean of their seeds; for each model, among the
files with the most seeds, the one with the best mean validation Recall@20).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, FiniteFloat, NonNegativeInt, ValidationError, field_validator

from diffrec_core.config import _first_error
from diffrec_core.paths import output_folder

METRICS = ("recall@10", "recall@20", "ndcg@10", "ndcg@20")
LABELS = {"recall@10": "Recall@10", "recall@20": "Recall@20", "ndcg@10": "NDCG@10", "ndcg@20": "NDCG@20"}
DISPLAY = {
    "mf": "MF", "lightgcn": "LightGCN", "cdae": "CDAE", "multidae": "MultiDAE", "multidae_pp": "MultiDAE++",
    "multivae": "MultiVAE", "codigem": "CODIGEM", "ease": "EASE", "diffrec": "DiffRec", "ldiffrec": "L-DiffRec",
    "tdiffrec": "T-DiffRec", "ltdiffrec": "LT-DiffRec",
}
# DiffRec paper, Table 2 (ML-1M, clean training), test Recall@20.
PAPER_RECALL20 = {
    "ml-1m_clean": {"mf": 0.1503, "lightgcn": 0.1707, "cdae": 0.1705, "multidae": 0.1753, "multidae_pp": 0.1771,
                    "multivae": 0.1726, "codigem": 0.1699, "diffrec": 0.1787, "ldiffrec": 0.1809},
}


@dataclass
class Row:
    """One model's figures. ``test`` holds the test metrics; ``std`` their spread over seeds when known."""

    model: str
    source: str
    test: dict[str, float]
    std: dict[str, float] = field(default_factory=dict)
    valid_recall20: float | None = None
    params: int | None = None
    peak_memory_mb: float | None = None
    memory_kind: str = ""
    train_seconds: float | None = None
    seeds: int = 1
    device: str = ""

    @property
    def name(self) -> str:
        return DISPLAY.get(self.model, self.model)


def rows_from_warehouse(con, dataset: str, setting: str | None = None) -> list[Row]:
    """Best run (by validation Recall@20) per (model, setting) among the dataset's evaluated runs."""
    from diffrec_core.warehouse import run_sql

    best: dict[tuple[str, str], tuple[float, Row]] = {}
    for run_id, run_setting, model, metrics_json, _status, _finished in run_sql(con, "outputs/evaluated_runs", dataset=dataset).fetchall():
        if setting is not None and run_setting != setting:
            continue
        metrics = json.loads(metrics_json or "{}")
        test = metrics.get("test") or {}
        if not all(m in test for m in METRICS):
            continue
        valid = float((metrics.get("valid") or {}).get("recall@20", float("-inf")))
        memory, kind = _memory(metrics)
        row = Row(
            model=model,
            source=f"run {run_id}" + (f" ({run_setting})" if run_setting != "clean" else ""),
            test={m: float(test[m]) for m in METRICS},
            valid_recall20=valid if math.isfinite(valid) else None,
            params=metrics.get("params"),
            peak_memory_mb=memory,
            memory_kind=kind,
            train_seconds=metrics.get("seconds_total"),
            device=str(metrics.get("device", "")),
        )
        key = (model, run_setting)
        if key not in best or valid > best[key][0]:
            best[key] = (valid, row)
    return [row for _, row in best.values()]


def rows_from_bench(directory: str | Path, dataset: str) -> list[Row]:
    """Rows from ``bench/accuracy.py`` result files (``*.json`` with dataset, model and test means)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"{directory}: no such benchmark results folder")
    rows = []
    for path in sorted(directory.glob("*.json")):
        try:
            out = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: not a readable results file ({type(exc).__name__})") from None
        if not isinstance(out, dict) or out.get("dataset") != dataset or "mean" not in out:
            continue  # another dataset's results, or another benchmark's (accuracy results have test 'mean's)
        try:
            result = BenchResult.model_validate(out)
        except ValidationError as exc:
            raise ValueError(f"{path}: not a bench/accuracy.py results file: {_first_error(exc)}") from None
        seconds = [r.seconds_total for r in result.per_seed if r.seconds_total is not None]
        memory, kind = _memory(out)
        rows.append(Row(
            model=result.model,
            source=path.name,
            test={m: result.mean[m] for m in METRICS},
            std=dict(result.std),
            valid_recall20=(result.valid_mean or {}).get("recall@20"),
            params=result.params,
            peak_memory_mb=memory,
            memory_kind=kind,
            train_seconds=sum(seconds) / len(seconds) if seconds else None,
            seeds=len(result.seeds or result.per_seed) or 1,
            device=result.device,
        ))
    return best_per_model(rows)


class SeedResult(BaseModel):
    model_config = ConfigDict(extra="allow")
    seconds_total: FiniteFloat | None = None


class BenchResult(BaseModel):
    """The fields of a ``bench/accuracy.py`` results file that the report reads (others are kept unread)."""

    model_config = ConfigDict(extra="allow")
    dataset: str
    model: str
    mean: dict[str, FiniteFloat]
    std: dict[str, FiniteFloat] = {}
    valid_mean: dict[str, FiniteFloat] | None = None
    params: NonNegativeInt | None = None
    peak_rss_mb: FiniteFloat | None = None
    peak_gpu_memory_mb: FiniteFloat | None = None
    per_seed: list[SeedResult] = []
    seeds: list[int] | None = None
    device: str = ""

    @field_validator("mean")
    @classmethod
    def _has_metrics(cls, mean: dict[str, float]) -> dict[str, float]:
        missing = [m for m in METRICS if m not in mean]
        if missing:
            raise ValueError(f"lacks {', '.join(missing)}")
        return mean


def best_per_model(rows: list[Row]) -> list[Row]:
    """One row per model: among its rows with the most seeds, the best validation Recall@20 (never test).

    Rows without a validation figure lose to rows with one; ties keep the first (file order).
    """
    def rank(row: Row) -> tuple[int, float]:
        return row.seeds, row.valid_recall20 if row.valid_recall20 is not None else float("-inf")

    best: dict[str, Row] = {}
    for row in rows:
        if row.model not in best or rank(row) > rank(best[row.model]):
            best[row.model] = row
    return list(best.values())


def _memory(metrics: dict[str, Any]) -> tuple[float | None, str]:
    if metrics.get("peak_gpu_memory_mb") is not None:
        return float(metrics["peak_gpu_memory_mb"]), "GPU"
    if metrics.get("peak_rss_mb") is not None:
        return float(metrics["peak_rss_mb"]), "RSS"
    return None, ""


def markdown_table(rows: list[Row], dataset: str) -> str:
    """Models sorted by test Recall@20 (best first); the best value of each metric in bold."""
    rows = sorted(rows, key=lambda r: -r.test["recall@20"])
    paper = PAPER_RECALL20.get(dataset, {})
    best = {m: max(r.test[m] for r in rows) for m in METRICS}

    def cell(r: Row, m: str) -> str:
        text = f"{r.test[m]:.4f}" + (f" ± {r.std[m]:.4f}" if m in r.std and r.seeds > 1 else "")
        return f"**{text}**" if r.test[m] == best[m] else text

    head = ["model", *(LABELS[m] for m in METRICS)]
    if paper:
        head.append("paper Recall@20")
    head += ["parameters", "peak memory (MB)", "training time (s)", "seeds", "source"]
    lines = [
        f"## {dataset}: test metrics (mean ± std over seeds; configurations chosen on validation Recall@20)",
        "",
        "| " + " | ".join(head) + " |",
        "| " + " | ".join("---" for _ in head) + " |",
    ]
    for r in rows:
        cells = [r.name, *(cell(r, m) for m in METRICS)]
        if paper:
            cells.append(f"{paper[r.model]:.4f}" if r.model in paper else "—")
        cells += [
            f"{r.params:,}" if r.params is not None else "—",
            f"{r.peak_memory_mb:,.0f} ({r.memory_kind})" if r.peak_memory_mb is not None else "—",
            f"{r.train_seconds:,.1f}" if r.train_seconds is not None else "—",
            str(r.seeds),
            r.source + (f", {r.device}" if r.device else ""),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Training time is per seed (to the end of early stopping); peak memory is the process's peak "
              "resident set (RSS) on CPU or the peak allocated GPU memory.", ""]
    return "\n".join(lines)


def bar_chart(rows: list[Row], dataset: str, path: str | Path) -> None:
    """Grouped bars: one group per model, one bar per metric (PNG, matplotlib's Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(rows, key=lambda r: -r.test["recall@20"])
    labels = [f"{r.name}\n({r.source[:18]})" if sum(x.name == r.name for x in rows) > 1 else r.name for r in rows]
    width = 0.8 / len(METRICS)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(rows) + 2), 4.5))
    for j, m in enumerate(METRICS):
        xs = [i + (j - (len(METRICS) - 1) / 2) * width for i in range(len(rows))]
        errs = [r.std.get(m, 0.0) for r in rows]
        ax.bar(xs, [r.test[m] for r in rows], width, yerr=errs if any(errs) else None, label=LABELS[m], capsize=2)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel("test metric")
    ax.set_title(f"{dataset}: test Recall/NDCG@10/20")
    ax.legend(ncol=4, fontsize=8, loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    top = max(r.test[m] for r in rows for m in METRICS)
    ax.set_ylim(0, top * 1.2)
    fig.tight_layout()
    _atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    plt.close(fig)


def _atomic_write(path: str | Path, write) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def compare(
    dataset: str,
    out_dir: str | Path,
    *,
    warehouse_path: str | Path | None = None,
    bench_dir: str | Path | None = None,
    setting: str | None = None,
) -> tuple[Path, Path, list[Row]]:
    """Write ``compare-<dataset>.md`` and ``compare-<dataset>.png`` into ``out_dir``; returns their paths and the rows.

    Reads the warehouse when ``warehouse_path`` is given and ``bench/accuracy.py`` results when
    ``bench_dir`` is given. Raises ValueError when no source has a row for ``dataset``.
    """
    if warehouse_path is None and bench_dir is None:
        raise ValueError("nothing to compare: give a warehouse or a benchmark results folder")
    rows: list[Row] = []
    if warehouse_path is not None:
        from diffrec_core import warehouse

        with warehouse.connect(warehouse_path, read_only=True) as con:
            rows += rows_from_warehouse(con, dataset, setting)
    if bench_dir is not None:
        rows += rows_from_bench(bench_dir, dataset)
    if not rows:
        where = " or ".join(str(p) for p in (warehouse_path, bench_dir) if p is not None)
        of = f"dataset {dataset!r}" + (f", setting {setting!r}," if setting is not None and warehouse_path is not None else "")
        raise ValueError(f"no evaluated model runs for {of} in {where} (run 'diffrec evaluate' first)")
    out_dir = output_folder(out_dir, "report folder", create=False)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in dataset)
    md_path, png_path = out_dir / f"compare-{safe}.md", out_dir / f"compare-{safe}.png"
    for target in (md_path, png_path):  # refused before either is written, so no report is left half-done
        if target.is_dir():
            raise ValueError(f"{target}: it is a folder, where the report writes a file")
    out_dir.mkdir(parents=True, exist_ok=True)
    bar_chart(rows, dataset, png_path)
    text = markdown_table(rows, dataset) + f"\n![{dataset} comparison]({png_path.name})\n"
    _atomic_write(md_path, lambda tmp: Path(tmp).write_text(text))
    return md_path, png_path, rows
