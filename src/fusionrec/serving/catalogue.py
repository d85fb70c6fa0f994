"""The catalogue of a serving process: raw ids <-> indices for the bundle's and the online-added users and items,
item metadata, user profiles and attribute filters.

Indices are the model's: bundle users/items keep theirs, online-added ones are appended in arrival order.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fusionrec.data.idmap import IdMap
from fusionrec.errors import ConfigError, UnknownIdError
from fusionrec.serving.rules import id_key

__all__ = ["SINGLE_COLUMNS", "Catalogue", "UnknownItemError", "UnknownUserError", "label_column", "meta_text"]

#: integer ids beyond int64 stay strings (an id map of int64 cannot hold them)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: metadata columns that hold one text per item (the web page shows them as such)
SINGLE_COLUMNS = frozenset({"title", "poster"})


class UnknownUserError(UnknownIdError):
    """The user is neither in the bundle nor added online."""


class UnknownItemError(UnknownIdError):
    """The item is neither in the bundle nor added online."""


class Catalogue:
    """Raw ids, metadata and profiles of every user and item a serving process knows (not thread-safe by itself:
    the owning :class:`~fusionrec.serving.engine.OnlineModel` holds its lock)."""

    def __init__(self, user_ids: IdMap, item_ids: IdMap, item_meta: Mapping[str, Sequence[Any]]) -> None:
        self.n_base_users = len(user_ids)
        self.n_base_items = len(item_ids)
        self.user_raw: list[Any] = user_ids.ids.tolist()
        self.item_raw: list[Any] = item_ids.ids.tolist()
        self._int_users = user_ids.ids.dtype.kind in "iu"
        self._int_items = item_ids.ids.dtype.kind in "iu"
        self.user_lookup = {id_key(x): i for i, x in enumerate(self.user_raw)}
        self.item_lookup = {id_key(x): i for i, x in enumerate(self.item_raw)}
        self.item_meta: dict[str, list[Any]] = {k: list(v) for k, v in item_meta.items()}
        self.user_attrs: dict[int, dict[str, Any]] = {}
        #: forgotten users: their index stays taken (the model's rows keep their places), their raw id is ``None``
        self.forgotten: set[int] = set()

    # ---------------------------------------------------------------- ids
    @property
    def n_users(self) -> int:
        return len(self.user_raw)

    @property
    def n_items(self) -> int:
        return len(self.item_raw)

    @staticmethod
    def _coerce(raw: Any, as_int: bool) -> Any:
        """The raw id as stored: an int only when the bundle's ids are ints and ``raw`` is one written canonically
        ("12", not "012", " 12", "12.0" or ``true``) within int64, so distinct ids never merge; otherwise its string."""
        if as_int and not isinstance(raw, bool):
            if isinstance(raw, int | np.integer) and INT64_MIN <= int(raw) <= INT64_MAX:
                return int(raw)
            key = id_key(raw)
            with contextlib.suppress(TypeError, ValueError):
                if str(int(key)) == key and INT64_MIN <= int(key) <= INT64_MAX:
                    return int(key)
        return id_key(raw)

    def coerce_user(self, raw: Any) -> Any:
        return self._coerce(raw, self._int_users)

    def coerce_item(self, raw: Any) -> Any:
        return self._coerce(raw, self._int_items)

    def user_index(self, raw: Any) -> int | None:
        return self.user_lookup.get(id_key(raw))

    def item_index(self, raw: Any) -> int | None:
        return self.item_lookup.get(id_key(raw))

    def require_user(self, raw: Any) -> int:
        u = self.user_index(raw)
        if u is None:
            raise UnknownUserError(
                f"unknown user {raw!r}; post an event for it (POST /events) or create it (POST /users) first"
            )
        return u

    def require_items(self, raws: Sequence[Any]) -> np.ndarray:
        idx = [self.item_lookup.get(id_key(r), -1) for r in raws]
        missing = [r for r, i in zip(raws, idx) if i < 0]
        if missing:
            raise UnknownItemError(
                f"{len(missing)} unknown item(s), e.g. {missing[:5]}; add new items with POST /items first"
            )
        return np.asarray(idx, dtype=np.int64)

    def item_ids_out(self, idx: np.ndarray) -> list[Any]:
        return [self.item_raw[i] for i in np.asarray(idx).tolist()]

    def add_user(self, raw: Any) -> int:
        """Append a user (the caller checked it is new); returns its index."""
        u = len(self.user_raw)
        self.user_raw.append(self._coerce(raw, self._int_users))
        self.user_lookup[id_key(raw)] = u
        return u

    def forget_user(self, u: int) -> None:
        """Drop user ``u``'s raw id (lookups no longer find it; ``user_raw[u]`` becomes ``None``) and profile."""
        raw = self.user_raw[u]
        if raw is not None and self.user_lookup.get(id_key(raw)) == u:
            del self.user_lookup[id_key(raw)]
        self.user_raw[u] = None
        self.user_attrs.pop(u, None)
        self.forgotten.add(u)

    def known_users(self, offset: int = 0, limit: int | None = None) -> list[Any]:
        """Raw ids of the users not forgotten, in index order (``offset`` / ``limit`` over that list)."""
        known = (x for x in self.user_raw if x is not None)
        stop = None if limit is None else offset + limit
        return list(itertools.islice(known, offset, stop))

    @property
    def n_known_users(self) -> int:
        return self.n_users - len(self.forgotten)

    def add_item(self, raw: Any, meta: Mapping[str, Any] | None = None) -> int:
        """Append an item (the caller checked it is new) with its metadata; returns its index."""
        i = len(self.item_raw)
        self.item_raw.append(self._coerce(raw, self._int_items))
        self.item_lookup[id_key(raw)] = i
        for col in self.item_meta.values():
            col.append([] if col and isinstance(col[0], list) else "")
        self.set_meta(i, meta or {})
        return i

    # ---------------------------------------------------------------- metadata
    def check_meta(self, meta: Mapping[str, Any]) -> None:
        """``ConfigError`` unless ``meta`` fits the columns: keys are identifiers (not starting with ``_``),
        ``title`` and ``poster`` are texts, and a key that exists holds the same kind of value (one text, or a list
        of labels) as the column has (a retrain stores the columns as they are)."""
        for key, value in meta.items():
            if not isinstance(key, str) or not key.isidentifier() or key.startswith("_"):
                raise ConfigError(f"meta key {key!r} must be an identifier (letters, digits, _; not starting with _)")
            multi = isinstance(value, list | tuple)
            if key in SINGLE_COLUMNS and multi:
                raise ConfigError(f"meta {key!r} is one text per item; send a string, not a list")
            col = self.item_meta.get(key)
            if col and multi != isinstance(col[0], list):
                want = "a list of labels" if isinstance(col[0], list) else "one text"
                raise ConfigError(f"meta {key!r} holds {want} per item in this catalogue; send {want}")

    def set_meta(self, i: int, meta: Mapping[str, Any]) -> None:
        for key, value in meta.items():
            if key not in self.item_meta:
                multi = isinstance(value, list | tuple)
                self.item_meta[key] = [[] if multi else "" for _ in range(len(self.item_raw))]
            col = self.item_meta[key]
            col[i] = list(map(str, value)) if isinstance(value, list | tuple) else ("" if value is None else str(value))

    def title(self, i: int) -> str | None:
        titles = self.item_meta.get("title")
        return (titles[i] or None) if titles else None

    def filter_items(self, filters: Mapping[str, str]) -> np.ndarray:
        """Items whose metadata column equals (or, for multi-label columns, contains) each filter value."""
        mask = np.ones(self.n_items, dtype=bool)
        for key, value in filters.items():
            col = self.item_meta.get(key)
            if col is None:
                raise ConfigError(f"unknown filter {key!r}; item attributes: {sorted(self.item_meta)}")
            mask &= self._matches(col, {str(value).lower()})
        return np.flatnonzero(mask)

    @staticmethod
    def _matches(col: Sequence[Any], wanted: set[str]) -> np.ndarray:
        return np.fromiter(
            (
                bool(wanted & {str(x).lower() for x in v}) if isinstance(v, list) else str(v).lower() in wanted
                for v in col
            ),
            dtype=bool,
            count=len(col),
        )

    def profile_scores(self, u: int, popularity: np.ndarray) -> np.ndarray:
        """Popularity in ``[0, 1]``, plus 1 for every profile attribute of user ``u`` an item matches."""
        pop = np.asarray(popularity, np.float32)
        scores = pop / max(1.0, float(pop.max()) if pop.size else 1.0)
        for key, wanted in self.user_attrs.get(u, {}).items():
            col = self.item_meta.get(key)
            if col is None:
                continue
            wanted_set = {str(w).lower() for w in (wanted if isinstance(wanted, list | tuple) else [wanted])}
            scores = scores + self._matches(col, wanted_set).astype(np.float32)
        return scores


def label_column(meta: Mapping[str, Sequence[Any]]) -> str | None:
    """The item labels re-ranking uses as groups: ``genres`` when the metadata has it, else the first multi-label
    column, else ``None``."""
    if "genres" in meta:
        return "genres"
    return next((key for key, col in meta.items() if col and isinstance(col[0], list)), None)


def meta_text(meta: Mapping[str, Any] | None) -> str:
    """The metadata values of an item joined into one text (to match it against the catalogue's titles)."""
    if not meta:
        return ""
    parts: list[str] = []
    for v in meta.values():
        parts.extend(map(str, v) if isinstance(v, list | tuple) else [str(v)])
    return " ".join(parts)
