"""Numba kernels of the social rating models (:mod:`fusionrec.models.social`).

The rating part of both models is :func:`fusionrec.models._kernels.sgd.svd_epoch`; these kernels add the
social term once per epoch.  ``T`` is the cleaned trust matrix in CSR form (``indptr``, ``indices``,
``weights``), rows = trusters, columns = trusted users.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["socialmf_epoch", "sorec_epoch"]


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
