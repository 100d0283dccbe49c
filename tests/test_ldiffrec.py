"""L-DiffRec: the model contract on the checkerboard, cluster-split latents, side data, LT composition."""

import numpy as np
import pytest
import torch

from diffrec_core.config import ModelConfig, TrainingConfig
from diffrec_core.evaluation import Target
from diffrec_core.models.base import Batch
from diffrec_core.models.diffrec import DiffRec
from diffrec_core.models.ldiffrec import LDiffRec, split_sizes
from diffrec_core.models.registry import build_model
from diffrec_core.training import fit
from test_models import RecommenderContract

PARAMS = {
    "clusters": {"n_clusters": 2},
    "latent_size": 16,
    "kl_anneal_steps": 20,
    "lamda_anneal_epochs": 0,
    "diffusion": {"steps": 5, "noise_scale": 0.01, "noise_min": 0.001, "noise_max": 0.01},
    "denoiser": {"hidden_dims": [32], "emb_size": 8, "dropout": 0.1},
}


def block_clusters(n_items: int, items_per_block: int = 12) -> np.ndarray:
    """Checkerboard items: blocks 0-1 -> cluster 0, blocks 2-3 -> cluster 1 (sizes 24 / 24)."""
    return (np.arange(n_items) // items_per_block >= 2).astype(np.int64)


class TestLDiffRec(RecommenderContract):
    name = "ldiffrec"
    params = PARAMS
    training = TrainingConfig(epochs=40, batch_size=25, lr=1e-2, patience=40, eval_every=10, seed=7)

    def _fit(self, train, withheld, seed=7):
        import scipy.sparse as sp

        n_users, n_items = train.shape
        heldout = sp.csr_matrix((np.ones(n_users, dtype=np.float32), (np.arange(n_users), withheld)), shape=train.shape)
        side = {"item_clusters": block_clusters(n_items)}
        model = build_model(ModelConfig(name=self.name, params=self.params), n_users, n_items, seed=seed, side=side)
        result = fit(model, train, Target(heldout, train), self.training.model_copy(update={"seed": seed}), device=torch.device("cpu"))
        return model, result


def _model(labels, **over):
    return build_model(ModelConfig(name="ldiffrec", params={**PARAMS, **over}), 10, len(labels), seed=0, side={"item_clusters": labels})


def test_latent_sizes_follow_cluster_sizes_and_sum_to_the_total():
    assert split_sizes(300, np.array([1786, 1024])) == [190, 110]
    assert split_sizes(10, np.array([1, 1000])) == [1, 9]  # a small cluster still gets one dimension
    labels = np.array([0] * 30 + [1] * 10 + [2] * 20)
    model = _model(labels, clusters={"n_clusters": 3}, latent_size=12)
    assert model.cluster_sizes == [30, 10, 20]
    assert model.latent_sizes == [6, 2, 4] and sum(model.latent_sizes) == 12
    assert [enc[0].in_features for enc in model.encoders] == [30, 10, 20]
    assert [dec.out_features for dec in model.decoders] == [30, 10, 20]


def test_decoders_write_scores_back_in_the_original_item_order():
    labels = np.array([1, 0, 1, 0, 0, 1, 0])  # interleaved clusters
    model = _model(labels, latent_size=4).eval()
    with torch.no_grad():
        for dec in model.decoders:
            dec.weight.zero_()
        # item i's score = its own id, written through its cluster's decoder bias
        for c, dec in enumerate(model.decoders):
            dec.bias.copy_(torch.tensor(np.flatnonzero(labels == c), dtype=torch.float32))
        scores = model.decode(torch.zeros(2, 4))
    torch.testing.assert_close(scores, torch.arange(7, dtype=torch.float32).expand(2, 7))


def test_encoders_see_only_their_cluster():
    labels = np.array([0, 0, 0, 1, 1, 1])
    model = _model(labels, latent_size=4).eval()
    x = torch.zeros(1, 6)
    mu0, _ = model.encode(x)
    x[0, 4] = 1.0  # an item of cluster 1 changes only cluster 1's latent
    mu1, _ = model.encode(x)
    d0 = model.latent_sizes[0]
    torch.testing.assert_close(mu0[:, :d0], mu1[:, :d0])
    assert not torch.allclose(mu0[:, d0:], mu1[:, d0:])


def test_inference_is_deterministic_and_uses_the_mean():
    labels = np.array([0, 0, 1, 1, 1])
    model = _model(labels, latent_size=4).eval()
    x = torch.tensor([[1.0, 0.0, 1.0, 0.0, 1.0]])
    a = model.score(Batch(users=torch.zeros(1, dtype=torch.long), x=x))
    b = model.score(Batch(users=torch.zeros(1, dtype=torch.long), x=x))
    torch.testing.assert_close(a, b)


def test_uses_the_shared_diffusion_code_not_a_copy():
    model = _model(np.array([0, 1, 0, 1]), latent_size=4)
    reference = DiffRec.__init__.__globals__["build_diffusion"]
    assert type(model.diffusion) is type(reference(model.p.diffusion))
    assert type(model.denoiser).__module__ == "diffrec_core.models.denoiser"


def test_kl_and_diffusion_weights_anneal():
    model = _model(np.array([0, 1, 0, 1]), latent_size=4, kl_max=0.3, kl_anneal_steps=10, lamda=0.03, lamda_min=0.005, lamda_anneal_epochs=100)
    assert model.kl_weight() == 0.0 and model.diffusion_weight() == pytest.approx(0.03)
    model._updates, model._epochs_done = 2, 50  # γ = min(kl_max, updates / kl_anneal_steps), as in the authors' code
    assert model.kl_weight() == pytest.approx(0.2) and model.diffusion_weight() == pytest.approx(0.015)
    model._updates, model._epochs_done = 100, 99
    assert model.kl_weight() == pytest.approx(0.3) and model.diffusion_weight() == pytest.approx(0.005)


def test_missing_or_bad_clusters_are_refused_with_a_clear_message():
    cfg = ModelConfig(name="ldiffrec", params=PARAMS)
    with pytest.raises(ValueError, match="needs side data 'item_clusters'"):
        build_model(cfg, 10, 4)
    with pytest.raises(ValueError, match="one id per item"):
        build_model(cfg, 10, 4, side={"item_clusters": np.array([0, 1, 0])})
    with pytest.raises(ValueError, match=r"have no item|must be in \[0, 2\)"):
        build_model(cfg, 10, 4, side={"item_clusters": np.array([0, 0, 0, 0])})


def test_time_weighted_input_composes():
    """LT-DiffRec: the model takes batch.x as given, so weighted vectors change the scores."""
    model = _model(np.array([0, 0, 1, 1]), latent_size=4).eval()
    binary = torch.tensor([[1.0, 1.0, 0.0, 1.0]])
    weighted = torch.tensor([[0.2, 1.0, 0.0, 0.6]])
    users = torch.zeros(1, dtype=torch.long)
    assert not torch.allclose(model.score(Batch(users, binary)), model.score(Batch(users, weighted)))
    assert isinstance(model, LDiffRec)


def test_shared_decoder_maps_all_of_z_to_all_items():
    model = _model(np.array([0, 1, 1, 0, 1]), latent_size=4, decoder="shared").eval()
    assert len(model.decoders) == 1 and isinstance(model.decoders[0], torch.nn.Linear)
    assert model.decoders[0].in_features == 4 and model.decoders[0].out_features == 5
    assert model.score(Batch(torch.zeros(2, dtype=torch.long), torch.ones(2, 5))).shape == (2, 5)


def test_decoder_hidden_sizes_split_like_the_latent_and_keep_item_order():
    labels = np.array([0, 1, 1, 0, 1, 1])
    model = _model(labels, latent_size=6, decoder_dims=[12]).eval()
    widths = [dec[0].out_features for dec in model.decoders]
    assert sum(widths) == 12 and widths[1] > widths[0]  # cluster 1 holds twice the items of cluster 0
    assert [dec[-1].out_features for dec in model.decoders] == model.cluster_sizes
    # The score of an item comes from its own cluster's decoder: zeroing that decoder's output layer
    # leaves exactly that cluster's items at their bias (0).
    with torch.no_grad():
        last = model.decoders[0][-1]
        last.weight.zero_()
        last.bias.zero_()
    scores = model.score(Batch(torch.zeros(1, dtype=torch.long), torch.ones(1, 6)))
    assert torch.all(scores[0, labels == 0] == 0) and torch.all(scores[0, labels == 1] != 0)


def test_normalized_input_makes_the_scores_scale_free():
    labels = np.array([0, 0, 1, 1])
    users = torch.zeros(1, dtype=torch.long)
    x = torch.tensor([[1.0, 0.0, 1.0, 1.0]])
    plain = _model(labels, latent_size=4).eval()
    scaled = _model(labels, latent_size=4, normalize_input=True).eval()
    assert torch.allclose(scaled.score(Batch(users, x)), scaled.score(Batch(users, 3 * x)), atol=1e-6)
    assert not torch.allclose(plain.score(Batch(users, x)), plain.score(Batch(users, 3 * x)), atol=1e-6)


def test_reconstruction_likelihoods():
    from diffrec_core.models.ldiffrec import reconstruction_nll

    x = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 0.0, 3.0]])
    gaussian = reconstruction_nll(logits, x, "gaussian")
    torch.testing.assert_close(gaussian, torch.tensor((1 + 1 + 0.25 + 0 + 1 + 9) / 2 / 2))
    multinomial = reconstruction_nll(logits, x, "multinomial")
    log_p = torch.log_softmax(logits, dim=1)
    torch.testing.assert_close(multinomial, -(log_p[0, 0] + log_p[0, 2] + log_p[1, 1]) / 2)
    # a perfect reconstruction costs nothing under the Gaussian likelihood, not under the multinomial
    assert float(reconstruction_nll(x, x, "gaussian")) == 0.0 and float(reconstruction_nll(x, x, "multinomial")) > 0.0


