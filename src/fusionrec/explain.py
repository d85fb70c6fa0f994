"""Why an item for a user, for every model family: evidence in the user's terms and a sentence.

``explain(model, user, item, *, side=None, train=None, n=5) -> Explanation`` gathers three kinds of evidence:

neighbours ("because you liked X, Y")
    The user's history items that support the item, best first, from the first source the model offers:

    ``"contribution"``
        the model's :meth:`item_contributions` hook: each history item's additive share of the score
        (EASE / CEASE: ``x_uj B_ji``; the shares sum to the score);
    ``"embedding"``
        cosine of the model's :meth:`~fusionrec.models.base.Recommender.item_embeddings`;
    ``"co-occurrence"``
        cosine of the items' columns in the interactions (any model, e.g. ItemKNN or popularity).
content (per item modality of :class:`~fusionrec.data.side.SideInfo`)
    label modalities and bag-of-words text: the labels / terms the item shares with the history ("shares
    genres Comedy, Drama with X"); dense embeddings (images, sentence vectors): the most similar history item in
    that modality ("its poster looks like X's").
attribution (models with the :meth:`score_parts` hook)
    The share of each modality in the score: parts that sum to the score (:class:`ScoreParts`), exact for models
    linear in per-modality terms (VBPR, HybridMF, DeepFusion late fusion) and Shapley values over modalities
    (masking modalities, ``2^M`` evaluations) for the others (DeepFusion early / gated / attention fusion,
    CEASE), with the baseline (every modality masked) stated as one of the parts.

The hooks (documented contract; the explainer never guesses other attributes)
-------------------------------------------------------------------------------
``model.item_contributions(user: int, item: int) -> (items int64 [h], contributions float [h])``
    The history items of ``user`` and their additive contributions to ``score(user, item)``.
``model.score_parts(user: int, item: int, side: SideInfo | None = None) -> ScoreParts``
    Parts summing to ``score([user], [item])[0]`` (float32 rounding aside).  May raise
    :class:`~fusionrec.errors.ConfigError` when it needs something it was not given (e.g. ``side``); the
    explainer then reports no attribution and says why (``Explanation.attribution_note``).

A model without hooks and without item vectors gets co-occurrence neighbours and content evidence only.
Explanations never show latent factor numbers: only items, titles, labels, words and modality names.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from fusionrec._similarity import cooccurrence_cosine, cosine_to
from fusionrec.errors import ConfigError, DataError, FusionRecError, UnknownIdError
from fusionrec.models.explanation import MAX_SHAPLEY_PLAYERS, ScoreParts, shapley_parts, shapley_values

if TYPE_CHECKING:
    from fusionrec.data.interactions import Interactions
    from fusionrec.data.side import SideInfo
    from fusionrec.models.base import Recommender

__all__ = [
    "MAX_SHAPLEY_PLAYERS",
    "ContentEvidence",
    "Explanation",
    "ItemEvidence",
    "ScoreParts",
    "column_terms",
    "explain",
    "explain_history",
    "explain_ids",
    "item_features_for",
    "sentence",
    "shapley_parts",
    "shapley_values",
    "shared_terms",
]

_LABEL_KINDS = ("categorical",)


# ---------------------------------------------------------------------------------------------- records
@dataclass
class ItemEvidence:
    """One history item cited as evidence: its index, raw id, title and the strength of the link."""

    index: int
    item: Any
    title: str | None
    weight: float

    @property
    def name(self) -> str:
        return self.title or str(self.item)


@dataclass
class ContentEvidence:
    """Why, in one content modality: the shared labels / terms, or the most similar history item(s)."""

    modality: str
    kind: str
    similarity: float
    items: list[ItemEvidence]
    terms: list[str] = field(default_factory=list)

    def phrase(self) -> str:
        if not self.items:
            return ""
        first = self.items[0].name
        if self.terms:
            shown = ", ".join(self.terms[:4])
            if self.kind in _LABEL_KINDS or self.kind == "":
                return f"it shares {self.modality} {shown} with {first}"
            return f"its {self.modality} shares the words {shown} with {first}"
        if self.kind in ("image", "video"):
            return f"its {self.modality} looks like {first}'s"
        if self.kind == "audio":
            return f"its {self.modality} sounds like {first}'s"
        if self.kind == "text":
            return f"its {self.modality} is close to {first}'s"
        return f"its {self.modality} is similar to {first}'s"


@dataclass
class Explanation:
    """Why ``item`` for ``user``: structured evidence and a sentence (:attr:`sentence`)."""

    user: Any
    item: Any
    title: str | None
    score: float
    because: list[ItemEvidence]
    source: str
    content: list[ContentEvidence]
    attribution: ScoreParts | None
    attribution_note: str | None
    sentence: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: numbers as floats, raw ids as given."""
        out = asdict(self)
        out["item"] = _jsonable(self.item)
        out["user"] = _jsonable(self.user)
        for ev in out["because"]:
            ev["item"] = _jsonable(ev["item"])
        for c in out["content"]:
            for ev in c["items"]:
                ev["item"] = _jsonable(ev["item"])
        if self.attribution is not None:
            out["attribution"]["shares"] = self.attribution.shares()
        return out


