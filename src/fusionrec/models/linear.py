"""Linear item-item models: EASE (Steck 2019) and its side-information form CEASE (Jeunen et al. 2020)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from fusionrec.data.interactions import Interactions
from fusionrec.errors import ConfigError, DataError
from fusionrec.models._params import BOOL, MODALITY_NAMES, MODALITY_WEIGHTS, NONNEGATIVE, POSITIVE
from fusionrec.models.base import Recommender, SideInfo
from fusionrec.models.coldstart import HistoryFoldIn

__all__ = ["CEASE", "EASE"]


class EASE(HistoryFoldIn, Recommender):
    """Embarrassingly Shallow Autoencoder (Steck 2019).

    Solves ``min_B |X - X B|_F^2 + reg |B|_F^2`` subject to ``diag(B) = 0`` in closed form:

    ``P = (X^T X + reg I)^{-1}``, ``B_ij = -P_ij / P_jj`` (``i != j``), ``B_jj = 0``,

    and scores ``s_u = x_u B``.  ``X`` is the users x items matrix, binarised by default.

    The dense ``[n_items, n_items]`` Gram matrix and its inverse need about
    ``3 * 8 * n_items^2`` bytes; above ``max_memory_gb`` :meth:`fit` raises
    :class:`~fusionrec.errors.ConfigError` (use :class:`~fusionrec.models.knn.ItemKNN`, whose
    memory is ``O(nnz + n_items * k)``, for large catalogues).

    Parameters
    ----------
    reg
        L2 penalty ``reg`` (Steck uses a few hundred on the binarised data).
    binarize
        Use ``x_ui = 1`` for every stored entry (default) instead of its value.
    max_memory_gb
        Largest working memory allowed for the closed-form solve.

    Attributes
    ----------
    weights_
        ``float32 [n_items, n_items]`` item-item weights ``B`` (zero diagonal).
    """

    _param_constraints: ClassVar[dict[str, list[Any]]] = {"reg": [*POSITIVE], "binarize": [*BOOL], "max_memory_gb": [*POSITIVE]}

    def __init__(self, *, reg: float = 500.0, binarize: bool = True, max_memory_gb: float = 8.0) -> None:
        self.reg = reg
        self.binarize = binarize
        self.max_memory_gb = max_memory_gb

    def _fit(self, train: Interactions, side: SideInfo | None) -> None:
        if train.nnz == 0:
            raise DataError("the training interactions are empty; nothing to fit")
        n = train.n_items
        need_gb = 3 * 8 * n * n / 1e9
        if need_gb > self.max_memory_gb:
            raise ConfigError(
                f"EASE with {n} items needs about {need_gb:.1f} GB for the dense item-item solve "
                f"(max_memory_gb={self.max_memory_gb}); raise max_memory_gb if you have the memory, "
                "prune rare items, or use ItemKNN (sparse top-k neighbours)"
            )
        X = self._input(train.matrix)
        G = (X.T @ X).toarray().astype(np.float64)
        self._add_side(G, train, side)
        G[np.diag_indices(n)] += float(self.reg)
        P = np.linalg.inv(G)
        del G
        B = -P / np.diag(P)[None, :]
        B[np.diag_indices(n)] = 0.0
        self.weights_ = B.astype(np.float32)

    def _add_side(self, G: np.ndarray, train: Interactions, side: SideInfo | None) -> None:
        """Hook for :class:`CEASE`: add side-information rows' Gram to ``G`` in place."""

    def _input(self, matrix: sp.csr_matrix) -> sp.csr_matrix:
        X = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
        if self.binarize:
            X.data = np.ones_like(X.data)
        return X

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """Scores ``x_u B`` (``float32 [U, I]``)."""
        self._check_fitted()
        users = np.atleast_1d(np.asarray(users, dtype=np.int64))
        X = self._input(self.seen_[users]).astype(np.float32)
        W = self.weights_ if items is None else self.weights_[:, np.asarray(items, dtype=np.int64)]
        return np.asarray(X @ W, dtype=np.float32)

    def item_embeddings(self) -> np.ndarray | None:
        """Rows of ``B`` (an item's weights on every other item) for :meth:`similar_items`."""
        self._check_fitted()
        return self.weights_


class CEASE(EASE):
    """EASE with item side information as extra rows of ``X`` (collective EASE, Jeunen et al. 2020).

    Every item feature becomes a pseudo-user who "interacted" with the items that have it:
    ``X' = [X; sqrt(side_weight) F^T]``, so the Gram matrix is ``X^T X + side_weight * F F^T`` and the closed form
    is EASE's.  ``F`` stacks the chosen modalities of ``SideInfo.item_features``, each row L2-normalised per
    modality and scaled by ``sqrt(modality_weights[m])`` (:func:`~fusionrec.data.side.fuse_modalities`),
    so ``F F^T = sum_m w_m cos_m``: items with similar content are tied as if many users had both.
    This is early (feature-level) fusion inside a collaborative model.  Items without interactions get
    weights from their content neighbours, so cold items are ranked too; a missing modality (zero row) adds
    nothing.  ``side_weight = 0`` is exactly :class:`EASE`.

    Parameters
    ----------
    reg, binarize, max_memory_gb
        As in :class:`EASE`.
    side_weight
        ``beta``: how many co-interactions one unit of content similarity is worth (tune on validation;
        the diagonal of ``X^T X`` is each item's popularity).
    modalities
        Item feature names to use (default: all, sorted).
    modality_weights
        Relative weight ``w_m`` per modality (default 1).
    """

    uses_side_info = True
    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        "side_weight": [*NONNEGATIVE],
        "modalities": [*MODALITY_NAMES],
        "modality_weights": [*MODALITY_WEIGHTS],
    }

    def __init__(
        self,
        *,
        reg: float = 500.0,
        side_weight: float = 50.0,
        modalities: list[str] | None = None,
        modality_weights: dict[str, float] | None = None,
        binarize: bool = True,
        max_memory_gb: float = 8.0,
    ) -> None:
        super().__init__(reg=reg, binarize=binarize, max_memory_gb=max_memory_gb)
        self.side_weight = side_weight
        self.modalities = modalities
        self.modality_weights = modality_weights

    def _add_side(self, G: np.ndarray, train: Interactions, side: SideInfo | None) -> None:
        from fusionrec.models.content import fused_side_features

        names, fused = fused_side_features(
            side, self.modalities, self.modality_weights, train.n_items, "CEASE", "; use EASE without side information"
        )
        F = fused.astype(np.float64)
        self.modalities_ = np.array(names, dtype=str)
        if self.side_weight > 0:
            G += float(self.side_weight) * (F @ F.T)
