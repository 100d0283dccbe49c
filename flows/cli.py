"""The ``diffrec`` command line: ad-hoc runs of each step, or the whole pipeline."""

from __future__ import annotations

import os
import re
import sys
from functools import wraps
from pathlib import Path
from typing import Annotated, Optional

import typer

import flows  # noqa: F401  (environment defaults)

app = typer.Typer(
    help="DiffRec batch recommender: ingest interaction logs, split them, train diffusion recommenders "
    "and publish top-K recommendations to a DuckDB warehouse.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
recs_app = typer.Typer(help="Read published recommendations.", no_args_is_help=True)
app.add_typer(recs_app, name="recs")
report_app = typer.Typer(help="Reports over recorded model runs.", no_args_is_help=True)
app.add_typer(report_app, name="report")
quality_app = typer.Typer(help="Data-quality suites (Great Expectations) over the warehouse.", no_args_is_help=True)
app.add_typer(quality_app, name="quality")

Warehouse = Annotated[Path, typer.Option("--warehouse", "-w", help="DuckDB warehouse file (ingest, pipeline and nightly create it).")]
Dataset = Annotated[Optional[str], typer.Option("--dataset", "-d", help="Dataset name in the warehouse (default: 'builtin', or derived from the input file).")]
Setting = Annotated[str, typer.Option("--setting", help="Split setting: clean, noisy-natural, noisy-random (stored as noisy-random-P; P = 0.1 unless --noise-ratio says, or name noisy-random-P), temporal, or any other name for a clean split.")]
NoiseRatio = Annotated[Optional[float], typer.Option("--noise-ratio", help="noisy-random: items added per user as a share of their train/valid count; noisy-natural: the cap on added low-rated interactions (default 0.1).")]
WMin = Annotated[Optional[float], typer.Option("--w-min", help="Time-weight the model input (T-variants): weight of each user's oldest train interaction, rising to 1 for the newest (default 0.1 for tdiffrec/ltdiffrec).")]
Artifacts = Annotated[Path, typer.Option("--artifacts", help="Folder for model checkpoints.")]
Device = Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")]
Model = Annotated[Optional[str], typer.Option("--model", "-m", help="Registered model name, e.g. diffrec, tdiffrec, ldiffrec, ltdiffrec, mf, ease (default: the --config file's, else diffrec).")]
Users = Annotated[Optional[int], typer.Option(help="Built-in data: number of users (default 3,000).")]
Items = Annotated[Optional[int], typer.Option(help="Built-in data: number of items (default 1,500).")]
Interactions = Annotated[Optional[int], typer.Option(help="Built-in data: number of interactions (default 150,000).")]
DataSeed = Annotated[Optional[int], typer.Option(help="Built-in data: random seed (default 0, the pipeline's).")]
DEFAULT_WAREHOUSE = Path("warehouse.duckdb")
DEFAULT_ARTIFACTS = Path("artifacts")
BUILTIN = "builtin"


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


@app.callback()
def _on_every_command(ctx: typer.Context) -> None:
    """SIGTERM (a scheduler's or container's stop) ends a command as Ctrl-C does: a training run in
    progress is marked failed and connections close, instead of the process dying mid-write."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    stopped = []

    def stop(signum, frame):
        signal.signal(signum, signal.SIG_DFL)  # a second SIGTERM ends the process at once
        stopped.append(signum)  # said on close, once progress bars have closed their lines
        raise SystemExit(128 + signum)

    def close():
        signal.signal(signal.SIGTERM, previous)
        if stopped:
            typer.echo("error: stopped by SIGTERM", err=True)

    previous = signal.signal(signal.SIGTERM, stop)
    ctx.call_on_close(close)


def cli_errors(fn):
    """Turn expected failures into a one-line error and exit code 1."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        import duckdb

        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except (ValueError, OSError, duckdb.Error) as exc:  # OSError: missing, unwritable, a file where a folder goes, …
            from pydantic import ValidationError

            from diffrec_core.config import _first_error

            if isinstance(exc, ValidationError):  # its first line names only the model: say which field and value
                _fail(f"{exc.title} {_first_error(exc)}")
            _fail(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)

    return wrapper


def dataset_name(dataset: str | None, source: Path | None) -> str:
    """An explicit name, 'builtin' without input, else the file's name (its folder's for generic names)."""
    if dataset:
        return dataset
    if source is None:
        return BUILTIN
    generic = {"ratings", "u", "data", "interactions", "train", "ratings_small"}
    if source.is_dir():  # a landing folder (or a folder of split files): its own name
        base = source.resolve().name
    else:
        base = source.parent.name if source.stem.lower() in generic and source.parent.name else source.stem
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", base) or "dataset"


def _columns(column: list[str] | None) -> dict[str, str] | None:
    if not column:
        return None
    out = {}
    for spec in column:
        role, sep, name = spec.partition("=")
        if not sep or role not in {"user", "item", "rating", "timestamp"} or not (name or role == "rating"):
            raise ValueError(f"--column must be ROLE=NAME with ROLE in user/item/rating/timestamp (rating= for none), got {spec!r}")
        out[role] = name or None  # rating= : implicit feedback, even beside a column named rating
    return out


def _synthetic(users: int | None, items: int | None, interactions: int | None, seed: int | None):
    """The built-in data's config: options given on the command line over SyntheticConfig's defaults (the pipeline's)."""
    from diffrec_core.ingest.synthetic import SyntheticConfig

    given = {"n_users": users, "n_items": items, "n_interactions": interactions, "seed": seed}
    return SyntheticConfig(**{k: v for k, v in given.items() if v is not None})


def _ingest_line(r) -> str:
    if r.skipped:
        return f"skipped {r.source}: the same content is already ingested for dataset {r.dataset!r} (batch {r.batch_id})"
    return (f"ingested {r.source} as dataset {r.dataset!r} (format {r.format}, batch {r.batch_id}): "
            f"{r.rows_loaded} rows loaded, {r.rows_rejected} rejected of {r.rows_read} read")


def _split_line(r) -> str:
    return (f"split {r.dataset!r}/{r.setting} ({r.method}): train {r.train_rows}, valid {r.valid_rows}, test {r.test_rows} rows; "
            f"kept out of evaluation: {r.valid_rows_excluded + r.test_rows_excluded} rows, "
            f"{r.users_excluded} users and {r.items_excluded} items that appear only after training")


# ----------------------------------------------------------------------------- steps


@app.command()
@cli_errors
def ingest(
    source: Annotated[Optional[Path], typer.Argument(help="Raw interaction file. Omit to load the built-in synthetic data.")] = None,
    dataset: Dataset = None,
    fmt: Annotated[Optional[str], typer.Option("--format", "-f", help="ml-1m, ml-100k, ml-latest, csv, parquet (default: detected), or diffrec-splits for a folder of the paper authors' train/valid/test_list.npy.")] = None,
    setting: Annotated[str, typer.Option("--setting", help="diffrec-splits: the split setting the files become.")] = "clean",
    column: Annotated[Optional[list[str]], typer.Option("--column", "-c", help="Column mapping for csv/parquet, e.g. -c user=uid -c timestamp=time.")] = None,
    users: Users = None,
    items: Items = None,
    interactions: Interactions = None,
    seed: DataSeed = None,
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
) -> None:
    """Load a raw interaction log (or the built-in data) into the warehouse; re-ingesting a file changes nothing."""
    from diffrec_core import ingest as core_ingest
    from diffrec_core import warehouse as wh

    name = dataset_name(dataset, source)
    with wh.connect(warehouse) as con:
        if fmt == "diffrec-splits":
            if source is None:
                raise ValueError("--format diffrec-splits needs a folder with train_list.npy, valid_list.npy, test_list.npy")
            from diffrec_core.ingest.presplit import ingest_presplit

            result = ingest_presplit(con, source, name, setting)
        elif source is None:
            result = core_ingest.ingest_synthetic(con, name, _synthetic(users, items, interactions, seed))
        else:
            result = core_ingest.ingest_file(con, source, name, fmt=fmt, columns=_columns(column))
    typer.echo(_ingest_line(result))


@app.command("remove-batch")
@cli_errors
def remove_batch(
    batch_id: Annotated[int, typer.Argument(help="The ingest batch (one file) to take out: ingest_batches.batch_id.")],
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
) -> None:
    """Take one ingested file out of the warehouse (its raw and rejected rows); the next split restages without it."""
    from diffrec_core import ingest as core_ingest
    from diffrec_core import warehouse as wh

    with wh.connect(warehouse, create=False) as con:
        result = core_ingest.remove_batch(con, batch_id)
    typer.echo(f"removed batch {result.batch_id} of dataset {result.dataset!r} ({result.source}, {result.rows_loaded} rows); "
               f"the next split restages the dataset without it (its last batch takes the staged rows and splits along)")


@app.command()
@cli_errors
def split(
    dataset: Dataset = None,
    setting: Setting = "clean",
    method: Annotated[str, typer.Option(help="global (one chronological cut) or per_user.")] = "global",
    min_rating: Annotated[float, typer.Option(help="Keep interactions rated at least this (implicit data keeps all).")] = 4.0,
    noise_ratio: NoiseRatio = None,
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
) -> None:
    """Stage the dataset (dense ids, duplicates resolved) and make its chronological 7:1:2 split."""
    from diffrec_core import splits
    from diffrec_core import warehouse as wh

    name = dataset_name(dataset, None)
    config = _split_config(setting, noise_ratio, method, min_rating)
    with wh.connect(warehouse, create=False) as con:
        staged, report = splits.stage_and_split(con, name, config)
    typer.echo(_split_line(report))
    if stale := [s for s in staged.splits_dropped if s != report.setting]:
        typer.echo(f"note: the new data moved dataset {name!r}'s ids, so its other splits were dropped: "
                   f"{', '.join(stale)}; split them again")


def _split_config(setting: str, noise_ratio: float | None, method: str, min_rating: float = 4.0):
    from diffrec_core import splits

    if setting in splits.SETTINGS:
        return splits.setting_config(setting, noise_ratio, method=method, min_rating=min_rating)
    if noise_ratio is not None and not setting.startswith("noisy-"):
        raise ValueError(f"--noise-ratio applies to --setting noisy-natural or noisy-random, not {setting!r}")
    extra = {} if noise_ratio is None else {"noise_ratio": noise_ratio}  # a noisy-random-P name must agree with it
    return splits.SplitConfig(setting=setting, method=method, min_rating=min_rating, **extra)


def _check_artifacts(path: Path) -> None:
    from diffrec_core.paths import output_folder

    output_folder(path, "artifacts folder", create=False)  # created by the training step, so a refused command leaves none


def _run_config(dataset: str, model: str | None, config: Path | None, epochs: int | None, seed: int | None, device: str | None,
                w_min: float | None = None):
    """The run config of ``--config`` (its model must be ``--model`` when both are given), else the
    shipped one for ``--model`` (default diffrec), with the command's overrides."""
    from diffrec_core.config import RunConfig, _first_error, with_training
    from diffrec_core.models.registry import resolve_run, time_weights_for

    run = resolve_run(dataset, model or "diffrec", config)
    if config is not None and model is not None and run.model.name != model:
        raise ValueError(f"--model {model!r}: {config} trains model.name {run.model.name!r} (give --model or --config, or make them agree)")
    run = with_training(run, epochs=epochs, seed=seed, device=device)
    if w_min is not None:
        current = time_weights_for(run)
        weights = {**(current.model_dump() if current else {}), "w_min": w_min}
        try:
            run = RunConfig.model_validate({**run.model_dump(mode="json"), "time_weights": weights})
        except ValueError as exc:
            raise ValueError(f"--w-min {w_min}: {_first_error(exc)}") from None
    return run


@app.command()
@cli_errors
def train(
    dataset: Dataset = None,
    setting: Setting = "clean",
    model: Model = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="YAML/JSON run config (default: the shipped one for the dataset).")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Override the maximum number of epochs.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Override the training seed.")] = None,
    w_min: WMin = None,
    device: Device = "auto",
    artifacts: Artifacts = DEFAULT_ARTIFACTS,
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
) -> None:
    """Train a model on a split with early stopping on validation Recall@20; prints the run id.

    Data-parallel on several GPUs (or CPU processes): torchrun --nproc-per-node N $(which diffrec) train …
    """
    from diffrec_core import distributed, runs

    name = dataset_name(dataset, None)
    run = _run_config(name, model, config, epochs, seed, device, w_min)
    distributed.init_from_env()
    run_id = runs.train_run(warehouse, name, _split_config(setting, None, "global").setting, run, artifacts,
                            progress=distributed.is_primary())
    if run_id is not None:  # None on a torchrun rank other than 0: rank 0 records and reports
        with _ro(warehouse) as con:
            info = runs.get_run(con, run_id)
        v = info.metrics.get("valid", {})
        typer.echo(f"run {run_id}: best epoch {info.metrics.get('best_epoch')}, valid Recall@20 {v.get('recall@20', float('nan')):.4f} NDCG@20 {v.get('ndcg@20', float('nan')):.4f}")
    distributed.finish()


