from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from fusionrec.data import Interactions
from fusionrec.errors import ConfigError
from fusionrec.models import make_model
from fusionrec.models._kernels.sgd import nmf_epoch
from fusionrec.models.mf.nmf import NMF
from fusionrec.models.mf.pmf import PMF, pmf_grad, pmf_loss

from ..conftest import make_interactions
from .contract import RecommenderContract


class TestNMFContract(RecommenderContract):
    def make_model(self) -> NMF:
        return NMF(n_factors=4, epochs=10, seed=1)


class TestBiasedNMFContract(RecommenderContract):
    def make_model(self) -> NMF:
        return NMF(n_factors=4, epochs=10, biased=True, seed=1)


class TestPMFContract(RecommenderContract):
    def make_model(self) -> PMF:
        return PMF(n_factors=4, epochs=5, reg_user=1.0, reg_item=1.0, seed=1)


def _from_dense(R: np.ndarray, mask: np.ndarray) -> Interactions:
    u, i = np.nonzero(mask)
    return Interactions.from_arrays(u, i, R[u, i])


def _rank1(seed: int = 0, n_users: int = 40, n_items: int = 30) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    R = np.outer(rng.uniform(1.0, 2.0, n_users), rng.uniform(1.0, 2.2, n_items))
    return R, rng.random(R.shape) < 0.7


# ---------------------------------------------------------------------------------------------- NMF
def _numpy_nmf_epoch(users, items, ratings, mu, bu, bi, P, Q, lr, reg, biased, alternating):  # type: ignore[no-untyped-def]
    """Surprise's NMF epoch written with numpy, one rating at a time for the bias steps."""
    unum, uden = np.zeros_like(P), np.zeros_like(P)
    inum, iden = np.zeros_like(Q), np.zeros_like(Q)
    for u, i, r in zip(users, items, ratings):
        est = P[u] @ Q[i] + (mu + bu[u] + bi[i] if biased else 0.0)
        err = r - est
        if biased:
            bu[u] += lr * (err - reg["bu"] * bu[u])
            bi[i] += lr * (err - reg["bi"] * bi[i])
        unum[u] += Q[i] * r
        uden[u] += Q[i] * est
        inum[i] += P[u] * r
        iden[i] += P[u] * est
    nu = np.bincount(users, minlength=len(P))[:, None]
    ni = np.bincount(items, minlength=len(Q))[:, None]
    P *= unum / (uden + nu * reg["pu"] * P)
    if alternating:
        est = np.einsum("ij,ij->i", P[users], Q[items]) + (mu + bu[users] + bi[items] if biased else 0.0)
        inum, iden = np.zeros_like(Q), np.zeros_like(Q)
        np.add.at(inum, items, P[users] * ratings[:, None])
        np.add.at(iden, items, P[users] * est[:, None])
    Q *= inum / (iden + ni * reg["qi"] * Q)


@pytest.mark.parametrize(("biased", "alternating"), [(False, False), (True, False), (True, True)])
def test_nmf_epoch_equals_numpy_reference(biased: bool, alternating: bool) -> None:
    train = make_interactions(seed=2)
    users, items = train.row_indices(), train.matrix.indices.astype(np.int64)
    r = train.matrix.data.astype(np.float64)
    rng = np.random.default_rng(0)
    P, Q = rng.uniform(0, 1, (train.n_users, 3)), rng.uniform(0, 1, (train.n_items, 3))
    bu, bi = np.zeros(train.n_users), np.zeros(train.n_items)
    ref = [a.copy() for a in (P, Q, bu, bi)]
    reg = {"bu": 0.02, "bi": 0.03, "pu": 0.06, "qi": 0.07}
    uc = np.bincount(users, minlength=train.n_users).astype(float)
    ic = np.bincount(items, minlength=train.n_items).astype(float)
    mu = float(r.mean())
    for _ in range(3):
        nmf_epoch(users, items, r, uc, ic, mu, bu, bi, P, Q, 0.01, 0.01, 0.02, 0.03, 0.06, 0.07, biased, alternating)
        _numpy_nmf_epoch(users, items, r, mu, ref[2], ref[3], ref[0], ref[1], 0.01, reg, biased, alternating)
    for got, want in zip((P, Q, bu, bi), ref):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_nmf_factors_are_non_negative_and_fit_improves() -> None:
    train = make_interactions(seed=3)
    short = NMF(n_factors=5, epochs=2, seed=0).fit(train)
    model = NMF(n_factors=5, epochs=60, seed=0).fit(train)
    assert (model.user_factors_ >= 0).all() and (model.item_embeddings() >= 0).all()
    assert model.train_rmse_ < short.train_rmse_


