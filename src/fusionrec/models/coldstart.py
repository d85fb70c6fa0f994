"""The cold-start contract: new items from content, new users from a history or a profile, no refit.

Models that can place new entities without refitting implement one or both methods below (checked with
``isinstance(model, ItemColdStart)`` / ``isinstance(model, UserColdStart)``).  Both mutate the fitted model
and return the *indices* of the entities they placed, so the new ones are at once usable by ``score``,
``recommend``, ``similar_items``, ``save`` and serving.

``add_items(features) -> int64 [m]``
    ``features`` maps fitted modality names to ``float [m, d]`` rows (a missing modality, or an all-zero row,
    counts as missing and is imputed where the model supports that).  The new items get indices
    ``n_items_ .. n_items_ + m - 1``.  Implemented by ContentKNN, HybridMF, VBPR, DeepFusion, GraphFusion
    and ContentKRR.

``fold_in_user(items, values=None, *, user_features=None, user=None) -> int64 [1]``
    A new user (``user=None``: appended as index ``n_users_``) or a known one (``user=u``: re-placed) from the
    item indices they interacted with (``values`` weight them, default 1), and/or from profile attributes
    (``user_features``, for models fitted with user features: HybridMF).  Item factors stay fixed.
    Implemented by every registered model except TimeSVD++ (time-dependent biases), DeepFusion (its user tower
    is an embedding table: refit), UserKNN (a new user has no fitted neighbour list) and the ensembles:

    * exact solves of their own: ALS, ContentKNN, HybridMF, VBPR, GraphFusion;
    * the generic factor fold-in of :mod:`fusionrec.models.factors` (ridge for SVD, SVD++, NMF, PMF, BayesianFM
      and BiasBaseline; pairwise for BPR), declared once per model;
    * :class:`HistoryFoldIn` for models that score a user from their seen row (MostPopular, Random, ItemKNN,
      item-based KNNBaseline, EASE, CEASE, ActivityCEASE,
      ContentKRR).

``fold_in_users(histories) -> int64 [m]``
    Many new users at once (``histories``: ``(items, values)`` pairs), the same as ``fold_in_user`` for each in turn
    with one append (serving's bulk ingestion; declared ``can_batch_fold_in``): ALS, ContentKNN and the
    :class:`HistoryFoldIn` models.

Social models (:mod:`fusionrec.models.social`, :mod:`fusionrec.models.social_graph`) also take
``fold_in_user(..., friends=<known user indices>, friend_weights=None)``: a user with links but no history gets
the weighted mean vector of their placed friends (:func:`check_friends` is the link rule).

Raw ids: the placed entities get no raw id; name them with ``model.register_ids(users=[...], items=[...])`` to
use them with ``recommend_ids`` / ``similar_items_ids``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp

from fusionrec.errors import ConfigError, DataError

__all__ = [
    "HistoryFoldIn",
    "ItemColdStart",
    "UserColdStart",
    "append_seen_row",
    "check_friends",
    "check_history",
    "grow_seen",
    "history_row",
    "history_rows",
    "new_item_count",
    "place_new_users",
    "place_user",
]


@runtime_checkable
class ItemColdStart(Protocol):
    """A fitted model that makes new items recommendable from their content (module notes)."""

    def add_items(self, features: Mapping[str, np.ndarray]) -> np.ndarray: ...


@runtime_checkable
class UserColdStart(Protocol):
    """A fitted model that places a new user from a history and/or profile, without refitting (module notes)."""

    def fold_in_user(
        self,
        items: np.ndarray | Sequence[int],
        values: np.ndarray | None = None,
        *,
        user_features: dict[str, np.ndarray] | None = None,
        user: int | None = None,
    ) -> np.ndarray: ...


def check_history(
    items: np.ndarray | Sequence[int], values: np.ndarray | Sequence[float] | None, n_items: int, n_users: int,
    user: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Validate a history; return its unique item indices and their summed values (``int64``, ``float64``)."""
    idx = np.asarray(items, dtype=np.int64).ravel()
    vals = np.ones(len(idx)) if values is None else np.asarray(values, dtype=np.float64).ravel()
    if vals.shape != idx.shape:
        raise DataError(f"values must have one entry per item ({len(idx)}), got {vals.shape}")
    if not np.isfinite(vals).all():
        raise DataError("history values must be finite (no NaN or inf)")
    if idx.size and (idx.min() < 0 or idx.max() >= n_items):
        raise DataError(f"item index out of range (0..{n_items - 1}); add_items first for new items")
    if user is not None and not 0 <= int(user) < n_users:
        raise DataError(f"user index {user} out of range (0..{n_users - 1})")
    uniq, inv = np.unique(idx, return_inverse=True)
    weights = np.bincount(inv, weights=vals, minlength=len(uniq)) if idx.size else np.zeros(0)
    return uniq, weights


