from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from fusionrec.data import Interactions, Split
from fusionrec.errors import ConfigError
from fusionrec.evaluation import evaluate_ranking, evaluate_ratings, paired_ttest, wilcoxon_test
from fusionrec.models import BiasBaseline, MostPopular, Recommender, SideInfo


class FixedScores(Recommender):
    """Scores from a given dense matrix (for checking the evaluator against brute force)."""

    def __init__(self, table: np.ndarray | None = None) -> None:
        self.table = table

    def _fit(self, train: Interactions, side: SideInfo | None) -> None:
        self.scores_ = np.asarray(self.table, dtype=np.float32)

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        s = self.scores_[np.asarray(users)]
        return s if items is None else s[:, items]


def _brute_force(scores: np.ndarray, train: sp.csr_matrix, test: sp.csr_matrix, k: int, cand: np.ndarray | None = None):
    recalls, ndcgs = [], []
    for u in range(scores.shape[0]):
        rel = set(test[u].indices.tolist())
        if cand is not None:
            rel &= set(cand.tolist())
        if not rel:
            continue
        seen = set(train[u].indices.tolist())
        pool = [i for i in range(scores.shape[1]) if i not in seen and (cand is None or i in set(cand.tolist()))]
        ranked = sorted(pool, key=lambda i: (-scores[u, i], i))[:k]
        hits = [1.0 if i in rel else 0.0 for i in ranked]
        recalls.append(sum(hits) / len(rel))
        dcg = sum(h / np.log2(r + 2) for r, h in enumerate(hits))
        idcg = sum(1 / np.log2(r + 2) for r in range(min(len(rel), k)))
        ndcgs.append(dcg / idcg)
    return float(np.mean(recalls)), float(np.mean(ndcgs))


@pytest.mark.parametrize("batch_size", [7, 1000])
@pytest.mark.parametrize("use_candidates", [False, True])
def test_recall_ndcg_equal_brute_force(interactions: Interactions, batch_size: int, use_candidates: bool) -> None:
    rng = np.random.default_rng(5)
    mask = rng.random(interactions.nnz) < 0.25
    split = Split(train=interactions.select(~mask), test=interactions.select(mask))
    scores = rng.normal(size=interactions.shape)
    model = FixedScores(scores).fit(split.train)
    cand = np.sort(rng.choice(interactions.n_items, 25, replace=False)) if use_candidates else None
    # a random mask leaves some test users without training rows; the brute force counts them too
    res = evaluate_ranking(
        model, split.train, split.test, k=20, batch_size=batch_size, candidates=cand, cold_users=True
    )
    recall, ndcg = _brute_force(scores, split.train.matrix, split.test.matrix, 20, cand)
    assert res.metrics["Recall@20"] == pytest.approx(recall)
    assert res.metrics["NDCG@20"] == pytest.approx(ndcg)
    # recommendations never include training items
    for row, u in zip(res.recommendations, res.users):
        assert not set(row.tolist()) & set(split.train.matrix[u].indices.tolist())


def test_auc_and_significance(small_split: Split) -> None:
    pop = MostPopular().fit(small_split.train)
    bias = BiasBaseline().fit(small_split.train)
    a = evaluate_ranking(pop, small_split.train, small_split.test, compute_auc=True, item_features=np.eye(40))
    b = evaluate_ranking(bias, small_split.train, small_split.test, compute_auc=True)
    assert 0.0 <= a.metrics["AUC"] <= 1.0
    assert "ILD@20" in a.metrics and "Coverage@20" in a.metrics
    np.testing.assert_array_equal(a.users, b.users)
    t = paired_ttest(a.per_user["NDCG@20"], b.per_user["NDCG@20"])
    w = wilcoxon_test(a.per_user["NDCG@20"], b.per_user["NDCG@20"])
    assert 0 <= t.p_value <= 1 and 0 <= w.p_value <= 1 and t.n == len(a.users)
    same = paired_ttest(a.per_user["NDCG@20"], a.per_user["NDCG@20"])
    assert same.p_value == 1.0 and not same.significant()
    with pytest.raises(ConfigError):
        paired_ttest(np.ones(3), np.ones(4))


def test_rating_evaluation(small_split: Split) -> None:
    model = BiasBaseline().fit(small_split.train)
    out = evaluate_ratings(model, small_split.test)
    assert out["n"] == small_split.test.nnz and 0 < out["MAE"] <= out["RMSE"] < 2.5
    with pytest.raises(ConfigError, match="explicit"):
        evaluate_ratings(model, small_split.test.binarize())


