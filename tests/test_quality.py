"""Data-quality suites: every expectation tripped by a corrupted input and passed by a clean one,
the pipeline's gates, and the report."""

import json
import re
import shutil

import duckdb
import numpy as np
import pandas as pd
import pytest

from diffrec_core import quality, warehouse
from diffrec_core.ingest import SyntheticConfig, ingest_synthetic
from diffrec_core.quality import QualityConfig, QualityError
from diffrec_core.splits import SplitConfig, make_split, stage

TINY = SyntheticConfig(n_users=120, n_items=60, n_interactions=4000, seed=3)
DS, RUN, EMB, K, C = "tiny", "pop-run", "emb-1", 45, 3  # K near the 60-item catalogue: heavy users have fewer unseen items


def _popularity_recommendations(con) -> pd.DataFrame:
    """Top-K unseen items by popularity for every user with a kept (rating >= 4) interaction: a valid output."""
    seen = con.execute(
        "select u.user_key, it.item_key, i.rating from interactions i join users u using (dataset, user_id) "
        "join items it using (dataset, item_id) where i.dataset = ?", [DS]).df()
    popularity = seen.groupby("item_key").size().sort_values(ascending=False, kind="stable")
    items = list(popularity.index) + sorted(set(con.execute("select item_key from items where dataset = ?", [DS]).df()["item_key"]) - set(popularity.index))
    score = {item: float(len(items) - n) for n, item in enumerate(items)}
    rows = []
    for user, group in seen.groupby("user_key"):
        if not (group["rating"] >= 4).any():
            continue
        unseen = [i for i in items if i not in set(group["item_key"])][:K]
        rows += [(user, item, rank, score[item]) for rank, item in enumerate(unseen, 1)]
    return pd.DataFrame(rows, columns=["user_key", "item_key", "rank", "score"])


def _insert_clusters(con, rows):
    """rows: (item_id, cluster); fills the schema's optional seed column when it has one."""
    columns = {r[0] for r in con.execute("select column_name from information_schema.columns where table_name = 'item_clusters'").fetchall()}
    frame = pd.DataFrame(rows, columns=["item_id", "cluster"])
    con.register("_clusters", frame)
    seed = ", 0 as seed" if "seed" in columns else ""
    con.execute(f"insert into item_clusters by name select '{EMB}' as embedding_run, '{DS}' as dataset, {C} as n_clusters, "
                f"item_id, cluster{seed} from _clusters")
    con.unregister("_clusters")


@pytest.fixture(scope="module")
def base_db(tmp_path_factory):
    """A clean tiny warehouse: raw data, a global and a per-user split, recommendations, embeddings, clusters."""
    path = tmp_path_factory.mktemp("quality") / "w.duckdb"
    with warehouse.connect(path) as con:
        ingest_synthetic(con, DS, TINY)
        stage(con, DS)
        make_split(con, DS, SplitConfig())
        make_split(con, DS, SplitConfig(setting="pu", method="per_user"))
        warehouse.record_model_run(con, run_id=RUN, dataset=DS, setting="clean", model="popularity", config={}, status="evaluated")
        warehouse.write_recommendations(con, RUN, DS, _popularity_recommendations(con))
        n_items = con.execute("select count(*) from items where dataset = ?", [DS]).fetchall()[0][0]
        vectors = np.random.default_rng(0).normal(size=(n_items, 8)).astype(np.float32)
        emb = pd.DataFrame({"item_id": np.arange(n_items, dtype=np.int32), "vector": list(vectors)})
        con.register("_emb", emb)
        con.execute(f"insert into item_embeddings (embedding_run, dataset, item_id, vector) "
                    f"select '{EMB}', '{DS}', item_id, cast(vector as float[]) from _emb")
        con.unregister("_emb")
        _insert_clusters(con, [(i, i % C) for i in range(n_items)])
    return path


@pytest.fixture
def db(base_db, tmp_path):
    path = tmp_path / "w.duckdb"
    shutil.copy(base_db, path)
    return path


LOOSE = QualityConfig(max_share_deviation=0.03)

SCOPES = {
    "raw_interactions": {"dataset": DS},
    "split_interactions": {"dataset": DS, "setting": "clean"},
    "item_embeddings": {"dataset": DS, "embedding_run": EMB},
    "item_clusters": {"dataset": DS, "embedding_run": EMB, "n_clusters": C},
    "recommendations": {"run_id": RUN, "k": K},
}

