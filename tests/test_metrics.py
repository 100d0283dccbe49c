import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from diffrec_core.evaluation import Target, evaluate, mask_seen, ranking_metrics


def test_metrics_by_hand():
    # user 0: relevant {2, 5}; ranking 5, 1, 2 -> hits at ranks 1 and 3
    topk = torch.tensor([[5, 1, 2, 3, 4, 0]])
    rel = torch.zeros(1, 8)
    rel[0, [2, 5]] = 1
    m = ranking_metrics(topk, rel, ks=(2, 6))
    assert m["recall@2"].item() == pytest.approx(0.5)
    assert m["recall@6"].item() == pytest.approx(1.0)
    dcg = 1 / math.log2(2) + 1 / math.log2(4)
    idcg = 1 / math.log2(2) + 1 / math.log2(3)
    assert m["ndcg@6"].item() == pytest.approx(dcg / idcg)
    assert m["ndcg@2"].item() == pytest.approx(1 / idcg)


def test_recall_denominator_is_all_heldout_not_min_k():
    topk = torch.tensor([[0, 1]])
    rel = torch.ones(1, 5)  # 5 relevant, K = 2, both hit
    m = ranking_metrics(topk, rel, ks=(2,))
    assert m["recall@2"].item() == pytest.approx(2 / 5)
    assert m["ndcg@2"].item() == pytest.approx(1.0)  # ideal over min(K, n) positions


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(3, 12), st.integers(0, 10_000))
def test_metric_properties(n_users, n_items, seed):
    rng = np.random.default_rng(seed)
    rel = torch.from_numpy((rng.random((n_users, n_items)) < 0.4).astype(np.float32))
    rel[:, 0] = 1  # everybody has a held-out item
    k = min(3, n_items)
    scores = torch.from_numpy(rng.random((n_users, n_items)))
    topk = torch.topk(scores, k, dim=1).indices
    m = ranking_metrics(topk, rel, ks=(k,))
    for v in m.values():
        assert bool(((v >= 0) & (v <= 1 + 1e-9)).all())
    perfect = torch.topk(rel + 1e-3 * torch.from_numpy(rng.random((n_users, n_items))).float(), k, dim=1).indices
    assert torch.allclose(ranking_metrics(perfect, rel, ks=(k,))[f"ndcg@{k}"], torch.ones(n_users, dtype=torch.float64))
    miss = torch.topk(-rel + 1e-3 * torch.from_numpy(rng.random((n_users, n_items))).float(), k, dim=1).indices
    no_hit = (rel.gather(1, miss).sum(1) == 0)
    assert bool((ranking_metrics(miss, rel, ks=(k,))[f"recall@{k}"][no_hit] == 0).all())
    perm = torch.from_numpy(rng.permutation(n_users))
    shuffled = ranking_metrics(topk[perm], rel[perm], ks=(k,))
    assert shuffled[f"ndcg@{k}"].mean().item() == pytest.approx(m[f"ndcg@{k}"].mean().item())


def test_mask_seen():
    s = mask_seen(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[0.0, 1.0, 0.0]]))
    assert s[0, 1].item() == float("-inf") and s[0, 2].item() == 3.0


def test_evaluate_masks_and_averages_over_users_with_heldout():
    # 3 users, 4 items; scores prefer higher item ids
    train = sp.csr_matrix(np.array([[0, 0, 0, 1], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=np.float32))
    heldout = sp.csr_matrix(np.array([[0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0]], dtype=np.float32))
    scorer = lambda rows: torch.arange(4, dtype=torch.float32).repeat(len(rows), 1)  # noqa: E731
    res = evaluate(scorer, {"valid": Target(heldout, train)}, 3, ks=(1, 2), batch_size=2)["valid"]
    # user 0: item 3 masked -> top1 = 2 (hit); user 1: top1 = 3, top2 = {3, 2}: miss
    assert res["users"] == 2
    assert res["recall@1"] == pytest.approx(0.5)
    assert res["recall@2"] == pytest.approx(0.5)