def test_nmf_recovers_rank1_with_alternating_updates() -> None:
    R, mask = _rank1()
    train = _from_dense(R, mask)
    u, i = np.nonzero(~mask)
    model = NMF(n_factors=1, epochs=300, reg_pu=0.0, reg_qi=0.0, alternating=True, seed=0).fit(train)
    assert np.sqrt(np.mean((model.predict(u, i) - R[u, i]) ** 2)) < 0.05
    # the simultaneous (Surprise) step keeps the initial scale error: r_hat = c r maps c to 1 / c
    odd = NMF(n_factors=1, epochs=301, reg_pu=0.0, reg_qi=0.0, seed=0).fit(train)
    assert np.sqrt(np.mean((odd.predict(u, i) - R[u, i]) ** 2)) > 0.5


def test_nmf_cold_pairs_get_the_global_mean() -> None:
    train = make_interactions(seed=4)
    cold = train.select(train.matrix.indices != 0)
    model = NMF(n_factors=3, epochs=5).fit(cold)
    np.testing.assert_allclose(model.predict(np.arange(3), np.zeros(3, int)), model.global_mean_, rtol=1e-6)


@pytest.mark.parametrize("params", [{"init_low": -1.0}, {"init_high": 0.0}, {"n_factors": 0}, {"reg_pu": -1}])
def test_nmf_bad_hyper_parameters(params: dict) -> None:
    with pytest.raises(ConfigError):
        NMF(**params).fit(make_interactions())


# ---------------------------------------------------------------------------------------------- PMF
def test_pmf_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(0)
    R = sp.random(6, 5, density=0.5, random_state=1, format="csr") * 4 + sp.csr_matrix((6, 5))
    R = sp.csr_matrix(R)
    R.data += 1.0
    U, V = rng.normal(size=(6, 2)), rng.normal(size=(5, 2))
    gU, gV = pmf_grad(R, 2.5, U, V, 0.3, 0.7)
    eps = 1e-6
    for X, G in ((U, gU), (V, gV)):
        fd = np.zeros_like(X)
        for idx in np.ndindex(X.shape):
            X[idx] += eps
            plus = pmf_loss(R, 2.5, U, V, 0.3, 0.7)
            X[idx] -= 2 * eps
            minus = pmf_loss(R, 2.5, U, V, 0.3, 0.7)
            X[idx] += eps
            fd[idx] = (plus - minus) / (2 * eps)
        np.testing.assert_allclose(G, fd, rtol=1e-5, atol=1e-6)


def test_pmf_als_is_a_stationary_point_and_loss_decreases() -> None:
    train = make_interactions(seed=5)
    losses = [PMF(n_factors=3, epochs=n, reg_user=0.5, reg_item=0.5).fit(train).loss_ for n in (1, 3, 10)]
    assert losses[0] >= losses[1] >= losses[2]
    model = PMF(n_factors=3, epochs=10, reg_user=0.5, reg_item=0.5).fit(train)
    R = sp.csr_matrix(train.matrix, dtype=np.float64)
    U, V = model.user_vectors_.astype(np.float64), model.item_factors_.astype(np.float64)
    _, gV = pmf_grad(R, model.global_mean_, U, V, 0.5, 0.5)
    assert np.abs(gV).max() < 1e-3  # V was solved exactly last


def test_pmf_recovers_rank1() -> None:
    R, mask = _rank1()
    model = PMF(n_factors=2, epochs=30, reg_user=0.01, reg_item=0.01, seed=0).fit(_from_dense(R, mask))
    u, i = np.nonzero(~mask)
    assert np.sqrt(np.mean((model.predict(u, i) - R[u, i]) ** 2)) < 0.05


@pytest.mark.parametrize("params", [{"reg_user": 0.0}, {"epochs": 0}, {"init_std": -1.0}])
def test_pmf_bad_hyper_parameters(params: dict) -> None:
    with pytest.raises(ConfigError):
        PMF(**params).fit(make_interactions())


def test_registry_names() -> None:
    assert isinstance(make_model("NMF"), NMF)
    assert isinstance(make_model("PMF"), PMF)


@pytest.mark.parametrize(("cls", "old"), [(NMF, "n_epochs"), (PMF, "n_iters")])
def test_old_epoch_names_still_work_with_a_future_warning(cls: type, old: str) -> None:
    with pytest.warns(FutureWarning, match=f"'{old}' was renamed 'epochs'"):
        model = cls(**{old: 3})
    assert model.epochs == 3 and old not in model.get_params()