ONE_TRAIN_ROW = "select user_id, item_id from split_interactions where setting = 'clean' and split = 'train' order by ts limit 1"
FIRST_USER = f"(select min(user_key) from recommendations where run_id = '{RUN}')"
FULL_USER = f"(select min(user_key) from (select user_key from recommendations where run_id = '{RUN}' group by 1 having count(*) = {K}))"

# (suite, index of the expectation in expectations/<suite>.json, corrupting SQL, scope overrides)
CORRUPTIONS = [
    ("raw_interactions", 0, "delete from raw_interactions", {}),
    ("raw_interactions", 3, "update raw_interactions set rating = 7 where line_no = 5", {}),
    ("raw_interactions", 3, "update raw_interactions set rating = 0 where line_no = 5", {}),
    ("raw_interactions", 4, "update raw_interactions set ts = 'infinity'::timestamp where line_no = 5", {}),
    ("raw_interactions", 5, "update raw_interactions set ts = timestamp '1985-06-01' where line_no = 5", {}),
    ("raw_interactions", 5, "update raw_interactions set ts = cast(now() as timestamp) + interval 30 day where line_no = 5", {}),
    ("raw_interactions", 6, "insert into raw_interactions select * from raw_interactions where line_no % 20 = 0", {}),
    ("split_interactions", 0, "delete from split_interactions where setting = 'clean'", {}),
    ("split_interactions", 1, "delete from split_interactions where setting = 'clean' and split = 'valid'", {}),
    ("split_interactions", 2, f"insert into split_interactions select dataset, setting, split, 9999, item_id, ts, weight "
                              f"from split_interactions where setting = 'clean' and split = 'train' order by ts limit 1", {}),
    ("split_interactions", 3, f"insert into split_interactions select dataset, setting, split, user_id, 9999, ts, weight "
                              f"from split_interactions where setting = 'clean' and split = 'train' order by ts limit 1", {}),
    ("split_interactions", 4, "insert into split_interactions select dataset, setting, 'test', user_id, item_id, "
                              "(select max(ts) from split_interactions where setting = 'clean'), weight "
                              "from split_interactions where setting = 'clean' and split = 'train' order by ts limit 1", {}),
    ("split_interactions", 5, "delete from split_interactions where setting = 'clean' and split = 'test' and item_id % 3 = 0", {}),
    ("split_interactions", 5, None, {"ratios": (0.6, 0.2, 0.2)}),
    # a shuffled split: labels drawn at random instead of cut by time
    ("split_interactions", 6, "update split_interactions set split = case hash(user_id, item_id) % 10 when 0 then 'valid' "
                              "when 1 then 'test' when 2 then 'test' else 'train' end where setting = 'clean'", {}),
    ("item_embeddings", 0, None, {"dataset": "absent"}),
    ("item_embeddings", 1, f"insert into item_embeddings values ('{EMB}', '{DS}', 9999, [1, 2, 3, 4, 5, 6, 7, 8])", {}),
    ("item_embeddings", 2, "delete from item_embeddings where item_id = 3", {}),
    ("item_embeddings", 3, "update item_embeddings set vector = [1.0, 'nan'::float, 1, 1, 1, 1, 1, 1] where item_id = 3", {}),
    ("item_embeddings", 3, "update item_embeddings set vector = [1.0, 1, 1, 1, 1, 1, 1, '-inf'::float] where item_id = 4", {}),
    ("item_embeddings", 4, "update item_embeddings set vector = [1, 2] where item_id = 3", {}),
    ("item_embeddings", 5, "update item_embeddings set vector = cast([] as float[])", {}),
    ("item_clusters", 0, None, {"dataset": "absent"}),
    ("item_clusters", 1, "__extra_cluster_row__", {}),
    ("item_clusters", 2, "delete from item_clusters where item_id = 3", {}),
    ("item_clusters", 3, "update item_clusters set cluster = 7 where item_id = 3", {}),
    ("item_clusters", 4, "update item_clusters set cluster = 0 where cluster = 2", {}),
    ("recommendations", 0, f"delete from recommendations where run_id = '{RUN}'", {}),
    ("recommendations", 1, f"delete from recommendations where run_id = '{RUN}' and user_key = {FIRST_USER}", {}),
    ("recommendations", 2, f"delete from recommendations where run_id = '{RUN}' and user_key = {FULL_USER} and rank = {K}", {}),
    ("recommendations", 3, f"update recommendations set rank = 0 where run_id = '{RUN}' and user_key = {FULL_USER} and rank = 1", {}),
    ("recommendations", 4, f"update recommendations set rank = 1 where run_id = '{RUN}' and user_key = {FULL_USER} and rank = 2", {}),
    ("recommendations", 5, f"update recommendations set rank = {K + 1} where run_id = '{RUN}' and user_key = {FULL_USER} and rank = {K}",
     {"k": K + 1}),
    ("recommendations", 6, f"update recommendations set item_key = (select item_key from recommendations where run_id = '{RUN}' "
                           f"and user_key = {FULL_USER} and rank = 1) where run_id = '{RUN}' and user_key = {FULL_USER} and rank = 2", {}),
    ("recommendations", 7, f"update recommendations set item_key = (select it.item_key from interactions i join users u using (dataset, user_id) "
                           f"join items it using (dataset, item_id) where u.user_key = {FULL_USER} and i.dataset = '{DS}' limit 1) "
                           f"where run_id = '{RUN}' and user_key = {FULL_USER} and rank = 1", {}),
    ("recommendations", 8, f"update recommendations set score = 'inf' where run_id = '{RUN}' and user_key = {FULL_USER} and rank = 1", {}),
    ("recommendations", 8, f"update recommendations set score = 'nan' where run_id = '{RUN}' and user_key = {FULL_USER} and rank = {K}", {}),
    ("recommendations", 9, f"update recommendations set score = score + 100 where run_id = '{RUN}' and user_key = {FULL_USER} and rank = 3", {}),
]

