"""Numba kernel of VBPR (He & McAuley 2016) with content features of any modality.

Score ``x_ui = b_i + gamma_u . gamma_i + theta_u . (E f_i) + beta . f_i`` with ``E`` ``[K2, F]`` and
content rows ``f_i`` ``[F]``.  For a triple ``(u, i, j)``, ``d = f_i - f_j`` and
``x_uij = b_i - b_j + gamma_u . (gamma_i - gamma_j) + theta_u . (E d) + beta . d``; with
``z = 1 - sigma(x_uij)`` one SGD ascent step on ``ln sigma(x_uij) - reg terms / 2`` is

``gamma_u += lr (z (gamma_i - gamma_j) - reg gamma_u)``, ``gamma_i += lr (z gamma_u - reg gamma_i)``,
``gamma_j += lr (-z gamma_u - reg gamma_j)``, ``b_i += lr (z - reg_b b_i)``, ``b_j += lr (-z - reg_b b_j)``,
``theta_u += lr (z E d - reg theta_u)``, ``E += lr (z theta_u d^T - reg_e E)``, ``beta += lr (z d - reg_e beta)``,

every gradient taken at the parameters before the step.  Triples come from outside (seeded), so the
kernel is deterministic.  With ``adagrad=True`` each parameter instead steps ``lr * g / sqrt(G + eps)`` after
adding ``g^2`` to its accumulator ``G`` (the ``A*`` arrays, one per parameter, same shapes), as in
:func:`fusionrec.models._kernels.bpr.bpr_step_adagrad`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from fusionrec.models._kernels.bpr import pair_gradient

__all__ = ["vbpr_epoch"]

EPS = 1e-8


def vbpr_epoch(
    G_u: np.ndarray,
    G_i: np.ndarray,
    b: np.ndarray,
    T: np.ndarray,
    E: np.ndarray,
    beta: np.ndarray,
    F: np.ndarray,
    users: np.ndarray,
    pos: np.ndarray,
    neg: np.ndarray,
    lr: float,
    reg: float,
    reg_b: float,
    reg_e: float,
    adagrad: bool = False,
    A_u: np.ndarray | None = None,
    A_i: np.ndarray | None = None,
    A_b: np.ndarray | None = None,
    A_t: np.ndarray | None = None,
    A_e: np.ndarray | None = None,
    A_beta: np.ndarray | None = None,
) -> float:
    """SGD (or Adagrad) steps over the triples in order (in place); returns the sum of ``ln sigma(x_uij)``."""
    if not adagrad:
        return _vbpr_sgd(G_u, G_i, b, T, E, beta, F, users, pos, neg, lr, reg, reg_b, reg_e)
    assert A_u is not None and A_i is not None and A_b is not None
    assert A_t is not None and A_e is not None and A_beta is not None
    return _vbpr_adagrad(
        G_u, G_i, b, T, E, beta, F, users, pos, neg, lr, reg, reg_b, reg_e, A_u, A_i, A_b, A_t, A_e, A_beta
    )


@njit(cache=True)
def _vbpr_sgd(
    G_u: np.ndarray,
    G_i: np.ndarray,
    b: np.ndarray,
    T: np.ndarray,
    E: np.ndarray,
    beta: np.ndarray,
    F: np.ndarray,
    users: np.ndarray,
    pos: np.ndarray,
    neg: np.ndarray,
    lr: float,
    reg: float,
    reg_b: float,
    reg_e: float,
) -> float:
    k1 = G_u.shape[1]
    k2 = T.shape[1]
    nf = F.shape[1]
    d = np.empty(nf, dtype=np.float32)
    ed = np.empty(k2, dtype=np.float32)
    total = 0.0
    for s in range(users.shape[0]):
        u = users[s]
        i = pos[s]
        j = neg[s]
        x = b[i] - b[j]
        for k in range(k1):
            x += G_u[u, k] * (G_i[i, k] - G_i[j, k])
        for c in range(nf):
            d[c] = F[i, c] - F[j, c]
            x += beta[c] * d[c]
        for k in range(k2):
            acc = 0.0
            for c in range(nf):
                acc += E[k, c] * d[c]
            ed[k] = acc
            x += T[u, k] * acc
        z, loglik = pair_gradient(x)
        total += loglik
        for k in range(k1):
            gu = G_u[u, k]
            gi = G_i[i, k]
            gj = G_i[j, k]
            G_u[u, k] = gu + lr * (z * (gi - gj) - reg * gu)
            G_i[i, k] = gi + lr * (z * gu - reg * gi)
            G_i[j, k] = gj + lr * (-z * gu - reg * gj)
        bi = b[i]
        bj = b[j]
        b[i] = bi + lr * (z - reg_b * bi)
        b[j] = bj + lr * (-z - reg_b * bj)
        for k in range(k2):
            tu = T[u, k]
            T[u, k] = tu + lr * (z * ed[k] - reg * tu)
            zt = z * tu
            for c in range(nf):
                E[k, c] += lr * (zt * d[c] - reg_e * E[k, c])
        for c in range(nf):
            beta[c] += lr * (z * d[c] - reg_e * beta[c])
    return total


@njit(cache=True)
def _vbpr_adagrad(
    G_u: np.ndarray,
    G_i: np.ndarray,
    b: np.ndarray,
    T: np.ndarray,
    E: np.ndarray,
    beta: np.ndarray,
    F: np.ndarray,
    users: np.ndarray,
    pos: np.ndarray,
    neg: np.ndarray,
    lr: float,
    reg: float,
    reg_b: float,
    reg_e: float,
    A_u: np.ndarray,
    A_i: np.ndarray,
    A_b: np.ndarray,
    A_t: np.ndarray,
    A_e: np.ndarray,
    A_beta: np.ndarray,
) -> float:
    k1 = G_u.shape[1]
    k2 = T.shape[1]
    nf = F.shape[1]
    d = np.empty(nf, dtype=np.float32)
    ed = np.empty(k2, dtype=np.float32)
    total = 0.0
    for s in range(users.shape[0]):
        u = users[s]
        i = pos[s]
        j = neg[s]
        x = b[i] - b[j]
        for k in range(k1):
            x += G_u[u, k] * (G_i[i, k] - G_i[j, k])
        for c in range(nf):
            d[c] = F[i, c] - F[j, c]
            x += beta[c] * d[c]
        for k in range(k2):
            acc = 0.0
            for c in range(nf):
                acc += E[k, c] * d[c]
            ed[k] = acc
            x += T[u, k] * acc
        z, loglik = pair_gradient(x)
        total += loglik
        for k in range(k1):
            gu = G_u[u, k]
            gi = G_i[i, k]
            gj = G_i[j, k]
            g1 = z * (gi - gj) - reg * gu
            g2 = z * gu - reg * gi
            g3 = -z * gu - reg * gj
            A_u[u, k] += g1 * g1
            A_i[i, k] += g2 * g2
            A_i[j, k] += g3 * g3
            G_u[u, k] = gu + lr * g1 / math.sqrt(A_u[u, k] + EPS)
            G_i[i, k] = gi + lr * g2 / math.sqrt(A_i[i, k] + EPS)
            G_i[j, k] = gj + lr * g3 / math.sqrt(A_i[j, k] + EPS)
        gbi = z - reg_b * b[i]
        gbj = -z - reg_b * b[j]
        A_b[i] += gbi * gbi
        A_b[j] += gbj * gbj
        b[i] += lr * gbi / math.sqrt(A_b[i] + EPS)
        b[j] += lr * gbj / math.sqrt(A_b[j] + EPS)
        for k in range(k2):
            tu = T[u, k]
            gt = z * ed[k] - reg * tu
            A_t[u, k] += gt * gt
            T[u, k] = tu + lr * gt / math.sqrt(A_t[u, k] + EPS)
            zt = z * tu
            for c in range(nf):
                ge = zt * d[c] - reg_e * E[k, c]
                A_e[k, c] += ge * ge
                E[k, c] += lr * ge / math.sqrt(A_e[k, c] + EPS)
        for c in range(nf):
            gb = z * d[c] - reg_e * beta[c]
            A_beta[c] += gb * gb
            beta[c] += lr * gb / math.sqrt(A_beta[c] + EPS)
    return total
