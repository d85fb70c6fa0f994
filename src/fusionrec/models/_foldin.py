"""The pairwise (BPR) fold-in of one user against fixed item vectors, shared by every BPR-trained model.

It sits below :mod:`fusionrec.models.factors` (the generic ``"pairwise"`` fold-in of BPR, DPMF, FedMF and
SocialBPR) and the models with a fold-in of their own (HybridMF, VBPR, GraphFusion), so that none of them imports
another model's module for it.
"""

from __future__ import annotations

import numpy as np

from fusionrec.errors import DataError

__all__ = ["fold_in_vector"]


def fold_in_vector(
    item_vecs: np.ndarray,
    item_bias: np.ndarray,
    items: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    base: np.ndarray | None = None,
    reg: float = 0.01,
    negatives: np.ndarray | None = None,
    max_negatives: int = 2000,
    seed: int = 0,
) -> np.ndarray:
    """A user's free vector ``v`` against fixed item vectors by pairwise (BPR) log-loss, no refit.

    Minimises the convex ``L(v) = sum_p w_p mean_n softplus(-(s_p - s_n)) / sum_p w_p + reg |v|^2`` with
    ``s_i = (base + v) . item_vecs_i + item_bias_i``, positives ``p`` in ``items`` and negatives ``n`` the
    other items of ``negatives`` (default all; a seeded sample of ``max_negatives`` when more), by L-BFGS.
    Returns ``float32 [f]`` (zero when ``items`` is empty).
    """
    from scipy.optimize import minimize

    f = item_vecs.shape[1]
    items = np.unique(np.asarray(items, dtype=np.int64))
    if items.size == 0:
        return np.zeros(f, dtype=np.float32)
    w = np.ones(len(items)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != items.shape:
        # weights came aligned with the (unsorted, possibly repeated) input; realign by item
        raise DataError("values must have one entry per item")
    w = np.maximum(w, 0.0)
    if w.sum() <= 0:
        w = np.ones(len(items))
    pool = np.arange(item_vecs.shape[0]) if negatives is None else np.asarray(negatives, dtype=np.int64)
    pool = pool[~np.isin(pool, items)]
    if pool.size == 0:
        return np.zeros(f, dtype=np.float32)
    if pool.size > max_negatives:
        pool = np.sort(np.random.default_rng(seed).choice(pool, max_negatives, replace=False))
    V = np.asarray(item_vecs, dtype=np.float64)
    b = np.asarray(item_bias, dtype=np.float64)
    P, N = V[items], V[pool]
    b0 = np.zeros(f) if base is None else np.asarray(base, dtype=np.float64)
    sp_ = P @ b0 + b[items]
    sn_ = N @ b0 + b[pool]
    wn = w / w.sum() / len(pool)

    def loss(v: np.ndarray) -> tuple[float, np.ndarray]:
        d = (sp_ + P @ v)[:, None] - (sn_ + N @ v)[None, :]
        # softplus(-d) and its derivative -sigma(-d), computed stably
        val = np.logaddexp(0.0, -d)
        z = np.exp(-np.logaddexp(0.0, d))  # sigma(-d)
        wz = wn[:, None] * z
        grad = -(wz.sum(axis=1) @ P - wz.sum(axis=0) @ N) + 2.0 * reg * v
        return float((wn[:, None] * val).sum() + reg * v @ v), grad

    res = minimize(loss, np.zeros(f), jac=True, method="L-BFGS-B", options={"maxiter": 200})
    return np.asarray(res.x, dtype=np.float32)