def _ro(warehouse: Path):
    from diffrec_core import warehouse as wh

    return wh.connect(warehouse, read_only=True)


def _latest_run(warehouse: Path, dataset: str) -> str:
    from diffrec_core import warehouse as wh

    with _ro(warehouse) as con:
        row = wh.run_sql(con, "outputs/latest_run", dataset=dataset).fetchone()
    if row is None:
        raise ValueError(f"no trained model run for dataset {dataset!r} in {warehouse} (a rejected run is used only when named)")
    return row[0]


def _run_for(warehouse: Path, run_id: str | None, dataset: str | None) -> str:
    """RUN_ID (which must be of --dataset when both are given), else the dataset's newest run."""
    from diffrec_core.runs import get_run

    name = dataset_name(dataset, None)
    if run_id is None:
        return _latest_run(warehouse, name)
    if dataset is not None:
        with _ro(warehouse) as con:
            info = get_run(con, run_id)
        if info.dataset != name:
            raise ValueError(f"run {run_id!r} is of dataset {info.dataset!r}, not --dataset {name!r}")
    return run_id


def _metric_line(metrics: dict) -> str:
    t = metrics.get("test", {})
    v = metrics.get("valid", {})
    return (f"test Recall@20 {t.get('recall@20', float('nan')):.4f}  NDCG@20 {t.get('ndcg@20', float('nan')):.4f}  "
            f"Recall@10 {t.get('recall@10', float('nan')):.4f}  NDCG@10 {t.get('ndcg@10', float('nan')):.4f}  "
            f"(valid Recall@20 {v.get('recall@20', float('nan')):.4f}; {t.get('users', 0)} test users)")


