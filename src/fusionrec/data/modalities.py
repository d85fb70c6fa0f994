"""Side information by modality, keyed by raw item or user ids."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from fusionrec.data.idmap import IdMap
from fusionrec.errors import DataError

__all__ = ["Modality", "ModalityKind"]

ModalityKind = Literal["text", "image", "audio", "video", "tabular", "categorical", "features", "sequence"]
KINDS = ("text", "image", "audio", "video", "tabular", "categorical", "features", "sequence")


@dataclass(frozen=True, eq=False)
class Modality:
    """One kind of content for items or users.

    Attributes
    ----------
    kind
        ``text`` (list of str), ``image`` / ``audio`` / ``video`` (list of file paths, or arrays),
        ``tabular`` (a DataFrame of numeric / categorical columns), ``categorical`` (list of lists
        of labels, multi-hot), ``features`` (a dense float array ``[n, d]``) or ``sequence``.
    ids
        Raw ids of the rows of ``data`` (need not cover every item; missing ones are reported
        by :meth:`align`).
    data
        The content, one row per id.
    target
        ``"item"`` or ``"user"``.
    """

    kind: ModalityKind
    ids: IdMap
    data: Any
    target: Literal["item", "user"] = "item"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise DataError(f"unknown modality kind {self.kind!r}; use one of {KINDS}")
        if self.target not in ("item", "user"):
            raise DataError("Modality.target must be 'item' or 'user'")
        if len(self.data) != len(self.ids):
            raise DataError(f"a {self.kind} modality has {len(self.data)} rows for {len(self.ids)} ids")
        if self.kind == "features":
            arr = np.asarray(self.data)
            if arr.ndim != 2 or not np.isfinite(arr).all():
                raise DataError("dense features must be a finite 2-D array [n, d]")

    def __len__(self) -> int:
        return len(self.ids)

    def rows_for(self, idmap: IdMap) -> tuple[np.ndarray, np.ndarray]:
        """For every id of ``idmap``: the row in ``data`` (``-1`` if absent) and a presence mask."""
        rows = self.ids.to_index(idmap.ids, missing="ignore")
        return rows, rows >= 0

    def align(self, idmap: IdMap) -> tuple[Any, np.ndarray]:
        """Return the content reordered to ``idmap`` and a boolean mask of ids that have content.

        Dense features get zero rows where absent; lists get ``None``; tables get NaN rows.
        """
        rows, present = self.rows_for(idmap)
        if self.kind == "features":
            arr = np.asarray(self.data, dtype=np.float32)
            out = np.zeros((len(idmap), arr.shape[1]), dtype=np.float32)
            out[present] = arr[rows[present]]
            return out, present
        if self.kind == "tabular":
            table = self.data.iloc[np.where(present, rows, 0)].reset_index(drop=True)
            table.loc[~present, :] = np.nan
            return table, present
        data = list(self.data)
        return [data[r] if r >= 0 else None for r in rows.tolist()], present
