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


#: rows per parallel task in similarity_topk (each task allocates its O(n_items) scratch once)
_ROW_BLOCK = 64


@njit(inline="always")
def _worse(v1: float, b1: int, v2: float, b2: int) -> bool:
    """Order of the top-k min-heap: a smaller similarity is worse; among equal ones the larger index is."""
    return v1 < v2 or (v1 == v2 and b1 > b2)


@njit(inline="always")
def _sift_up(hv: np.ndarray, hb: np.ndarray, i: int) -> None:
    while i > 0:
        p = (i - 1) // 2
        if not _worse(hv[i], hb[i], hv[p], hb[p]):
            break
        hv[i], hv[p] = hv[p], hv[i]
        hb[i], hb[p] = hb[p], hb[i]
        i = p


@njit(inline="always")
def _sift_down(hv: np.ndarray, hb: np.ndarray, size: int) -> None:
    i = 0
    while True:
        c = 2 * i + 1
        if c >= size:
            break
        if c + 1 < size and _worse(hv[c + 1], hb[c + 1], hv[c], hb[c]):
            c += 1
        if not _worse(hv[c], hb[c], hv[i], hb[i]):
            break
        hv[i], hv[c] = hv[c], hv[i]
        hb[i], hb[c] = hb[c], hb[i]
        i = c


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
    valid up to ``counts[r]``.  Rows are independent (blocks of rows in ``prange``), so the result does
    not depend on the number of threads.  Each block keeps one sparse accumulator (reset only where a row
    touched it) and a size-``k`` heap, so a row costs its co-occurrences, not ``n``: 1.7x faster than
    zeroing and scanning ``n``-vectors per row on ml-latest-small (9.7k items, one thread).
    """
    n = indptr.shape[0] - 1
    rows = end - start
    out_c = np.zeros((rows, k), dtype=np.int64)
    out_s = np.zeros((rows, k), dtype=np.float64)
    counts = np.zeros(rows, dtype=np.int64)
    moments = kind == 1 or kind == 2
    n_blocks = (rows + _ROW_BLOCK - 1) // _ROW_BLOCK
    for blk in prange(n_blocks):
        # one sparse accumulator per block of rows: O(n) scratch allocated once, reset only where touched
        nc = np.zeros(n, dtype=np.float64)
        sab = np.zeros(n, dtype=np.float64)
        m = n if moments else 1
        saa = np.zeros(m, dtype=np.float64)
        sbb = np.zeros(m, dtype=np.float64)
        sa = np.zeros(m, dtype=np.float64)
        sb = np.zeros(m, dtype=np.float64)
        touched = np.empty(n, dtype=np.int64)
        hv = np.empty(k, dtype=np.float64)  # min-heap of the best k so far (worst at the root)
        hb = np.empty(k, dtype=np.int64)
        for r in range(blk * _ROW_BLOCK, min(rows, (blk + 1) * _ROW_BLOCK)):
            a = start + r
            n_touched = 0
            for p in range(indptr[a], indptr[a + 1]):
                col = indices[p]
                x = data[p]
                for q in range(t_indptr[col], t_indptr[col + 1]):
                    b = t_indices[q]
                    y = t_data[q]
                    if nc[b] == 0.0:
                        touched[n_touched] = b
                        n_touched += 1
                    nc[b] += 1.0
                    sab[b] += x * y
                    if moments:
                        saa[b] += x * x
                        sbb[b] += y * y
                        if kind == 1:
                            sa[b] += x
                            sb[b] += y
            # similarities of the co-occurring rows (in touch order: the heap breaks ties by index itself)
            size = 0
            for t in range(n_touched):
                b = touched[t]
                v = 0.0
                if b != a and nc[b] >= min_support:
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
                        v = min(1.0, max(-1.0, num / den)) if den > 0.0 else 0.0
                    if shrinkage > 0.0:
                        sup = max(nc[b] - offset, 0.0)
                        v *= sup / (sup + shrinkage)
                if v > 0.0:
                    # the root is the worst kept (smallest value, then largest index): lowest-index ties win
                    if size < k:
                        hv[size] = v
                        hb[size] = b
                        _sift_up(hv, hb, size)
                        size += 1
                    elif _worse(hv[0], hb[0], v, b):
                        hv[0] = v
                        hb[0] = b
                        _sift_down(hv, hb, size)
                nc[b] = 0.0
                sab[b] = 0.0
                if moments:
                    saa[b] = 0.0
                    sbb[b] = 0.0
                    sa[b] = 0.0
                    sb[b] = 0.0
            by_b = np.argsort(hb[:size])
            for t in range(size):
                out_c[r, t] = hb[by_b[t]]
                out_s[r, t] = hv[by_b[t]]
            counts[r] = size
    return out_c, out_s, counts