@app.command()
@cli_errors
def evaluate(
    run_id: Annotated[Optional[str], typer.Argument(help="Model run id (default: the dataset's newest run).")] = None,
    dataset: Dataset = None,
    device: Device = "auto",
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
) -> None:
    """Validation and test Recall/NDCG@10/20 of a run (the paper's protocol)."""
    from diffrec_core import runs

    run_id = _run_for(warehouse, run_id, dataset)
    typer.echo(f"run {run_id}: " + _metric_line(runs.evaluate_run(warehouse, run_id, device)))


def _recommend_history(path: Path, run_id: str | None, dataset: str, k: int, device: str, warehouse: Path) -> None:
    from diffrec_core import coldstart

    if not warehouse.exists():
        raise FileNotFoundError(f"{warehouse}: no such warehouse (run 'diffrec pipeline' first)")
    result = coldstart.score_history(warehouse, dataset, coldstart.read_history_file(path), k=k, run_id=run_id, device=device)
    if result.unknown:
        shown = ", ".join(result.unknown[:10]) + (" ..." if len(result.unknown) > 10 else "")
        typer.echo(f"ignored {len(result.unknown)} unknown item keys: {shown}", err=True)
    typer.echo(f"new user from {path} ({len(result.known)} known items; dataset {result.dataset}, run {result.run_id}):")
    for rank, item, score in result.recommendations.itertuples(index=False):
        typer.echo(f"{rank:>3}  {item:<24} {score:.4f}")


