"""The item similarities every layer uses, written once: row normalisation, cosine, and co-occurrence cosine.

Pure functions on arrays (no model, no ids), at the bottom of the package so that data, features, models,
explanations, re-rankers and serving all take them from here.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["cooccurrence_cosine", "cosine_to", "normalize_rows"]

EPS = 1e-12


def normalize_rows(x: np.ndarray, dtype: type = np.float32) -> np.ndarray:
    """``x`` with each row divided by its L2 norm (all-zero rows stay zero), as ``dtype``."""
    arr = np.asarray(x, dtype=np.float64 if dtype == np.float64 else None)
    norms = np.linalg.norm(arr, axis=-1, keepdims=True)
    return (arr / np.maximum(norms, EPS)).astype(dtype)


def cosine_to(x: np.ndarray, i: int, rows: np.ndarray | None = None) -> np.ndarray:
    """Cosine of row ``i`` of ``x`` with the rows ``rows`` (all rows when ``None``): ``float64 [len(rows)]``.

    An all-zero row has cosine 0 with everything.
    """
    a = np.asarray(x[i], np.float64)
    b = np.asarray(x if rows is None else x[np.asarray(rows, np.int64)], np.float64)
    norms = np.linalg.norm(b, axis=1) * max(float(np.linalg.norm(a)), EPS)
    return np.asarray(b @ a / np.maximum(norms, EPS))


def cooccurrence_cosine(seen: sp.spmatrix | sp.sparray, i: int, others: np.ndarray | None = None) -> np.ndarray:
    """Cosine of item ``i``'s binarised column with the columns ``others`` (all when ``None``) of ``seen``
    (users x items): ``co(i, j) / sqrt(n_i n_j)``, ``float64``; an item ``i`` outside ``seen`` gives zeros."""
    csc = sp.csc_matrix(seen, dtype=np.float64, copy=True)
    csc.data = np.ones_like(csc.data)
    cols = csc if others is None else csc[:, np.asarray(others, np.int64)]
    if i >= csc.shape[1]:
        return np.zeros(cols.shape[1])
    col = csc[:, i]
    co = np.asarray((cols.T @ col).todense()).ravel()
    counts = np.asarray(cols.sum(axis=0)).ravel()
    return co / np.maximum(np.sqrt(counts * max(1.0, float(col.sum()))), EPS)
