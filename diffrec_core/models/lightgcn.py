"""LightGCN (He et al., SIGIR 2020: "LightGCN: Simplifying and Powering Graph Convolution Network
for Recommendation").

Embeddings of users and items are smoothed over the symmetric-normalised user–item graph
for K layers without weights or non-linearities; the final embedding is the mean of the K + 1
layer outputs. Trained with BPR on (u, i, j) triples and an L2 penalty on the batch's layer-0
embeddings, as in the original.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveInt
from torch import nn
from torch.nn import functional as F

from diffrec_core.config import _Frozen
from diffrec_core.models.base import Batch, Recommender
from diffrec_core.models.mf import MF
from diffrec_core.models.registry import register


class LightGCNParams(_Frozen):
    emb_size: PositiveInt = Field(64, description="embedding size of users and items")
    n_layers: NonNegativeInt = Field(3, description="K propagation layers")
    reg: NonNegativeFloat = Field(1e-4, description="L2 weight on the layer-0 embeddings of each (u, i, j) triple")
    init_std: float = Field(0.1, gt=0.0, description="std of the normal initialisation")


def normalized_adjacency(train: sp.csr_matrix) -> sp.csr_matrix:
    """D^-1/2 A D^-1/2 of the bipartite graph A = [[0, R], [R^T, 0]], R = (train > 0).

    Returns a csr float32 matrix of shape (n_users + n_items, n_users + n_items); users come
    first. A node without edges keeps an all-zero row and column.
    """
    r = (train > 0).astype(np.float32).tocsr()
    n_users, n_items = r.shape
    adj = sp.bmat([[None, r], [r.T, None]], format="csr", dtype=np.float32)
    adj.resize((n_users + n_items, n_users + n_items))
    deg = np.asarray(adj.sum(axis=1)).ravel()
    inv = np.zeros_like(deg, dtype=np.float32)
    nz = deg > 0
    inv[nz] = deg[nz] ** -0.5
    d = sp.diags(inv)
    return (d @ adj @ d).astype(np.float32).tocsr()


def to_torch_sparse(matrix: sp.csr_matrix, device: torch.device | str = "cpu") -> torch.Tensor:
    """A scipy CSR matrix as a torch sparse CSR tensor (row-parallel, deterministic products)."""
    m = matrix.tocsr()
    m.sort_indices()
    with warnings.catch_warnings():  # "sparse CSR support is in beta": products and .to(device) are all we use
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)
        return torch.sparse_csr_tensor(
            torch.from_numpy(m.indptr.astype(np.int64)),
            torch.from_numpy(m.indices.astype(np.int64)),
            torch.from_numpy(m.data.astype(np.float32)),
            size=m.shape,
            device=device,
            check_invariants=True,
        )


class _SymmetricSpmm(torch.autograd.Function):
    """``graph @ x`` for a constant symmetric sparse ``graph``: the gradient is ``graph @ grad``.

    torch's own backward of a sparse product transposes the matrix on every call; with the
    graph symmetric that work is not needed (on the ml-1m_clean graph, one CPU thread: 3 layers
    forward + backward 0.027 s against 0.25 s for COO ``torch.sparse.mm``).
    """

    @staticmethod
    def forward(ctx, graph: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.graph = graph
        return graph @ x

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return None, ctx.graph @ grad


class LightGCN(Recommender):
    """score(u, i) = <e_u, e_i> with e = mean_k (Â^k E⁰); training needs ``prepare(train)``.

    Every evaluation-mode propagation is also kept in the buffers ``final_user`` / ``final_item``,
    so a checkpoint carries the embeddings it was evaluated with and scores known users without
    the interaction graph (batch inference loads only the checkpoint).
    """

    needs_user_ids = True

    def __init__(self, n_users: int, n_items: int, emb_size: int, n_layers: int, reg: float, init_std: float):
        super().__init__()
        self.n_users, self.n_items = n_users, n_items
        self.n_layers = n_layers
        self.reg = reg
        self.user_emb = nn.Embedding(n_users, emb_size)
        self.item_emb = nn.Embedding(n_items, emb_size)
        nn.init.normal_(self.user_emb.weight, 0.0, init_std)
        nn.init.normal_(self.item_emb.weight, 0.0, init_std)
        self.register_buffer("final_user", torch.zeros(n_users, emb_size))
        self.register_buffer("final_item", torch.zeros(n_items, emb_size))
        self.register_buffer("has_final", torch.zeros((), dtype=torch.bool))
        self._graph: torch.Tensor | None = None
        self._graph_of: int | None = None  # id() of the inputs the graph was built from
        self._cache: tuple[torch.Tensor, torch.Tensor] | None = None

    # ----- graph -------------------------------------------------------------------------------
    def prepare(self, inputs: sp.csr_matrix) -> None:
        """Build the normalised adjacency of ``inputs`` (the train interactions) on the model's device."""
        if inputs.shape != (self.n_users, self.n_items):
            raise ValueError(f"lightgcn was built for {self.n_users} users x {self.n_items} items, got inputs of shape {inputs.shape}")
        device = self.user_emb.weight.device
        if self._graph is not None and self._graph_of == id(inputs) and self._graph.device == device:
            return
        self._graph = to_torch_sparse(normalized_adjacency(inputs), device)
        self._graph_of = id(inputs)
        self._cache = None

    def propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Final (users (n_users, d), items (n_items, d)) embeddings: the mean over layers 0..K."""
        if self._graph is None:
            raise ValueError("lightgcn has no interaction graph: call prepare(train matrix) first (the training loop does)")
        h = torch.cat([self.user_emb.weight, self.item_emb.weight])
        total = h
        for _ in range(self.n_layers):
            h = _SymmetricSpmm.apply(self._graph, h)
            total = total + h
        out = total / (self.n_layers + 1)
        return out[: self.n_users], out[self.n_users :]

    def train(self, mode: bool = True):
        self._cache = None  # weights change while training; recompute the propagation for scoring
        return super().train(mode)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in ("final_user", "final_item", "has_final"):  # checkpoints written before these buffers
            state_dict.setdefault(prefix + name, getattr(self, name))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _apply(self, fn, *args, **kwargs):
        out = super()._apply(fn, *args, **kwargs)
        if self._graph is not None:
            self._graph = fn(self._graph)
        self._cache = None
        return out

    # ----- training and scoring ----------------------------------------------------------------
    loss_terms = MF.loss_terms  # the same BPR triples

    def loss(self, batch: Batch, generator: torch.Generator | None = None) -> torch.Tensor:
        """BPR over one (u, i, j) triple per train interaction of the batch's users, + reg * L2 of E⁰."""
        rows, pos, neg = MF.sample_triples(batch, generator)
        users_all, items_all = self.propagate()
        u_ids = batch.users[rows]
        u, i, j = users_all[u_ids], items_all[pos], items_all[neg]
        diff = (u * i).sum(-1) - (u * j).sum(-1)
        u0, i0, j0 = self.user_emb(u_ids), self.item_emb(pos), self.item_emb(neg)
        reg = (u0.pow(2).sum(-1) + i0.pow(2).sum(-1) + j0.pow(2).sum(-1)).mean() / 2.0
        return -F.logsigmoid(diff).mean() + self.reg * reg

    def score(self, batch: Batch) -> torch.Tensor:
        """(B, n_items) = E_u[users] E_i^T; the history in ``batch.x`` is not used (known users only)."""
        if not self.training and self._cache is None and self._graph is None and bool(self.has_final):
            self._cache = (self.final_user, self.final_item)  # a loaded checkpoint: its evaluated embeddings
        if self.training or self._cache is None:
            with torch.set_grad_enabled(self.training and torch.is_grad_enabled()):
                emb = self.propagate()
            if self.training:
                return emb[0][batch.users] @ emb[1].T
            self.final_user.copy_(emb[0].detach())
            self.final_item.copy_(emb[1].detach())
            self.has_final.fill_(True)
            self._cache = emb
        users_all, items_all = self._cache
        return users_all[batch.users] @ items_all.T

    @torch.no_grad()
    def item_embeddings(self) -> np.ndarray:
        """(n_items, d) float32 final item embeddings (mean over layers), e.g. for item clustering."""
        items = self.final_item if self._graph is None and bool(self.has_final) else self.propagate()[1]
        return items.detach().cpu().numpy().astype(np.float32)


@register("lightgcn", LightGCNParams, "LightGCN: linear graph propagation of user and item embeddings, BPR loss (He et al. 2020)")
def build_lightgcn(params: LightGCNParams, n_users: int, n_items: int) -> LightGCN:
    return LightGCN(n_users, n_items, params.emb_size, params.n_layers, params.reg, params.init_std)
