"""T-variants: per-user time weights as a data transform composed with any model (paper §3.6)."""

import json

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from typer.testing import CliRunner

from diffrec_core.config import ModelConfig, RunConfig, TimeWeightsConfig, TrainingConfig
from diffrec_core.evaluation import Target
from diffrec_core.interactions import load_npy_splits, model_input, time_weights, to_csr_with_order
from diffrec_core.models.diffrec import DiffRec
from diffrec_core.models.registry import available, build_model, resolve_config, time_weights_for, validate_params
from diffrec_core.training import fit, make_scorer
from flows.cli import app


def test_weights_rise_linearly_per_user_and_lone_interaction_gets_w_max():
    # user 0: items 4, 1, 7 in time order; user 1: one item; user 2: nothing; user 3: two items
    train, order = to_csr_with_order(
        np.array([0, 0, 0, 1, 3, 3]), np.array([4, 1, 7, 2, 0, 5]), np.array([10.0, 20.0, 30.0, 5.0, 9.0, 1.0]), (4, 8)
    )
    w = time_weights(train, order, w_min=0.1)
    assert w.shape == train.shape and np.array_equal(w.indices, train.indices) and w.dtype == np.float32
    assert w[0, 4] == pytest.approx(0.1) and w[0, 1] == pytest.approx(0.55) and w[0, 7] == pytest.approx(1.0)
    assert w[1, 2] == pytest.approx(1.0)  # single interaction: w_max
    assert w[2].nnz == 0
    assert w[3, 5] == pytest.approx(0.1) and w[3, 0] == pytest.approx(1.0)  # item 5 came first
    half = time_weights(train, order, w_min=0.3, w_max=0.5)
    assert half[0, 4] == pytest.approx(0.3) and half[0, 1] == pytest.approx(0.4) and half[0, 7] == pytest.approx(0.5)


def test_ties_keep_item_order_and_duplicates_keep_the_first_key():
    train, order = to_csr_with_order(np.array([0, 0, 0, 0]), np.array([3, 1, 2, 1]), np.array([5.0, 5.0, 5.0, 0.0]), (1, 4))
    assert train.nnz == 3 and order.tolist() == [5.0, 5.0, 5.0]  # (0, 1) first seen with key 5
    w = time_weights(train, order, w_min=0.0)
    assert w[0, 1] == 0.0 and w[0, 2] == pytest.approx(0.5) and w[0, 3] == 1.0


def test_bad_arguments():
    train, order = to_csr_with_order(np.array([0, 0]), np.array([0, 1]), np.array([1.0, 2.0]), (1, 2))
    with pytest.raises(ValueError, match="one key per stored train entry"):
        time_weights(train, order[:1], 0.1)
    with pytest.raises(ValueError, match="w_min <= w_max"):
        time_weights(train, order, 0.9, 0.5)
    with pytest.raises(ValueError, match="w_min must be <= w_max"):
        TimeWeightsConfig(w_min=0.8, w_max=0.5)
    assert model_input(train, None, None) is train
    with pytest.raises(ValueError, match="has none"):
        model_input(train, None, TimeWeightsConfig())


def test_npy_row_order_is_the_interaction_order(tmp_path):
    train = np.array([[0, 5], [0, 2], [0, 9], [1, 3], [1, 0]], dtype=np.int64)
    np.save(tmp_path / "train_list.npy", train)
    np.save(tmp_path / "valid_list.npy", np.array([[0, 1], [1, 2]], dtype=np.int64))
    np.save(tmp_path / "test_list.npy", np.array([[0, 3], [1, 9]], dtype=np.int64))
    data = load_npy_splits(tmp_path)
    w = model_input(data.train, data.train_order, TimeWeightsConfig(w_min=0.1))
    assert w[0, 5] == pytest.approx(0.1) and w[0, 2] == pytest.approx(0.55) and w[0, 9] == pytest.approx(1.0)
    assert w[1, 3] == pytest.approx(0.1) and w[1, 0] == pytest.approx(1.0)


def test_variant_names_compose_a_base_model_with_time_weights():
    assert "tdiffrec" in available()
    model = build_model(ModelConfig(name="tdiffrec"), 5, 7, seed=1)
    assert isinstance(model, DiffRec)
    assert time_weights_for(RunConfig(model=ModelConfig(name="tdiffrec"))) == TimeWeightsConfig()
    assert time_weights_for(RunConfig(model=ModelConfig(name="ltdiffrec"))) == TimeWeightsConfig()
    assert time_weights_for(RunConfig()) is None
    own = RunConfig(time_weights=TimeWeightsConfig(w_min=0.5))
    assert time_weights_for(own).w_min == 0.5  # any model composes with the transform
    shipped = resolve_config("ml-1m_clean", "tdiffrec")
    assert shipped.model.name == "tdiffrec" and shipped.time_weights.w_min == 0.1
    # the variant takes its base model's parameters (each dataset's values are chosen on its own validation)
    assert type(validate_params(shipped.model)) is type(validate_params(resolve_config("ml-1m_clean", "diffrec").model))
    fallback = resolve_config("some-dataset", "tdiffrec")
    assert fallback.model.name == "tdiffrec" and fallback.model.params == resolve_config("some-dataset", "diffrec").model.params


