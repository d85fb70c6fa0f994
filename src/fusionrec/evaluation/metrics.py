"""Metrics as pure functions on arrays.

Ranking metrics take ``hits``: a boolean array ``[U, K]`` where ``hits[u, r]`` says whether the item
ranked at position ``r`` (0-based) for user ``u`` is relevant, and ``n_relevant``: the number of
relevant items of each user.  They return one value per user; the evaluator averages over users
with at least one relevant item.

Definitions (binary relevance; every held-out interaction is relevant, the convention of MMRec
and of fusionrec's benchmark splits):

- Precision@K = hits in top K / K
- Recall@K    = hits in top K / n_relevant
- F1@K        = harmonic mean of Precision@K and Recall@K
- HitRate@K   = 1 if any hit in top K else 0
- NDCG@K      = DCG@K / IDCG@K with DCG = sum_r hit_r / log2(r + 2) and IDCG the DCG of
  min(n_relevant, K) hits at the top
- MAP@K       = (1 / min(n_relevant, K)) * sum_r Precision@(r+1) * hit_r
- MRR@K       = 1 / (rank of the first hit), 0 when none in the top K
- AUC         = share of (relevant, non-relevant) candidate pairs ordered correctly (ties count 1/2)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from fusionrec._groups import group_distribution, item_group_matrix, kl_divergence, position_exposure
from fusionrec._similarity import normalize_rows
from fusionrec.errors import InvalidValueError

__all__ = [
    "activity_groups",
    "auc",
    "average_precision_at_k",
    "average_recommendation_popularity",
    "by_group",
    "calibration_kl",
    "catalog_coverage",
    "exposure_gini",
    "f1_at_k",
    "gini_index",
    "group_exposure",
    "group_exposure_share",
    "group_gap",
    "hit_rate_at_k",
    "intra_list_diversity",
    "item_group_matrix",
    "kl_divergence",
    "mae",
    "ndcg_at_k",
    "novelty",
    "popularity_groups",
    "position_exposure",
    "precision_at_k",
    "recall_at_k",
    "reciprocal_rank_at_k",
    "rmse",
]


# ---------------------------------------------------------------------- rating metrics
def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Root mean squared error."""
    d = np.asarray(y_true, dtype=np.float64) - np.asarray(y_pred, dtype=np.float64)
    return float(np.sqrt(np.mean(d * d)))


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute error."""
    d = np.asarray(y_true, dtype=np.float64) - np.asarray(y_pred, dtype=np.float64)
    return float(np.mean(np.abs(d)))


# ---------------------------------------------------------------------- ranking metrics
def _hits(hits: np.ndarray, k: int) -> np.ndarray:
    return np.asarray(hits, dtype=bool)[:, :k]


def precision_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    return _hits(hits, k).sum(axis=1) / float(k)


def recall_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    n = np.asarray(n_relevant, dtype=np.float64)
    return _hits(hits, k).sum(axis=1) / np.maximum(n, 1.0)


def f1_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    p = precision_at_k(hits, k)
    r = recall_at_k(hits, n_relevant, k)
    denom = np.asarray(p + r, dtype=np.float64)
    return np.asarray(np.divide(2 * p * r, denom, out=np.zeros_like(denom), where=denom > 0))


def hit_rate_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    return np.asarray(_hits(hits, k).any(axis=1), dtype=np.float64)


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def ndcg_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    h = _hits(hits, k)
    disc = _discounts(h.shape[1])
    dcg = h @ disc
    ideal_cum = np.concatenate([[0.0], np.cumsum(_discounts(k))])
    idcg = ideal_cum[np.minimum(np.asarray(n_relevant, dtype=np.int64), k)]
    return np.divide(dcg, idcg, out=np.zeros_like(dcg), where=idcg > 0)


def average_precision_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    h = _hits(hits, k).astype(np.float64)
    prec = np.cumsum(h, axis=1) / np.arange(1, h.shape[1] + 1)
    denom = np.minimum(np.asarray(n_relevant, dtype=np.float64), k)
    return np.divide((prec * h).sum(axis=1), denom, out=np.zeros(len(h)), where=denom > 0)


def reciprocal_rank_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    h = _hits(hits, k)
    first = np.argmax(h, axis=1)
    return np.asarray(np.where(h.any(axis=1), 1.0 / (first + 1), 0.0))


def auc(scores: np.ndarray, relevant: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Per-row AUC of ``scores [U, I]`` for the boolean ``relevant [U, I]`` among ``valid`` candidates.

    Rows without a relevant or without a non-relevant candidate get NaN.
    """
    scores = np.asarray(scores, dtype=np.float64)
    relevant = np.asarray(relevant, dtype=bool)
    valid = np.ones_like(relevant) if valid is None else np.asarray(valid, dtype=bool)
    s = np.where(valid, scores, np.inf)  # invalid columns sort last and are never counted
    order = np.argsort(s, axis=1, kind="stable")
    sorted_s = np.take_along_axis(s, order, axis=1)
    # average ranks (1-based) with ties, among valid entries
    out = np.full(len(scores), np.nan)
    for u in range(len(scores)):
        nv = int(valid[u].sum())
        row = sorted_s[u, :nv]
        _, inv, counts = np.unique(row, return_inverse=True, return_counts=True)
        ends = np.cumsum(counts)
        avg_rank = (ends - (counts - 1) / 2.0)[inv]
        rel = relevant[u, order[u, :nv]]
        n_pos = int(rel.sum())
        n_neg = nv - n_pos
        if n_pos == 0 or n_neg == 0:
            continue
        out[u] = (avg_rank[rel].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    return out


# ---------------------------------------------------------------------- beyond accuracy
def _flat(recommended: np.ndarray) -> np.ndarray:
    r = np.asarray(recommended, dtype=np.int64).ravel()
    return r[r >= 0]


def catalog_coverage(recommended: np.ndarray, n_items: int) -> float:
    """Share of the catalogue that appears in at least one list."""
    return float(len(np.unique(_flat(recommended))) / max(1, n_items))


def novelty(recommended: np.ndarray, item_counts: np.ndarray, n_users: int) -> float:
    """Mean self-information ``-log2(p_i)`` of recommended items, ``p_i`` = share of users who had item i.

    Items never seen in training get ``p_i = 1 / (n_users + 1)``.
    """
    r = _flat(recommended)
    p = np.maximum(np.asarray(item_counts, dtype=np.float64)[r], 1.0 / (n_users + 1)) / max(1, n_users)
    return float(np.mean(-np.log2(np.minimum(p, 1.0)))) if len(r) else 0.0


def intra_list_diversity(recommended: np.ndarray, item_features: np.ndarray) -> np.ndarray:
    """Per list: mean pairwise cosine distance ``1 - cos`` between recommended items' features."""
    recs = np.asarray(recommended, dtype=np.int64)
    f = normalize_rows(np.asarray(item_features, dtype=np.float64), np.float64)
    out = np.zeros(len(recs))
    for u, row in enumerate(recs):
        row = row[row >= 0]
        n = len(row)
        if n < 2:
            continue
        sims = f[row] @ f[row].T
        out[u] = 1.0 - (sims.sum() - np.trace(sims)) / (n * (n - 1))
    return out


def gini_index(recommended: np.ndarray, n_items: int) -> float:
    """Gini coefficient of how often each catalogue item is recommended (0 equal, 1 concentrated)."""
    counts = np.sort(np.bincount(_flat(recommended), minlength=n_items).astype(np.float64))
    total = counts.sum()
    if total == 0:
        return 0.0
    n = len(counts)
    idx = np.arange(1, n + 1)
    return float(np.sum((2 * idx - n - 1) * counts) / (n * total))


def average_recommendation_popularity(recommended: np.ndarray, item_counts: np.ndarray) -> float:
    """Popularity bias: mean training interaction count of the recommended items (ARP)."""
    r = _flat(recommended)
    return float(np.asarray(item_counts, dtype=np.float64)[r].mean()) if len(r) else 0.0


def by_group(values: np.ndarray, groups: np.ndarray) -> dict[object, float]:
    """Mean of a per-user metric within each group (NaNs ignored); for fairness across groups."""
    values = np.asarray(values, dtype=np.float64)
    groups = np.asarray(groups)
    out: dict[object, float] = {}
    for g in np.unique(groups):
        sel = (groups == g) & ~np.isnan(values)
        out[g.item() if isinstance(g, np.generic) else g] = float(values[sel].mean()) if sel.any() else float("nan")
    return out


# ---------------------------------------------------------------------- fairness and calibration
def calibration_kl(
    recommended: np.ndarray, history: Any, item_groups: np.ndarray, *, alpha: float = 0.01
) -> np.ndarray:
    """Miscalibration per list (Steck 2018, "Calibrated recommendations"): ``KL(p(g|u) || q~(g|list))``.

    ``p(g|u)`` is the group (genre) distribution of the user's history, ``q(g|list)`` that of the recommended
    items, each item spreading weight 1 evenly over its groups; ``q~ = (1 - alpha) q + alpha p`` keeps the
    divergence finite.  ``history`` is a ``[U, n_items]`` (sparse) matrix whose rows align with ``recommended``
    (weights: the interaction values).  Users without history in any group get NaN; 0 is perfectly calibrated.
    """
    recs = np.asarray(recommended, dtype=np.int64)
    pgi = group_distribution(item_group_matrix(item_groups))
    h = history.toarray() if hasattr(history, "toarray") else np.asarray(history, dtype=np.float64)
    h = np.asarray(h, dtype=np.float64)
    if recs.ndim != 2 or h.shape != (len(recs), len(pgi)):
        raise InvalidValueError(
            f"history must be [{len(recs)} lists, {len(pgi)} items] (rows aligned with recommended), got {h.shape}"
        )
    p = group_distribution(h @ pgi)
    valid = recs >= 0
    q = group_distribution(np.einsum("uk,ukg->ug", valid.astype(np.float64), pgi[np.where(valid, recs, 0)]))
    out = kl_divergence(p, q, alpha)
    return np.where(p.sum(axis=1) > 0, out, np.nan)


def group_exposure(recommended: np.ndarray, item_groups: np.ndarray, *, discounted: bool = True) -> np.ndarray:
    """Total exposure of each group over all lists: position-discounted (or one per slot when ``discounted`` is
    false); a multi-label item's exposure is split evenly over its groups."""
    recs = np.asarray(recommended, dtype=np.int64)
    pgi = group_distribution(item_group_matrix(item_groups))
    w = np.broadcast_to(position_exposure(recs.shape[1]) if discounted else np.ones(recs.shape[1]), recs.shape)
    valid = recs >= 0
    return np.asarray(np.bincount(recs[valid], weights=w[valid], minlength=len(pgi)) @ pgi)


def group_exposure_share(recommended: np.ndarray, item_groups: np.ndarray, *, discounted: bool = True) -> np.ndarray:
    """Each group's share of the exposure of all lists (sums to 1 over groups; zeros when nothing is shown).

    With popularity groups (:func:`popularity_groups`) the head group's share is the popular-item share.
    """
    e = group_exposure(recommended, item_groups, discounted=discounted)
    total = e.sum()
    return e / total if total > 0 else e


def exposure_gini(recommended: np.ndarray, n_items: int, item_groups: np.ndarray | None = None) -> float:
    """Gini coefficient of position-discounted exposure over catalogue items, or over groups when
    ``item_groups`` is given (0: everyone equally exposed, 1: one item / group takes all)."""
    if item_groups is None:
        recs = np.asarray(recommended, dtype=np.int64)
        w = np.broadcast_to(position_exposure(recs.shape[1]), recs.shape)
        valid = recs >= 0
        e = np.bincount(recs[valid], weights=w[valid], minlength=n_items)
    else:
        e = group_exposure(recommended, item_groups)
    return _gini(np.asarray(e, dtype=np.float64))


def _gini(values: np.ndarray) -> float:
    v = np.sort(values)
    total = v.sum()
    if total <= 0:
        return 0.0
    n = len(v)
    idx = np.arange(1, n + 1)
    return float(np.sum((2 * idx - n - 1) * v) / (n * total))


def group_gap(values: np.ndarray, groups: np.ndarray) -> float:
    """Largest minus smallest group mean of a per-user metric (e.g. NDCG): the group NDCG gap (0 = parity)."""
    means = [v for v in by_group(values, groups).values() if not np.isnan(v)]
    return float(max(means) - min(means)) if means else float("nan")


def popularity_groups(item_counts: np.ndarray, head_share: float = 0.2) -> np.ndarray:
    """0 for the short head, 1 for the long tail: the head is the most popular items that together hold
    ``head_share`` of all interactions (Abdollahpouri et al. 2017); ties in count break by the lower index."""
    counts = np.asarray(item_counts, dtype=np.float64)
    if not 0.0 < head_share < 1.0:
        raise InvalidValueError(f"head_share must be in (0, 1), got {head_share}")
    order = np.lexsort((np.arange(len(counts)), -counts))
    cum = np.cumsum(counts[order])
    n_head = int(np.searchsorted(cum, head_share * cum[-1], side="left")) + 1 if len(counts) and cum[-1] > 0 else 0
    out = np.ones(len(counts), dtype=np.int64)
    out[order[:n_head]] = 0
    return out


def activity_groups(user_counts: np.ndarray, n_groups: int = 4) -> np.ndarray:
    """User activity quantile group ``0`` (least active) .. ``n_groups - 1`` (most active) from interaction counts
    (ties in count break by the lower index, so the groups have equal sizes)."""
    counts = np.asarray(user_counts, dtype=np.float64)
    if n_groups < 1:
        raise InvalidValueError(f"n_groups must be >= 1, got {n_groups}")
    rank = np.empty(len(counts), dtype=np.int64)
    rank[np.lexsort((np.arange(len(counts)), counts))] = np.arange(len(counts))
    return np.asarray(rank * n_groups // max(1, len(counts)), dtype=np.int64)


RANKING: Mapping[str, str] = {
    "precision": "Precision",
    "recall": "Recall",
    "f1": "F1",
    "hit_rate": "HitRate",
    "ndcg": "NDCG",
    "map": "MAP",
    "mrr": "MRR",
}
