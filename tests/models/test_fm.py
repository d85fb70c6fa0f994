from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from fusionrec.data import IdMap, Interactions
from fusionrec.errors import ConfigError, DataError
from fusionrec.models import SideInfo, load_model, make_model
from fusionrec.models._kernels.fm import fm_block_terms, fm_sweep_factor, fm_sweep_linear
from fusionrec.models.mf.fm import BayesianFM

from .contract import RecommenderContract


def _side_for(train: Interactions) -> SideInfo:
    rng = np.random.default_rng(0)
    ug = np.eye(3, dtype=np.float32)[rng.integers(0, 3, train.n_users)]
    ig = (rng.random((train.n_items, 4)) < 0.4).astype(np.float32)
    return SideInfo(user_features={"group": ug}, item_features={"genres": ig})


class TestBayesianFMContract(RecommenderContract):
    def make_model(self) -> BayesianFM:
        return BayesianFM(n_factors=4, epochs=30, n_burn_in=10, seed=1)


class TestBayesianFMSideImplicitContract(RecommenderContract):
    def make_model(self) -> BayesianFM:
        return BayesianFM(n_factors=3, epochs=25, n_burn_in=5, seed=2, implicit_feedback="both", max_kept_samples=7)

    def make_side(self, train: Interactions) -> SideInfo:
        return _side_for(train)


def _grid_interactions(users: np.ndarray, items: np.ndarray, ratings: np.ndarray, n_u: int, n_i: int) -> Interactions:
    m = sp.csr_matrix((ratings.astype(np.float32), (users, items)), shape=(n_u, n_i))
    m.sort_indices()
    return Interactions(m, IdMap(np.arange(n_u)), IdMap(np.arange(n_i)))


def _rmse(model: BayesianFM, test: Interactions) -> float:
    pred = model.predict(test.row_indices(), test.matrix.indices)
    return float(np.sqrt(np.mean((pred - test.matrix.data) ** 2)))


def test_rank0_equals_bayesian_linear_regression() -> None:
    """With alpha and lambda pinned by sharp hyper-priors, rank 0 is Bayesian linear regression on one-hot ids."""
    rng = np.random.default_rng(4)
    n_u, n_i = 8, 6
    mask = rng.random((n_u, n_i)) < 0.5
    mask[np.arange(n_u), np.arange(n_u) % n_i] = True
    u, i = np.nonzero(mask)
    y = 3.0 + rng.normal(0, 0.7, n_u)[u] + rng.normal(0, 0.7, n_i)[i] + rng.normal(0, 0.4, len(u))
    train = _grid_interactions(u, i, y, n_u, n_i)
    A, L, K = 4.0, 2.0, 1e9  # noise precision, prior precision, prior sharpness
    fm = BayesianFM(
        n_factors=0,
        epochs=6000,
        n_burn_in=200,
        seed=3,
        clip=False,
        alpha_0=2 * K,
        beta_0=2 * K / A,
        alpha_lambda=2 * K,
        beta_lambda=2 * K / L,
        gamma_0=1e12,
    ).fit(train)
    # analytic posterior: flat prior on w0, N(0, 1/L) on the biases
    ru, ri = train.row_indices(), train.matrix.indices
    X = np.zeros((len(ru), 1 + n_u + n_i))
    X[:, 0] = 1.0
    X[np.arange(len(ru)), 1 + ru] = 1.0
    X[np.arange(len(ru)), 1 + n_u + ri] = 1.0
    prior = np.full(X.shape[1], L)
    prior[0] = 0.0
    P = A * X.T @ X + np.diag(prior)
    cov = np.linalg.inv(P)
    mean = cov @ (A * X.T @ train.matrix.data.astype(np.float64))
    gu, gi = np.meshgrid(np.arange(n_u), np.arange(n_i), indexing="ij")
    Xg = np.zeros((n_u * n_i, X.shape[1]))
    Xg[:, 0] = 1.0
    Xg[np.arange(n_u * n_i), 1 + gu.ravel()] = 1.0
    Xg[np.arange(n_u * n_i), 1 + n_u + gi.ravel()] = 1.0
    expected = (Xg @ mean).reshape(n_u, n_i)
    sd = np.sqrt(np.einsum("ij,jk,ik->i", Xg, cov, Xg)).reshape(n_u, n_i)
    got = fm.score(np.arange(n_u))
    assert np.isclose(fm.alpha_trace_.mean(), A, rtol=1e-3)
    # Monte-Carlo error of ~6000 correlated draws: well under a tenth of a posterior sd
    assert np.max(np.abs(got - expected) / sd) < 0.12
    np.testing.assert_allclose(fm.user_bias_, mean[1 : 1 + n_u], atol=0.1)


