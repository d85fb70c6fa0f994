"""One evaluation loop: full (or candidate-set) ranking in user batches, and rating evaluation.

Memory is bounded by ``batch_size x n_items`` scores; never users x items.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from fusionrec._progress import progress
from fusionrec._ranking import mask_rows, topk
from fusionrec.data.interactions import DataWarning, Interactions
from fusionrec.errors import ConfigError
from fusionrec.evaluation import metrics as M
from fusionrec.models.base import Recommender, predict_pairs

if TYPE_CHECKING:
    from fusionrec.rerank import Reranker

__all__ = [
    "RankingPlan",
    "RankingResult",
    "empty_outcome",
    "evaluate_ranking",
    "evaluate_ratings",
    "plan_ranking",
    "rank_batch",
    "summarise_ranking",
]

DEFAULT_METRICS = ("precision", "recall", "ndcg", "map", "mrr", "hit_rate", "f1")

# name -> f(hits, n_relevant, k) -> per-user values
_RANKING_FNS = {
    "precision": lambda h, n, k: M.precision_at_k(h, k),
    "recall": M.recall_at_k,
    "f1": M.f1_at_k,
    "hit_rate": lambda h, n, k: M.hit_rate_at_k(h, k),
    "ndcg": M.ndcg_at_k,
    "map": M.average_precision_at_k,
    "mrr": lambda h, n, k: M.reciprocal_rank_at_k(h, k),
}


@dataclass
class RankingResult:
    """Outcome of :func:`evaluate_ranking`.

    ``metrics`` maps ``"NDCG@20"``-style names to means over evaluated users; ``per_user`` holds
    the per-user arrays (aligned with ``users``) for significance tests and group breakdowns;
    ``recommendations`` the top-``max(k)`` lists (item indices); ``unseen_users`` how many of the evaluated users
    have no training interaction (ranked without any history of theirs; also in ``info``).
    """

    metrics: dict[str, float]
    per_user: dict[str, np.ndarray]
    users: np.ndarray
    recommendations: np.ndarray
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)
    unseen_users: int = 0


def _relevant_matrix(test: Interactions, threshold: float | None) -> sp.csr_matrix:
    m = test.matrix
    if threshold is not None:
        m = m.multiply(m >= threshold).tocsr()
        m.eliminate_zeros()
    out = m.copy()
    out.data = np.ones_like(out.data, dtype=np.float32)
    return out.tocsr()


def _is_relevant(relevant: sp.csr_matrix, batch: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``relevant[batch[j], idx[j, t]] != 0`` for the listed items (``-1`` = no item), without a dense block."""
    n_items = np.int64(relevant.shape[1])
    rows = relevant[batch]
    rel_keys = np.repeat(np.arange(len(batch), dtype=np.int64), np.diff(rows.indptr)) * n_items + rows.indices
    keys = np.arange(len(batch), dtype=np.int64)[:, None] * n_items + idx
    return np.isin(keys, rel_keys) & (idx >= 0)


@dataclass
class RankingPlan:
    """Everything :func:`evaluate_ranking` settles before scoring, from every one of its parameters: the users,
    their relevant items, the masks (the training part, then ``exclude``), the batches, the re-ranker and what the
    summary needs (diversity features, fairness groups, the training history).

    The one plan both evaluators run (:func:`plan_ranking` builds it): the single-process loop and the sharded one
    (:func:`fusionrec.distributed.evaluate_ranking_ray`) call :func:`rank_batch` on the batches of ``users``
    (:meth:`batches`; a shard is a run of whole batches) and :func:`summarise_ranking` on the stacked outcome, so
    their figures are the same.  :meth:`for_workers` drops what only the summary reads.
    """

    ks: list[int]
    metrics: tuple[str, ...]
    masks: list[sp.csr_matrix]
    relevant: sp.csr_matrix
    candidates: np.ndarray | None
    users: np.ndarray
    n_relevant: np.ndarray
    n_users: int
    n_items: int
    item_counts: np.ndarray
    unseen: int
    compute_auc: bool
    rerank: Reranker | None = None
    rerank_depth: int = 100
    batch_size: int = 1024
    item_features: np.ndarray | None = None
    item_groups: np.ndarray | None = None
    user_groups: np.ndarray | None = None
    history: sp.csr_matrix | None = None

    @property
    def kmax(self) -> int:
        return self.ks[-1]

    def batches(self) -> list[slice]:
        """The user batches, as slices of :attr:`users` (each scored at once by :func:`rank_batch`)."""
        n, b = len(self.users), self.batch_size
        return [slice(s, min(s + b, n)) for s in range(0, n, b)]

    def for_workers(self) -> RankingPlan:
        """This plan without what only :func:`summarise_ranking` reads (what a ranking worker is sent)."""
        return replace(self, item_features=None, item_groups=None, user_groups=None, history=None)


