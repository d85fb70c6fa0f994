"""ContentKRR: cold items scored by kernel ridge regression from item content to collaborative targets.

Shapes: ``U`` users, ``I`` items, ``W`` the warm items (those with training interactions), ``D`` the fused
feature width.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from fusionrec._similarity import normalize_rows
from fusionrec.data.interactions import Interactions
from fusionrec.errors import DataError
from fusionrec.models._params import BOOL, MODALITY_NAMES, MODALITY_WEIGHTS, NONNEGATIVE, POSITIVE
from fusionrec.models.base import SideInfo
from fusionrec.models.coldstart import grow_seen
from fusionrec.models.declaration import ROWS, SQUARE, Indexed
from fusionrec.models.linear import LinearItemModel, check_dense_memory, ease_gram, ease_solve

__all__ = ["ContentKRR", "content_kernel"]


def content_kernel(a: np.ndarray, b: np.ndarray, gamma: float) -> np.ndarray:
    """``exp(gamma * (cos(a_i, b_j) - 1))`` between the rows of ``a`` and ``b`` (``float64 [len(a), len(b)]``).

    Rows are L2-normalised here; an all-zero row (no content) has cosine 0 with every row.
    """
    a = normalize_rows(np.asarray(a, np.float64), np.float64)
    b = normalize_rows(np.asarray(b, np.float64), np.float64)
    return np.exp(float(gamma) * (a @ b.T - 1.0))


class ContentKRR(LinearItemModel):
    """Item cold start by kernel ridge regression from content to each user's collaborative preferences.

    For every user ``u`` the targets on the warm items ``W`` (items with training interactions) are the history
    plus ``ease_weight`` times EASE's reconstruction of it, ``t_u = x_u (I + c B)[:, W]`` (``B`` the EASE item-item
    weights at ``ease_reg``, ``c = ease_weight``; ``c = 0``: the history alone).  A kernel ridge regression over the
    item content then carries ``t_u`` to every item, warm or cold:

    ``s_u = t_u (K_WW + reg I)^{-1} K_W:``,  ``K_ij = exp(gamma * (cos(f_i, f_j) - 1))``,

    where ``f_i`` is item ``i``'s fused content (:func:`~fusionrec.data.side.fuse_modalities`: per-modality L2
    normalisation and ``modality_weights``).  It is the posterior mean of a Gaussian process over items with that
    kernel, one per user, and it is linear in the history: ``s_u = x_u M`` with the item-item matrix
    ``M = (I + c B)[:, W] (K_WW + reg I)^{-1} K_W:`` (``weights_``), like EASE.  Unlike a content profile
    (:class:`~fusionrec.models.content.ContentKNN`) the inverse learns from every warm item at once which content
    predicts a user's items, and the EASE term lets the items a user's neighbours liked count as soft positives.

    Every item with content is scored, so an item without training interactions is recommendable as soon as
    ``side`` covers it at :meth:`fit`; :meth:`add_items` appends new ones after fitting.  This is a cold-start
    model: warm items are scored through the same content smoothing, which is weaker than EASE or CEASE on them.

    Memory is about ``5 * 8 * I^2`` bytes during the fit (the EASE solve, the kernel and ``weights_``); above
    ``max_memory_gb`` :meth:`fit` raises :class:`~fusionrec.errors.ConfigError`.

    Parameters
    ----------
    gamma
        Kernel sharpness: larger values make the kernel more local (``gamma -> 0``: every item alike).
    reg
        Ridge penalty of the kernel regression (the kernel's diagonal is 1).
    ease_weight
        ``c``: weight of EASE's reconstruction in the targets (0: regress the history alone, no EASE solve).
    ease_reg
        EASE's L2 penalty for ``B``.
    modalities
        Item feature names to use (default: all, sorted).
    modality_weights
        Relative weight ``w_m`` per modality (default 1; 0 leaves a modality out).
    binarize
        Use ``x_ui = 1`` for every stored entry (default) instead of its value.
    max_memory_gb
        Largest working memory allowed for the fit.

    Attributes
    ----------
    weights_
        ``float32 [I, I]`` item-item matrix ``M`` (``score = x_u M``).
    coef_
        ``float32 [I, W]`` ``(I + c B)[:, W] (K_WW + reg I)^{-1}``: a new item's column of ``M`` is ``coef_ k_W(f)``.
    warm_items_, warm_vectors_
        The warm item indices and their fused content rows (for :meth:`add_items`).
    """

    #: tuning ranges (:mod:`fusionrec.tuning`): name -> (kind, low, high[, "log"]) or ("categorical", [choices])
    _search_space: ClassVar[dict[str, tuple[Any, ...]]] = {
        "gamma": ("float", 0.25, 8.0, "log"),
        "reg": ("float", 0.1, 30.0, "log"),
        "ease_weight": ("float", 0.0, 8.0),
    }

    uses_side_info = True
    modality_param = "modalities"
    can_add_items = True
    #: ``coef_``'s columns and the ``warm_*`` rows run over the warm items, a subset of the items (all of them when
    #: every item has training interactions)
    item_state: ClassVar[Mapping[str, Indexed]] = {"coef_": SQUARE, "warm_items_": ROWS, "warm_vectors_": ROWS}
    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        "gamma": [*POSITIVE],
        "reg": [*POSITIVE],
        "ease_weight": [*NONNEGATIVE],
        "ease_reg": [*POSITIVE],
        "modalities": [*MODALITY_NAMES],
        "modality_weights": [*MODALITY_WEIGHTS],
        "binarize": [*BOOL],
        "max_memory_gb": [*POSITIVE],
    }

    def __init__(
        self,
        *,
        gamma: float = 1.0,
        reg: float = 1.0,
        ease_weight: float = 2.0,
        ease_reg: float = 300.0,
        modalities: list[str] | None = None,
        modality_weights: dict[str, float] | None = None,
        binarize: bool = True,
        max_memory_gb: float = 8.0,
    ) -> None:
        self.gamma = gamma
        self.reg = reg
        self.ease_weight = ease_weight
        self.ease_reg = ease_reg
        self.modalities = modalities
        self.modality_weights = modality_weights
        self.binarize = binarize
        self.max_memory_gb = max_memory_gb

    # ------------------------------------------------------------------ fitting
    def _fit(self, train: Interactions, side: SideInfo | None) -> None:
        from scipy.linalg import cho_factor, cho_solve

        from fusionrec.models.content import fused_side_features

        if train.nnz == 0:
            raise DataError("the training interactions are empty; nothing to fit")
        n = train.n_items
        check_dense_memory(
            "ContentKRR", n, 5, float(self.max_memory_gb), "its dense item-item solves",
            "or rank cold items with ContentKNN (memory O(n_items * features))",
        )  # fmt: skip
        names, fused = fused_side_features(
            side, self.modalities, self.modality_weights, n, "ContentKRR", "; it scores items through their content"
        )
        assert side is not None
        X = self._input(train.matrix)
        warm = np.flatnonzero(np.diff(X.tocsc().indptr) > 0).astype(np.int64)
        # targets: (I + c B)[:, W], one row per history item
        T = np.zeros((n, len(warm)))
        T[warm, np.arange(len(warm))] = 1.0
        if self.ease_weight > 0:  # EASE's B, warm columns only
            T += float(self.ease_weight) * ease_solve(ease_gram(X), float(self.ease_reg), columns=warm)
        K = content_kernel(fused[warm], fused, self.gamma)  # [W, I]
        Kww = K[:, warm].copy()
        Kww[np.diag_indices(len(warm))] += float(self.reg)
        coef = cho_solve(cho_factor(Kww, lower=True, check_finite=False), T.T, check_finite=False).T  # [I, W]
        del Kww
        self.weights_ = (coef @ K).astype(np.float32)
        self.coef_ = coef.astype(np.float32)
        self.warm_items_ = warm
        self.warm_vectors_ = fused[warm].astype(np.float32)
        self.modalities_ = np.array(names, dtype=str)
        self.modality_dims_ = np.array([np.asarray(side.item_features[m]).shape[1] for m in names], dtype=np.int64)

    # ------------------------------------------------------------------ scoring (score, item_contributions: LinearItemModel)
    def item_embeddings(self) -> np.ndarray:
        """Columns of ``M`` (how each history item votes for an item) for :meth:`similar_items`."""
        self._check_fitted()
        return np.ascontiguousarray(self.weights_.T)

    # ------------------------------------------------------------------ cold start
    def add_items(self, features: dict[str, np.ndarray]) -> np.ndarray:
        """Append new items from their content (``{modality: float [m, d]}``, a fitted modality left out counts as
        missing) and return their indices.  Their columns of ``M`` are ``coef_ k_W(f)``; their rows are zero
        (a new item in a history adds nothing until the next fit)."""
        from fusionrec.models.content import fuse_new_items

        self._check_fitted()
        widths = dict(zip(self.modalities_.tolist(), self.modality_dims_.tolist(), strict=True))
        new = fuse_new_items(features, widths, self.modality_weights)
        m = new.shape[0]
        cols = (self.coef_.astype(np.float64) @ content_kernel(self.warm_vectors_, new, self.gamma)).astype(np.float32)
        start, n = self.n_items_, self.n_items_ + m
        weights = np.zeros((n, n), np.float32)
        weights[:start, :start] = self.weights_
        weights[:start, start:] = cols
        self.weights_ = weights
        self.coef_ = np.vstack([self.coef_, np.zeros((m, self.coef_.shape[1]), np.float32)])
        self.n_items_ = n
        self.seen_ = grow_seen(self.seen_, self.n_users_, n)
        return np.arange(start, n, dtype=np.int64)
