"""Small array kernels shared by models and the evaluator: top-k and masking."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["mask_rows", "topk"]


def topk(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` columns of each row of ``scores``, best first.

    Ties are broken by the lower column index (also at the k-th place), so results are deterministic.
    NaN ranks below everything.  Memory: one int64 partition of ``scores`` and one boolean compare.
    Returns ``(indices int64 [n, k], values [n, k])``; ``k`` is clipped to the number of columns.
    """
    scores = np.asarray(scores)
    if scores.ndim == 1:
        scores = scores[None, :]
    n, m = scores.shape
    k = int(min(k, m))
    if k <= 0:
        return np.empty((n, 0), dtype=np.int64), np.empty((n, 0), dtype=scores.dtype)
    if scores.dtype.kind == "f" and np.isnan(scores).any():
        scores = np.where(np.isnan(scores), -np.inf, scores)  # NaN ranks last (argpartition puts it on top)
    if k < m:
        # the k largest sit past position m - k of an ascending partition (no negated copy of the scores)
        part = np.argpartition(scores, m - k, axis=1)[:, m - k :]
        vals = np.take_along_axis(scores, part, axis=1)
        # the partition picks arbitrary members of a tie at the k-th value; take the lowest columns instead
        thr = vals.min(axis=1)
        short = np.flatnonzero((scores == thr[:, None]).sum(axis=1) > (vals == thr[:, None]).sum(axis=1))
        for r in short:
            row = scores[r]
            above = np.flatnonzero(row > thr[r])
            part[r] = np.concatenate([above, np.flatnonzero(row == thr[r])[: k - len(above)]])
    else:
        part = np.broadcast_to(np.arange(m), (n, m)).copy()
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -vals), axis=1) if n else np.empty((0, k), dtype=np.int64)
    idx = np.take_along_axis(part, order, axis=1).astype(np.int64)
    return idx, np.take_along_axis(vals, order, axis=1)


def mask_rows(scores: np.ndarray, matrix: sp.csr_matrix, rows: np.ndarray, value: float = -np.inf) -> None:
    """Set ``scores[j, c] = value`` for every stored entry ``c`` of ``matrix[rows[j]]`` (in place)."""
    indptr, indices = matrix.indptr, matrix.indices
    starts, ends = indptr[rows], indptr[rows + 1]
    lengths = ends - starts
    if lengths.sum() == 0:
        return
    r = np.repeat(np.arange(len(rows)), lengths)
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    c = indices[np.repeat(starts, lengths) + offsets]
    scores[r, c] = value
