"""Probabilistic matrix factorisation (Salakhutdinov & Mnih 2008), MAP estimate by alternating least squares."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from fusionrec.data.interactions import Interactions
from fusionrec.models._params import POSITIVE_INT, SEED, Interval
from fusionrec.models.base import SideInfo
from fusionrec.models.factors import FactorSpec
from fusionrec.models.mf.svd import FactorRatingModel, _explicit_entries

__all__ = ["PMF", "pmf_grad", "pmf_loss"]


def _residual(R: sp.csr_matrix, mu: float, U: np.ndarray, V: np.ndarray) -> np.ndarray:
    rows = np.repeat(np.arange(R.shape[0]), np.diff(R.indptr))
    return R.data - mu - np.einsum("ij,ij->i", U[rows], V[R.indices])  # type: ignore[no-any-return]


def pmf_loss(R: sp.csr_matrix, mu: float, U: np.ndarray, V: np.ndarray, reg_user: float, reg_item: float) -> float:
    """Negative log-posterior of PMF up to constants (times the noise variance):

    ``E = 1/2 sum_{(u,i) observed} (r_ui - mu - U_u . V_i)^2 + reg_user/2 |U|_F^2 + reg_item/2 |V|_F^2``
    with ``reg_user = sigma^2 / sigma_U^2`` and ``reg_item = sigma^2 / sigma_V^2``.
    """
    e = _residual(R, mu, U, V)
    return float(0.5 * e @ e + 0.5 * reg_user * (U * U).sum() + 0.5 * reg_item * (V * V).sum())


def pmf_grad(
    R: sp.csr_matrix, mu: float, U: np.ndarray, V: np.ndarray, reg_user: float, reg_item: float
) -> tuple[np.ndarray, np.ndarray]:
    """Gradient of :func:`pmf_loss`: ``dE/dU = -E_R V + reg_user U``, ``dE/dV = -E_R^T U + reg_item V``
    with ``E_R`` the sparse matrix of residuals."""
    E = sp.csr_matrix((_residual(R, mu, U, V), R.indices, R.indptr), shape=R.shape)
    return -(E @ V) + reg_user * U, -(E.T @ U) + reg_item * V


def _ridge_rows(pattern: sp.csr_matrix, target: sp.csr_matrix, X: np.ndarray, reg: float) -> np.ndarray:
    """For every row ``a``: ``argmin_w sum_{b in row a} (t_ab - w . X_b)^2 + reg |w|^2`` (batched solves)."""
    f = X.shape[1]
    outer = np.einsum("bi,bj->bij", X, X).reshape(len(X), f * f)
    A = np.asarray(pattern @ outer).reshape(-1, f, f) + reg * np.eye(f)
    B = np.asarray(target @ X)
    return np.linalg.solve(A, B[..., None])[..., 0]  # type: ignore[no-any-return]


class PMF(FactorRatingModel):
    """Probabilistic matrix factorisation (Salakhutdinov & Mnih, NIPS 2008), linear-Gaussian model.

    ``r_ui ~ Normal(mu + U_u . V_i, sigma^2)``, ``U_u ~ Normal(0, sigma_U^2 I)``, ``V_i ~ Normal(0, sigma_V^2 I)``
    with ``mu`` the training mean (the paper's ratings are centred the same way).  The MAP estimate
    minimises :func:`pmf_loss`; this class finds it by **alternating least squares**: with ``V`` fixed
    each ``U_u`` is the exact ridge solution ``(V_u^T V_u + reg_user I)^-1 V_u^T (r_u - mu)`` over the
    user's rated items, then the same for every ``V_i``.  Each half-step cannot increase the loss, so
    it decreases monotonically (the paper uses gradient descent with momentum on the same objective).

    Parameters
    ----------
    n_factors
        Rank of ``U`` and ``V``.
    epochs
        Alternating (users, then items) passes (formerly ``n_iters``).
    reg_user, reg_item
        ``sigma^2 / sigma_U^2`` and ``sigma^2 / sigma_V^2`` (must be > 0).
    init_std
        ``V`` starts ~ Normal(0, init_std).
    seed
        Seeds the initial ``V``.
    """

    #: tuning ranges (:mod:`fusionrec.tuning`): name -> (kind, low, high[, "log"]) or ("categorical", [choices])
    _search_space: ClassVar[dict[str, tuple[Any, ...]]] = {
        "n_factors": ("int", 5, 100, "log"),
        "reg_user": ("float", 0.1, 100.0, "log"),
        "reg_item": ("float", 0.1, 100.0, "log"),
    }

    factor_spec = FactorSpec(
        user="user_vectors_", item="item_factors_", user_bias="user_bias_", item_bias="item_bias_",
        global_bias="offset_", fold_in="ridge", regularization="reg_user", fit_user_bias=False,
    )  # fmt: skip

    _renamed_params: ClassVar[dict[str, str]] = {"n_iters": "epochs"}
    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        "n_factors": [*POSITIVE_INT],
        "epochs": [*POSITIVE_INT],
        # above ~20 the MAP solution on a small log shrinks every factor to zero (every score the global mean)
        "reg_user": [Interval(float, 0, 20, closed="right")],
        "reg_item": [Interval(float, 0, 20, closed="right")],
        "init_std": [Interval(float, 0.05, None)],  # near-zero factors stay near zero in SGD: every user alike
        "seed": [*SEED],
    }

    def __init__(
        self,
        *,
        n_factors: int = 10,
        epochs: int = 15,
        reg_user: float = 10.0,
        reg_item: float = 10.0,
        init_std: float = 0.1,
        seed: int | None = 0,
    ) -> None:
        self.n_factors = n_factors
        self.epochs = epochs
        self.reg_user = reg_user
        self.reg_item = reg_item
        self.init_std = init_std
        self.seed = seed

    def _fit(self, train: Interactions, side: SideInfo | None) -> None:
        f = int(self.n_factors)
        _, _, ratings = _explicit_entries(train)
        self._set_scale(train, ratings)
        mu = self.global_mean_
        R = sp.csr_matrix(train.matrix, dtype=np.float64)
        centred = sp.csr_matrix((R.data - mu, R.indices, R.indptr), shape=R.shape)
        pattern = sp.csr_matrix((np.ones(R.nnz), R.indices, R.indptr), shape=R.shape)
        centred_t, pattern_t = sp.csr_matrix(centred.T), sp.csr_matrix(pattern.T)
        rng = np.random.default_rng(self.seed)
        V = rng.normal(0.0, self.init_std, size=(train.n_items, f))
        U = np.zeros((train.n_users, f))
        for _ in range(self.epochs):
            U = _ridge_rows(pattern, centred, V, float(self.reg_user))
            V = _ridge_rows(pattern_t, centred_t, U, float(self.reg_item))
        self.loss_ = pmf_loss(R, mu, U, V, float(self.reg_user), float(self.reg_item))
        self.offset_ = mu
        self.user_bias_ = np.zeros(train.n_users, dtype=np.float32)
        self.item_bias_ = np.zeros(train.n_items, dtype=np.float32)
        self.user_vectors_ = U.astype(np.float32)
        self.item_factors_ = V.astype(np.float32)
