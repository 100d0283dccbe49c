"""The nightly flow: new landing files → validate raw → stage/split → validate splits → train or reuse →
evaluate → regression gate → sharded batch inference → validate outputs → publish → report.
Deployed on a schedule from deploy/prefect.yaml. A failed quality gate stops the flow and leaves the
published recommendations untouched."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveInt

import flows  # noqa: F401  (environment defaults before Prefect starts)
from prefect import flow, unmapped

from diffrec_core.config import InferenceConfig, RunConfig
from diffrec_core.ingest.synthetic import SyntheticConfig
from diffrec_core.nightly import DEFAULT_LANDING_PATTERNS
from diffrec_core.quality import QualityConfig
from diffrec_core.splits import SplitConfig
from flows.lvariants import embed_and_cluster
from flows.runners import TaskRunnerKind, make_task_runner
from tasks import data, model, quality
from tasks import nightly as steps


class NightlyParams(BaseModel):
    """One dataset's nightly run. ``landing=None`` ingests the built-in synthetic data instead of files."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    warehouse: str = "warehouse.duckdb"
    artifacts_dir: str = "artifacts"
    dataset: str = "builtin"
    landing: str | None = Field(None, description="folder of raw files; every new file is ingested (by sha256)")
    patterns: list[str] = Field(default_factory=lambda: list(DEFAULT_LANDING_PATTERNS), description="landing file globs")
    settle_seconds: NonNegativeFloat = Field(60.0, description="landing files modified more recently than this are left for the next "
                                             "run (they may still be being written)")
    format: str | None = Field(None, description="reader for landing files; None = detect per file")
    columns: dict[str, str] | None = Field(None, description="column mapping for generic CSV/Parquet")
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    model: str = Field("diffrec", description="registered model name (its shipped config unless run/config_file)")
    config_file: str | None = Field(None, description="run config YAML/JSON")
    run: RunConfig | None = Field(None, description="the run config itself (wins over model/config_file)")
    max_model_age_hours: NonNegativeFloat = Field(168.0, description="reuse a model trained on the same data fingerprint this recently; 0 = always train")
    gate_tolerance: NonNegativeFloat = Field(0.01, description="largest drop in validation Recall@20 below the published model still promoted")
    inference: InferenceConfig = Field(default_factory=InferenceConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig, description="data-quality gates (enabled=False skips them)")
    shards: PositiveInt = Field(1, description="user ranges scored as separate tasks")
    shard_dir: str = Field("artifacts/shards", description="where shards write Parquet")
    task_runner: TaskRunnerKind = Field("thread", description="runner for the shards: thread or dask")
    dask_address: str | None = Field(None, description="scheduler of an existing Dask cluster; None = a local one")
    dask_workers: PositiveInt = Field(2, description="workers of the local Dask cluster (or threads)")
    dask_processes: bool = Field(False, description="local Dask workers as processes instead of threads")
    reports: list[str] = Field(default_factory=lambda: ["reports/quality/summary.html", "reports/compare-{dataset}.md"],
                               description="report files linked from the run's artifact when they exist ({dataset} is replaced)")


class NightlyResult(BaseModel):
    dataset: str
    run_id: str
    reused: bool
    promoted: bool
    published_run: str | None
    gate: dict
    metrics: dict
    recommendations: int
    quality: list[dict] = []


@flow(name="batch-inference")
def batch_inference(warehouse: str, run_id: str, inference: InferenceConfig, shards: int, shard_dir: str) -> list[str]:
    """Score user ranges as mapped tasks (on whatever task runner this subflow is given); returns the Parquet files."""
    ranges = steps.plan_shards(warehouse, run_id, shards)
    files = steps.score_shard.map(unmapped(warehouse), unmapped(run_id), ranges, unmapped(shard_dir), unmapped(inference))
    return files.result()


@flow(name="nightly", log_prints=True)
def nightly(params: NightlyParams = NightlyParams()) -> NightlyResult:
    w, ds, setting = params.warehouse, params.dataset, params.split.setting
    quality.prewarm(params.quality)
    ingest = data.ingest_file.with_options(**steps.TRANSIENT)
    if params.landing is None:
        data.ingest_builtin.with_options(**steps.TRANSIENT)(w, ds, params.synthetic)
    else:
        for path in steps.landing_files(params.landing, params.patterns, params.settle_seconds, w, ds):
            ingest(w, path, ds, params.format, params.columns)
    gates = params.quality.enabled
    checks = [quality.validate_raw(w, ds, params.quality)] if gates else []
    data.split.with_options(**steps.TRANSIENT)(w, ds, params.split)
    if gates:
        checks.append(quality.validate_splits(w, ds, params.split, params.quality))
    run = params.run or steps.resolve_run(ds, params.model, params.config_file)
    embedding_run, embedding_checks = embed_and_cluster(w, ds, setting, run, params.quality)
    checks.extend(embedding_checks)
    fingerprint = steps.fingerprint(w, ds, setting)
    run_id = steps.find_reusable(w, ds, setting, run, fingerprint, params.max_model_age_hours)
    reused = run_id is not None
    if not reused:
        run_id = steps.train(w, ds, setting, run, params.artifacts_dir, embedding_run)
    metrics = steps.evaluate(w, run_id)
    gate = steps.gate(w, run_id, params.gate_tolerance)
    n = 0
    if gate["promote"] and not steps.recommendations_current(w, run_id):
        runner = make_task_runner(params.task_runner, params.dask_address, params.dask_workers, params.dask_processes)
        files = batch_inference.with_options(task_runner=runner)(w, run_id, params.inference, params.shards, params.shard_dir)
        n = steps.load_shards(w, run_id, files)
        if gates:
            checks.append(quality.validate_recommendations(w, run_id, params.inference.k, params.quality))
        model.publish.with_options(**steps.TRANSIENT)(w, run_id)
    steps.report(w, ds, run_id, gate["published"], gate, params.reports)
    if not gate["promote"]:
        print(f"regression gate: {gate['reason']}; run {gate['published']} keeps serving")
    return NightlyResult(dataset=ds, run_id=run_id, reused=reused, promoted=gate["promote"],
                         published_run=run_id if gate["promote"] else gate["published"], gate=gate,
                         metrics=metrics, recommendations=n, quality=checks)
