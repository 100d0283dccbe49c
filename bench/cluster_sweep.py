"""Recall@20 of L-DiffRec against the number of item clusters C (paper Figure 7).

    python bench/cluster_sweep.py --splits ../shared/data/ml-1m_clean --out-dir bench/results/c-sweep \
        --item-emb ../shared/data/ml-1m_clean/item_emb.npy --clusters 1 2 3 4 5 --seeds 1 --threads 1

Runs bench/accuracy.py once per C (one after the other, same config and seeds; selection on
validation Recall@20 only), or only re-plots with ``--plot-only``; writes ``c-sweep.md`` (table)
and ``c-sweep.png`` (test Recall@20 and NDCG@20 against C) into the output folder.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

ROOT = Path(__file__).resolve().parents[1]


def run_one(splits: Path, out: Path, c: int, config: Optional[Path], item_emb: Optional[Path], seeds: int, threads: int,
            max_seconds: Optional[float], device: str) -> None:
    cmd = [sys.executable, str(ROOT / "bench" / "accuracy.py"), "--splits", str(splits), "--model", "ldiffrec",
           "--n-clusters", str(c), "--seeds", str(seeds), "--threads", str(threads), "--device", device, "--out", str(out)]
    if config is not None:
        cmd += ["--config", str(config)]
    if item_emb is not None:
        cmd += ["--item-emb", str(item_emb)]
    if max_seconds is not None:
        cmd += ["--max-seconds", str(max_seconds)]
    subprocess.run(cmd, check=True, cwd=ROOT)


def table(rows: list[dict]) -> str:
    lines = ["| C | cluster sizes | test Recall@20 | test NDCG@20 | valid Recall@20 | params | seeds | epochs run | stopped by time |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        stopped = sum(bool(s.get("stopped_by_time")) for s in r["per_seed"])
        lines.append(f"| {r['clusters']['n_clusters']} | {r['clusters']['sizes']} | {r['mean']['recall@20']:.4f} ± {r['std']['recall@20']:.4f} | "
                     f"{r['mean']['ndcg@20']:.4f} ± {r['std']['ndcg@20']:.4f} | {r['valid_mean']['recall@20']:.4f} | {r['params']:,} | "
                     f"{len(r['seeds'])} | {[s['epochs_run'] for s in r['per_seed']]} | {stopped} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cs = [r["clusters"]["n_clusters"] for r in rows]
    fig, ax = plt.subplots(figsize=(4.8, 3.4), dpi=150)
    ax.errorbar(cs, [r["mean"]["recall@20"] for r in rows], yerr=[r["std"]["recall@20"] for r in rows], marker="o", label="Recall@20")
    ax.errorbar(cs, [r["mean"]["ndcg@20"] for r in rows], yerr=[r["std"]["ndcg@20"] for r in rows], marker="s", label="NDCG@20")
    ax.set_xlabel("number of item clusters C")
    ax.set_xticks(cs)
    ax.set_ylabel("test metric")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(
    splits: Annotated[Path, typer.Option(help="pre-split data folder (authors' format)")],
    out_dir: Annotated[Path, typer.Option(help="folder for the per-C JSON, the table and the plot")],
    clusters: Annotated[list[int], typer.Option(help="values of C")] = [1, 2, 3, 4, 5],  # noqa: B006
    config: Annotated[Optional[Path], typer.Option(help="ldiffrec run config (default: the shipped one)")] = None,
    item_emb: Annotated[Optional[Path], typer.Option(help="item embeddings to cluster (default: the config's clusters.source)")] = None,
    seeds: Annotated[int, typer.Option(help="seeds per C")] = 1,
    threads: Annotated[int, typer.Option(help="torch CPU threads")] = 1,
    max_seconds: Annotated[Optional[float], typer.Option(help="per seed training budget")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "auto",
    plot_only: Annotated[bool, typer.Option(help="only rebuild the table and plot from existing JSON")] = False,
) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    dataset = splits.resolve().name
    for c in clusters:
        path = out_dir / f"{dataset}-ldiffrec-C{c}.json"
        if not plot_only:
            run_one(splits, path, c, config, item_emb, seeds, threads, max_seconds, device)
    rows = [json.loads(p.read_text()) for c in sorted(set(clusters)) if (p := out_dir / f"{dataset}-ldiffrec-C{c}.json").is_file()]
    if not rows:
        raise SystemExit(f"error: no results in {out_dir}")
    c0 = rows[0]["clusters"]
    source = Path(c0["embeddings"]).name if c0.get("embeddings") else c0["source"]
    title = f"L-DiffRec on {dataset}: test metrics vs C\n(k-means of {source}, {len(rows[0]['seeds'])} seed(s))"
    (out_dir / "c-sweep.md").write_text(f"### {title.replace(chr(10), ' ')}\n\n" + table(rows))
    plot(rows, out_dir / "c-sweep.png", title)
    print(table(rows))


if __name__ == "__main__":
    from flows.cli import cli_errors  # a bad input: one line "error: …", exit 1

    typer.run(cli_errors(main))
