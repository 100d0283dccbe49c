"""diffrec report compare: a tiny warehouse and benchmark folder in, a table and a chart out."""

import json
from datetime import datetime

import pytest

from typer.testing import CliRunner

from diffrec_core import warehouse
from diffrec_core.report import compare
from flows.cli import app

runner = CliRunner()


def _metrics(r20, valid=0.1, **extra):
    test = {"recall@10": r20 / 2, "recall@20": r20, "ndcg@10": r20 / 3, "ndcg@20": r20 / 2.5, "users": 10}
    return {"valid": {"recall@20": valid}, "test": test, "params": 1234, "seconds_total": 5.5, **extra}


def _warehouse(path):
    runs = [
        ("ease-1", "ease", _metrics(0.18, peak_rss_mb=700.0), "evaluated"),
        ("vae-1", "multivae", _metrics(0.30, valid=0.05), "evaluated"),  # better test, worse valid: not chosen
        ("vae-2", "multivae", _metrics(0.17, valid=0.09), "published"),
        ("mf-1", "mf", {"valid": {"recall@20": 0.2}}, "trained"),  # no test metrics: left out
        ("other-1", "cdae", _metrics(0.5), "evaluated"),
    ]
    with warehouse.connect(path) as con:
        for run_id, model, metrics, status in runs:
            dataset = "other" if run_id == "other-1" else "tiny"
            warehouse.record_model_run(con, run_id=run_id, dataset=dataset, setting="clean", model=model, config={},
                                       metrics=metrics, status=status, started_at=datetime(2026, 1, 1), finished_at=datetime(2026, 1, 1))


def test_report_compare_from_warehouse_and_bench(tmp_path):
    db = tmp_path / "w.duckdb"
    _warehouse(db)
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "tiny-mf.json").write_text(json.dumps({
        "dataset": "tiny", "model": "mf", "seeds": [1, 2, 3],
        "mean": {"recall@10": 0.05, "recall@20": 0.1, "ndcg@10": 0.04, "ndcg@20": 0.05},
        "std": {"recall@10": 0.001, "recall@20": 0.002, "ndcg@10": 0.001, "ndcg@20": 0.001},
        "per_seed": [{"seconds_total": 10.0}, {"seconds_total": 20.0}, {"seconds_total": 30.0}],
        "params": 99, "peak_gpu_memory_mb": 512.0, "device": "gpu",
    }))
    (bench / "elsewhere-mf.json").write_text(json.dumps({"dataset": "elsewhere", "model": "mf", "mean": {}}))
    out = tmp_path / "reports"
    result = runner.invoke(app, ["report", "compare", "--dataset", "tiny", "--warehouse", str(db), "--out", str(out), "--from-bench", str(bench)])
    assert result.exit_code == 0, result.output
    assert "3 models compared" in result.output
    text = (out / "compare-tiny.md").read_text()
    table = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [line.split("|")[1].strip() for line in table] == ["EASE", "MultiVAE", "MF"]
    assert "run vae-2" in text and "vae-1" not in text and "CDAE" not in text
    assert "**0.1800**" in text  # best Recall@20 in bold
    assert "0.1000 ± 0.0020" in text and "20.0" in text and "512 (GPU)" in text and "700 (RSS)" in text
    assert (out / "compare-tiny.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_compare_without_runs_fails_and_writes_nothing(tmp_path):
    db = tmp_path / "w.duckdb"
    _warehouse(db)
    out = tmp_path / "reports"
    result = runner.invoke(app, ["report", "compare", "--dataset", "nope", "--warehouse", str(db), "--out", str(out)])
    assert result.exit_code == 1
    assert "no evaluated model runs for dataset 'nope'" in result.output
    assert not out.exists() or not any(out.iterdir())
    result = runner.invoke(app, ["report", "compare", "--dataset", "tiny", "--setting", "nosuch", "--warehouse", str(db), "--out", str(out)])
    assert result.exit_code == 1
    assert "no evaluated model runs for dataset 'tiny', setting 'nosuch', in " in result.output
    assert not out.exists() or not any(out.iterdir())


def test_report_compare_rejects_a_broken_results_file(tmp_path):
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "x.json").write_text("{not json")
    result = runner.invoke(app, ["report", "compare", "--dataset", "tiny", "--warehouse", str(tmp_path / "absent.duckdb"),
                                 "--from-bench", str(bench), "--out", str(tmp_path / "r")])
    assert result.exit_code == 1 and "x.json: not a readable results file" in result.output


