"""Stacking: a meta-model over the members' predictions plus simple user / item features.

For a pair ``(u, i)`` the meta-model sees ``z = [s_1 .. s_M, log(1 + n_u), log(1 + n_i), sd_u, sd_i]``:
the members' scores, the user's activity and the item's popularity (log counts in the members'
training data) and the standard deviations of their training ratings (``0`` with fewer than two).
``meta="ridge"`` fits ``score = b + z . beta`` by ridge regression (closed form, standardised
features, penalty ``meta_params["alpha"]``, default 1); ``meta="gbm"`` fits gradient-boosted
regression trees (scikit-learn's ``GradientBoostingRegressor``, squared error; ``meta_params``
are passed to it, defaults ``n_estimators=200, max_depth=3, learning_rate=0.05, subsample=0.8``).
The trees are copied into plain arrays (node feature, threshold, children, value) and evaluated
in numpy, so the model persists without pickle.  The features let the meta-model trust different
members for different users and items (e.g. a neighbourhood model for heavy users, a content
model for rare items), which a global linear blend cannot.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from fusionrec.data.interactions import Interactions
from fusionrec.ensemble.blend import Ensemble, MemberSpec
from fusionrec.errors import ConfigError
from fusionrec.models._params import Options
from fusionrec.models.declaration import ROWS, Indexed

__all__ = ["Stacking", "activity_features"]

META_CHOICES = ("ridge", "gbm")
GBM_DEFAULTS: dict[str, Any] = {"n_estimators": 200, "max_depth": 3, "learning_rate": 0.05, "subsample": 0.8}


def activity_features(matrix: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(user [n_users, 2], item [n_items, 2])`` of ``[log(1 + count), rating sd]`` from a ratings CSR."""
    import scipy.sparse as sp

    m = sp.csr_matrix(matrix)
    out = []
    for mat in (m, sp.csr_matrix(m.T)):
        cnt = np.diff(mat.indptr).astype(np.float64)
        s1 = np.asarray(mat.sum(axis=1)).ravel()
        s2 = np.asarray(mat.multiply(mat).sum(axis=1)).ravel()
        mean = s1 / np.maximum(cnt, 1.0)
        var = np.maximum(s2 / np.maximum(cnt, 1.0) - mean**2, 0.0) * cnt / np.maximum(cnt - 1.0, 1.0)
        sd = np.where(cnt > 1, np.sqrt(var), 0.0)
        out.append(np.stack([np.log1p(cnt), sd], axis=1).astype(np.float32))
    return out[0], out[1]


def _tree_arrays(gbr: Any) -> dict[str, np.ndarray]:
    """Copy a fitted ``GradientBoostingRegressor``'s trees into flat arrays (public ``tree_`` attributes)."""
    feats, thr, left, right, val, offsets = [], [], [], [], [], [0]
    for est in gbr.estimators_[:, 0]:
        t = est.tree_
        feats.append(t.feature.astype(np.int64))
        thr.append(t.threshold.astype(np.float64))
        left.append(t.children_left.astype(np.int64))
        right.append(t.children_right.astype(np.int64))
        val.append(t.value[:, 0, 0].astype(np.float64))
        offsets.append(offsets[-1] + t.node_count)
    return {
        "feature": np.concatenate(feats),
        "threshold": np.concatenate(thr),
        "left": np.concatenate(left),
        "right": np.concatenate(right),
        "value": np.concatenate(val),
        "offsets": np.asarray(offsets, dtype=np.int64),
    }


def _trees_sum(
    X: np.ndarray,
    feature: np.ndarray,
    threshold: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    value: np.ndarray,
    offsets: np.ndarray,
) -> np.ndarray:
    """Sum over trees of the leaf value reached by every row of ``X`` (``x[f] <= t`` goes left, as sklearn)."""
    X32 = np.asarray(X, dtype=np.float32)  # sklearn trees compare float32 features
    rows = np.arange(X32.shape[0])
    total = np.zeros(X32.shape[0])
    for t in range(len(offsets) - 1):
        base = offsets[t]
        node = np.zeros(X32.shape[0], dtype=np.int64)
        while True:
            lft = left[base + node]
            inner = lft >= 0
            if not inner.any():
                break
            f = feature[base + node]
            go_left = X32[rows, np.maximum(f, 0)] <= threshold[base + node]
            node = np.where(inner, np.where(go_left, lft, right[base + node]), node)
        total += value[base + node]
    return total


