from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from fusionrec.data import Interactions
from fusionrec.errors import ConfigError
from fusionrec.models import make_model
from fusionrec.models._kernels.sgd import implicit_epoch, sample_grad, sample_loss, svd_epoch, user_implicit
from fusionrec.models.mf.svd import SVD, SVDpp, TimeSVDpp, user_block_order

from ..conftest import make_interactions
from .contract import RecommenderContract


class TestSVDContract(RecommenderContract):
    def make_model(self) -> SVD:
        return SVD(n_factors=4, epochs=5, seed=1)


class TestSVDppContract(RecommenderContract):
    def make_model(self) -> SVDpp:
        return SVDpp(n_factors=4, epochs=5, seed=1)


class TestTwoSidedSVDppContract(RecommenderContract):
    fold_in_overlap = 0.3  # the folded-in user does not join the item-side implicit sums

    def make_model(self) -> SVDpp:
        return SVDpp(n_factors=4, epochs=5, implicit="both", seed=1)


class TestTwoSidedTimeSVDppContract(RecommenderContract):
    def make_model(self) -> TimeSVDpp:
        return TimeSVDpp(n_factors=4, epochs=4, n_bins=3, implicit="both", seed=1)


class TestTimeSVDppContract(RecommenderContract):
    def make_model(self) -> TimeSVDpp:
        return TimeSVDpp(n_factors=4, epochs=5, n_bins=4, seed=1)


# ---------------------------------------------------------------------------------------------- helpers
def _from_dense(R: np.ndarray, mask: np.ndarray, days: np.ndarray | None = None) -> Interactions:
    u, i = np.nonzero(mask)
    ts = None if days is None else days[u, i].astype(np.int64) * 86_400 + 3_600
    return Interactions.from_arrays(u, i, R[u, i], ts)


def _fd_grad(theta: dict, r: float, mu: float, reg: dict, eps: float = 1e-6) -> dict:
    out = {}
    for key, value in theta.items():
        if key in ("dev", "w"):
            continue
        g = np.zeros_like(np.asarray(value, dtype=float))
        flat = g.reshape(-1)
        for k in range(flat.size):
            plus = {kk: np.array(vv, dtype=float, copy=True) for kk, vv in theta.items()}
            minus = {kk: np.array(vv, dtype=float, copy=True) for kk, vv in theta.items()}
            plus[key].reshape(-1)[k] += eps
            minus[key].reshape(-1)[k] -= eps
            flat[k] = (sample_loss(plus, r, mu, reg) - sample_loss(minus, r, mu, reg)) / (2 * eps)
        out[key] = g
    return out


REG = {
    "reg_bu": 0.03, "reg_bi": 0.05, "reg_pu": 0.07, "reg_qi": 0.11, "reg_yj": 0.13,
    "reg_alpha": 0.17, "reg_but": 0.19, "reg_bibin": 0.23,
}  # fmt: skip


