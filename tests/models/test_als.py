from __future__ import annotations

from pathlib import Path

import numba
import numpy as np
import pytest
import scipy.sparse as sp

from fusionrec.data import IdMap, Interactions
from fusionrec.errors import ConfigError, InvalidValueError
from fusionrec.evaluation import evaluate_ranking
from fusionrec.models import make_model
from fusionrec.models._kernels.als import als_cg_sweep, als_row_losses
from fusionrec.models.mf.als import ALS, confidence_matrix

from .contract import RecommenderContract
from .test_bpr import assert_declared_and_forgotten, odd_interactions


class TestALSContract(RecommenderContract):
    implicit = True

    def make_model(self) -> ALS:
        return ALS(n_factors=8, epochs=4, seed=1)


class TestALSCholeskyContract(RecommenderContract):
    implicit = True

    def make_model(self) -> ALS:
        return ALS(n_factors=6, epochs=3, solver="cholesky", alpha=2.0, reg=0.1, seed=1)


def _matrix_interactions(m: sp.csr_matrix) -> Interactions:
    m = sp.csr_matrix(m, dtype=np.float32)
    m.sort_indices()
    return Interactions(m, IdMap(np.arange(m.shape[0])), IdMap(np.arange(m.shape[1])), explicit=False)


def planted_split(seed: int = 0, n_users: int = 150, n_items: int = 120, rank: int = 3) -> tuple[Interactions, ...]:
    """A planted low-rank implicit matrix (top 15% of each user's affinities observed), split 80/20."""
    rng = np.random.default_rng(seed)
    aff = rng.normal(size=(n_users, rank)) @ rng.normal(size=(rank, n_items))
    mask = aff >= np.quantile(aff, 0.85, axis=1, keepdims=True)
    full = _matrix_interactions(sp.csr_matrix(mask.astype(np.float32)))
    test_mask = rng.random(full.nnz) < 0.2
    return full.select(~test_mask), full.select(test_mask)


@pytest.fixture
def tiny() -> sp.csr_matrix:
    rng = np.random.default_rng(5)
    dense = (rng.random((9, 7)) < 0.35) * rng.integers(1, 4, size=(9, 7))
    dense[0, :] = 0  # a user with no interactions
    return sp.csr_matrix(dense.astype(np.float32))


def _dense_wls(R: np.ndarray, Y: np.ndarray, alpha: float, reg: float) -> np.ndarray:
    """Row-wise dense weighted ridge: argmin_x sum_i c_i (p_i - x.y_i)^2 + reg |x|^2."""
    C = 1.0 + alpha * R
    P = (R > 0).astype(float)
    out = np.empty((R.shape[0], Y.shape[1]))
    for u in range(R.shape[0]):
        A = Y.T @ (C[u][:, None] * Y) + reg * np.eye(Y.shape[1])
        out[u] = np.linalg.solve(A, Y.T @ (C[u] * P[u]))
    return out


def _dense_loss(R: np.ndarray, X: np.ndarray, Y: np.ndarray, alpha: float, reg: float) -> float:
    C = 1.0 + alpha * R
    P = (R > 0).astype(float)
    S = X.astype(float) @ Y.astype(float).T
    return float((C * (P - S) ** 2).sum() + reg * ((X.astype(float) ** 2).sum() + (Y.astype(float) ** 2).sum()))


def test_cholesky_solutions_equal_dense_weighted_least_squares(tiny: sp.csr_matrix) -> None:
    alpha, reg = 3.0, 0.2
    model = ALS(n_factors=4, epochs=3, solver="cholesky", alpha=alpha, reg=reg).fit(_matrix_interactions(tiny))
    R = tiny.toarray().astype(float)
    # the last half-step solved the items exactly against the final user factors
    expected_items = _dense_wls(R.T, model.user_factors_.astype(float), alpha, reg)
    np.testing.assert_allclose(model.item_factors_, expected_items, rtol=1e-4, atol=1e-5)
    # fold_in is the user half-step against the final item factors
    expected_users = _dense_wls(R, model.item_factors_.astype(float), alpha, reg)
    np.testing.assert_allclose(model.fold_in(tiny), expected_users, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(model.fold_in(tiny)[0], 0.0)  # empty history -> zero vector


def test_cg_converges_to_dense_solution(tiny: sp.csr_matrix) -> None:
    alpha, reg, f = 2.0, 0.1, 4
    rng = np.random.default_rng(0)
    Y = rng.normal(scale=0.5, size=(tiny.shape[1], f)).astype(np.float32)
    conf = confidence_matrix(tiny, alpha, binarize=False)
    A0 = (Y.astype(float).T @ Y.astype(float) + reg * np.eye(f)).astype(np.float32)
    X = np.zeros((tiny.shape[0], f), dtype=np.float32)
    for _ in range(15):  # warm-started sweeps, as across ALS iterations
        als_cg_sweep(conf.indptr, conf.indices, conf.data, Y, A0, X, 3)
    expected = _dense_wls(tiny.toarray().astype(float), Y.astype(float), alpha, reg)
    np.testing.assert_allclose(X, expected, rtol=1e-3, atol=1e-4)


def test_row_losses_match_dense_objective(tiny: sp.csr_matrix) -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(tiny.shape[0], 3)).astype(np.float32)
    Y = rng.normal(size=(tiny.shape[1], 3)).astype(np.float32)
    conf = confidence_matrix(tiny, 1.5, binarize=False)
    G = Y.astype(float).T @ Y.astype(float)
    got = als_row_losses(conf.indptr, conf.indices, conf.data, X, Y, G).sum()
    assert got == pytest.approx(_dense_loss(tiny.toarray(), X, Y, 1.5, 0.0), rel=1e-6)