def test_sampler_deterministic_for_a_seed(interactions: Interactions) -> None:
    side = _side_for(interactions)
    kw = {"n_factors": 3, "epochs": 20, "n_burn_in": 5, "implicit_feedback": "user"}
    a = BayesianFM(seed=5, **kw).fit(interactions, side)
    b = BayesianFM(seed=5, **kw).fit(interactions, side)
    c = BayesianFM(seed=6, **kw).fit(interactions, side)
    np.testing.assert_array_equal(a.score(np.arange(10)), b.score(np.arange(10)))
    np.testing.assert_array_equal(a.alpha_trace_, b.alpha_trace_)
    assert not np.array_equal(a.alpha_trace_, c.alpha_trace_)


def _planted(seed: int, n_u: int = 120, n_i: int = 100, density: float = 0.25) -> tuple[Interactions, Interactions]:
    rng = np.random.default_rng(seed)
    P = rng.normal(size=(n_u, 2))
    Qm = rng.normal(size=(n_i, 2))
    mask = rng.random((n_u, n_i)) < density
    u, i = np.nonzero(mask)
    y = 3.0 + 0.3 * rng.normal(size=n_u)[u] + (P[u] * Qm[i]).sum(1) + rng.normal(0, 0.3, len(u))
    test = rng.random(len(u)) < 0.2
    return (
        _grid_interactions(u[~test], i[~test], y[~test], n_u, n_i),
        _grid_interactions(u[test], i[test], y[test], n_u, n_i),
    )


def test_recovers_planted_interaction_better_than_linear() -> None:
    train, test = _planted(0)
    kw = {"epochs": 120, "n_burn_in": 40, "seed": 0, "clip": False}
    linear = BayesianFM(n_factors=0, **kw).fit(train)
    fm = BayesianFM(n_factors=4, **kw).fit(train)
    r_lin, r_fm = _rmse(linear, test), _rmse(fm, test)
    assert r_fm < 0.7 * r_lin
    assert r_fm < 0.5  # noise sd 0.3


def test_side_features_help_when_ratings_depend_on_them() -> None:
    """y = 3 + 1.2 * s_u * g_i with only 2 training ratings per user: ids alone cannot learn the sign of s_u."""
    rng = np.random.default_rng(1)
    n_u, n_i = 300, 150
    s = rng.choice([-1.0, 1.0], n_u)
    g = rng.choice([-1.0, 1.0], n_i)
    u = np.repeat(np.arange(n_u), 5)
    i = np.concatenate([rng.choice(n_i, 5, replace=False) for _ in range(n_u)])
    y = 3.0 + 1.2 * s[u] * g[i] + rng.normal(0, 0.3, len(u))
    test = np.tile([False, False, True, True, True], n_u)
    train = _grid_interactions(u[~test], i[~test], y[~test], n_u, n_i)
    held = _grid_interactions(u[test], i[test], y[test], n_u, n_i)
    side = SideInfo(
        user_features={"segment": np.stack([s > 0, s < 0], 1).astype(np.float32)},
        item_features={"kind": np.stack([g > 0, g < 0], 1).astype(np.float32)},
    )
    kw = {"n_factors": 2, "epochs": 150, "n_burn_in": 50, "seed": 0}
    plain = BayesianFM(user_features=None, item_features=None, **kw).fit(train, side)
    with_side = BayesianFM(**kw).fit(train, side)
    assert list(with_side.group_names_) == ["user:id", "user:segment", "item:id", "item:kind"]
    r_plain, r_side = _rmse(plain, held), _rmse(with_side, held)
    assert r_side < 0.6 * r_plain
    assert r_side < 0.5


