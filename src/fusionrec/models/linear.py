"""Linear item-item models: EASE (Steck 2019)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from fusionrec.data.interactions import Interactions
from fusionrec.errors import ConfigError, DataError
from fusionrec.models.base import Recommender, SideInfo

__all__ = ["EASE"]


class EASE(Recommender):
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

    def __init__(self, reg: float = 500.0, binarize: bool = True, max_memory_gb: float = 8.0) -> None:
        self.reg = reg
        self.binarize = binarize
        self.max_memory_gb = max_memory_gb

    def _fit(self, train: Interactions, side: SideInfo | None) -> None:
        if not (np.isfinite(self.reg) and self.reg > 0):
            raise ConfigError(f"reg must be > 0 (X^T X + reg I must be invertible), got {self.reg!r}")
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
        G[np.diag_indices(n)] += float(self.reg)
        P = np.linalg.inv(G)
        del G
        B = -P / np.diag(P)[None, :]
        B[np.diag_indices(n)] = 0.0
        self.weights_ = B.astype(np.float32)

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
