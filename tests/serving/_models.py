"""A tiny factor model used only by the serving tests (truncated SVD of the interaction matrix)."""

from __future__ import annotations

import numpy as np

from fusionrec.data.interactions import Interactions
from fusionrec.models.base import Recommender, SideInfo
from fusionrec.models.factors import FactorFoldIn, FactorSpec

TINY_NAME = "TinyMF"
TINY_PATH = "tests.serving._models:TinyMF"


class TinyMF(FactorFoldIn, Recommender):
    """``score(u, i) = p_u . q_i`` from a rank-``n_factors`` SVD of the (implicit) matrix; the factor contract and the
    generic confidence fold-in come from :class:`FactorFoldIn`."""

    factor_spec = FactorSpec(
        user="user_factors_",
        item="item_factors_",
        fold_in="confidence",
        regularization="regularization",
        confidence=1.0,
    )

    def __init__(self, n_factors: int = 8, regularization: float = 0.1) -> None:
        self.n_factors = n_factors
        self.regularization = regularization

    def _fit(self, train: Interactions, side: SideInfo | None) -> None:
        m = train.matrix.toarray().astype(np.float64)
        m = (m > 0).astype(np.float64)
        u, s, vt = np.linalg.svd(m, full_matrices=False)
        d = min(self.n_factors, len(s))
        self.user_factors_ = (u[:, :d] * np.sqrt(s[:d])).astype(np.float32)
        self.item_factors_ = (vt[:d].T * np.sqrt(s[:d])).astype(np.float32)

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        self._check_fitted()
        users = np.atleast_1d(np.asarray(users, dtype=np.int64))
        q = self.item_factors_ if items is None else self.item_factors_[np.asarray(items, dtype=np.int64)]
        return (self.user_factors_[users] @ q.T).astype(np.float32)

    def item_embeddings(self) -> np.ndarray:
        return self.item_factors_
