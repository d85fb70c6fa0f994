"""The factor contract (fusionrec.models.factors): which models are factor / cold-start models, the fold-in maths."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from fusionrec.errors import ConfigError, DataError
from fusionrec.models import SideInfo, available_models, get_model_class, load_model, make_model
from fusionrec.models.coldstart import UserColdStart
from fusionrec.models.declaration import COLUMNS, undeclared_state
from fusionrec.models.factors import FactorModel, Factors, confidence_fold_in, finish_ratings, ridge_fold_in
from fusionrec.models.mf.als import ALS
from fusionrec.models.mf.nmf import NMF
from fusionrec.models.mf.svd import SVD

from ..conftest import make_interactions

ENSEMBLES = {"WeightedBlend", "Stacking", "ReciprocalRankFusion", "Switching"}
FACTOR_MODELS = {
    "ALS", "BPR", "SVD", "SVDpp", "NMF", "PMF", "BayesianFM", "BiasBaseline", "VBPR", "HybridMF", "GraphFusion",
    "LightGCN", "DeepFusion", "SocialMF", "SoRec", "TrustSVD", "SocialBPR", "SocialLightGCN", "DPMF", "FedMF",
    "FineTunedTwoTower",
}  # fmt: skip
#: TimeSVD++ scores at a time, DeepFusion's users are an embedding table (no fold-in yet), UserKNN scores from fitted
#: neighbour lists
NO_USER_COLD_START = {"TimeSVDpp", "DeepFusion", "UserKNN"}


@pytest.mark.parametrize("name", sorted(set(available_models()) - ENSEMBLES))
def test_every_model_declares_its_contracts(name: str) -> None:
    model = get_model_class(name)()
    assert isinstance(model, FactorModel) == (name in FACTOR_MODELS)
    assert isinstance(model, UserColdStart) == (name not in NO_USER_COLD_START)


def test_augmented_columns_only_when_present() -> None:
    user = np.arange(6, dtype=np.float32).reshape(3, 2)
    item = np.ones((4, 2), np.float32)
    assert Factors(user, item).augmented()[0].shape == (3, 2)
    f = Factors(user, item, global_bias=2.5)
    U, V = f.augmented()
    assert U.shape == (3, 3) and V.shape == (4, 3)
    np.testing.assert_allclose(U @ V.T, user @ item.T + 2.5)
    f = Factors(user, item, np.array([1, 2, 3], np.float32), np.array([0, 1, 0, 1], np.float32), 0.5)
    U, V = f.augmented()
    assert U.shape == (3, 4)
    np.testing.assert_allclose(U @ V.T, f.scores(np.arange(3)), rtol=1e-6)


def test_confidence_fold_in_is_als_exact_solve() -> None:
    train = make_interactions(seed=2, explicit=False)
    model = ALS(n_factors=4, epochs=3, alpha=3.0, reg=0.2, seed=0).fit(train)
    row = train.matrix[5]
    expected = model.fold_in(row)[0]
    got = confidence_fold_in(model.item_factors_, row.indices, row.data, reg=0.2, alpha=3.0)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_ridge_fold_in_solves_the_normal_equations() -> None:
    rng = np.random.default_rng(0)
    item = rng.normal(size=(10, 3)).astype(np.float32)
    ib = rng.normal(size=10).astype(np.float32)
    f = Factors(np.zeros((1, 3), np.float32), item, np.zeros(1, np.float32), ib, 3.0)
    items = np.array([1, 4, 6, 8, 9])
    r = np.array([4.0, 2.0, 5.0, 3.0, 1.0])
    vec, bias = ridge_fold_in(f, items, r, reg=0.5)
    X = np.hstack([item[items], np.ones((5, 1))]).astype(np.float64)
    w = np.linalg.solve(X.T @ X + 0.5 * np.eye(4), X.T @ (r - 3.0 - ib[items]))
    np.testing.assert_allclose(np.append(vec, bias), w, rtol=1e-4, atol=1e-5)
    vec, bias = ridge_fold_in(f, items, r, reg=0.5, fit_user_bias=False, nonnegative=True)
    assert bias == 0.0 and (vec >= 0).all()
    assert ridge_fold_in(f, items[:0], r[:0], reg=0.5)[0].tolist() == [0.0, 0.0, 0.0]


def test_nmf_fold_in_stays_non_negative() -> None:
    train = make_interactions(seed=1)
    model = NMF(n_factors=4, epochs=10).fit(train)
    u = model.fold_in_user([0, 1, 2, 3], np.array([5.0, 1.0, 4.0, 2.0]))[0]
    assert (model.user_vectors_[u] >= 0).all()


def test_add_item_vectors_checks_shapes_and_biases() -> None:
    train = make_interactions(seed=1, explicit=False)
    als = ALS(n_factors=3, epochs=2).fit(train)
    with pytest.raises(DataError, match=r"\[m, 3\]"):
        als.add_item_vectors(np.zeros((1, 4)))
    with pytest.raises(ConfigError, match="no item biases"):
        als.add_item_vectors(np.zeros((1, 3)), np.ones(1))
    svd = SVD(n_factors=3, epochs=2).fit(make_interactions(seed=1))
    new = svd.add_item_vectors(svd.item_factors_[:2], svd.item_bias_[:2])
    np.testing.assert_allclose(svd.predict(np.array([0, 0]), new), svd.predict(np.array([0, 0]), np.array([0, 1])))


def test_time_svdpp_is_not_a_factor_model() -> None:
    model = get_model_class("TimeSVDpp")()
    assert not isinstance(model, FactorModel) and not isinstance(model, UserColdStart)


# ---------------------------------------------------------------- the one scoring path
def test_factor_scores_and_pair_scores_agree_with_the_formula() -> None:
    rng = np.random.default_rng(0)
    user, item = rng.normal(size=(5, 3)).astype(np.float32), rng.normal(size=(7, 3)).astype(np.float32)
    ub, ib = rng.normal(size=5).astype(np.float32), rng.normal(size=7).astype(np.float32)
    f = Factors(user, item, ub, ib, 1.5)
    expected = user.astype(np.float64) @ item.T.astype(np.float64) + ub[:, None] + ib[None, :] + 1.5
    got = f.scores(np.arange(5))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(f.scores(np.array([1, 3]), np.array([6, 0])), got[[1, 3]][:, [6, 0]])
    users, items = rng.integers(0, 5, 100), rng.integers(0, 7, 100)
    np.testing.assert_array_equal(f.pair_scores(users, items), got[users, items])
    with pytest.raises(DataError, match="pair up"):
        f.pair_scores(np.arange(3), np.arange(2))


def test_finish_ratings_falls_back_then_clips() -> None:
    est = np.array([[0.2, 3.0], [9.0, 2.0]], np.float32)
    known = np.array([[True, False], [True, True]])
    got = finish_ratings(est, low=1.0, high=5.0, known=known, fallback=np.full((2, 2), 4.0))
    np.testing.assert_array_equal(got, [[1.0, 4.0], [5.0, 2.0]])
    assert got.dtype == np.float32
    np.testing.assert_array_equal(finish_ratings(est, low=None, high=None), est)


RATING_FACTOR_MODELS = ["SVD", "SVDpp", "NMF", "PMF", "BayesianFM", "SocialMF", "SoRec", "TrustSVD"]


@pytest.mark.parametrize("name", RATING_FACTOR_MODELS)
def test_rating_factor_models_score_through_factors(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """score/predict are Factors.scores / pair_scores finished by finish_ratings: replacing Factors.scores shows."""
    train = make_interactions(n_users=30, n_items=20)
    model = make_model(name, **_FAST[name]).fit(train, SideInfo(social=_trust(train.n_users)))
    users = np.arange(train.n_users)
    f = model.factors()
    low, high = float(train.matrix.data.min()), float(train.matrix.data.max())
    known = np.ones((len(users), train.n_items), bool)
    if hasattr(model, "user_known_"):
        known = model.user_known_[:, None] & model.item_known_[None, :]
    s = model.score(users)
    np.testing.assert_array_equal(s[known], np.clip(f.scores(users), low, high)[known])
    pairs = np.nonzero(known)
    np.testing.assert_array_equal(model.predict(*pairs), np.clip(f.pair_scores(*pairs), low, high))
    monkeypatch.setattr(Factors, "scores", lambda self, users, items=None: np.full((len(users), 1), 3.0, np.float32))
    assert np.all(model.score(users[:2], np.array([0])) == 3.0)


# ---------------------------------------------------------------- declared state (B1's models)
def _trust(n: int) -> sp.csr_matrix:
    rng = np.random.default_rng(0)
    rows = np.repeat(np.arange(n), 3)
    return sp.csr_matrix((np.ones(len(rows)), (rows, rng.integers(0, n, len(rows)))), shape=(n, n))


_FAST: dict[str, dict[str, Any]] = {
    "SVD": {"epochs": 2}, "SVDpp": {"epochs": 2}, "SVDpp-both": {"epochs": 2, "implicit": "both"},
    "TimeSVDpp": {"epochs": 2}, "TimeSVDpp-both": {"epochs": 2, "implicit": "both"}, "NMF": {"epochs": 2},
    "PMF": {"epochs": 2}, "BayesianFM": {"epochs": 4, "n_burn_in": 1},
    "BayesianFM-both": {"epochs": 4, "n_burn_in": 1, "implicit_feedback": "both"}, "SocialMF": {"epochs": 2},
    "SoRec": {"epochs": 2}, "TrustSVD": {"epochs": 2},
}  # fmt: skip


@pytest.mark.parametrize("variant", sorted(_FAST))
def test_declared_state_covers_every_per_user_and_per_item_array(variant: str, tmp_path: Any) -> None:
    """On data whose user and item counts differ from every other size, every learned array with a user (item) axis
    is declared; after forget_user + save no saved array holds the user's row, raw id or rating days."""
    name = variant.split("-")[0]
    train = make_interactions(n_users=61, n_items=43)
    model = make_model(name, **_FAST[variant]).fit(train, SideInfo(social=_trust(train.n_users)))
    assert undeclared_state(model) == []
    u = 7
    assert model.seen_[u].nnz > 0
    model.forget_user(u)
    path = model.save(tmp_path / "m")
    raw = str(train.user_ids.to_id(np.array([u]))[0])
    assert raw not in (path / "manifest.json").read_text()
    loaded = load_model(path)
    decl = type(model).declaration()
    state = loaded._get_state()
    for key, value in state.items():
        if sp.issparse(value):
            if key in decl.user_state:
                assert sp.csr_matrix(value)[u].nnz == 0, key
            continue
        if not isinstance(value, np.ndarray) or value.ndim == 0:
            continue
        if value.dtype.kind == "U":
            assert raw not in value.tolist(), key
        elif value.shape[0] == train.n_users:
            assert not np.any(value[u]), f"{key} still holds user {u}'s row"
    assert np.isfinite(loaded.score(np.array([0, u]))).all()


