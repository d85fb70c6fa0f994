"""The interaction matrix: CSR users x items (float32) with optional aligned timestamps."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import scipy.sparse as sp

from fusionrec.data.idmap import IdMap
from fusionrec.errors import (
    DataError,
    DuplicateInteractionError,
    EmptyDataError,
    InvalidValueError,
    MissingColumnError,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DataWarning", "Interactions"]

Duplicates = Literal["raise", "first", "last", "sum", "mean", "max"]
Unknown = Literal["raise", "drop"]

USER_COLUMNS = ("user", "user_id", "userId", "userID", "UserID", "reviewerID", "uid")
ITEM_COLUMNS = ("item", "item_id", "itemId", "itemID", "movieId", "MovieID", "asin", "business_id", "iid")
RATING_COLUMNS = ("rating", "ratings", "score", "stars", "overall", "value")
TIME_COLUMNS = ("timestamp", "time", "ts", "unixReviewTime", "date")


#: largest absolute rating / weight: values are stored as float32, beyond this they would become infinite
VALUE_LIMIT = float(np.finfo(np.float32).max)
#: timestamps (seconds) must lie in (-2^63, 2^63): int64
TIME_LIMIT = float(2**63)


class DataWarning(UserWarning):
    """Rows were dropped or merged because the caller asked for it; the message gives the count."""


def _pick(
    columns: Sequence[str], wanted: str | None, candidates: Sequence[str], what: str, required: bool
) -> str | None:
    if wanted is not None:
        if wanted not in columns:
            raise MissingColumnError(f"the {what} column {wanted!r} is missing; columns present: {list(columns)}")
        return wanted
    for name in candidates:
        if name in columns:
            return name
    if required:
        raise MissingColumnError(
            f"no {what} column found among {list(columns)}; name it one of {list(candidates)} "
            f"or pass {what}=<column name>"
        )
    return None


def _numeric(values: Any, what: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind not in "iufb":
        import pandas as pd

        conv = pd.to_numeric(pd.Series(arr), errors="coerce").to_numpy()
        bad = np.isnan(conv) & ~pd.isna(pd.Series(arr)).to_numpy()
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise InvalidValueError(
                f"{bad.sum()} non-numeric {what} value(s), first at row {first}: {arr[first]!r}; "
                f"clean the {what} column or convert it to numbers"
            )
        arr = conv
    arr = arr.astype(np.float64, copy=False)
    if arr.size and not np.isfinite(arr).all():
        bad = ~np.isfinite(arr)
        raise InvalidValueError(
            f"{int(bad.sum())} NaN or infinite {what} value(s) at {_rows(bad)}; "
            "drop or fill them before building interactions"
        )
    if arr.size and (np.abs(arr) > VALUE_LIMIT).any():
        bad = np.abs(arr) > VALUE_LIMIT
        raise InvalidValueError(
            f"{int(bad.sum())} {what} value(s) beyond +-{VALUE_LIMIT:.3g} (they would be stored as infinite), "
            f"at {_rows(bad)}, e.g. {arr[bad][0]:g}; fix or drop those rows"
        )
    return arr


def _rows(bad: np.ndarray, limit: int = 5) -> str:
    """``"row 3"`` / ``"rows 3, 7, ... (12 in all)"``: the 0-based positions of the ``True`` entries of ``bad``."""
    pos = np.flatnonzero(bad)
    shown = ", ".join(str(int(x)) for x in pos[:limit])
    more = f", ... ({len(pos)} in all)" if len(pos) > limit else ""
    return f"row{'s' if len(pos) > 1 else ''} {shown}{more}"


@dataclass(frozen=True, eq=False)
class Interactions:
    """User x item interactions.

    Attributes
    ----------
    matrix
        ``scipy.sparse.csr_matrix`` of shape ``(n_users, n_items)``, float32, sorted indices, no
        duplicate entries.  Values are ratings (explicit) or weights/counts (implicit).
    user_ids, item_ids
        :class:`IdMap` from raw ids to row / column indices.
    timestamps
        Optional int64 array aligned with ``matrix.data`` (seconds since the epoch).
    explicit
        ``True`` when values are ratings, ``False`` for implicit feedback.
    """

    matrix: sp.csr_matrix
    user_ids: IdMap
    item_ids: IdMap
    timestamps: np.ndarray | None = None
    explicit: bool = True
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        m = self.matrix
        if not sp.issparse(m) or m.format != "csr":
            raise DataError("Interactions.matrix must be a scipy CSR matrix")
        if m.shape != (len(self.user_ids), len(self.item_ids)):
            raise DataError(
                f"matrix shape {m.shape} does not match the id maps "
                f"({len(self.user_ids)} users, {len(self.item_ids)} items)"
            )
        if self.timestamps is not None and len(self.timestamps) != m.nnz:
            raise DataError("timestamps must be aligned with matrix.data (one per stored entry)")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_arrays(
        cls,
        users: Any,
        items: Any,
        ratings: Any | None = None,
        timestamps: Any | None = None,
        *,
        user_ids: IdMap | None = None,
        item_ids: IdMap | None = None,
        explicit: bool | None = None,
        duplicates: Duplicates = "raise",
        unknown: Unknown = "raise",
    ) -> Interactions:
        """Build from parallel arrays of raw ids (vectorised; 1M rows in about a second).

        Parameters
        ----------
        users, items
            Raw ids, one per interaction.
        ratings
            Values; ``None`` means implicit feedback with value 1.
        timestamps
            Optional times (int seconds, or anything ``pandas.to_datetime`` understands).
        user_ids, item_ids
            Existing id maps to index into (e.g. the full dataset's); by default built from the data.
        duplicates
            What to do with repeated (user, item) pairs: ``"raise"`` (default), keep the ``"first"`` or
            ``"last"`` (by timestamp, else row order), or aggregate by ``"sum"``, ``"mean"``, ``"max"``.
            Merged rows are reported through a :class:`DataWarning`.
        unknown
            With given id maps, ``"raise"`` on ids they do not know, or ``"drop"`` those rows (reported).
        """
        users = np.asarray(users)
        items = np.asarray(items)
        n = len(users)
        if n == 0:
            raise EmptyDataError("no interactions given; the input holds no rows")
        if len(items) != n:
            raise DataError(f"users ({n}) and items ({len(items)}) differ in length")
        if ratings is None:
            values = np.ones(n, dtype=np.float64)
            explicit = False if explicit is None else explicit
        else:
            values = _numeric(ratings, "rating")
            if len(values) != n:
                raise DataError(f"ratings ({len(values)}) and users ({n}) differ in length")
            explicit = True if explicit is None else explicit
        ts = None if timestamps is None else _to_epoch_seconds(timestamps)
        if ts is not None and len(ts) != n:
            raise DataError(f"timestamps ({len(ts)}) and users ({n}) differ in length")
        if ratings is not None and explicit:
            _check_rating_scale(values)
        if ts is not None:
            _check_times(ts)

        if user_ids is None:
            user_ids, u = IdMap.factorize(users)
        else:
            u = user_ids.to_index(users, missing="ignore" if unknown == "drop" else "raise")
        if item_ids is None:
            item_ids, i = IdMap.factorize(items)
        else:
            i = item_ids.to_index(items, missing="ignore" if unknown == "drop" else "raise")
        keep = (u >= 0) & (i >= 0)
        if not keep.all():
            warnings.warn(
                f"dropped {int((~keep).sum())} of {n} rows whose user or item id is unknown (unknown='drop')",
                DataWarning,
                stacklevel=2,
            )
            u, i, values = u[keep], i[keep], values[keep]
            ts = None if ts is None else ts[keep]
            if len(u) == 0:
                raise EmptyDataError("every row had an unknown id; nothing is left")

        n_users, n_items = len(user_ids), len(item_ids)
        key = u * n_items + i
        if ts is not None:
            order = np.lexsort((ts, key))  # by key, then time
        else:
            order = np.argsort(key, kind="stable")
        key, values = key[order], values[order]
        ts = None if ts is None else ts[order]
        first = np.ones(len(key), dtype=bool)
        first[1:] = key[1:] != key[:-1]
        n_dup = int(len(key) - first.sum())
        if n_dup:
            if duplicates == "raise":
                dk = key[~first][:3]
                pairs = [(user_ids.to_id([k // n_items])[0], item_ids.to_id([k % n_items])[0]) for k in dk]
                raise DuplicateInteractionError(
                    f"{n_dup} duplicate (user, item) row(s), e.g. {pairs}; pass duplicates="
                    "'last', 'first', 'sum', 'mean' or 'max' to merge them"
                )
            starts = np.flatnonzero(first)
            if duplicates == "first":
                sel = starts
                values = values[sel]
            elif duplicates == "last":
                sel = np.append(starts[1:], len(key)) - 1
                values = values[sel]
            else:
                ufunc = {"sum": np.add, "max": np.maximum, "mean": np.add}[duplicates]
                agg = ufunc.reduceat(values, starts)
                if duplicates == "mean":
                    agg = agg / np.diff(np.append(starts, len(key)))
                sel = np.append(starts[1:], len(key)) - 1  # latest timestamp of the group
                values = agg
            key = key[sel]
            ts = None if ts is None else ts[sel]
            warnings.warn(
                f"merged {n_dup} duplicate (user, item) row(s) with duplicates={duplicates!r}",
                DataWarning,
                stacklevel=2,
            )
        rows = key // n_items
        cols = (key % n_items).astype(np.int32)
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n_users), out=indptr[1:])
        matrix = sp.csr_matrix((values.astype(np.float32), cols, indptr), shape=(n_users, n_items))
        matrix.has_sorted_indices = True
        return cls(matrix, user_ids, item_ids, ts, bool(explicit))

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        *,
        user: str | None = None,
        item: str | None = None,
        rating: str | Literal[False] | None = None,
        timestamp: str | Literal[False] | None = None,
        **kwargs: Any,
    ) -> Interactions:
        """Build from a DataFrame.

        Column names are found automatically among common spellings (``user``, ``userId``,
        ``item``, ``movieId``, ``rating``, ``timestamp``, ...) unless given.  Pass
        ``rating=False`` for implicit data even when a rating column exists.
        """
        cols = [str(c) for c in frame.columns]
        if len(frame) == 0:
            raise EmptyDataError("the table has no rows; nothing to build interactions from")
        ucol = _pick(cols, user, USER_COLUMNS, "user", True)
        icol = _pick(cols, item, ITEM_COLUMNS, "item", True)
        rcol = None if rating is False else _pick(cols, rating or None, RATING_COLUMNS, "rating", False)
        tcol = None if timestamp is False else _pick(cols, timestamp or None, TIME_COLUMNS, "timestamp", False)
        return cls.from_arrays(
            frame[ucol].to_numpy(),
            frame[icol].to_numpy(),
            None if rcol is None else frame[rcol].to_numpy(),
            None if tcol is None else frame[tcol].to_numpy(),
            **kwargs,
        )

    # ------------------------------------------------------------------ properties
    @property
    def shape(self) -> tuple[int, int]:
        """``(n_users, n_items)`` of the CSR matrix."""
        return self.matrix.shape  # type: ignore[return-value]

    @property
    def n_users(self) -> int:
        """Number of users (rows)."""
        return int(self.matrix.shape[0])

    @property
    def n_items(self) -> int:
        """Number of items (columns)."""
        return int(self.matrix.shape[1])

    @property
    def nnz(self) -> int:
        """Number of stored interactions."""
        return int(self.matrix.nnz)

    def __len__(self) -> int:
        return self.nnz

    def __repr__(self) -> str:
        kind = "explicit" if self.explicit else "implicit"
        return (
            f"Interactions({self.n_users} users x {self.n_items} items, {self.nnz} {kind} entries"
            f"{', timestamped' if self.timestamps is not None else ''})"
        )

    def row_indices(self) -> np.ndarray:
        """User index of every stored entry (aligned with ``matrix.data``)."""
        return np.repeat(np.arange(self.n_users, dtype=np.int64), np.diff(self.matrix.indptr))

    def item_counts(self) -> np.ndarray:
        """Number of interactions per item (popularity)."""
        return np.bincount(self.matrix.indices, minlength=self.n_items)

    def user_counts(self) -> np.ndarray:
        """Number of interactions per user."""
        return np.diff(self.matrix.indptr)

    # ------------------------------------------------------------------ transformations
    def select(self, entries: np.ndarray) -> Interactions:
        """Keep the stored entries given by a boolean mask or index array (same id maps)."""
        entries = np.asarray(entries)
        mask = entries if entries.dtype == bool else np.isin(np.arange(self.nnz), entries)
        if len(mask) != self.nnz:
            raise DataError("the entry mask must have one value per stored interaction")
        rows = self.row_indices()[mask]
        indptr = np.zeros(self.n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=self.n_users), out=indptr[1:])
        m = sp.csr_matrix((self.matrix.data[mask], self.matrix.indices[mask], indptr), shape=self.shape)
        m.has_sorted_indices = True
        ts = None if self.timestamps is None else self.timestamps[mask]
        return Interactions(m, self.user_ids, self.item_ids, ts, self.explicit, dict(self.meta))

    def binarize(self, threshold: float | None = None) -> Interactions:
        """Implicit copy: entries with value >= ``threshold`` (all when ``None``) become 1."""
        base = self if threshold is None else self.select(self.matrix.data >= threshold)
        m = base.matrix.copy()
        m.data = np.ones_like(m.data)
        return Interactions(m, base.user_ids, base.item_ids, base.timestamps, False, dict(self.meta))

    def reindex(self, user_ids: IdMap, item_ids: IdMap) -> Interactions:
        """Express these interactions in larger id maps (every current id must be present)."""
        u = user_ids.to_index(self.user_ids.ids)[self.row_indices()]
        i = item_ids.to_index(self.item_ids.ids)[self.matrix.indices]
        return Interactions.from_arrays(
            user_ids.to_id(u),
            item_ids.to_id(i),
            self.matrix.data,
            self.timestamps,
            user_ids=user_ids,
            item_ids=item_ids,
            explicit=self.explicit,
        )

    @staticmethod
    def concat(parts: Sequence[Interactions]) -> Interactions:
        """Union of interactions that share id maps (duplicates raise)."""
        if not parts:
            raise EmptyDataError("nothing to concatenate")
        first = parts[0]
        for p in parts[1:]:
            if p.user_ids is not first.user_ids and p.user_ids != first.user_ids:
                raise DataError("concat needs interactions with the same user IdMap; reindex first")
            if p.item_ids is not first.item_ids and p.item_ids != first.item_ids:
                raise DataError("concat needs interactions with the same item IdMap; reindex first")
        rows = np.concatenate([p.row_indices() for p in parts])
        cols = np.concatenate([p.matrix.indices for p in parts])
        vals = np.concatenate([p.matrix.data for p in parts])
        has_ts = all(p.timestamps is not None for p in parts)
        ts = np.concatenate([p.timestamps for p in parts]) if has_ts else None  # type: ignore[misc]
        return Interactions.from_arrays(
            first.user_ids.to_id(rows),
            first.item_ids.to_id(cols),
            vals,
            ts,
            user_ids=first.user_ids,
            item_ids=first.item_ids,
            explicit=first.explicit,
        )

    def to_frame(self, raw_ids: bool = True) -> pd.DataFrame:
        """Long table with columns user, item, rating (and timestamp)."""
        import pandas as pd

        rows, cols = self.row_indices(), self.matrix.indices.astype(np.int64)
        data: dict[str, Any] = {
            "user": self.user_ids.to_id(rows) if raw_ids else rows,
            "item": self.item_ids.to_id(cols) if raw_ids else cols,
            "rating": self.matrix.data,
        }
        if self.timestamps is not None:
            data["timestamp"] = self.timestamps
        return pd.DataFrame(data)

    def fingerprint(self) -> str:
        """sha256 of the matrix structure and values (identifies training data in bundles)."""
        h = hashlib.sha256()
        for arr in (self.matrix.indptr, self.matrix.indices, self.matrix.data):
            h.update(np.ascontiguousarray(arr).tobytes())
        h.update(str(self.shape).encode())
        return h.hexdigest()


#: a rating farther than this many times the span of the central 90% of the ratings beyond that span is an error
OUTLIER_SPANS = 1.0


def _check_rating_scale(values: np.ndarray) -> None:
    """Ratings must lie on one scale (issue 21).

    * A rating far outside the scale the others span -- beyond the central 90% (5th to 95th percentile) by more
      than that span again, e.g. -5 or 99 among ratings 1-5 -- is refused with its rows named
      (:class:`InvalidValueError`): a typo or a sentinel would pull every bias and mean with it.
    * A rating of 0 where every other rating is positive (1-5) is kept, with a :class:`DataWarning` that says so:
      0 is a valid rating on some scales, but "not rated" in many files.
    """
    if values.size < 2:
        return
    # taken inwards (the next value inside), so that one typo among ten ratings does not widen the scale itself
    lo = float(np.percentile(values, 5, method="higher"))
    hi = float(np.percentile(values, 95, method="lower"))
    span = max(hi - lo, 1.0)
    bad = (values < lo - OUTLIER_SPANS * span) | (values > hi + OUTLIER_SPANS * span)
    if values.size >= 10 and bad.any():
        raise InvalidValueError(
            f"{int(bad.sum())} rating(s) far outside the scale of the others ({lo:g} to {hi:g} for 90% of them) at "
            f"{_rows(bad)}, e.g. {values[bad][0]:g}; fix or drop those rows (or, for counts or weights, load the "
            "data as implicit feedback)"
        )
    zero = values == 0
    if zero.any() and not zero.all() and (values[~zero] > 0).all():
        warnings.warn(
            f"{int(zero.sum())} rating(s) of 0 at {_rows(zero)} while the other ratings lie in "
            f"[{values[~zero].min():g}, {values.max():g}]: kept as ratings of 0 (below the scale); if 0 means "
            "'not rated' in this file, drop those rows",
            DataWarning,
            stacklevel=3,
        )


def _check_times(ts: np.ndarray) -> None:
    """Negative timestamps are kept as times before 1970-01-01, with a :class:`DataWarning` that says so (a
    timestamp of -1 is often a 'missing' sentinel)."""
    neg = ts < 0
    if neg.any():
        warnings.warn(
            f"{int(neg.sum())} negative timestamp(s) at {_rows(neg)}, e.g. {int(ts[neg][0])}: taken as seconds "
            "before 1970-01-01; if they mark missing times, drop those rows or the timestamp column",
            DataWarning,
            stacklevel=3,
        )


def _to_epoch_seconds(values: Any) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind in "uf" and arr.size:
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            bad = ~np.isfinite(arr)
            raise InvalidValueError(
                f"{int(bad.sum())} NaN or infinite timestamp(s) at {_rows(bad)}; fill or drop them first"
            )
        bad = (arr >= TIME_LIMIT) if arr.dtype.kind == "u" else (np.abs(arr) >= TIME_LIMIT)
        if bad.any():
            raise InvalidValueError(
                f"{int(bad.sum())} timestamp(s) beyond +-2^63 seconds at {_rows(bad)}, e.g. {arr[bad][0]:g}; "
                "timestamps are seconds since 1970-01-01 (convert milliseconds or dates first)"
            )
    if arr.dtype.kind in "iuf":
        return arr.astype(np.int64)
    import pandas as pd

    if arr.dtype.kind == "M":
        return arr.astype("datetime64[s]").astype(np.int64)
    try:
        parsed = pd.to_datetime(pd.Series(arr), utc=True)
    except (ValueError, TypeError) as exc:
        raise InvalidValueError(f"timestamps could not be parsed ({exc}); give epoch seconds or ISO dates") from exc
    if parsed.isna().any():
        raise InvalidValueError("timestamps contain missing values; fill or drop them first")
    return ((parsed - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy().astype(np.int64)
