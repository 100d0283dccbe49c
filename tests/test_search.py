"""Hyperparameter grids and the search flow."""

import json
from pathlib import Path

import duckdb
import pytest

from diffrec_core.search import apply_overrides, config_key, load_grid, sample_trials
from diffrec_core.config import RunConfig
from diffrec_core.models import registry

ROOT = Path(__file__).resolve().parents[1]


def write_grid(tmp_path, grid, base_training=None):
    path = tmp_path / "grid.yaml"
    path.write_text(json.dumps({"model": "diffrec", "grid": grid}))
    return path


def test_grid_expands_product_and_drops_invalid_combinations(tmp_path):
    path = write_grid(tmp_path, {
        "training.lr": [0.001, 0.01],
        "model.params.diffusion.noise_min": [0.001, 0.02],
        "model.params.diffusion.noise_max": [0.01, 0.05],
    })
    trials = load_grid(path).trials()
    # noise_min 0.02 >= noise_max 0.01 is refused by the validator: 2 x 3 valid trials
    assert len(trials) == 6
    assert {t.training.lr for t in trials} == {0.001, 0.01}
    assert len({config_key(t) for t in trials}) == 6
    pairs = {(t.model.params["diffusion"]["noise_min"], t.model.params["diffusion"]["noise_max"]) for t in trials}
    assert pairs == {(0.001, 0.01), (0.001, 0.05), (0.02, 0.05)}


def test_bad_grids_name_the_file(tmp_path):
    bad = tmp_path / "g.yaml"
    bad.write_text("model: diffrec\ngrid: {}\n")
    with pytest.raises(ValueError, match="g.yaml"):
        load_grid(bad)
    path = write_grid(tmp_path, {"training.lr": [-1.0]})
    with pytest.raises(ValueError, match="grid.yaml"):
        load_grid(path)


@pytest.mark.parametrize("text,expected", [
    # a value no combination can use is an error, not a quietly smaller search
    ('model: diffrec\ngrid:\n  training.lr: [0.001, "abc", -1]\n', "grid.training.lr value 'abc' is in no valid configuration"),
    ("model: diffrec\ngrid:\n  model.params.denoiser.emb_size: [8, -4]\n", "grid.model.params.denoiser.emb_size value -4"),
    ("model: diffrec\ngrid:\n  model.params.bogus: [1]\n", "bogus: Extra inputs are not permitted"),
    ("model: diffrec\nbse: ml-1m_clean\ngrid:\n  training.lr: [0.001]\n", "unknown key 'bse'"),
    ("model: diffrec\nbase: nosuch\ngrid:\n  training.lr: [0.001]\n", "base 'nosuch' has no shipped configs; known: default, ml-1m_clean"),
    ("model: [diffrec]\ngrid:\n  training.lr: [0.001]\n", "model must be a name"),
    ("model: nosuch\ngrid:\n  training.lr: [0.001]\n", "unknown model 'nosuch'; available: "),
    ("model: diffrec\ngrid:\n  1: [1]\n", "grid key 1 must be a dotted path"),
    ("model: diffrec\ngrid:\n  training.lr: [0.001]\n  training.lr: [0.01]\n", "key 'training.lr' is given twice \\(line 4\\)"),
])
def test_bad_grids_say_which_key_or_value(tmp_path, text, expected):
    path = tmp_path / "g.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=f"^{tmp_path / 'g.yaml'}: .*{expected}"):
        load_grid(path)


def test_unreadable_config_and_grid_files_name_the_file(tmp_path):
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"\xff\xfe")
    for read, what in ((RunConfig.from_file, "config"), (load_grid, "grid")):
        with pytest.raises(ValueError, match=f"b.yaml: cannot read {what}: 'utf-8' codec"):
            read(binary)
    twice = tmp_path / "c.yaml"
    twice.write_text("model:\n  name: diffrec\n  name: mf\n")  # the last one would win unseen
    with pytest.raises(ValueError, match="c.yaml: cannot read config: key 'name' is given twice"):
        RunConfig.from_file(twice)


