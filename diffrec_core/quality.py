"""Data-quality gates: Great Expectations suites over frames computed from the warehouse.

Each suite in ``expectations/<suite>.json`` (package ``diffrec_core.expectations``) checks
one table. Its frame comes from ``sql/quality/<suite>.sql``: the table's rows plus computed
columns for the cross-row checks GE has no built-in expectation for (e.g. in how many
splits a (user, item) pair appears), so every check is a stock expectation on a column.

    result = validate("warehouse.duckdb", "raw_interactions", dataset="builtin")
    result.raise_for_failures()   # QualityError: one line naming the expectation, with an example row

Great Expectations is imported lazily (it costs seconds), only when a suite runs; flows call
``prewarm()`` first, which moves the suites into a worker process that loads it on another core.
"""

from __future__ import annotations

import html
import json
import logging
import math
import multiprocessing
import os
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
from pydantic import BaseModel, Field, NonNegativeFloat, model_validator

from diffrec_core import warehouse
from diffrec_core.config import FROZEN
from diffrec_core.paths import output_folder

SUITES = ("raw_interactions", "split_interactions", "item_embeddings", "item_clusters", "recommendations")
SCOPE_KEYS = {
    "raw_interactions": ("dataset",),
    "split_interactions": ("dataset", "setting", "ratios"),
    "item_embeddings": ("dataset", "embedding_run"),
    "item_clusters": ("dataset", "embedding_run", "n_clusters"),
    "recommendations": ("run_id", "k", "list"),
}
REQUIRED_SCOPE = {
    "raw_interactions": ("dataset",),
    "split_interactions": ("dataset",),
    "item_embeddings": ("dataset", "embedding_run"),
    "item_clusters": ("dataset", "embedding_run"),
    "recommendations": ("run_id",),
}
RECOMMENDATION_LISTS = ("candidate", "served")
EXAMPLE_ROWS = 2
DEFAULT_RATIOS = (0.7, 0.1, 0.2)  # for splits recorded without their ratios
_RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": EXAMPLE_ROWS}


class QualityConfig(BaseModel):
    """Thresholds of the quality gates; ``enabled=False`` runs the pipeline without them."""

    model_config = FROZEN

    enabled: bool = Field(True, description="run the gates in the pipeline")
    rating_range: tuple[float, float] = Field(
        (0.5, 5.0), description="declared rating scale of the dataset, inclusive (MovieLens and the built-in data: 0.5-5)"
    )
    earliest_ts: datetime = Field(datetime(1990, 1, 1), description="earliest plausible interaction time (UTC)")
    future_tolerance_s: NonNegativeFloat = Field(3600.0, description="timestamps up to this far past 'now' are accepted (clock skew)")
    max_duplicate_share: float = Field(0.01, ge=0.0, le=1.0, description="largest share of raw rows repeating an earlier row exactly")
    max_share_deviation: float = Field(0.01, ge=0.0, le=1.0, description="largest |split share - configured ratio| (0.01 = 1 percentage point)")

    @model_validator(mode="after")
    def _check(self) -> "QualityConfig":
        lo, hi = self.rating_range
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
            raise ValueError(f"rating_range must be two finite numbers with low <= high, got {self.rating_range}")
        return self


class QualityError(ValueError):
    """A suite failed; the message is one line naming the failed expectation with an example row."""

    def __init__(self, result: "QualityResult") -> None:
        super().__init__(result.message())
        self.result = result


@dataclass(frozen=True)
class Failure:
    """One failed expectation: what it checks, what was observed, and offending rows."""

    index: int                # position of the expectation in expectations/<suite>.json
    expectation: str          # e.g. expect_column_values_to_be_between(column=rating, min_value=0.5, max_value=5.0)
    check: str                # what it means, from the suite's meta
    observed: str             # e.g. "2 of 6000 rows" or "observed 0.12"
    examples: list[dict[str, Any]] = field(default_factory=list)

    def line(self) -> str:
        text = f"{self.expectation} failed ({self.check}): {self.observed}"
        if self.examples:
            text += "; e.g. " + _row_text(self.examples[0])
        return text