@app.command()
@cli_errors
def recommend(
    run_id: Annotated[Optional[str], typer.Argument(help="Model run id (default: the dataset's newest run).")] = None,
    dataset: Dataset = None,
    k: Annotated[int, typer.Option("--k", "-k", help="Recommendations per user.")] = 20,
    publish: Annotated[bool, typer.Option(help="Publish to latest_recommendations when done.")] = True,
    device: Device = "auto",
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
    history: Annotated[Optional[Path], typer.Option("--history", help="Score one new user from this file of item keys (one per line, or a JSON list) with the published model (or RUN_ID); nothing is written.")] = None,
) -> None:
    """Top-K unseen items for every user from their full history; publish atomically.

    With --history FILE: top-K for a user absent from training, from the item keys in FILE,
    without retraining; unknown item keys are reported and ignored.
    """
    from diffrec_core import runs
    from diffrec_core.config import InferenceConfig

    if history is not None:
        _recommend_history(history, run_id, dataset_name(dataset, None), k, device, warehouse)
        return
    run_id = _run_for(warehouse, run_id, dataset)
    n = runs.recommend_run(warehouse, run_id, InferenceConfig(k=k), device)
    if publish:
        runs.publish_run(warehouse, run_id)
    typer.echo(f"run {run_id}: {n} recommendations written{' and published' if publish else ''} to {warehouse}")