@pytest.mark.parametrize("training, expected", [
    ("epochs: true", "training.epochs: Input should be a valid integer \\(got True\\)"),
    ("lr: '0.001'", "training.lr: Input should be a valid number \\(got '0.001'\\)"),
    ("patience: 2.5", "training.patience: Input should be a valid integer \\(got 2.5\\)"),
])
def test_a_config_value_of_the_wrong_type_is_refused_not_converted(tmp_path, training, expected):
    path = tmp_path / "c.yaml"
    path.write_text(f"model: {{name: diffrec}}\ntraining:\n  {training}\n")
    with pytest.raises(ValueError, match=f"c.yaml: invalid config: {expected}"):
        RunConfig.from_file(path)
    path.write_text("model: {name: diffrec, params: {diffusion: {steps: false}}}\n")
    with pytest.raises(ValueError, match="diffusion.steps: Input should be a valid integer"):
        registry.validate_params(RunConfig.from_file(path).model)


def test_a_stored_config_with_an_exponent_string_still_loads(tmp_path):
    # an earlier version read `noise_scale: 1e-4` from YAML as the string '1e-4' and stored it so in model_runs
    # and checkpoints: those runs must still evaluate and serve, though a config file may not say so any more
    stored = {"model": {"name": "diffrec", "params": {"diffusion": {"noise_scale": "1e-4", "noise_min": "5e-4"}}}}
    run = RunConfig.model_validate(stored)
    assert registry.validate_params(run.model).diffusion.noise_scale == 0.0001
    path = tmp_path / "c.json"
    path.write_text(json.dumps(stored))
    with pytest.raises(ValueError, match="c.json: model 'diffrec': invalid params: diffusion.noise_scale: Input should be a valid number"):
        RunConfig.from_file(path)


