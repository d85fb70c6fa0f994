"""Small array kernels shared by models and the evaluator: top-k and masking."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["mask_rows", "topk"]


def topk(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` columns of each row of ``scores``, best first.

    Ties are broken by the lower column index, so results are deterministic.
    Returns ``(indices int64 [n, k], values [n, k])``; ``k`` is clipped to the number of columns.
    """
    scores = np.asarray(scores)
    if scores.ndim == 1:
        scores = scores[None, :]
    n, m = scores.shape
    k = int(min(k, m))
    if k <= 0:
        return np.empty((n, 0), dtype=np.int64), np.empty((n, 0), dtype=scores.dtype)
    if k < m:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
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
