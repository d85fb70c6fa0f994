"""Raw item content as what content towers read: one text document and one image per item.

Models that encode raw content themselves (``fit_inputs`` with ``"texts"`` / ``"images"``, e.g.
:class:`~fusionrec.models.fusion.finetune.FineTunedTwoTower`) get them from a dataset's item modalities when
``fusionrec train`` fits them, and from a posted item's content when serving adds it: both through
:func:`item_documents`, so a new item's document is written exactly as the training items' were.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["TEXT_KINDS", "dataset_documents", "item_documents"]

#: the modality kinds written into an item's document
TEXT_KINDS = ("text", "categorical")


def _part(name: str, kind: str, value: Any) -> str:
    if value is None:
        return ""
    if kind == "categorical":
        labels = [str(v).strip() for v in (value if isinstance(value, list | tuple) else [value])]
        labels = [v for v in labels if v]
        return f"{name.replace('_', ' ').capitalize()}: {', '.join(labels)}" if labels else ""
    return str(value).strip()


def item_documents(
    values: Mapping[str, Sequence[Any]], kinds: Mapping[str, str]
) -> tuple[list[str | None] | None, list[Any] | None]:
    """``(texts, images)`` for ``m`` items from raw content by modality (``values[name]``: one value per item,
    ``None`` where missing; ``kinds[name]``: the modality kind, whose order is the order of the document's parts).

    The text of an item joins its text modalities (as written) and its label modalities (``"Genres: a, b"``) with
    ``". "``, ``None`` when it has none; its image is its value of the first image modality.  A list is ``None``
    when no modality of that kind is given.
    """
    sizes = {len(v) for v in values.values()}
    if len(sizes) > 1:
        from fusionrec.errors import DataError

        raise DataError(f"every item modality needs one value per item; got lengths {sorted(sizes)}")
    m = sizes.pop() if sizes else 0
    text_names = [n for n, k in kinds.items() if k in TEXT_KINDS and n in values]
    image_names = [n for n, k in kinds.items() if k == "image" and n in values]
    texts: list[str | None] | None = None
    if text_names:
        texts = []
        for j in range(m):
            parts = [_part(n, kinds[n], values[n][j]) for n in text_names]
            doc = ". ".join(p for p in parts if p)
            texts.append(doc or None)
    images = list(values[image_names[0]]) if image_names else None
    return texts, images


def dataset_documents(dataset: Any, item_ids: Any) -> tuple[list[str | None] | None, list[Any] | None]:
    """:func:`item_documents` of a :class:`~fusionrec.data.Dataset`'s item modalities aligned with ``item_ids``
    (an :class:`~fusionrec.data.IdMap`; items without a value get ``None``)."""
    mods = {n: m for n, m in dataset.item_modalities.items() if m.kind in (*TEXT_KINDS, "image")}
    values = {n: list(m.align(item_ids)[0]) for n, m in mods.items()}
    return item_documents(values, {n: m.kind for n, m in mods.items()})
