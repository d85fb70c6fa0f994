from __future__ import annotations

import numpy as np
import pytest

from fusionrec.data import Interactions
from fusionrec.errors import ConfigError, DataError
from fusionrec.explain import explain
from fusionrec.models import SideInfo, load_model, make_model
from fusionrec.models.activity import ActivityCEASE
from fusionrec.models.linear import CEASE

from ..conftest import make_interactions
from .contract import RecommenderContract


def _side(n_items: int, seed: int = 0) -> SideInfo:
    rng = np.random.default_rng(seed)
    return SideInfo(item_features={"genre": np.eye(3, dtype=np.float32)[np.arange(n_items) % 3] + 0.05,
                                   "text": rng.normal(size=(n_items, 4)).astype(np.float32)})  # fmt: skip


def _sparse_max(train: Interactions) -> int:
    """A threshold that puts about half the users on each solution."""
    return int(np.median(np.diff(train.matrix.indptr)))


class TestActivityCEASE(RecommenderContract):
    seeded = False
    implicit = True

    def make_model(self) -> ActivityCEASE:
        return ActivityCEASE(reg=20.0, side_weight=5.0, user_power=0.5, sparse_max=6, sparse_reg=10.0)

    def make_side(self, train: Interactions) -> SideInfo | None:
        return _side(train.n_items)


def _reference(X: np.ndarray, F: np.ndarray, reg: float, side: float, power: float) -> np.ndarray:
    """The closed form written out densely: user-weighted Gram at the trace of X^T X, CEASE's side Gram."""
    deg = np.maximum(X.sum(axis=1), 1.0)
    G = X.T @ X
    Gw = X.T @ (X * deg[:, None] ** -power)
    G = Gw * np.trace(G) / np.trace(Gw) + side * F @ F.T + reg * np.eye(X.shape[1])
    P = np.linalg.inv(G)
    B = -P / np.diag(P)[None, :]
    np.fill_diagonal(B, 0.0)
    return B


def test_matches_the_dense_closed_form_on_both_sides_of_the_gate() -> None:
    train = make_interactions(seed=1, explicit=False)
    side = _side(train.n_items)
    t = _sparse_max(train)
    model = ActivityCEASE(
        reg=15.0, side_weight=4.0, user_power=0.5, history_idf=0.2, sparse_max=t, sparse_reg=8.0,
        sparse_side_weight=1.0, sparse_user_power=1.0, sparse_idf=0.5,
    ).fit(train, side)  # fmt: skip
    X = (train.matrix.toarray() > 0).astype(np.float64)
    from fusionrec.data.side import fuse_modalities

    F = fuse_modalities(side.item_features, sorted(side.item_features), impute="zero")[0].astype(np.float64)
    main, sparse = _reference(X, F, 15.0, 4.0, 0.5), _reference(X, F, 8.0, 1.0, 1.0)
    np.testing.assert_allclose(model.weights_, main, atol=1e-4)
    np.testing.assert_allclose(model.sparse_weights_, sparse, atol=1e-4)
    pop = np.maximum(X.sum(axis=0), 1.0)
    n = X.sum(axis=1)
    users = np.arange(train.n_users)
    assert (n <= t).any() and (n > t).any()
    expected = np.where((n <= t)[:, None], (X * pop**-0.5) @ sparse, (X * pop**-0.2) @ main)
    np.testing.assert_allclose(model.score(users), expected, rtol=1e-4, atol=1e-4)
    items = np.array([3, 0, 7])
    np.testing.assert_allclose(model.score(users[:9], items), expected[:9][:, items], rtol=1e-4, atol=1e-4)