def test_exponent_floats_read_as_floats_and_an_int_is_a_valid_float(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("training: {lr: 1e-3, weight_decay: 0, min_lr: 5E-6}\n")  # PyYAML alone reads 1e-3 as a string
    run = RunConfig.from_file(path)
    assert (run.training.lr, run.training.weight_decay, run.training.min_lr) == (0.001, 0.0, 5e-6)
    assert isinstance(run.training.weight_decay, float)

def test_overrides_and_sampling_are_deterministic():
    run = apply_overrides(RunConfig(), {"model.params.diffusion.steps": 7})
    assert run.model.params["diffusion"]["steps"] == 7
    trials = [apply_overrides(RunConfig(), {"training.seed": i}) for i in range(10)]
    assert sample_trials(trials, 3, 1) == sample_trials(trials, 3, 1)
    assert len(sample_trials(trials, 30, 1)) == 10


def tiny_warehouse(path, seed=1, n_users=60, n_items=30, n_interactions=1000, split=True):
    """Ingest (one more batch of) a tiny built-in log as dataset 'tiny', stage it and, by default, split it."""
    from diffrec_core import splits, warehouse
    from diffrec_core.ingest import ingest_synthetic
    from diffrec_core.ingest.synthetic import SyntheticConfig

    with warehouse.connect(path) as con:
        ingest_synthetic(con, "tiny", SyntheticConfig(n_users=n_users, n_items=n_items, n_interactions=n_interactions, seed=seed))
        splits.stage(con, "tiny")
        if split:
            splits.make_split(con, "tiny")
    return str(path)


@pytest.fixture(scope="module")
def harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def test_search_flow_records_trials_skips_finished_and_selects_on_validation(harness, tmp_path):
    from flows.hpo import HpoParams, hpo

    w = tiny_warehouse(tmp_path / "w.duckdb", n_users=120, n_items=60, n_interactions=4000)
    grid = tmp_path / "grid.yaml"
    grid.write_text(json.dumps({"model": "diffrec", "grid": {
        "training.epochs": [2], "training.batch_size": [64], "training.lr": [0.0001, 0.003],
        "model.params.diffusion.steps": [5], "model.params.denoiser.hidden_dims": [[32]],
    }}))
    params = HpoParams(warehouse=w, artifacts_dir=str(tmp_path / "art"), dataset="tiny", grid=str(grid))
    first = hpo(params)
    assert first.trials_run == 2
    with duckdb.connect(w, read_only=True) as con:
        rows = con.execute("select run_id, metrics from model_runs where dataset = 'tiny'").fetchall()
    valid = {run_id: json.loads(m)["valid"]["recall@20"] for run_id, m in rows}
    assert len(valid) == 2 and first.best_run_id == max(valid, key=valid.get)
    assert "test" in first.metrics
    second = hpo(params)
    assert second.trials_run == 0 and second.best_run_id == first.best_run_id


def test_search_without_data_names_the_cause_and_creates_nothing(harness, tmp_path):
    from flows.hpo import HpoParams, hpo

    grid = write_grid(tmp_path, {"training.epochs": [1], "training.lr": [0.0001, 0.003]})
    w = tmp_path / "w.duckdb"
    params = HpoParams(warehouse=str(w), artifacts_dir=str(tmp_path / "art"), dataset="tiny", grid=str(grid))
    with pytest.raises(FileNotFoundError, match="no such warehouse"):
        hpo(params)
    assert not w.exists()
    tiny_warehouse(w, split=False)
    with pytest.raises(ValueError, match="split 'clean' of dataset 'tiny' has no train rows"):
        hpo(params)
    with duckdb.connect(str(w), read_only=True) as con:
        assert con.execute("select count(*) from model_runs").fetchall() == [(0,)]


def test_search_selects_among_the_trials_that_trained_and_reports_the_others(harness, tmp_path, monkeypatch):
    from diffrec_core import runs
    from flows.hpo import HpoParams, hpo

    w = tiny_warehouse(tmp_path / "w.duckdb")
    train_run = runs.train_run

    def flaky(warehouse_path, dataset, setting, run, *args, **kwargs):
        if run.training.lr == 0.003:
            raise RuntimeError("CUDA out of memory")
        return train_run(warehouse_path, dataset, setting, run, *args, **kwargs)

    monkeypatch.setattr(runs, "train_run", flaky)
    grid = write_grid(tmp_path, {"training.epochs": [1], "training.lr": [0.0001, 0.003],
                                 "model.params.denoiser.hidden_dims": [[16]]})
    params = HpoParams(warehouse=w, artifacts_dir=str(tmp_path / "art"), dataset="tiny", grid=str(grid))
    result = hpo(params)
    assert result.trials_run == 1 and result.failures == ["CUDA out of memory"]
    with duckdb.connect(w, read_only=True) as con:
        (config,) = con.execute("select config from model_runs where run_id = ?", [result.best_run_id]).fetchone()
    assert json.loads(config)["training"]["lr"] == 0.0001

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(runs, "train_run", broken)
    again = hpo(params)  # the failed trial fails again: the best finished trial still stands, the failure is listed
    assert (again.best_run_id, again.trials_run, again.failures) == (result.best_run_id, 0, ["disk full"])
    fresh = HpoParams(warehouse=tiny_warehouse(tmp_path / "fresh.duckdb"), artifacts_dir=str(tmp_path / "art"),
                      dataset="tiny", grid=str(grid))
    with pytest.raises(RuntimeError, match="disk full") as raised:  # no trial of the grid trained: their error, not a missing best run
        hpo(fresh)
    assert "no finished trial" not in repr(raised.value.__context__)  # raised as itself, not inside another error


def test_search_reruns_its_trials_when_the_train_split_changes(harness, tmp_path):
    from flows.hpo import HpoParams, hpo

    w = tiny_warehouse(tmp_path / "w.duckdb")
    grid = write_grid(tmp_path, {"training.epochs": [1], "training.lr": [0.001], "model.params.denoiser.hidden_dims": [[16]]})
    params = HpoParams(warehouse=w, artifacts_dir=str(tmp_path / "art"), dataset="tiny", grid=str(grid))
    first = hpo(params)
    assert first.trials_run == 1 and hpo(params).trials_run == 0  # same data: finished
    tiny_warehouse(w, seed=2)  # new interactions arrive: another train split
    again = hpo(params)
    assert again.trials_run == 1 and again.best_run_id != first.best_run_id


def test_variant_grid_starts_from_its_base_models_config(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(json.dumps({"model": "tdiffrec", "base": "ml-1m_noisy", "grid": {"training.lr": [0.001]}}))
    grid = load_grid(path)
    assert grid.base.model.name == "tdiffrec"
    assert grid.base.model.params["diffusion"]["steps"] == 5  # the shipped ml-1m_noisy DiffRec schedule


@pytest.mark.parametrize("path", sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "configs" / "grids").rglob("*.yaml")))
def test_shipped_grids_load_and_vary_their_base(path):
    """Every committed grid file validates, and each of its axes changes the base config somewhere."""
    grid = load_grid(ROOT / path)
    trials = grid.trials()
    assert trials, f"{path}: no valid trial"
    assert len({config_key(t) for t in trials}) == len(trials)
    assert any(config_key(t) != config_key(grid.base) for t in trials)
