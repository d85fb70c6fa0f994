"""Re-rankers: lam = 0 keeps the model's order, caps hold, calibration and diversity move the way they promise."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from fusionrec.errors import ConfigError, InvalidValueError
from fusionrec.evaluation import metrics as M
from fusionrec.rerank import (
    MMR,
    Calibrated,
    Chain,
    ExposureCap,
    FairExposure,
    Reranker,
    from_spec,
    groups_from_labels,
)

N_ITEMS, N_GROUPS, C = 120, 6, 40


def _data(seed: int = 0, n_users: int = 50) -> dict[str, np.ndarray | sp.csr_matrix]:
    rng = np.random.default_rng(seed)
    groups = (rng.random((N_ITEMS, N_GROUPS)) < 0.3).astype(float)
    groups[np.arange(N_ITEMS), rng.integers(0, N_GROUPS, N_ITEMS)] = 1.0  # every item has a group
    history = sp.csr_matrix((rng.random((n_users, N_ITEMS)) < 0.1).astype(np.float32))
    cand = np.stack([rng.choice(N_ITEMS, C, replace=False) for _ in range(n_users)])
    # the model prefers items of group 0: its lists are skewed, so calibration has something to fix
    scores = rng.random((n_users, C)) + 0.8 * groups[cand, 0]
    return {"groups": groups, "history": history, "cand": cand, "scores": scores, "users": np.arange(n_users)}


def _rerankers(d: dict, lam: float) -> list[Reranker]:
    vectors = np.random.default_rng(1).normal(size=(N_ITEMS, 8))
    return [
        Calibrated(d["groups"], d["history"], lam=lam),
        MMR(vectors, lam=lam),
        FairExposure(d["groups"], lam=lam),
        ExposureCap(d["groups"], max_share=1.0 - lam),
    ]


def _model_order(cand: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(cand, order, axis=1)


@pytest.mark.parametrize("which", range(4))
def test_lambda_zero_keeps_the_model_order(which: int) -> None:
    d = _data()
    r = _rerankers(d, 0.0)[which]
    items, scores = r.rerank(d["users"], d["cand"], d["scores"], 10)
    np.testing.assert_array_equal(items, _model_order(d["cand"], d["scores"], 10))
    np.testing.assert_allclose(scores, -np.sort(-d["scores"], axis=1)[:, :10])


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    lam=st.floats(0.0, 1.0),
    k=st.integers(1, 15),
    which=st.integers(0, 3),
    n_pad=st.integers(0, 30),
)
def test_lists_are_distinct_candidates_with_their_scores(seed: int, lam: float, k: int, which: int, n_pad: int) -> None:
    d = _data(seed, n_users=6)
    cand, scores = d["cand"].copy(), d["scores"].copy()
    cand[:, C - n_pad :] = -1  # short rows: padding never comes back
    scores[0, 0] = -np.inf  # a masked candidate never comes back either
    r = _rerankers(d, lam)[which]
    items, out = r.rerank(d["users"], cand, scores, k)
    assert items.shape == out.shape == (6, k)
    for j in range(6):
        row = items[j][items[j] >= 0]
        assert len(set(row.tolist())) == len(row)
        allowed = {int(c): float(s) for c, s in zip(cand[j], scores[j]) if c >= 0 and np.isfinite(s)}
        assert set(row.tolist()) <= set(allowed)
        assert np.allclose(out[j][: len(row)], [allowed[int(i)] for i in row])
        n_ok = len(allowed)
        if not (isinstance(r, ExposureCap) and r.strict):
            assert len(row) == min(k, n_ok)  # filled as far as the candidates allow


def test_calibration_kl_decreases_with_lambda() -> None:
    d = _data()
    kls = []
    for lam in (0.0, 0.25, 0.5, 0.75, 1.0):
        items, _ = Calibrated(d["groups"], d["history"], lam=lam).rerank(d["users"], d["cand"], d["scores"], 10)
        kls.append(float(np.nanmean(M.calibration_kl(items, d["history"], d["groups"]))))
    assert all(b <= a + 1e-9 for a, b in itertools.pairwise(kls)), kls
    assert kls[-1] < 0.5 * kls[0], kls


def test_calibrated_target_is_the_history_genre_mix() -> None:
    groups = np.array([[1, 0], [0, 1], [1, 1]], dtype=float)
    history = sp.csr_matrix(np.array([[1, 0, 1]], dtype=float))
    np.testing.assert_allclose(Calibrated(groups, history, lam=0.5).target(np.array([0])), [[0.75, 0.25]])


def test_mmr_diversity_increases_with_lambda() -> None:
    d = _data()
    vectors = np.random.default_rng(1).normal(size=(N_ITEMS, 8))
    ild = []
    for lam in (0.0, 0.3, 0.6, 0.9):
        items, _ = MMR(vectors, lam=lam).rerank(d["users"], d["cand"], d["scores"], 10)
        ild.append(float(M.intra_list_diversity(items, vectors).mean()))
    assert all(b > a for a, b in itertools.pairwise(ild)), ild


def test_mmr_skips_a_near_duplicate() -> None:
    vectors = np.array([[1.0, 0.0], [1.0, 0.01], [0.0, 1.0]])
    items, _ = MMR(vectors, lam=0.5).rerank(np.array([0]), np.array([[0, 1, 2]]), np.array([[1.0, 0.9, 0.5]]), 2)
    np.testing.assert_array_equal(items, [[0, 2]])  # item 1 is almost item 0


@pytest.mark.parametrize("share", [0.0, 0.2, 0.35, 0.4, 0.5])
def test_exposure_cap_holds_in_every_list(share: float) -> None:
    d = _data()
    labels = np.arange(N_ITEMS) % 3  # single-label groups, 40 items each: caps are always feasible
    items, _ = ExposureCap(labels, max_share=share).rerank(d["users"], d["cand"], d["scores"], 10)
    per_list = np.stack([(labels[items] == g).sum(axis=1) for g in range(3)], axis=1)
    cap = int(np.floor(share * 10 + 1e-9))
    if cap * 3 >= 10:  # feasible (3 groups can fill 10 places): every group within its cap
        assert per_list.max() <= cap
    else:  # infeasible: the best skipped items fill the list, and every group still gets its cap first
        assert per_list.min() >= min(cap, 10)
    assert (items >= 0).all()  # filled either way (strict=False)


def test_exposure_cap_per_group_mapping_and_strict() -> None:
    d = _data()
    head = (np.arange(N_ITEMS) < 20).astype(np.int64)  # group 1: 20 "popular" items, group 0 the rest
    scores = d["scores"] + 5.0 * head[d["cand"]]  # the model loves the head
    items, _ = ExposureCap(head, max_share={1: 0.2}).rerank(d["users"], d["cand"], scores, 10)
    assert (head[items] == 1).sum(axis=1).max() <= 2
    # group 0 uncapped: the rest of each list is the best tail items
    base = _model_order(d["cand"], scores, 10)
    assert (head[base] == 1).sum(axis=1).max() > 2
    # strict: a list that cannot be filled within the caps is left short
    only_head = np.tile(np.arange(20), (2, 1))
    items, out = ExposureCap(head, max_share=0.3, strict=True).rerank(np.arange(2), only_head, np.ones((2, 20)), 10)
    assert ((items >= 0).sum(axis=1) == 3).all() and np.isneginf(out[:, 3:]).all()


def test_fair_exposure_moves_exposure_towards_relevance() -> None:
    rng = np.random.default_rng(3)
    n_users = 80
    labels = np.arange(N_ITEMS) % 2
    cand = np.stack([rng.choice(N_ITEMS, C, replace=False) for _ in range(n_users)])
    # group 1 is almost as relevant as group 0 but always ranked just below it
    scores = rng.random((n_users, C)) * 0.1 + 0.5 + 0.05 * (labels[cand] == 0)
    # the target: group 1's share of the candidates' relevance (scores min-max scaled per user)
    lo, hi = scores.min(axis=1, keepdims=True), scores.max(axis=1, keepdims=True)
    rel = (scores - lo) / (hi - lo)
    target = rel[labels[cand] == 1].sum() / rel.sum()
    gaps = []
    for lam in (0.0, 0.3, 0.6, 1.0):
        items, _ = FairExposure(labels, lam=lam).rerank(np.arange(n_users), cand, scores, 10)
        gaps.append(abs(M.group_exposure_share(items, labels)[1] - target))
    assert gaps[0] > 0.2, gaps  # the model alone under-exposes group 1
    assert all(b < a for a, b in itertools.pairwise(gaps[:3])) and gaps[3] < 0.05, gaps


def test_bad_input_gets_typed_errors() -> None:
    d = _data()
    with pytest.raises(ConfigError, match="lam"):
        Calibrated(d["groups"], d["history"], lam=1.5)
    with pytest.raises(ConfigError, match="lam"):
        MMR(np.eye(3), lam=-0.1)
    with pytest.raises(ConfigError, match="max_share"):
        ExposureCap(d["groups"], max_share=2.0)
    with pytest.raises(ConfigError, match="unknown group"):
        ExposureCap(d["groups"], max_share={N_GROUPS + 3: 0.2})
    r = MMR(np.eye(N_ITEMS), lam=0.5)
    with pytest.raises(InvalidValueError, match="same shape"):
        r.rerank(np.arange(2), np.zeros((2, 5), int), np.zeros((2, 4)), 3)
    with pytest.raises(InvalidValueError, match="outside"):
        r.rerank(np.arange(1), np.array([[0, N_ITEMS]]), np.zeros((1, 2)), 1)
    with pytest.raises(InvalidValueError, match="one row per user"):
        r.rerank(np.arange(3), np.zeros((2, 5), int), np.zeros((2, 5)), 3)
    with pytest.raises(ConfigError, match="k must"):
        r.rerank(np.arange(1), np.zeros((1, 5), int), np.zeros((1, 5)), 0)
    with pytest.raises(InvalidValueError, match="history"):
        Calibrated(d["groups"], sp.csr_matrix((3, N_ITEMS + 1)), lam=0.5)
    with pytest.raises(InvalidValueError, match="integers"):
        ExposureCap(np.array([0.5, 1.5]), max_share=0.5)
    with pytest.raises(ConfigError, match="unknown rerank option"):
        from_spec({"diversity": 0.3}, item_vectors=np.eye(3))
    with pytest.raises(ConfigError, match="needs item vectors"):
        from_spec({"diversify": 0.3})


def test_from_spec_chains_in_a_fixed_order_and_keeps_model_scores() -> None:
    d = _data()
    names = [f"g{j}" for j in range(N_GROUPS)]
    vectors = np.random.default_rng(1).normal(size=(N_ITEMS, 8))
    r = from_spec(
        {"diversify": 0.3, "max_share": {"g0": 0.3}},
        item_groups=d["groups"],
        item_vectors=vectors,
        group_names=names,
    )
    assert isinstance(r, Chain) and [type(x).__name__ for x in r.rerankers] == ["MMR", "ExposureCap"]
    items, out = r.rerank(d["users"], d["cand"], d["scores"], 10)
    # the cap binds the final list
    assert (d["groups"][items, 0] > 0).sum(axis=1).max() <= 3
    lookup = [dict(zip(c.tolist(), s.tolist())) for c, s in zip(d["cand"], d["scores"])]
    assert all(out[j, t] == lookup[j][int(items[j, t])] for j in range(len(items)) for t in range(10))
    single = from_spec({"calibrate": 0.4}, item_groups=d["groups"], history=d["history"])
    assert isinstance(single, Calibrated) and single.lam == 0.4
    with pytest.raises(ConfigError, match="unknown group"):
        from_spec({"max_share": {"nope": 0.3}}, item_groups=d["groups"], group_names=names)


def test_groups_from_labels() -> None:
    matrix, names = groups_from_labels([["Comedy", "Drama"], "Drama", [], ""])
    assert names == ["Comedy", "Drama"]
    np.testing.assert_array_equal(matrix, [[1, 1], [0, 1], [0, 0], [0, 0]])


@pytest.mark.slow
def test_real_data_calibration_and_gender_gap(data_dir: Any) -> None:
    """ml-100k random811: EASE re-ranked by genre calibration keeps most of its NDCG and halves nothing it should
    not; the NDCG gap between the genders is reported."""
    from fusionrec.data.datasets import load_benchmark_split, load_dataset
    from fusionrec.evaluation import evaluate_ranking
    from fusionrec.models.linear import EASE

    split = load_benchmark_split("ml-100k.random811", data_dir)
    train, valid, test = split.train.binarize(), split.valid.binarize(), split.test.binarize()
    dataset = load_dataset("ml-100k", data_dir=data_dir)
    labels, _ = dataset.item_modalities["genres"].align(train.item_ids)
    genres, names = groups_from_labels([list(v) if v is not None else [] for v in labels])
    profile, _ = dataset.user_modalities["profile"].align(train.user_ids)
    gender = np.asarray(profile["gender"].astype(str))
    model = EASE(reg=300.0).fit(train)

    def run(rerank: Any) -> dict[str, float]:
        return evaluate_ranking(
            model, train, test, k=10, exclude=[train, valid], item_groups=genres, user_groups=gender,
            item_features=genres, rerank=rerank,
        ).metrics  # fmt: skip

    base = run(None)
    cal = run(Calibrated(genres, train, lam=0.5))
    div = run(MMR(genres, lam=0.3))
    assert len(names) >= 18 and set(gender) == {"F", "M"}
    assert 0.0 <= base["NDCGGap@10"] < 0.1
    assert cal["CalibrationKL@10"] < 0.7 * base["CalibrationKL@10"]
    assert cal["NDCG@10"] > 0.85 * base["NDCG@10"]
    assert div["ILD@10"] > base["ILD@10"] + 0.02 and div["NDCG@10"] > 0.85 * base["NDCG@10"]