def _dense_block_problem(seed: int) -> tuple:
    rng = np.random.default_rng(seed)
    n_u, n_i, k = 5, 4, 2
    pairs = np.array([(u, i) for u in range(n_u) for i in range(n_i) if rng.random() < 0.6 or u == i % n_u])
    ru, ri = pairs[:, 0], pairs[:, 1]
    Bu = sp.csr_matrix(np.hstack([np.eye(n_u), rng.random((n_u, 2)) * (rng.random((n_u, 2)) < 0.7)]))
    Bi = sp.csr_matrix(np.hstack([np.eye(n_i), rng.random((n_i, 3))]))
    p = Bu.shape[1] + Bi.shape[1]
    w = rng.normal(size=p)
    V = rng.normal(size=(p, k))
    y = rng.normal(3, 1, len(ru))
    X = sp.hstack([Bu[ru], Bi[ri]]).toarray()
    return ru, ri, Bu, Bi, w, V, y, X


def _dense_pred(X: np.ndarray, w0: float, w: np.ndarray, V: np.ndarray) -> np.ndarray:
    q = X @ V
    return w0 + X @ w + 0.5 * ((q**2) - (X**2) @ (V**2)).sum(1)


def _terms(B: sp.csr_matrix, offset: int, w: np.ndarray, V: np.ndarray) -> tuple:
    n = B.shape[0]
    lin, Q, S = np.empty(n), np.empty((n, V.shape[1])), np.empty((n, V.shape[1]))
    fm_block_terms(B.indptr.astype(np.int64), B.indices.astype(np.int64), B.data, offset, w, V, lin, Q, S)
    return lin, Q, S


