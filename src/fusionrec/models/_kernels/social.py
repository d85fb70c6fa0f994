"""Numba kernels of the social rating models (:mod:`fusionrec.models.social`).

The rating part of both models is :func:`fusionrec.models._kernels.sgd.svd_epoch`; these kernels add the
social term once per epoch.  ``T`` is the cleaned trust matrix in CSR form (``indptr``, ``indices``,
``weights``), rows = trusters, columns = trusted users.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["socialmf_epoch", "sorec_epoch", "trustsvd_epoch", "trustsvd_links_epoch"]


@njit(cache=True, nogil=True)
def socialmf_epoch(
    order: np.ndarray, indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray, P: np.ndarray, step: float
) -> float:
    """One SGD pass over the trust propagation term of SocialMF (in place); returns the term's value.

    For each user ``u`` (in ``order``) with trusted users, ``d_u = p_u - sum_v T_uv p_v`` (``T`` row-normalised)
    and the per-user loss ``1/2 reg_social |d_u|^2`` has gradient ``reg_social d_u`` for ``p_u`` and
    ``-reg_social T_uv d_u`` for each trusted ``p_v``; ``step = lr * reg_social``.
    """
    f = P.shape[1]
    d = np.empty(f)
    total = 0.0
    for t in range(order.shape[0]):
        u = order[t]
        start, end = indptr[u], indptr[u + 1]
        if start == end:
            continue
        for k in range(f):
            d[k] = P[u, k]
        for e in range(start, end):
            v = indices[e]
            w = weights[e]
            for k in range(f):
                d[k] -= w * P[v, k]
        for k in range(f):
            total += 0.5 * d[k] * d[k]
            P[u, k] -= step * d[k]
        for e in range(start, end):
            v = indices[e]
            w = weights[e]
            for k in range(f):
                P[v, k] += step * w * d[k]
    return total


@njit(cache=True, nogil=True)
def sorec_epoch(
    order: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    values: np.ndarray,
    P: np.ndarray,
    Z: np.ndarray,
    lr: float,
    reg_social: float,
    reg_z: float,
) -> float:
    """One SGD pass over the trust links of SoRec (in place); returns the weighted squared error.

    Per link ``(u, k, c)``: ``l = 1/2 reg_social (c - p_u . z_k)^2 + 1/2 reg_z |z_k|^2`` (``p_u`` is
    regularised in the rating pass).
    """
    f = P.shape[1]
    sse = 0.0
    for t in range(order.shape[0]):
        e = order[t]
        u = rows[e]
        k = cols[e]
        dot = 0.0
        for j in range(f):
            dot += P[u, j] * Z[k, j]
        err = values[e] - dot
        sse += reg_social * err * err
        g = lr * reg_social * err
        for j in range(f):
            puj = P[u, j]
            zkj = Z[k, j]
            P[u, j] = puj + g * zkj
            Z[k, j] = zkj + g * puj - lr * reg_z * zkj
    return sse


@njit(cache=True, nogil=True)
def trustsvd_epoch(
    user_order: np.ndarray,
    indptr: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    t_indptr: np.ndarray,
    t_indices: np.ndarray,
    mu: float,
    bu: np.ndarray,
    bi: np.ndarray,
    P: np.ndarray,
    Q: np.ndarray,
    Y: np.ndarray,
    W: np.ndarray,
    lr: np.ndarray,
    reg: np.ndarray,
    s_user: np.ndarray,
    s_item: np.ndarray,
    s_trusted: np.ndarray,
) -> float:
    """One SGD pass over the ratings of TrustSVD, user block by user block (in place); returns the SSE.

    ``r_hat = mu + b_u + b_i + q_i . (p_u + z_u)`` with ``z_u = |N(u)|^-1/2 sum_{j in N(u)} y_j +
    |T(u)|^-1/2 sum_{v in T(u)} w_v``.  ``z_u`` is computed once per user block and held fixed while the user's
    ratings are visited (``b``, ``p_u``, ``q_i`` take per-rating steps); the summed ``y`` and ``w`` gradients of
    the block are applied once at its end (one step per block, with the L2 term).  ``lr`` / ``reg`` are
    ``[bu, bi, pu, qi, yj, wv]``; the L2 weights are scaled per entity (Guo et al.'s weighted regularisation
    when ``s_user = |I_u|^-1/2``, ``s_item = |U_i|^-1/2``, ``s_trusted = |T+_v|^-1/2``; plain L2 with ones):
    ``b_u``, ``p_u`` by ``s_user[u]``, ``b_i``, ``q_i``, ``y_i`` by ``s_item[i]``, ``w_v`` by ``s_trusted[v]``.
    """
    f = P.shape[1]
    z = np.empty(f)
    gy = np.empty(f)
    gw = np.empty(f)
    sse = 0.0
    for t in range(user_order.shape[0]):
        u = user_order[t]
        start, end = indptr[u], indptr[u + 1]
        if start == end:
            continue
        ts, te = t_indptr[u], t_indptr[u + 1]
        s_i = 1.0 / np.sqrt(end - start)
        s_t = 1.0 / np.sqrt(te - ts) if te > ts else 0.0
        for k in range(f):
            z[k] = 0.0
            gy[k] = 0.0
            gw[k] = 0.0
        for e in range(start, end):
            for k in range(f):
                z[k] += s_i * Y[items[e], k]
        for e in range(ts, te):
            for k in range(f):
                z[k] += s_t * W[t_indices[e], k]
        for e in range(start, end):
            i = items[e]
            dot = 0.0
            for k in range(f):
                dot += Q[i, k] * (P[u, k] + z[k])
            err = ratings[e] - (mu + bu[u] + bi[i] + dot)
            sse += err * err
            bu[u] += lr[0] * (err - reg[0] * s_user[u] * bu[u])
            bi[i] += lr[1] * (err - reg[1] * s_item[i] * bi[i])
            for k in range(f):
                puk = P[u, k]
                qik = Q[i, k]
                P[u, k] = puk + lr[2] * (err * qik - reg[2] * s_user[u] * puk)
                Q[i, k] = qik + lr[3] * (err * (puk + z[k]) - reg[3] * s_item[i] * qik)
                gy[k] += err * s_i * qik
                gw[k] += err * s_t * qik
        for e in range(start, end):
            j = items[e]
            for k in range(f):
                Y[j, k] += lr[4] * (gy[k] - reg[4] * s_item[j] * Y[j, k])
        for e in range(ts, te):
            v = t_indices[e]
            for k in range(f):
                W[v, k] += lr[5] * (gw[k] - reg[5] * s_trusted[v] * W[v, k])
    return sse


@njit(cache=True, nogil=True)
def trustsvd_links_epoch(
    order: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    values: np.ndarray,
    P: np.ndarray,
    W: np.ndarray,
    lr: float,
    reg_social: float,
    reg: float,
    s_truster: np.ndarray,
    s_trusted: np.ndarray,
) -> float:
    """One SGD pass over TrustSVD's trust links with the weighted regularisation (in place); returns the SSE.

    Per link ``(u, v, c)``: ``l = 1/2 reg_social (c - p_u . w_v)^2 + 1/2 reg (s_truster[u] |p_u|^2 +
    s_trusted[v] |w_v|^2)`` (Guo et al.: ``|T_u|^-1/2`` and ``|T+_v|^-1/2``).
    """
    f = P.shape[1]
    sse = 0.0
    for t in range(order.shape[0]):
        e = order[t]
        u = rows[e]
        v = cols[e]
        dot = 0.0
        for j in range(f):
            dot += P[u, j] * W[v, j]
        err = values[e] - dot
        sse += reg_social * err * err
        for j in range(f):
            puj = P[u, j]
            wvj = W[v, j]
            P[u, j] = puj + lr * (reg_social * err * wvj - reg * s_truster[u] * puj)
            W[v, j] = wvj + lr * (reg_social * err * puj - reg * s_trusted[v] * wvj)
    return sse