# Expectations the warehouse schema itself rules out (NOT NULL keys) or that guard the evaluator's own
# query (splits/load_split): tripped by corrupting the frame the suite validates.
FRAME_CORRUPTIONS = [
    ("raw_interactions", 1, "user_key", None),
    ("raw_interactions", 2, "item_key", None),
    ("split_interactions", 7, "evaluated_test_item_in_train", False),
]


def _run(path, suite, sql, overrides):
    if sql == "__extra_cluster_row__":
        with warehouse.connect(path) as con:
            _insert_clusters(con, [(9999, 0)])
    elif sql:
        with duckdb.connect(str(path)) as con:
            con.execute(sql)
    return quality.validate(path, suite, **{**SCOPES[suite], **overrides})


def test_every_expectation_has_a_corruption_case():
    for suite in quality.SUITES:
        n = len(quality.suite_document(suite)["expectations"])
        covered = {i for s, i, *_ in CORRUPTIONS + FRAME_CORRUPTIONS if s == suite}
        assert covered == set(range(n)), f"{suite}: expectations without a corruption case: {set(range(n)) - covered}"


@pytest.mark.parametrize("suite", quality.SUITES)
def test_clean_warehouse_passes_every_suite(base_db, suite):
    result = quality.validate(base_db, suite, **SCOPES[suite])
    assert result.success, result.message()
    assert result.evaluated == len(quality.suite_document(suite)["expectations"]) and not result.skipped
    assert result.rows > 0


@pytest.mark.parametrize("suite, index, sql, overrides", CORRUPTIONS,
                         ids=[f"{c[0]}-{c[1]}-{n}" for n, c in enumerate(CORRUPTIONS)])
def test_corruption_trips_its_expectation(db, suite, index, sql, overrides):
    result = _run(db, suite, sql, overrides)
    assert not result.success
    failed = {f.index for f in result.failures}
    assert index in failed, result.message()
    failure = next(f for f in result.failures if f.index == index)
    expected = quality.suite_document(suite)["expectations"][index]
    assert failure.expectation.startswith(expected["type"] + "(") and failure.check == expected["meta"]["check"]
    with pytest.raises(QualityError) as raised:
        result.raise_for_failures()
    assert "\n" not in str(raised.value) and suite in str(raised.value)