def test_compare_needs_a_source(tmp_path):
    import pytest

    with pytest.raises(ValueError, match="nothing to compare"):
        compare("tiny", tmp_path)


def test_bench_rows_one_per_model_chosen_on_validation_among_most_seeds(tmp_path):
    from diffrec_core.report import rows_from_bench

    def result(name, r20, valid, seeds):
        (tmp_path / name).write_text(json.dumps({
            "dataset": "tiny", "model": "diffrec", "seeds": list(range(seeds)), "valid_mean": {"recall@20": valid},
            "mean": {"recall@10": r20 / 2, "recall@20": r20, "ndcg@10": r20 / 3, "ndcg@20": r20 / 2.5}}))

    result("a.json", 0.30, 0.10, 3)   # best test, worse validation: not chosen
    result("b.json", 0.20, 0.12, 3)   # chosen
    result("c.json", 0.40, 0.20, 1)   # best validation but a single seed: fewer seeds lose
    rows = rows_from_bench(tmp_path, "tiny")
    assert [(r.model, r.source) for r in rows] == [("diffrec", "b.json")]


GOOD = {"dataset": "tiny", "model": "diffrec", "seeds": [1, 2],
        "mean": {"recall@10": 0.1, "recall@20": 0.2, "ndcg@10": 0.05, "ndcg@20": 0.08}}


def _with(key, value):
    return {**GOOD, key: value}


@pytest.mark.parametrize("content,expected", [
    (_with("mean", {**GOOD["mean"], "recall@10": float("nan")}), "mean.recall@10: Input should be a finite number"),
    (_with("mean", {**GOOD["mean"], "recall@10": None}), "mean.recall@10: Input should be a valid number"),
    (_with("mean", {"recall@10": 0.1}), "mean: lacks recall@20, ndcg@10, ndcg@20"),
    (_with("per_seed", [1, 2]), "per_seed.0: Input should be a valid dictionary"),
    (_with("std", [1]), "std: Input should be a valid dictionary"),
    (_with("seeds", 3), "seeds: Input should be a valid list"),
    (_with("model", ["x"]), "model: Input should be a valid string"),
    (_with("peak_rss_mb", "lots"), "peak_rss_mb: Input should be a valid number"),
    ({k: v for k, v in GOOD.items() if k != "model"}, "model: Field required"),
])
def test_a_malformed_results_file_is_one_error_naming_it_and_writes_nothing(tmp_path, content, expected):
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "r.json").write_text(json.dumps(content))  # json.dumps writes NaN as NaN, as Python's json reads it
    (bench / "other.json").write_text(json.dumps({"dataset": "tiny", "rows": []}))  # another benchmark's: skipped
    out = tmp_path / "out"
    with pytest.raises(ValueError) as err:
        compare("tiny", out, bench_dir=bench)
    message = str(err.value)
    assert message.startswith(f"{bench / 'r.json'}: not a bench/accuracy.py results file: ") and expected in message, message
    assert not out.exists()


def test_a_folder_in_the_way_of_one_report_file_stops_both_before_writing(tmp_path):
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "r.json").write_text(json.dumps(GOOD))
    out = tmp_path / "out"
    (out / "compare-tiny.md").mkdir(parents=True)
    with pytest.raises(ValueError, match="compare-tiny.md: it is a folder"):
        compare("tiny", out, bench_dir=bench)
    assert not (out / "compare-tiny.png").exists()
    md, png, rows = compare("tiny", tmp_path / "fine", bench_dir=bench)
    assert md.is_file() and png.is_file() and [r.seeds for r in rows] == [2]
