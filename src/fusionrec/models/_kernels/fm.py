"""Numba kernels of the Bayesian factorisation machine's Gibbs sampler (Rendle 2012, libFM MCMC).

The design matrix has two *blocks* (Rendle 2013, "Scaling factorization machines to relational
data"; myfm's relation blocks): every training row ``r = (u, i)`` is ``x_r = [B_u[u], B_i[i]]``,
where ``B_u`` holds the user-side features (user one-hot, user side information, the user's
normalised rated items) and ``B_i`` the item-side ones.  For one block ("self") and one factor
``f`` define per entity ``e`` of that block

``Q[e, f] = sum_j x_ej v_jf``, ``S[e, f] = sum_j x_ej^2 v_jf^2``, ``lin[e] = sum_j x_ej w_j``,

so that the FM prediction of row ``(u, i)`` is

``yhat = w0 + c_u[u] + c_i[i] + sum_f Q_u[u, f] Q_i[i, f]`` with ``c[e] = lin[e] + 1/2 sum_f (Q[e, f]^2 - S[e, f])``.

A Gibbs update of one parameter ``theta`` (``w_j`` or ``v_jf``) whose prediction is affine in it,
``yhat = g + theta h``, given the residuals ``e_r = y_r - yhat_r``, the noise precision ``alpha``
and the prior ``N(mu, 1/lambda)`` draws from ``N(m, 1/p)``:

``p = alpha sum_r h_r^2 + lambda``, ``m = (alpha sum_r h_r (e_r + theta h_r) + lambda mu) / p``.

For a user-block ``v_jf``, ``h_(u,i) = x_uj (a_u + Q_i[i, f])`` with ``a_u = Q_u[u, f] - v_jf x_uj``, so
the sums over rows reduce to sums over the users holding feature ``j`` of per-user aggregates
``n_u`` (rows), ``S1_u = sum_i Q_i[i, f]``, ``S2_u = sum_i Q_i[i, f]^2``, ``E_u = sum_i e_ui`` and
``EQ_u = sum_i e_ui Q_i[i, f]``; after a draw only ``E_u``, ``EQ_u``, ``Q_u`` and ``S_u`` change.  A
sweep therefore costs ``O(nnz(B) + n_rows)`` per factor instead of ``O(nnz(X))`` - the implicit-feedback
columns, shared by all rows of a user, are visited once per user.  Residuals of the rows are
refreshed once per block sweep.

Every kernel is sequential (the Gibbs chain is), takes its standard normal draws ``z`` from the
caller and is therefore deterministic for a seed.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["fm_block_terms", "fm_residuals", "fm_sweep_factor", "fm_sweep_linear"]


@njit(cache=True)
def fm_block_terms(
    ent_ptr: np.ndarray,
    ent_feat: np.ndarray,
    ent_val: np.ndarray,
    offset: int,
    w: np.ndarray,
    V: np.ndarray,
    lin: np.ndarray,
    Q: np.ndarray,
    S: np.ndarray,
) -> None:
    """Per entity of a block: ``lin``, ``Q`` and ``S`` (see the module notes), written in place.

    ``(ent_ptr, ent_feat, ent_val)`` is the block in CSR form (entities x block features); block
    feature ``j`` is global feature ``offset + j`` of ``w [p]`` and ``V [p, k]``.
    """
    k = V.shape[1]
    for e in range(ent_ptr.shape[0] - 1):
        acc = 0.0
        for f in range(k):
            Q[e, f] = 0.0
            S[e, f] = 0.0
        for idx in range(ent_ptr[e], ent_ptr[e + 1]):
            j = offset + ent_feat[idx]
            x = ent_val[idx]
            acc += x * w[j]
            for f in range(k):
                v = V[j, f]
                Q[e, f] += x * v
                S[e, f] += x * x * v * v
        lin[e] = acc


@njit(cache=True)
def fm_residuals(
    y: np.ndarray,
    row_u: np.ndarray,
    row_i: np.ndarray,
    w0: float,
    c_u: np.ndarray,
    c_i: np.ndarray,
    Q_u: np.ndarray,
    Q_i: np.ndarray,
    e: np.ndarray,
) -> float:
    """``e[r] = y[r] - yhat[r]`` for every row (in place); returns ``sum_r e[r]^2``."""
    k = Q_u.shape[1]
    sse = 0.0
    for r in range(y.shape[0]):
        u = row_u[r]
        i = row_i[r]
        pred = w0 + c_u[u] + c_i[i]
        for f in range(k):
            pred += Q_u[u, f] * Q_i[i, f]
        res = y[r] - pred
        e[r] = res
        sse += res * res
    return sse


@njit(cache=True)
def fm_sweep_linear(
    ent_ptr: np.ndarray,
    ent_rows: np.ndarray,
    e: np.ndarray,
    feat_ptr: np.ndarray,
    feat_ent: np.ndarray,
    feat_val: np.ndarray,
    offset: int,
    w: np.ndarray,
    group: np.ndarray,
    mu_w: np.ndarray,
    lam_w: np.ndarray,
    alpha: float,
    z: np.ndarray,
    lin: np.ndarray,
) -> None:
    """One Gibbs pass over the linear weights of a block (``h_r = x_ej``), updating ``w``, ``lin``, ``e``.

    ``ent_ptr`` / ``ent_rows``: the training rows of each entity; ``(feat_ptr, feat_ent, feat_val)``:
    the block in CSC form (block features x entities); ``z``: one standard normal per block feature.
    """
    n_ent = ent_ptr.shape[0] - 1
    E = np.zeros(n_ent)
    cnt = np.empty(n_ent)
    old = lin.copy()
    for ent in range(n_ent):
        cnt[ent] = ent_ptr[ent + 1] - ent_ptr[ent]
        acc = 0.0
        for idx in range(ent_ptr[ent], ent_ptr[ent + 1]):
            acc += e[ent_rows[idx]]
        E[ent] = acc
    for jb in range(feat_ptr.shape[0] - 1):
        j = offset + jb
        g = group[j]
        s2 = 0.0
        se = 0.0
        for idx in range(feat_ptr[jb], feat_ptr[jb + 1]):
            ent = feat_ent[idx]
            x = feat_val[idx]
            s2 += x * x * cnt[ent]
            se += x * E[ent]
        wj = w[j]
        prec = alpha * s2 + lam_w[g]
        mean = (alpha * (se + wj * s2) + lam_w[g] * mu_w[g]) / prec
        new = mean + z[jb] / np.sqrt(prec)
        d = new - wj
        w[j] = new
        for idx in range(feat_ptr[jb], feat_ptr[jb + 1]):
            ent = feat_ent[idx]
            x = feat_val[idx]
            E[ent] -= d * x * cnt[ent]
            lin[ent] += d * x
    for ent in range(n_ent):
        dl = lin[ent] - old[ent]
        if dl != 0.0:
            for idx in range(ent_ptr[ent], ent_ptr[ent + 1]):
                e[ent_rows[idx]] -= dl


@njit(cache=True)
def fm_sweep_factor(
    f: int,
    ent_ptr: np.ndarray,
    ent_rows: np.ndarray,
    row_other: np.ndarray,
    e: np.ndarray,
    feat_ptr: np.ndarray,
    feat_ent: np.ndarray,
    feat_val: np.ndarray,
    offset: int,
    V: np.ndarray,
    group: np.ndarray,
    mu_v: np.ndarray,
    lam_v: np.ndarray,
    alpha: float,
    z: np.ndarray,
    Q: np.ndarray,
    S: np.ndarray,
    Q_other: np.ndarray,
) -> None:
    """One Gibbs pass over column ``f`` of ``V`` for the features of one block.

    Updates ``V[:, f]`` (block rows), ``Q[:, f]``, ``S[:, f]`` of the block and the residuals ``e``.
    ``row_other[r]`` is the other block's entity of row ``r`` (the item for the user block);
    ``Q_other`` is held fixed.  ``mu_v``, ``lam_v`` are ``[n_groups, k]``.
    """
    n_ent = ent_ptr.shape[0] - 1
    cnt = np.empty(n_ent)
    S1 = np.zeros(n_ent)
    S2 = np.zeros(n_ent)
    E = np.zeros(n_ent)
    EQ = np.zeros(n_ent)
    q_old = np.empty(n_ent)
    s_old = np.empty(n_ent)
    for ent in range(n_ent):
        cnt[ent] = ent_ptr[ent + 1] - ent_ptr[ent]
        a1 = 0.0
        a2 = 0.0
        b1 = 0.0
        b2 = 0.0
        for idx in range(ent_ptr[ent], ent_ptr[ent + 1]):
            r = ent_rows[idx]
            q = Q_other[row_other[r], f]
            a1 += q
            a2 += q * q
            b1 += e[r]
            b2 += e[r] * q
        S1[ent] = a1
        S2[ent] = a2
        E[ent] = b1
        EQ[ent] = b2
        q_old[ent] = Q[ent, f]
        s_old[ent] = S[ent, f]
    for jb in range(feat_ptr.shape[0] - 1):
        j = offset + jb
        g = group[j]
        v = V[j, f]
        s2 = 0.0
        se = 0.0
        for idx in range(feat_ptr[jb], feat_ptr[jb + 1]):
            ent = feat_ent[idx]
            x = feat_val[idx]
            a = Q[ent, f] - v * x
            s2 += x * x * (cnt[ent] * a * a + 2.0 * a * S1[ent] + S2[ent])
            se += x * (a * E[ent] + EQ[ent])
        prec = alpha * s2 + lam_v[g, f]
        mean = (alpha * (se + v * s2) + lam_v[g, f] * mu_v[g, f]) / prec
        new = mean + z[jb] / np.sqrt(prec)
        d = new - v
        V[j, f] = new
        dsq = new * new - v * v
        for idx in range(feat_ptr[jb], feat_ptr[jb + 1]):
            ent = feat_ent[idx]
            x = feat_val[idx]
            a = Q[ent, f] - v * x
            E[ent] -= d * x * (cnt[ent] * a + S1[ent])
            EQ[ent] -= d * x * (a * S1[ent] + S2[ent])
            Q[ent, f] += d * x
            S[ent, f] += dsq * x * x
    for ent in range(n_ent):
        dq = Q[ent, f] - q_old[ent]
        dself = 0.5 * ((Q[ent, f] * Q[ent, f] - S[ent, f]) - (q_old[ent] * q_old[ent] - s_old[ent]))
        if dq != 0.0 or dself != 0.0:
            for idx in range(ent_ptr[ent], ent_ptr[ent + 1]):
                r = ent_rows[idx]
                e[r] -= dq * Q_other[row_other[r], f] + dself
