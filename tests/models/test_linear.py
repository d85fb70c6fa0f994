from __future__ import annotations

import numpy as np
import pytest

from fusionrec.errors import ConfigError
from fusionrec.models.linear import EASE

from ..conftest import make_interactions
from .contract import RecommenderContract


class TestEASE(RecommenderContract):
    seeded = False
    implicit = True

    def make_model(self) -> EASE:
        return EASE(reg=20.0)


class TestEASEExplicit(RecommenderContract):
    seeded = False

    def make_model(self) -> EASE:
        return EASE(reg=20.0, binarize=False)


def _closed_form(X: np.ndarray, reg: float) -> np.ndarray:
    n = X.shape[1]
    P = np.linalg.inv(X.T @ X + reg * np.eye(n))
    B = np.eye(n) - P / np.diag(P)  # B = I - P diagMat(1 / diag(P)) (Steck 2019, eq. 8)
    return B


@pytest.mark.parametrize("binarize", [True, False])
def test_ease_equals_dense_closed_form(binarize: bool) -> None:
    train = make_interactions(seed=1)
    X = train.matrix.toarray().astype(np.float64)
    if binarize:
        X = (X > 0).astype(np.float64)
    model = EASE(reg=15.0, binarize=binarize).fit(train)
    B = _closed_form(X, 15.0)
    np.testing.assert_allclose(model.weights_, B, atol=1e-5)
    assert np.all(np.diag(model.weights_) == 0)
    np.testing.assert_allclose(model.score(np.arange(5)), X[:5] @ B, atol=1e-4)


def test_ease_solves_constrained_ridge() -> None:
    # each column b_j minimises |x_j - X b_j|^2 + reg |b_j|^2 with b_jj = 0
    train = make_interactions(n_users=25, n_items=8, seed=2)
    X = (train.matrix.toarray() > 0).astype(np.float64)
    model = EASE(reg=3.0).fit(train)
    for j in range(8):
        others = [c for c in range(8) if c != j]
        A = X[:, others]
        sol = np.linalg.solve(A.T @ A + 3.0 * np.eye(7), A.T @ X[:, j])
        np.testing.assert_allclose(model.weights_[others, j], sol, atol=1e-5)


def test_ease_deterministic() -> None:
    train = make_interactions(seed=3, explicit=False)
    a, b = EASE().fit(train), EASE().fit(train)
    np.testing.assert_array_equal(a.weights_, b.weights_)


def test_ease_memory_guard_and_params() -> None:
    train = make_interactions(seed=4)
    with pytest.raises(ConfigError, match="GB"):
        EASE(max_memory_gb=1e-9).fit(train)
    with pytest.raises(ConfigError):
        EASE(reg=0.0).fit(train)


def test_ease_similar_items() -> None:
    model = EASE(reg=10.0).fit(make_interactions(seed=5, explicit=False))
    items, _ = model.similar_items(np.array([0, 3]), k=4)
    assert items.shape == (2, 4)
    assert 0 not in items[0] and 3 not in items[1]
