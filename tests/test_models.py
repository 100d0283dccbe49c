"""Contract tests: one class per interface, subclassed per model with a short config."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from diffrec_core.config import ModelConfig, RunConfig, TrainingConfig
from diffrec_core.evaluation import Target
from diffrec_core.models.registry import available, build_model, validate_params
from diffrec_core.recommend import top_k
from diffrec_core.training import fit, load_checkpoint, make_scorer, save_checkpoint


class RecommenderContract:
    """Every registered model: learns the checkerboard, is seeded, round-trips a checkpoint."""

    name: str
    params: dict = {}
    training = TrainingConfig(epochs=60, batch_size=25, lr=3e-3, patience=60, eval_every=10, seed=7)

    def _fit(self, train, withheld, seed=7):
        n_users, n_items = train.shape
        heldout = sp.csr_matrix((np.ones(n_users, dtype=np.float32), (np.arange(n_users), withheld)), shape=train.shape)
        model = build_model(ModelConfig(name=self.name, params=self.params), n_users, n_items, seed=seed)
        cfg = self.training.model_copy(update={"seed": seed})
        result = fit(model, train, Target(heldout, train), cfg, device=torch.device("cpu"))
        return model, result

    def test_registered(self):
        assert self.name in available()

    def test_checkerboard_withheld_item_in_top3(self, checker):
        train, withheld = checker
        model, result = self._fit(train, withheld)
        scorer = make_scorer(model.eval(), train, torch.device("cpu"))
        scores = scorer(np.arange(train.shape[0]))
        scores = scores.masked_fill(torch.from_numpy(train.toarray()) > 0, float("-inf"))
        top3 = torch.topk(scores, 3, dim=1).indices.numpy()
        hit = (top3 == withheld[:, None]).any(axis=1).mean()
        assert hit >= 0.9, f"withheld item in top 3 for only {hit:.0%} of users"
        assert result.best_valid["recall@20"] > 0.9

    def test_same_seed_same_model(self, checker):
        train, withheld = checker
        self.training = self.training.model_copy(update={"epochs": 3, "eval_every": 1})
        a, _ = self._fit(train, withheld, seed=3)
        b, _ = self._fit(train, withheld, seed=3)
        for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
            assert ka == kb and torch.equal(va, vb), ka

    def test_checkpoint_round_trip(self, checker, tmp_path):
        train, withheld = checker
        self.training = self.training.model_copy(update={"epochs": 2, "eval_every": 1})
        model, _ = self._fit(train, withheld)
        run = RunConfig(model=ModelConfig(name=self.name, params=self.params), training=self.training)
        save_checkpoint(tmp_path / "ckpt", model, run, *train.shape)
        loaded, meta = load_checkpoint(tmp_path / "ckpt")
        assert meta["n_items"] == train.shape[1]
        rows = np.arange(10)
        torch.manual_seed(0)
        expected = make_scorer(model.eval(), train, torch.device("cpu"))(rows)
        torch.manual_seed(0)
        got = make_scorer(loaded, train, torch.device("cpu"))(rows)
        assert torch.allclose(expected, got, atol=1e-6)

    def test_batch_inference_masks_history_and_ranks(self, checker):
        train, withheld = checker
        self.training = self.training.model_copy(update={"epochs": 2, "eval_every": 1})
        model, _ = self._fit(train, withheld)
        scorer = make_scorer(model.eval(), train, torch.device("cpu"))
        recs = top_k(lambda x: model.score(_batch(x)), train, 5, batch_size=16)
        assert len(recs["user"]) == train.shape[0] * 5
        seen = train[recs["user"], recs["item"]].A1
        assert not seen.any()
        assert set(np.unique(recs["rank"])) == {1, 2, 3, 4, 5}
        del scorer


def _batch(x):
    from diffrec_core.models.base import Batch

    return Batch(users=torch.zeros(x.shape[0], dtype=torch.long), x=x)


class TestDiffRec(RecommenderContract):
    name = "diffrec"
    params = {
        "diffusion": {"steps": 5, "noise_scale": 0.01, "noise_min": 0.001, "noise_max": 0.01},
        "denoiser": {"hidden_dims": [64], "emb_size": 8, "dropout": 0.1},
    }


class TestDiffRecEps(TestDiffRec):
    params = {**TestDiffRec.params, "diffusion": {**TestDiffRec.params["diffusion"], "mean_type": "eps", "reweight": False}}

    def test_checkerboard_withheld_item_in_top3(self, checker):
        pytest.skip("eps-prediction is far weaker (paper Table 5); only the contract is checked")


def test_invalid_params_name_the_field():
    with pytest.raises(ValueError, match="denoiser.hidden_dims"):
        validate_params(ModelConfig(name="diffrec", params={"denoiser": {"hidden_dims": [0]}}))
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        validate_params(ModelConfig(name="nope"))


def test_ema_weights_are_kept_and_still_learn(checker):
    train, withheld = checker
    n_users, n_items = train.shape
    heldout = sp.csr_matrix((np.ones(n_users, dtype=np.float32), (np.arange(n_users), withheld)), shape=train.shape)
    cfg = ModelConfig(name="diffrec", params=TestDiffRec.params)
    results = {}
    for decay in (0.0, 0.9):
        model = build_model(cfg, n_users, n_items, seed=1)
        training = TrainingConfig(epochs=40, batch_size=25, lr=3e-3, patience=40, eval_every=10, seed=1, ema_decay=decay)
        res = fit(model, train, Target(heldout, train), training, device=torch.device("cpu"))
        results[decay] = (res, {k: v.clone() for k, v in model.state_dict().items()})
    raw, ema = results[0.0], results[0.9]
    assert ema[0].best_valid["recall@20"] > 0.9
    assert any(not torch.equal(raw[1][k], ema[1][k]) for k in raw[1])


def test_bfloat16_evaluation_stays_close_to_float32(checker):
    train, withheld = checker
    n_users, n_items = train.shape
    heldout = sp.csr_matrix((np.ones(n_users, dtype=np.float32), (np.arange(n_users), withheld)), shape=train.shape)
    model = build_model(ModelConfig(name="diffrec", params=TestDiffRec.params), n_users, n_items, seed=1)
    cfg = TrainingConfig(epochs=30, batch_size=25, lr=3e-3, patience=30, eval_every=10, seed=1)
    fit(model, train, Target(heldout, train), cfg, device=torch.device("cpu"))
    from diffrec_core.training import evaluate_model

    full = evaluate_model(model, train, {"v": Target(heldout, train)}, cfg, torch.device("cpu"))["v"]
    low = evaluate_model(model, train, {"v": Target(heldout, train)}, cfg.model_copy(update={"eval_precision": "bfloat16"}), torch.device("cpu"))["v"]
    assert full["recall@20"] > 0.9
    assert abs(full["recall@20"] - low["recall@20"]) < 0.05 and abs(full["ndcg@20"] - low["ndcg@20"]) < 0.05


def test_a_diverged_training_stops_with_the_epoch_and_learning_rate(checker, monkeypatch):
    train, withheld = checker
    model = build_model(ModelConfig(name="multidae"), *train.shape, seed=1)
    monkeypatch.setattr(model, "loss", lambda batch, generator: model.__class__.loss(model, batch, generator) * float("nan"))
    heldout = sp.csr_matrix((np.ones(train.shape[0], dtype=np.float32), (np.arange(train.shape[0]), withheld)), shape=train.shape)
    with pytest.raises(ValueError, match=r"training diverged: the loss is nan at epoch 1 \(training.lr 0.003\)"):
        fit(model, train, Target(heldout, train), TrainingConfig(epochs=3, batch_size=25, lr=3e-3), device=torch.device("cpu"))
