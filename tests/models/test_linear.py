from __future__ import annotations

import numpy as np
import pytest

from fusionrec.data import IdMap, Interactions
from fusionrec.data.side import fuse_modalities
from fusionrec.errors import ConfigError, DataError
from fusionrec.models import SideInfo
from fusionrec.models.linear import CEASE, EASE

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


# ------------------------------------------------------------------------------------------- CEASE
def _genre_side(n_items: int, seed: int = 0) -> SideInfo:
    rng = np.random.default_rng(seed)
    return SideInfo(item_features={"genre": np.eye(3, dtype=np.float32)[np.arange(n_items) % 3] + 0.05,
                                   "text": rng.normal(size=(n_items, 4)).astype(np.float32)})  # fmt: skip


class TestCEASE(RecommenderContract):
    seeded = False
    implicit = True

    def make_model(self) -> CEASE:
        return CEASE(reg=20.0, side_weight=5.0)

    def make_side(self, train: Interactions) -> SideInfo | None:
        return _genre_side(train.n_items)


def test_cease_is_ease_on_the_augmented_matrix() -> None:
    train = make_interactions(seed=3)
    side = _genre_side(train.n_items)
    X = (train.matrix.toarray() > 0).astype(np.float64)
    F = fuse_modalities(side.item_features, ["genre", "text"], modality_weights={"genre": 2.0})[0].astype(np.float64)
    beta = 7.0
    model = CEASE(reg=10.0, side_weight=beta, modality_weights={"genre": 2.0}).fit(train, side)
    B = _closed_form(np.vstack([X, np.sqrt(beta) * F.T]), 10.0)  # pseudo-users = feature dimensions
    np.testing.assert_allclose(model.weights_, B, atol=1e-5)
    # side_weight 0 is plain EASE
    plain = CEASE(reg=10.0, side_weight=0.0).fit(train, side)
    np.testing.assert_allclose(plain.weights_, EASE(reg=10.0).fit(train).weights_, atol=1e-6)


def test_cease_ranks_cold_items_by_content() -> None:
    """Users like genre u % 3; items 30..35 have no interactions; CEASE (unlike EASE) ranks them by genre."""
    rng = np.random.default_rng(0)
    n_users, n_items, warm = 60, 36, 30
    users, items = [], []
    for u in range(n_users):
        liked = [i for i in range(warm) if i % 3 == u % 3]
        for i in rng.choice(liked, 5, replace=False):
            users.append(u)
            items.append(int(i))
    train = Interactions.from_arrays(
        np.array(users), np.array(items), None, user_ids=IdMap(range(n_users)), item_ids=IdMap(range(n_items))
    )
    side = SideInfo(item_features={"genre": np.eye(3, dtype=np.float32)[np.arange(n_items) % 3]})
    cold = np.arange(warm, n_items)
    top, _ = CEASE(reg=5.0, side_weight=20.0).fit(train, side).recommend(np.arange(n_users), k=2, candidates=cold)
    assert ((top % 3) == (np.arange(n_users) % 3)[:, None]).mean() >= 0.95
    assert not EASE(reg=5.0).fit(train).score(np.arange(n_users), cold).any()  # EASE: no signal at all


def test_cease_errors() -> None:
    train = make_interactions(seed=4)
    with pytest.raises(ConfigError, match="item features"):
        CEASE().fit(train)
    with pytest.raises(ConfigError, match="side_weight"):
        CEASE(side_weight=-1.0).fit(train, _genre_side(train.n_items))
    with pytest.raises(DataError, match="rows"):
        CEASE().fit(train, _genre_side(train.n_items + 1))
