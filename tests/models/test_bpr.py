from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from fusionrec.data import IdMap, Interactions
from fusionrec.errors import ConfigError
from fusionrec.evaluation import evaluate_ranking
from fusionrec.models import Recommender, make_model
from fusionrec.models._kernels.bpr import bpr_epoch, bpr_step
from fusionrec.models.mf.bpr import BPR, sample_triples

from .contract import RecommenderContract


class TestBPRContract(RecommenderContract):
    implicit = True

    def make_model(self) -> BPR:
        return BPR(n_factors=8, epochs=5, seed=2)


def _interactions(mask: np.ndarray) -> Interactions:
    m = sp.csr_matrix(mask.astype(np.float32))
    m.sort_indices()
    return Interactions(m, IdMap(np.arange(m.shape[0])), IdMap(np.arange(m.shape[1])), explicit=False)


def planted_split(seed: int = 0, n_users: int = 150, n_items: int = 120, rank: int = 3) -> tuple[Interactions, ...]:
    """A planted low-rank implicit matrix (top 15% of each user's affinities observed), split 80/20."""
    rng = np.random.default_rng(seed)
    aff = rng.normal(size=(n_users, rank)) @ rng.normal(size=(rank, n_items))
    full = _interactions(aff >= np.quantile(aff, 0.85, axis=1, keepdims=True))
    test_mask = rng.random(full.nnz) < 0.2
    return full.select(~test_mask), full.select(test_mask)


def _params(seed: int, n_users: int = 4, n_items: int = 5, f: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n_users, f)), rng.normal(size=(n_items, f)), rng.normal(size=n_items)


def _numpy_step(U, V, b, u, i, j, lr, reg):  # type: ignore[no-untyped-def]
    x = b[i] - b[j] + U[u] @ (V[i] - V[j])
    z = 1.0 / (1.0 + np.exp(x))
    gu = z * (V[i] - V[j]) - reg * U[u]
    gi = z * U[u] - reg * V[i]
    gj = -z * U[u] - reg * V[j]
    gbi, gbj = z - reg * b[i], -z - reg * b[j]
    U[u] += lr * gu
    V[i] += lr * gi
    V[j] += lr * gj
    b[i] += lr * gbi
    b[j] += lr * gbj


def test_sgd_steps_equal_numpy_reference() -> None:
    U, V, b = _params(0)
    Ur, Vr, br = U.copy(), V.copy(), b.copy()
    users = np.array([0, 2, 0, 3], dtype=np.int32)
    pos = np.array([1, 4, 2, 1], dtype=np.int32)
    neg = np.array([3, 0, 1, 2], dtype=np.int32)  # item 1 is a positive, then a negative: order matters
    bpr_epoch(U, V, b, users, pos, neg, 0.1, 0.02)
    for u, i, j in zip(users, pos, neg):
        _numpy_step(Ur, Vr, br, u, i, j, 0.1, 0.02)
    np.testing.assert_allclose(U, Ur, rtol=1e-12)
    np.testing.assert_allclose(V, Vr, rtol=1e-12)
    np.testing.assert_allclose(b, br, rtol=1e-12)


def _objective(U, V, b, u, i, j, reg):  # type: ignore[no-untyped-def]
    x = b[i] - b[j] + U[u] @ (V[i] - V[j])
    penalty = U[u] @ U[u] + V[i] @ V[i] + V[j] @ V[j] + b[i] ** 2 + b[j] ** 2
    return -np.log1p(np.exp(-x)) - reg / 2 * penalty


def test_step_is_gradient_of_bpr_objective() -> None:
    """The update divided by the learning rate equals the finite-difference gradient of l(u, i, j)."""
    U, V, b = _params(1)
    u, i, j, reg, lr = 2, 1, 3, 0.05, 1e-3
    U1, V1, b1 = U.copy(), V.copy(), b.copy()
    loglik = bpr_step(U1, V1, b1, u, i, j, lr, reg)
    x = b[i] - b[j] + U[u] @ (V[i] - V[j])
    assert loglik == pytest.approx(-np.log1p(np.exp(-x)), rel=1e-12)
    eps = 1e-6
    before = {"U": U, "V": V, "b": b}
    after = {"U": U1, "V": V1, "b": b1}
    for name, arr in before.items():
        for idx in np.ndindex(arr.shape):
            plus, minus = dict(before), dict(before)
            plus[name], minus[name] = arr.copy(), arr.copy()
            plus[name][idx] += eps
            minus[name][idx] -= eps
            fd = (_objective(**plus, u=u, i=i, j=j, reg=reg) - _objective(**minus, u=u, i=i, j=j, reg=reg)) / (2 * eps)
            assert (after[name][idx] - arr[idx]) / lr == pytest.approx(fd, abs=1e-6)