def test_removing_a_declaration_is_caught() -> None:
    """The check above fails for a model that does not declare an array it holds (here SVD++'s y_j)."""
    train = make_interactions(n_users=61, n_items=43)
    model = make_model("SVDpp", epochs=1).fit(train)
    model.extra_users_ = np.zeros(train.n_users)
    assert undeclared_state(model) == ["extra_users_: axis 0 has n_users_ entries"]
    undeclared = type("Undeclared", (type(model),), {"item_state": {"implicit_factors_": COLUMNS}})
    model.__class__ = undeclared
    assert "implicit_factors_: axis 0 has n_items_ entries" in undeclared_state(model)


def test_confidence_fold_in_keeps_the_item_gram_only_while_the_item_factors_are_the_same() -> None:
    """Serving folds a user in for every posted event: the O(n_items d^2) gram is computed once per item array, and
    a replaced item array (fit, add_items) is never answered with the old gram."""
    als = ALS(n_factors=4, epochs=3, reg=1.0, seed=0).fit(make_interactions(seed=1, explicit=False))
    items, values = np.array([0, 3, 5]), np.ones(3, np.float32)

    def expected() -> np.ndarray:
        return confidence_fold_in(als.item_factors_, items, values, reg=als.reg, alpha=als.alpha)

    u = int(als.fold_in_user(items, values)[0])
    np.testing.assert_allclose(als.user_factors_[u], expected(), rtol=1e-5, atol=1e-6)
    first = als._item_gram(als.item_factors_)
    assert als._item_gram(als.item_factors_) is first  # reused for the next user
    als.item_factors_ = als.item_factors_ * 2.0  # a new array, as fit and add_items assign
    u = int(als.fold_in_user(items, values)[0])
    np.testing.assert_allclose(als.user_factors_[u], expected(), rtol=1e-5, atol=1e-6)
    y = als.item_factors_.astype(np.float64)
    np.testing.assert_allclose(als._item_gram(als.item_factors_), y.T @ y)