@pytest.mark.parametrize("solver", ["cg", "cholesky"])
def test_loss_decreases_every_iteration(solver: str) -> None:
    train, _ = planted_split(seed=2, n_users=60, n_items=50)
    model = ALS(n_factors=6, epochs=8, alpha=4.0, reg=0.05, solver=solver, track_loss=True).fit(train)
    hist = model.loss_history_
    assert len(hist) == 8
    assert np.all(np.diff(hist) <= 1e-6 * hist[:-1])
    assert hist[-1] < 0.9 * hist[0]
    # the recorded loss is the documented objective
    R = train.matrix.toarray()
    assert hist[-1] == pytest.approx(_dense_loss(R, model.user_factors_, model.item_factors_, 4.0, 0.05), rel=1e-5)


def test_binarize_uses_ones(tiny: sp.csr_matrix) -> None:
    conf = confidence_matrix(tiny, 2.0, binarize=True)
    np.testing.assert_array_equal(conf.data, 3.0)
    conf = confidence_matrix(tiny, 2.0, binarize=False)
    np.testing.assert_allclose(conf.data, 1.0 + 2.0 * tiny.data)


@pytest.mark.parametrize("solver", ["cg", "cholesky"])
def test_auc_on_planted_low_rank_matrix(solver: str) -> None:
    train, test = planted_split()
    model = ALS(n_factors=6, epochs=10, alpha=5.0, reg=0.1, solver=solver).fit(train)
    res = evaluate_ranking(model, train, test, k=10, compute_auc=True)
    assert res.metrics["AUC"] > 0.8
    pop = evaluate_ranking(make_model("MostPopular").fit(train), train, test, k=10, compute_auc=True)
    assert res.metrics["NDCG@10"] > pop.metrics["NDCG@10"]


def test_seed_reproducible_and_thread_independent() -> None:
    train, _ = planted_split(seed=3, n_users=80, n_items=60)
    a = ALS(n_factors=5, epochs=3, seed=4).fit(train)
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        b = ALS(n_factors=5, epochs=3, seed=4).fit(train)
    finally:
        numba.set_num_threads(previous)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    c = ALS(n_factors=5, epochs=3, seed=5).fit(train)
    assert not np.allclose(a.user_factors_, c.user_factors_)


def test_fold_in_accepts_interactions_and_checks_shape(tiny: sp.csr_matrix) -> None:
    x = _matrix_interactions(tiny)
    model = ALS(n_factors=3, epochs=2).fit(x)
    np.testing.assert_allclose(model.fold_in(x), model.fold_in(tiny))
    with pytest.raises(ConfigError, match="columns"):
        model.fold_in(sp.csr_matrix((2, tiny.shape[1] + 1), dtype=np.float32))
    with pytest.raises(ConfigError):
        model.fold_in(np.ones((1, tiny.shape[1])))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "params",
    [
        {"n_factors": 0},
        {"reg": -1.0},
        {"alpha": -0.5},
        {"epochs": 0},
        {"solver": "lu"},
        {"cg_steps": 0},
        {"solver": "cholesky", "reg": 0.0},
    ],
)
def test_bad_params_raise(params: dict[str, object], tiny: sp.csr_matrix) -> None:
    with pytest.raises(ConfigError):
        ALS(**params).fit(_matrix_interactions(tiny))  # type: ignore[arg-type]


def test_negative_values_raise(tiny: sp.csr_matrix) -> None:
    bad = tiny.copy()
    bad.data[0] = -1.0
    with pytest.raises(InvalidValueError, match="non-negative"):
        ALS().fit(_matrix_interactions(bad))


def test_declared_state_and_forget(tmp_path: Path) -> None:
    model = ALS(n_factors=6, epochs=2, seed=0).fit(odd_interactions())
    assert type(model).declaration().can_batch_fold_in
    assert_declared_and_forgotten(model, tmp_path)


def test_former_parameter_names_still_work() -> None:
    """``regularization`` -> ``reg`` and ``iterations`` -> ``epochs`` (one vocabulary), with a FutureWarning."""
    with pytest.warns(FutureWarning, match="was renamed"):
        model = ALS(regularization=0.5, iterations=3)
    assert model.get_params()["reg"] == 0.5 and model.get_params()["epochs"] == 3
    with pytest.warns(FutureWarning, match="'iterations' was renamed 'epochs'"):
        model.set_params(iterations=4)
    assert model.epochs == 4
    assert ALS.upgrade_params({"regularization": 1.0, "iterations": 2}) == {"reg": 1.0, "epochs": 2}