def test_sampled_negatives_are_verified() -> None:
    rng = np.random.default_rng(0)
    mask = rng.random((30, 12)) < 0.6
    m = _interactions(mask).matrix
    users, pos, neg = sample_triples(m, 5000, np.random.default_rng(1))
    assert mask[users, pos].all()
    assert not mask[users, neg].any()
    # users are drawn in proportion to their activity
    np.testing.assert_allclose(np.bincount(users, minlength=30) / 5000, mask.sum(1) / mask.sum(), atol=0.02)


def test_users_with_every_item_are_skipped() -> None:
    mask = np.zeros((5, 6), dtype=bool)
    mask[0] = True  # no possible negative
    mask[1:, :2] = True
    model = BPR(n_factors=4, epochs=3).fit(_interactions(mask))
    assert np.isfinite(model.user_factors_).all()
    with pytest.raises(ConfigError, match="unobserved"):
        BPR(epochs=1).fit(_interactions(np.ones((3, 4), dtype=bool)))


def test_auc_on_planted_low_rank_matrix() -> None:
    train, test = planted_split()
    model = BPR(n_factors=8, epochs=60, lr=0.05, reg=0.001).fit(train)
    res = evaluate_ranking(model, train, test, k=10, compute_auc=True)
    assert res.metrics["AUC"] > 0.8
    pop = evaluate_ranking(make_model("MostPopular").fit(train), train, test, k=10, compute_auc=True)
    assert res.metrics["NDCG@10"] > pop.metrics["NDCG@10"]
    assert model.loss_history_[-1] < model.loss_history_[0]


def test_seeds_reproduce_and_differ() -> None:
    train, _ = planted_split(seed=1, n_users=50, n_items=40)
    a = BPR(n_factors=4, epochs=3, seed=3).fit(train)
    b = BPR(n_factors=4, epochs=3, seed=3).fit(train)
    c = BPR(n_factors=4, epochs=3, seed=4).fit(train)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    np.testing.assert_array_equal(a.item_bias_, b.item_bias_)
    assert not np.allclose(a.item_factors_, c.item_factors_)


def test_hogwild_learns() -> None:
    train, test = planted_split(seed=2)
    model = BPR(n_factors=8, epochs=40, hogwild=True).fit(train)
    res = evaluate_ranking(model, train, test, k=10, compute_auc=True)
    assert res.metrics["AUC"] > 0.8


@pytest.mark.parametrize("params", [{"n_factors": 0}, {"lr": 0.0}, {"reg": -1.0}, {"epochs": 0}])
def test_bad_params_raise(params: dict[str, object]) -> None:
    train, _ = planted_split(n_users=20, n_items=10)
    with pytest.raises(ConfigError):
        BPR(**params).fit(train)  # type: ignore[arg-type]


