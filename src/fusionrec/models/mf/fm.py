"""Bayesian factorisation machine for rating regression, fitted by Gibbs sampling (libFM's MCMC).

The second-order factorisation machine (Rendle 2010) predicts, for a feature vector ``x in R^p``,

``yhat(x) = w0 + sum_j w_j x_j + sum_{j < l} <v_j, v_l> x_j x_l``
``        = w0 + sum_j w_j x_j + 1/2 sum_f [(sum_j v_jf x_j)^2 - sum_j v_jf^2 x_j^2]``.

The Bayesian model (Freudenthaler, Schmidt-Thieme & Rendle 2011; Rendle 2012, "Factorization
machines with libFM") puts ``y | x ~ N(yhat(x), 1/alpha)``, ``w0`` flat, and per feature group ``g``
``w_j ~ N(mu_w[g], 1/lambda_w[g])``, ``v_jf ~ N(mu_v[g, f], 1/lambda_v[g, f])`` with hyper-priors
``alpha, lambda ~ Gamma(alpha_0/2, beta_0/2)`` resp. ``Gamma(alpha_lambda/2, beta_lambda/2)`` and
``mu ~ N(mu_0, 1/(gamma_0 lambda))``.  Block Gibbs sampling draws ``alpha``, ``w0``, the ``w``
hyper-parameters, every ``w_j``, the ``V`` hyper-parameters and every ``v_jf`` from their full
conditionals; predictions are averaged over the samples drawn after the burn-in.

Features of the row ``(u, i)``: the user's and the item's one-hot ids; optionally dense side
features of the user and the item (:class:`~fusionrec.models.SideInfo`); optionally implicit
feedback - the items the user rated in training, each with value ``1/sqrt(|N(u)|)`` (SVD++'s
term; myfm's / libFM's "implicit user feedback"), and with ``implicit_feedback="both"`` also the
users who rated the item, ``1/sqrt(|N(i)|)``.  Each id kind, each named side matrix and each
implicit block is its own hyper-prior group.  The kernels (:mod:`fusionrec.models._kernels.fm`)
exploit that a row is ``[user block, item block]`` (relation blocks), so a sweep costs
``O(rank * (n_ratings + nnz(blocks)))``.

Stored samples (bounded memory): the prediction of one sample is
``w0 + c_u[u] + c_i[i] + <Q_u[u], Q_i[i]>`` with per-user / per-item scalars ``c`` and vectors ``Q``
(see the kernels).  The sums over *all* post-burn-in samples of ``w0``, ``c_u`` and ``c_i`` are kept;
the bilinear term, which is not a function of averaged parameters, is averaged over at most
``max_kept_samples`` evenly thinned samples, whose ``Q_u`` / ``Q_i`` are concatenated into
``user_factors_`` / ``item_factors_`` (scaled by ``1/sqrt(S)``) so that the posterior-mean score
of every pair is one dot product.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from fusionrec._progress import progress
from fusionrec.data.interactions import Interactions
from fusionrec.errors import ConfigError, DataError
from fusionrec.models._params import BOOL, NONNEGATIVE, NONNEGATIVE_INT, POSITIVE, POSITIVE_INT, Interval, Options
from fusionrec.models.base import Recommender, SideInfo
from fusionrec.models.factors import FactorFoldIn, FactorSpec, finish_ratings

__all__ = ["BayesianFM", "sample_fm"]

IMPLICIT_CHOICES = ("none", "user", "both")


# ---------------------------------------------------------------------------------------------- helpers
@dataclass
class _Block:
    """One side of the design: entities (users or items) x their features, and their training rows."""

    ent_ptr: np.ndarray  # [n_ent + 1] rows of each entity
    ent_rows: np.ndarray  # training-row ids grouped by entity
    row_other: np.ndarray  # the other block's entity of every training row
    csr: sp.csr_matrix  # entities x block features
    csc: sp.csc_matrix
    offset: int  # global index of the block's first feature

    @property
    def n_features(self) -> int:
        return int(self.csr.shape[1])


def _as_int64(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.int64)


def _block(
    parts: list[sp.spmatrix], ent_of_row: np.ndarray, other_of_row: np.ndarray, n_ent: int, offset: int
) -> _Block:
    csr = sp.csr_matrix(sp.hstack(parts, format="csr"), dtype=np.float64)
    csr.eliminate_zeros()
    csr.sort_indices()
    csc = csr.tocsc()
    csc.sort_indices()
    order = np.argsort(ent_of_row, kind="stable")
    ptr = np.zeros(n_ent + 1, dtype=np.int64)
    np.cumsum(np.bincount(ent_of_row, minlength=n_ent), out=ptr[1:])
    return _Block(ptr, _as_int64(order), _as_int64(other_of_row), csr, csc, offset)


def _implicit(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Rows of the 0/1 pattern of ``matrix`` scaled by ``1/sqrt(row count)`` (empty rows stay zero)."""
    pattern = sp.csr_matrix((np.ones(matrix.nnz), matrix.indices, matrix.indptr), shape=matrix.shape)
    counts = np.diff(matrix.indptr).astype(np.float64)
    scale = np.where(counts > 0, 1.0 / np.sqrt(np.maximum(counts, 1.0)), 0.0)
    return sp.csr_matrix(sp.diags(scale) @ pattern)