@pytest.mark.parametrize("suite, index, column, value", FRAME_CORRUPTIONS)
def test_frame_corruption_trips_its_expectation(base_db, suite, index, column, value):
    with warehouse.connect(base_db, read_only=True) as con:
        frame, parameters, context, scope = quality.prepare(con, suite, **SCOPES[suite])
    assert quality.validate_frame(frame, suite, parameters, context, scope).success
    row = frame[column].first_valid_index()
    frame[column] = frame[column].astype(object)
    frame.loc[row, column] = value
    result = quality.validate_frame(frame, suite, parameters, context, scope)
    assert [f.index for f in result.failures] == [index]
    assert result.failures[0].examples and result.failures[0].observed == f"1 of {len(frame)} rows"


def test_failure_names_expectation_and_offending_row(db):
    with duckdb.connect(str(db)) as con:
        con.execute("update raw_interactions set rating = 7 where line_no in (5, 9)")
        user, item = con.execute("select user_key, item_key from raw_interactions where line_no = 5").fetchone()
    with pytest.raises(QualityError) as raised:
        quality.validate(db, "raw_interactions", raise_on_failure=True, dataset=DS)
    message = str(raised.value)
    assert "\n" not in message
    assert "expect_column_values_to_be_between(column=rating, min_value=0.5, max_value=5)" in message
    assert re.search(r"failed \(ratings lie inside the dataset's declared range.*\): 2 of \d+ rows; e\.g\. \{", message), message
    assert f"user_key: '{user}'" in message and f"item_key: '{item}'" in message
    assert "rating: 7.0" in message and "line_no: 5" in message


WORKER_SCRIPT = """
import sys
from diffrec_core import quality
quality.prewarm()
ok = quality.validate(sys.argv[1], "raw_interactions", dataset="tiny")
try:
    quality.validate(sys.argv[2], "raw_interactions", raise_on_failure=True, dataset="tiny")
except quality.QualityError as error:
    print(ok.success, "great_expectations" in sys.modules, error.result.failures[0].index, error, sep="|")
"""


def test_prewarmed_gates_run_in_the_worker_with_the_same_results(base_db, db, tmp_path):
    """After prewarm() the suites run in the worker process: Great Expectations never loads here, results are the same."""
    import subprocess
    import sys

    with duckdb.connect(str(db)) as con:
        con.execute("update raw_interactions set rating = 7 where line_no in (5, 9)")
    here = quality.validate(db, "raw_interactions", dataset=DS)
    out = subprocess.run([sys.executable, "-c", WORKER_SCRIPT, str(base_db), str(db)], capture_output=True, text=True,
                         timeout=300, check=True).stdout.strip().splitlines()[-1]
    success, ge_loaded, index, message = out.split("|", 3)
    assert (success, ge_loaded) == ("True", "False")
    assert int(index) == here.failures[0].index and message == here.message()


def test_rating_range_is_configurable(db):
    with duckdb.connect(str(db)) as con:
        con.execute("update raw_interactions set rating = rating * 2")  # a 2-10 scale
    assert not quality.validate(db, "raw_interactions", dataset=DS).success
    assert quality.validate(db, "raw_interactions", config=QualityConfig(rating_range=(1, 10)), dataset=DS).success
    with pytest.raises(ValueError, match="rating_range"):
        QualityConfig(rating_range=(5, 1))


def test_split_checked_against_its_recorded_ratios(db):
    """A split made 8:1:1 passes against the ratios stored with it; checked as 7:1:2 it fails the share check."""
    with warehouse.connect(db) as con:
        make_split(con, DS, SplitConfig(setting="eighty", ratios=(0.8, 0.1, 0.1)))
        assert con.execute("select train_ratio, valid_ratio, test_ratio from split_reports where setting = 'eighty'").fetchone() == (0.8, 0.1, 0.1)
    own = quality.validate(db, "split_interactions", config=LOOSE, dataset=DS, setting="eighty")
    assert own.success, own.message()
    assert own.scope["ratios"] == (0.8, 0.1, 0.1)
    forced = quality.validate(db, "split_interactions", config=LOOSE, dataset=DS, setting="eighty", ratios=(0.7, 0.1, 0.2))
    assert not forced.success and "share" in forced.message()


