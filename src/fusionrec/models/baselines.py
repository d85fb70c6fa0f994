"""Non-personalised and bias baselines: most popular, random, global mean + user/item biases."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from fusionrec.data.interactions import Interactions
from fusionrec.models._params import NONNEGATIVE, POSITIVE_INT, SEED
from fusionrec.models.base import Recommender, SideInfo
from fusionrec.models.coldstart import HistoryFoldIn
from fusionrec.models.declaration import ROWS, Indexed
from fusionrec.models.factors import FactorFoldIn, FactorSpec

__all__ = ["BiasBaseline", "MostPopular", "Random"]


def _items(items: np.ndarray | None, n: int) -> np.ndarray:
    return np.arange(n) if items is None else np.asarray(items, dtype=np.int64)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den``, 0 where ``den`` is 0 (``num`` is then 0 too: no ratings, no penalty)."""
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


class MostPopular(HistoryFoldIn, Recommender):
    """Rank items by their number of training interactions (the same list for everyone)."""

    item_state: ClassVar[Mapping[str, Indexed]] = {"popularity_": ROWS}

    def __init__(self) -> None:  # no hyper-parameters
        pass

    def _fit(self, train: Interactions, side: SideInfo | None) -> None:
        self.popularity_ = train.item_counts().astype(np.float32)

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        self._check_fitted()
        users = np.atleast_1d(users)
        row = self.popularity_[_items(items, self.n_items_)]
        return np.broadcast_to(row, (len(users), len(row))).copy()


class Random(HistoryFoldIn, Recommender):
    """Uniformly random scores; ``seed`` makes them reproducible (per user, independent of batching)."""

    _param_constraints: ClassVar[dict[str, list[Any]]] = {"seed": [*SEED]}

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = seed

    def _fit(self, train: Interactions, side: SideInfo | None) -> None:
        self.fitted_seed_ = int(self.seed)

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        self._check_fitted()
        users = np.atleast_1d(np.asarray(users, dtype=np.int64))
        cols = _items(items, self.n_items_)
        out = np.empty((len(users), len(cols)), dtype=np.float32)
        for j, u in enumerate(users.tolist()):
            rng = np.random.default_rng([self.fitted_seed_, u])
            out[j] = rng.random(self.n_items_, dtype=np.float32)[cols]
        return out


class BiasBaseline(FactorFoldIn, Recommender):
    """``r_ui = mu + b_u + b_i`` with L2-regularised biases, fitted by alternating least squares.

    Minimises ``sum (r - mu - b_u - b_i)^2 + reg_user * sum b_u^2 + reg_item * sum b_i^2``
    (Koren 2010, the "baseline predictor"; Surprise's ``BaselineOnly`` with ALS).

    Parameters
    ----------
    reg_user, reg_item
        L2 penalties on user and item biases.
    epochs
        Alternating passes (each is exact given the other biases); formerly ``n_iters``.
    """

    #: tuning ranges (:mod:`fusionrec.tuning`): name -> (kind, low, high[, "log"]) or ("categorical", [choices])
    _search_space: ClassVar[dict[str, tuple[Any, ...]]] = {
        "reg_user": ("float", 0.0, 50.0),
        "reg_item": ("float", 0.0, 50.0),
    }

    predicts_ratings = True
    #: a factor model of width 0: ``score = global_mean_ + user_bias_ + item_bias_``; a new user's bias is the
    #: ridge solution ``sum (r - mu - b_i) / (n + reg_user)``, exactly the model's user step
    factor_spec = FactorSpec(
        user=None, item=None, user_bias="user_bias_", item_bias="item_bias_", global_bias="global_mean_",
        fold_in="ridge", regularization="reg_user",
    )  # fmt: skip

    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        "reg_user": [*NONNEGATIVE],
        "reg_item": [*NONNEGATIVE],
        "epochs": [*POSITIVE_INT],
    }
    _renamed_params: ClassVar[dict[str, str]] = {"n_iters": "epochs"}

    def __init__(self, *, reg_user: float = 15.0, reg_item: float = 10.0, epochs: int = 10) -> None:
        self.reg_user = reg_user
        self.reg_item = reg_item
        self.epochs = epochs

    def _fit(self, train: Interactions, side: SideInfo | None) -> None:
        m = train.matrix
        rows = train.row_indices()
        cols = m.indices
        r = m.data.astype(np.float64)
        mu = float(r.mean())
        bu = np.zeros(train.n_users)
        bi = np.zeros(train.n_items)
        nu = np.bincount(rows, minlength=train.n_users)
        ni = np.bincount(cols, minlength=train.n_items)
        # a user or item without training ratings keeps bias 0 (also at a zero penalty, where 0 / 0 would be NaN)
        di, du = (ni + float(self.reg_item)).astype(np.float64), (nu + float(self.reg_user)).astype(np.float64)
        for _ in range(int(self.epochs)):
            bi = _ratio(np.bincount(cols, weights=r - mu - bu[rows], minlength=train.n_items), di)
            bu = _ratio(np.bincount(rows, weights=r - mu - bi[cols], minlength=train.n_users), du)
        self.global_mean_ = mu
        self.user_bias_ = bu.astype(np.float32)
        self.item_bias_ = bi.astype(np.float32)

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        self._check_fitted()
        users = np.atleast_1d(np.asarray(users, dtype=np.int64))
        cols = _items(items, self.n_items_)
        return (self.global_mean_ + self.user_bias_[users, None] + self.item_bias_[None, cols]).astype(np.float32)

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        self._check_fitted()
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        return (self.global_mean_ + self.user_bias_[users] + self.item_bias_[items]).astype(np.float32)