def _side_parts(wanted: Any, available: dict[str, np.ndarray], n: int, target: str) -> list[tuple[str, sp.csr_matrix]]:
    if wanted is None:
        return []
    if isinstance(wanted, str):
        if wanted != "all":
            raise ConfigError(f"{target}_features must be 'all', None or a list of side-information names")
        names = sorted(available)
    else:
        names = list(wanted)
        missing = [name for name in names if name not in available]
        if missing:
            raise ConfigError(
                f"{target}_features names {missing} are not in the SideInfo (has {sorted(available)}); "
                f"pass names from SideInfo.{target}_features or 'all'"
            )
    out = []
    for name in names:
        arr = np.asarray(available[name], dtype=np.float64)
        if arr.ndim != 2 or arr.shape[0] != n:
            raise DataError(
                f"{target} feature {name!r} has shape {arr.shape}; expected ({n}, d) aligned with the id map"
            )
        if not np.isfinite(arr).all():
            raise DataError(f"{target} feature {name!r} holds NaN or infinite values; fill them before fitting")
        if arr.shape[1]:
            out.append((f"{target}:{name}", sp.csr_matrix(arr)))
    return out


def _draw_hyper(
    values: np.ndarray,
    group: np.ndarray,
    n_groups: int,
    mu: np.ndarray,
    rng: np.random.Generator,
    alpha_lambda: float,
    beta_lambda: float,
    gamma_0: float,
    mu_0: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``lambda_g`` then ``mu_g`` of every group (libFM's order) from their full conditionals.

    ``lambda_g ~ Gamma((alpha_lambda + p_g + 1)/2, rate = (beta_lambda + gamma_0 (mu_g - mu_0)^2 + sum_j (t_j - mu_g)^2)/2)``,
    ``mu_g ~ N((sum_j t_j + gamma_0 mu_0) / (p_g + gamma_0), 1 / ((p_g + gamma_0) lambda_g))``.
    """
    p_g = np.bincount(group, minlength=n_groups).astype(np.float64)
    sq = np.bincount(group, weights=(values - mu[group]) ** 2, minlength=n_groups)
    rate = (beta_lambda + gamma_0 * (mu - mu_0) ** 2 + sq) / 2.0
    lam = rng.gamma((alpha_lambda + p_g + 1.0) / 2.0, 1.0 / rate)
    total = np.bincount(group, weights=values, minlength=n_groups)
    prec = (p_g + gamma_0) * lam
    new_mu = (total + gamma_0 * mu_0) / (p_g + gamma_0) + rng.standard_normal(n_groups) / np.sqrt(prec)
    return lam, new_mu


def sample_fm(
    y: np.ndarray,
    user_block: _Block,
    item_block: _Block,
    group: np.ndarray,
    n_groups: int,
    *,
    rank: int,
    n_iter: int,
    n_burn_in: int,
    init_stdev: float,
    seed: int,
    max_kept_samples: int,
    alpha_0: float = 1.0,
    beta_0: float = 1.0,
    alpha_lambda: float = 1.0,
    beta_lambda: float = 1.0,
    gamma_0: float = 1.0,
    mu_0: float = 0.0,
) -> dict[str, Any]:
    """Run the Gibbs sampler; return posterior means and the kept samples (see the module notes).

    Returns a dict with ``w0`` (mean), ``c_user`` / ``c_item`` (means of the per-entity scalar terms),
    ``user_factors`` / ``item_factors`` (kept ``Q`` samples concatenated, scaled by ``1/sqrt(S)``),
    ``w_mean``, the last sample ``w`` / ``V`` / ``alpha`` and the trace of ``alpha``.
    """
    from fusionrec.models._kernels.fm import fm_block_terms, fm_residuals, fm_sweep_factor, fm_sweep_linear

    rng = np.random.default_rng(seed)
    ub, ib = user_block, item_block
    p = ub.n_features + ib.n_features
    n_u = ub.ent_ptr.shape[0] - 1
    n_i = ib.ent_ptr.shape[0] - 1
    n = y.shape[0]
    row_u = ib.row_other  # the user of every row
    row_i = ub.row_other  # the item of every row
    w = np.zeros(p)
    V = rng.normal(0.0, init_stdev, size=(p, rank)) if rank else np.zeros((p, 0))
    w0 = float(y.mean())
    mu_w = np.zeros(n_groups)
    lam_w = np.ones(n_groups)
    mu_v = np.zeros((n_groups, rank))
    lam_v = np.ones((n_groups, rank))
    alpha = 1.0
    e = np.empty(n)

    def terms(block: _Block) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        m = block.ent_ptr.shape[0] - 1
        lin, Q, S = np.empty(m), np.empty((m, rank)), np.empty((m, rank))
        fm_block_terms(
            _as_int64(block.csr.indptr), _as_int64(block.csr.indices), block.csr.data, block.offset, w, V, lin, Q, S
        )
        return lin, Q, S

    lin_u, Q_u, S_u = terms(ub)
    lin_i, Q_i, S_i = terms(ib)
    n_post = n_iter - n_burn_in
    stride = max(1, math.ceil(n_post / max_kept_samples))
    n_keep = math.ceil(n_post / stride)
    kept_u = np.empty((n_keep, n_u, rank), dtype=np.float32)
    kept_i = np.empty((n_keep, n_i, rank), dtype=np.float32)
    sum_w0, sum_cu, sum_ci, sum_w = 0.0, np.zeros(n_u), np.zeros(n_i), np.zeros(p)
    alphas = np.empty(n_iter)
    blocks = []
    for b in (ub, ib):
        blocks.append(
            (_as_int64(b.ent_ptr), b.ent_rows, b.row_other, _as_int64(b.csc.indptr), _as_int64(b.csc.indices))
        )
    kept = 0
    for it in progress(range(n_iter), total=n_iter, desc="BayesianFM Gibbs"):
        c_u = lin_u + 0.5 * (Q_u * Q_u - S_u).sum(axis=1)
        c_i = lin_i + 0.5 * (Q_i * Q_i - S_i).sum(axis=1)
        sse = fm_residuals(y, row_u, row_i, w0, c_u, c_i, Q_u, Q_i, e)
        alpha = float(rng.gamma((alpha_0 + n) / 2.0, 2.0 / (beta_0 + sse)))
        alphas[it] = alpha
        # w0 with a flat prior: N(w0 + mean(e), 1 / (alpha n))
        d = float(e.sum()) / n + float(rng.standard_normal()) / math.sqrt(alpha * n)
        w0 += d
        e -= d
        lam_w, mu_w = _draw_hyper(w, group, n_groups, mu_w, rng, alpha_lambda, beta_lambda, gamma_0, mu_0)
        for b, (ptr, rows, _, fptr, fent), lin in ((ub, blocks[0], lin_u), (ib, blocks[1], lin_i)):
            z = rng.standard_normal(b.n_features)
            fm_sweep_linear(ptr, rows, e, fptr, fent, b.csc.data, b.offset, w, group, mu_w, lam_w, alpha, z, lin)
        for f in range(rank):
            lam_v[:, f], mu_v[:, f] = _draw_hyper(
                V[:, f], group, n_groups, mu_v[:, f], rng, alpha_lambda, beta_lambda, gamma_0, mu_0
            )
        for f in range(rank):
            for b, (ptr, rows, other, fptr, fent), Q, S, Q_o in (
                (ub, blocks[0], Q_u, S_u, Q_i),
                (ib, blocks[1], Q_i, S_i, Q_u),
            ):
                z = rng.standard_normal(b.n_features)
                fm_sweep_factor(
                    f, ptr, rows, other, e, fptr, fent, b.csc.data, b.offset, V, group, mu_v, lam_v, alpha, z, Q, S, Q_o
                )
        if it >= n_burn_in:
            sum_w0 += w0
            sum_cu += lin_u + 0.5 * (Q_u * Q_u - S_u).sum(axis=1)
            sum_ci += lin_i + 0.5 * (Q_i * Q_i - S_i).sum(axis=1)
            sum_w += w
            if (it - n_burn_in) % stride == 0:
                kept_u[kept] = Q_u
                kept_i[kept] = Q_i
                kept += 1
    scale = 1.0 / math.sqrt(max(kept, 1))
    return {
        "w0": sum_w0 / n_post,
        "c_user": sum_cu / n_post,
        "c_item": sum_ci / n_post,
        "user_factors": (np.concatenate(list(kept_u[:kept]), axis=1) * scale).astype(np.float32)
        if kept and rank
        else np.zeros((n_u, 0), dtype=np.float32),
        "item_factors": (np.concatenate(list(kept_i[:kept]), axis=1) * scale).astype(np.float32)
        if kept and rank
        else np.zeros((n_i, 0), dtype=np.float32),
        "w_mean": sum_w / n_post,
        "w": w,
        "V": V,
        "alpha": alpha,
        "alpha_trace": alphas,
        "n_kept": kept,
    }


# ---------------------------------------------------------------------------------------------- model
class BayesianFM(FactorFoldIn, Recommender):
    """Second-order factorisation machine with MCMC inference (libFM / myfm ``MyFMRegressor``).

    See the module docstring for the model, the priors and what is stored.

    Parameters
    ----------
    n_factors
        Number of factors ``k`` per feature (``0`` gives Bayesian linear regression on the features); formerly
        ``rank`` (still accepted, with a ``FutureWarning``).
    epochs
        Gibbs iterations in total (each draws every parameter once); formerly ``n_iter``.
    n_burn_in
        Leading iterations discarded; predictions average the other ``epochs - n_burn_in`` samples.
    init_stdev
        Standard deviation of the initial ``V``.
    seed
        Seed of the sampler (results are identical for a seed).
    user_features, item_features
        Which :class:`SideInfo` matrices (``side.user_features`` / ``side.item_features`` names) to
        append to the user's / item's features: ``"all"`` (default), a list of names, or ``None``.
    implicit_feedback
        ``"none"``; ``"user"``: add the user's training items with value ``1/sqrt(|N(u)|)``;
        ``"both"``: also the item's training users with value ``1/sqrt(|N(i)|)``.
    max_kept_samples
        Upper bound on the samples of the bilinear term kept for prediction (evenly thinned).
    clip
        Clip predictions (and scores) to the training rating range.
    alpha_0, beta_0, alpha_lambda, beta_lambda, gamma_0, mu_0
        Hyper-prior constants (libFM's defaults: 1, 1, 1, 1, 1, 0).

    Attributes
    ----------
    global_bias_ : float
        Posterior mean of ``w0``.
    user_bias_, item_bias_ : ndarray
        Posterior means of ``c_u`` / ``c_i`` (the linear terms plus within-block interactions).
    user_factors_, item_factors_ : ndarray
        Kept samples of ``Q_u`` / ``Q_i`` concatenated and scaled by ``1/sqrt(S)``.
    feature_group_, group_names_ : ndarray
        Group of every feature (user-block features, then item-block features) and the groups' names.

    The per-feature draws (posterior mean of ``w``, last ``w`` and ``V``) are returned by :func:`sample_fm` and not
    kept on the model: their feature axis mixes user ids, item ids and side features, so they would hold every
    user's row beside the declared per-user state (a forgotten user's id weights would survive in them).
    alpha_trace_ : ndarray
        Sampled noise precision of every iteration.
    """

    predicts_ratings = True
    uses_side_info = True
    #: scores are ``global_bias_ + user_bias_ + item_bias_ + user_factors_ . item_factors_`` (clipped when
    #: ``clip``); a new user is the ridge solution of their ratings with the prior precision 1 as L2 weight
    factor_spec = FactorSpec(
        user="user_factors_", item="item_factors_", user_bias="user_bias_", item_bias="item_bias_",
        global_bias="global_bias_", fold_in="ridge", regularization=1.0,
    )  # fmt: skip

    _renamed_params: ClassVar[dict[str, str]] = {"rank": "n_factors", "n_iter": "epochs"}
    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        "n_factors": [*NONNEGATIVE_INT],
        "epochs": [*POSITIVE_INT],
        "n_burn_in": [*NONNEGATIVE_INT],
        "init_stdev": [*NONNEGATIVE],
        "seed": [*NONNEGATIVE_INT],
        "user_features": [Options(("all",)), list, None],
        "item_features": [Options(("all",)), list, None],
        "implicit_feedback": [Options(IMPLICIT_CHOICES)],
        "max_kept_samples": [*POSITIVE_INT],
        "clip": [*BOOL],
        **{name: [*POSITIVE] for name in ("alpha_0", "beta_0", "alpha_lambda", "beta_lambda", "gamma_0")},
        "mu_0": [Interval(float, None, None)],
    }

    def __init__(
        self,
        *,
        n_factors: int = 8,
        epochs: int = 200,
        n_burn_in: int = 50,
        init_stdev: float = 0.1,
        seed: int = 0,
        user_features: str | list[str] | None = "all",
        item_features: str | list[str] | None = "all",
        implicit_feedback: str = "none",
        max_kept_samples: int = 200,
        clip: bool = True,
        alpha_0: float = 1.0,
        beta_0: float = 1.0,
        alpha_lambda: float = 1.0,
        beta_lambda: float = 1.0,
        gamma_0: float = 1.0,
        mu_0: float = 0.0,
    ) -> None:
        self.n_factors = n_factors
        self.epochs = epochs
        self.n_burn_in = n_burn_in
        self.init_stdev = init_stdev
        self.seed = seed
        self.user_features = user_features
        self.item_features = item_features
        self.implicit_feedback = implicit_feedback
        self.max_kept_samples = max_kept_samples
        self.clip = clip
        self.alpha_0 = alpha_0
        self.beta_0 = beta_0
        self.alpha_lambda = alpha_lambda
        self.beta_lambda = beta_lambda
        self.gamma_0 = gamma_0
        self.mu_0 = mu_0

    def _check_params(self) -> None:
        if self.epochs <= self.n_burn_in:
            raise ConfigError(
                f"need 0 <= n_burn_in < epochs (got n_burn_in={self.n_burn_in}, epochs={self.epochs}); "
                "raise epochs so that some samples follow the burn-in"
            )

    def _fit(self, train: Interactions, side: SideInfo | None) -> None:
        self._check_params()
        m = train.matrix
        if m.nnz == 0:
            raise DataError("no training ratings; BayesianFM needs at least one")
        n_u, n_i = train.n_users, train.n_items
        row_u = train.row_indices()
        row_i = m.indices.astype(np.int64)
        y = m.data.astype(np.float64)
        side = side or SideInfo()
        user_parts: list[tuple[str, sp.spmatrix]] = [("user:id", sp.identity(n_u, format="csr"))]
        item_parts: list[tuple[str, sp.spmatrix]] = [("item:id", sp.identity(n_i, format="csr"))]
        user_parts += _side_parts(self.user_features, side.user_features, n_u, "user")
        item_parts += _side_parts(self.item_features, side.item_features, n_i, "item")
        if self.implicit_feedback in ("user", "both"):
            user_parts.append(("user:implicit_items", _implicit(m)))
        if self.implicit_feedback == "both":
            item_parts.append(("item:implicit_users", _implicit(sp.csr_matrix(m.T))))
        names = [name for name, _ in user_parts + item_parts]
        group = np.concatenate(
            [np.full(part.shape[1], g, dtype=np.int64) for g, (_, part) in enumerate(user_parts + item_parts)]
        )
        ub = _block([part for _, part in user_parts], row_u, row_i, n_u, 0)
        ib = _block([part for _, part in item_parts], row_i, row_u, n_i, ub.n_features)
        out = sample_fm(
            y,
            ub,
            ib,
            group,
            len(names),
            rank=int(self.n_factors),
            n_iter=int(self.epochs),
            n_burn_in=int(self.n_burn_in),
            init_stdev=float(self.init_stdev),
            seed=int(self.seed),
            max_kept_samples=int(self.max_kept_samples),
            alpha_0=float(self.alpha_0),
            beta_0=float(self.beta_0),
            alpha_lambda=float(self.alpha_lambda),
            beta_lambda=float(self.beta_lambda),
            gamma_0=float(self.gamma_0),
            mu_0=float(self.mu_0),
        )
        self.global_bias_ = float(out["w0"])
        self.user_bias_ = out["c_user"].astype(np.float32)
        self.item_bias_ = out["c_item"].astype(np.float32)
        self.user_factors_ = out["user_factors"]
        self.item_factors_ = out["item_factors"]
        self.alpha_trace_ = out["alpha_trace"]
        self.n_kept_samples_ = int(out["n_kept"])
        self.feature_group_ = group
        self.group_names_ = np.array(names)
        self.rating_min_ = float(y.min())
        self.rating_max_ = float(y.max())

    # ------------------------------------------------------------------ scoring
    def _finish(self, raw: np.ndarray) -> np.ndarray:
        return finish_ratings(
            raw, low=self.rating_min_ if self.clip else None, high=self.rating_max_ if self.clip else None
        )

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """Posterior-mean predicted ratings ``float32 [U, I]`` (clipped when ``clip``)."""
        self._check_fitted()
        return self._finish(self.factors().scores(users, items))

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Posterior-mean predicted rating of each ``(users[j], items[j])`` pair, ``float32 [n]``."""
        self._check_fitted()
        return self._finish(self.factors().pair_scores(users, items))

    def item_embeddings(self) -> np.ndarray | None:
        return self.item_factors_ if self.item_factors_.shape[1] else None
