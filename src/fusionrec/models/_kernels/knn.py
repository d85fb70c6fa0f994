"""Numba kernels of neighbourhood (k-NN) rating prediction: arrays in, arrays out.

Notation (item-based case; the user-based case swaps the roles of users and items).  ``x`` is the
entity whose neighbours are used (the target item ``i``), ``y`` the entity that supplies the known
values (the user ``u``).  The neighbour matrix is a CSR ``(nb_indptr, nb_indices, nb_sims)`` over
``x`` holding the stored (positive) similarities ``s_xj``; the residual matrix is a CSR
``(y_indptr, y_indices, y_resid)`` over ``y`` holding, for every known value of ``y``, the residual
``r_yj - base_yj`` (the value minus its baseline or mean).  The correction of a pair ``(x, y)`` is

``c_xy = sum_{j in N} s_xj e_yj / sum_{j in N} s_xj``

where ``N`` holds the ``k`` largest stored similarities ``s_xj`` among the ``j`` known to ``y``
(ties broken by the lower index ``j``); ``c_xy = 0`` when ``|N| < min_k``.  This is the
neighbourhood term of Surprise's ``KNNWithMeans`` / ``KNNBaseline`` (which use only positive
similarities).

Pairs are processed grouped by ``y``: each group scatters its known residuals into a dense marker
of length ``n_x`` once, then walks each target's neighbour row.  Groups run in ``prange`` and
write only their own output slots, so the result does not depend on the number of threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["knn_corrections", "similarity_topk"]


@njit(cache=True, parallel=True)
def knn_corrections(
    pair_x: np.ndarray,
    pair_y: np.ndarray,
    order: np.ndarray,
    bounds: np.ndarray,
    nb_indptr: np.ndarray,
    nb_indices: np.ndarray,
    nb_sims: np.ndarray,
    y_indptr: np.ndarray,
    y_indices: np.ndarray,
    y_resid: np.ndarray,
    n_x: int,
    k: int,
    min_k: int,
    max_row: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Neighbourhood corrections ``c`` (``float64 [n_pairs]``) and neighbour counts (``int32``).

    ``order`` sorts the pairs by ``pair_y``; group ``g`` is ``order[bounds[g]:bounds[g + 1]]``.
    ``max_row`` is the longest neighbour row (buffer size).
    """
    n_pairs = pair_x.shape[0]
    out = np.zeros(n_pairs, dtype=np.float64)
    used = np.zeros(n_pairs, dtype=np.int32)
    n_groups = bounds.shape[0] - 1
    for g in prange(n_groups):
        start = bounds[g]
        end = bounds[g + 1]
        if start == end:
            continue
        y = pair_y[order[start]]
        mark = np.zeros(n_x, dtype=np.bool_)
        resid = np.zeros(n_x, dtype=np.float64)
        for p in range(y_indptr[y], y_indptr[y + 1]):
            mark[y_indices[p]] = True
            resid[y_indices[p]] = y_resid[p]
        buf_s = np.empty(max(max_row, 1), dtype=np.float64)
        buf_r = np.empty(max(max_row, 1), dtype=np.float64)
        for q in range(start, end):
            pidx = order[q]
            x = pair_x[pidx]
            cnt = 0
            for p in range(nb_indptr[x], nb_indptr[x + 1]):
                j = nb_indices[p]
                if mark[j]:
                    buf_s[cnt] = nb_sims[p]
                    buf_r[cnt] = resid[j]
                    cnt += 1
            if cnt == 0:
                continue
            num = 0.0
            den = 0.0
            if cnt <= k:
                for a in range(cnt):
                    num += buf_s[a] * buf_r[a]
                    den += buf_s[a]
                actual = cnt
            else:
                sel = np.argsort(-buf_s[:cnt], kind="mergesort")[:k]
                for a in sel:
                    num += buf_s[a] * buf_r[a]
                    den += buf_s[a]
                actual = k
            used[pidx] = actual
            if actual >= min_k and den > 0.0:
                out[pidx] = num / den
    return out, used