@dataclass(frozen=True)
class QualityResult:
    """The outcome of one suite on one scope."""

    suite: str
    scope: dict[str, Any]
    rows: int
    evaluated: int                       # expectations run
    failures: list[Failure]
    skipped: list[str]                   # expectations not applicable to this scope, with why
    seconds: float

    @property
    def success(self) -> bool:
        return not self.failures

    def scope_text(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.scope.items())

    def message(self) -> str:
        """One line: the suite, its scope and the first failed expectation with an example row."""
        if self.success:
            return f"quality suite {self.suite} passed ({self.scope_text()}): {self.evaluated} expectations on {self.rows} rows"
        more = f" (+{len(self.failures) - 1} more failed)" if len(self.failures) > 1 else ""
        return f"quality gate {self.suite} ({self.scope_text()}): {self.failures[0].line()}{more}"

    def raise_for_failures(self) -> "QualityResult":
        if self.failures:
            raise QualityError(self)
        return self


# ----------------------------------------------------------------------------- suites


def suite_document(name: str) -> dict[str, Any]:
    """The committed JSON of suite ``name`` (a copy)."""
    return json.loads(json.dumps(_suite_document(name)))


@lru_cache(maxsize=None)
def _suite_document(name: str) -> dict[str, Any]:
    if name not in SUITES:
        raise ValueError(f"unknown quality suite {name!r}; suites: {', '.join(SUITES)}")
    resource = files("diffrec_core.expectations").joinpath(f"{name}.json")
    try:
        doc = json.loads(resource.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"expectations/{name}.json: not readable JSON ({' '.join(str(error).split())})") from None
    if doc.get("name") != name or not isinstance(doc.get("expectations"), list) or not doc["expectations"]:
        raise ValueError(f"expectations/{name}.json: needs 'name': {name!r} and a non-empty 'expectations' list")
    for i, exp in enumerate(doc["expectations"]):
        if not isinstance(exp.get("meta", {}).get("check"), str):
            raise ValueError(f"expectations/{name}.json: expectation {i} ({exp.get('type')}) has no meta.check text")
    return doc


def applicable(expectation: Mapping[str, Any], context: Mapping[str, Any]) -> str | None:
    """``None`` if the expectation applies to ``context`` (e.g. ``{"method": "per_user"}``), else why not."""
    for key, allowed in expectation.get("meta", {}).get("applies_to", {}).items():
        if context.get(key) not in allowed:
            return f"only for {key} in {allowed}, this {key} is {context.get(key)!r}"
    return None


def _label(exp_type: str, kwargs: Mapping[str, Any]) -> str:
    shown = {k: v for k, v in kwargs.items() if k not in {"batch_id", "result_format", "catch_exceptions", "meta", "rendered_content"} and v is not None}
    return f"{exp_type}(" + ", ".join(f"{k}={_value_text(v)}" for k, v in shown.items()) + ")"


def _value_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}" if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value_text(v) for v in value) + "]"
    if isinstance(value, Mapping) and "$PARAMETER" in value:
        return f"${value['$PARAMETER']}"
    return str(value)


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if hasattr(value, "item") and not isinstance(value, (list, tuple)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            return str(value)
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, (str, bool, int)):
        return value
    return str(value)


def _row_text(row: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {v!r}" for k, v in row.items()) + "}"


# ----------------------------------------------------------------------------- GE


@lru_cache(maxsize=1)
def _gx():
    """(great_expectations, ephemeral context, pandas data source), made once per process."""
    gx, context = _ephemeral_context()
    return gx, context, context.data_sources.add_pandas("diffrec_quality")


_WORKER_LOCK = threading.Lock()
_WORKER: ProcessPoolExecutor | None = None