def test_old_split_reports_gain_ratio_columns_checked_as_default(db):
    """A warehouse whose split_reports predates the ratio columns is migrated; its splits are checked as 7:1:2."""
    with duckdb.connect(str(db)) as con:
        for column in ("train_ratio", "valid_ratio", "test_ratio"):
            con.execute(f"alter table split_reports drop column {column}")
    with warehouse.connect(db) as con:  # applies the schema
        assert con.execute("select train_ratio from split_reports where setting = 'clean'").fetchone() == (None,)
    result = quality.validate(db, "split_interactions", config=LOOSE, dataset=DS, setting="clean")
    assert result.success and result.scope["ratios"] == (0.7, 0.1, 0.2)


def test_duplicate_threshold_is_configurable(db):
    with duckdb.connect(str(db)) as con:
        con.execute("insert into raw_interactions select * from raw_interactions where line_no % 20 = 0")
    assert quality.validate(db, "raw_interactions", config=QualityConfig(max_duplicate_share=0.1), dataset=DS).success


def test_per_user_split_skips_chronological_order(base_db):
    # per-user rounding on ~10 kept rows a user moves the shares by more than 1 pp on data this small
    result = quality.validate(base_db, "split_interactions", config=LOOSE, dataset=DS, setting="pu")
    assert result.success, result.message()
    assert [f.index for f in quality.validate(base_db, "split_interactions", dataset=DS, setting="pu").failures] == [5]
    assert len(result.skipped) == 1 and "ts_epoch_seconds" in result.skipped[0] and "per_user" in result.skipped[0]


@pytest.mark.parametrize("setting", ["noisy-natural", "noisy-random"])
def test_noise_settings_pass_with_shares_over_clean_rows(db, setting):
    from diffrec_core.splits import setting_config

    config = setting_config(setting, 0.3)
    with warehouse.connect(db) as con:
        make_split(con, DS, config)
        noise = con.execute("select count(*) from split_interactions s anti join interactions i using (dataset, user_id, item_id) "
                            "where s.setting = $setting", {"setting": config.setting}).fetchall()[0][0]
        low = con.execute("select count(*) from split_interactions s join interactions i using (dataset, user_id, item_id) "
                          "where s.setting = $setting and i.rating < 4", {"setting": config.setting}).fetchall()[0][0]
    assert noise + low > 0  # the setting holds rows besides the clean 7:1:2 ones
    result = quality.validate(db, "split_interactions", dataset=DS, setting=config.setting)
    assert result.success, result.message()


def test_imported_split_checked_for_overlap_and_ids_only(db):
    with duckdb.connect(str(db)) as con:
        con.execute("update split_reports set method = 'imported' where setting = 'clean'")
        # sizes far from 7:1:2 and out of time order: not checked for imported splits
        con.execute("update split_interactions set split = 'test' where setting = 'clean' and split = 'train' and item_id % 2 = 0")
    result = quality.validate(db, "split_interactions", dataset=DS, setting="clean")
    assert result.success, result.message()
    assert len(result.skipped) == 3
    with duckdb.connect(str(db)) as con:
        con.execute("insert into split_interactions select dataset, setting, 'valid', user_id, item_id, ts, weight "
                    "from split_interactions where setting = 'clean' and split = 'train' limit 1")
    assert [f.index for f in quality.validate(db, "split_interactions", dataset=DS, setting="clean").failures] == [4]


def test_fewer_than_k_rows_only_when_fewer_unseen_items(base_db):
    with duckdb.connect(str(base_db), read_only=True) as con:
        short = con.execute(f"select count(*) from (select user_key from recommendations where run_id = '{RUN}' "
                            f"group by 1 having count(*) < {K})").fetchone()[0]
    assert short > 0  # the tiny catalogue leaves some heavy users fewer than K unseen items, and that passes
    assert quality.validate(base_db, "recommendations", run_id=RUN, k=K).success