@app.command()
@cli_errors
def pipeline(
    input: Annotated[Optional[Path], typer.Option("--input", "-i", help="Raw interaction file (default: the built-in synthetic data).")] = None,
    fmt: Annotated[Optional[str], typer.Option("--format", "-f", help="Reader for --input (default: detected).")] = None,
    column: Annotated[Optional[list[str]], typer.Option("--column", "-c", help="Column mapping for csv/parquet, e.g. -c user=uid.")] = None,
    dataset: Dataset = None,
    setting: Setting = "clean",
    noise_ratio: NoiseRatio = None,
    method: Annotated[str, typer.Option(help="Split method: global or per_user.")] = "global",
    model: Model = None,
    w_min: WMin = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="YAML/JSON run config.")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Override the maximum number of epochs.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Override the training seed.")] = None,
    k: Annotated[int, typer.Option("--k", "-k", help="Recommendations per user.")] = 20,
    device: Device = "auto",
    artifacts: Artifacts = DEFAULT_ARTIFACTS,
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Prefect's task logs.")] = False,
    quality: Annotated[bool, typer.Option("--quality/--no-quality", help="Run the data-quality gates (raw, splits, recommendations).")] = True,
    rating_range: Annotated[Optional[tuple[float, float]], typer.Option("--rating-range", help="Declared rating scale LOW HIGH checked on raw data (default 0.5 5).")] = None,
) -> None:
    """Run ingest → split → train → evaluate → recommend → publish as a Prefect flow (no server needed).

    Quality gates run after ingest, after the split and before publishing; a failed one stops the
    flow, keeps the published recommendations and exits 1 naming the expectation and an offending row.
    """
    if input is not None and not input.exists():
        raise ValueError(f"{input}: no such file")
    # Without --verbose a failed task (e.g. a quality gate) is reported once, by the one-line error below,
    # not also as Prefect's task and flow tracebacks.
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO" if verbose else "CRITICAL")
    if quality:
        from diffrec_core.quality import prewarm

        prewarm()  # the gates' worker loads Great Expectations while Prefect and torch load here
    from diffrec_core.config import InferenceConfig
    from flows.pipeline import PipelineParams, pipeline as run_pipeline

    name = dataset_name(dataset, input)
    _check_artifacts(artifacts)  # before any step runs
    params = PipelineParams(
        warehouse=str(warehouse), artifacts_dir=str(artifacts), dataset=name,
        input=str(input) if input else None, format=fmt, columns=_columns(column),
        split=_split_config(setting, noise_ratio, method),
        run=_run_config(name, model, config, epochs, seed, device, w_min),
        inference=InferenceConfig(k=k),
        quality=_quality_config(quality, rating_range),
    )
    typer.echo(f"pipeline: dataset {name!r} ({'built-in data' if input is None else input}), model {params.run.model.name}, warehouse {warehouse}", err=True)
    result = run_pipeline(params)
    if result.quality:
        typer.echo(f"quality: {len(result.quality)} gates passed ({', '.join(c['suite'] for c in result.quality)}) "
                   f"in {sum(c['seconds'] for c in result.quality):.1f} s", err=True)
    typer.echo(f"recommendations: {result.recommendations} rows (top {k} per user) in {warehouse}, "
               f"view latest_recommendations, dataset {name!r}, run {result.run_id}")
    typer.echo(_metric_line(result.metrics))


@app.command()
@cli_errors
def search(
    grid: Annotated[Path, typer.Option("--grid", "-g", help="Grid YAML: model, optional base, and dotted paths to value lists.")],
    dataset: Dataset = None,
    setting: Setting = "clean",
    sample: Annotated[Optional[int], typer.Option(help="Run a seeded random subset of this many trials.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random subset.")] = 0,
    artifacts: Artifacts = DEFAULT_ARTIFACTS,
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Prefect's task logs.")] = False,
) -> None:
    """Hyperparameter search as a Prefect flow: each trial a task recorded in model_runs, finished trials skipped, best chosen on validation Recall@20."""
    from diffrec_core.search import load_grid

    name = dataset_name(dataset, None)
    load_grid(grid, name)  # refuse a bad grid or artifacts folder before Prefect starts
    _check_artifacts(artifacts)
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO" if verbose else "CRITICAL")
    from flows.hpo import HpoParams, hpo

    result = hpo(HpoParams(warehouse=str(warehouse), artifacts_dir=str(artifacts), dataset=name,
                           setting=_split_config(setting, None, "global").setting,
                           grid=str(grid), sample=sample, seed=seed))
    failed = f", {len(result.failures)} failed (first: {result.failures[0]})" if result.failures else ""
    typer.echo(f"search: {result.trials_run} trials run{failed}; best run {result.best_run_id}")
    typer.echo(_metric_line(result.metrics))


