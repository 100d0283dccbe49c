"""Training settings from raw logs: clean, natural noise and random noise (paper §4.1, Figure 4).

    python bench/settings.py --plan bench/plans/settings/raw-logs.yaml \
        --models diffrec,tdiffrec,ldiffrec,ltdiffrec,multivae,lightgcn --threads 1 --out bench/results/settings

(or ``--data LOG`` per raw log, all with the command's options; a plan gives each log its own).

For each raw log: ingest into a scratch warehouse, stage, and make the clean, noisy-natural
and noisy-random-p (p = 0.1 ... 0.5) splits (per-user chronological 7:1:2 by default: the
global cut leaves few evaluable test users on these small logs). For each model, a small
grid is searched on the clean split and the configuration with the best validation
Recall@20 is kept (T-variants: the chosen configuration of their base model, searched over
w_min); that configuration is then trained on every noisy split. Every setting is tested on
the same clean test set, with the setting's own train+valid items masked. Validation only
ever selects; the test numbers are reported once per (setting, model).

Writes <out>-<dataset>.json (every run, saved after each, so an interrupted command resumes
where it stopped), <out>.md (test Recall/NDCG@10/20 per dataset, setting and model) and
<out>-recall20.png (test Recall@20 against the random-noise proportion), over every
<out>-*.json present. Runs already in <out>-<dataset>.json with the same protocol (split method,
ratios, training options; not the device or thread count) are kept, and ``--merge-from`` folds
in the models of a file made on another machine.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Optional

import torch
import typer

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from diffrec_core import ingest, splits, warehouse  # noqa: E402
from diffrec_core.config import RunConfig, load_yaml  # noqa: E402
from diffrec_core.evaluation import Target  # noqa: E402
from diffrec_core.interactions import SplitData, load_split, model_input  # noqa: E402
from diffrec_core.models.registry import (  # noqa: E402
    VARIANTS, available, build_model, resolve_config, spec, time_weights_for, validate_params,
)
from diffrec_core.search import apply_overrides  # noqa: E402
from diffrec_core.training import evaluate_model, fit, select_device  # noqa: E402

METRICS = ("recall@10", "recall@20", "ndcg@10", "ndcg@20")
MODELS = ("diffrec", "tdiffrec", "ldiffrec", "ltdiffrec", "multivae", "lightgcn")
DEFAULT_MODELS = ("diffrec", "tdiffrec", "multivae")
RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5)

# Small grids searched on the clean split's validation set (dotted paths into a run config).
GRIDS: dict[str, dict[str, list[Any]]] = {
    "diffrec": {
        "model.params.diffusion.steps": [5],
        "model.params.diffusion.noise_scale": [0.01, 0.1, 0.5],
    },
    "ldiffrec": {
        "model.params.diffusion.noise_scale": [0.01, 0.1],
        # its KL and λ annealing make the first epochs flat (patience 8 stopped runs before they
        # learned) and it was still improving at 60 epochs: its own budget, as LightGCN's
        "training.epochs": [200],
        "training.patience": [20],
    },
    "multivae": {
        "training.lr": [0.001, 0.0003],
    },
    # LightGCN makes one BPR step per batch of users: on these small logs a batch of 256 users is
    # ~4 steps an epoch, so it gets smaller batches and its own epoch budget (early stopping still
    # on validation); L2 weight as chosen on ml-1m_clean (1e-3) and He et al.'s (1e-4).
    "lightgcn": {
        "training.lr": [0.005, 0.01],
        "model.params.reg": [0.0001, 0.001],
        "training.batch_size": [64],
        "training.epochs": [300],
        "training.patience": [30],
    },
}
W_MIN_GRID = [0.1, 0.3, 0.5]


def _product(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    combos: list[dict[str, Any]] = [{}]
    for key, values in grid.items():
        combos = [{**c, key: v} for c in combos for v in values]
    return combos


def prepare(data_path: Path, warehouse_path: Path, method: str, ratios: tuple[float, ...], seed: int) -> tuple[str, list[str], dict]:
    """Ingest, stage and make every setting; returns (dataset, settings, split reports)."""
    from flows.cli import dataset_name

    dataset = dataset_name(None, data_path)
    configs = [splits.setting_config("clean", method=method, seed=seed)]
    configs += [splits.setting_config("noisy-random", p, method=method, seed=seed) for p in ratios]
    configs.append(splits.setting_config("noisy-natural", method=method, seed=seed))
    reports = {}
    with warehouse.connect(warehouse_path) as con:
        ingest.ingest_file(con, data_path, dataset)
        splits.stage(con, dataset)
        for config in configs:
            r = splits.make_split(con, dataset, config)
            reports[config.setting] = {"train": r.train_rows, "valid": r.valid_rows, "test": r.test_rows,
                                       "test_excluded": r.test_rows_excluded}
    return dataset, [c.setting for c in configs], reports


def train_and_test(run: RunConfig, setting: str, data: SplitData, clean_test, device, side_data) -> dict:
    """Fit on the setting's train (selection on its validation), test on the clean test set."""
    inputs = model_input(data.train, data.train_order, time_weights_for(run))
    side = side_data(run, setting, data) if side_data else None
    model = build_model(run.model, data.n_users, data.n_items, seed=run.training.seed, side=side) if side else \
        build_model(run.model, data.n_users, data.n_items, seed=run.training.seed)
    t0 = time.perf_counter()
    result = fit(model, inputs, Target(data.valid, data.train), run.training, device=device)
    targets = {"valid": Target(data.valid, data.train), "test": Target(clean_test, data.train + data.valid)}
    metrics = evaluate_model(model, inputs, targets, run.training, device)
    return {
        "valid": {m: metrics["valid"][m] for m in METRICS},
        "test": {m: metrics["test"][m] for m in METRICS},
        "test_users": metrics["test"]["users"],
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "seconds": time.perf_counter() - t0,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
    }