def test_bad_arguments(small_split: Split) -> None:
    model = MostPopular().fit(small_split.train)
    with pytest.raises(ConfigError, match="unknown ranking metric"):
        evaluate_ranking(model, small_split.train, small_split.test, metrics=["bogus"])
    with pytest.raises(ConfigError, match="positive"):
        evaluate_ranking(model, small_split.train, small_split.test, k=0)


@pytest.mark.realdata
def test_most_popular_on_ml_latest_small_takes_seconds(data_dir) -> None:  # type: ignore[no-untyped-def]
    from fusionrec.data import load_split_file

    s = load_split_file(data_dir / "splits" / "ml-latest-small.random811.csv")
    model = MostPopular().fit(s.train)
    res = evaluate_ranking(model, s.train, s.test, exclude=[s.train, s.valid])
    assert res.info["n_users"] > 500
    assert res.seconds < 30  # about 0.5 s here; the bound only catches a quadratic regression
    assert 0.05 < res.metrics["NDCG@20"] < 0.3


class _TimeAware(Recommender):
    """Predicts the pair's timestamp (in days) when given one, 0 otherwise: shows what reached predict."""

    predicts_ratings = True

    def _fit(self, train: Interactions, side: SideInfo | None) -> None:
        self.ok_ = np.ones(1)

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        n = self.n_items_ if items is None else len(items)
        return np.zeros((len(np.atleast_1d(users)), n), np.float32)

    def predict(self, users: np.ndarray, items: np.ndarray, timestamps: np.ndarray | None = None) -> np.ndarray:
        if timestamps is None:
            return np.zeros(len(users), np.float32)
        return (np.asarray(timestamps, np.float64) / 86400.0).astype(np.float32)


def test_rating_evaluation_passes_timestamps_to_time_aware_models() -> None:
    from fusionrec.ensemble import WeightedBlend

    users = np.array([0, 0, 1, 1, 2])
    items = np.array([0, 1, 0, 2, 1])
    days = np.array([1, 2, 3, 4, 5], dtype=np.int64)
    test = Interactions.from_arrays(users, items, days.astype(np.float32), timestamps=days * 86400)
    res = evaluate_ratings(_TimeAware().fit(test), test)
    assert res["RMSE"] == pytest.approx(0.0, abs=1e-6)  # predicted exactly the ratings = the days
    blend = WeightedBlend(models=[_TimeAware(), BiasBaseline()], valid_fraction=0.4, refit=False, clip=False)
    blend.fit(test)
    pred = blend.member_predictions(test.row_indices(), test.matrix.indices, test.timestamps)
    np.testing.assert_allclose(pred[0], test.matrix.data, atol=1e-6)  # the time-aware member saw the times


def _with_unseen_user(split: Split) -> tuple[Interactions, Interactions]:
    """``split``'s train without user 0's rows, and its test with user 0 (so user 0 is unseen in training)."""
    train, test = split.train, split.test
    rows = train.row_indices()
    if test.user_counts()[0] == 0:  # make sure user 0 is a test user
        test = Interactions.concat([test, train.select(rows == 0)])
    return train.select(rows != 0), test


def test_test_users_unseen_in_training_are_reported(small_split: Split) -> None:
    """Test users without training rows are counted and reported (issue 11), not silently evaluated."""
    import warnings

    from fusionrec.data import DataWarning

    train, test = _with_unseen_user(small_split)
    model = MostPopular().fit(train)
    with pytest.warns(DataWarning, match=r"1 of the \d+ evaluated test users have no training interaction"):
        res = evaluate_ranking(model, train, test, k=10)
    assert res.unseen_users == 1 and res.info["unseen_users"] == 1
    assert 0 in res.users  # still evaluated
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a cold-user evaluation says so: no warning, still counted
        cold = evaluate_ranking(model, train, test, k=10, cold_users=True)
    assert cold.unseen_users == 1
    warm = evaluate_ranking(MostPopular().fit(small_split.train), small_split.train, small_split.test, k=10)
    assert warm.unseen_users == 0