def _jsonable(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x


# ---------------------------------------------------------------------------------------------- pure helpers
def column_terms(encoder: Any) -> np.ndarray | None:
    """The term (word, label) of each column for encoders whose columns are terms (bag-of-words without SVD,
    multi-hot labels); ``None`` otherwise."""
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


def shared_terms(encoder: Any, a: np.ndarray, b: np.ndarray, limit: int = 8) -> list[str]:
    """Terms present in both rows ``a`` and ``b`` (``b`` may be a sum of rows), strongest first; ``[]`` when
    the encoder's columns are not terms."""
    terms = column_terms(encoder)
    if terms is None or len(terms) != len(a):
        return []
    both = np.asarray(a, np.float64) * np.asarray(b, np.float64)
    cols = [c for c in np.argsort(-both, kind="stable")[:limit] if both[c] > 0]
    return [str(terms[c]) for c in cols]




# ---------------------------------------------------------------------------------------------- explainer
def explain(
    model: Recommender,
    user: int,
    item: int,
    *,
    side: SideInfo | None = None,
    train: Interactions | None = None,
    n: int = 5,
    titles: Sequence[str | None] | Mapping[Any, str] | None = None,
) -> Explanation:
    """Why ``item`` for ``user`` (indices of the model's id maps; :func:`explain_ids` takes raw ids).

    Parameters
    ----------
    model
        A fitted recommender.
    user, item
        Indices.  The user's history is their row of ``train`` (when given) else of the model's ``seen_``.
    side
        The side information the model was fitted with: content evidence, and the attribution of models that
        recompute item vectors from content (DeepFusion, CEASE).  Without it, only neighbour evidence (and the
        attributions that need no features).
    train
        Interactions for the history and co-occurrence (default: the model's training matrix ``seen_``).
    n
        How many history items to cite at most.
    titles
        Item titles, by index (a sequence) or by raw id (a mapping); raw ids are shown where there is none.

    Raises
    ------
    UnknownIdError
        ``user`` or ``item`` is out of range.
    ConfigError
        ``n`` is not a positive integer.
    """
    model.check_fitted()
    seen = sp.csr_matrix(train.matrix if train is not None else model.seen_)
    n_users = int(model.n_users_)
    n_items = int(model.n_items_)
    u, i = _check_index(user, n_users, "user"), _check_index(item, n_items, "item")
    if u < seen.shape[0]:
        lo, hi = seen.indptr[u], seen.indptr[u + 1]
        hist, values = seen.indices[lo:hi].astype(np.int64), seen.data[lo:hi].astype(np.float64)
    else:
        hist, values = np.empty(0, np.int64), np.empty(0)
    raw_item = _raw_lookup(model.item_id_values_)
    user_ids = model.user_id_values_
    raw_user = user_ids[u] if u < len(user_ids) else u
    return explain_history(
        model,
        u,
        i,
        hist,
        values,
        side=side,
        seen=seen,
        n=n,
        item_id=raw_item,
        title=_title_lookup(titles, raw_item),
        user_id=raw_user,
    )


def explain_ids(
    model: Recommender,
    user_id: Any,
    item_id: Any,
    *,
    side: SideInfo | None = None,
    train: Interactions | None = None,
    n: int = 5,
    titles: Sequence[str | None] | Mapping[Any, str] | None = None,
) -> Explanation:
    """:func:`explain` by raw ids (unknown ids raise :class:`~fusionrec.errors.UnknownIdError`)."""
    u = int(model.user_indices([user_id])[0])
    i = int(model.item_indices([item_id])[0])
    return explain(model, u, i, side=side, train=train, n=n, titles=titles)


def explain_history(
    model: Recommender | None,
    user: int | None,
    item: int,
    hist: np.ndarray,
    values: np.ndarray,
    *,
    side: SideInfo | None = None,
    seen: sp.spmatrix | None = None,
    n: int = 5,
    item_id: Callable[[int], Any] | None = None,
    title: Callable[[int], str | None] | None = None,
    user_id: Any = None,
    score: float | None = None,
    similarity: Callable[[int, np.ndarray], np.ndarray] | None = None,
) -> Explanation:
    """The explainer on explicit pieces (what :func:`explain` and serving call).

    ``user`` is the model's row for the user (``None``: the model cannot score them, e.g. a profile-only user in
    serving; then no hook is asked), ``hist`` / ``values`` the user's history, ``seen`` the interactions for
    co-occurrence, ``item_id`` / ``title`` map an index to its raw id / title, ``score`` overrides the model's
    score and ``similarity(i, others)`` the item-item similarity used when the model has no hook.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ConfigError(f"n must be a positive integer, got {n!r}")
    item_id = item_id or (lambda j: j)
    title = title or (lambda j: None)
    hist = np.asarray(hist, np.int64)
    values = np.asarray(values, np.float64)
    scorable = model is not None and user is not None and item < int(model.n_items_) and user < int(model.n_users_)
    if score is None:
        score = float(model.score(np.array([user]), np.array([item]))[0, 0]) if scorable else float("nan")  # type: ignore[union-attr]

    def evidence(j: int, w: float) -> ItemEvidence:
        return ItemEvidence(int(j), _jsonable(item_id(int(j))), title(int(j)), float(w))

    because, source = _neighbours(model if scorable else None, user, item, hist, seen, n, similarity)
    cited = [evidence(j, w) for j, w in because]
    content = _content(side, item, hist, n, evidence)
    parts, note = None, None
    hooks = type(model).declaration().explanation_hooks if model is not None else frozenset()
    if scorable and user is not None and "score_parts" in hooks:
        try:
            parts = model.score_parts(int(user), int(item), side=side)  # type: ignore[union-attr]
        except FusionRecError as exc:
            note = str(exc)
    elif model is not None:
        note = f"{type(model).__name__} has no per-modality attribution (no score_parts hook)"
    ex = Explanation(
        user=_jsonable(user_id if user_id is not None else user),
        item=_jsonable(item_id(int(item))),
        title=title(int(item)),
        score=float(score),
        because=cited,
        source=source,
        content=content,
        attribution=parts,
        attribution_note=note,
        sentence="",
    )
    ex.sentence = sentence(ex)
    return ex


def _check_index(x: Any, n: int, what: str) -> int:
    if isinstance(x, bool) or not isinstance(x, int | np.integer):
        raise UnknownIdError(f"{what} must be an integer index (use explain_ids for raw ids), got {x!r}")
    if not 0 <= int(x) < n:
        raise UnknownIdError(f"{what} index {x} out of range 0..{n - 1}; fold in new {what}s first")
    return int(x)


def _raw_lookup(ids: np.ndarray | None) -> Callable[[int], Any]:
    def raw(j: int) -> Any:
        return ids[j] if ids is not None and j < len(ids) else j

    return raw


def _title_lookup(
    titles: Sequence[str | None] | Mapping[Any, str] | None, raw: Callable[[int], Any]
) -> Callable[[int], str | None]:
    def title(j: int) -> str | None:
        if titles is None:
            return None
        if isinstance(titles, Mapping):
            key = _jsonable(raw(j))
            t = titles.get(key, titles.get(str(key)))
        else:
            t = titles[j] if j < len(titles) else None
        return str(t) if t else None

    return title


def _neighbours(
    model: Recommender | None,
    user: int | None,
    item: int,
    hist: np.ndarray,
    seen: sp.spmatrix | None,
    n: int,
    similarity: Callable[[int, np.ndarray], np.ndarray] | None,
) -> tuple[list[tuple[int, float]], str]:
    """``([(history item, weight)], source)``: the history items that support ``item``, best first."""
    others = hist[hist != item]
    if not len(others):
        return [], "none"
    if model is not None and user is not None and "item_contributions" in type(model).declaration().explanation_hooks:
        items, contrib = model.item_contributions(int(user), int(item))  # type: ignore[attr-defined]
        items, contrib = np.asarray(items, np.int64), np.asarray(contrib, np.float64)
        keep = np.isin(items, others) & (contrib > 0)
        items, contrib = items[keep], contrib[keep]
        best = np.argsort(-contrib, kind="stable")[:n]
        return [(int(items[j]), float(contrib[j])) for j in best], "contribution"
    sims, source = None, "co-occurrence"
    if model is not None:
        try:
            emb = model.item_embeddings()
        except NotImplementedError:
            emb = None
        if emb is not None and len(emb) > max(int(item), int(others.max())):
            sims, source = cosine_to(emb, int(item), others), "embedding"
    if sims is None and similarity is not None:
        sims, source = np.asarray(similarity(int(item), others), np.float64), "similarity"
    if sims is None:
        if seen is None:
            return [], "none"
        sims = cooccurrence_cosine(seen, int(item), others)
    order = [j for j in np.argsort(-sims, kind="stable")[:n] if np.isfinite(sims[j]) and sims[j] > 0]
    return [(int(others[j]), float(sims[j])) for j in order], source


def _content(
    side: SideInfo | None,
    item: int,
    hist: np.ndarray,
    n: int,
    evidence: Callable[[int, float], ItemEvidence],
) -> list[ContentEvidence]:
    """Per modality: shared terms / labels, or the most similar history items; strongest modality first."""
    if side is None or not side.item_features:
        return []
    others = hist[hist != item]
    out: list[ContentEvidence] = []
    for name, x in side.item_features.items():
        x = np.asarray(x)
        if item >= x.shape[0] or not len(others) or int(others.max()) >= x.shape[0]:
            continue
        present = np.asarray(side.item_present.get(name, np.abs(x).sum(axis=1) > 0), bool)
        if not present[item] or not np.abs(x[item]).sum() > 0:
            continue
        sims = np.where(present[others], cosine_to(x, item, others), -np.inf)
        order = [j for j in np.argsort(-sims, kind="stable")[:n] if sims[j] > 0]
        if not order:
            continue
        encoder = side.item_encoders.get(name)
        kind = side.item_kinds.get(name, "")
        # shared terms with the history as a whole (weighted by how strongly each history item has them)
        terms = shared_terms(encoder, x[item], np.asarray(x[others[order]], np.float64).sum(axis=0))
        if terms:  # cite the history items that share the strongest term first
            tcols = column_terms(encoder)
            col = int(np.flatnonzero(np.asarray(tcols) == terms[0])[0]) if tcols is not None else 0
            order = sorted(order, key=lambda j: (-float(x[others[j], col] > 0), -sims[j]))
        out.append(
            ContentEvidence(
                modality=str(name),
                kind=str(kind),
                similarity=float(sims[order[0]]),
                items=[evidence(int(others[j]), float(sims[j])) for j in order],
                terms=terms,
            )
        )
    out.sort(key=lambda c: -c.similarity)
    return out


# ---------------------------------------------------------------------------------------------- words
def _names(items: Sequence[ItemEvidence], k: int = 3) -> str:
    names = [ev.name for ev in items[:k]]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def sentence(ex: Explanation) -> str:
    """The explanation in words: cited items by title, shared labels / words, the modality shares in percent."""
    what = ex.title or str(ex.item)
    clauses = []
    if ex.because:
        clauses.append(f"because you liked {_names(ex.because)}")
    # numeric columns (ids, counts, links) are kept as evidence but are not reasons a person would recognise
    clauses += [p for p in (c.phrase() for c in ex.content if c.kind != "tabular") if p][:3]
    text = f"Recommended {what}"
    text += (" " + "; ".join(clauses)) if clauses else " (nothing in your history explains it)"
    if ex.attribution is not None:
        shares = sorted(ex.attribution.shares().items(), key=lambda kv: -abs(kv[1]))
        pro = ", ".join(f"{_part_label(k)} {100 * v:.0f}%" for k, v in shares if v >= 0.005)
        con = ", ".join(f"{_part_label(k)} {100 * -v:.0f}%" for k, v in shares if v <= -0.005)
        if pro:
            text += f". What drives the score: {pro}"
        if con:
            text += f"{'; ' if pro else '. '}counting against it: {con}"
    return text + "."


def _part_label(name: str) -> str:
    return {"collaborative": "what similar users liked", "text_tower": "text"}.get(name, name)


# ---------------------------------------------------------------------------------------------- hook helpers
def item_features_for(side: SideInfo | None, names: Sequence[str], item: int, model: str) -> dict[str, np.ndarray]:
    """Raw rows ``{name: float32 [d]}`` of ``item`` in the named modalities of ``side`` (for hooks that re-run
    content towers); :class:`ConfigError` when ``side`` is missing or does not cover the item."""
    if not names:
        return {}
    if side is None:
        raise ConfigError(f"{model}'s modality attribution needs the item content: pass side= (the fit's SideInfo)")
    out = {}
    for name in names:
        if name not in side.item_features:
            raise ConfigError(f"side has no item modality {name!r} (fitted with {list(names)}); pass the fit's side")
        x = np.asarray(side.item_features[name])
        if item >= x.shape[0]:
            raise DataError(f"side has {x.shape[0]} rows in {name!r}, none for item {item}; append the new items' rows")
        out[name] = np.asarray(x[item], np.float32)
    return out


# ---------------------------------------------------------------------------------------------- the module is callable
class _ExplainModule(types.ModuleType):
    """``from fusionrec import explain`` is :func:`explain`; once this module is imported, Python binds the package's
    ``explain`` attribute to the module instead, so calling the module is :func:`explain` too (same arguments)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Explanation:
        return explain(*args, **kwargs)


sys.modules[__name__].__class__ = _ExplainModule
