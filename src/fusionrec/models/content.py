"""Content-based k-NN: cosine similarity of item features, user profiles from the items they rated.

Shapes: ``U`` users, ``I`` items, ``D`` the concatenated feature width.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from fusionrec._similarity import normalize_rows
from fusionrec.data.interactions import Interactions
from fusionrec.data.side import fuse_modalities
from fusionrec.errors import ConfigError, DataError
from fusionrec.models._params import MODALITY_NAMES, MODALITY_WEIGHTS, Interval, Options
from fusionrec.models.base import Recommender, SideInfo
from fusionrec.models.coldstart import (
    check_history,
    history_row,
    history_rows,
    new_item_count,
    place_new_users,
    place_user,
)
from fusionrec.models.declaration import ROWS, Indexed

__all__ = ["ContentKNN", "fused_side_features"]


def fuse_new_items(
    features: dict[str, np.ndarray], widths: dict[str, int], modality_weights: dict[str, float] | None
) -> np.ndarray:
    """New items' ``{modality: [m, d]}`` rows fused as at fit time (``widths``: the fitted modalities in order and
    their widths); a fitted modality left out is missing, a zero block (its part of a cosine is zero, like a zero
    row at fit).  Raises :class:`DataError` for unknown modalities, unequal row counts or wrong widths."""
    names = list(widths)
    m = new_item_count(features, names)
    full = {
        k: np.atleast_2d(np.asarray(features[k], np.float32)) if k in features else np.zeros((m, widths[k]), np.float32)
        for k in names
    }  # fmt: skip
    for k in names:
        if full[k].shape != (m, widths[k]):
            raise DataError(f"add_items: {k!r} must be [{m}, {widths[k]}], got {full[k].shape}")
    return fuse_modalities(full, names, modality_weights=modality_weights, impute="zero")[0]


def fused_side_features(
    side: SideInfo | None,
    modalities: list[str] | None,
    modality_weights: dict[str, float] | None,
    n_items: int,
    model: str,
    hint: str = "",
) -> tuple[list[str], np.ndarray]:
    """The modality names used (given, or all sorted) and ``side``'s item features fused by
    :func:`~fusionrec.data.side.fuse_modalities` (zero imputation: a missing modality adds nothing).

    Raises :class:`ConfigError` when there are no item features and :class:`DataError` when the rows do not
    match the ``n_items`` of the training id map.
    """
    if side is None or not side.item_features:
        raise ConfigError(
            f"{model} needs item features: fit(train, side) with side.item_features, e.g. from "
            f"fusionrec.features.build_side_info(dataset){hint}"
        )
    names = list(modalities) if modalities is not None else sorted(side.item_features)
    if not names:
        raise ConfigError(f"{model} needs at least one item feature modality")
    fused = fuse_modalities(side.item_features, names, modality_weights=modality_weights, impute="zero")[0]
    if fused.shape[0] != n_items:
        raise DataError(
            f"item features have {fused.shape[0]} rows for {n_items} items; align them with the train id map"
        )
    return names, fused


class ContentKNN(Recommender):
    """Content-based recommender: a user's profile is the weighted mean of the features of the items they rated.

    Item vectors ``x_i`` come from :func:`~fusionrec.data.side.fuse_modalities` over ``SideInfo.item_features``
    (one or several modalities, per-modality L2 normalisation, ``modality_weights``).  The profile of user ``u`` is
    ``p_u = sum_{i in I_u} w_ui x_i / sum |w_ui|`` and the score ``s_ui = cos(p_u, x_i)``, where ``w_ui`` is 1
    (``weighting="none"``), the rating (``"rating"``), or the rating minus the user's mean rating
    (``"centered"``, Rocchio-style: disliked items push away).  Only items rated ``>= min_rating`` count when it
    is set.  Items with features but no training interactions (cold items) are scored like any other, which
    is the point of this model; :meth:`add_items` appends new ones after fitting.  ``similar_items`` ranks by
    the cosine of the fused vectors.

    Parameters
    ----------
    modalities
        Names in ``SideInfo.item_features`` to use (default: all, sorted by name).
    modality_weights
        Per-modality weight ``w_m`` (default 1).
    weighting
        ``"rating"`` (default), ``"centered"`` or ``"none"``.
    min_rating
        Ignore training entries below this value (``None``: use all).
    """

    uses_side_info = True
    modality_param = "modalities"
    can_fold_in = True
    can_batch_fold_in = True
    can_add_items = True
    user_state: ClassVar[Mapping[str, Indexed]] = {"profiles_": ROWS}
    item_state: ClassVar[Mapping[str, Indexed]] = {"items_": ROWS}
    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        "modalities": [*MODALITY_NAMES],
        "modality_weights": [*MODALITY_WEIGHTS],
        "weighting": [Options(("rating", "centered", "none"))],
        "min_rating": [Interval(float, None, None), None],
    }

    def __init__(
        self,
        *,
        modalities: list[str] | None = None,
        modality_weights: dict[str, float] | None = None,
        weighting: str = "rating",
        min_rating: float | None = None,
    ) -> None:
        self.modalities = modalities
        self.modality_weights = modality_weights
        self.weighting = weighting
        self.min_rating = min_rating

    def _fit(self, train: Interactions, side: SideInfo | None) -> None:
        names, items = fused_side_features(side, self.modalities, self.modality_weights, train.n_items, "ContentKNN")
        assert side is not None
        self.modalities_ = np.array(names, dtype=str)
        self.modality_dims_ = np.array([np.asarray(side.item_features[n]).shape[1] for n in names], dtype=np.int64)
        self.items_ = items
        if self.min_rating is not None and not (train.matrix.data >= float(self.min_rating)).any():
            raise DataError(
                f"ContentKNN(min_rating={self.min_rating}) leaves no training entry (the values run from "
                f"{train.matrix.data.min():g} to {train.matrix.data.max():g}): every profile would be empty; lower "
                f"min_rating or set it to None"
            )
        self.profiles_ = self._profiles(train.matrix)

    def _entry_weights(self, m: sp.csr_matrix) -> sp.csr_matrix:
        w = m.astype(np.float32).tocsr(copy=True)
        if self.min_rating is not None:
            w.data = np.where(m.data >= float(self.min_rating), w.data, 0.0).astype(np.float32)
        if self.weighting == "none":
            w.data = (w.data != 0).astype(np.float32)
        elif self.weighting == "centered":
            counts = np.maximum(np.diff(w.indptr), 1)
            means = np.asarray(w.sum(1)).ravel() / counts
            w.data = w.data - np.repeat(means, np.diff(w.indptr)).astype(np.float32)
            # a user whose ratings are all equal keeps uniform weights instead of none
            flat = np.repeat(np.abs(np.asarray(w.multiply(w).sum(1)).ravel()) < 1e-12, np.diff(w.indptr))
            w.data[flat] = 1.0
        w.eliminate_zeros()
        return w

    def _profiles(self, m: sp.csr_matrix) -> np.ndarray:
        w = self._entry_weights(m)
        total = np.asarray(np.abs(w).sum(1)).ravel()
        prof = np.asarray(w @ self.items_, dtype=np.float32) / np.maximum(total, 1e-12)[:, None].astype(np.float32)
        return normalize_rows(prof)

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        self._check_fitted()
        users = np.atleast_1d(np.asarray(users, dtype=np.int64))
        cand = self.items_ if items is None else self.items_[np.asarray(items, dtype=np.int64)]
        return np.asarray(self.profiles_[users] @ cand.T, dtype=np.float32)

    def item_embeddings(self) -> np.ndarray:
        self._check_fitted()
        return self.items_

    def user_profile(self, row: sp.csr_matrix | np.ndarray) -> np.ndarray:
        """Profile ``float32 [D]`` of a user from a ``1 x n_items`` (sparse or dense) rating row; nothing stored."""
        self._check_fitted()
        m = sp.csr_matrix(row, dtype=np.float32)
        if m.shape != (1, self.n_items_):
            raise DataError(f"the rating row must have shape (1, {self.n_items_})")
        return self._profiles(m)[0]

    def fold_in_user(
        self,
        items: np.ndarray | Sequence[int],
        values: np.ndarray | None = None,
        *,
        user_features: dict[str, np.ndarray] | None = None,
        user: int | None = None,
    ) -> np.ndarray:
        """Place a new user (``user=None``) or re-place user ``user`` from their history; returns ``int64 [1]``.

        The cold-start contract of :mod:`fusionrec.models.coldstart`; ``values`` are ratings (default 1),
        weighted as in :meth:`fit`.  Items added by :meth:`add_items` may be in the history.
        """
        self._check_fitted()
        if user_features is not None:
            raise ConfigError("ContentKNN profiles come from item content only; user_features are not used")
        uniq, weights = check_history(items, values, self.n_items_, self.n_users_, user)
        prof = self._profiles(history_row(uniq, weights, self.n_items_))[0]
        return place_user(self, {"profiles_": prof}, uniq, weights, user)

    def fold_in_users(self, histories: Sequence[tuple[np.ndarray, np.ndarray | None]]) -> np.ndarray:
        """Place many new users at once, as :meth:`fold_in_user` for each ``(items, values)`` in turn, with one
        profile computation and one append (serving's bulk ingestion); returns their indices, ``int64 [m]``."""
        self._check_fitted()
        checked = [check_history(i, v, self.n_items_, self.n_users_) for i, v in histories]
        if not checked:
            return np.empty(0, np.int64)
        rows = history_rows(checked, self.n_items_)
        return place_new_users(self, {"profiles_": self._profiles(rows)}, rows)

    def _modality_widths(self) -> dict[str, int]:
        return dict(zip(self.modalities_.tolist(), self.modality_dims_.tolist(), strict=True))

    def add_items(self, features: dict[str, np.ndarray] | np.ndarray) -> np.ndarray:
        """Append new items (cold start) and return their indices.

        ``features`` maps fitted modality names to ``[m, d_modality]`` rows (normalised and weighted as at
        fit time; a modality left out is missing and contributes nothing), or is an already fused ``[m, D]`` matrix.
        """
        self._check_fitted()
        if isinstance(features, dict):
            new = fuse_new_items(features, self._modality_widths(), self.modality_weights)
        else:
            new = np.asarray(features, dtype=np.float32)
        if new.ndim != 2 or new.shape[1] != self.items_.shape[1]:
            raise DataError(f"new item features must be [m, {self.items_.shape[1]}], got {new.shape}")
        start = self.n_items_
        self.items_ = np.vstack([self.items_, new]).astype(np.float32)
        self.n_items_ = self.items_.shape[0]
        seen = sp.csr_matrix(self.seen_)
        self.seen_ = sp.csr_matrix((seen.data, seen.indices, seen.indptr), shape=(seen.shape[0], self.n_items_))
        return np.arange(start, self.n_items_, dtype=np.int64)
