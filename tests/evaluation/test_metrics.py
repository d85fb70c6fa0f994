from __future__ import annotations

import math

import numpy as np
import pytest

from fusionrec.evaluation import metrics as M


def test_rating_metrics() -> None:
    assert M.rmse([1, 2, 3], [1, 2, 5]) == pytest.approx(math.sqrt(4 / 3))
    assert M.mae([1, 2, 3], [2, 2, 1]) == pytest.approx(1.0)


def test_ranking_metrics_hand_computed() -> None:
    # ranked list: hit, miss, hit, miss ; 3 relevant items in total
    hits = np.array([[True, False, True, False]])
    n_rel = np.array([3])
    assert M.precision_at_k(hits, 4)[0] == pytest.approx(0.5)
    assert M.recall_at_k(hits, n_rel, 4)[0] == pytest.approx(2 / 3)
    assert M.f1_at_k(hits, n_rel, 4)[0] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert M.hit_rate_at_k(hits, 1)[0] == 1.0
    dcg = 1 + 1 / math.log2(4)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert M.ndcg_at_k(hits, n_rel, 4)[0] == pytest.approx(dcg / idcg)
    assert M.average_precision_at_k(hits, n_rel, 4)[0] == pytest.approx((1 + 2 / 3) / 3)
    assert M.reciprocal_rank_at_k(np.array([[False, False, True]]), 3)[0] == pytest.approx(1 / 3)
    assert M.reciprocal_rank_at_k(np.array([[False, False]]), 2)[0] == 0.0
    # IDCG uses min(n_relevant, K)
    assert M.ndcg_at_k(np.array([[True, True]]), np.array([10]), 2)[0] == pytest.approx(1.0)


def test_auc_matches_pair_counting() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=(4, 12)).astype(float)  # many ties
    rel = rng.random((4, 12)) < 0.3
    rel[:, 0] = True
    rel[:, 1] = False
    valid = rng.random((4, 12)) < 0.9
    valid[:, :2] = True
    got = M.auc(scores, rel, valid)
    for u in range(4):
        pos = scores[u][rel[u] & valid[u]]
        neg = scores[u][~rel[u] & valid[u]]
        ref = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
        assert got[u] == pytest.approx(ref)


def test_beyond_accuracy() -> None:
    recs = np.array([[0, 1], [0, 2], [0, -1]])
    assert M.catalog_coverage(recs, 6) == pytest.approx(0.5)
    assert M.gini_index(np.array([[0, 1], [2, 3]]), 4) == pytest.approx(0.0)
    assert M.gini_index(np.array([[0], [0], [0]]), 3) == pytest.approx(2 / 3)
    counts = np.array([10, 5, 1, 0, 0, 0])
    assert M.average_recommendation_popularity(recs, counts) == pytest.approx((10 + 5 + 10 + 1 + 10) / 5)
    assert M.novelty(np.array([[2]]), counts, 10) == pytest.approx(-math.log2(0.1))
    feats = np.eye(3)
    assert M.intra_list_diversity(np.array([[0, 1, 2], [0, 0, -1]]), feats).tolist() == pytest.approx([1.0, 0.0])


def test_by_group() -> None:
    out = M.by_group(np.array([1.0, 0.0, 1.0, np.nan]), np.array(["F", "M", "F", "M"]))
    assert out == {"F": 1.0, "M": 0.0}


def test_calibration_kl_hand_computed() -> None:
    import scipy.sparse as sp

    groups = np.array([[1, 0], [0, 1], [1, 1], [1, 0]], dtype=float)  # item 2 is in both groups
    history = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]], dtype=float))
    recs = np.array([[0, 1], [3, -1], [0, 1]])
    kl = M.calibration_kl(recs, history, groups, alpha=0.01)
    assert kl[0] == pytest.approx(0.0)  # history 50/50, list 50/50
    # history p = (0.5, 0.5), list q = (1, 0): q~ = (0.995, 0.005)
    assert kl[1] == pytest.approx(0.5 * math.log(0.5 / 0.995) + 0.5 * math.log(0.5 / 0.005))
    assert math.isnan(kl[2])  # no history: undefined
    assert M.kl_divergence(np.array([1.0, 0.0]), np.array([0.0, 1.0]), alpha=0.5) == pytest.approx(math.log(2))


def test_exposure_metrics_hand_computed() -> None:
    recs = np.array([[0, 1], [0, -1]])
    d1 = 1 / math.log2(3)
    # item exposure: item 0 gets 2 (two first places), item 1 gets 1/log2(3), items 2, 3 nothing
    e = np.array([0.0, 0.0, d1, 2.0])
    n = 4
    gini = float(np.sum((2 * np.arange(1, n + 1) - n - 1) * e) / (n * e.sum()))
    assert M.exposure_gini(recs, 4) == pytest.approx(gini)
    labels = np.array([0, 1, 1, 1])
    assert M.group_exposure_share(recs, labels) == pytest.approx([2 / (2 + d1), d1 / (2 + d1)])
    assert M.group_exposure_share(recs, labels, discounted=False) == pytest.approx([2 / 3, 1 / 3])
    # a two-genre item splits its exposure
    multi = np.array([[1, 1], [0, 1], [1, 0], [1, 0]], dtype=float)
    assert M.group_exposure(np.array([[0]]), multi) == pytest.approx([0.5, 0.5])
    assert M.exposure_gini(recs, 4, labels) == pytest.approx(abs(2 - d1) / (2 * 2 * (2 + d1)) * 2)
    assert M.exposure_gini(np.array([[0, 1], [1, 0]]), 2) == pytest.approx(0.0)


def test_group_gap_and_groupings() -> None:
    ndcg = np.array([0.2, 0.4, 0.1, np.nan, 0.7])
    assert M.group_gap(ndcg, np.array(["a", "a", "b", "b", "c"])) == pytest.approx(0.7 - 0.1)
    # short head: the most popular items holding 20% of interactions (here item 0 alone, 10 of 20)
    np.testing.assert_array_equal(M.popularity_groups(np.array([10, 1, 5, 0, 4])), [0, 1, 1, 1, 1])
    np.testing.assert_array_equal(M.activity_groups(np.array([5, 1, 3, 3, 9, 2, 2, 7])), [2, 0, 1, 2, 3, 0, 1, 3])
    with pytest.raises(M.InvalidValueError):
        M.popularity_groups(np.array([1, 2]), head_share=1.5)
    with pytest.raises(M.InvalidValueError, match="rows"):
        M.item_group_matrix(np.array([0, 1]), n_items=3)