def plan_ranking(
    train: Interactions,
    test: Interactions,
    *,
    k: int | Sequence[int] = (10, 20),
    metrics: Sequence[str] = DEFAULT_METRICS,
    exclude: Sequence[Interactions] | None = None,
    candidates: np.ndarray | None = None,
    users: np.ndarray | None = None,
    relevance_threshold: float | None = None,
    compute_auc: bool = False,
    item_features: np.ndarray | None = None,
    batch_size: int = 1024,
    cold_users: bool = False,
    rerank: Reranker | None = None,
    rerank_depth: int = 100,
    item_groups: np.ndarray | None = None,
    user_groups: np.ndarray | None = None,
    stacklevel: int = 2,
) -> RankingPlan:
    """Check the arguments of :func:`evaluate_ranking` (every one, same meaning) and return its
    :class:`RankingPlan`."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    if user_groups is not None and len(user_groups) != train.n_users:
        raise ConfigError(f"user_groups has {len(user_groups)} labels; give one per user ({train.n_users})")
    if item_groups is not None and len(item_groups) != train.n_items:
        raise ConfigError(f"item_groups has {len(item_groups)} rows; give one per item ({train.n_items})")
    ks = sorted({int(x) for x in np.atleast_1d(k)})
    if not ks or ks[0] < 1:
        raise ConfigError("k must hold positive integers")
    unknown = set(metrics) - set(M.RANKING)
    if unknown:
        raise ConfigError(f"unknown ranking metric(s) {sorted(unknown)}; choose from {sorted(M.RANKING)}")
    if test.shape != train.shape:
        raise ConfigError(f"train {train.shape} and test {test.shape} must share id maps (use a Split)")
    if rerank is not None and not callable(getattr(rerank, "rerank", None)):
        raise ConfigError(f"rerank must have a rerank(users, candidates, scores, k) method, got {type(rerank)}")
    # the training part is always masked; exclude adds to it (train itself listed again is masked once)
    masks = [train.matrix] + [m.matrix for m in exclude or () if m.matrix is not train.matrix]
    relevant = _relevant_matrix(test, relevance_threshold)
    cand = None if candidates is None else np.unique(np.asarray(candidates, dtype=np.int64))
    if cand is not None:
        keep = np.zeros(train.n_items, dtype=np.float32)
        keep[cand] = 1.0
        relevant = (relevant @ sp.diags(keep)).tocsr()
        relevant.eliminate_zeros()
    n_rel_all = np.diff(relevant.indptr)
    eval_users = np.flatnonzero(n_rel_all > 0) if users is None else np.asarray(users, dtype=np.int64)
    eval_users = eval_users[n_rel_all[eval_users] > 0]
    unseen = int((train.user_counts()[eval_users] == 0).sum())
    if unseen and not cold_users:
        warnings.warn(
            f"{unseen} of the {len(eval_users)} evaluated test users have no training interaction (the model ranks "
            "for them without any history of theirs); they are counted in the metrics. Split per user "
            "(per_user, leave_last, temporal) so that every test user has training data, pass users= to evaluate "
            "only some, or cold_users=True when a cold-user evaluation is meant",
            DataWarning,
            stacklevel=stacklevel + 1,
        )
    return RankingPlan(
        ks=ks,
        metrics=tuple(metrics),
        masks=masks,
        relevant=relevant,
        candidates=cand,
        users=eval_users,
        n_relevant=n_rel_all[eval_users],
        n_users=train.n_users,
        n_items=train.n_items,
        item_counts=train.item_counts(),
        unseen=unseen,
        compute_auc=compute_auc,
        rerank=rerank,
        rerank_depth=max(int(rerank_depth), ks[-1]),
        batch_size=int(batch_size),
        item_features=item_features,
        item_groups=item_groups,
        user_groups=user_groups,
        history=train.matrix,
    )


def empty_outcome(n_users: int, kmax: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The arrays :func:`rank_batch` fills and :func:`summarise_ranking` reads, before any ranking: ``(recs
    int64 [n_users, kmax] of -1, hits bool [n_users, kmax] of False, AUC float [n_users] of NaN)``."""
    recs = np.full((n_users, kmax), -1, dtype=np.int64)
    hits = np.zeros((n_users, kmax), dtype=bool)
    return recs, hits, np.full(n_users, np.nan)


