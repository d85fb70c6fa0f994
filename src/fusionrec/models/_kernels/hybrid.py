"""Numba kernels of HybridMF (LightFM-style hybrid factorisation, Kula 2015).

An entity (user or item) ``e`` is represented by its identity embedding (weight ``w_e``) plus the
embeddings of its side features (a CSR row ``x_e``):

``r_e = w_e * ID_e + sum_f x_ef E_f``,  ``b_i = w_i * IDb_i + sum_f x_if Eb_f`` (items only).

The score is ``s_ui = r_u . r_i + b_i``.  For a positive ``(u, i)`` and a negative ``j`` the update
multiplies the gradient of ``d = s_ui - s_uj`` by a weight ``g``:

* BPR: ``g = 1 - sigma(d)`` (ascent on ``ln sigma(d)``), one uniformly drawn negative;
* WARP: negatives are drawn until one violates ``s_uj > s_ui - 1`` (at most ``max_sampled``);
  after ``N`` draws ``g = ln(max(1, floor((n_neg - 1) / N)))`` (capped at 10), as in LightFM.

``dd/dr_u = r_i - r_j``, ``dd/dr_i = r_u``, ``dd/dr_j = -r_u``, ``dd/db_i = 1``, ``dd/db_j = -1``,
chained to each embedding through its feature weight.  Every parameter gets ``g * grad - reg * p`` (L2,
``reg_item`` or ``reg_user``) and an Adagrad (accumulators start at 1) or plain SGD step.  Negatives are drawn by
numba's generator seeded per call, so one call is deterministic for a seed.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["hybrid_epoch", "in_row"]

_MAX_LOSS = 10.0


@njit(cache=True, inline="always")
def in_row(indptr: np.ndarray, indices: np.ndarray, row: int, col: int) -> bool:
    """Whether ``col`` is stored in row ``row`` of a CSR with sorted indices (binary search)."""
    lo = indptr[row]
    hi = indptr[row + 1]
    while lo < hi:
        mid = (lo + hi) // 2
        v = indices[mid]
        if v == col:
            return True
        if v < col:
            lo = mid + 1
        else:
            hi = mid
    return False


@njit(cache=True, inline="always")
def _represent(
    e: int,
    idw: np.ndarray,
    ID: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    E: np.ndarray,
    out: np.ndarray,
) -> None:
    f = E.shape[1]
    w = idw[e]
    for k in range(f):
        out[k] = w * ID[e, k]
    for p in range(indptr[e], indptr[e + 1]):
        c = indices[p]
        x = data[p]
        for k in range(f):
            out[k] += x * E[c, k]


@njit(cache=True, inline="always")
def _bias(
    e: int, idw: np.ndarray, IDb: np.ndarray, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, Eb: np.ndarray
) -> float:
    b = idw[e] * IDb[e]
    for p in range(indptr[e], indptr[e + 1]):
        b += data[p] * Eb[indices[p]]
    return b


@njit(cache=True, inline="always")
def _step(p: float, grad: float, acc_row: np.ndarray, acc_col: int, lr: float, adagrad: bool) -> float:
    """Descent step on ``p`` with gradient ``grad``; Adagrad accumulates ``grad^2`` first."""
    if adagrad:
        acc_row[acc_col] += grad * grad
        return p - lr * grad / math.sqrt(acc_row[acc_col])
    return p - lr * grad


@njit(cache=True, inline="always")
def _update_entity(
    e: int,
    scale: float,
    direction: np.ndarray,
    idw: np.ndarray,
    ID: np.ndarray,
    ID_acc: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    E: np.ndarray,
    E_acc: np.ndarray,
    alpha: float,
    lr: float,
    adagrad: bool,
) -> None:
    """Descend ``-scale * direction`` (the loss gradient w.r.t. ``r_e`` is ``-scale * direction``)."""
    f = E.shape[1]
    w = idw[e]
    if w != 0.0:
        for k in range(f):
            g = -scale * direction[k] * w + alpha * ID[e, k]
            ID[e, k] = _step(ID[e, k], g, ID_acc[e], k, lr, adagrad)
    for p in range(indptr[e], indptr[e + 1]):
        c = indices[p]
        x = data[p]
        for k in range(f):
            g = -scale * direction[k] * x + alpha * E[c, k]
            E[c, k] = _step(E[c, k], g, E_acc[c], k, lr, adagrad)


@njit(cache=True, inline="always")
def _update_bias(
    e: int,
    scale: float,
    idw: np.ndarray,
    IDb: np.ndarray,
    IDb_acc: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    Eb: np.ndarray,
    Eb_acc: np.ndarray,
    alpha: float,
    lr: float,
    adagrad: bool,
) -> None:
    w = idw[e]
    if w != 0.0:
        g = -scale * w + alpha * IDb[e]
        IDb[e] = _step(IDb[e], g, IDb_acc, e, lr, adagrad)
    for p in range(indptr[e], indptr[e + 1]):
        c = indices[p]
        g = -scale * data[p] + alpha * Eb[c]
        Eb[c] = _step(Eb[c], g, Eb_acc, c, lr, adagrad)


@njit(cache=True)
def hybrid_epoch(
    users: np.ndarray,
    items: np.ndarray,
    seen_indptr: np.ndarray,
    seen_indices: np.ndarray,
    negatives: np.ndarray,
    # items
    i_idw: np.ndarray,
    I_ID: np.ndarray,
    I_IDb: np.ndarray,
    i_indptr: np.ndarray,
    i_indices: np.ndarray,
    i_data: np.ndarray,
    I_E: np.ndarray,
    I_Eb: np.ndarray,
    I_ID_acc: np.ndarray,
    I_IDb_acc: np.ndarray,
    I_E_acc: np.ndarray,
    I_Eb_acc: np.ndarray,
    # users
    u_idw: np.ndarray,
    U_ID: np.ndarray,
    u_indptr: np.ndarray,
    u_indices: np.ndarray,
    u_data: np.ndarray,
    U_E: np.ndarray,
    U_ID_acc: np.ndarray,
    U_E_acc: np.ndarray,
    # settings
    warp: bool,
    max_sampled: int,
    lr: float,
    reg_item: float,
    reg_user: float,
    adagrad: bool,
    seed: int,
) -> float:
    """One pass over the positive pairs ``(users[s], items[s])`` in the given order (in place).

    ``negatives`` lists the items negatives are drawn from (uniformly); a draw that is a positive of
    the user (row of the ``seen`` CSR) is rejected.  Returns the summed loss: ``-ln sigma(d)`` (BPR)
    or the WARP-weighted hinge ``g * (1 - d)`` of the violating pairs.
    """
    np.random.seed(seed)
    f = U_E.shape[1]
    n_neg = negatives.shape[0]
    ru = np.empty(f, dtype=np.float32)
    ri = np.empty(f, dtype=np.float32)
    rj = np.empty(f, dtype=np.float32)
    diff = np.empty(f, dtype=np.float32)
    total = 0.0
    for s in range(users.shape[0]):
        u = users[s]
        i = items[s]
        _represent(u, u_idw, U_ID, u_indptr, u_indices, u_data, U_E, ru)
        _represent(i, i_idw, I_ID, i_indptr, i_indices, i_data, I_E, ri)
        pos = _bias(i, i_idw, I_IDb, i_indptr, i_indices, i_data, I_Eb)
        for k in range(f):
            pos += ru[k] * ri[k]
        j = -1
        weight = 0.0
        neg = 0.0
        if warp:
            for sampled in range(1, max_sampled + 1):
                cand = negatives[np.random.randint(0, n_neg)]
                _represent(cand, i_idw, I_ID, i_indptr, i_indices, i_data, I_E, rj)
                sc = _bias(cand, i_idw, I_IDb, i_indptr, i_indices, i_data, I_Eb)
                for k in range(f):
                    sc += ru[k] * rj[k]
                if sc > pos - 1.0:
                    if cand == i or in_row(seen_indptr, seen_indices, u, cand):
                        continue
                    j = cand
                    neg = sc
                    weight = math.log(max(1.0, math.floor((n_neg - 1) / sampled)))
                    if weight > _MAX_LOSS:
                        weight = _MAX_LOSS
                    total += weight * (1.0 - (pos - neg))
                    break
        else:
            for _ in range(100):
                cand = negatives[np.random.randint(0, n_neg)]
                if cand != i and not in_row(seen_indptr, seen_indices, u, cand):
                    j = cand
                    break
            if j >= 0:
                _represent(j, i_idw, I_ID, i_indptr, i_indices, i_data, I_E, rj)
                neg = _bias(j, i_idw, I_IDb, i_indptr, i_indices, i_data, I_Eb)
                for k in range(f):
                    neg += ru[k] * rj[k]
                d = pos - neg
                if d >= 0:
                    e = math.exp(-d)
                    weight = e / (1.0 + e)
                    total += math.log1p(e)
                else:
                    e = math.exp(d)
                    weight = 1.0 / (1.0 + e)
                    total += -d + math.log1p(e)
        if j < 0 or weight == 0.0:
            continue
        for k in range(f):
            diff[k] = ri[k] - rj[k]
        # gradients all taken at the representations before this step
        _update_entity(
            i, weight, ru, i_idw, I_ID, I_ID_acc, i_indptr, i_indices, i_data, I_E, I_E_acc, reg_item, lr, adagrad
        )
        _update_bias(
            i, weight, i_idw, I_IDb, I_IDb_acc, i_indptr, i_indices, i_data, I_Eb, I_Eb_acc, reg_item, lr, adagrad
        )
        for k in range(f):
            rj[k] = -ru[k]
        _update_entity(
            j, weight, rj, i_idw, I_ID, I_ID_acc, i_indptr, i_indices, i_data, I_E, I_E_acc, reg_item, lr, adagrad
        )
        _update_bias(
            j, -weight, i_idw, I_IDb, I_IDb_acc, i_indptr, i_indices, i_data, I_Eb, I_Eb_acc, reg_item, lr, adagrad
        )
        _update_entity(
            u, weight, diff, u_idw, U_ID, U_ID_acc, u_indptr, u_indices, u_data, U_E, U_E_acc, reg_user, lr, adagrad
        )
    return total