def new_item_count(features: Mapping[str, Any], fitted: Sequence[str]) -> int:
    """The number of new items in ``add_items(features)``: every modality given must be one of the ``fitted``
    ones and all must have as many rows, else :class:`DataError` (the one check of the item cold-start contract)."""
    names = list(fitted)
    unknown = sorted(set(features) - set(names))
    if unknown or not features:
        given = unknown or "(none)"
        raise DataError(f"add_items got features {given} the model was not fitted with; fitted modalities: {names}")
    sizes = {np.atleast_2d(np.asarray(v)).shape[0] for v in features.values()}
    if len(sizes) != 1:
        raise DataError(f"add_items needs the same number of rows in every modality, got {sorted(sizes)}")
    return int(sizes.pop())


def check_friends(
    friends: np.ndarray | Sequence[int], weights: np.ndarray | Sequence[float] | None, n_users: int,
    user: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Validate a new user's links to known users; return their unique indices and weights (``int64``, ``float64``).

    The rule of the social models' trust links (:func:`fusionrec.models.social.clean_trust`): indices must be
    known users (``0..n_users - 1``) and weights finite and non-negative, else :class:`DataError`; a link to
    ``user`` itself and zero weights are dropped; duplicates are merged keeping the largest weight.
    """
    idx = np.asarray(friends, dtype=np.int64).ravel()
    vals = np.ones(len(idx)) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if vals.shape != idx.shape:
        raise DataError(f"friend weights must have one entry per friend ({len(idx)}), got {vals.shape}")
    if not np.isfinite(vals).all() or (vals < 0).any():
        raise DataError("friend weights must be finite and non-negative (distrust is not modelled): drop those links")
    if idx.size and (idx.min() < 0 or idx.max() >= n_users):
        raise DataError(
            f"friend index out of range (0..{n_users - 1}): links must point to known users; place the friend first"
        )
    keep = vals > 0
    if user is not None:
        keep &= idx != int(user)
    idx, vals = idx[keep], vals[keep]
    uniq, inv = np.unique(idx, return_inverse=True)
    merged = np.zeros(len(uniq))
    np.maximum.at(merged, inv, vals)
    return uniq, merged


def grow_seen(seen: sp.csr_matrix, n_users: int, n_items: int) -> sp.csr_matrix:
    """``seen`` padded with empty rows and columns to ``n_users x n_items``."""
    seen = sp.csr_matrix(seen)
    indptr = np.concatenate([seen.indptr, np.full(n_users - seen.shape[0], seen.indptr[-1])])
    return sp.csr_matrix((seen.data, seen.indices, indptr), shape=(n_users, n_items))


def append_seen_row(seen: sp.csr_matrix, items: np.ndarray, values: np.ndarray, row: int | None) -> sp.csr_matrix:
    """``seen`` with ``row`` replaced by (or, when ``None``, a new last row holding) ``items`` / ``values``.

    A new matrix (readers may hold ``seen``), built in one pass over its arrays: the served write path calls this
    once per event, so slicing and stacking (four copies of every stored interaction) would be its cost.
    """
    seen = sp.csr_matrix(seen)
    new = sp.csr_matrix(
        (values.astype(seen.dtype), items.astype(np.int32), np.array([0, len(items)])), shape=(1, seen.shape[1])
    )
    new.sum_duplicates()  # sorted, unique
    if row is None:
        lo = hi = int(seen.indptr[-1])
        indptr = np.concatenate([seen.indptr, [lo + new.nnz]])
        n_rows = seen.shape[0] + 1
    else:
        lo, hi = int(seen.indptr[row]), int(seen.indptr[row + 1])
        indptr = seen.indptr.copy()
        indptr[row + 1 :] += new.nnz - (hi - lo)
        n_rows = seen.shape[0]
    indices = np.concatenate([seen.indices[:lo], new.indices.astype(seen.indices.dtype), seen.indices[hi:]])
    data = np.concatenate([seen.data[:lo], new.data, seen.data[hi:]])
    out = sp.csr_matrix((data, indices, indptr), shape=(n_rows, seen.shape[1]))
    if not seen.has_sorted_indices:
        out.sort_indices()
    return out


def history_row(items: np.ndarray, weights: np.ndarray, n_items: int) -> sp.csr_matrix:
    """A ``1 x n_items`` float32 CSR row from :func:`check_history`'s output."""
    return sp.csr_matrix(
        (weights.astype(np.float32), items.astype(np.int32), np.array([0, len(items)])), shape=(1, n_items)
    )


def history_rows(checked: Sequence[tuple[np.ndarray, np.ndarray]], n_items: int) -> sp.csr_matrix:
    """An ``m x n_items`` float32 CSR of :func:`check_history` outputs, one row per history."""
    indptr = np.concatenate([[0], np.cumsum([len(i) for i, _ in checked])]).astype(np.int64)
    items = np.concatenate([i for i, _ in checked]) if checked else np.empty(0, np.int64)
    weights = np.concatenate([w for _, w in checked]) if checked else np.empty(0)
    return sp.csr_matrix((weights.astype(np.float32), items.astype(np.int32), indptr), shape=(len(checked), n_items))


def place_new_users(model: Any, rows: Mapping[str, np.ndarray], seen_rows: sp.csr_matrix) -> np.ndarray:
    """Append many new users at once: each ``model.<name>`` gets the block ``rows[name]`` (one row per user) and
    ``seen_`` the rows ``seen_rows``; returns their indices, ``int64 [m]`` (the return value of ``fold_in_users``)."""
    m = seen_rows.shape[0]
    for name, block in rows.items():
        current = getattr(model, name)
        setattr(
            model, name, np.concatenate([current, np.asarray(block, current.dtype).reshape((m, *current.shape[1:]))])
        )
    seen = sp.csr_matrix(model.seen_)
    model.seen_ = sp.vstack([seen, seen_rows.astype(seen.dtype)], format="csr")
    start = int(model.n_users_)
    model.n_users_ = start + m
    return np.arange(start, start + m, dtype=np.int64)


def place_user(
    model: Any, rows: Mapping[str, np.ndarray], items: np.ndarray, weights: np.ndarray, user: int | None
) -> np.ndarray:
    """Store a placed user: each ``model.<name>`` gets ``rows[name]`` as the user's row and ``seen_`` the history.

    ``user=None`` appends (a new user, ``n_users_`` grows); otherwise row ``user`` is replaced.  Returns the
    user's index as ``int64 [1]`` (the return value of ``fold_in_user``).
    """
    if user is None:
        for name, row in rows.items():
            current = getattr(model, name)
            block = np.asarray(row, current.dtype).reshape((1, *current.shape[1:]))
            setattr(model, name, np.concatenate([current, block]))
        model.seen_ = append_seen_row(model.seen_, items, weights, None)
        model.n_users_ += 1
        return np.array([model.n_users_ - 1], dtype=np.int64)
    u = int(user)
    for name, row in rows.items():
        getattr(model, name)[u] = row
    model.seen_ = append_seen_row(model.seen_, items, weights, u)
    return np.array([u], dtype=np.int64)


class HistoryFoldIn:
    """``fold_in_user`` for models that score a user from their seen row (popularity, EASE, item k-NN).

    The history becomes the user's row of ``seen_`` (appended or replaced); models that keep other per-user
    state derived from the row (rating-mode k-NN residuals, user means) extend :meth:`_history_user_row`.
    """

    #: declared capabilities (fusionrec.models.declaration)
    can_fold_in: ClassVar[bool] = True
    can_batch_fold_in: ClassVar[bool] = True
    n_users_: int
    n_items_: int
    seen_: sp.csr_matrix

    if TYPE_CHECKING:  # provided by Recommender

        def _check_fitted(self) -> None: ...

    def fold_in_user(
        self,
        items: np.ndarray | Sequence[int],
        values: np.ndarray | None = None,
        *,
        user_features: dict[str, np.ndarray] | None = None,
        user: int | None = None,
    ) -> np.ndarray:
        """Place a new user (``user=None``) or re-place user ``user`` from their history; returns ``int64 [1]``.

        The cold-start contract of this module: the model scores the user from the history row alone.
        """
        self._check_fitted()
        if user_features is not None:
            raise ConfigError(
                f"{type(self).__name__} has no user features; use HybridMF(user_features=...) for profile-only users"
            )
        uniq, weights = check_history(items, values, self.n_items_, self.n_users_, user)
        self._before_history_fold_in(user)
        return place_user(self, self._history_user_row(uniq, weights, user), uniq, weights, user)

    def fold_in_users(self, histories: Sequence[tuple[np.ndarray, np.ndarray | None]]) -> np.ndarray:
        """Place many new users at once, as ``fold_in_user(items, values)`` for each ``(items, values)`` in turn,
        with one append of ``seen_`` (serving's bulk ingestion); returns their indices, ``int64 [m]``."""
        self._check_fitted()
        checked = [check_history(i, v, self.n_items_, self.n_users_) for i, v in histories]
        if not checked:
            return np.empty(0, np.int64)
        self._before_history_fold_in(None)
        blocks: dict[str, list[np.ndarray]] = {}
        for items, weights in checked:  # in turn: a model may append its own per-user rows here (k-NN residuals)
            for name, row in self._history_user_row(items, weights, None).items():
                blocks.setdefault(name, []).append(np.asarray(row))
        return place_new_users(self, {k: np.stack(v) for k, v in blocks.items()}, history_rows(checked, self.n_items_))

    def _before_history_fold_in(self, user: int | None) -> None:
        """Refuse the fold-in when the model cannot score a new row (raise :class:`ConfigError`)."""

    def _history_user_row(self, items: np.ndarray, values: np.ndarray, user: int | None) -> dict[str, np.ndarray]:
        """Rows of the other per-user learned arrays for the placed user (keyed by attribute name)."""
        return {}
