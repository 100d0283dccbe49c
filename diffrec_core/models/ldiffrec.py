"""L-DiffRec: DiffRec in a compressed latent space (paper §3.5).

Items are grouped into C clusters (k-means over item embeddings, ``diffrec_core.clustering``).
Each user's vector x is split by cluster; per-cluster variational encoders map x^c to
(μ^c, σ^c), latent sizes proportional to the cluster's share of the items. The diffusion of
DiffRec — the same ``GaussianDiffusion``, ``Denoiser`` and step samplers — runs over the
concatenated z = [z^1, ..., z^C]; per-cluster decoders map the denoised ẑ^c back to the scores
of their items, returned in the original item order.

Loss (the authors' code): L = L_v + λ · L_diffusion, with
L_v = −Σ_i x_i log softmax(decode(ẑ_0))_i + γ · KL(q(z|x) ‖ N(0, I)) (``likelihood: gaussian`` replaces the
multinomial term by ½ Σ_i (decode(ẑ_0)_i − x_i)²),
γ rising linearly to ``kl_max`` over ``kl_anneal_steps`` updates and λ decaying linearly to
``lamda_min`` over ``lamda_anneal_epochs`` epochs. Inference encodes with z = μ (no sampling).

The cluster assignment is side data: ``build_model(..., side={"item_clusters": array})``; the
``clusters`` params say where the caller takes it from (see ``ClustersConfig``). The model keeps
it in the buffer ``item_clusters`` so a checkpoint rebuilds on its own. The input is ``batch.x``
as given, so time-weighted vectors make LT-DiffRec without anything special here.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, model_validator
from torch import nn
from torch.nn import functional as F

from diffrec_core import clustering
from diffrec_core.config import DenoiserConfig, DiffusionConfig, Seed, _Frozen
from diffrec_core.diffusion.resample import make_sampler
from diffrec_core.models.base import Batch, Recommender, randn_like
from diffrec_core.models.denoiser import Denoiser
from diffrec_core.models.diffrec import build_diffusion
from diffrec_core.models.registry import register
from diffrec_core.models.vae import multinomial_nll

_ACT = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}


class ClustersConfig(_Frozen):
    """Where the item -> cluster assignment comes from; read by whoever builds the model.

    source: "lightgcn" = k-means over the item embeddings of our own LightGCN run on the same
    train split (trained once per split fingerprint and config, then reused); "authors" = k-means
    over the ``item_emb.npy`` that ships with the authors' splits (benchmarks only).
    """

    source: Literal["lightgcn", "authors"] = "lightgcn"
    n_clusters: PositiveInt = Field(2, description="C, the number of item clusters")
    seed: Seed = Field(2023, description="k-means seed (FAISS)")
    vectors: clustering.Vectors = Field(
        "raw", description="what k-means clusters: the raw item vectors (the authors'), each scaled to unit length, "
        "or centred on the mean item vector and then scaled to unit length")
    embedding_config: str | None = Field(None, description="LightGCN run config file; None = the shipped one for the dataset")


class LDiffRecParams(_Frozen):
    clusters: ClustersConfig = Field(default_factory=ClustersConfig)
    latent_size: PositiveInt = Field(300, description="total latent size, shared by the clusters in proportion to their size")
    encoder_dims: list[PositiveInt] = Field(default_factory=list, description="total hidden sizes before the latent, split like it")
    encoder: Literal["mlp", "dense"] = Field(
        "mlp", description="mlp: Linear + activation per hidden layer (the authors'); dense: RecVAE's encoder (Shenbin et al. 2020) "
        "per cluster, each hidden layer swish(W h + the sum of all earlier hidden outputs) then LayerNorm; needs equal encoder_dims")
    decoder_dims: list[PositiveInt] = Field(default_factory=list, description="total hidden sizes between the latent and the item scores, split like it")
    normalize_input: bool = Field(False, description="L2-normalise each user's vector before the encoders (MultiVAE's input); the authors encode it raw")
    likelihood: Literal["multinomial", "gaussian"] = Field(
        "multinomial", description="L_v's reconstruction term: multinomial (MultiVAE's, the authors') or gaussian (sum of squared errors, "
        "DiffRec's x0 loss; far below the multinomial on ml-1m_clean, bench/plans/ml-1m-cpu-ldiffrec-gaussian.yaml)")
    decoder: Literal["per_cluster", "shared"] = Field(
        "per_cluster", description="per_cluster: z^c -> items of cluster c; shared: one linear layer from all of z to all items")
    activation: Literal["tanh", "relu", "sigmoid", "gelu"] = "tanh"
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="input dropout of the encoders while training")
    reparam: bool = Field(True, description="sample z = μ + σ·ε while training (variational); inference always uses μ")
    lamda: NonNegativeFloat = Field(0.03, description="λ, weight of the diffusion loss")
    lamda_min: NonNegativeFloat = Field(0.005, description="λ never decays below this")
    lamda_anneal_epochs: NonNegativeInt = Field(500, description="epochs over which λ decays linearly to lamda_min; 0 = constant λ")
    kl_max: NonNegativeFloat = Field(0.3, description="γ, the KL weight after annealing")
    kl_anneal_steps: NonNegativeInt = Field(200, description="updates over which γ rises linearly from 0; 0 = constant γ")
    denoiser_lr_scale: PositiveFloat = Field(0.5, description="denoiser learning rate = training lr × this (encoders and decoders use lr)")
    diffusion: DiffusionConfig = Field(default_factory=DiffusionConfig)
    denoiser: DenoiserConfig = Field(default_factory=lambda: DenoiserConfig(hidden_dims=[300], emb_size=10, dropout=0.5))

    @model_validator(mode="after")
    def _dense_needs_equal_widths(self) -> "LDiffRecParams":
        if self.encoder == "dense" and (not self.encoder_dims or len(set(self.encoder_dims)) != 1):
            raise ValueError(f"encoder 'dense' needs one or more equal encoder_dims, got {self.encoder_dims}")
        return self


def split_sizes(total: int, shares: np.ndarray) -> list[int]:
    """``total`` split in proportion to ``shares`` (floor, at least 1; the last takes the rest, as in the authors' code)."""
    sizes = [max(int(s / shares.sum() * total), 1) for s in shares[:-1]]
    last = total - sum(sizes)
    if last < 1:
        raise ValueError(f"size {total} cannot be split over {len(shares)} clusters")
    return sizes + [last]


def _mlp(dims: list[int], act: type[nn.Module]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


class DenseEncoder(nn.Module):
    """RecVAE's encoder: h_1 = LN(swish(W_1 x)), h_k = LN(swish(W_k h_{k-1} + h_1 + ... + h_{k-1})), out = W_o h_K.

    Every hidden layer has the same width so the skip sums line up; LayerNorm eps 0.1 as in RecVAE.
    """

    def __init__(self, n_in: int, width: int, depth: int, n_out: int):
        super().__init__()
        self.hidden = nn.ModuleList(nn.Linear(n_in if k == 0 else width, width) for k in range(depth))
        self.norms = nn.ModuleList(nn.LayerNorm(width, eps=0.1) for _ in range(depth))
        self.out = nn.Linear(width, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip: torch.Tensor | float = 0.0
        h = x
        for layer, norm in zip(self.hidden, self.norms):
            h = norm(F.silu(layer(h) + skip))
            skip = skip + h
        return self.out(h)


def _encoder(kind: str, n_in: int, widths: list[int], n_out: int, act: type[nn.Module]) -> nn.Module:
    """One cluster's encoder to (μ, log σ²): the activation after each hidden layer, the last layer linear."""
    if kind == "dense":
        return DenseEncoder(n_in, widths[0], len(widths), n_out)
    return _mlp([n_in, *widths, n_out], act)


def _decoder(dims: list[int], act: type[nn.Module]) -> nn.Module:
    """A bare linear layer without hidden sizes (the authors' decoder, and its checkpoint keys), else an MLP."""
    return nn.Linear(dims[0], dims[1]) if len(dims) == 2 else _mlp(dims, act)


class _Recorder:
    """Wraps the denoiser so the diffusion's training loss also yields its x_0 prediction."""

    def __init__(self, net: nn.Module):
        self.net = net
        self.x_t: torch.Tensor | None = None
        self.out: torch.Tensor | None = None

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.x_t, self.out = x_t, self.net(x_t, t)
        return self.out


def reconstruction_nll(logits: torch.Tensor, x: torch.Tensor, likelihood: str) -> torch.Tensor:
    """Mean over users of -log p(x | decoder output); logits, x: (B, n_items).

    multinomial: -Σ_i x_i log softmax(logits)_i; gaussian (unit variance, constants dropped): ½ Σ_i (logits_i - x_i)².
    """
    if likelihood == "gaussian":
        return 0.5 * (logits - x).pow(2).sum(dim=1).mean()
    return multinomial_nll(logits, x)


class LDiffRec(Recommender):
    def __init__(self, n_items: int, item_clusters: np.ndarray, p: LDiffRecParams):
        super().__init__()
        from diffrec_core.clustering import check_assignment

        labels = check_assignment(np.asarray(item_clusters).astype(np.int64, copy=False), n_items, p.clusters.n_clusters)
        self.p = p
        self.n_items = n_items
        self.n_clusters = p.clusters.n_clusters
        self.register_buffer("item_clusters", torch.from_numpy(labels.copy()))
        order = np.argsort(labels, kind="stable")  # items grouped by cluster, ascending id within
        inverse = np.empty_like(order)
        inverse[order] = np.arange(n_items)
        self.register_buffer("_order", torch.from_numpy(order), persistent=False)
        self.register_buffer("_inverse", torch.from_numpy(inverse), persistent=False)
        counts = np.bincount(labels, minlength=self.n_clusters)
        self.cluster_sizes = counts.tolist()
        self.latent_sizes = split_sizes(p.latent_size, counts)
        hidden = [split_sizes(h, counts) for h in p.encoder_dims]
        act = _ACT[p.activation]
        self.encoders = nn.ModuleList(
            _encoder(p.encoder, int(counts[c]), [h[c] for h in hidden], 2 * self.latent_sizes[c], act) for c in range(self.n_clusters)
        )
        if p.decoder == "per_cluster":
            dec_hidden = [split_sizes(h, counts) for h in p.decoder_dims]
            self.decoders = nn.ModuleList(
                _decoder([self.latent_sizes[c], *(h[c] for h in dec_hidden), int(counts[c])], act) for c in range(self.n_clusters)
            )
        else:
            self.decoders = nn.ModuleList([_decoder([p.latent_size, *p.decoder_dims, n_items], act)])
        self.drop = nn.Dropout(p.dropout)
        for m in [*self.encoders.modules(), *self.decoders.modules()]:
            if isinstance(m, nn.Linear):  # the authors' autoencoder init
                nn.init.xavier_normal_(m.weight)
                nn.init.zeros_(m.bias)
        d = p.denoiser
        self.denoiser = Denoiser(p.latent_size, d.hidden_dims, d.emb_size, d.activation, d.dropout, d.norm)
        self.diffusion = build_diffusion(p.diffusion)
        self.sampler = make_sampler(p.diffusion.importance_sampling, p.diffusion.steps, p.diffusion.history_per_step)
        self._updates = 0
        self._epochs_done = 0

    # ----- the variational autoencoder around the latent -------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ, log σ²), each (B, latent_size): clusters' latents concatenated in cluster order."""
        if self.p.normalize_input:
            x = F.normalize(x, dim=1)
        grouped = self.drop(x)[:, self._order]
        mus, logvars = [], []
        start = 0
        for c, enc in enumerate(self.encoders):
            end = start + self.cluster_sizes[c]
            h = enc(grouped[:, start:end])
            mus.append(h[:, : self.latent_sizes[c]])
            logvars.append(h[:, self.latent_sizes[c] :])
            start = end
        return torch.cat(mus, dim=1), torch.cat(logvars, dim=1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, n_items) logits in the original item order."""
        if self.p.decoder == "shared":
            return self.decoders[0](z)
        parts, start = [], 0
        for c, dec in enumerate(self.decoders):
            end = start + self.latent_sizes[c]
            parts.append(dec(z[:, start:end]))
            start = end
        return torch.cat(parts, dim=1)[:, self._inverse]

    def kl_weight(self) -> float:
        p = self.p
        return p.kl_max if p.kl_anneal_steps == 0 else min(p.kl_max, self._updates / p.kl_anneal_steps)

    def diffusion_weight(self) -> float:
        p = self.p
        if p.lamda_anneal_epochs == 0:
            return max(p.lamda, p.lamda_min)
        return max((1.0 - self._epochs_done / p.lamda_anneal_epochs) * p.lamda, p.lamda_min)

    # ----- Recommender -------------------------------------------------------------------------
    def loss(self, batch: Batch, generator: torch.Generator | None = None) -> torch.Tensor:
        x = batch.x
        mu, logvar = self.encode(x)
        z = mu + torch.exp(0.5 * logvar) * randn_like(mu, generator) if self.p.reparam else mu
        t, weights = self.sampler.sample(z.shape[0], generator, z.device)
        recorder = _Recorder(self.denoiser)
        losses = self.diffusion.training_losses(recorder, z, t, reweight=self.p.diffusion.reweight, generator=generator)
        self.sampler.update(t, losses)
        l_diffusion = (losses * weights).mean()
        z0 = recorder.out if self.diffusion.mean_type == "x0" else self.diffusion.predict_x_start_from_eps(recorder.x_t, t, recorder.out)
        nll = reconstruction_nll(self.decode(z0), x, self.p.likelihood)
        kl = -0.5 * (1.0 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1).mean()
        loss = nll + self.kl_weight() * kl + self.diffusion_weight() * l_diffusion
        self._updates += 1
        return loss

    def score(self, batch: Batch) -> torch.Tensor:
        mu, _ = self.encode(batch.x)
        z = self.diffusion.p_sample(self.denoiser, mu, self.p.diffusion.sampling_steps, sampling_noise=self.p.diffusion.sampling_noise)
        return self.decode(z)

    def on_epoch_end(self, epoch: int) -> None:
        self._epochs_done = epoch

    def optimizer_groups(self, lr: float) -> list[dict]:
        autoencoder = [*self.encoders.parameters(), *self.decoders.parameters()]
        return [{"params": autoencoder}, {"params": list(self.denoiser.parameters()), "lr": lr * self.p.denoiser_lr_scale}]


@register("ldiffrec", LDiffRecParams, "L-DiffRec: DiffRec over per-cluster variational latents of the items (paper §3.5)",
          side=("item_clusters",))
def build_ldiffrec(params: LDiffRecParams, n_users: int, n_items: int, item_clusters) -> LDiffRec:  # noqa: ARG001
    if isinstance(item_clusters, torch.Tensor):
        item_clusters = item_clusters.cpu().numpy()
    return LDiffRec(n_items, np.asarray(item_clusters), params)


def n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