def test_adagrad_step_equals_numpy_reference() -> None:
    from fusionrec.models._kernels.bpr import EPS, bpr_epoch_adagrad

    U, V, b = _params(5)
    GU, GV, Gb = np.zeros_like(U), np.zeros_like(V), np.zeros_like(b)
    Ur, Vr, br = U.copy(), V.copy(), b.copy()
    Ar = {"U": np.zeros_like(U), "V": np.zeros_like(V), "b": np.zeros_like(b)}
    users = np.array([0, 2, 0], dtype=np.int32)
    pos = np.array([1, 4, 2], dtype=np.int32)
    neg = np.array([3, 1, 1], dtype=np.int32)
    lr, reg = 0.1, 0.02
    bpr_epoch_adagrad(U, V, b, GU, GV, Gb, users, pos, neg, lr, reg)
    for u, i, j in zip(users, pos, neg):
        x = br[i] - br[j] + Ur[u] @ (Vr[i] - Vr[j])
        z = 1.0 / (1.0 + np.exp(x))
        grads = [
            ("U", u, z * (Vr[i] - Vr[j]) - reg * Ur[u]),
            ("V", i, z * Ur[u] - reg * Vr[i]),
            ("V", j, -z * Ur[u] - reg * Vr[j]),
            ("b", i, z - reg * br[i]),
            ("b", j, -z - reg * br[j]),
        ]
        for name, row, g in grads:
            Ar[name][row] += g * g
        for name, row, g in grads:
            arr = {"U": Ur, "V": Vr, "b": br}[name]
            arr[row] += lr * g / np.sqrt(Ar[name][row] + EPS)
    np.testing.assert_allclose(U, Ur, rtol=1e-10)
    np.testing.assert_allclose(V, Vr, rtol=1e-10)
    np.testing.assert_allclose(b, br, rtol=1e-10)


def _popular_skew(seed: int = 0, n_users: int = 300, n_items: int = 600) -> Interactions:
    """Each user: 10 items from a Zipf popularity plus 10 from their own taste cluster (planted structure)."""
    rng = np.random.default_rng(seed)
    pop = 1.0 / np.arange(1, n_items + 1) ** 1.1
    pop /= pop.sum()
    mask = np.zeros((n_users, n_items), dtype=bool)
    for u in range(n_users):
        mask[u, rng.choice(n_items, 10, replace=False, p=pop)] = True
        cluster = (u % 30) * 20
        mask[u, cluster + rng.choice(20, 10, replace=False)] = True
    return _interactions(mask)


def test_popularity_collapse_warns_and_adagrad_default_does_not() -> None:
    import warnings

    from fusionrec.errors import CollapseWarning
    from fusionrec.models.mf.bpr import check_collapse

    train = _popular_skew()
    with pytest.warns(CollapseWarning, match="collapsed"):
        assert check_collapse(make_model("MostPopular").fit(train)) < 0.05

    with warnings.catch_warnings():
        warnings.simplefilter("error", CollapseWarning)
        model = BPR(epochs=20).fit(train)  # defaults: Adagrad
    assert model.coverage_ > 0.2


def test_small_catalogue_never_warns() -> None:
    import warnings

    from fusionrec.errors import CollapseWarning

    train, _ = planted_split(n_users=40, n_items=50)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CollapseWarning)
        BPR(optimizer="sgd", lr=1e-4, epochs=1).fit(train)


# ---------------------------------------------------------------------------------------------- declared state
#: user / item counts that differ from every other size the models use, so that an array with a user (item) axis
#: is recognised by its length alone (``fusionrec.models.declaration.undeclared_state``)
ODD_USERS, ODD_ITEMS = 61, 43


def odd_interactions() -> Interactions:
    from ..conftest import make_interactions

    return make_interactions(n_users=ODD_USERS, n_items=ODD_ITEMS, seed=3, explicit=False)


def _dense(value: object) -> np.ndarray:
    return value.toarray() if sp.issparse(value) else np.asarray(value)  # type: ignore[attr-defined]


def assert_declared_and_forgotten(model: Recommender, tmp_path: Path, user: int = 5) -> None:
    """``model`` (fitted on :func:`odd_interactions`) declares every per-user / per-item array it holds, and after
    ``forget_user(user)`` and ``save`` no saved array holds the user's row, raw id or history.

    Every declared per-user array loses the row (its declared fill, or no stored entry); no saved array of the
    same width keeps a copy of any of the user's former rows (a row with a non-zero entry); the raw id appears in
    no saved array."""
    from fusionrec.models import load_model
    from fusionrec.models.declaration import undeclared_state

    assert undeclared_state(model) == []
    decl = type(model).declaration()
    state = model._get_state()
    raw = model.user_id_values_[user]
    former = [
        _dense(state[name])[user].astype(np.float64)
        for name, how in decl.user_state.items()
        if how.rows and name in state and name not in ("user_id_values_",) and _dense(state[name]).ndim == 2
    ]
    former = [row for row in former if np.any(row != 0)]
    assert former  # the user had rows to forget
    model.forget_user(user)
    loaded = load_model(model.save(tmp_path / "forgotten"))
    saved = loaded._get_state()
    for name, how in decl.user_state.items():
        if name in saved and how.rows and name not in ("user_id_values_",):
            np.testing.assert_array_equal(_dense(saved[name])[user], how.fill, err_msg=name)
    for name, value in saved.items():
        arr = _dense(value)
        if arr.dtype.kind == "U":
            assert raw not in arr, name
            continue
        if arr.ndim != 2 or arr.dtype.kind not in "fiub":
            continue
        for row in former:
            if arr.shape[1] == row.shape[0]:
                assert not np.all(arr.astype(np.float64) == row, axis=1).any(), f"{name} keeps the user's row"


