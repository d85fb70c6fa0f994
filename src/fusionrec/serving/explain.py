"""Serving's explanations: a thin adapter from the online state to the library explainer (:mod:`fusionrec.explain`).

The answer keeps the former fields and adds the library's words and structure:

``sentence``
    The explanation in words (titles, shared labels / terms, modality shares in percent; never factor numbers).
``similar_history``
    The cited history items, best first: ``{"item", "title", "similarity", "value"}`` (``similarity`` is the
    strength of the link: the item's share of the score for EASE-like models, else a cosine).
``source``
    Where the cited items come from: ``contribution``, ``embedding``, ``similarity`` or ``co-occurrence``.
``content``
    The strongest content modality (``{"modality", "kind", "items", "words"}``) or ``None``; ``modalities`` all of them.
``attribution``
    ``{"parts", "shares", "method", "baseline"}`` for models with a per-modality split (parts sum to the score),
    else ``None`` with ``attribution_note`` saying why.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from fusionrec.explain import ContentEvidence, column_terms, explain_history, shared_terms
from fusionrec.serving.items import item_similarity
from fusionrec.serving.ranking import scores
from fusionrec.serving.rules import id_key

if TYPE_CHECKING:
    from fusionrec.serving.state import OnlineState

__all__ = ["column_terms", "explain", "explain_from_bundle", "response_model", "shared_terms"]


def explain(state: OnlineState, u: int, i: int, n: int = 5) -> dict[str, Any]:
    """Why item ``i`` for user ``u`` (catalogue indices); the caller holds ``state.lock``."""
    cat = state.catalogue
    hist, values = state.history_arrays(u)
    row = state.model_row(u)
    value_of = dict(zip(hist.tolist(), values.tolist()))
    ex = explain_history(
        state.model,
        row,
        i,
        hist,
        values,
        side=state.side,
        seen=state.base_seen,
        n=n,
        item_id=lambda j: cat.item_raw[j],
        title=cat.title,
        user_id=cat.user_raw[u] if u < len(cat.user_raw) else u,
        score=float(scores(state, u, np.array([i]))[0]),
        similarity=partial(item_similarity, state),
    )
    attribution = None
    if ex.attribution is not None:
        a = ex.attribution
        attribution = {"parts": a.parts, "shares": a.shares(), "method": a.method, "baseline": a.baseline}
    return {
        "score": ex.score,
        "sentence": ex.sentence,
        "source": ex.source,
        "similar_history": [
            {"item": e.item, "title": e.title, "similarity": e.weight, "value": float(value_of.get(e.index, 1.0))}
            for e in ex.because
        ],
        "content": _content_out(ex.content[0]) if ex.content else None,
        "modalities": [_content_out(c) for c in ex.content],
        "attribution": attribution,
        "attribution_note": ex.attribution_note,
    }


def _content_out(c: ContentEvidence) -> dict[str, Any]:
    return {
        "modality": c.modality,
        "kind": c.kind,
        "items": [{"item": e.item, "title": e.title, "similarity": e.weight} for e in c.items],
        "words": c.terms,
        "phrase": c.phrase(),
    }


def response_model() -> type[Any]:
    """The ``GET /explain`` answer: :class:`~fusionrec.serving.schemas.ExplainOut` plus the library's fields
    (built on first use, so that importing this module needs no pydantic)."""
    global _RESPONSE
    if _RESPONSE is None:
        from pydantic import Field

        from fusionrec.serving.schemas import ExplainOut

        class ExplainWords(ExplainOut):
            sentence: str = Field(description="the explanation in words (titles, labels, shares; no factor numbers)")
            source: str = Field(description="where the cited history items come from")
            modalities: list[dict[str, Any]] = Field(description="content evidence per modality, strongest first")
            attribution: dict[str, Any] | None = Field(
                None, description="per-modality parts of the score (they sum to it), their shares, method, baseline"
            )
            attribution_note: str | None = Field(None, description="why there is no attribution")

        _RESPONSE = ExplainWords
    return _RESPONSE


_RESPONSE: type[Any] | None = None


def explain_from_bundle(bundle: Any, user: str, item: str, n: int = 5) -> dict[str, Any]:
    """Why ``item`` for ``user`` (raw ids matched by their text, as ``fusionrec recommend`` does) in a saved bundle:
    :meth:`fusionrec.explain.Explanation.to_dict` with the bundle's titles and side information.

    Raises :class:`~fusionrec.errors.UnknownIdError` for an unknown user or item (the message lists examples).
    """
    from fusionrec.errors import UnknownIdError
    from fusionrec.explain import explain as explain_model

    found = []
    for what, raw, ids in (("user", user, bundle.user_ids.ids.tolist()), ("item", item, bundle.item_ids.ids.tolist())):
        index = {id_key(x): j for j, x in enumerate(ids)}.get(id_key(raw))
        if index is None:
            examples = ", ".join(repr(str(x)) for x in ids[:5])
            raise UnknownIdError(
                f"unknown {what} {raw!r}: the bundle knows {len(ids)} {what}s (e.g. {examples}); pass one of its raw "
                f"ids (those added to a running service exist only there: ask it with GET /explain)"
            )
        found.append(index)
    titles = bundle.item_meta.get("title")
    ex = explain_model(bundle.model, found[0], found[1], side=bundle.side, n=n, titles=titles)
    return ex.to_dict()