@njit(cache=True, parallel=True)
def similarity_topk(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    t_indptr: np.ndarray,
    t_indices: np.ndarray,
    t_data: np.ndarray,
    norms: np.ndarray,
    start: int,
    end: int,
    kind: int,
    shrinkage: float,
    offset: float,
    min_support: int,
    k: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-``k`` positive similarities of rows ``start..end`` of a CSR ``A`` with every other row.

    ``(indptr, indices, data)`` is ``A`` (``n`` rows compared over ``m`` columns) and
    ``(t_indptr, t_indices, t_data)`` its transpose.  For rows ``a``, ``b`` with common support
    ``C`` (``n_ab = |C|``) the sums over ``C`` are accumulated in one pass over the co-occurrences
    (the fused equivalent of six sparse products), then

    * ``kind = 0`` (cosine): ``S_ab / (norms[a] norms[b])`` (full-vector norms);
    * ``kind = 1`` (pearson over ``C``): ``(n S_ab - S_a S_b) / sqrt((n S_aa - S_a^2)(n S_bb - S_b^2))``;
    * ``kind = 2`` (cosine over ``C``): ``S_ab / sqrt(S_aa S_bb)``;
    * ``kind = 3`` (dot): ``S_ab``.

    Normalised similarities are clipped to ``[-1, 1]`` (0 when a denominator is 0), multiplied by
    ``(n_ab - offset) / (n_ab - offset + shrinkage)`` when ``shrinkage > 0``, and set to 0 when
    ``n_ab < min_support`` or ``b == a``.  Of the positive ones, the ``k`` largest are kept (ties
    by lower ``b``), in increasing ``b``.

    Returns ``(cols int64 [rows, k], sims float64 [rows, k], counts int64 [rows])``; row ``r`` is
    valid up to ``counts[r]``.  Rows are independent (``prange``), so the result does not depend
    on the number of threads.
    """
    n = indptr.shape[0] - 1
    rows = end - start
    out_c = np.zeros((rows, k), dtype=np.int64)
    out_s = np.zeros((rows, k), dtype=np.float64)
    counts = np.zeros(rows, dtype=np.int64)
    for r in prange(rows):
        a = start + r
        nc = np.zeros(n, dtype=np.float64)
        sab = np.zeros(n, dtype=np.float64)
        saa = np.zeros(n, dtype=np.float64)
        sbb = np.zeros(n, dtype=np.float64)
        sa = np.zeros(n, dtype=np.float64)
        sb = np.zeros(n, dtype=np.float64)
        for p in range(indptr[a], indptr[a + 1]):
            col = indices[p]
            x = data[p]
            for q in range(t_indptr[col], t_indptr[col + 1]):
                b = t_indices[q]
                y = t_data[q]
                nc[b] += 1.0
                sab[b] += x * y
                if kind == 1 or kind == 2:
                    saa[b] += x * x
                    sbb[b] += y * y
                    if kind == 1:
                        sa[b] += x
                        sb[b] += y
        # similarities of the co-occurring rows (stored back into sab), then keep the positive ones
        cand = np.empty(n, dtype=np.int64)
        n_pos = 0
        for b in range(n):
            if nc[b] == 0.0 or b == a or nc[b] < min_support:
                continue
            if kind == 3:
                v = sab[b]
            else:
                if kind == 0:
                    den = norms[a] * norms[b]
                    num = sab[b]
                elif kind == 1:
                    num = nc[b] * sab[b] - sa[b] * sb[b]
                    den = (nc[b] * saa[b] - sa[b] * sa[b]) * (nc[b] * sbb[b] - sb[b] * sb[b])
                    den = np.sqrt(den) if den > 0.0 else 0.0
                else:
                    num = sab[b]
                    den = saa[b] * sbb[b]
                    den = np.sqrt(den) if den > 0.0 else 0.0
                if den <= 0.0:
                    continue
                v = min(1.0, max(-1.0, num / den))
            if shrinkage > 0.0:
                sup = max(nc[b] - offset, 0.0)
                v *= sup / (sup + shrinkage)
            if v > 0.0:
                sab[n_pos] = v  # safe: n_pos <= b, and sab[b] is not read again
                cand[n_pos] = b
                n_pos += 1
        if n_pos <= k:
            for t in range(n_pos):
                out_c[r, t] = cand[t]
                out_s[r, t] = sab[t]
            counts[r] = n_pos
            continue
        # k-th largest value, then everything above it plus the lowest-index ties
        thr = np.partition(sab[:n_pos].copy(), n_pos - k)[n_pos - k]
        n_above = 0
        for t in range(n_pos):
            if sab[t] > thr:
                n_above += 1
        ties = k - n_above
        w = 0
        for t in range(n_pos):
            v = sab[t]
            if v > thr or (v == thr and ties > 0):
                if v == thr:
                    ties -= 1
                out_c[r, w] = cand[t]
                out_s[r, w] = v
                w += 1
        counts[r] = w
    return out_c, out_s, counts
