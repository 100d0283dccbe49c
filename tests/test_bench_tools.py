"""The benchmark helpers that combine runs: settings results merged across machines, suite plans."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from diffrec_core.config import RunConfig
from diffrec_core.models.registry import validate_params

ROOT = Path(__file__).resolve().parents[1]


def _load(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


settings = _load("settings")
suite = _load("suite")


def _run(r20, seconds=10.0, **extra):
    metrics = {"recall@10": r20 / 2, "recall@20": r20, "ndcg@10": r20 / 3, "ndcg@20": r20 / 2.5}
    return {"valid": metrics, "test": metrics, "test_users": 5, "best_epoch": 3, "epochs_run": 5, "seconds": seconds, **extra}


def _entry(models, runs, device="cpu", threads=1, epochs=60):
    return {"dataset": "toy", "method": "per_user", "ratios": [0.1], "models": models, "skipped_models": [],
            "training": {"epochs": epochs, "patience": 8, "seed": 1, "threads": threads, "device": device},
            "grids": {}, "w_min_grid": [0.1], "splits": {"clean": {"train": 7, "valid": 1, "test": 2}, "noisy-random-0.1": {"train": 8, "valid": 1, "test": 2}},
            "grid": {m: [{"overrides": {}, **runs[m]["clean"]}] for m in models},
            "chosen": {m: {} for m in models},
            "runs": {s: {m: runs[m][s] for m in models} for s in ("clean", "noisy-random-0.1")},
            "device": device}


def test_settings_merge_adds_models_run_elsewhere_and_keeps_the_rest(tmp_path):
    here = tmp_path / "s-toy.json"
    here.write_text(json.dumps(_entry(["diffrec"], {"diffrec": {"clean": _run(0.2), "noisy-random-0.1": _run(0.18)}})))
    gpu = _entry(["lightgcn"], {"lightgcn": {"clean": _run(0.25, 60.0), "noisy-random-0.1": _run(0.22, 60.0)}},
                 device="NVIDIA H200", threads=4)
    (tmp_path / "gpu-toy.json").write_text(json.dumps(gpu))

    settings.merge([tmp_path / "gpu-toy.json"], here)
    merged = json.loads(here.read_text())
    assert merged["models"] == ["diffrec", "lightgcn"]
    assert merged["runs"]["noisy-random-0.1"]["diffrec"]["test"]["recall@20"] == 0.18
    assert merged["runs"]["noisy-random-0.1"]["lightgcn"]["test"]["recall@20"] == 0.22
    assert merged["runs"]["noisy-random-0.1"]["lightgcn"]["device"] == "NVIDIA H200"
    # training time is told per device: CPU runs untagged (older files), GPU runs tagged by the merge
    text = settings._training_time(merged)
    assert "2 min on NVIDIA H200" in text and "on the shared 2-core CPU machine" in text
    table = settings.markdown({"toy": merged})
    assert "| noisy-random-0.1 | lightgcn | 0.1100 | 0.2200 |" in table


def test_settings_merge_refuses_another_protocol(tmp_path):
    here = tmp_path / "s-toy.json"
    here.write_text(json.dumps(_entry(["diffrec"], {"diffrec": {"clean": _run(0.2), "noisy-random-0.1": _run(0.18)}})))
    other = _entry(["mf"], {"mf": {"clean": _run(0.1), "noisy-random-0.1": _run(0.1)}}, epochs=100)
    (tmp_path / "o-toy.json").write_text(json.dumps(other))
    with pytest.raises(SystemExit, match="options or clean split differ"):
        settings.merge([tmp_path / "o-toy.json"], here)
    assert json.loads(here.read_text())["models"] == ["diffrec"]  # untouched


def test_suite_plan_checks_and_dotted_overrides(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"groups": [{"name": "a", "splits": "x", "model": "mf", "seeds": [1]},
                                              {"name": "a", "splits": "x", "model": "mf", "seeds": [2]}]}))
    with pytest.raises(SystemExit, match="'a' is used twice"):
        suite.load_plan(bad)
    bad.write_text(yaml.safe_dump({"groups": [{"name": "a", "model": "mf"}]}))
    with pytest.raises(SystemExit, match="group 0 lacks splits, seeds"):
        suite.load_plan(bad)

    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump({"model": {"name": "lightgcn", "params": {"reg": 0.0001}}, "training": {"lr": 0.005}}))
    out = suite.write_config(base, {"model.params.reg": 0.001, "training.ema_decay": 0.99}, tmp_path / "c" / "g.yaml")
    cfg = yaml.safe_load(out.read_text())
    assert cfg["model"]["params"]["reg"] == 0.001 and cfg["training"] == {"lr": 0.005, "ema_decay": 0.99}
    with pytest.raises(SystemExit, match="'name' is not a mapping"):
        suite.write_config(base, {"model.name.x": 1}, tmp_path / "c" / "h.yaml")
    # the plan's epoch cap, unless the group's own config asks for fewer epochs
    assert suite.run_epochs(out, 400) == 400
    short = suite.write_config(base, {"training.epochs": 80}, tmp_path / "c" / "s.yaml")
    assert suite.run_epochs(short, 400) == 80 and suite.run_epochs(short, 50) == 50


def test_suite_item_embeddings_come_from_the_splits_folder_or_the_suite_output(tmp_path):
    splits, out = tmp_path / "ml-1m_clean", tmp_path / "OUT-dir"
    assert suite.item_emb_path("item_emb.npy", splits, out) == splits / "item_emb.npy"
    # what a save_item_emb group of the same suite writes
    assert suite.item_emb_path("OUT/emb/lightgcn-s2023.npy", splits, out) == out / "emb" / "lightgcn-s2023.npy"


def test_a_variant_without_a_config_file_starts_from_its_base_models(tmp_path):
    lt = suite.base_config("ml-1m_clean", "ltdiffrec")
    shipped = yaml.safe_load((ROOT / "configs" / "ml-1m_clean" / "ldiffrec.yaml").read_text())
    assert lt["model"]["name"] == "ltdiffrec"
    assert lt["model"]["params"]["encoder_dims"] == shipped["model"]["params"]["encoder_dims"]
    assert lt["model"]["params"]["kl_max"] == shipped["model"]["params"]["kl_max"]
    assert suite.base_config("ml-1m_clean", "ldiffrec") == shipped  # a file of its own is taken as written
    out = suite.write_config(lt, {"model.params.kl_max": 0.5}, tmp_path / "lt.yaml")
    assert yaml.safe_load(out.read_text())["model"]["params"]["kl_max"] == 0.5
    assert lt["model"]["params"]["kl_max"] == shipped["model"]["params"]["kl_max"]  # the base is not changed


def test_shipped_plans_load(tmp_path):
    plans = sorted((ROOT / "bench" / "plans").glob("*.yaml"))
    assert plans
    for path in plans:
        plan = suite.load_plan(path)
        for g in plan["groups"]:
            out = suite.write_config(suite.base_config(g["splits"], g["model"]), g.get("overrides", {}), tmp_path / "g.yaml")
            run = RunConfig.from_file(out)  # overrides that name no field are refused here
            assert run.model.name == g["model"], (path, g["name"])
            validate_params(run.model)


def test_settings_plan_gives_each_log_its_options(tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({"datasets": [
        {"data": "a.csv", "patience": 8},
        {"data": "b.csv", "eval_every": 5, "ratios": [0.1, 0.5], "w_min_grid": [0.1],
         "grid": {"diffrec": {"model.params.diffusion.noise_scale": [0.01]}}},
    ]}))
    defaults = {"ratios": ["0.1", "0.2"], "max_epochs": 60, "patience": 15, "eval_every": None, "seed": 7,
                "threads": 1, "w_min_grid": ["0.1", "0.3"]}
    a, b = settings.plan_options(plan, defaults, "cpu")
    assert a.training == {"epochs": 60, "patience": 8, "seed": 7, "threads": 1, "device": "cpu"}
    assert a.ratios == (0.1, 0.2) and a.w_mins == [0.1, 0.3]
    assert a.grids["diffrec"] == settings.GRIDS["diffrec"]
    assert b.training["eval_every"] == 5 and b.training["patience"] == 15 and b.ratios == (0.1, 0.5)
    assert b.grids["diffrec"]["model.params.diffusion.noise_scale"] == [0.01]
    assert b.grids["diffrec"]["model.params.diffusion.steps"] == settings.GRIDS["diffrec"]["model.params.diffusion.steps"]
    assert settings.GRIDS["diffrec"]["model.params.diffusion.noise_scale"] != [0.01]  # the module's grid is not changed

    plan.write_text(yaml.safe_dump({"datasets": [{"data": "a.csv", "epochs": 5}]}))
    with pytest.raises(SystemExit, match=r"datasets\[0\] .*\['epochs'\]"):
        settings.plan_options(plan, defaults, "cpu")


def test_shipped_settings_plan_matches_the_recorded_results():
    """The plan reproduces the protocol of bench/results/settings-*.json, so rerunning it resumes them."""
    defaults = {"ratios": [str(r) for r in settings.RATIOS], "max_epochs": 100, "patience": 10, "eval_every": None,
                "seed": 2023, "threads": 1, "w_min_grid": [str(w) for w in settings.W_MIN_GRID]}
    for o in settings.plan_options(ROOT / "bench" / "plans" / "settings" / "raw-logs.yaml", defaults, "cpu"):
        name = "ml-100k" if o.data.name == "u.data" else o.data.parent.name
        recorded = ROOT / "bench" / "results" / f"settings-{name}.json"
        if not recorded.is_file():
            continue
        entry = json.loads(recorded.read_text())
        options = {"method": "per_user", "ratios": sorted(o.ratios), "training": o.training}
        assert settings._protocol(entry) == settings._protocol(options), name
        assert entry["w_min_grid"] == o.w_mins and entry["ratios"] == sorted(o.ratios), name


def test_settings_rerun_retrains_a_variant_whose_base_changed(tmp_path, monkeypatch):
    """Resuming keeps what still holds; a variant whose base model's config changed is run again
    on every setting even though its own choice (w_min) did not change."""
    import numpy as np
    import pandas as pd
    import torch

    rng = np.random.default_rng(0)
    n = 3000
    log = tmp_path / "toy" / "ratings.csv"
    log.parent.mkdir()
    pd.DataFrame({"userId": rng.integers(0, 60, n), "movieId": rng.integers(0, 80, n),
                  "rating": rng.integers(1, 6, n).astype(float), "timestamp": rng.integers(10**9, 10**9 + 10**6, n)}
                 ).drop_duplicates(["userId", "movieId"]).to_csv(log, index=False)
    calls = []

    def fake_train(run, setting, data, clean_test, device, side_data):
        calls.append((run.model.name, setting))
        score = 0.1 + float(run.model.params.get("diffusion", {}).get("noise_scale", 0.0))
        metrics = {m: score for m in settings.METRICS}
        return {"valid": metrics, "test": metrics, "test_users": 1, "best_epoch": run.training.patience,
                "epochs_run": 1, "seconds": 0.0, "device": "cpu"}

    monkeypatch.setattr(settings, "train_and_test", fake_train)
    monkeypatch.setattr(settings, "render", lambda out: None)
    out = tmp_path / "res" / "s"
    out.parent.mkdir()

    def run(grid, ratios=(0.2,)):
        calls.clear()
        o = settings._options(log, ratios, 5, 3, None, 1, 1, "cpu", grid, [0.1])
        settings.run_dataset(o, out, ["diffrec", "tdiffrec"], [], "per_user", 1, torch.device("cpu"), tmp_path, True)
        return json.loads((tmp_path / "res" / "s-toy.json").read_text())

    first = run({"diffrec": {"model.params.diffusion.noise_scale": [0.01, 0.1]}})
    assert first["chosen"]["diffrec"] == {"model.params.diffusion.noise_scale": 0.1}
    assert ("tdiffrec", "noisy-natural") in calls

    again = run({"diffrec": {"model.params.diffusion.noise_scale": [0.01, 0.1]}})
    assert calls == []  # nothing changed: everything resumed
    assert again["runs"] == first["runs"]

    wider = run({"diffrec": {"model.params.diffusion.noise_scale": [0.01, 0.1]}}, ratios=(0.2, 0.4))
    assert sorted(calls) == [("diffrec", "noisy-random-0.4"), ("tdiffrec", "noisy-random-0.4")]  # only the new setting
    assert wider["runs"]["noisy-natural"] == first["runs"]["noisy-natural"] and wider["ratios"] == [0.2, 0.4]

    changed = run({"diffrec": {"model.params.diffusion.noise_scale": [0.01, 0.1], "training.patience": [7]}})
    assert changed["chosen"]["tdiffrec"] == first["chosen"]["tdiffrec"]  # same w_min, new base
    for setting in ("noisy-random-0.2", "noisy-natural"):
        assert ("tdiffrec", setting) in calls and ("diffrec", setting) in calls
        assert changed["runs"][setting]["tdiffrec"]["best_epoch"] == 7


def _toy_splits(tmp_path):
    """A small split in the authors' format: two taste groups over 40 items, 10 interactions per user (7/1/2)."""
    rng = np.random.default_rng(0)
    splits = tmp_path / "toy"
    splits.mkdir()
    rows = {"train_list": [], "valid_list": [], "test_list": []}
    for u in range(60):
        items = rng.choice(np.arange(20) + 20 * (u % 2), size=10, replace=False)
        for k, i in enumerate(items):
            rows["train_list" if k < 7 else "valid_list" if k < 8 else "test_list"].append([u, i])
    for name, r in rows.items():
        np.save(splits / f"{name}.npy", np.asarray(r, dtype=np.int64))
    return splits