class Stacking(Ensemble):
    """Meta-model (ridge or gradient-boosted trees) over member predictions and user / item features.

    See the module docstring for the features and meta-models, and :mod:`fusionrec.ensemble.blend`
    for fitting (``fit`` with a held-out part, or ``fit_blend(valid)`` on fitted members) and
    persistence.  With ``refit=True`` the user / item features are recomputed from the full
    training data after the members are refitted.

    Parameters
    ----------
    models, valid_fraction, refit, clip, seed
        As in :class:`~fusionrec.ensemble.blend.Ensemble`.
    meta
        ``"ridge"`` or ``"gbm"``.
    meta_params
        Options of the meta-model (ridge: ``alpha``; gbm: ``GradientBoostingRegressor`` arguments).

    Attributes
    ----------
    user_features_, item_features_ : ndarray
        ``[n, 2]`` activity features (log count, rating sd).
    coef_, intercept_ : ndarray, float
        Ridge meta-model on the raw features (``meta="ridge"``).
    tree_feature_, tree_threshold_, tree_left_, tree_right_, tree_value_, tree_offsets_ : ndarray
        The boosted trees (``meta="gbm"``); ``gbm_baseline_`` and ``gbm_learning_rate_`` complete them.
    valid_rmse_ : float
        RMSE of the meta-model on the validation interactions it was fitted on.
    """

    user_state: ClassVar[dict[str, Indexed]] = {"user_features_": ROWS}
    item_state: ClassVar[dict[str, Indexed]] = {"item_features_": ROWS}
    _param_constraints: ClassVar[dict[str, list[Any]]] = {"meta": [Options(META_CHOICES)], "meta_params": [dict, None]}

    def __init__(
        self,
        *,
        models: list[MemberSpec],
        meta: str = "ridge",
        meta_params: dict[str, Any] | None = None,
        valid_fraction: float = 0.1,
        refit: bool = True,
        clip: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__(models=models, valid_fraction=valid_fraction, refit=refit, clip=clip, seed=seed)
        self.meta = meta
        self.meta_params = meta_params

    def _check_params(self) -> None:
        if self.meta == "ridge":
            extra = set(self.meta_params or {}) - {"alpha"}
            if extra:
                raise ConfigError(f"ridge meta takes only 'alpha'; got {sorted(extra)}")
            if float((self.meta_params or {}).get("alpha", 1.0)) < 0:
                raise ConfigError("ridge alpha must be >= 0")

    def _prepare_features(self, matrix: Any) -> None:
        super()._prepare_features(matrix)
        self.user_features_, self.item_features_ = activity_features(matrix)

    def _design(self, member_scores: np.ndarray, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        shape = member_scores.shape[1:]
        uf = self.user_features_[users]  # [..., 2] broadcastable
        itf = self.item_features_[items]
        cols = [member_scores[m] for m in range(member_scores.shape[0])]
        for k in range(uf.shape[-1]):
            cols.append(np.broadcast_to(uf[..., k], shape))
        for k in range(itf.shape[-1]):
            cols.append(np.broadcast_to(itf[..., k], shape))
        return np.stack([np.asarray(c, dtype=np.float32).reshape(-1) for c in cols], axis=1)

    def _fit_combiner(self, valid: Interactions) -> None:
        users, items, y = valid.row_indices(), valid.matrix.indices.astype(np.int64), valid.matrix.data
        Z = self._design(self.member_predictions(users, items, valid.timestamps), users, items).astype(np.float64)
        y = y.astype(np.float64)
        params = dict(self.meta_params or {})
        if self.meta == "ridge":
            alpha = float(params.get("alpha", 1.0))
            mean, sd = Z.mean(axis=0), Z.std(axis=0)
            sd = np.where(sd > 0, sd, 1.0)
            Zs = (Z - mean) / sd
            beta = np.linalg.solve(Zs.T @ Zs + alpha * np.eye(Z.shape[1]), Zs.T @ (y - y.mean()))
            self.coef_ = beta / sd
            self.intercept_ = float(y.mean() - mean @ self.coef_)
            fitted = Z @ self.coef_ + self.intercept_
        else:
            from sklearn.ensemble import GradientBoostingRegressor

            options = {**GBM_DEFAULTS, "random_state": int(self.seed), **params}
            try:
                gbr = GradientBoostingRegressor(loss="squared_error", **options)
            except TypeError as exc:
                raise ConfigError(f"bad gbm meta_params: {exc}") from exc
            gbr.fit(Z, y)
            trees = _tree_arrays(gbr)
            self.tree_feature_ = trees["feature"]
            self.tree_threshold_ = trees["threshold"]
            self.tree_left_ = trees["left"]
            self.tree_right_ = trees["right"]
            self.tree_value_ = trees["value"]
            self.tree_offsets_ = trees["offsets"]
            self.gbm_learning_rate_ = float(gbr.learning_rate)
            probe = Z[:1]
            self.gbm_baseline_ = float(gbr.predict(probe)[0] - self.gbm_learning_rate_ * self._trees(probe)[0])
            fitted = self._meta_predict(Z)
        self.valid_rmse_ = float(np.sqrt(np.mean((fitted - y) ** 2)))

    def _trees(self, Z: np.ndarray) -> np.ndarray:
        return _trees_sum(
            Z,
            self.tree_feature_,
            self.tree_threshold_,
            self.tree_left_,
            self.tree_right_,
            self.tree_value_,
            self.tree_offsets_,
        )

    def _meta_predict(self, Z: np.ndarray) -> np.ndarray:
        if self.meta == "ridge":
            return Z.astype(np.float64) @ self.coef_ + self.intercept_
        return self.gbm_baseline_ + self.gbm_learning_rate_ * self._trees(Z)

    def combine(self, member_scores: np.ndarray, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        shape = member_scores.shape[1:]
        Z = self._design(member_scores, users, items)
        return self._meta_predict(Z).reshape(shape).astype(np.float32)
