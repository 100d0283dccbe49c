"""EASE (Steck 2019, "Embarrassingly Shallow Autoencoders for Sparse Data"): a closed-form
item-item model with a zero diagonal."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field, PositiveFloat
from torch import nn

from diffrec_core.config import _Frozen
from diffrec_core.models.base import Batch, Recommender
from diffrec_core.models.registry import register


class EASEParams(_Frozen):
    l2: PositiveFloat = Field(500.0, description="lambda, the L2 weight on B")


def ease_weights(inputs: sp.csr_matrix, l2: float) -> np.ndarray:
    """B = I - P / diag(P) with P = (X^T X + lambda I)^-1; diag(B) = 0.  Returns (n_items, n_items) float64.

    X^T X is computed with sparse products; only the items x items Gram matrix is dense.
    """
    x = sp.csr_matrix(inputs, dtype=np.float64)
    gram = (x.T @ x).toarray()
    gram[np.diag_indices_from(gram)] += l2
    p = np.linalg.inv(gram)
    b = p / (-np.diag(p))[None, :]
    b[np.diag_indices_from(b)] = 0.0
    return b


class EASE(Recommender):
    """scores = x B.  ``B`` is a (frozen) parameter so that it is counted and checkpointed."""

    closed_form = True

    def __init__(self, n_items: int, l2: float):
        super().__init__()
        self.l2 = l2
        self.B = nn.Parameter(torch.zeros(n_items, n_items), requires_grad=False)

    def fit(self, inputs: sp.csr_matrix) -> None:
        if inputs.shape[1] != self.B.shape[0]:
            raise ValueError(f"EASE was built for {self.B.shape[0]} items, the inputs have {inputs.shape[1]}")
        b = ease_weights(inputs, self.l2)
        with torch.no_grad():
            self.B.copy_(torch.from_numpy(b).to(self.B.dtype))

    def score(self, batch: Batch) -> torch.Tensor:
        return batch.x @ self.B


@register("ease", EASEParams, "EASE: closed-form item-item model (Steck 2019)")
def build_ease(params: EASEParams, n_users: int, n_items: int) -> EASE:  # noqa: ARG001
    return EASE(n_items, params.l2)