def test_dense_encoder_sums_earlier_hidden_outputs_and_needs_equal_widths():
    from diffrec_core.models.ldiffrec import DenseEncoder

    labels = np.array([0] * 30 + [1] * 10)
    model = _model(labels, encoder="dense", encoder_dims=[8, 8, 8])
    enc = model.encoders[0]
    assert isinstance(enc, DenseEncoder) and len(enc.hidden) == 3
    assert [layer.out_features for layer in enc.hidden] == [6, 6, 6]  # 8 split 30:10 -> 6 / 2
    assert enc.out.out_features == 2 * model.latent_sizes[0]
    x = torch.rand(4, 30)
    with torch.no_grad():  # the forward pass written out by hand
        h1 = enc.norms[0](torch.nn.functional.silu(enc.hidden[0](x)))
        h2 = enc.norms[1](torch.nn.functional.silu(enc.hidden[1](h1) + h1))
        h3 = enc.norms[2](torch.nn.functional.silu(enc.hidden[2](h2) + h1 + h2))
        assert torch.allclose(enc(x), enc.out(h3), atol=1e-6)
    for dims in ([], [8, 4]):
        with pytest.raises(ValueError, match=r"invalid params: .*encoder 'dense' needs one or more equal encoder_dims"):
            _model(labels, encoder="dense", encoder_dims=dims)


class TestLDiffRecDenseEncoder(TestLDiffRec):
    params = {**PARAMS, "encoder": "dense", "encoder_dims": [32]}
