"""Item groups as distributions, shared by the re-rankers (:mod:`fusionrec.rerank`) and the fairness metrics
(:mod:`fusionrec.evaluation.metrics`, which re-exports them): pure functions on arrays, below both layers.
"""

from __future__ import annotations

import numpy as np

from fusionrec.errors import InvalidValueError

__all__ = ["group_distribution", "item_group_matrix", "kl_divergence", "position_exposure"]


def item_group_matrix(item_groups: np.ndarray, n_items: int | None = None) -> np.ndarray:
    """Items' group memberships as a dense ``[n_items, n_groups]`` float matrix.

    ``item_groups`` is either one integer group per item (``-1``: no group) or a ``[n_items, n_groups]`` matrix of
    non-negative weights (multi-hot genres; dense or scipy sparse).
    """
    if hasattr(item_groups, "toarray"):
        item_groups = item_groups.toarray()  # type: ignore[union-attr]
    g = np.asarray(item_groups)
    if g.ndim == 1:
        if g.size and g.dtype.kind not in "iu":
            raise InvalidValueError(
                f"item_groups of one group per item must be integers (got {g.dtype}); map labels to 0..G-1, -1 = none"
            )
        labels = g.astype(np.int64)
        if labels.size and labels.min() < -1:
            raise InvalidValueError("item_groups labels must be >= -1 (-1 = no group)")
        n_groups = int(labels.max()) + 1 if labels.size else 0
        out = np.zeros((len(labels), max(n_groups, 1)), dtype=np.float64)
        has = labels >= 0
        out[np.flatnonzero(has), labels[has]] = 1.0
    elif g.ndim == 2:
        out = np.asarray(g, dtype=np.float64)
        if not np.isfinite(out).all() or (out < 0).any():
            raise InvalidValueError("item_groups weights must be finite and non-negative")
    else:
        raise InvalidValueError(f"item_groups must be 1-D labels or a 2-D [items, groups] matrix, got {g.ndim}-D")
    if n_items is not None and len(out) != n_items:
        raise InvalidValueError(f"item_groups has {len(out)} rows but the catalogue has {n_items} items")
    return out


def group_distribution(weights: np.ndarray) -> np.ndarray:
    """Rows normalised to sum 1 (all-zero rows stay zero): ``p(g | i)``."""
    s = weights.sum(axis=1, keepdims=True)
    return np.divide(weights, s, out=np.zeros_like(weights), where=s > 0)


def kl_divergence(p: np.ndarray, q: np.ndarray, alpha: float = 0.01) -> np.ndarray:
    """Steck's smoothed ``KL(p || q~)`` per row, ``q~ = (1 - alpha) q + alpha p`` (terms with ``p = 0`` are 0)."""
    p, q = np.broadcast_arrays(np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64))
    qs = (1.0 - alpha) * q + alpha * p
    ratio = np.divide(p, qs, out=np.ones_like(p), where=p > 0)
    return np.asarray(np.sum(np.where(p > 0, p * np.log(ratio), 0.0), axis=-1))


def position_exposure(k: int) -> np.ndarray:
    """Exposure of ranks ``0..k-1``: the NDCG discount ``1 / log2(rank + 2)`` (Singh & Joachims 2018)."""
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
