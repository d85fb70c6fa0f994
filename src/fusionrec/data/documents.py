"""Raw item content as what content towers read: one text document and one image per item.

Models that encode raw content themselves (``fit_inputs`` with ``"texts"`` / ``"images"``, e.g.
:class:`~fusionrec.models.fusion.finetune.FineTunedTwoTower`) get them from a dataset's item modalities when
``fusionrec train`` fits them, and from a posted item's content when serving adds it: both through
:func:`item_documents`, so a new item's document is written exactly as the training items' were.

:class:`ItemDocuments` keeps them for a whole catalogue (a serving bundle holds one, grown by every posted item) so
that a retrain refits such a model on every item's raw content: the documents as text and each image as the bytes
of its file, so that the bundle does not depend on files that may move (and its checksum covers them).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fusionrec.errors import DataError

__all__ = ["TEXT_KINDS", "ItemDocuments", "dataset_documents", "image_bytes", "item_documents"]

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


def image_bytes(value: Any) -> bytes | None:
    """One item's image as the bytes of an image file: a path's file content (``None`` when there is no such
    file: a model reading that path sees no image either), bytes as given, an ``H x W [x 3|4]`` uint8 array as a PNG;
    ``None`` and empty values give ``None``."""
    if value is None:
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value) or None
    if isinstance(value, str | os.PathLike):
        path = Path(value)
        if not str(value).strip() or not path.is_file():
            return None
        return path.read_bytes() or None
    if isinstance(value, np.ndarray):
        import io

        from PIL import Image

        if value.dtype != np.uint8 or value.ndim not in (2, 3) or value.size == 0:
            raise DataError(
                f"an image array to keep must be H x W [x 3|4] uint8, got {value.dtype} {value.shape}; "
                "pass the image's file path or bytes instead"
            )
        out = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(value)).save(out, format="PNG")
        return out.getvalue()
    raise DataError(f"cannot keep an image given as {type(value).__name__}; pass a file path, bytes or an array")


@dataclass(eq=False)
class ItemDocuments:
    """Every item's raw content, aligned with an item id map: ``texts`` (one document or ``None`` per item) and
    ``images`` (the bytes of one image file or ``None`` per item); a list is ``None`` when no item has content of
    that kind (or the model does not read it).  What :meth:`fit_kwargs` gives a model's ``fit``."""

    texts: list[str | None] | None = None
    images: list[bytes | None] | None = None

    @classmethod
    def of(cls, texts: Sequence[Any] | None, images: Sequence[Any] | None) -> ItemDocuments:
        """From ``texts`` (blank ones become ``None``) and ``images`` (paths, bytes or arrays:
        :func:`image_bytes`); ``DataError`` unless both have one value per item."""
        if texts is not None and images is not None and len(texts) != len(images):
            raise DataError(f"texts ({len(texts)}) and images ({len(images)}) need one value per item each")
        return cls(
            None if texts is None else [t if isinstance(t, str) and t.strip() else None for t in texts],
            None if images is None else [image_bytes(v) for v in images],
        )

    @property
    def n_items(self) -> int:
        for values in (self.texts, self.images):
            if values is not None:
                return len(values)
        return 0

    @property
    def empty(self) -> bool:
        return self.texts is None and self.images is None

    def fit_kwargs(self) -> dict[str, list[Any]]:
        """``texts=`` / ``images=`` as a raw-content model's ``fit`` takes them (the lists held)."""
        return {k: v for k, v in (("texts", self.texts), ("images", self.images)) if v is not None}

    def append(self, texts: Sequence[Any] | None, images: Sequence[Any] | None, m: int) -> None:
        """Add ``m`` items' content (``None`` for a kind not given: the items have none of it), in place."""
        new = ItemDocuments.of(texts, images)
        for name, got in (("texts", new.texts), ("images", new.images)):  # all checked before anything grows
            if got is not None and len(got) != m:
                raise DataError(f"{name} has {len(got)} values for {m} new items")
        if self.texts is not None:
            self.texts.extend(new.texts if new.texts is not None else [None] * m)
        if self.images is not None:
            self.images.extend(new.images if new.images is not None else [None] * m)

    def take(self, rows: Sequence[int] | np.ndarray) -> ItemDocuments:
        """The content of items ``rows`` (indices), in that order."""
        idx = [int(r) for r in np.asarray(rows, dtype=np.int64).tolist()]
        return ItemDocuments(
            None if self.texts is None else [self.texts[r] for r in idx],
            None if self.images is None else [self.images[r] for r in idx],
        )

    def copy(self) -> ItemDocuments:
        return ItemDocuments(
            None if self.texts is None else list(self.texts), None if self.images is None else list(self.images)
        )

    def to_arrays(self, prefix: str) -> tuple[list[str], dict[str, np.ndarray]]:
        """The kinds held and the arrays that store them (no pickle): per kind ``<prefix><kind>.data`` (uint8, every
        value's bytes -- UTF-8 for texts -- end to end) and ``<prefix><kind>.ends`` (int64 ``[n]``: where each
        value ends; an empty value is ``None``)."""
        kinds, arrays = [], {}
        for kind, values in (("texts", self.texts), ("images", self.images)):
            if values is None:
                continue
            blobs = [b"" if v is None else (v.encode("utf-8") if isinstance(v, str) else bytes(v)) for v in values]
            kinds.append(kind)
            arrays[f"{prefix}{kind}.data"] = np.frombuffer(b"".join(blobs), dtype=np.uint8)
            arrays[f"{prefix}{kind}.ends"] = np.cumsum([len(b) for b in blobs], dtype=np.int64)
        return kinds, arrays

    @classmethod
    def from_arrays(cls, kinds: Sequence[str], arrays: Mapping[str, np.ndarray], prefix: str) -> ItemDocuments:
        """The inverse of :meth:`to_arrays`; ``ValueError`` / ``KeyError`` for arrays that do not fit together."""
        out = cls()
        for kind in kinds:
            if kind not in ("texts", "images"):
                raise ValueError(f"unknown kind of item content {kind!r}")
            data, ends = arrays[f"{prefix}{kind}.data"], arrays[f"{prefix}{kind}.ends"]
            if data.dtype != np.uint8 or data.ndim != 1 or ends.dtype != np.int64 or ends.ndim != 1:
                raise ValueError(f"{prefix}{kind} arrays have the wrong type ({data.dtype}, {ends.dtype})")
            starts = np.concatenate([[0], ends[:-1]]).astype(np.int64)
            if len(ends) and (np.any(ends < starts) or int(ends[-1]) != len(data)):
                raise ValueError(f"{prefix}{kind}.ends do not cut {prefix}{kind}.data into values")
            raw = data.tobytes()
            blobs = [raw[a:b] for a, b in zip(starts.tolist(), ends.tolist())]
            values: list[Any] = [(b.decode("utf-8") if kind == "texts" else b) if b else None for b in blobs]
            setattr(out, kind, values)
        if out.texts is not None and out.images is not None and len(out.texts) != len(out.images):
            raise ValueError(f"{len(out.texts)} texts but {len(out.images)} images")
        return out