def test_a_refresh_of_the_published_run_is_gated_before_consumers_see_it(db):
    with warehouse.connect(db) as con:
        warehouse.publish(con, DS, RUN)
        good = con.execute("select user_key, item_key, rank from latest_recommendations order by 1, 3").fetchall()
        bad = _popularity_recommendations(con)
        bad.loc[bad["rank"] == 3, "score"] = float("inf")
        warehouse.write_recommendations(con, RUN, DS, bad)
    with pytest.raises(QualityError, match="score_is_finite"):
        quality.gate_recommendations(db, RUN, K)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("select user_key, item_key, rank from latest_recommendations order by 1, 3").fetchall() == good
        assert con.execute("select count(*) from latest_recommendations where isinf(score)").fetchone()[0] == 0
        # the run keeps serving (not rejected, so the default model stays it) and the refresh stays pending
        assert con.execute("select status from model_runs where run_id = ?", [RUN]).fetchone()[0] == "published"
        assert con.execute("select count(*) from recommendations_pending").fetchone()[0] == len(bad)
    # the served list is what a report checks; the failed refresh is what the gate checks
    assert quality.validate(db, "recommendations", run_id=RUN, k=K, list="served").success
    assert not quality.validate(db, "recommendations", run_id=RUN, k=K).success
    with warehouse.connect(db, read_only=True) as con:
        assert quality.scopes(con)["recommendations"] == [{"run_id": RUN, "list": "served"}]
    with pytest.raises(ValueError, match="list must be one of \\['candidate', 'served'\\], got 'old'"):
        quality.validate(db, "recommendations", run_id=RUN, list="old")


def test_gate_marks_rejected_run(db):
    with duckdb.connect(str(db)) as con:
        con.execute(f"update recommendations set score = 'nan' where run_id = '{RUN}' and rank = 3")
    with pytest.raises(QualityError, match="score_is_finite"):
        quality.gate_recommendations(db, RUN, K)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("select status from model_runs where run_id = ?", [RUN]).fetchone()[0] == "rejected"


def test_scope_errors_are_one_line(base_db):
    with pytest.raises(ValueError, match="unknown quality suite"):
        quality.validate(base_db, "nope", dataset=DS)
    with pytest.raises(ValueError, match="missing \\['run_id'\\]"):
        quality.validate(base_db, "recommendations")
    with pytest.raises(ValueError, match="no split setting 'absent'"):
        quality.validate(base_db, "split_interactions", dataset=DS, setting="absent")
    with pytest.raises(ValueError, match="no model run 'absent'"):
        quality.validate(base_db, "recommendations", run_id="absent")


def test_suites_are_valid_ge_suites_with_named_checks():
    for suite in quality.SUITES:
        doc = quality.suite_document(suite)
        ge = quality.ge_suite(suite, {"method": "global"})
        assert len(ge.expectations) == len(doc["expectations"])
        assert all(x["meta"]["check"] for x in doc["expectations"])


def test_report_lists_every_suite_and_reads_offline(db, tmp_path):
    with warehouse.connect(db) as con:
        warehouse.publish(con, DS, RUN)
    out = tmp_path / "reports"
    report = quality.build_report(db, out, LOOSE)
    assert report.success and report.summary.exists() and report.data_docs.exists()
    assert {r.suite for r in report.results} == set(quality.SUITES)
    text = report.summary.read_text()
    for suite in quality.SUITES:
        assert text.count(f"<td>{suite}</td>") >= 1
    assert "FAILED" not in text and text.count("passed</span>") == len(report.results)
    lowered = text.lower()
    assert "http://" not in lowered and "https://" not in lowered and "<script" not in lowered and "<link" not in lowered
    assert "data_docs/index.html" in text

    with duckdb.connect(str(db)) as con:
        con.execute("update raw_interactions set rating = 7 where line_no = 5")
    again = quality.build_report(db, out, LOOSE, data_docs=False)
    assert not again.success and "FAILED" in again.summary.read_text()


