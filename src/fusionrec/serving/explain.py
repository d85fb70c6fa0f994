"""Explanations in the user's terms: items and words, never raw factor numbers.

``similar_history``
    The user's history items most similar to the recommended one (cosine of the model's item vectors, else of
    content, else of co-occurrence), with their titles when the catalogue has them.
``content`` (models with item side information)
    The modality in which the recommended item is most similar to something the user interacted with, those
    history items, and for bag-of-words text or label modalities the words / labels they share.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from fusionrec.serving.engine import OnlineModel

__all__ = ["explain", "shared_terms"]


def explain(state: OnlineModel, u: int, i: int, n: int = 5) -> dict[str, Any]:
    """Why item ``i`` for user ``u`` (indices); the caller holds ``state.lock``."""
    cat = state.catalogue
    hist, values = state.history_arrays(u)
    out: dict[str, Any] = {
        "score": float(state.scores(u, np.array([i]))[0]),
        "similar_history": [],
        "content": None,
    }
    if len(hist):
        sims = state.item_similarity(i, hist)
        order = np.argsort(-sims, kind="stable")[:n]
        out["similar_history"] = [
            {
                "item": cat.item_raw[int(hist[j])],
                "title": cat.title(int(hist[j])),
                "similarity": float(sims[j]),
                "value": float(values[j]),
            }
            for j in order
            if np.isfinite(sims[j])
        ]
        out["content"] = _content_reason(state, i, hist, n)
    return out


def _content_reason(state: OnlineModel, i: int, hist: np.ndarray, n: int) -> dict[str, Any] | None:
    side = state.side
    if side is None or side.n_items != state.n_items:
        return None
    best: tuple[float, str, np.ndarray, np.ndarray] | None = None
    for name, x in side.item_features.items():
        x = np.asarray(x, np.float32)
        present = np.asarray(side.item_present.get(name, np.abs(x).sum(axis=1) > 0), bool)
        if not present[i]:
            continue
        rows = x[hist]
        norms = np.linalg.norm(rows, axis=1) * max(float(np.linalg.norm(x[i])), 1e-12)
        sims = np.where(present[hist], rows @ x[i] / np.maximum(norms, 1e-12), -np.inf)
        top = float(sims.max()) if len(sims) else -np.inf
        if top > 0 and (best is None or top > best[0]):
            best = (top, name, sims, x)
    if best is None:
        return None
    _, name, sims, x = best
    order = [j for j in np.argsort(-sims, kind="stable")[:n] if sims[j] > 0]
    cat = state.catalogue
    words = shared_terms(side.item_encoders.get(name), x[i], x[hist[order[0]]]) if order else []
    return {
        "modality": name,
        "kind": side.item_kinds.get(name, ""),
        "items": [
            {"item": cat.item_raw[int(hist[j])], "title": cat.title(int(hist[j])), "similarity": float(sims[j])}
            for j in order
        ],
        "words": words,
    }


def shared_terms(encoder: Any, a: np.ndarray, b: np.ndarray, limit: int = 8) -> list[str]:
    """Terms (words, labels) present in both rows, strongest first, for encoders whose columns are terms
    (bag-of-words text without SVD, multi-hot labels); ``[]`` otherwise."""
    terms = _column_terms(encoder)
    if terms is None or len(terms) != len(a):
        return []
    both = np.asarray(a, np.float64) * np.asarray(b, np.float64)
    cols = [c for c in np.argsort(-both, kind="stable")[:limit] if both[c] > 0]
    return [str(terms[c]) for c in cols]


def _column_terms(encoder: Any) -> np.ndarray | None:
    if encoder is None:
        return None
    if getattr(encoder, "svd_components_matrix_", None) is not None:
        return None
    vec = getattr(encoder, "vectorizer_", None)
    if vec is not None and hasattr(vec, "get_feature_names_out"):
        try:
            return np.asarray(vec.get_feature_names_out())
        except (AttributeError, ValueError):
            return None
    classes = getattr(encoder, "classes_", None)
    return None if classes is None else np.asarray(classes)
