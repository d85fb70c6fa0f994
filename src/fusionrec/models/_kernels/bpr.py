"""Numba kernels of BPR-MF (Rendle et al. 2009): SGD on (user, positive, negative) triples.

For a triple ``(u, i, j)`` the score difference is ``x_uij = b_i - b_j + U_u . (V_i - V_j)`` and the
per-sample objective (to maximise) is

``l(u, i, j) = ln sigma(x_uij) - reg / 2 (|U_u|^2 + |V_i|^2 + |V_j|^2 + b_i^2 + b_j^2)``.

Its gradient, with ``z = 1 - sigma(x_uij) = 1 / (1 + exp(x_uij))``, is
``dU_u = z (V_i - V_j) - reg U_u``, ``dV_i = z U_u - reg V_i``, ``dV_j = -z U_u - reg V_j``,
``db_i = z - reg b_i``, ``db_j = -z - reg b_j``; one SGD step adds ``lr`` times it, every
gradient taken at the parameters before the step.

The triples are drawn outside (numpy, seeded), so :func:`bpr_epoch` is deterministic; the
:func:`bpr_epoch_hogwild` variant splits them across threads that update shared parameters
without locks (Hogwild, Recht et al. 2011) and is therefore NOT reproducible bit for bit.

Adagrad (:func:`bpr_step_adagrad`, Duchi et al. 2011) takes the same gradient ``g`` per parameter and steps
``lr * g / sqrt(G + eps)`` after adding ``g^2`` to the parameter's accumulator ``G`` (same shape as the
parameter).  Per-coordinate scaling makes the step independent of the gradient's scale, so the small factor
gradients at the start (``z (V_i - V_j)`` with factors of order ``1 / n_factors``) move the factors as fast as
the biases move: plain SGD at a small ``lr`` learns the biases long before the factors and ends at popularity.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = [
    "bpr_epoch",
    "bpr_epoch_adagrad",
    "bpr_epoch_adagrad_hogwild",
    "bpr_epoch_hogwild",
    "bpr_step",
    "bpr_step_adagrad",
    "pair_gradient",
    "verify_negatives",
]

#: added to the Adagrad accumulator under the square root
EPS = 1e-8


@njit(cache=True, inline="always")
def pair_gradient(x: float) -> tuple[float, float]:
    """``(1 - sigma(x), ln sigma(x))`` computed stably on both sides of 0: the pairwise (BPR) gradient weight and
    log-likelihood of a score difference ``x``, shared by the BPR and VBPR kernels."""
    if x >= 0:
        e = math.exp(-x)
        return e / (1.0 + e), -math.log1p(e)
    e = math.exp(x)
    return 1.0 / (1.0 + e), x - math.log1p(e)


@njit(cache=True, inline="always")
def bpr_step(U: np.ndarray, V: np.ndarray, b: np.ndarray, u: int, i: int, j: int, lr: float, reg: float) -> float:
    """One SGD ascent step on ``l(u, i, j)`` (in place); returns ``ln sigma(x_uij)`` before the step."""
    f = U.shape[1]
    x = b[i] - b[j]
    for k in range(f):
        x += U[u, k] * (V[i, k] - V[j, k])
    z, loglik = pair_gradient(x)
    for k in range(f):
        uk = U[u, k]
        ik = V[i, k]
        jk = V[j, k]
        U[u, k] = uk + lr * (z * (ik - jk) - reg * uk)
        V[i, k] = ik + lr * (z * uk - reg * ik)
        V[j, k] = jk + lr * (-z * uk - reg * jk)
    bi = b[i]
    bj = b[j]
    b[i] = bi + lr * (z - reg * bi)
    b[j] = bj + lr * (-z - reg * bj)
    return loglik


@njit(cache=True, inline="always")
def bpr_step_adagrad(
    U: np.ndarray,
    V: np.ndarray,
    b: np.ndarray,
    GU: np.ndarray,
    GV: np.ndarray,
    Gb: np.ndarray,
    u: int,
    i: int,
    j: int,
    lr: float,
    reg: float,
) -> float:
    """One Adagrad ascent step on ``l(u, i, j)`` (in place; ``G*`` are the squared-gradient accumulators)."""
    f = U.shape[1]
    x = b[i] - b[j]
    for k in range(f):
        x += U[u, k] * (V[i, k] - V[j, k])
    z, loglik = pair_gradient(x)
    for k in range(f):
        uk = U[u, k]
        ik = V[i, k]
        jk = V[j, k]
        gu = z * (ik - jk) - reg * uk
        gi = z * uk - reg * ik
        gj = -z * uk - reg * jk
        GU[u, k] += gu * gu
        GV[i, k] += gi * gi
        GV[j, k] += gj * gj
        U[u, k] = uk + lr * gu / math.sqrt(GU[u, k] + EPS)
        V[i, k] = ik + lr * gi / math.sqrt(GV[i, k] + EPS)
        V[j, k] = jk + lr * gj / math.sqrt(GV[j, k] + EPS)
    gbi = z - reg * b[i]
    gbj = -z - reg * b[j]
    Gb[i] += gbi * gbi
    Gb[j] += gbj * gbj
    b[i] += lr * gbi / math.sqrt(Gb[i] + EPS)
    b[j] += lr * gbj / math.sqrt(Gb[j] + EPS)
    return loglik


@njit(cache=True)
def bpr_epoch_adagrad(
    U: np.ndarray,
    V: np.ndarray,
    b: np.ndarray,
    GU: np.ndarray,
    GV: np.ndarray,
    Gb: np.ndarray,
    users: np.ndarray,
    pos: np.ndarray,
    neg: np.ndarray,
    lr: float,
    reg: float,
) -> float:
    """Adagrad steps over the triples in order (deterministic); returns the sum of ``ln sigma(x_uij)``."""
    total = 0.0
    for s in range(users.shape[0]):
        total += bpr_step_adagrad(U, V, b, GU, GV, Gb, users[s], pos[s], neg[s], lr, reg)
    return total


@njit(cache=True, parallel=True)
def bpr_epoch_adagrad_hogwild(
    U: np.ndarray,
    V: np.ndarray,
    b: np.ndarray,
    GU: np.ndarray,
    GV: np.ndarray,
    Gb: np.ndarray,
    users: np.ndarray,
    pos: np.ndarray,
    neg: np.ndarray,
    lr: float,
    reg: float,
    n_chunks: int,
) -> float:
    """Hogwild Adagrad: ``n_chunks`` contiguous slices of the triples in parallel on shared parameters."""
    n = users.shape[0]
    sums = np.zeros(n_chunks)
    for c in prange(n_chunks):
        lo = c * n // n_chunks
        hi = (c + 1) * n // n_chunks
        acc = 0.0
        for s in range(lo, hi):
            acc += bpr_step_adagrad(U, V, b, GU, GV, Gb, users[s], pos[s], neg[s], lr, reg)
        sums[c] = acc
    return sums.sum()


@njit(cache=True)
def bpr_epoch(
    U: np.ndarray,
    V: np.ndarray,
    b: np.ndarray,
    users: np.ndarray,
    pos: np.ndarray,
    neg: np.ndarray,
    lr: float,
    reg: float,
) -> float:
    """SGD steps over the triples in order (deterministic); returns the sum of ``ln sigma(x_uij)``."""
    total = 0.0
    for s in range(users.shape[0]):
        total += bpr_step(U, V, b, users[s], pos[s], neg[s], lr, reg)
    return total


@njit(cache=True, parallel=True)
def bpr_epoch_hogwild(
    U: np.ndarray,
    V: np.ndarray,
    b: np.ndarray,
    users: np.ndarray,
    pos: np.ndarray,
    neg: np.ndarray,
    lr: float,
    reg: float,
    n_chunks: int,
) -> float:
    """Hogwild: ``n_chunks`` contiguous slices of the triples run in parallel on shared parameters."""
    n = users.shape[0]
    sums = np.zeros(n_chunks)
    for c in prange(n_chunks):
        lo = c * n // n_chunks
        hi = (c + 1) * n // n_chunks
        acc = 0.0
        for s in range(lo, hi):
            acc += bpr_step(U, V, b, users[s], pos[s], neg[s], lr, reg)
        sums[c] = acc
    return sums.sum()


@njit(cache=True)
def verify_negatives(
    indptr: np.ndarray, indices: np.ndarray, users: np.ndarray, neg: np.ndarray, pool: np.ndarray
) -> int:
    """Redraw ``neg[s]`` from ``pool`` (in order) while ``(users[s], neg[s])`` is a stored entry (in place).

    ``indptr`` / ``indices`` are a CSR with sorted indices; membership is a binary search in the user's row.
    Returns the number of pool entries used, or ``-1`` when the pool ran out (call again with a new pool:
    the negatives already verified stay valid).
    """
    used = 0
    for s in range(users.shape[0]):
        lo = indptr[users[s]]
        hi = indptr[users[s] + 1]
        while True:
            j = neg[s]
            a = lo
            b = hi
            while a < b:
                mid = (a + b) // 2
                if indices[mid] < j:
                    a = mid + 1
                else:
                    b = mid
            if a < hi and indices[a] == j:
                if used >= pool.shape[0]:
                    return -1
                neg[s] = pool[used]
                used += 1
            else:
                break
    return used