def test_cli_quality_report(db, tmp_path):
    from typer.testing import CliRunner

    from flows.cli import app

    out = tmp_path / "rep"
    result = CliRunner().invoke(app, ["quality", "report", "--warehouse", str(db), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"summary: {out.resolve() / 'summary.html'}" in result.output and (out / "summary.html").exists()
    assert "not run: recommendations" in result.output  # nothing published in this warehouse
    missing = CliRunner().invoke(app, ["quality", "report", "--warehouse", str(tmp_path / "none.duckdb")])
    assert missing.exit_code == 1 and "no such warehouse" in missing.output
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    blocked = CliRunner().invoke(app, ["quality", "report", "--warehouse", str(db), "--out", str(a_file)])
    assert blocked.exit_code == 1 and blocked.output.startswith("error: ") and "a-file" in blocked.output
    assert len(blocked.output.strip().splitlines()) == 1, blocked.output
    assert "it is a file, not a folder" in blocked.output
    not_a_db = CliRunner().invoke(app, ["quality", "report", "--warehouse", str(a_file), "--out", str(tmp_path / "q")])
    assert not_a_db.exit_code == 1 and "not a DuckDB database file" in not_a_db.output
    assert not (tmp_path / "q").exists()  # no empty report folder left behind


# ----------------------------------------------------------------------------- the pipeline's gates


@pytest.fixture(scope="module")
def harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.mark.slow  # Prefect's test server and one tiny training: about 40 s
def test_corrupted_ingest_stops_pipeline_and_keeps_published(harness, tmp_path):
    from typer.testing import CliRunner

    from diffrec_core.config import RunConfig, with_training
    from flows.cli import app
    from flows.pipeline import PipelineParams, pipeline

    fast = with_training(RunConfig.model_validate({"model": {"name": "diffrec", "params": {
        "diffusion": {"steps": 5, "noise_scale": 0.01, "noise_min": 0.001, "noise_max": 0.01},
        "denoiser": {"hidden_dims": [32], "emb_size": 8}}}}), epochs=2, eval_every=1, batch_size=64)
    w = tmp_path / "w.duckdb"
    good = pipeline(PipelineParams(warehouse=str(w), artifacts_dir=str(tmp_path / "art"), synthetic=TINY, run=fast))
    assert good.published and [c["suite"] for c in good.quality] == ["raw_interactions", "split_interactions", "recommendations"]
    assert all(c["success"] for c in good.quality)
    with duckdb.connect(str(w), read_only=True) as con:
        before = con.execute("select * from latest_recommendations order by all").fetchall()
    assert before

    bad = tmp_path / "bad.csv"
    bad.write_text("user,item,rating,timestamp\n1,2,7,2023-03-01T10:00:00\n3,4,4,2023-03-02T10:00:00\n")
    config = tmp_path / "fast.json"
    config.write_text(json.dumps(fast.model_dump(mode="json")))
    result = CliRunner().invoke(app, ["pipeline", "--input", str(bad), "--dataset", "builtin", "--warehouse", str(w),
                                      "--artifacts", str(tmp_path / "art"), "--config", str(config)])
    assert result.exit_code == 1, result.output
    error = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(error) == 1
    assert "raw_interactions" in error[0] and "expect_column_values_to_be_between(column=rating" in error[0]
    assert "rating: 7.0" in error[0] and "user_key: '1'" in error[0]
    with duckdb.connect(str(w), read_only=True) as con:
        assert con.execute("select * from latest_recommendations order by all").fetchall() == before
        assert con.execute("select count(*) from model_runs").fetchone()[0] == 1  # nothing trained after the failed gate


@pytest.mark.slow  # trains a tiny LightGCN: about 15 s on 2 busy cores
def test_stored_lightgcn_embeddings_and_clusters_pass(tmp_path):
    """The embed and cluster steps' own output passes the suites the pipeline's L-variant gates run."""
    from diffrec_core import embeddings
    from diffrec_core.config import ModelConfig, RunConfig, TrainingConfig
    from tasks import quality as gates

    path = str(tmp_path / "w.duckdb")
    with warehouse.connect(path) as con:
        ingest_synthetic(con, DS, TINY)
        stage(con, DS)
        make_split(con, DS, SplitConfig())
    gcn = RunConfig(model=ModelConfig(name="lightgcn", params={"emb_size": 8, "n_layers": 2}),
                    training=TrainingConfig(epochs=2, batch_size=64, eval_every=1, seed=1))
    run = embeddings.embed(path, DS, "clean", gcn).embedding_run
    embeddings.cluster(path, run, DS, [2, 3], seed=4)
    assert gates.validate_embeddings.fn(path, DS, run, QualityConfig())["success"]
    summary = gates.validate_clusters.fn(path, DS, run, 3, QualityConfig())
    assert summary["success"] and summary["suite"] == "item_clusters"
    with pytest.raises(ValueError, match="pass n_clusters"):
        quality.validate(path, "item_clusters", dataset=DS, embedding_run=run)
    with duckdb.connect(path) as con:
        con.execute("update item_embeddings set vector = list_transform(vector, lambda x: x / 0) where item_id = 0")
    with pytest.raises(QualityError, match="non_finite_values"):
        gates.validate_embeddings.fn(path, DS, run, QualityConfig())
