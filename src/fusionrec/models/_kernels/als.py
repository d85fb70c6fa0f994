"""Numba kernels of implicit-feedback ALS (Hu, Koren & Volinsky 2008): arrays in, arrays out.

Notation: one side of the problem is solved at a time.  ``X [n, f]`` are the factors being solved
for (users, or items on the other half-step), ``Y [m, f]`` the fixed factors, and the CSR triple
``(indptr, indices, conf)`` holds, for each row ``u`` of ``X``, its observed columns ``i`` with
confidence ``c_ui > 0`` (the preference ``p_ui`` is 1 on stored entries and 0 elsewhere, where
the confidence is 1).  Row ``u`` minimises

``sum_i c_ui (p_ui - x_u . y_i)^2 + reg |x_u|^2``,

whose normal equations are ``(Y^T Y + reg I + sum_{i in u} (c_ui - 1) y_i y_i^T) x_u = sum_{i in u} c_ui y_i``.

Every row is solved independently inside ``prange`` and written only to its own slot, so the
result does not depend on the number of threads (the kernels are deterministic).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["als_cg_sweep", "als_cholesky_sweep", "als_row_losses"]


@njit(cache=True, fastmath=True, inline="always")
def _dot(a: np.ndarray, b: np.ndarray) -> float:
    s = np.float32(0.0)
    for k in range(a.shape[0]):
        s += a[k] * b[k]
    return s  # type: ignore[return-value]


@njit(cache=True, fastmath=True, inline="always")
def _cg_row(
    start: int,
    end: int,
    indices: np.ndarray,
    conf: np.ndarray,
    Y: np.ndarray,
    A0: np.ndarray,
    x: np.ndarray,
    cg_steps: int,
) -> None:
    """A few conjugate-gradient steps on one row's normal equations, warm-started from ``x`` (in place).

    ``A0 = Y^T Y + reg I``; the sparse part ``sum (c - 1) y y^T`` is applied as a matrix-vector
    product without being formed (Takács, Pilászy & Tikk 2011; implicit's ``use_cg=True``).
    """
    f = x.shape[0]
    # residual r = b - A x
    r = np.empty(f, dtype=np.float32)
    for a in range(f):
        r[a] = -_dot(A0[a], x)
    for idx in range(start, end):
        yi = Y[indices[idx]]
        c = conf[idx]
        w = c - (c - np.float32(1.0)) * _dot(yi, x)
        for a in range(f):
            r[a] += w * yi[a]
    p = r.copy()
    ap = np.empty(f, dtype=np.float32)
    rsold = _dot(r, r)
    if rsold < 1e-20:
        return
    for _ in range(cg_steps):
        for a in range(f):
            ap[a] = _dot(A0[a], p)
        for idx in range(start, end):
            yi = Y[indices[idx]]
            w = (conf[idx] - np.float32(1.0)) * _dot(yi, p)
            for a in range(f):
                ap[a] += w * yi[a]
        pap = _dot(p, ap)
        if pap <= 0.0:
            return
        step = rsold / pap
        for a in range(f):
            x[a] += step * p[a]
            r[a] -= step * ap[a]
        rsnew = _dot(r, r)
        if rsnew < 1e-20:
            return
        beta = rsnew / rsold
        for a in range(f):
            p[a] = r[a] + beta * p[a]
        rsold = rsnew


@njit(cache=True, parallel=True, fastmath=True)
def als_cg_sweep(
    indptr: np.ndarray,
    indices: np.ndarray,
    conf: np.ndarray,
    Y: np.ndarray,
    A0: np.ndarray,
    X: np.ndarray,
    cg_steps: int,
) -> None:
    """Update every row of ``X`` (float32, in place) by ``cg_steps`` CG steps; ``A0 = Y^T Y + reg I`` (float32)."""
    for u in prange(X.shape[0]):
        _cg_row(indptr[u], indptr[u + 1], indices, conf, Y, A0, X[u], cg_steps)


@njit(cache=True, inline="always")
def _cholesky_row(
    start: int, end: int, indices: np.ndarray, conf: np.ndarray, Y: np.ndarray, A0: np.ndarray, out: np.ndarray
) -> None:
    """Exact solve of one row's normal equations (float64 accumulation, Cholesky factorisation)."""
    f = A0.shape[0]
    A = A0.copy()
    b = np.zeros(f)
    for idx in range(start, end):
        yi = Y[indices[idx]].astype(np.float64)
        c = np.float64(conf[idx])
        for a in range(f):
            b[a] += c * yi[a]
            w = (c - 1.0) * yi[a]
            for k in range(f):
                A[a, k] += w * yi[k]
    L = np.linalg.cholesky(A)
    # forward substitution L z = b, then back substitution L^T x = z
    z = np.empty(f)
    for a in range(f):
        s = b[a]
        for k in range(a):
            s -= L[a, k] * z[k]
        z[a] = s / L[a, a]
    for a in range(f - 1, -1, -1):
        s = z[a]
        for k in range(a + 1, f):
            s -= L[k, a] * out[k]
        out[a] = s / L[a, a]


@njit(cache=True, parallel=True)
def als_cholesky_sweep(
    indptr: np.ndarray, indices: np.ndarray, conf: np.ndarray, Y: np.ndarray, A0: np.ndarray, X: np.ndarray
) -> None:
    """Solve every row of ``X`` exactly (float32 result, in place); ``A0 = Y^T Y + reg I`` (float64)."""
    f = X.shape[1]
    for u in prange(X.shape[0]):
        sol = np.empty(f)
        _cholesky_row(indptr[u], indptr[u + 1], indices, conf, Y, A0, sol)
        for a in range(f):
            X[u, a] = sol[a]


@njit(cache=True, parallel=True)
def als_row_losses(
    indptr: np.ndarray, indices: np.ndarray, conf: np.ndarray, X: np.ndarray, Y: np.ndarray, G: np.ndarray
) -> np.ndarray:
    """Per-row weighted squared error ``sum_i c_ui (p_ui - x_u . y_i)^2`` over ALL columns (float64 [n]).

    Uses ``sum_all s^2 = x^T G x`` with ``G = Y^T Y`` (float64), plus a correction on the stored
    entries: ``c (1 - s)^2 - s^2``.  Summing the returned array serially keeps the total deterministic.
    """
    n, f = X.shape
    out = np.empty(n)
    for u in prange(n):
        x = X[u].astype(np.float64)
        total = 0.0
        for a in range(f):
            s = 0.0
            for k in range(f):
                s += G[a, k] * x[k]
            total += x[a] * s
        for idx in range(indptr[u], indptr[u + 1]):
            yi = Y[indices[idx]]
            s = 0.0
            for a in range(f):
                s += x[a] * yi[a]
            c = np.float64(conf[idx])
            total += c * (1.0 - s) ** 2 - s * s
        out[u] = total
    return out