def test_reduces_to_cease_and_fits_one_solution() -> None:
    train = make_interactions(seed=2, explicit=False)
    side = _side(train.n_items)
    plain = CEASE(reg=12.0, side_weight=3.0).fit(train, side)
    model = ActivityCEASE(reg=12.0, side_weight=3.0, user_power=0.0, history_idf=0.0, sparse_max=0).fit(train, side)
    np.testing.assert_allclose(model.weights_, plain.weights_, atol=1e-5)
    assert not hasattr(model, "sparse_weights_")
    users = np.arange(train.n_users)
    np.testing.assert_allclose(model.score(users), plain.score(users), rtol=1e-5, atol=1e-5)
    # sparse settings equal to the main ones: one solve too, whatever sparse_max says
    same = ActivityCEASE(reg=12.0, side_weight=3.0, user_power=0.5, sparse_max=10, sparse_reg=None,
                         sparse_side_weight=None, sparse_user_power=None, sparse_idf=None).fit(train, side)  # fmt: skip
    assert not hasattr(same, "sparse_weights_")


def test_refit_with_one_solution_drops_the_old_sparse_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    train = make_interactions(seed=2, explicit=False)
    model = ActivityCEASE(reg=12.0, side_weight=0.0, sparse_max=5, sparse_user_power=1.0).fit(train)
    assert hasattr(model, "sparse_weights_")
    model.set_params(sparse_max=0).fit(train)
    assert not hasattr(model, "sparse_weights_")
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    np.testing.assert_allclose(loaded.score(np.arange(4)), model.score(np.arange(4)), rtol=1e-6)


def test_gate_follows_the_folded_in_history() -> None:
    """A new user with a short history is scored by the sparse solution, a long one by the main solution."""
    train = make_interactions(seed=4, explicit=False)
    t = _sparse_max(train)
    model = ActivityCEASE(reg=10.0, side_weight=0.0, history_idf=0.0, sparse_max=t, sparse_idf=1.0).fit(train)
    short = np.arange(max(t, 1))
    long = np.arange(t + 3)
    for hist, W, idf in ((short, model.sparse_weights_, 1.0), (long, model.weights_, 0.0)):
        u = model.fold_in_user(hist)[0]
        x = np.zeros(train.n_items)
        x[hist] = model.item_pop_[hist] ** -idf
        np.testing.assert_allclose(model.score(np.array([u]))[0], x @ W, rtol=1e-4, atol=1e-5)


def test_content_free_without_side_and_typed_errors() -> None:
    train = make_interactions(seed=5, explicit=False)
    ActivityCEASE(side_weight=0.0, sparse_side_weight=0.0).fit(train)  # pure CF: no side needed
    ActivityCEASE(side_weight=0.0).fit(train)  # the sparse side weight defaults to the main one
    with pytest.raises(ConfigError, match="item features"):
        ActivityCEASE(side_weight=5.0).fit(train)
    with pytest.raises(ConfigError, match="sparse_max"):
        ActivityCEASE(sparse_max=-1).fit(train, _side(train.n_items))
    with pytest.raises(ConfigError, match="sparse_reg"):
        ActivityCEASE(sparse_reg=0.0).fit(train, _side(train.n_items))
    with pytest.raises(ConfigError, match="user_power"):
        make_model("ActivityCEASE", user_power=-0.5).fit(train, _side(train.n_items))
    with pytest.raises(DataError):
        ActivityCEASE().fit(train, _side(train.n_items + 1))
    with pytest.raises(ConfigError, match="GB"):
        ActivityCEASE(max_memory_gb=1e-9).fit(train, _side(train.n_items))


def test_contributions_sum_to_the_score_and_no_modality_shapley() -> None:
    train = make_interactions(seed=6, explicit=False)
    side = _side(train.n_items)
    t = _sparse_max(train)
    model = ActivityCEASE(reg=10.0, side_weight=2.0, sparse_max=t).fit(train, side)
    counts = np.diff(train.matrix.indptr)
    for u in (int(np.argmin(counts)), int(np.argmax(counts))):
        s = model.score(np.array([u]))[0]
        for i in (0, 5):
            _, parts = model.item_contributions(u, i)
            assert parts.sum() == pytest.approx(float(s[i]), abs=1e-4)
    with pytest.raises(ConfigError, match="attribution"):
        model.score_parts(0, 1, side=side)
    ex = explain(model, user=0, item=1, side=side)
    assert ex.attribution is None