def _quality_config(enabled: bool = True, rating_range: tuple[float, float] | None = None):
    from diffrec_core.quality import QualityConfig

    return QualityConfig(enabled=enabled, **({"rating_range": rating_range} if rating_range else {}))


@quality_app.command("report")
@cli_errors
def quality_report(
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for summary.html and the Data Docs.")] = Path("reports/quality"),
    rating_range: Annotated[Optional[tuple[float, float]], typer.Option("--rating-range", help="Declared rating scale LOW HIGH (default 0.5 5).")] = None,
) -> None:
    """Run every suite on everything in the warehouse; write Data Docs and a self-contained summary.html."""
    from diffrec_core import quality

    if not warehouse.exists():
        raise FileNotFoundError(f"{warehouse}: no such warehouse (run 'diffrec pipeline' first)")
    report = quality.build_report(warehouse, out, _quality_config(True, rating_range))
    failed = [r for r in report.results if not r.success]
    typer.echo(f"quality report: {len(report.results) - len(failed)} of {len(report.results)} suite runs passed"
               + (f"; not run: {', '.join(report.not_run)}" if report.not_run else ""))
    for r in failed:
        typer.echo(f"  {r.message()}")
    typer.echo(f"summary: {report.summary}")
    if report.data_docs:
        typer.echo(f"data docs: {report.data_docs}")


@app.command()
@cli_errors
def nightly(
    landing: Annotated[Optional[Path], typer.Option("--landing", "-l", help="Folder of raw files; new ones are ingested (default: the built-in data).")] = None,
    fmt: Annotated[Optional[str], typer.Option("--format", "-f", help="Reader for the landing files (default: detected per file).")] = None,
    column: Annotated[Optional[list[str]], typer.Option("--column", "-c", help="Column mapping for csv/parquet, e.g. -c user=uid.")] = None,
    settle_seconds: Annotated[float, typer.Option("--settle-seconds", help="Landing files modified more recently are left for the next run (they may still be being written).")] = 60.0,
    dataset: Annotated[Optional[str], typer.Option("--dataset", "-d", help="Dataset name in the warehouse (default: 'builtin', or the landing folder's name).")] = None,
    setting: Setting = "clean",
    noise_ratio: NoiseRatio = None,
    model: Model = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="YAML/JSON run config.")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Override the maximum number of epochs.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Override the training seed.")] = None,
    users: Users = None,
    items: Items = None,
    interactions: Interactions = None,
    data_seed: Annotated[Optional[int], typer.Option("--data-seed", help="Built-in data: random seed (default 0, the pipeline's).")] = None,
    max_age_hours: Annotated[float, typer.Option("--max-age-hours", help="Reuse a model trained on the same data fingerprint this recently (0: always train).")] = 168.0,
    gate_tolerance: Annotated[float, typer.Option("--gate-tolerance", help="Largest drop in validation Recall@20 below the published model still promoted.")] = 0.01,
    k: Annotated[int, typer.Option("--k", "-k", help="Recommendations per user.")] = 20,
    shards: Annotated[int, typer.Option("--shards", help="User ranges scored as separate tasks.")] = 1,
    task_runner: Annotated[str, typer.Option("--task-runner", help="Runner for the shards: thread or dask.")] = "thread",
    dask_address: Annotated[Optional[str], typer.Option("--dask-address", help="Scheduler of an existing Dask cluster (default: a local one).")] = None,
    dask_workers: Annotated[int, typer.Option("--dask-workers", help="Workers of the local Dask cluster.")] = 2,
    dask_processes: Annotated[bool, typer.Option("--dask-processes/--dask-threads", help="Local Dask workers as processes or threads.")] = False,
    device: Device = "auto",
    artifacts: Artifacts = DEFAULT_ARTIFACTS,
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Prefect's task logs.")] = False,
) -> None:
    """One nightly run: new files → split → train or reuse → evaluate → regression gate → sharded inference → publish."""
    if landing is not None and not landing.is_dir():
        raise ValueError(f"{landing}: no such folder")
    if task_runner not in {"thread", "dask"}:
        raise ValueError(f"--task-runner must be thread or dask, got {task_runner!r}")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO" if verbose else "CRITICAL")
    from diffrec_core.config import InferenceConfig
    from flows.nightly import NightlyParams, nightly as run_nightly

    name = dataset_name(dataset, landing)
    _check_artifacts(artifacts)  # before any step runs
    if landing is not None and not warehouse.exists():  # nothing to run on: told at once, not after Prefect has started
        from diffrec_core.nightly import landing_files

        landing_files(landing, settle_seconds=settle_seconds, warehouse_path=warehouse)
    run = _run_config(name, model, config, epochs, seed, device)
    params = NightlyParams(
        warehouse=str(warehouse), artifacts_dir=str(artifacts), shard_dir=str(artifacts / "shards"), dataset=name,
        landing=str(landing) if landing else None, settle_seconds=settle_seconds, format=fmt, columns=_columns(column),
        synthetic=_synthetic(users, items, interactions, data_seed),
        split=_split_config(setting, noise_ratio, "global"), model=run.model.name, run=run,
        max_model_age_hours=max_age_hours, gate_tolerance=gate_tolerance, inference=InferenceConfig(k=k),
        shards=shards, task_runner=task_runner, dask_address=dask_address, dask_workers=dask_workers,
        dask_processes=dask_processes,
    )
    result = run_nightly(params)
    how = "reused" if result.reused else "trained"
    if result.promoted:
        typer.echo(f"nightly {name!r}: model {result.run_id} ({how}) published; {result.recommendations} recommendations written"
                   + ("" if result.recommendations else " (already up to date)"))
    else:
        typer.echo(f"nightly {name!r}: model {result.run_id} ({how}) NOT promoted: {result.gate['reason']}; "
                   f"{result.published_run} keeps serving")
    typer.echo(_metric_line(result.metrics))