# ---------------------------------------------------------------------------------------------- gradients
def test_sample_grad_matches_finite_differences() -> None:
    rng = np.random.default_rng(0)
    theta = {
        "bu": np.array(0.3), "bi": np.array(-0.2), "pu": rng.normal(size=3), "qi": rng.normal(size=3),
        "Y": rng.normal(size=(4, 3)), "alpha": np.array(0.5), "dev": np.array(1.7), "but": np.array(0.1),
        "bibin": np.array(-0.3),
    }  # fmt: skip
    fd = _fd_grad(theta, 4.0, 3.5, REG)
    g = sample_grad(theta, 4.0, 3.5, REG)
    for key in fd:
        np.testing.assert_allclose(g[key], fd[key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_svd_kernel_step_is_minus_lr_times_gradient() -> None:
    rng = np.random.default_rng(1)
    P, Q = rng.normal(size=(3, 4)), rng.normal(size=(5, 4))
    bu, bi = rng.normal(size=3), rng.normal(size=5)
    u, i, r, mu, lr = 1, 3, 4.0, 3.2, 0.05
    theta = {"bu": np.array(bu[u]), "bi": np.array(bi[i]), "pu": P[u].copy(), "qi": Q[i].copy()}
    fd = _fd_grad(theta, r, mu, REG)
    regs = np.array([REG["reg_bu"], REG["reg_bi"], REG["reg_pu"], REG["reg_qi"]])
    P0, Q0, bu0, bi0 = P.copy(), Q.copy(), bu.copy(), bi.copy()
    svd_epoch(np.array([u]), np.array([i]), np.array([r]), np.array([0]), mu, bu, bi, P, Q, np.full(4, lr), regs, True)
    np.testing.assert_allclose((bu[u] - bu0[u]) / -lr, fd["bu"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose((bi[i] - bi0[i]) / -lr, fd["bi"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose((P[u] - P0[u]) / -lr, fd["pu"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose((Q[i] - Q0[i]) / -lr, fd["qi"], rtol=1e-6, atol=1e-7)
    untouched = np.arange(3) != u
    np.testing.assert_array_equal(P[untouched], P0[untouched])


def _tiny_csr() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """4 users x 6 items: (indptr, indices, users, items, ratings) in CSR order."""
    rows = [[0, 2, 3], [1, 2, 4, 5], [0, 5], [1, 3, 4]]
    indptr = np.cumsum([0] + [len(r) for r in rows]).astype(np.int64)
    indices = np.concatenate(rows).astype(np.int64)
    users = np.repeat(np.arange(4), np.diff(indptr)).astype(np.int64)
    ratings = np.random.default_rng(2).integers(1, 6, size=len(indices)).astype(np.float64)
    return indptr, indices, users, indices.copy(), ratings


def _time_step(timed: bool, with_w: bool = False) -> None:
    indptr, indices, users, items, ratings = _tiny_csr()
    rng = np.random.default_rng(3)
    f = 3
    P, Q, Y = rng.normal(size=(4, f)), rng.normal(size=(6, f)), rng.normal(size=(6, f))
    bu, bi = rng.normal(size=4), rng.normal(size=6)
    alpha, but, bibin = rng.normal(size=4), rng.normal(size=len(users)), rng.normal(size=(6, 2))
    dev = rng.normal(size=len(users))
    day_index = np.arange(len(users), dtype=np.int64)
    bins = rng.integers(0, 2, size=len(users)).astype(np.int64)
    e, mu, lr = 4, 3.1, 0.05  # entry 4: user 1, item 4
    u, i = int(users[e]), int(items[e])
    nu = indices[indptr[u] : indptr[u + 1]]
    theta = {"bu": np.array(bu[u]), "bi": np.array(bi[i]), "pu": P[u].copy(), "qi": Q[i].copy(), "Y": Y[nu].copy()}
    W = rng.normal(size=(6, f)) if with_w else np.zeros((0, 0))
    if with_w:
        theta["w"] = W[i].copy()
    names = ["bu", "bi", "pu", "qi", "yj"]
    if timed:
        theta |= {"alpha": np.array(alpha[u]), "dev": np.array(dev[e]), "but": np.array(but[e])}
        theta["bibin"] = np.array(bibin[i, bins[e]])
        names += ["alpha", "but", "bibin"]
    fd = _fd_grad(theta, ratings[e], mu, REG)
    regs = np.array([REG[f"reg_{n}"] for n in names])
    before = {k: v.copy() for k, v in {"P": P, "Q": Q, "Y": Y, "alpha": alpha, "but": but, "bibin": bibin}.items()}
    bu0, bi0 = bu.copy(), bi.copy()
    implicit_epoch(
        users, items, ratings, np.array([e]), indptr, indices, mu, bu, bi, P, Q, Y, W,
        alpha, users, dev, but, day_index, bibin.reshape(-1), items * 2 + bins, np.full(len(names), lr), regs, timed,
    )  # fmt: skip
    np.testing.assert_allclose((bu[u] - bu0[u]) / -lr, fd["bu"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose((bi[i] - bi0[i]) / -lr, fd["bi"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose((P[u] - before["P"][u]) / -lr, fd["pu"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose((Q[i] - before["Q"][i]) / -lr, fd["qi"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose((Y[nu] - before["Y"][nu]) / -lr, fd["Y"], rtol=1e-6, atol=1e-7)
    others = np.setdiff1d(np.arange(6), nu)
    np.testing.assert_array_equal(Y[others], before["Y"][others])
    if timed:
        np.testing.assert_allclose((alpha[u] - before["alpha"][u]) / -lr, fd["alpha"], rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose((but[e] - before["but"][e]) / -lr, fd["but"], rtol=1e-6, atol=1e-7)
        step = (bibin[i, bins[e]] - before["bibin"][i, bins[e]]) / -lr
        np.testing.assert_allclose(step, fd["bibin"], rtol=1e-6, atol=1e-7)
    else:
        np.testing.assert_array_equal(alpha, before["alpha"])


def test_svdpp_kernel_step_is_minus_lr_times_gradient() -> None:
    _time_step(timed=False)


def test_timesvdpp_kernel_step_is_minus_lr_times_gradient() -> None:
    _time_step(timed=True)


def test_two_sided_kernel_step_is_minus_lr_times_gradient() -> None:
    _time_step(timed=True, with_w=True)


@pytest.mark.parametrize("with_w", [False, True])
def test_svdpp_user_blocks_equal_literal_per_rating_sgd(with_w: bool) -> None:
    """The O(|R| f) kernel reproduces Surprise's SVDpp loop (every y_j updated after every rating)."""
    indptr, indices, users, items, ratings = _tiny_csr()
    rng = np.random.default_rng(4)
    f, mu = 3, float(ratings.mean())
    P, Q, Y = rng.normal(0, 0.3, (4, f)), rng.normal(0, 0.3, (6, f)), rng.normal(0, 0.3, (6, f))
    bu, bi = np.zeros(4), np.zeros(6)
    lr = np.array([0.01, 0.02, 0.03, 0.04, 0.05])
    reg = np.array([0.02, 0.03, 0.05, 0.07, 0.11])
    W = rng.normal(0, 0.3, (6, f)) if with_w else np.zeros((0, 0))
    Wr = W if with_w else np.zeros((6, f))
    ref = [a.copy() for a in (P, Q, Y, bu, bi)]
    orders = [user_block_order(np.random.default_rng(s), indptr, True) for s in range(3)]
    e0, i0 = np.empty(0), np.zeros(0, np.int64)
    for order in orders:
        implicit_epoch(
            users, items, ratings, order, indptr, indices, mu, bu, bi, P, Q, Y, W,
            e0, i0, e0, e0, i0, e0, i0, lr, reg, False,
        )  # fmt: skip
    rP, rQ, rY, rbu, rbi = ref
    for order in orders:
        for e in order:
            u, i, r = users[e], items[e], ratings[e]
            nu = indices[indptr[u] : indptr[u + 1]]
            s = 1 / np.sqrt(len(nu))
            z = rY[nu].sum(0) * s
            q = rQ[i] + Wr[i]
            err = r - (mu + rbu[u] + rbi[i] + q @ (rP[u] + z))
            rbu[u] += lr[0] * (err - reg[0] * rbu[u])
            rbi[i] += lr[1] * (err - reg[1] * rbi[i])
            pu, qi = rP[u].copy(), rQ[i].copy()
            rP[u] += lr[2] * (err * q - reg[2] * pu)
            rQ[i] += lr[3] * (err * (pu + z) - reg[3] * qi)
            rY[nu] += lr[4] * (err * s * q - reg[4] * rY[nu])
    for got, want in zip((P, Q, Y, bu, bi), (rP, rQ, rY, rbu, rbi)):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-11)


def test_user_implicit_is_scaled_sum() -> None:
    indptr, indices, *_ = _tiny_csr()
    Y = np.random.default_rng(5).normal(size=(6, 2))
    Z = user_implicit(indptr, indices, Y)
    np.testing.assert_allclose(Z[1], Y[[1, 2, 4, 5]].sum(0) / 2.0)


def test_user_block_order_is_a_permutation_of_whole_user_blocks() -> None:
    indptr = np.array([0, 3, 3, 7, 9])
    order = user_block_order(np.random.default_rng(0), indptr, True)
    assert sorted(order.tolist()) == list(range(9))
    rows = np.repeat(np.arange(4), np.diff(indptr))[order]
    assert np.count_nonzero(np.diff(rows)) == 2  # three non-empty users, each one contiguous block
    np.testing.assert_array_equal(user_block_order(np.random.default_rng(0), indptr, False), np.arange(9))


# ---------------------------------------------------------------------------------------------- behaviour
def _rank1(seed: int = 0, n_users: int = 40, n_items: int = 30) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    R = np.outer(rng.uniform(1.0, 2.0, n_users), rng.uniform(1.0, 2.2, n_items))
    return R, rng.random(R.shape) < 0.7


@pytest.mark.parametrize(("cls", "kw"), [(SVD, {"biased": False}), (SVDpp, {}), (SVDpp, {"implicit": "both"})])
def test_rank1_matrix_is_recovered(cls: type, kw: dict) -> None:
    R, mask = _rank1()
    model = cls(n_factors=2, epochs=300, lr=0.01, reg=0.0, init_std=0.3, seed=0, **kw)
    model.fit(_from_dense(R, mask))
    u, i = np.nonzero(~mask)
    err = model.predict(u, i) - R[u, i]
    assert np.sqrt(np.mean(err**2)) < 0.05


def test_seeds_change_the_fit_and_same_seed_repeats() -> None:
    train = make_interactions(seed=5)
    a = SVD(n_factors=4, epochs=3, seed=1).fit(train).score(np.arange(4))
    b = SVD(n_factors=4, epochs=3, seed=1).fit(train).score(np.arange(4))
    c = SVD(n_factors=4, epochs=3, seed=2).fit(train).score(np.arange(4))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_predictions_are_clipped_and_cold_items_get_the_bias_fallback() -> None:
    train = make_interactions(seed=6)
    model = SVDpp(n_factors=4, epochs=3, seed=0).fit(train)
    s = model.score(np.arange(train.n_users))
    assert s.min() >= train.matrix.data.min() and s.max() <= train.matrix.data.max()
    cold = train.select(train.matrix.indices != 0)  # item 0 loses its ratings
    model.fit(cold)
    expected = np.clip(model.global_mean_ + model.user_bias_[:3] + model.item_bias_[0], 1, 5)
    np.testing.assert_allclose(model.predict(np.arange(3), np.zeros(3, int)), expected, rtol=1e-6)
    assert np.all(model.item_embeddings()[0] == 0)


@pytest.mark.parametrize(
    "params", [{"n_factors": 0}, {"epochs": -1}, {"lr": -0.1}, {"reg_pu": -1.0}, {"n_factors": 2.5}]
)
def test_bad_hyper_parameters_raise_config_error(params: dict) -> None:
    with pytest.raises(ConfigError):
        SVD(**params).fit(make_interactions())
    with pytest.raises(ConfigError):
        SVDpp(**params).fit(make_interactions())


def test_two_sided_item_vectors_include_the_raters_implicit_sum() -> None:
    train = make_interactions(seed=7)
    model = SVDpp(n_factors=3, epochs=4, implicit="both", seed=0).fit(train)
    m = train.matrix.tocsc()
    i = 5
    raters = m.indices[m.indptr[i] : m.indptr[i + 1]]
    w = model.user_implicit_factors_[raters].astype(np.float64).sum(0) / np.sqrt(len(raters))
    q_plain = model.item_factors_[i] - w
    assert np.abs(w).max() > 1e-3
    assert np.isfinite(q_plain).all()
    with pytest.raises(ConfigError, match="implicit"):
        SVDpp(implicit="items").fit(train)


def test_registry_names() -> None:
    assert isinstance(make_model("SVD"), SVD)
    assert isinstance(make_model("SVDpp"), SVDpp)
    assert isinstance(make_model("TimeSVDpp", n_bins=5), TimeSVDpp)


# ---------------------------------------------------------------------------------------------- time
def test_timesvdpp_needs_timestamps() -> None:
    R, mask = _rank1()
    with pytest.raises(ConfigError, match="timestamp"):
        TimeSVDpp(epochs=1).fit(_from_dense(R, mask))


def _drifting(seed: int = 0, n_users: int = 80, n_items: int = 60) -> tuple[Interactions, Interactions]:
    """Users rate on two days; each user's ratings on day 2 are shifted by a user-specific drift."""
    rng = np.random.default_rng(seed)
    R = 3.0 + np.outer(rng.normal(0, 0.5, n_users), rng.normal(0, 1, n_items))
    days = np.where(rng.random((n_users, n_items)) < 0.5, 1000, 1100)
    R = R + (days == 1100) * rng.choice([-1.0, 1.0], size=(n_users, 1))
    R = R + rng.normal(0, 0.1, R.shape)
    mask = rng.random(R.shape) < 0.5
    full = _from_dense(R, mask, days)
    test = rng.random(full.nnz) < 0.2
    return full.select(~test), full.select(test)


def test_timesvdpp_fits_time_drift_better_than_svdpp() -> None:
    train, test = _drifting()
    kw: dict[str, Any] = {"n_factors": 3, "epochs": 40, "lr": 0.01, "seed": 0}
    u, i, r = test.row_indices(), test.matrix.indices, test.matrix.data
    plain = SVDpp(**kw).fit(train)
    timed = TimeSVDpp(**kw, lr_but=0.05, reg_but=0.01).fit(train)
    rmse_plain = np.sqrt(np.mean((plain.predict(u, i) - r) ** 2))
    rmse_timed = np.sqrt(np.mean((timed.predict(u, i, timestamps=test.timestamps) - r) ** 2))
    assert rmse_timed < 0.8 * rmse_plain


def test_timesvdpp_time_arguments() -> None:
    train, test = _drifting()
    model = TimeSVDpp(n_factors=3, epochs=5, seed=0).fit(train)
    u, i = test.row_indices(), test.matrix.indices
    with_t = model.predict(u, i, timestamps=test.timestamps)
    assert not np.allclose(with_t, model.predict(u, i))
    np.testing.assert_allclose(model.predict(u, i), model.score(u)[np.arange(len(u)), i], rtol=1e-6)
    # a day never seen in training: b_{u,t} = 0, the last time bin, drift from the user's mean day
    far = np.full(len(u), 10**9 * 2, dtype=np.int64)
    expected = (
        model.offset_ + model.user_bias_[u] + model.item_bias_[i]
        + model.user_alpha_[u] * model._dev(u, far // 86_400)
        + model.item_bin_bias_[i, -1]
        + np.einsum("ij,ij->i", model.user_vectors_[u], model.item_factors_[i])
    )  # fmt: skip
    clipped = np.clip(expected, model.rating_min_, model.rating_max_)
    np.testing.assert_allclose(model.predict(u, i, timestamps=far), clipped, rtol=1e-5)
    with pytest.raises(ConfigError):
        model.predict(u, i, timestamps=far[:3])


def test_svd_fit_epochs_equal_numpy_sgd_with_the_same_seeded_order() -> None:
    """SVD.fit = a plain numpy SGD loop with the same seed: same init draws, same per-epoch user order."""
    train = make_interactions(seed=7)
    f, seed, lr, reg, epochs = 3, 11, 0.01, 0.05, 2
    model = SVD(n_factors=f, epochs=epochs, lr=lr, reg=reg, seed=seed).fit(train)
    users, items = train.row_indices(), train.matrix.indices.astype(np.int64)
    ratings = train.matrix.data.astype(np.float64)
    rng = np.random.default_rng(seed)
    P = rng.normal(0.0, 0.1, (train.n_users, f))
    Q = rng.normal(0.0, 0.1, (train.n_items, f))
    bu, bi, mu = np.zeros(train.n_users), np.zeros(train.n_items), ratings.mean()
    for _ in range(epochs):
        for e in user_block_order(rng, train.matrix.indptr, True):
            u, i = users[e], items[e]
            err = ratings[e] - (mu + bu[u] + bi[i] + P[u] @ Q[i])
            bu[u] += lr * (err - reg * bu[u])
            bi[i] += lr * (err - reg * bi[i])
            pu, qi = P[u].copy(), Q[i].copy()
            P[u] += lr * (err * qi - reg * pu)
            Q[i] += lr * (err * pu - reg * qi)
    known_u, known_i = train.user_counts() > 0, train.item_counts() > 0
    np.testing.assert_allclose(model.user_bias_, bu, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.item_bias_, bi, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.user_vectors_[known_u], P[known_u], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.item_factors_[known_i], Q[known_i], rtol=1e-5, atol=1e-6)
    want = np.clip(mu + bu[users] + bi[items] + np.einsum("ij,ij->i", P[users], Q[items]), 1, 5)
    np.testing.assert_allclose(model.predict(users, items), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cls", [SVD, SVDpp, TimeSVDpp])
def test_old_parameter_names_still_work_with_a_future_warning(cls: type) -> None:
    with pytest.warns(FutureWarning) as caught:
        model = cls(n_epochs=3, lr_all=0.01, reg_all=0.1)
    said = " ".join(str(w.message) for w in caught)
    for old, new in (("n_epochs", "epochs"), ("lr_all", "lr"), ("reg_all", "reg")):
        assert f"'{old}' was renamed '{new}'" in said
    assert (model.epochs, model.lr, model.reg) == (3, 0.01, 0.1)
    with pytest.warns(FutureWarning, match="renamed 'lr'"):
        model.set_params(lr_all=0.02)
    assert model.lr == 0.02
    assert {"epochs", "lr", "reg"} <= set(model.get_params()) and "n_epochs" not in model.get_params()


def test_timesvdpp_declares_timestamps_and_forgets_the_users_rating_days() -> None:
    train = make_interactions(n_users=30, n_items=20)
    model = TimeSVDpp(epochs=2).fit(train)
    decl = TimeSVDpp.declaration()
    assert decl.fit_inputs == {"timestamps"} and not decl.has_factors and not decl.can_fold_in
    days = model.user_day_bias_[4].indices
    assert len(days) > 0
    before = model.score(np.array([3]))
    model.forget_user(4)
    assert model.user_day_bias_[4].nnz == 0 and model.user_mean_day_[4] == 0
    np.testing.assert_array_equal(model.score(np.array([3])), before)


def test_timesvdpp_reads_user_day_biases_saved_as_keys() -> None:
    """Bundles saved before b_{u,t} became a users x days matrix stored sorted keys u * (day_max + 1) + day."""
    train = make_interactions(n_users=30, n_items=20)
    model = TimeSVDpp(epochs=2).fit(train)
    state = model._get_state()
    table = model.user_day_bias_.tocoo()
    keys = table.row.astype(np.int64) * (model.day_max_ + 1) + table.col
    order = np.argsort(keys)
    state["user_day_keys_"], state["user_day_bias_"] = keys[order], table.data[order]
    old = TimeSVDpp()
    old._set_state(state)
    np.testing.assert_array_equal(old.score(np.arange(30)), model.score(np.arange(30)))
