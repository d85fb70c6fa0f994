from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from fusionrec.data import IdMap, Interactions
from fusionrec.data.side import fuse_modalities
from fusionrec.errors import ConfigError, DataError
from fusionrec.models import SideInfo, load_model
from fusionrec.models.declaration import undeclared_state
from fusionrec.models.linear import CEASE, EASE, ease_gram, ease_solve, history_matrix

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


# ------------------------------------------------------------------------------------------- shared closed form


def test_one_closed_form_serves_every_column_subset() -> None:
    train = make_interactions(seed=6, explicit=False)
    X = history_matrix(train.matrix, True)
    full = ease_solve(ease_gram(X), 12.0)
    np.testing.assert_allclose(full, _closed_form(X.toarray(), 12.0), atol=1e-9)
    cols = np.array([3, 0, 7])
    np.testing.assert_array_equal(ease_solve(ease_gram(X), 12.0, columns=cols), full[:, cols])
    # user_power 0 is the plain Gram; a positive one keeps the trace of X^T X
    np.testing.assert_array_equal(ease_gram(X, user_power=0.0), (X.T @ X).toarray())
    assert np.trace(ease_gram(X, user_power=1.0)) == pytest.approx(np.trace((X.T @ X).toarray()))


# ------------------------------------------------------------------------------------------- declarations


def _declared_models() -> dict[str, tuple[Any, bool]]:
    """Engineer-A models in each configuration whose learned state differs (orientation, mode, solutions), and
    whether they are fitted on ratings."""
    from fusionrec.models.activity import ActivityCEASE
    from fusionrec.models.baselines import BiasBaseline, MostPopular, Random
    from fusionrec.models.content import ContentKNN
    from fusionrec.models.knn import ItemKNN, KNNBaseline, UserKNN
    from fusionrec.models.krr import ContentKRR

    return {
        "EASE": (EASE(reg=20.0), False),
        "CEASE": (CEASE(reg=20.0, side_weight=5.0), False),
        "ActivityCEASE": (ActivityCEASE(reg=20.0, side_weight=5.0, sparse_max=8, sparse_user_power=1.0), False),
        "ContentKRR": (ContentKRR(gamma=2.0, reg=0.5, ease_weight=1.0, ease_reg=20.0), False),
        "ItemKNN": (ItemKNN(), True),
        "ItemKNN-implicit": (ItemKNN(), False),
        "UserKNN": (UserKNN(), True),
        "UserKNN-implicit": (UserKNN(), False),
        "KNNBaseline": (KNNBaseline(), True),
        "KNNBaseline-user": (KNNBaseline(user_based=True), True),
        "ContentKNN": (ContentKNN(), True),
        "BiasBaseline": (BiasBaseline(), True),
        "MostPopular": (MostPopular(), False),
        "Random": (Random(), False),
    }


@pytest.mark.parametrize("name", sorted(_declared_models()))
def test_state_is_declared_exactly_and_a_forgotten_user_leaves_no_entry(name: str, tmp_path: Path) -> None:
    """Every learned array with a user or item axis is declared (61 users and 43 items: no other size is either),
    and after ``forget_user`` + ``save`` every declared per-user array holds nothing of the user along its user axes
    and no array holds the raw id."""
    model, explicit = _declared_models()[name]
    train = make_interactions(n_users=61, n_items=43, seed=4, explicit=explicit)
    model.fit(train, _genre_side(train.n_items))
    assert undeclared_state(model) == []
    u = 7
    model.forget_user(u)
    loaded = load_model(model.save(tmp_path / "m"))
    checked = 0
    for attr, how in type(loaded).declaration().user_state.items():
        value = loaded._learned(attr)
        if value is None or attr == "user_id_values_":
            continue
        for axis in how.axes:
            if sp.issparse(value):
                lane = sp.csr_matrix(value)[u] if axis == 0 else sp.csc_matrix(value)[:, u]
                assert lane.nnz == 0, f"{attr} keeps user {u} along axis {axis}"
            elif isinstance(value, np.ndarray) and value.ndim > axis:
                assert np.all(np.take(value, u, axis=axis) == how.fill), f"{attr} keeps user {u} along axis {axis}"
            checked += 1
    assert checked >= 1
    with np.load(tmp_path / "m" / "arrays.npz", allow_pickle=False) as npz:
        text = {str(v) for key in npz.files if npz[key].dtype.kind == "U" for v in np.ravel(npz[key])}
    raw = train.user_ids.ids.tolist()
    assert raw[u] not in text and raw[u + 1] in text


def test_an_undeclared_per_user_array_is_found() -> None:
    model = EASE(reg=20.0).fit(make_interactions(n_users=61, n_items=43, seed=4, explicit=False))
    model.user_norms_ = np.ones(61, np.float32)
    assert undeclared_state(model) == ["user_norms_: axis 0 has n_users_ entries"]


def test_ease_dropout_is_the_edlae_diagonal_penalty() -> None:
    """EASE(dropout=p): P = (G + diag(reg + p/(1-p) diag G))^-1, B = -P / diag(P), diag(B) = 0 (Steck 2020);
    p = 0 is EASE."""
    train = make_interactions(seed=1, explicit=False)
    X = (train.matrix.toarray() > 0).astype(np.float64)
    G = X.T @ X
    reg, p = 5.0, 0.4
    P = np.linalg.inv(G + np.diag(reg + p / (1 - p) * np.diag(G)))
    B = -P / np.diag(P)[None, :]
    np.fill_diagonal(B, 0.0)
    np.testing.assert_allclose(EASE(reg=reg, dropout=p).fit(train).weights_, B, atol=1e-5)
    assert np.abs(EASE(reg=reg).fit(train).weights_ - B).max() > 1e-3
    with pytest.raises(ConfigError, match="dropout"):
        EASE(dropout=1.0).fit(train)
    with pytest.raises(ConfigError, match="dropout"):
        ease_solve(G.copy(), reg, dropout=-0.1)