def test_factor_sweep_matches_dense_coordinate_updates() -> None:
    """With z = 0 a sweep sets each v_jf to its conditional mean; compare with the dense-X formula."""
    ru, ri, Bu, Bi, w, V, y, X = _dense_block_problem(0)
    w0, alpha, f = 0.3, 2.0, 1
    mu_v = np.array([[0.1, -0.2]])
    lam_v = np.array([[1.5, 0.7]])
    group = np.zeros(len(w), dtype=np.int64)
    # dense reference over the user-block features
    Vd = V.copy()
    for j in range(Bu.shape[1]):
        q = X @ Vd[:, f]
        h = X[:, j] * (q - Vd[j, f] * X[:, j])
        e = y - _dense_pred(X, w0, w, Vd)
        prec = alpha * (h @ h) + lam_v[0, f]
        Vd[j, f] = (alpha * (h @ (e + Vd[j, f] * h)) + lam_v[0, f] * mu_v[0, f]) / prec
    # kernel
    Vk = V.copy()
    _lin_u, Q_u, S_u = _terms(Bu, 0, w, Vk)
    _lin_i, Q_i, _S_i = _terms(Bi, Bu.shape[1], w, Vk)
    e = y - _dense_pred(X, w0, w, Vk)
    order = np.argsort(ru, kind="stable")
    ptr = np.concatenate([[0], np.cumsum(np.bincount(ru, minlength=Bu.shape[0]))]).astype(np.int64)
    csc = Bu.tocsc()
    fm_sweep_factor(
        f, ptr, order.astype(np.int64), ri.astype(np.int64), e, csc.indptr.astype(np.int64),
        csc.indices.astype(np.int64), csc.data, 0, Vk, group, mu_v, lam_v, alpha, np.zeros(Bu.shape[1]),
        Q_u, S_u, Q_i,
    )  # fmt: skip
    np.testing.assert_allclose(Vk, Vd, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(e, y - _dense_pred(X, w0, w, Vk), rtol=1e-10, atol=1e-10)
    _, Q_ref, S_ref = _terms(Bu, 0, w, Vk)
    np.testing.assert_allclose(Q_u, Q_ref, atol=1e-12)
    np.testing.assert_allclose(S_u, S_ref, atol=1e-12)


def test_linear_sweep_matches_dense_coordinate_updates() -> None:
    _ru, ri, Bu, Bi, w, V, y, X = _dense_block_problem(1)
    w0, alpha = -0.2, 1.5
    mu_w, lam_w = np.array([0.05]), np.array([3.0])
    group = np.zeros(len(w), dtype=np.int64)
    off = Bu.shape[1]
    wd = w.copy()
    for j in range(off, off + Bi.shape[1]):
        h = X[:, j]
        e = y - _dense_pred(X, w0, wd, V)
        prec = alpha * (h @ h) + lam_w[0]
        wd[j] = (alpha * (h @ (e + wd[j] * h)) + lam_w[0] * mu_w[0]) / prec
    wk = w.copy()
    lin_i, _, _ = _terms(Bi, off, wk, V)
    e = y - _dense_pred(X, w0, wk, V)
    order = np.argsort(ri, kind="stable")
    ptr = np.concatenate([[0], np.cumsum(np.bincount(ri, minlength=Bi.shape[0]))]).astype(np.int64)
    csc = Bi.tocsc()
    fm_sweep_linear(
        ptr, order.astype(np.int64), e, csc.indptr.astype(np.int64), csc.indices.astype(np.int64), csc.data,
        off, wk, group, mu_w, lam_w, alpha, np.zeros(Bi.shape[1]), lin_i,
    )  # fmt: skip
    np.testing.assert_allclose(wk, wd, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(e, y - _dense_pred(X, w0, wk, V), atol=1e-10)


def test_kept_samples_are_bounded(interactions: Interactions) -> None:
    fm = BayesianFM(n_factors=3, epochs=40, n_burn_in=10, max_kept_samples=4, seed=0).fit(interactions)
    assert fm.n_kept_samples_ == 4
    assert fm.user_factors_.shape == (interactions.n_users, 12)
    assert fm.item_factors_.shape == (interactions.n_items, 12)


def test_clip_to_training_range(interactions: Interactions) -> None:
    fm = BayesianFM(n_factors=2, epochs=20, n_burn_in=5).fit(interactions)
    s = fm.score(np.arange(interactions.n_users))
    assert s.min() >= interactions.matrix.data.min() and s.max() <= interactions.matrix.data.max()


def test_implicit_groups_and_registry_roundtrip(interactions: Interactions, tmp_path: Path) -> None:
    fm = make_model("BayesianFM", n_factors=2, epochs=15, n_burn_in=5, implicit_feedback="both")
    fm.fit(interactions)
    assert list(fm.group_names_) == ["user:id", "user:implicit_items", "item:id", "item:implicit_users"]
    fm.save(tmp_path / "fm")
    loaded = load_model(tmp_path / "fm")
    np.testing.assert_array_equal(loaded.score(np.arange(4)), fm.score(np.arange(4)))


@pytest.mark.parametrize(
    "params",
    [
        {"epochs": 10, "n_burn_in": 10},
        {"n_factors": -1},
        {"implicit_feedback": "items"},
        {"max_kept_samples": 0},
        {"alpha_0": 0.0},
        {"user_features": "some"},
    ],
)
def test_bad_params_raise_config_error(interactions: Interactions, params: dict) -> None:
    with pytest.raises(ConfigError):
        BayesianFM(**params).fit(interactions)


def test_side_feature_errors(interactions: Interactions) -> None:
    side = _side_for(interactions)
    with pytest.raises(ConfigError, match="not in the SideInfo"):
        BayesianFM(user_features=["age"], epochs=3, n_burn_in=1).fit(interactions, side)
    bad = SideInfo(user_features={"x": np.zeros((3, 2))})
    with pytest.raises(DataError, match="shape"):
        BayesianFM(epochs=3, n_burn_in=1).fit(interactions, bad)


@pytest.mark.slow
@pytest.mark.realdata
def test_ml100k_u1_rmse(data_dir: Path) -> None:
    from fusionrec.data.datasets.movielens import load_ml100k_fold

    split = load_ml100k_fold(data_dir / "ml-100k", 1)
    fm = BayesianFM(n_factors=10, epochs=200, n_burn_in=50, implicit_feedback="both").fit(split.train)
    assert _rmse(fm, split.test) < 0.90


def test_old_names_rank_and_n_iter_still_work_with_a_future_warning() -> None:
    with pytest.warns(FutureWarning) as caught:
        fm = BayesianFM(rank=3, n_iter=20)
    said = " ".join(str(w.message) for w in caught)
    assert "'rank' was renamed 'n_factors'" in said and "'n_iter' was renamed 'epochs'" in said
    assert (fm.n_factors, fm.epochs) == (3, 20)
    assert "rank" not in fm.get_params() and "n_iter" not in fm.get_params()