def test_coverage_at_every_k(small_split: Split) -> None:
    """Coverage is reported at each K, not only the largest (issue 10)."""
    model = MostPopular().fit(small_split.train)
    res = evaluate_ranking(model, small_split.train, small_split.test, k=(1, 5, 10))
    cov = [res.metrics[f"Coverage@{k}"] for k in (1, 5, 10)]
    assert cov[0] <= cov[1] <= cov[2]
    n_items = small_split.train.n_items
    assert cov[0] == pytest.approx(len(np.unique(res.recommendations[:, 0])) / n_items)


def test_rating_evaluation_refuses_a_ranking_model(small_split: Split) -> None:
    """RMSE of a model whose scores are not ratings is meaningless: a ConfigError naming the model (issue 10)."""
    model = MostPopular().fit(small_split.train)
    with pytest.raises(ConfigError, match=r"MostPopular does not predict ratings.*evaluate_ranking"):
        evaluate_ratings(model, small_split.test)


def test_rerank_and_fairness_extras(small_split: Split) -> None:
    from fusionrec.rerank import MMR, Calibrated

    train, test = small_split.train, small_split.test
    rng = np.random.default_rng(0)
    genres = (rng.random((train.n_items, 4)) < 0.4).astype(float)
    genres[:, 0] += np.arange(train.n_items) % 2 == 0  # every other item is genre 0 as well
    activity = np.arange(train.n_users) % 2
    model = BiasBaseline().fit(train)
    base = evaluate_ranking(model, train, test, k=10, item_groups=genres, user_groups=activity)
    for key in ("CalibrationKL@10", "ExposureGini@10", "GroupExposureGini@10", "PopularShare@10", "NDCGGap@10"):
        assert key in base.metrics and np.isfinite(base.metrics[key]), key
    by_group = base.info["by_user_group"]["NDCG@10"]
    assert base.metrics["NDCGGap@10"] == pytest.approx(abs(by_group[0] - by_group[1]))
    assert sum(base.info["group_exposure_share"]) == pytest.approx(1.0)
    plain = evaluate_ranking(model, train, test, k=10)
    assert "CalibrationKL@10" not in plain.metrics  # the extras are opt-in
    # lam = 0 re-ranks nothing; lam = 1 calibrates against each user's training genres
    same = evaluate_ranking(model, train, test, k=10, rerank=MMR(np.eye(train.n_items), lam=0.0))
    np.testing.assert_array_equal(same.recommendations, plain.recommendations)
    cal = evaluate_ranking(
        model, train, test, k=10, item_groups=genres, rerank=Calibrated(genres, train.matrix, lam=1.0)
    )
    assert cal.metrics["CalibrationKL@10"] < 0.7 * base.metrics["CalibrationKL@10"]
    assert cal.info["rerank"] == "Calibrated"
    seen = train.matrix[cal.users].toarray() > 0
    assert not np.take_along_axis(seen, np.maximum(cal.recommendations, 0), axis=1).any()  # still masked
    with pytest.raises(ConfigError, match="user_groups"):
        evaluate_ranking(model, train, test, k=10, user_groups=activity[:-1])


def test_training_items_are_always_masked_and_exclude_adds_to_them(interactions: Interactions) -> None:
    """``exclude`` adds to the training part, it never replaces it: ``exclude=[valid]`` ranks exactly as
    ``exclude=[train, valid]`` (no training and no valid item recommended) and differs from masking train only."""
    rng = np.random.default_rng(2)
    r = rng.random(interactions.nnz)
    train, valid, test = (
        interactions.select(r >= 0.3),
        interactions.select((r >= 0.15) & (r < 0.3)),
        interactions.select(r < 0.15),
    )
    model = MostPopular().fit(train)  # scores training items high: unmasked, they would fill the lists
    only_valid = evaluate_ranking(model, train, test, k=10, exclude=[valid], cold_users=True)
    both = evaluate_ranking(model, train, test, k=10, exclude=[train, valid], cold_users=True)
    train_only = evaluate_ranking(model, train, test, k=10, cold_users=True)
    np.testing.assert_array_equal(only_valid.recommendations, both.recommendations)
    assert only_valid.metrics == both.metrics
    users, recs = only_valid.users, np.maximum(only_valid.recommendations, 0)
    for part in (train, valid):
        masked = part.matrix[users].toarray() > 0
        assert not np.take_along_axis(masked, recs, axis=1)[only_valid.recommendations >= 0].any()
    assert not np.array_equal(train_only.recommendations, only_valid.recommendations)  # valid items were masked too
