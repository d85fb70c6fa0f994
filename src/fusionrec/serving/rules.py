"""The rules every input of the service obeys, each written once and applied at the edge; the engine trusts them.

* **ids**: a raw id is its canonical string (:func:`id_key`): JSON ``1`` and ``"1"`` name one user, ``"01"``,
  ``" 1"``, ``"1.0"`` and ``"+1"`` are other ids (the schema refuses ``true``, ``1.5`` and control characters);
* **links**: a social link has a finite weight >= 0 (the schema); a link to the user itself and a zero weight are
  dropped and a repeated pair keeps its largest weight (:func:`clean_links`) -- for posted links
  (:class:`~fusionrec.serving.schemas.UserIn`) and for a bundle's training graph alike (:func:`clean_social`, when
  a bundle is loaded);
* **candidates**: a comma-separated list, empty entries and repeats left out, first occurrence kept
  (:func:`parse_candidates`);
* **k**: ``1 <= k <= max_k`` (one FastAPI query parameter, :func:`fusionrec.serving.routes.deps.list_length`); a
  re-ranked list is chosen from the model's top :func:`rerank_depth`.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any, TypeVar

import numpy as np
import scipy.sparse as sp

__all__ = [
    "MAX_TITLE_CHARS",
    "RERANK_DEPTH",
    "clean_links",
    "clean_social",
    "id_key",
    "parse_candidates",
    "rerank_depth",
    "shorten_text",
]

#: candidates (the model's top) a re-ranked recommendation chooses its k items from
RERANK_DEPTH = 100

H = TypeVar("H", bound=Hashable)


def id_key(raw: Any) -> str:
    """The canonical form of a raw id (how the catalogue, the store and retrains compare ids): its string."""
    return str(raw)


def clean_links(links: Iterable[tuple[H, H, float]]) -> dict[tuple[H, H], float]:
    """``{(user, friend): weight}`` of ``links`` (``(user, friend, weight)`` triples with weights >= 0): a link to
    the user itself and a zero weight are dropped, a repeated pair keeps its largest weight."""
    out: dict[tuple[H, H], float] = {}
    for user, friend, weight in links:
        w = float(weight)
        if user == friend or not w > 0:
            continue
        key = (user, friend)
        out[key] = max(out.get(key, 0.0), w)
    return out


def clean_social(social: Any) -> sp.csr_matrix:
    """A users x users link matrix under :func:`clean_links` (no diagonal, no zero or negative entry)."""
    coo = sp.coo_matrix(social)
    kept = clean_links(zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist()))
    if not kept:
        return sp.csr_matrix(coo.shape, dtype=coo.dtype)
    rows, cols = (np.asarray(v, np.int64) for v in zip(*kept))
    data = np.asarray(list(kept.values()), dtype=coo.dtype)
    return sp.csr_matrix((data, (rows, cols)), shape=coo.shape)


def parse_candidates(text: str | None) -> list[str] | None:
    """The raw item ids of a ``candidates`` query (``None`` when absent): split at commas, empty entries and
    repeats left out."""
    if text is None:
        return None
    return list(dict.fromkeys(c for c in text.split(",") if c))


def rerank_depth(k: int) -> int:
    """How many of the model's top items a re-ranked list of ``k`` is chosen from."""
    return max(k, RERANK_DEPTH)


#: longest display title kept, in a bundle's metadata and for a posted item (longer ones end in an ellipsis)
MAX_TITLE_CHARS = 80


def shorten_text(text: str, limit: int = MAX_TITLE_CHARS) -> str:
    """``text`` on one line, cut at a word boundary to at most ``limit`` characters with an ellipsis."""
    one = " ".join(str(text).split())
    if len(one) <= limit:
        return one
    cut = one[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:.-") + "…"
