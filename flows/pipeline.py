"""The batch pipeline: ingest → validate raw → stage → split → validate splits → train → evaluate → recommend
→ validate recommendations → publish. A failed quality gate stops the flow before anything is published."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

import flows  # noqa: F401  (environment defaults before Prefect starts)
from prefect import flow

from diffrec_core.config import InferenceConfig, RunConfig
from diffrec_core.ingest.synthetic import SyntheticConfig
from diffrec_core.quality import QualityConfig
from diffrec_core.splits import SplitConfig
from flows.lvariants import embed_and_cluster
from tasks import data, model, quality


class PipelineParams(BaseModel):
    """Everything one pipeline run needs. ``input=None`` runs the built-in synthetic data."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    warehouse: str = "warehouse.duckdb"
    artifacts_dir: str = "artifacts"
    dataset: str = "builtin"
    input: str | None = Field(None, description="raw interaction file; None = built-in synthetic data")
    format: str | None = Field(None, description="reader name; None = detect from the file")
    columns: dict[str, str] | None = Field(None, description="column mapping for generic CSV/Parquet")
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    run: RunConfig = Field(default_factory=RunConfig)
    inference: InferenceConfig = Field(default_factory=InferenceConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig, description="data-quality gates (enabled=False skips them)")
    publish: bool = True


class PipelineResult(BaseModel):
    run_id: str
    dataset: str
    setting: str
    split: dict
    metrics: dict
    recommendations: int
    published: bool
    quality: list[dict] = []


@flow(name="pipeline", log_prints=True)
def pipeline(params: PipelineParams) -> PipelineResult:
    w = params.warehouse
    quality.prewarm(params.quality)
    if params.input is None:
        data.ingest_builtin(w, params.dataset, params.synthetic)
    else:
        data.ingest_file(w, params.input, params.dataset, params.format, params.columns)
    gates = params.quality.enabled
    checks = [quality.validate_raw(w, params.dataset, params.quality)] if gates else []
    report = data.split(w, params.dataset, params.split)
    if gates:
        checks.append(quality.validate_splits(w, params.dataset, params.split, params.quality))
    embedding_run, embedding_checks = embed_and_cluster(w, params.dataset, params.split.setting, params.run, params.quality)
    checks.extend(embedding_checks)
    run_id = model.train(w, params.dataset, params.split.setting, params.run, params.artifacts_dir, embedding_run=embedding_run)
    metrics = model.evaluate(w, run_id)
    n = model.recommend(w, run_id, params.inference)
    if gates:
        checks.append(quality.validate_recommendations(w, run_id, params.inference.k, params.quality))
    if params.publish:
        model.publish(w, run_id)
    return PipelineResult(run_id=run_id, dataset=params.dataset, setting=params.split.setting, split=report,
                          metrics=metrics, recommendations=n, published=params.publish, quality=checks)
