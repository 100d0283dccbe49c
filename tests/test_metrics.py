import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from diffrec_core.evaluation import Target, check_scores, evaluate, mask_seen, ranking_metrics


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


def test_a_catalogue_smaller_than_k_ranks_all_its_items():
    # 2 users, 3 items, K up to 20: the list is the whole catalogue; positions past it hold no hit
    train = sp.csr_matrix(np.array([[1, 0, 0], [0, 0, 0]], dtype=np.float32))
    heldout = sp.csr_matrix(np.array([[0, 1, 1], [1, 0, 0]], dtype=np.float32))
    scorer = lambda rows: torch.tensor([[3.0, 2.0, 1.0]]).repeat(len(rows), 1)  # noqa: E731
    res = evaluate(scorer, {"valid": Target(heldout, train)}, 2, ks=(1, 20))["valid"]
    assert res["recall@20"] == pytest.approx(1.0) and res["ndcg@20"] == pytest.approx(1.0)
    assert res["recall@1"] == pytest.approx((0.5 + 1.0) / 2)
    m = ranking_metrics(torch.tensor([[1, 0]]), torch.tensor([[1.0, 0.0]]), ks=(1, 20))  # the hit at rank 2
    assert m["recall@20"].item() == pytest.approx(1.0) and m["ndcg@20"].item() == pytest.approx(1 / math.log2(3))
    with pytest.raises(ValueError, match="topk has 1 columns, need 2"):
        ranking_metrics(torch.tensor([[0]]), torch.tensor([[1.0, 0.0]]), ks=(20,))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_scores_are_refused_not_ranked(bad):
    heldout = sp.csr_matrix(np.eye(3, dtype=np.float32))
    train = sp.csr_matrix((3, 3), dtype=np.float32)

    def scorer(rows):
        scores = torch.ones(len(rows), 3)
        scores[0, 1] = bad  # one user's score for one item
        return scores

    with pytest.raises(ValueError, match="NaN or infinity for 1 of 3 users"):
        evaluate(scorer, {"valid": Target(heldout, train)}, 3, ks=(1,))
    assert torch.equal(check_scores(torch.ones(2, 2)), torch.ones(2, 2))


def test_batch_inference_refuses_non_finite_scores_instead_of_writing_fewer_rows():
    from diffrec_core.recommend import top_k

    history = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 1, 0, 0]], dtype=np.float32))
    assert len(top_k(lambda x: torch.ones_like(x), history, 2)["item"]) == 4
    with pytest.raises(ValueError, match="NaN or infinity for 2 of 2 users"):
        top_k(lambda x: torch.full_like(x, float("nan")), history, 2)
