from __future__ import annotations

import numpy as np
import pytest

from fusionrec.data import IdMap, Interactions
from fusionrec.models import BiasBaseline, MostPopular, Random

from .contract import RecommenderContract


class TestMostPopular(RecommenderContract):
    seeded = False

    def make_model(self) -> MostPopular:
        return MostPopular()


class TestRandom(RecommenderContract):
    fold_in_overlap = 0.0  # a new user gets their own random scores

    def make_model(self) -> Random:
        return Random(seed=7)


class TestBiasBaseline(RecommenderContract):
    seeded = False

    def make_model(self) -> BiasBaseline:
        return BiasBaseline()


def test_most_popular_orders_by_count(interactions: Interactions) -> None:
    model = MostPopular().fit(interactions)
    items, _ = model.recommend([0], k=interactions.n_items, exclude_seen=False)
    counts = interactions.item_counts()[items[0]]
    assert np.all(np.diff(counts) <= 0)


def test_random_independent_of_batching(interactions: Interactions) -> None:
    model = Random(seed=1).fit(interactions)
    np.testing.assert_array_equal(model.score([3, 4])[1], model.score([4])[0])


def test_bias_baseline_matches_dense_least_squares() -> None:
    # tiny problem: the alternating solution converges to the joint ridge solution
    users = np.array([0, 0, 1, 1, 2, 2, 2])
    items = np.array([0, 1, 0, 2, 0, 1, 2])
    r = np.array([5, 3, 4, 1, 2, 2, 4], dtype=float)
    x = Interactions.from_arrays(users, items, r)
    lam_u, lam_i = 2.0, 3.0
    m = BiasBaseline(reg_user=lam_u, reg_item=lam_i, epochs=500).fit(x)
    mu = r.mean()
    A = np.zeros((7, 6))
    A[np.arange(7), users] = 1
    A[np.arange(7), 3 + items] = 1
    reg = np.diag([lam_u] * 3 + [lam_i] * 3)
    sol = np.linalg.solve(A.T @ A + reg, A.T @ (r - mu))
    np.testing.assert_allclose(m.user_bias_, sol[:3], atol=1e-4)
    np.testing.assert_allclose(m.item_bias_, sol[3:], atol=1e-4)


def test_n_iters_is_renamed_epochs() -> None:
    with pytest.warns(FutureWarning, match="'n_iters' was renamed 'epochs'"):
        model = BiasBaseline(n_iters=3)
    assert model.epochs == 3 and "n_iters" not in model.get_params()
    assert BiasBaseline.upgrade_params({"n_iters": 2}) == {"epochs": 2}


def test_zero_penalty_leaves_unrated_users_and_items_at_bias_zero() -> None:
    """reg_user = reg_item = 0 is inside the declared range: a user or item without ratings gets bias 0, not NaN."""
    x = Interactions.from_arrays(
        np.array(["a", "a", "b"]), np.array(["i", "j", "i"]), np.array([4.0, 2.0, 5.0]), explicit=True,
        user_ids=IdMap(["a", "b", "c"]), item_ids=IdMap(["i", "j", "k"]),
    )  # fmt: skip
    model = BiasBaseline(reg_user=0.0, reg_item=0.0).fit(x)
    assert np.isfinite(model.score(np.arange(3))).all()
    assert model.user_bias_[2] == 0.0 and model.item_bias_[2] == 0.0
    assert np.isfinite(model.score(model.fold_in_user([]))).all()
