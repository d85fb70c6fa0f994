"""Members and data shared by the ensemble tests."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from fusionrec.data import IdMap, Interactions
from fusionrec.models import Recommender, SideInfo

MEMBERS = [
    {"name": "BiasBaseline", "params": {"reg_user": 5.0}},
    {"name": "BayesianFM", "params": {"n_factors": 2, "epochs": 15, "n_burn_in": 5, "seed": 1}},
]


class Fixed(Recommender):
    """A 'model' that returns a fixed score table (to test combiners exactly)."""

    predicts_ratings = True

    def __init__(self, table: np.ndarray | None = None) -> None:
        self.table = table

    def _fit(self, train: Interactions, side: SideInfo | None) -> None:
        pass

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        users = np.atleast_1d(np.asarray(users, dtype=np.int64))
        cols = np.arange(self.n_items_) if items is None else np.asarray(items, dtype=np.int64)
        return self.table[users][:, cols].astype(np.float32)  # type: ignore[index]


def grid(users: np.ndarray, items: np.ndarray, ratings: np.ndarray, n_u: int, n_i: int) -> Interactions:
    m = sp.csr_matrix((ratings.astype(np.float32), (users, items)), shape=(n_u, n_i))
    m.sort_indices()
    return Interactions(m, IdMap(np.arange(n_u)), IdMap(np.arange(n_i)))