def trials_for(model: str, dataset: str, chosen: dict[str, RunConfig], training: dict, grids: dict,
               w_mins: list[float]) -> list[tuple[dict, RunConfig]]:
    """(overrides, run config) of each grid trial of ``model``; T-variants search w_min on their base's choice."""
    if model in VARIANTS:
        base = chosen[VARIANTS[model][0]]
        start = base.model_copy(update={"model": base.model.model_copy(update={"name": model})})
        return [({"time_weights.w_min": w}, apply_overrides(start, {"time_weights": {"w_min": w, "w_max": 1.0}}))
                for w in w_mins]
    base = apply_overrides(resolve_config(dataset, model), {f"training.{k}": v for k, v in training.items()})
    out = []
    for combo in _product(grids.get(model, {})):
        try:
            out.append((combo, apply_overrides(base, combo)))
        except ValueError:
            continue  # a combination the validators refuse
    return out


@dataclass
class DatasetOptions:
    """The protocol of one raw log's experiment (CLI options, or one entry of a --plan file)."""

    data: Path
    ratios: tuple[float, ...]
    training: dict
    grids: dict
    w_mins: list[float]


def parse_grid(grids: dict, specs: list[str]) -> dict:
    """Grids with axes replaced by 'MODEL:DOTTED.KEY=[V1, V2, ...]' specs."""
    grids = {m: dict(axes) for m, axes in grids.items()}
    for spec_text in specs:
        model_name, _, rest = spec_text.partition(":")
        key, _, values = rest.partition("=")
        parsed = load_yaml(values) if values else None
        if not model_name or not key or not isinstance(parsed, list) or not parsed:
            raise SystemExit(f"error: --grid must be MODEL:DOTTED.KEY=[V1, V2, ...], got {spec_text!r}")
        grids.setdefault(model_name, {})[key] = parsed
    return grids


PLAN_KEYS = {"data", "max_epochs", "patience", "eval_every", "ratios", "w_min_grid", "grid"}


def plan_options(path: Path, defaults: dict, device: str) -> list[DatasetOptions]:
    """Per-dataset options from a plan file: a 'datasets' list whose entries override the CLI options."""
    if not path.is_file():
        raise SystemExit(f"error: {path}: no such plan file")
    plan = load_yaml(path.read_text())
    entries = plan.get("datasets") if isinstance(plan, dict) else None
    if not isinstance(entries, list) or not entries:
        raise SystemExit(f"error: {path}: a plan needs a non-empty 'datasets' list")
    out = []
    for i, e in enumerate(entries):
        unknown = set(e) - PLAN_KEYS if isinstance(e, dict) else {"(not a mapping)"}
        if unknown or "data" not in e:
            raise SystemExit(f"error: {path}: datasets[{i}] needs 'data' and takes only {sorted(PLAN_KEYS)}; got {sorted(unknown) or 'no data'}")
        o = {**defaults, **e}
        grids = parse_grid(GRIDS, [])
        for model_name, axes in (e.get("grid") or {}).items():
            grids.setdefault(model_name, {}).update({k: list(v) for k, v in axes.items()})
        out.append(_options(Path(o["data"]), o["ratios"], o["max_epochs"], o["patience"], o.get("eval_every"),
                            o["seed"], o["threads"], device, grids, o["w_min_grid"]))
    return out