@recs_app.command("show")
@cli_errors
def recs_show(
    user: Annotated[str, typer.Option("--user", "-u", help="The user's original key.")],
    dataset: Dataset = None,
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
) -> None:
    """Print one user's published recommendations."""
    from diffrec_core import warehouse as wh

    name = dataset_name(dataset, None)
    with _ro(warehouse) as con:
        rows = wh.run_sql(con, "outputs/user_recommendations", dataset=name, user_key=user).fetchall()
    if not rows:
        raise ValueError(f"no published recommendations for user {user!r} in dataset {name!r}")
    typer.echo(f"user {user} (dataset {name}, run {rows[0][3]}):")
    for rank, item, score, _ in rows:
        typer.echo(f"{rank:>3}  {item:<24} {score:.4f}")


@report_app.command("compare")
@cli_errors
def report_compare(
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="Dataset whose evaluated runs are compared.")],
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
    out: Annotated[Path, typer.Option("--out", help="Folder for compare-<dataset>.md and .png.")] = Path("reports"),
    from_bench: Annotated[Optional[Path], typer.Option("--from-bench", help="Also read bench/accuracy.py results (*.json) from this folder.")] = None,
    setting: Annotated[Optional[str], typer.Option("--setting", help="Only runs of this split setting.")] = None,
):
    """Models side by side (test Recall/NDCG@10/20, parameters, peak memory, training time): a markdown table and a PNG chart."""
    from diffrec_core.report import compare

    use_warehouse = warehouse.exists() or from_bench is None
    md, png, rows = compare(dataset, out, warehouse_path=warehouse if use_warehouse else None, bench_dir=from_bench, setting=setting)
    typer.echo(f"{len(rows)} models compared: {md} and {png}")


def main() -> None:
    """The ``diffrec`` command: ``app``, with a usage error (an unknown option, a missing or ill-typed value) also
    as one ``error:`` line and exit status 2, instead of click's usage panel."""
    from typer._click.exceptions import NoArgsIsHelpError  # typer (pinned) carries its own click

    try:
        code = app(standalone_mode=False, prog_name="diffrec")
    except NoArgsIsHelpError as exc:  # a bare group: its help, as click shows it
        exc.show()
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # click's ClickException: usage errors
        ctx = getattr(exc, "ctx", None)
        typer.echo(f"error: {exc.format_message()}" + (f" (see '{ctx.command_path} --help')" if ctx else ""), err=True)
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
