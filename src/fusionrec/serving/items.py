"""New items: content encoding, placement by the model (``add_items``) or by content neighbours, item vectors and
similarity (one idea of :class:`~fusionrec.serving.online.OnlineModel`).

A new item is placed at once, by what the model declares (:mod:`fusionrec.models.declaration`):

* ``can_add_items`` (content models) with side information: the item's content, encoded with the bundle's fitted
  encoders (``side.encode_items``), goes to ``model.add_items`` (only the modalities the model reads: its declared
  ``modality_param``);
* ``has_factors``: ``add_item_vectors`` with the similarity-weighted mean vector (and bias) of the item's
  :data:`N_NEIGHBOURS` nearest items by content (side features, or posted text vs the catalogue's titles);
* otherwise the item is a *proxy*: its score for a user is the similarity-weighted mean of its neighbours' scores
  (:func:`fusionrec.serving.ranking.extend_scores`).

The side information grows with every item (``side.append_items``), and so do the raw texts / images of a model that
encodes them itself (``state.documents``), so that a retrain still sees the content.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import scipy.sparse as sp

from fusionrec._ranking import topk
from fusionrec._similarity import cooccurrence_cosine, cosine_to
from fusionrec.errors import ConfigError, DataError, FusionRecError
from fusionrec.serving.catalogue import meta_text
from fusionrec.serving.state import OnlineState

if TYPE_CHECKING:
    from fusionrec.models.coldstart import ItemColdStart
    from fusionrec.models.factors import FactorModel

__all__ = ["N_NEIGHBOURS", "add_item", "content_matrix", "encode_content", "item_similarity", "item_vectors"]

#: content neighbours averaged to place a new item
N_NEIGHBOURS = 10


def add_item(
    state: OnlineState,
    raw: Any,
    meta: Mapping[str, Any] | None = None,
    features: Sequence[float] | None = None,
    text: str | None = None,
    content: Mapping[str, Any] | None = None,
    *,
    rows: Mapping[str, np.ndarray] | None = None,
) -> int:
    """Make a new item recommendable at once, placed by its content (module notes); returns its index.

    ``content`` maps the bundle's item modality names to raw values (text, labels, an image path), encoded with the
    bundle's fitted encoders; ``features`` is a dense vector for the bundle's ``"features"`` modality; ``text`` is
    matched against the catalogue's titles when there is no side information.  ``rows`` are the already encoded
    content (:func:`encode_content`), which then is not encoded again.  A known item gets its metadata updated.
    """
    with state.lock:
        known = state.item_index(raw)
        if known is not None:
            state.catalogue.set_meta(known, meta or {})
            return known
        rows = dict(rows) if rows is not None else encode_content(state, content, features)
        nbrs, weights = neighbours(state, rows, text or meta_text(meta))
        expected = state.n_items
        model = state.model
        own = raw_inputs(state, content, text)  # models that encode raw content themselves get it too
        if state.can_add_content and (_any_content(rows) or not state.is_factor):
            assert state.side is not None
            used = model_item_modalities(state)
            given = {k: v for k, v in rows.items() if k in used}
            if not given:  # no content at all: one all-zero (missing) row, imputed by the model
                name = used[0]
                d = np.asarray(state.side.item_features[name]).shape[1]
                given = {name: np.zeros((1, d), np.float32)}
            placed = cast("ItemColdStart", model).add_items(given, **own)  # declared can_add_items
        elif state.is_factor:
            factor_model = cast("FactorModel", model)  # declared has_factors
            f = factor_model.factors()
            vec = _average(f.item, nbrs, weights)
            bias = None if f.item_bias is None else np.array([_average(f.item_bias[:, None], nbrs, weights)[0]])
            placed = factor_model.add_item_vectors(vec[None, :], bias)
        else:
            placed = None
            state.proxies.append((nbrs, weights))
        if placed is not None and int(np.asarray(placed).ravel()[0]) != expected:
            raise FusionRecError(
                f"the model placed the new item at index {int(np.asarray(placed).ravel()[0])}, serving expected "
                f"{expected}; retrain the bundle (POST /admin/retrain) and restart"
            )
        i = state.catalogue.add_item(raw, meta)
        if state.documents is not None:  # kept in step with the catalogue: a retrain refits with every item's
            state.documents.append(own.get("texts"), own.get("images"), 1)
        if state.side is not None and state.side.item_features:
            state.side.append_items({k: v for k, v in rows.items() if k in state.side.item_features}, 1)
        state.popularity = np.append(state.popularity, 0.0)
        state.aug_cache = state.content_cache = None
        if state.index is not None:
            state.index.add(state.augmented()[1][i : i + 1])
        return i


def raw_inputs(state: OnlineState, content: Mapping[str, Any] | None, text: str | None) -> dict[str, Any]:
    """``texts=`` / ``images=`` for ``add_items`` of a model that declares them in ``fit_inputs`` (it encodes raw
    content itself): the posted content written as at training (:func:`fusionrec.data.documents.item_documents`,
    the bundle's modality kinds), else the posted ``text``; ``{}`` for the other models."""
    if not state.declared.raw_content:
        return {}
    from fusionrec.data.documents import item_documents

    kinds = {} if state.side is None else dict(state.side.item_kinds)
    values = {k: [v] for k, v in (content or {}).items() if k in kinds}
    texts, images = item_documents(values, kinds)
    if (texts is None or texts[0] is None) and text:
        texts = [text]
    return state.declared.fit_kwargs(texts=texts, images=images)


def model_item_modalities(state: OnlineState) -> list[str]:
    """The side modalities the model was fitted with: the value of its declared ``modality_param`` when set (a
    subset), else all of them (the models' default)."""
    assert state.side is not None
    param = state.declared.modality_param
    value = None if param is None else state.model.get_params().get(param)
    if isinstance(value, list | tuple) and value:
        names = [str(v) for v in value if str(v) in state.side.item_features]
        if names:
            return names
    return sorted(state.side.item_features)


def encode_content(
    state: OnlineState, content: Mapping[str, Any] | None, features: Sequence[float] | None = None
) -> dict[str, np.ndarray]:
    """One new item's raw content as ``{modality: float32 [1, d]}`` with the bundle's fitted encoders
    (``ConfigError`` for unknown modalities or wrong sizes)."""
    from fusionrec.serving.bundle import DENSE_MODALITY

    side = state.side
    raw = {k: [v] for k, v in (content or {}).items() if v is not None}
    both = features is not None and DENSE_MODALITY in raw
    shadowed = {DENSE_MODALITY: raw[DENSE_MODALITY]} if both else None
    if features is not None:  # 'features' wins over content['features'] (which is still checked below)
        raw[DENSE_MODALITY] = [list(features)]
    if not raw:
        return {}
    if side is None or not side.item_features:
        raise ConfigError(
            "this bundle holds no item side information, so content cannot be encoded; post title/text instead "
            "or train the bundle with item content"
        )
    try:
        if shadowed is not None:
            side.encode_items(shadowed)
        return side.encode_items(raw)
    except DataError as exc:
        raise ConfigError(str(exc)) from exc


def neighbours(state: OnlineState, rows: Mapping[str, np.ndarray], text: str) -> tuple[np.ndarray, np.ndarray]:
    """The nearest existing items by content, with their (positive) similarities as weights."""
    n_model = min(state.n_items, int(state.model.n_items_))  # neighbours the model can score
    names = [k for k, r in rows.items() if np.abs(r).sum() > 0]
    side = state.side
    if names and side is not None:
        from fusionrec.data.side import fuse_modalities

        catalogue, _, _ = fuse_modalities(side.item_features, names, present=side.item_present)
        new, _, _ = fuse_modalities(rows, names)
        sims = catalogue[:n_model] @ new[0]
        return _nearest(sims, N_NEIGHBOURS)
    titles = state.bundle.item_meta.get("title")
    if text and titles:
        if state.text_index is None:
            genres = state.bundle.item_meta.get("genres")
            docs = [f"{t} {' '.join(genres[j]) if genres else ''}" for j, t in enumerate(titles)]
            state.text_index = _hash_text(docs)
        sims = (state.text_index @ _hash_text([text]).T).toarray().ravel()
        return _nearest(sims[:n_model], N_NEIGHBOURS)
    return np.empty(0, np.int64), np.empty(0)


# ---------------------------------------------------------------------------------------------- item vectors
def item_vectors(state: OnlineState) -> np.ndarray | None:
    """The items as vectors: the model's item factors (``has_factors``), else its item embeddings, else the
    fused content (:func:`content_matrix`), else ``None``."""
    model = state.model
    if state.is_factor:
        item = cast("FactorModel", model).factors().item
        if item.shape[1] > 0:
            return np.asarray(item)
    try:
        emb = model.item_embeddings()
    except NotImplementedError:
        emb = None
    if emb is not None and len(emb) == state.n_items:
        return np.asarray(emb)
    return content_matrix(state)


def content_matrix(state: OnlineState) -> np.ndarray | None:
    """The fused (L2-normalised per modality) item content aligned with the catalogue, or ``None``."""
    side = state.side
    if side is None or not side.item_features or side.n_items != state.n_items:
        return None
    if state.content_cache is None:
        from fusionrec.data.side import fuse_modalities

        fused, _, _ = fuse_modalities(side.item_features, list(side.item_features), present=side.item_present)
        state.content_cache = fused
    return state.content_cache


def item_similarity(state: OnlineState, i: int, others: np.ndarray | None = None) -> np.ndarray:
    """Cosine similarity of item ``i`` to ``others`` (all items when None): of the item vectors
    (:func:`item_vectors`), else co-occurrence in the training data (a proxy item: its neighbours' weights)."""
    vecs = item_vectors(state)
    if vecs is not None:
        return cosine_to(vecs, i, others).astype(np.float32)
    full = np.zeros(state.n_items, np.float32)
    if i < state.n_base_items:
        full[: state.n_base_items] = cooccurrence_cosine(state.base_seen, i)
    elif i - state.n_base_items < len(state.proxies):
        n, w = state.proxies[i - state.n_base_items]
        full[n] = w
    return full if others is None else full[others]


# ---------------------------------------------------------------------------------------------- helpers
def _hash_text(texts: Sequence[str], n_features: int = 2**16) -> sp.csr_matrix:
    from sklearn.feature_extraction.text import HashingVectorizer

    vec = HashingVectorizer(n_features=n_features, ngram_range=(1, 2), alternate_sign=False, norm="l2")
    return vec.transform([t or "" for t in texts]).tocsr()


def _nearest(sims: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    idx, val = topk(sims[None, :], m)
    keep = np.isfinite(val[0]) & (val[0] > 0)
    return idx[0][keep], val[0][keep].astype(np.float64)


def _any_content(rows: Mapping[str, np.ndarray]) -> bool:
    return any(np.abs(np.asarray(r)).sum() > 0 for r in rows.values())


def _average(vecs: np.ndarray, nbrs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The ``weights``-weighted mean of rows ``nbrs`` of ``vecs`` (all rows' mean without neighbours)."""
    vecs = np.asarray(vecs, np.float64)
    if len(nbrs) == 0:
        return vecs.mean(axis=0).astype(np.float32)
    w = np.asarray(weights, np.float64)
    return (w @ vecs[nbrs] / w.sum()).astype(np.float32)
