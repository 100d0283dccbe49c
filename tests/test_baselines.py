"""The paper's baselines and EASE: the recommender contract, plus model-specific checks."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from diffrec_core.config import ModelConfig, TrainingConfig
from diffrec_core.models.base import Batch
from diffrec_core.models.ease import ease_weights
from diffrec_core.models.registry import build_model, validate_params
from test_models import RecommenderContract


class TestMF(RecommenderContract):
    name = "mf"
    params = {"factors": 16, "reg": 1e-4}
    training = TrainingConfig(epochs=60, batch_size=25, lr=3e-2, patience=60, eval_every=10, seed=7)


class TestCDAE(RecommenderContract):
    name = "cdae"
    params = {"hidden": 32, "dropout": 0.2}


class TestMultiDAE(RecommenderContract):
    name = "multidae"
    params = {"hidden_dims": [32, 16], "dropout": 0.2}


class TestMultiVAE(RecommenderContract):
    name = "multivae"
    params = {"hidden_dims": [32, 16], "dropout": 0.2, "anneal_cap": 0.2, "total_anneal_steps": 100}


class TestMultiDAEPP(RecommenderContract):
    name = "multidae_pp"
    params = {"hidden_dims": [32, 16], "diffusion": {"steps": 5, "noise_scale": 0.1, "noise_min": 0.001, "noise_max": 0.01}}


class TestCODIGEM(RecommenderContract):
    name = "codigem"
    params = {"hidden_dims": [32], "dropout": 0.2, "diffusion": {"steps": 2, "noise_scale": 0.1, "noise_min": 0.001, "noise_max": 0.01}}


class TestEASE(RecommenderContract):
    name = "ease"
    params = {"l2": 1.0}


def test_ease_matches_dense_hand_computation():
    x = np.array([[1, 1, 0, 0], [0, 1, 1, 0], [1, 0, 1, 1], [0, 0, 1, 1], [1, 1, 1, 0]], dtype=np.float64)
    lam = 2.0
    p = np.linalg.inv(x.T @ x + lam * np.eye(4))
    expected = np.eye(4) - p / np.diag(p)[None, :]
    got = ease_weights(sp.csr_matrix(x), lam)
    assert np.allclose(np.diag(got), 0.0)
    assert np.allclose(got, expected, atol=1e-12)
    model = build_model(ModelConfig(name="ease", params={"l2": lam}), 5, 4)
    model.fit(sp.csr_matrix(x.astype(np.float32)))
    scores = model.score(Batch(users=torch.arange(5), x=torch.from_numpy(x).float()))
    assert torch.allclose(scores, torch.from_numpy(x @ expected).float(), atol=1e-5)


def test_ease_refuses_a_matrix_of_another_width():
    model = build_model(ModelConfig(name="ease", params={"l2": 1.0}), 3, 4)
    with pytest.raises(ValueError, match="built for 4 items"):
        model.fit(sp.csr_matrix(np.ones((3, 5), dtype=np.float32)))


def test_multivae_beta_anneals_per_training_step_up_to_the_cap():
    model = build_model(ModelConfig(name="multivae", params={"hidden_dims": [8, 4], "anneal_cap": 0.3, "total_anneal_steps": 10}), 4, 6, seed=0)
    batch = Batch(users=torch.arange(4), x=torch.bernoulli(torch.full((4, 6), 0.5), generator=torch.Generator().manual_seed(0)))
    betas = []
    for _ in range(5):
        betas.append(model.beta)
        model.loss(batch)
    assert betas == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.3])
    model.eval()
    model.loss(batch)
    assert model.beta == pytest.approx(0.3) and int(model.steps_done) == 5
    assert "steps_done" in model.state_dict()


def test_mf_negatives_are_unseen_items():
    model = build_model(ModelConfig(name="mf", params={"factors": 4}), 3, 50, seed=0)
    x = torch.zeros(3, 50)
    x[0, :40] = 1
    x[1, ::2] = 1
    x[2, 5] = 1
    rows, pos, neg = model.sample_triples(Batch(users=torch.arange(3), x=x), torch.Generator().manual_seed(1))
    assert len(rows) == int(x.sum())
    assert bool((x[rows, pos] == 1).all())
    assert bool((x[rows, neg] == 0).all())
    assert set(neg[rows == 0].tolist()) <= set(range(40, 50)) and len(set(neg[rows == 0].tolist())) > 5


def test_codigem_scores_with_its_first_autoencoder_only():
    model = build_model(ModelConfig(name="codigem", params={"hidden_dims": [8], "diffusion": {"steps": 3, "noise_scale": 0.1, "noise_min": 0.001, "noise_max": 0.01}}), 4, 6, seed=0)
    assert len(model.autoencoders) == 3
    model.eval()
    x = torch.ones(2, 6)
    before = model.score(Batch(users=torch.arange(2), x=x)).detach().clone()
    with torch.no_grad():
        for p in model.autoencoders[1].parameters():
            p.add_(1.0)
    assert torch.equal(before, model.score(Batch(users=torch.arange(2), x=x)))


def test_baseline_params_are_validated_with_the_field_named():
    with pytest.raises(ValueError, match="l2"):
        validate_params(ModelConfig(name="ease", params={"l2": -1}))
    with pytest.raises(ValueError, match="dropout"):
        validate_params(ModelConfig(name="multivae", params={"dropout": 1.5}))


def test_id_based_models_get_their_user_ids_in_batch_inference(checker):
    from diffrec_core.evaluation import Target
    from diffrec_core.recommend import top_k
    from diffrec_core.training import fit

    train, withheld = checker
    heldout = sp.csr_matrix((np.ones(len(withheld), dtype=np.float32), (np.arange(len(withheld)), withheld)), shape=train.shape)
    model = build_model(ModelConfig(name="mf", params={"factors": 16}), *train.shape, seed=7)
    cfg = TrainingConfig(epochs=60, batch_size=25, lr=3e-2, patience=60, eval_every=10, seed=7)
    fit(model, train, Target(heldout, train), cfg, device=torch.device("cpu"))
    model.eval()
    assert model.needs_user_ids and not build_model(ModelConfig(name="multidae"), 2, 3).needs_user_ids

    def scorer(x, users):
        return model.score(Batch(users=users, x=x))

    recs = top_k(scorer, train, 1, batch_size=16, pass_users=True)
    assert (recs["item"] == withheld[recs["user"]]).mean() >= 0.9


class TestCDAENegativeSampling(RecommenderContract):
    name = "cdae"
    params = {"hidden": 32, "dropout": 0.2, "negative_ratio": 3.0}


def test_cdae_negative_sampling_keeps_positives_and_about_ratio_negatives_per_positive():
    model = build_model(ModelConfig(name="cdae", params={"hidden": 8, "loss": "mse", "negative_ratio": 2.0}), 4, 1000, seed=0)
    x = torch.zeros(4, 1000)
    x[0, :10] = 1.0
    x[1, :100] = 1.0
    x[2, :600] = 1.0  # more positives than ratio allows negatives: every negative is kept
    mask = model.sample_mask(x, torch.Generator().manual_seed(0))
    assert torch.all(mask[x > 0] == 1.0)
    negatives = ((mask == 1.0) & (x == 0)).sum(dim=1)
    assert 8 <= negatives[0] <= 35 and 160 <= negatives[1] <= 240  # binomial around 20 and 200
    assert negatives[2] == 400 and negatives[3] == 0  # a user without positives contributes nothing
    again = model.sample_mask(x, torch.Generator().manual_seed(0))
    assert torch.equal(mask, again)  # seeded
    batch = Batch(users=torch.arange(4), x=x)
    full = build_model(ModelConfig(name="cdae", params={"hidden": 8, "loss": "mse"}), 4, 1000, seed=0)
    full.load_state_dict(model.state_dict())
    model.eval(), full.eval()  # no input dropout: the two losses differ only in the items they cover
    assert model.loss(batch, torch.Generator().manual_seed(0)) < full.loss(batch, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="negative_ratio applies to the bce and mse losses"):
        validate_params(ModelConfig(name="cdae", params={"loss": "multinomial", "negative_ratio": 1.0}))
