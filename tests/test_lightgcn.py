"""LightGCN: the model contract, the normalised adjacency, and its item embeddings."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from diffrec_core.config import ModelConfig, TrainingConfig
from diffrec_core.models.base import Batch
from diffrec_core.models.lightgcn import normalized_adjacency
from diffrec_core.models.registry import build_model
from test_models import RecommenderContract


class TestLightGCN(RecommenderContract):
    name = "lightgcn"
    params = {"emb_size": 16, "n_layers": 2, "reg": 1e-4}
    training = TrainingConfig(epochs=30, batch_size=50, lr=3e-2, patience=30, eval_every=10, seed=7)


def test_adjacency_is_symmetric_normalised_on_a_tiny_graph():
    # users 0, 1; items 0, 1, 2: u0-i0, u0-i1, u1-i1; item 2 has no edge.
    train = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 0]], dtype=np.float32))
    adj = normalized_adjacency(train).toarray()
    deg = np.array([2, 1, 1, 2, 0], dtype=np.float64)  # u0, u1, i0, i1, i2
    a = np.zeros((5, 5))
    for u, i in [(0, 0), (0, 1), (1, 1)]:
        a[u, 2 + i] = a[2 + i, u] = 1.0
    with np.errstate(divide="ignore"):
        inv = np.where(deg > 0, deg ** -0.5, 0.0)
    expected = inv[:, None] * a * inv[None, :]
    np.testing.assert_allclose(adj, expected, rtol=1e-6)
    assert np.allclose(adj, adj.T)
    assert adj[4].sum() == 0 and adj[:, 4].sum() == 0  # an isolated item stays isolated
    assert adj[0, 2] == pytest.approx(1 / np.sqrt(2 * 1))


def test_propagation_is_the_mean_of_layer_outputs():
    train = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 1]], dtype=np.float32))
    model = build_model(ModelConfig(name="lightgcn", params={"emb_size": 4, "n_layers": 2}), 2, 3, seed=0)
    model.prepare(train)
    e0 = torch.cat([model.user_emb.weight, model.item_emb.weight]).detach()
    a = torch.from_numpy(normalized_adjacency(train).toarray())
    expected = (e0 + a @ e0 + a @ a @ e0) / 3
    users, items = model.propagate()
    torch.testing.assert_close(torch.cat([users, items]).detach(), expected, rtol=1e-5, atol=1e-6)
    scores = model.eval().score(Batch(users=torch.tensor([1]), x=torch.zeros(1, 3)))
    torch.testing.assert_close(scores, expected[1:2] @ expected[2:].T, rtol=1e-5, atol=1e-6)
    assert model.item_embeddings().shape == (3, 4)


def test_propagation_gradients_equal_the_dense_products():
    # the graph product's backward uses the graph's symmetry (graph @ grad instead of graph.T @ grad)
    rng = np.random.default_rng(3)
    train = sp.csr_matrix((rng.random((6, 5)) < 0.4).astype(np.float32))
    model = build_model(ModelConfig(name="lightgcn", params={"emb_size": 3, "n_layers": 3}), 6, 5, seed=1)
    model.prepare(train)
    weights = torch.randn(11, 3)
    users, items = model.propagate()
    (torch.cat([users, items]) * weights).sum().backward()
    got = torch.cat([model.user_emb.weight.grad, model.item_emb.weight.grad])
    a = torch.from_numpy(normalized_adjacency(train).toarray())
    e0 = torch.cat([model.user_emb.weight, model.item_emb.weight]).detach().requires_grad_(True)
    ((e0 + a @ e0 + a @ (a @ e0) + a @ (a @ (a @ e0))) / 4 * weights).sum().backward()
    torch.testing.assert_close(got, e0.grad, rtol=1e-5, atol=1e-6)


def test_scoring_without_a_graph_says_what_to_do():
    model = build_model(ModelConfig(name="lightgcn"), 2, 3, seed=0)
    with pytest.raises(ValueError, match="prepare"):
        model.score(Batch(users=torch.tensor([0]), x=torch.zeros(1, 3)))
    with pytest.raises(ValueError, match="built for 2 users x 3 items"):
        model.prepare(sp.csr_matrix((3, 3), dtype=np.float32))


def test_checkpoint_scores_known_users_without_the_graph(checker, tmp_path):
    """Batch inference loads only the checkpoint: the evaluated embeddings travel in it, scores are the same."""
    from diffrec_core.config import RunConfig
    from diffrec_core.evaluation import Target
    from diffrec_core.recommend import top_k
    from diffrec_core.training import fit, load_checkpoint, save_checkpoint

    train, withheld = checker
    heldout = sp.csr_matrix((np.ones(len(withheld), dtype=np.float32), (np.arange(len(withheld)), withheld)), shape=train.shape)
    run = RunConfig(model=ModelConfig(name="lightgcn", params={"emb_size": 16, "n_layers": 2, "reg": 1e-4}),
                    training=TrainingConfig(epochs=30, batch_size=50, lr=3e-2, patience=30, eval_every=10, seed=7))
    model = build_model(run.model, *train.shape, seed=7)
    fit(model, train, Target(heldout, train), run.training, device=torch.device("cpu"))
    model.eval()
    users = torch.arange(train.shape[0])
    expected = model.score(Batch(users=users, x=torch.zeros(train.shape)))
    save_checkpoint(tmp_path / "ckpt", model, run, *train.shape)

    loaded, _ = load_checkpoint(tmp_path / "ckpt")
    assert loaded.needs_user_ids and loaded._graph is None
    torch.testing.assert_close(loaded.score(Batch(users=users, x=torch.zeros(train.shape))), expected)
    recs = top_k(lambda x, u: loaded.score(Batch(users=u, x=x)), train, 1, batch_size=16, pass_users=True)
    assert (recs["item"] == withheld[recs["user"]]).mean() >= 0.9
    np.testing.assert_array_equal(loaded.item_embeddings(), model.item_embeddings())


def test_untrained_model_without_graph_refuses_to_score():
    model = build_model(ModelConfig(name="lightgcn"), 2, 3, seed=0).eval()
    with pytest.raises(ValueError, match="no interaction graph"):
        model.score(Batch(users=torch.arange(2), x=torch.zeros(2, 3)))


def test_older_checkpoint_without_final_embeddings_loads_and_needs_the_graph():
    model = build_model(ModelConfig(name="lightgcn", params={"emb_size": 4}), 2, 3, seed=0)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith(("final_", "has_final"))}
    fresh = build_model(ModelConfig(name="lightgcn", params={"emb_size": 4}), 2, 3, seed=1)
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh.user_emb.weight, model.user_emb.weight)
    with pytest.raises(ValueError, match="no interaction graph"):
        fresh.eval().score(Batch(users=torch.arange(2), x=torch.zeros(2, 3)))