def test_accuracy_benchmark_writes_the_documented_figures(tmp_path):
    """bench/accuracy.py on a small authors-format split: the interface other tools read (mean/std of
    the four test metrics, per-seed values, timing) and a validation curve whose best point is the
    model that was kept."""
    accuracy = _load("accuracy")
    splits = _toy_splits(tmp_path)
    config = tmp_path / "mf.yaml"
    config.write_text(yaml.safe_dump({"model": {"name": "mf", "params": {"factors": 8}},
                                      "training": {"lr": 0.05, "batch_size": 16, "epochs": 6, "patience": 6, "eval_every": 2, "seed": 7}}))
    out = accuracy.main(splits=splits, out_path=tmp_path / "acc.json", model="mf", config=config, seeds=2, device="cpu", threads_opt=1)

    stored = json.loads((tmp_path / "acc.json").read_text())
    assert stored["seeds"] == [7, 8] and stored["dataset"] == "toy" and stored["model"] == "mf"
    for key in ("mean", "std", "valid_mean"):
        assert set(stored[key]) == {"recall@10", "recall@20", "ndcg@10", "ndcg@20"}
    assert stored["mean"]["recall@20"] == pytest.approx(np.mean([r["test"]["recall@20"] for r in stored["per_seed"]]))
    for row in stored["per_seed"]:
        curve = dict(row["valid_curve"])
        assert sorted(curve) == [2, 4, 6]
        assert row["best_epoch"] == max(curve, key=curve.get)
        assert row["valid"]["recall@20"] == pytest.approx(curve[row["best_epoch"]])
    assert stored["params"] > 0 and stored["seconds_per_epoch"] > 0 and stored["threads"] == 1
    assert (tmp_path / "acc.md").read_text().startswith("### mf on toy")
    assert out == stored