@pytest.mark.parametrize("name", ["BPR", "SocialBPR"])
def test_declared_state_and_forget(name: str, tmp_path: Path) -> None:
    from fusionrec.models import SideInfo

    from .test_social import random_trust

    train = odd_interactions()
    side = SideInfo(social=random_trust(train.n_users)) if name == "SocialBPR" else None
    model = make_model(name, n_factors=6, epochs=3, seed=0).fit(train, side)
    assert_declared_and_forgotten(model, tmp_path)


@pytest.mark.parametrize("name", ["BPR", "SocialBPR"])
def test_former_parameter_names_still_work(name: str) -> None:
    """``learning_rate`` -> ``lr`` and ``regularization`` -> ``reg`` (one vocabulary), with a FutureWarning."""
    with pytest.warns(FutureWarning, match="was renamed"):
        model = make_model(name, learning_rate=0.1, regularization=0.01)
    assert (model.lr, model.reg) == (0.1, 0.01)
    with pytest.warns(FutureWarning, match="'learning_rate' was renamed 'lr'"):
        assert model.clone(learning_rate=0.2).lr == 0.2


# ---------------------------------------------------------------------------------------------- SocialBPR's range
def _hub_trust(n: int, seed: int = 0) -> sp.csr_matrix:
    """Every user but 0 trusts user 0 (a hub, as a music log's most followed account) and one random user:
    ``|M^T M|`` is about ``n / 4``, far above the 4 that a gradient step of weight 0.5 tolerates."""
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(1, n), 2)
    cols = np.stack([np.zeros(n - 1, np.int64), rng.integers(1, n, n - 1)], 1).ravel()
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))


def test_trust_prox_is_the_exact_proximal_step() -> None:
    from fusionrec.models.social import clean_trust
    from fusionrec.models.social_graph import social_pull_matrix, trust_prox

    n, w = 40, 0.5
    M = social_pull_matrix(clean_trust(_hub_trust(n), n))
    A = np.eye(n) + w * (M.T @ M).toarray()
    assert np.linalg.eigvalsh(A).max() > 1 + 2.0  # a gradient step of this weight would grow some component
    U = np.random.default_rng(1).normal(size=(n, 5))
    X = trust_prox(M, U, w)
    np.testing.assert_allclose(X, np.linalg.solve(A, U), rtol=1e-5, atol=1e-6)
    assert np.linalg.norm(M @ X) < np.linalg.norm(M @ U)  # linked users end closer to the users they trust


@pytest.mark.parametrize("weight", [0.0, 0.25, 0.5])
def test_social_bpr_trains_across_its_declared_range_on_a_hub_graph(weight: float) -> None:
    """At BPR's chosen learning rate (0.2), every social_weight in [0, 0.5] trains without blowing up or collapsing,
    also when one user is trusted by everyone (the former gradient step reached |U| ~ 1e4 at 0.25 and 1e8 at 0.5
    here, and overflowed on FilmTrust)."""
    from fusionrec.models import SideInfo
    from fusionrec.models.social_graph import SocialBPR

    assert SocialBPR.param_constraints()["social_weight"][0].high == 0.5  # the range this test covers
    train = odd_interactions()
    model = SocialBPR(lr=0.2, social_weight=weight, epochs=10, n_factors=8, seed=0)
    model.fit(train, SideInfo(social=_hub_trust(train.n_users)))
    assert np.abs(model.user_factors_).max() < 10.0
    assert model.coverage_ > 0.5