def rank_batch(model: Recommender, plan: RankingPlan, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rank for one batch of ``plan.users``: ``(top-kmax items int64 [B, kmax] (-1 = none), hits bool [B, kmax],
    AUC float [B] (NaN unless ``plan.compute_auc``))``."""
    kmax, cand = plan.kmax, plan.candidates
    recs, hits, auc_vals = empty_outcome(len(batch), kmax)
    raw = np.asarray(model.score(batch))
    # a writable copy for masking, in the model's precision (float32 stays float32: half the memory)
    scores = np.array(raw, dtype=np.result_type(raw.dtype, np.float32), copy=True)
    del raw
    if scores.shape != (len(batch), plan.n_items):
        raise ConfigError(
            f"{type(model).__name__}.score returned shape {scores.shape}, expected {(len(batch), plan.n_items)}"
        )
    for m in plan.masks:
        mask_rows(scores, m, batch)
    depth = kmax if plan.rerank is None else plan.rerank_depth
    if cand is not None:
        scores_c = scores[:, cand]
        idx, val = topk(scores_c, depth)
        idx = cand[idx]
    else:
        idx, val = topk(scores, depth)
    idx[~np.isfinite(val)] = -1
    if plan.rerank is not None:  # the reranker picks the top kmax out of the top `depth`
        idx, val = plan.rerank.rerank(batch, idx, val, kmax)
        idx[~np.isfinite(val)] = -1
    recs[:, : idx.shape[1]] = idx
    hits[:, : idx.shape[1]] = _is_relevant(plan.relevant, batch, idx)
    if plan.compute_auc:
        rel_dense = plan.relevant[batch].toarray().astype(bool)
        valid = np.isfinite(scores)
        if cand is not None:
            cmask = np.zeros(plan.n_items, dtype=bool)
            cmask[cand] = True
            valid &= cmask[None, :]
        auc_vals[:] = M.auc(np.where(valid, scores, 0.0), rel_dense, valid)
    return recs, hits, auc_vals


def summarise_ranking(
    plan: RankingPlan, recs: np.ndarray, hits: np.ndarray, auc_vals: np.ndarray, *, seconds: float = 0.0
) -> RankingResult:
    """The :class:`RankingResult` of :func:`rank_batch` outcomes stacked in the order of ``plan.users`` (the
    diversity and fairness extras from the plan's ``item_features`` / ``item_groups`` / ``user_groups``, the
    calibration target from its ``history``)."""
    ks, kmax, n_rel = plan.ks, plan.kmax, plan.n_relevant
    item_features = plan.item_features
    per_user: dict[str, np.ndarray] = {}
    for kk in ks:
        for name in plan.metrics:
            per_user[f"{M.RANKING[name]}@{kk}"] = _RANKING_FNS[name](hits, n_rel, kk)
    if plan.compute_auc:
        per_user["AUC"] = auc_vals
    summary = {name: float(np.nanmean(v)) if len(v) else float("nan") for name, v in per_user.items()}
    counts = plan.item_counts
    for kk in ks:
        summary[f"Coverage@{kk}"] = M.catalog_coverage(recs[:, :kk], plan.n_items)
    top = recs[:, :kmax]
    summary[f"Novelty@{kmax}"] = M.novelty(top, counts, plan.n_users)
    summary[f"Gini@{kmax}"] = M.gini_index(top, plan.n_items)
    summary[f"ARP@{kmax}"] = M.average_recommendation_popularity(top, counts)
    if item_features is not None:
        ild = M.intra_list_diversity(top, item_features)
        per_user[f"ILD@{kmax}"] = ild
        summary[f"ILD@{kmax}"] = float(ild.mean()) if len(ild) else float("nan")
    extra = _fairness(plan, top, per_user)
    summary.update(extra.pop("metrics"))
    cand = plan.candidates
    return RankingResult(
        metrics=summary,
        per_user=per_user,
        users=plan.users,
        recommendations=recs,
        seconds=seconds,
        info={
            "n_users": len(plan.users),
            "unseen_users": plan.unseen,
            "k": ks,
            "candidates": None if cand is None else len(cand),
            **extra,
        },
        unseen_users=plan.unseen,
    )


def evaluate_ranking(
    model: Recommender,
    train: Interactions,
    test: Interactions,
    *,
    k: int | Sequence[int] = (10, 20),
    metrics: Sequence[str] = DEFAULT_METRICS,
    exclude: Sequence[Interactions] | None = None,
    candidates: np.ndarray | None = None,
    users: np.ndarray | None = None,
    relevance_threshold: float | None = None,
    compute_auc: bool = False,
    item_features: np.ndarray | None = None,
    batch_size: int = 1024,
    cold_users: bool = False,
    rerank: Reranker | None = None,
    rerank_depth: int = 100,
    item_groups: np.ndarray | None = None,
    user_groups: np.ndarray | None = None,
) -> RankingResult:
    """Rank items for every user with test interactions and score the lists.

    Parameters
    ----------
    model
        A fitted recommender.
    train
        The training interactions: masked from the rankings and used for popularity statistics.
    test
        Held-out interactions; each one is a relevant item (or those rated >= ``relevance_threshold``).
    exclude
        Interactions to mask from rankings besides ``train``, which is always masked: pass ``[valid]`` when
        testing a model tuned on a validation part that is not in its training data (``[train, valid]`` means
        the same).
    candidates
        Item indices to rank among (e.g. the cold test items); relevance is restricted to them.
    item_features
        Dense item features for intra-list diversity.
    cold_users
        ``True`` when test users without training interactions are expected (a cold-user split).  Otherwise such
        users are reported by a :class:`~fusionrec.data.DataWarning`; they are evaluated either way and counted
        in ``RankingResult.unseen_users``.
    rerank
        A :mod:`fusionrec.rerank` reranker applied to each user's top ``rerank_depth`` (at least ``max(k)``)
        before scoring: the same protocol evaluates the re-ranked lists.
    item_groups
        Item groups (one int per item, or a ``[n_items, n_groups]`` multi-hot matrix such as genres): adds
        ``CalibrationKL@K`` (Steck's miscalibration against the training history), ``GroupExposureGini@K`` and
        ``info["group_exposure_share"]``.  Any of ``rerank`` / ``item_groups`` / ``user_groups`` also adds
        ``ExposureGini@K`` (position-discounted, over items) and ``PopularShare@K`` (share of slots on short-head
        items: those holding 20% of the training interactions), with ``K = max(k)``.
    user_groups
        One group label per user index (e.g. activity quartiles, gender): adds ``NDCGGap@k`` (largest minus
        smallest group mean of NDCG@k) and ``info["by_user_group"]`` (per-group means of every metric).
    batch_size
        Users scored at once.  Peak memory is about ``batch_size x n_items x 16`` bytes for a model that
        scores in float32 (its output, the masked copy, the int64 partition of the top-k), 24 for float64,
        never users x items; ``compute_auc`` adds a dense relevance block (1 byte per score).
    """
    start = time.perf_counter()
    plan = plan_ranking(
        train,
        test,
        k=k,
        metrics=metrics,
        exclude=exclude,
        candidates=candidates,
        users=users,
        relevance_threshold=relevance_threshold,
        compute_auc=compute_auc,
        item_features=item_features,
        batch_size=batch_size,
        cold_users=cold_users,
        rerank=rerank,
        rerank_depth=rerank_depth,
        item_groups=item_groups,
        user_groups=user_groups,
        stacklevel=2,
    )
    recs, hits, auc_vals = empty_outcome(len(plan.users), plan.kmax)
    batches = plan.batches()
    for part in progress(batches, total=len(batches), desc="ranking"):
        recs[part], hits[part], auc_vals[part] = rank_batch(model, plan, plan.users[part])
    return summarise_ranking(plan, recs, hits, auc_vals, seconds=time.perf_counter() - start)


def _fairness(plan: RankingPlan, top: np.ndarray, per_user: dict[str, np.ndarray]) -> dict[str, Any]:
    """The optional fairness / calibration extras of :func:`evaluate_ranking` (metrics, and info entries)."""
    item_groups, user_groups, history = plan.item_groups, plan.user_groups, plan.history
    out: dict[str, Any] = {"metrics": {}}
    if plan.rerank is None and item_groups is None and user_groups is None:
        return out
    kmax = top.shape[1]
    summary = out["metrics"]
    summary[f"ExposureGini@{kmax}"] = M.exposure_gini(top, plan.n_items)
    pop = M.popularity_groups(plan.item_counts)
    summary[f"PopularShare@{kmax}"] = float(M.group_exposure_share(top, pop, discounted=False)[0])
    if item_groups is not None:
        if history is not None:
            kl = M.calibration_kl(top, history[plan.users], item_groups)
            per_user[f"CalibrationKL@{kmax}"] = kl
            summary[f"CalibrationKL@{kmax}"] = float(np.nanmean(kl)) if np.isfinite(kl).any() else float("nan")
        summary[f"GroupExposureGini@{kmax}"] = M.exposure_gini(top, plan.n_items, item_groups)
        out["group_exposure_share"] = M.group_exposure_share(top, item_groups).tolist()
    if user_groups is not None:
        groups = np.asarray(user_groups)[plan.users]
        for kk in plan.ks:
            if f"NDCG@{kk}" in per_user:
                summary[f"NDCGGap@{kk}"] = M.group_gap(per_user[f"NDCG@{kk}"], groups)
        out["by_user_group"] = {name: M.by_group(v, groups) for name, v in per_user.items()}
    if plan.rerank is not None:
        out["rerank"] = type(plan.rerank).__name__
    return out


def evaluate_ratings(model: Recommender, test: Interactions) -> dict[str, float]:
    """RMSE and MAE of ``model.predict`` on the test ratings (explicit data).

    Raises
    ------
    ConfigError
        The test set is implicit, or the model does not predict ratings (``predicts_ratings`` is false: its
        scores rank items but are not on the rating scale).
    """
    if not type(model).declaration().predicts_ratings:
        raise ConfigError(
            f"{type(model).__name__} does not predict ratings (its scores rank items, they are not on the rating "
            "scale), so RMSE / MAE would be meaningless; evaluate it with evaluate_ranking, or use a rating model "
            "(BiasBaseline, SVD, SVDpp, KNNBaseline, BayesianFM, WeightedBlend)"
        )
    if not test.explicit:
        raise ConfigError("rating evaluation needs explicit ratings; this test set is implicit")
    users = test.row_indices()
    items = test.matrix.indices.astype(np.int64)
    pred = predict_pairs(model, users, items, test.timestamps)  # time-aware models see each rating's time
    truth = test.matrix.data
    return {"RMSE": M.rmse(truth, pred), "MAE": M.mae(truth, pred), "n": float(len(truth))}
