"""Two-way, vectorised mapping between raw ids (str or int) and contiguous indices."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any, Literal

import numpy as np

from fusionrec.errors import DataError, UnknownIdError

__all__ = ["IdMap"]


def _as_id_array(ids: Any) -> np.ndarray:
    arr = np.asarray(ids)
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind == "f":
        if arr.size and not np.all(np.isfinite(arr)):
            raise DataError("ids contain NaN or infinity; drop or fill the rows without an id first")
        if arr.size and not np.all(arr == np.round(arr)):
            raise DataError("float ids must be whole numbers; convert them to int or str")
        return arr.astype(np.int64)
    if arr.dtype.kind in "UST":
        return arr.astype(object)
    if arr.dtype.kind == "O":
        kinds = {type(x) for x in arr[:1000]}
        if kinds <= {int, np.int64, np.int32}:
            return arr.astype(np.int64)
        if any(x is None or (isinstance(x, float) and x != x) for x in arr):
            raise DataError("ids contain missing values (None/NaN); drop or fill those rows first")
        return arr.astype(str).astype(object)
    if arr.dtype.kind == "b":
        raise DataError("boolean ids are not supported; use int or str ids")
    return arr


class IdMap:
    """Bijection between raw ids and indices ``0..n-1``.

    Parameters
    ----------
    ids
        The distinct raw ids, in index order.  Integers are stored as int64,
        everything else as Python strings.

    Examples
    --------
    >>> m = IdMap(["a", "b", "c"])
    >>> m.to_index(["c", "a"]).tolist()
    [2, 0]
    >>> m.to_id([1]).tolist()
    ['b']
    """

    __slots__ = ("_ids", "_index")

    def __init__(self, ids: Iterable[Any] | np.ndarray) -> None:
        import pandas as pd

        arr = _as_id_array(list(ids) if not hasattr(ids, "__len__") else ids)
        index = pd.Index(arr)
        if not index.is_unique:
            dup = index[index.duplicated()][:5].tolist()
            raise DataError(f"IdMap ids must be distinct; duplicated: {dup}")
        self._ids = arr
        self._ids.setflags(write=False)
        self._index = index

    @classmethod
    def factorize(cls, values: Any) -> tuple[IdMap, np.ndarray]:
        """Build a map from the distinct values (sorted) and return the codes of ``values``."""
        import pandas as pd

        arr = _as_id_array(values)
        codes, uniques = pd.factorize(arr, sort=True)
        return cls(np.asarray(uniques)), codes.astype(np.int64)

    @property
    def ids(self) -> np.ndarray:
        """The raw ids in index order (read-only)."""
        return self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, raw_id: object) -> bool:
        return bool(raw_id in self._index)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IdMap):
            return NotImplemented
        return len(self) == len(other) and bool(np.all(self._ids == other._ids))

    def __hash__(self) -> int:  # pragma: no cover - identity hash is enough
        return id(self)

    def __repr__(self) -> str:
        head = ", ".join(map(repr, self._ids[:3].tolist()))
        return f"IdMap(n={len(self)}, ids=[{head}{', ...' if len(self) > 3 else ''}])"

    def to_index(self, ids: Any, missing: Literal["raise", "ignore"] = "raise") -> np.ndarray:
        """Map raw ids to indices.

        ``missing="raise"`` raises :class:`UnknownIdError` naming unknown ids;
        ``missing="ignore"`` returns ``-1`` for them.
        """
        scalar = np.ndim(ids) == 0
        arr = _as_id_array([ids] if scalar else ids)
        if self._ids.dtype == object and arr.dtype != object:
            arr = arr.astype(str).astype(object)
        elif self._ids.dtype != object and arr.dtype == object:
            with contextlib.suppress(TypeError, ValueError):
                arr = arr.astype(np.int64)
        idx = self._index.get_indexer(arr).astype(np.int64)
        if missing == "raise" and (idx < 0).any():
            unknown = arr[idx < 0]
            raise UnknownIdError(
                f"{len(unknown)} unknown id(s), e.g. {unknown[:5].tolist()}; "
                "they are not in this dataset (check the id column or use missing='ignore')"
            )
        return idx[0] if scalar else idx  # type: ignore[return-value]

    def to_id(self, indices: Any) -> np.ndarray:
        """Map indices back to raw ids."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise UnknownIdError(f"index out of range for an IdMap of {len(self)} ids")
        return self._ids[idx]

    def extend(self, new_ids: Any) -> IdMap:
        """Return a new map with the ids not yet present appended (existing indices unchanged)."""
        arr = _as_id_array(new_ids)
        known = self.to_index(arr, missing="ignore")
        fresh = arr[known < 0]
        if fresh.size == 0:
            return self
        import pandas as pd

        fresh = np.asarray(pd.unique(fresh))
        both = np.concatenate([self._ids.astype(object), fresh.astype(object)])
        if self._ids.dtype != object and fresh.dtype != object:
            both = both.astype(np.int64)
        return IdMap(both)