def test_tdiffrec_learns_the_checkerboard(checker):
    train, withheld = checker
    n_users, n_items = train.shape
    order = np.random.default_rng(0).permutation(train.nnz).astype(np.float64)
    run = RunConfig(
        model=ModelConfig(name="tdiffrec", params={
            "diffusion": {"steps": 5, "noise_scale": 0.01, "noise_min": 0.001, "noise_max": 0.01},
            "denoiser": {"hidden_dims": [64], "emb_size": 8, "dropout": 0.1}}),
        training=TrainingConfig(epochs=60, batch_size=25, lr=3e-3, patience=60, eval_every=10, seed=7),
    )
    inputs = model_input(train, order, time_weights_for(run))
    assert inputs.data.min() == pytest.approx(0.1) and inputs.data.max() == pytest.approx(1.0)
    heldout = sp.csr_matrix((np.ones(n_users, dtype=np.float32), (np.arange(n_users), withheld)), shape=train.shape)
    model = build_model(run.model, n_users, n_items, seed=7)
    result = fit(model, inputs, Target(heldout, train), run.training, device=torch.device("cpu"))
    scores = make_scorer(model.eval(), inputs, torch.device("cpu"))(np.arange(n_users))
    scores = scores.masked_fill(torch.from_numpy(train.toarray()) > 0, float("-inf"))
    top3 = torch.topk(scores, 3, dim=1).indices.numpy()
    hit = (top3 == withheld[:, None]).any(axis=1).mean()
    assert hit >= 0.9, f"withheld item in top 3 for only {hit:.0%} of users"
    assert result.best_valid["recall@20"] > 0.9


def test_cli_noisy_random_split_and_tdiffrec_run(tmp_path):
    runner = CliRunner()
    w, art, cfg = tmp_path / "w.duckdb", tmp_path / "art", tmp_path / "fast.yaml"
    cfg.write_text(json.dumps({
        "model": {"name": "tdiffrec", "params": {
            "diffusion": {"steps": 5, "noise_scale": 0.01, "noise_min": 0.001, "noise_max": 0.01},
            "denoiser": {"hidden_dims": [32], "emb_size": 8}}},
        "training": {"epochs": 2, "eval_every": 1, "batch_size": 64},
    }))
    invoke = lambda *a: runner.invoke(app, [str(x) for x in a])  # noqa: E731
    r = invoke("ingest", "--users", "120", "--items", "60", "--interactions", "4000", "--seed", "3", "--warehouse", w)
    assert r.exit_code == 0, r.output
    r = invoke("split", "--setting", "noisy-random", "--noise-ratio", "0.2", "--method", "per_user", "--warehouse", w)
    assert r.exit_code == 0 and "noisy-random-0.2" in r.output, r.output
    r = invoke("train", "--setting", "noisy-random-0.2", "--model", "tdiffrec", "--config", cfg, "--w-min", "0.3",
               "--warehouse", w, "--artifacts", art)
    assert r.exit_code == 0, r.output
    import duckdb

    with duckdb.connect(str(w), read_only=True) as con:
        config = json.loads(con.execute("select config from model_runs").fetchone()[0])
    assert config["time_weights"] == {"w_min": 0.3, "w_max": 1.0}
    r = invoke("evaluate", "--warehouse", w)
    assert r.exit_code == 0 and "test Recall@20" in r.output, r.output
    r = invoke("recommend", "--warehouse", w, "-k", "5")
    assert r.exit_code == 0 and "published" in r.output, r.output
    r = invoke("train", "--setting", "noisy-random-0.2", "--model", "tdiffrec", "--w-min", "2", "--warehouse", w)
    assert r.exit_code == 1 and "--w-min" in r.output
    r = invoke("split", "--setting", "temporal", "--noise-ratio", "0.2", "--warehouse", w)
    assert r.exit_code == 1 and "adds no noise" in r.output


def test_ltdiffrec_is_ldiffrec_on_time_weighted_input(checker):
    from diffrec_core.models.ldiffrec import LDiffRec

    train, _ = checker
    n_users, n_items = train.shape
    clusters = (np.arange(n_items) // (n_items // 2)).clip(max=1)
    config = ModelConfig(name="ltdiffrec", params={"latent_size": 16, "diffusion": {"steps": 5, "noise_scale": 0.01,
                         "noise_min": 0.001, "noise_max": 0.01}, "denoiser": {"hidden_dims": [16], "emb_size": 4}})
    with pytest.raises(ValueError, match="side data"):
        build_model(config, n_users, n_items, seed=0)
    model = build_model(config, n_users, n_items, seed=0, side={"item_clusters": clusters})
    assert isinstance(model, LDiffRec)
    run = RunConfig(model=config, training=TrainingConfig(epochs=2, eval_every=1, batch_size=50, seed=1))
    order = np.arange(train.nnz, dtype=np.float64)
    inputs = model_input(train, order, time_weights_for(run))
    result = fit(model, inputs, Target(train, train), run.training, device=torch.device("cpu"))
    assert result.epochs_run == 2 and np.isfinite(result.history[-1]["loss"])