def _options(data: Path, ratios, max_epochs: int, patience: int, eval_every, seed: int, threads: int, device: str,
             grids: dict, w_mins) -> DatasetOptions:
    training = {"epochs": max_epochs, "patience": patience, "seed": seed, "threads": threads, "device": device}
    if eval_every:
        training["eval_every"] = eval_every
    return DatasetOptions(data, tuple(float(p) for p in ratios), training, grids, [float(w) for w in w_mins])


def main(
    data: Annotated[Optional[list[Path]], typer.Option("--data", help="raw interaction log (repeat for several)")] = None,
    plan: Annotated[Optional[Path], typer.Option(help="YAML with a 'datasets' list: per raw log its data path and the options below that differ (max_epochs, patience, eval_every, ratios, w_min_grid, grid)")] = None,
    out: Annotated[Path, typer.Option(help="output stem: <out>-<dataset>.json per dataset, <out>.md and <out>-recall20.png over all")] = Path("bench/results/settings"),
    models: Annotated[str, typer.Option(help=f"comma-separated models, of {', '.join(MODELS)}; unregistered ones are skipped")] = ",".join(DEFAULT_MODELS),
    method: Annotated[str, typer.Option(help="split method: per_user or global")] = "per_user",
    ratios: Annotated[str, typer.Option(help="random-noise proportions")] = ",".join(map(str, RATIOS)),
    max_epochs: Annotated[int, typer.Option(help="epoch cap of every run")] = 100,
    patience: Annotated[int, typer.Option(help="early-stopping patience (epochs)")] = 10,
    seed: Annotated[int, typer.Option(help="split and training seed")] = 2023,
    threads: Annotated[int, typer.Option(help="torch CPU threads")] = 1,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "cpu",
    work_dir: Annotated[Optional[Path], typer.Option(help="scratch folder for the warehouse (default: a temporary one)")] = None,
    resume: Annotated[bool, typer.Option(help="keep the runs already in <out>-<dataset>.json made with the same options")] = True,
    eval_every: Annotated[Optional[int], typer.Option(help="validate every N epochs (default: each model's config)")] = None,
    w_min_grid: Annotated[str, typer.Option(help="T-variants: w_min values searched on the clean validation set")] = ",".join(map(str, W_MIN_GRID)),
    merge_from: Annotated[Optional[list[Path]], typer.Option("--merge-from", help="instead of running: fold the finished models of these <stem>-<dataset>.json files into <out>-<dataset>.json, then render")] = None,
    grid: Annotated[Optional[list[str]], typer.Option("--grid", help="replace one grid axis, e.g. --grid 'diffrec:model.params.diffusion.noise_scale=[0.01]'")] = None,
) -> None:
    """Every setting of every raw log, every model: grid on clean validation, then each setting; table and plot."""
    if merge_from:
        for path in merge_from:
            dataset = json.loads(path.read_text())["dataset"]
            merge([path], out.with_name(f"{out.name}-{dataset}.json"))
        render(out)
        print(out.with_suffix(".md").read_text())
        return
    if not data and not plan:
        raise SystemExit("error: give --data FILE (a raw log), --plan FILE or --merge-from FILE")
    torch.set_num_threads(threads)
    dev = select_device(device)
    registered = set(available())
    wanted = [m for m in models.split(",") if m]
    skipped = [m for m in wanted if m not in registered]
    wanted = [m for m in wanted if m in registered]
    # base models before their variants
    wanted.sort(key=lambda m: MODELS.index(m) if m in MODELS else 99)  # each variant after its base
    for m in wanted:
        if m in VARIANTS and VARIANTS[m][0] not in wanted:
            raise SystemExit(f"error: {m} needs its base model {VARIANTS[m][0]} in --models")
    cli_ratios, cli_w_mins = ratios.split(","), w_min_grid.split(",")
    datasets = [_options(d, cli_ratios, max_epochs, patience, eval_every, seed, threads, dev.type,
                         parse_grid(GRIDS, grid or []), cli_w_mins) for d in data or []]
    if plan:
        defaults = {"ratios": cli_ratios, "max_epochs": max_epochs, "patience": patience, "eval_every": eval_every,
                    "seed": seed, "threads": threads, "w_min_grid": cli_w_mins}
        datasets += plan_options(plan, defaults, dev.type)
    for o in datasets:
        if not o.data.is_file():
            raise SystemExit(f"error: {o.data}: no such raw log")
    scratch = tempfile.TemporaryDirectory() if work_dir is None else None
    root = Path(scratch.name) if scratch else work_dir
    root.mkdir(parents=True, exist_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    for o in datasets:
        run_dataset(o, out, wanted, skipped, method, seed, dev, root, resume)
    print(out.with_suffix(".md").read_text())
    if scratch:
        scratch.cleanup()


def run_dataset(o: DatasetOptions, out: Path, wanted: list[str], skipped: list[str], method: str, seed: int,
                dev: torch.device, root: Path, resume: bool) -> None:
    """One raw log: make its settings, search each model on clean validation, run every setting."""
    data_path, training, grids, w_mins = o.data, o.training, o.grids, o.w_mins
    options = {"method": method, "ratios": sorted(o.ratios), "training": training}
    t_start = time.perf_counter()
    wh_path = root / f"{data_path.parent.name}-{data_path.stem}.duckdb"
    if wh_path.exists():
        wh_path.unlink()
    dataset, settings, reports = prepare(data_path, wh_path, method, o.ratios, seed)
    json_path = out.with_name(f"{out.name}-{dataset}.json")
    entry: dict[str, Any] = {"dataset": dataset, **options, "grids": grids, "w_min_grid": w_mins,
                             "models": wanted, "skipped_models": skipped,
                             "splits": reports, "grid": {}, "chosen": {}, "runs": {}}
    if resume and json_path.exists():
        previous = json.loads(json_path.read_text())
        if _protocol(previous) == _protocol(options) and previous.get("splits", {}).get("clean") == reports["clean"]:
            # the grid is on the clean split; a setting's runs are kept while its split is the same
            # (so adding a noise ratio runs only the new setting)
            entry.update({k: previous[k] for k in ("grid", "chosen")})
            entry["runs"] = {s: r for s, r in previous["runs"].items() if previous["splits"].get(s) == reports.get(s)}
    with warehouse.connect(wh_path, read_only=True) as con:
        split_data = {s: load_split(con, dataset, s) for s in settings}
    clean_test = split_data["clean"].test
    side_data = _side_data_factory(dataset, training)

    def save() -> None:
        entry["device"] = torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu"
        json_path.write_text(json.dumps(entry, indent=2))
        render(out)

    chosen: dict[str, RunConfig] = {}
    fresh: set[int] = set()  # ids of the grid trials trained in this command
    for model in wanted:
        needs_side = bool(getattr(spec(model), "side", ()))
        done = {json.dumps(t["overrides"], sort_keys=True): t for t in entry["grid"].get(model, [])}
        trials = []
        for overrides, run in trials_for(model, dataset, chosen, training, grids, w_mins):
            key = json.dumps(overrides, sort_keys=True)
            # stored configs are re-validated first: options added since then read as their defaults
            if key in done and RunConfig.model_validate(done[key]["config"]).model_dump(mode="json") == run.model_dump(mode="json"):
                trials.append(done[key])
                continue
            r = train_and_test(run, "clean", split_data["clean"], clean_test, dev, side_data if needs_side else None)
            trials.append({"overrides": overrides, **r, "config": run.model_dump(mode="json")})
            fresh.add(id(trials[-1]))
            entry["grid"][model] = trials + [t for k, t in done.items() if k not in {json.dumps(x["overrides"], sort_keys=True) for x in trials}]
            save()
            print(json.dumps({"dataset": dataset, "model": model, "grid": overrides,
                              "valid_recall@20": round(r["valid"]["recall@20"], 4), "seconds": round(r["seconds"], 1)}), flush=True)
        entry["grid"][model] = trials
        best = max(range(len(trials)), key=lambda i: trials[i]["valid"]["recall@20"])
        chosen[model] = RunConfig.model_validate(trials[best]["config"])
        # Runs are stale when made from another choice, or from this choice with another config (a
        # changed grid or base model: then the chosen trial was trained afresh in this command).
        if entry["chosen"].get(model) != trials[best]["overrides"] or id(trials[best]) in fresh:
            for by_model in entry["runs"].values():
                by_model.pop(model, None)
        entry["chosen"][model] = trials[best]["overrides"]
        entry["runs"].setdefault("clean", {})[model] = {k: v for k, v in trials[best].items() if k not in ("config", "overrides")}
        save()
    # Then setting by setting, every model in each, so an interrupted command leaves whole settings.
    for setting in settings[1:]:
        for model in wanted:
            needs_side = bool(getattr(spec(model), "side", ()))
            if model in entry["runs"].get(setting, {}):
                continue
            r = train_and_test(chosen[model], setting, split_data[setting], clean_test, dev, side_data if needs_side else None)
            entry["runs"].setdefault(setting, {})[model] = r
            save()
            print(json.dumps({"dataset": dataset, "model": model, "setting": setting,
                              "test_recall@20": round(r["test"]["recall@20"], 4), "seconds": round(r["seconds"], 1)}), flush=True)
    print(f"{dataset}: done in {(time.perf_counter() - t_start) / 60:.0f} min", flush=True)


def _protocol(options: dict) -> dict:
    """What makes two runs comparable: split method and training options, but not where they ran
    (device, threads), so a command on a GPU machine extends the runs of a CPU one. Which settings
    exist is not part of it: runs are matched setting by setting through their split sizes."""
    training = {k: v for k, v in options.get("training", {}).items() if k not in ("device", "threads")}
    return {"method": options.get("method"), "training": training}


def merge(paths: list[Path], into: Path) -> None:
    """Fold the models of other <out>-<dataset>.json files (same dataset, protocol and splits; e.g. run
    on another machine) into ``into``: their grids, choices and runs are added model by model."""
    if not into.is_file():
        raise SystemExit(f"error: {into}: nothing to merge into (run the experiment there first)")
    entry = json.loads(into.read_text())
    for path in paths:
        other = json.loads(path.read_text())
        same = [s for s in other.get("splits", {}) if other["splits"][s] == entry["splits"].get(s)]
        if other.get("dataset") != entry["dataset"] or _protocol(other) != _protocol(entry) or "clean" not in same:
            raise SystemExit(f"error: {path}: dataset, options or clean split differ from {into}")
        for model in other["models"]:
            if model not in other["chosen"]:
                continue  # not finished there
            if model not in entry["models"]:
                entry["models"].append(model)
            device = other.get("device", "cpu")
            entry["grid"][model] = [{**t, "device": t.get("device", device)} for t in other["grid"][model]]
            entry["chosen"][model] = other["chosen"][model]
            for setting, by_model in other["runs"].items():
                if model in by_model and setting in same:
                    entry["runs"].setdefault(setting, {})[model] = {**by_model[model], "device": by_model[model].get("device", device)}
    entry["models"].sort(key=lambda m: MODELS.index(m) if m in MODELS else 99)
    into.write_text(json.dumps(entry, indent=2))


def render(out: Path) -> None:
    """<out>.md and <out>-recall20.png from every <out>-<dataset>.json beside them."""
    results = {}
    for path in sorted(out.parent.glob(f"{out.name}-*.json")):
        entry = json.loads(path.read_text())
        if "runs" in entry and "dataset" in entry:
            results[entry["dataset"]] = entry
    if results:
        out.with_suffix(".md").write_text(markdown(results))
        plot(results, out.with_name(out.name + "-recall20.png"))


def _side_data_factory(dataset: str, training: dict):
    """Item clusters for models that take them (L-variants): seeded k-means over the item vectors
    of a LightGCN trained on the same setting's train split (one per setting, cached)."""
    cache: dict[tuple, dict] = {}
    vectors: dict[str, Any] = {}

    def side_data(run: RunConfig, setting: str, data: SplitData) -> dict:
        from diffrec_core import clustering, embeddings

        clusters = validate_params(run.model).clusters
        key = (setting, clusters.n_clusters, clusters.seed, clusters.vectors)
        if key not in cache:
            if setting not in vectors:
                emb_run = apply_overrides(embeddings.embedding_config(dataset, clusters.embedding_config),
                                          {f"training.{k}": v for k, v in training.items()})
                vectors[setting], _ = clustering.train_item_embeddings(data.train, data.valid, emb_run)
            cache[key] = {"item_clusters": clustering.kmeans(vectors[setting], clusters.n_clusters, clusters.seed,
                                                             vectors=clusters.vectors)}
        return cache[key]

    return side_data


def markdown(results: dict) -> str:
    first = next(iter(results.values()))
    lines = [
        f"### Training settings from raw logs ({first['method']} chronological 7:1:2 split)",
        "",
        "Test = the clean test set for every setting (the setting's own train+valid items masked); one seed "
        f"({first['training']['seed']}); each model's hyperparameters chosen on the clean validation set "
        "(grids below), then trained on every setting. Noise rows go to train and valid only.",
        "",
    ]
    for dataset, entry in results.items():
        t = entry["training"]
        grids = "; ".join(f"{m}: " + ", ".join(f"{k.split('.')[-1]} {v}" for k, v in axes.items())
                          for m, axes in entry.get("grids", {}).items() if m in entry["models"] and axes)
        lines += [f"#### {dataset}", "",
                  f"At most {t['epochs']} epochs, early stopping after {t['patience']} epochs without a better validation "
                  f"Recall@20{', validation every ' + str(t['eval_every']) + ' epochs' if t.get('eval_every') else ''}. "
                  f"Grids: {grids or 'none'}; T-variants: w_min {entry.get('w_min_grid')} on their base model's choice.", "",
                  "| setting | model | Recall@10 | Recall@20 | NDCG@10 | NDCG@20 | valid R@20 | chosen on clean valid |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        order = ["clean", *(f"noisy-random-{p:g}" for p in sorted(entry["ratios"])), "noisy-natural"]
        for setting in [s for s in order if s in entry["splits"]]:
            for model in entry["models"]:
                r = entry["runs"].get(setting, {}).get(model)
                if r is None:
                    continue
                chosen = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in entry["chosen"].get(model, {}).items())
                lines.append(f"| {setting} | {model} | " + " | ".join(f"{r['test'][m]:.4f}" for m in METRICS)
                             + f" | {r['valid']['recall@20']:.4f} | {chosen} |")
        missing = [f"{m} on {s}" for s in order if s in entry["splits"] for m in entry["models"]
                   if m not in entry["runs"].get(s, {})]
        sizes = "; ".join(f"{s}: {entry['splits'][s]['train']}/{entry['splits'][s]['valid']}/{entry['splits'][s]['test']}"
                          for s in order if s in entry["splits"])
        test_users = next((r["test_users"] for r in entry["runs"].get("clean", {}).values()), None)
        lines += ["", f"train/valid/test rows: {sizes}; {test_users} test users."]
        if missing:
            lines.append(f"Not measured (the command was stopped for CPU time; it resumes): {', '.join(missing)}.")
        lines += [_training_time(entry), ""]
    return "\n".join(lines) + "\n"


def _training_time(entry: dict) -> str:
    """Minutes of training per device: every grid trial plus every run outside the clean setting
    (the clean run is the chosen grid trial)."""
    default = "cpu"  # runs before devices were recorded per run all ran on the CPU
    minutes: dict[str, float] = {}
    timed = [t for trials in entry["grid"].values() for t in trials]
    timed += [r for setting, by_model in entry["runs"].items() if setting != "clean" for r in by_model.values()]
    for r in timed:
        device = r.get("device", default)
        minutes[device] = minutes.get(device, 0.0) + r.get("seconds", 0.0) / 60
    where = {"cpu": f"the shared 2-core CPU machine ({entry['training']['threads']} thread(s) per run)"}
    return "Training time: " + "; ".join(f"{m:.0f} min on {where.get(d, d)}" for d, m in minutes.items()) + "."


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 3.8), squeeze=False)
    for ax, (dataset, entry) in zip(axes[0], results.items()):
        xs = [0.0, *entry["ratios"]]
        settings = ["clean", *(f"noisy-random-{p:g}" for p in entry["ratios"])]
        for model in entry["models"]:
            points = [(x, entry["runs"].get(s, {}).get(model, {}).get("test", {}).get("recall@20")) for x, s in zip(xs, settings)]
            points = sorted((x, y) for x, y in points if y is not None)
            if points:
                ax.plot(*zip(*points), marker="o", label=model)
        ax.set_title(dataset)
        ax.set_xlim(-0.03, max(xs) + 0.03)
        ax.set_xlabel("random noise proportion (0 = clean)")
        ax.set_ylabel("test Recall@20")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    from flows.cli import cli_errors  # a bad input: one line "error: …", exit 1

    typer.run(cli_errors(main))
