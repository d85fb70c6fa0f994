"""Ranking: scores, top-k through the model's own ``recommend``, re-rankers and similar items (one idea of
:class:`~fusionrec.serving.online.OnlineModel`).

A user the model scores gets ``model.recommend(row, k, seen=<the user's history>)`` (the library's one top-k and
tie rule), or an ANN search over ``Factors.augmented()`` item vectors for large catalogues; a user it does not
score gets popular items matching its profile.  Proxy items (new items of models that cannot add items) score as
the similarity-weighted mean of their content neighbours' scores.  ``k`` was checked at the edge and is trusted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from fusionrec._ranking import topk
from fusionrec.serving.catalogue import label_column
from fusionrec.serving.items import item_similarity, item_vectors
from fusionrec.serving.state import OnlineState

__all__ = ["extend_scores", "group_column", "recommend", "rerank", "scores", "similar"]


def scores(state: OnlineState, u: int, items: np.ndarray | None = None) -> np.ndarray:
    """Scores of ``items`` (all when None) for user ``u`` under the current state."""
    row = state.model_row(u)
    if row is not None:
        base = np.asarray(state.model.score(np.array([row])), np.float32)[0]
        full = extend_scores(base, state.proxies)
    else:
        full = state.catalogue.profile_scores(u, state.popularity)
    return full if items is None else full[items]


def extend_scores(base: np.ndarray, proxies: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """``base`` (a user's scores of the model's items) followed by the scores of the proxy items: each the
    similarity-weighted mean of its neighbours' scores (the mean score when it has no neighbour)."""
    if not proxies:
        return base
    extra = np.array([float(base[n] @ w / w.sum()) if len(n) else float(base.mean()) for n, w in proxies], np.float32)
    return np.concatenate([base, extra])


def recommend(
    state: OnlineState,
    user: Any,
    k: int,
    *,
    exclude_seen: bool = True,
    candidates: Sequence[Any] | None = None,
    filters: Mapping[str, str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` item indices and scores for a raw user id (shorter when fewer items qualify); ``candidates`` are
    distinct raw item ids (parsed at the edge)."""
    with state.lock:
        u = state.require_user(user)
        cand = None if candidates is None else np.sort(state.require_items(candidates))
        if filters:
            f = state.filter_items(dict(filters))
            cand = f if cand is None else np.intersect1d(cand, f)
        if cand is not None and len(cand) == 0:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        excluded = state.history_arrays(u)[0] if exclude_seen else np.empty(0, np.int64)
        row = state.model_row(u)
        if row is not None and not state.proxies:
            if cand is None and state.index is not None:
                return _search(state, row, k, excluded)
            idx, val = state.model.recommend(
                row, k, exclude_seen=exclude_seen, candidates=cand, seen=_seen_matrix(row, excluded, state.n_items)
            )
            keep = idx[0] >= 0
            return idx[0][keep], val[0][keep]
        s = scores(state, u)
        s[excluded] = -np.inf
        if cand is not None:
            s = s[cand]
    idx, val = topk(s, k)
    keep = np.isfinite(val[0])
    idx, val = idx[0][keep], val[0][keep]
    return (idx if cand is None else cand[idx]), val


def _seen_matrix(row: int, items: np.ndarray, n_items: int) -> sp.csr_matrix:
    """A CSR whose row ``row`` holds ``items`` (the rows before it empty): ``seen=`` of ``model.recommend``."""
    indptr = np.zeros(row + 2, dtype=np.int64)
    indptr[-1] = len(items)
    data = np.ones(len(items), np.float32)
    return sp.csr_matrix((data, np.sort(items).astype(np.int32), indptr), shape=(row + 1, n_items))


def _search(state: OnlineState, row: int, k: int, excluded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    users, _ = state.augmented()
    ids, vals = state.index.search(users[row][None, :], k + len(excluded))
    ids, vals = ids[0], vals[0]
    keep = (ids >= 0) & np.isfinite(vals) & ~np.isin(ids, excluded)
    return ids[keep][:k], vals[keep][:k]


def group_column(state: OnlineState) -> str | None:
    """The item labels re-ranking uses as groups (:func:`fusionrec.serving.catalogue.label_column`)."""
    return label_column(state.item_meta)


def rerank(
    state: OnlineState, user: Any, idx: np.ndarray, item_scores: np.ndarray, k: int, spec: Mapping[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """Re-rank a user's candidates (``idx`` / ``item_scores``, e.g. a deeper :func:`recommend`) to ``k`` by a
    :func:`fusionrec.rerank.from_spec` spec: the catalogue's labels (:func:`group_column`) are the groups, the user's
    history the calibration target, the model's item vectors (else content, else the labels) MMR's."""
    from fusionrec.rerank import from_spec, groups_from_labels

    with state.lock:
        u = state.require_user(user)
        col = group_column(state)
        groups, names = groups_from_labels(state.item_meta[col]) if col is not None else (None, None)
        seen = state.history_arrays(u)[0]
        history = sp.csr_matrix((np.ones(len(seen)), (np.zeros(len(seen), np.int64), seen)), shape=(1, state.n_items))
        vectors = item_vectors(state) if "diversify" in spec else None
    if vectors is None or len(vectors) != state.n_items:
        vectors = groups
    reranker = from_spec(spec, item_groups=groups, item_vectors=vectors, history=history, group_names=names)
    items, out = reranker.rerank(np.zeros(1, np.int64), np.asarray(idx)[None, :], np.asarray(item_scores)[None, :], k)
    keep = items[0] >= 0
    return items[0][keep], out[0][keep]


def similar(state: OnlineState, item: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Most similar items: cosine of the model's item vectors, else of content, else co-occurrence."""
    with state.lock:
        i = int(state.require_items([item])[0])
        sims = item_similarity(state, i)
    sims[i] = -np.inf
    idx, val = topk(sims, k)
    keep = np.isfinite(val[0])
    return idx[0][keep], val[0][keep]