def test_a_benchmark_refuses_a_bad_config_in_one_line(tmp_path):
    import subprocess
    import sys

    splits = _toy_splits(tmp_path)
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({"model": {"name": "multidae_pp", "params": {"diffusion": {
        "steps": 10, "noise_scale": 0.1, "noise_min": 0.005, "noise_max": 0.005}}}}))
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "accuracy.py"), "--splits", str(splits), "--out", str(tmp_path / "x.json"),
                           "--model", "multidae_pp", "--config", str(config)], capture_output=True, text=True, timeout=300)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode == 1 and len(lines) == 1, done.stdout + done.stderr
    assert lines[0] == f"error: {config}: model 'multidae_pp': invalid params: diffusion: noise_min must be < noise_max, got 0.005 >= 0.005"
    assert not (tmp_path / "x.json").exists()


def test_denoising_steps_scores_k_steps_from_mu_and_k_equal_t_is_the_models_own_inference(tmp_path):
    steps = _load("denoising_steps")
    splits = _toy_splits(tmp_path)
    np.save(splits / "item_emb.npy", np.repeat(np.eye(2, dtype=np.float32), 20, axis=0) + 0.01 * np.arange(40, dtype=np.float32)[:, None])
    config = tmp_path / "ldiffrec.yaml"
    config.write_text(yaml.safe_dump({"model": {"name": "ldiffrec", "params": {
        "clusters": {"source": "authors", "n_clusters": 2}, "latent_size": 8, "lamda_anneal_epochs": 0,
        "diffusion": {"steps": 4, "noise_scale": 0.01, "noise_min": 0.001, "noise_max": 0.01},
        "denoiser": {"hidden_dims": [16], "emb_size": 4, "dropout": 0.1}}},
        "training": {"lr": 0.01, "batch_size": 16, "epochs": 4, "patience": 4, "eval_every": 2, "seed": 7}}))
    out = steps.main(splits=splits, out_path=tmp_path / "steps.json", config=config, item_emb=splits / "item_emb.npy",
                     seed=7, steps=[0, 2, 4, 9], threads=1, emb_cache=tmp_path / "cache")
    assert [r["k"] for r in out["rows"]] == [0, 2, 4]  # k beyond T is dropped; the k = T row is the model's own inference
    assert out["T"] == 4 and json.loads((tmp_path / "steps.json").read_text()) == out
    assert out["rows"][0]["valid_recall@20"] != out["rows"][-1]["valid_recall@20"] or out["rows"][0]["test_ndcg@20"] != out["rows"][-1]["test_ndcg@20"]