def prewarm() -> None:
    """Start the gates' worker process now; ``validate`` runs the suites there from then on.

    Importing Great Expectations costs ~2 s of single-threaded Python; in this process it would
    compete for the GIL with the flow's own start-up. The worker (one spawned process, kept for the
    life of this one) imports it and builds its context on another core while the flow starts,
    reads the warehouse read-only and returns plain ``QualityResult``s. Idempotent.
    """
    global _WORKER
    with _WORKER_LOCK:
        if _WORKER is None:
            _WORKER = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
            _WORKER.submit(_warm)


def _warm() -> None:
    _gx()


def _in_worker(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` in the worker when one was started, else here (also if the worker died)."""
    worker = _WORKER
    if worker is not None:
        try:
            return worker.submit(fn, *args, **kwargs).result()
        except BrokenProcessPool:
            logging.getLogger(__name__).warning("quality worker stopped; validating in this process")
    return fn(*args, **kwargs)


def _ephemeral_context():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return gx, context


def _expectations(name: str, context: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """The suite's applicable expectations (each tagged with its index in the file) and the skipped ones."""
    doc = _suite_document(name)
    kept, skipped = [], []
    for index, exp in enumerate(doc["expectations"]):
        why = applicable(exp, context)
        if why is None:
            kept.append({**exp, "meta": {**exp.get("meta", {}), "index": index}})
        else:
            skipped.append(f"{_label(exp['type'], exp['kwargs'])}: {why}")
    return kept, skipped


def ge_suite(name: str, context: Mapping[str, Any] | None = None, suite_name: str | None = None):
    """A ``gx.ExpectationSuite`` of the applicable expectations of suite ``name``.

    Raises ``ValueError`` naming the file if GE refuses one of its expectations.
    """
    gx, _, _ = _gx()
    kept, _ = _expectations(name, context or {})
    doc = _suite_document(name)
    suite = gx.ExpectationSuite(name=suite_name or name, expectations=kept, meta=dict(doc.get("meta", {})))
    if len(suite.expectations) != len(kept):
        built = {e.meta.get("index") for e in suite.expectations}
        bad = [e["type"] for e in kept if e["meta"]["index"] not in built]
        raise ValueError(f"expectations/{name}.json: Great Expectations refused {bad}")
    return suite


def _batch_definition(name: str):
    _, _, source = _gx()
    try:
        asset = source.get_asset(name)
    except LookupError:
        asset = source.add_dataframe_asset(name)
    try:
        return asset.get_batch_definition("whole")
    except (KeyError, LookupError):
        return asset.add_batch_definition_whole_dataframe("whole")


def validate_frame(
    frame: pd.DataFrame,
    suite: str,
    parameters: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    scope: Mapping[str, Any] | None = None,
) -> QualityResult:
    """Run suite ``suite`` on a frame shaped like ``sql/quality/<suite>.sql``'s output.

    parameters: values of the suite's ``$PARAMETER``s; context: what decides which
    expectations apply (``{"method": ...}`` for splits).
    """
    started = time.perf_counter()
    context = dict(context or {})
    ge = ge_suite(suite, context)
    _, skipped = _expectations(suite, context)
    batch = _batch_definition(suite).get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(ge, expectation_parameters=dict(parameters or {}), result_format=_RESULT_FORMAT)
    return interpret(result, frame, suite, dict(scope or {}), skipped, time.perf_counter() - started)


def interpret(result, frame: pd.DataFrame, suite: str, scope: dict[str, Any], skipped: list[str], seconds: float) -> QualityResult:
    """A ``QualityResult`` from GE's suite validation result, with offending rows from ``frame``."""
    failures: list[Failure] = []
    for r in result.results:
        if r.success:
            continue
        config = r.expectation_config
        meta = config.meta or {}
        res = r.result or {}
        if r.exception_info and r.exception_info.get("raised_exception"):
            message = " ".join(str(r.exception_info.get("exception_message", "")).split())
            observed, examples = f"could not be evaluated: {message}", []
        else:
            observed, examples = _observed(res, frame, meta, _example_columns(suite, config.kwargs, frame))
        failures.append(Failure(int(meta.get("index", -1)), _label(config.type, config.kwargs), str(meta.get("check", "")), observed, examples))
    failures.sort(key=lambda f: f.index)
    return QualityResult(suite, scope, len(frame), len(result.results), failures, skipped, seconds)


def _example_columns(suite: str, kwargs: Mapping[str, Any], frame: pd.DataFrame) -> list[str]:
    """The suite's identifying columns (meta.row_columns) and the columns the expectation checks, in frame order."""
    wanted = set(_suite_document(suite).get("meta", {}).get("row_columns", frame.columns))
    wanted |= {kwargs.get(k) for k in ("column", "column_A", "column_B")} | set(kwargs.get("column_list") or [])
    return [c for c in frame.columns if c in wanted]


def _observed(res: Mapping[str, Any], frame: pd.DataFrame, meta: Mapping[str, Any],
              columns: list[str]) -> tuple[str, list[dict[str, Any]]]:
    rows: pd.DataFrame | None = None
    if "unexpected_count" in res:
        observed = f"{res['unexpected_count']} of {res.get('element_count', len(frame))} rows"
        index = res.get("partial_unexpected_index_list") or []
        if index and not isinstance(index[0], dict):
            rows = frame.loc[[i for i in index if i in frame.index][:EXAMPLE_ROWS]]
    else:
        value = res.get("observed_value")
        observed = f"observed {_value_text(_plain(value)) if not isinstance(value, list) else value}"
    if rows is None and meta.get("offending_rows") and len(frame):
        rows = frame.query(meta["offending_rows"]).head(EXAMPLE_ROWS)
    examples = [] if rows is None else [{k: _plain(v) for k, v in row.items() if _plain(v) is not None}
                                        for row in rows[columns].to_dict("records")]
    return observed, examples


# ----------------------------------------------------------------------------- frames from the warehouse


def _epoch(ts: datetime) -> float:
    return (ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)).timestamp()


def _check_scope(suite: str, scope: Mapping[str, Any]) -> None:
    if suite not in SUITES:
        raise ValueError(f"unknown quality suite {suite!r}; suites: {', '.join(SUITES)}")
    unknown = set(scope) - set(SCOPE_KEYS[suite])
    missing = [k for k in REQUIRED_SCOPE[suite] if scope.get(k) is None]
    if unknown or missing:
        raise ValueError(f"quality suite {suite}: scope takes {list(SCOPE_KEYS[suite])} (required {list(REQUIRED_SCOPE[suite])}); "
                         f"unknown {sorted(unknown)}, missing {missing}")


def prepare(con: duckdb.DuckDBPyConnection, suite: str, config: QualityConfig | None = None, **scope: Any):
    """(frame, parameters, context, scope) for running ``suite`` on the warehouse behind ``con``.

    Scopes: raw_interactions(dataset); split_interactions(dataset, setting='clean',
    ratios=the ratios recorded with the split, 7:1:2 where none are); item_embeddings(dataset, embedding_run);
    item_clusters(dataset, embedding_run, n_clusters=the run's only one);
    recommendations(run_id, k=the run's largest rank, list='candidate': what publishing the run would
    serve, its pending refresh if it has one; 'served': the list it serves now).
    """
    _check_scope(suite, scope)
    config = config or QualityConfig()
    scope = {k: v for k, v in scope.items() if v is not None}
    parameters: dict[str, Any] = {}
    context: dict[str, Any] = {}
    if suite == "raw_interactions":
        frame = warehouse.run_sql(con, "quality/raw_interactions", dataset=scope["dataset"]).df()
        lo, hi = config.rating_range
        parameters = {
            "rating_min": lo, "rating_max": hi,
            "earliest_ts_epoch_seconds": _epoch(config.earliest_ts),
            "latest_ts_epoch_seconds": time.time() + config.future_tolerance_s,
            "max_duplicate_share": config.max_duplicate_share,
        }
    elif suite == "split_interactions":
        scope.setdefault("setting", "clean")
        found = warehouse.run_sql(con, "quality/split_setting", dataset=scope["dataset"], setting=scope["setting"]).fetchall()
        if not found:
            raise ValueError(f"dataset {scope['dataset']!r} has no split setting {scope['setting']!r} in split_reports")
        row, min_rating, *stored = found[0]
        default = tuple(stored) if None not in stored else DEFAULT_RATIOS
        ratios = tuple(float(r) for r in scope.pop("ratios", default))
        if len(ratios) != 3:
            raise ValueError(f"quality suite split_interactions: ratios must be (train, valid, test), got {ratios}")
        context["method"] = row
        if row in ("global", "per_user"):
            scope["ratios"] = ratios
        evaluation = warehouse.run_sql(con, "splits/load_split", dataset=scope["dataset"], setting=scope["setting"]).df()
        con.register("_evaluation_rows", evaluation)
        try:
            frame = warehouse.run_sql(con, "quality/split_interactions", dataset=scope["dataset"], setting=scope["setting"],
                                      min_rating=min_rating, train_ratio=ratios[0], valid_ratio=ratios[1],
                                      test_ratio=ratios[2]).df()
        finally:
            con.unregister("_evaluation_rows")
        parameters = {"max_share_deviation": config.max_share_deviation}
        scope["method"] = row
    elif suite == "item_embeddings":
        frame = warehouse.run_sql(con, "quality/item_embeddings", dataset=scope["dataset"], embedding_run=scope["embedding_run"]).df()
    elif suite == "item_clusters":
        if scope.get("n_clusters") is None:
            found = [r[0] for r in warehouse.run_sql(con, "quality/cluster_counts", embedding_run=scope["embedding_run"],
                                                     dataset=scope["dataset"]).fetchall()]
            if len(found) != 1:
                raise ValueError(f"embedding run {scope['embedding_run']!r} of dataset {scope['dataset']!r} has clusterings "
                                 f"for n_clusters in {found}: pass n_clusters")
            scope["n_clusters"] = found[0]
        frame = warehouse.run_sql(con, "quality/item_clusters", dataset=scope["dataset"], embedding_run=scope["embedding_run"],
                                  n_clusters=int(scope["n_clusters"])).df()
    else:  # recommendations
        scope.setdefault("list", "candidate")
        if scope["list"] not in RECOMMENDATION_LISTS:
            raise ValueError(f"quality suite recommendations: list must be one of {list(RECOMMENDATION_LISTS)}, got {scope['list']!r}")
        served = scope["list"] == "served"
        runs, max_rank = warehouse.run_sql(con, "quality/run_ranks", run_id=scope["run_id"], served=served).fetchall()[0]
        if runs == 0:
            raise ValueError(f"no model run {scope['run_id']!r} in the warehouse")
        if scope.get("k") is None:
            scope["k"] = int(max_rank)
        frame = warehouse.run_sql(con, "quality/recommendations", run_id=scope["run_id"], k=int(scope["k"]), served=served).df()
        parameters = {"k": int(scope["k"])}
    return frame, parameters, context, scope


def validate(
    warehouse_path: str | Path,
    suite: str,
    *,
    config: QualityConfig | None = None,
    raise_on_failure: bool = False,
    **scope: Any,
) -> QualityResult:
    """Run one suite on the warehouse (opened read-only) for one scope; see ``prepare`` for scopes.

    Returns a ``QualityResult``; with ``raise_on_failure`` a failed suite raises ``QualityError``
    (one line naming the first failed expectation and an offending row).
    """
    result = _in_worker(_validate, str(warehouse_path), suite, config, scope)
    return result.raise_for_failures() if raise_on_failure else result


def _validate(warehouse_path: str, suite: str, config: QualityConfig | None, scope: dict[str, Any]) -> QualityResult:
    started = time.perf_counter()
    with warehouse.connect(warehouse_path, read_only=True) as con:
        frame, parameters, context, scope = prepare(con, suite, config, **scope)
    result = validate_frame(frame, suite, parameters, context, scope)
    return QualityResult(result.suite, result.scope, result.rows, result.evaluated, result.failures, result.skipped,
                         time.perf_counter() - started)


def gate_recommendations(warehouse_path: str | Path, run_id: str, k: int, config: QualityConfig | None = None) -> QualityResult:
    """Validate the list publishing ``run_id`` would serve; on failure raise ``QualityError``.

    A failed unpublished run is marked ``rejected``. A failed refresh of the published run leaves the
    run as it is: its served list stays, and the refresh stays pending, so the run is not current and
    the next nightly run scores it again."""
    result = validate(warehouse_path, "recommendations", config=config, run_id=run_id, k=k, list="candidate")
    if not result.success:
        with warehouse.connect(warehouse_path) as con:
            if not warehouse.is_published(con, run_id):
                warehouse.update_model_run(con, run_id, status="rejected")
        raise QualityError(result)
    return result


# ----------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Report:
    summary: Path                      # self-contained HTML, readable offline
    data_docs: Path | None             # Data Docs index.html (its pages load CSS/JS from CDNs)
    results: list[QualityResult]
    not_run: dict[str, str]            # suite -> why it had nothing to validate

    @property
    def success(self) -> bool:
        return all(r.success for r in self.results)


def scopes(con: duckdb.DuckDBPyConnection) -> dict[str, list[dict[str, Any]]]:
    """Every scope the warehouse holds per suite: datasets, split settings, embedding runs, the published
    runs' served lists."""
    found: dict[str, list[dict[str, Any]]] = {suite: [] for suite in SUITES}
    names = ("dataset", "setting", "embedding_run", "n_clusters", "run_id")
    for suite, *values in warehouse.run_sql(con, "quality/scopes").fetchall():
        scope = {k: v for k, v in zip(names, values) if v is not None and k in SCOPE_KEYS[suite]}
        if suite == "recommendations":
            scope["list"] = "served"
        found[suite].append(scope)
    return found


def build_report(warehouse_path: str | Path, out_dir: str | Path = "reports/quality", config: QualityConfig | None = None,
                 data_docs: bool = True) -> Report:
    """Run every suite on every scope in the warehouse; write Data Docs and ``summary.html`` to ``out_dir``.

    Recommendations are checked for the published run of each dataset (K = its largest rank),
    splits against the ratios recorded when they were made.
    """
    out = output_folder(Path(out_dir).resolve(), "report folder", create=False)
    config = config or QualityConfig()
    prepared = []
    with warehouse.connect(warehouse_path, read_only=True) as con:  # a bad warehouse leaves no empty report folder
        found = scopes(con)
        for suite in SUITES:
            for scope in found[suite]:
                prepared.append((suite, *prepare(con, suite, config, **scope)))
    out.mkdir(parents=True, exist_ok=True)
    not_run = {s: f"no rows in {_TABLE_OF[s]}" for s in SUITES if not found[s]}
    results = []
    docs_index = None
    if data_docs and prepared:
        gx, context, source = _docs_context(out / "data_docs")
        for n, (suite, frame, parameters, ctx, scope) in enumerate(prepared):
            started = time.perf_counter()
            _, skipped = _expectations(suite, ctx)
            name = f"{suite} {_scope_name(scope)}"
            ge = context.suites.add(ge_suite(suite, ctx, suite_name=name))
            asset = source.add_dataframe_asset(f"{suite}_{n}")
            definition = context.validation_definitions.add(
                gx.ValidationDefinition(name=name, data=asset.add_batch_definition_whole_dataframe("whole"), suite=ge))
            result = definition.run(batch_parameters={"dataframe": frame}, expectation_parameters=parameters, result_format=_RESULT_FORMAT)
            results.append(interpret(result, frame, suite, scope, skipped, time.perf_counter() - started))
        context.build_data_docs(site_names=["diffrec"])
        docs_index = out / "data_docs" / "index.html"
    else:
        results = [validate_frame(frame, suite, parameters, ctx, scope) for suite, frame, parameters, ctx, scope in prepared]
    summary = out / "summary.html"
    summary.write_text(summary_html(results, not_run, Path(warehouse_path), docs_index, out), encoding="utf-8")
    return Report(summary, docs_index, results, not_run)


_TABLE_OF = {
    "raw_interactions": "raw_interactions", "split_interactions": "split_reports", "item_embeddings": "item_embeddings",
    "item_clusters": "item_clusters", "recommendations": "published",
}


def _scope_name(scope: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in scope.items() if k != "ratios")


def _docs_context(site_dir: Path):
    """A fresh ephemeral context whose only Data Docs site is ``site_dir``."""
    gx, context = _ephemeral_context()
    context.variables.data_docs_sites = {"diffrec": {
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site_dir)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }}
    return gx, context, context.data_sources.add_pandas("diffrec_quality_report")


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:70em;color:#222}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.35em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}.pass{color:#176b2c;font-weight:600}.fail{color:#a4161a;font-weight:600}.none{color:#777}
code{font-size:.9em;word-break:break-all}"""


def summary_html(results: Sequence[QualityResult], not_run: Mapping[str, str], warehouse_path: Path,
                 docs_index: Path | None, out: Path) -> str:
    """One self-contained HTML page (inline CSS, no scripts, no external resources) listing every suite."""
    e = html.escape
    passed = sum(r.success for r in results)
    rows = []
    for suite in SUITES:
        mine = [r for r in results if r.suite == suite]
        if not mine:
            rows.append(f"<tr><td>{e(suite)}</td><td class='none'>not run</td><td colspan='3' class='none'>{e(not_run.get(suite, ''))}</td></tr>")
        for r in mine:
            status = "<span class='pass'>passed</span>" if r.success else "<span class='fail'>FAILED</span>"
            detail = "".join(f"<li><code>{e(f.expectation)}</code>: {e(f.check)} &mdash; {e(f.observed)}"
                             + (f"<br>e.g. <code>{e(_row_text(f.examples[0]))}</code>" if f.examples else "") + "</li>"
                             for f in r.failures)
            skipped = "".join(f"<li class='none'>skipped: <code>{e(s)}</code></li>" for s in r.skipped)
            rows.append(
                f"<tr><td>{e(suite)}</td><td>{status}</td><td>{e(r.scope_text())}</td>"
                f"<td>{r.evaluated - len(r.failures)}/{r.evaluated} expectations, {r.rows} rows, {r.seconds:.2f} s</td>"
                f"<td><ul>{detail}{skipped}</ul></td></tr>")
    docs = (f"<p>Full Data Docs: <a href='{e(Path(os.path.relpath(docs_index, out)).as_posix())}'>"
            f"{e(Path(os.path.relpath(docs_index, out)).as_posix())}</a> (Great Expectations' pages load their styles and "
            "scripts from public CDNs; this page needs nothing else).</p>") if docs_index else ""
    checks = "".join(
        f"<h3>{e(suite)}</h3><p>{e(_suite_document(suite).get('meta', {}).get('description', ''))}</p><ol start='0'>"
        + "".join(f"<li>{e(x['meta']['check'])} &mdash; <code>{e(_label(x['type'], x['kwargs']))}</code></li>"
                  for x in _suite_document(suite)["expectations"]) + "</ol>"
        for suite in SUITES)
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>diffrec data quality</title>"
        f"<style>{_CSS}</style></head><body><h1>Data quality</h1>"
        f"<p>Warehouse <code>{e(str(warehouse_path))}</code>, {when}: {passed} of {len(results)} suite runs passed.</p>"
        "<table><tr><th>suite</th><th>result</th><th>scope</th><th>checked</th><th>failures</th></tr>"
        + "".join(rows) + f"</table>{docs}<h2>What each suite checks</h2>{checks}</body></html>\n"
    )
