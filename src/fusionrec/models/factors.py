"""The factor contract: models whose score is an inner product of user and item vectors plus biases.

A :class:`FactorModel` exports :class:`Factors` (views of its learned arrays, no copies) with

``model.score(u)[i] == user[u] @ item[i] + user_bias[u] + item_bias[i] + global_bias``

up to float tolerance.  Rating models (``predicts_ratings``) additionally clip the score to the training rating
range, which keeps the ranking (clipping is monotone).  :meth:`Factors.augmented` folds the biases into two
matrices whose plain inner products are the scores, which is what an inner-product (ANN) index needs.

Every factor model declares, once, which learned attributes hold the factors and biases and which
hyper-parameter is its regularisation (:class:`FactorSpec`, the class attribute ``factor_spec``);
:class:`FactorMixin` derives :meth:`~FactorMixin.factors` and :meth:`~FactorMixin.add_item_vectors` from it and
:class:`FactorFoldIn` a generic :meth:`~FactorFoldIn.fold_in_user` (the protocol of
:mod:`fusionrec.models.coldstart`) by the model's own objective with the item side fixed:

``"ridge"`` (rating models)
    ``min_{x, b} sum_i (r_ui - g - b_i - x . q_i - b)^2 + reg (|x|^2 + b^2)`` (``b`` only when the model learns
    user biases), by :func:`ridge_fold_in`; ``nonnegative`` models (NMF) solve it with ``x >= 0``.
``"confidence"`` (implicit models, Hu, Koren & Volinsky 2008)
    ``min_x sum_i c_ui (p_ui - x . q_i)^2 + reg |x|^2`` over *all* items with ``p = 1, c = 1 + alpha r`` on the
    history and ``p = 0, c = 1`` elsewhere, by :func:`confidence_fold_in`.
``"pairwise"`` (BPR-trained models)
    the convex pairwise log-loss of :func:`fusionrec.models.hybrid.fold_in_vector`.

Models with an exact fold-in of their own (ALS, ContentKNN, HybridMF, VBPR, GraphFusion) keep it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from fusionrec.errors import ConfigError, DataError
from fusionrec.models.coldstart import check_history, grow_seen, place_user

__all__ = [
    "FactorFoldIn",
    "FactorMixin",
    "FactorModel",
    "FactorSpec",
    "Factors",
    "append_rows",
    "confidence_fold_in",
    "finish_ratings",
    "ridge_fold_in",
]

FOLD_IN_KINDS = ("ridge", "confidence", "pairwise")
#: pairs scored per block by :meth:`Factors.pair_scores` (bounds the gathered ``[n, d]`` rows)
_PAIR_BLOCK = 8192


@dataclass(frozen=True, eq=False)
class Factors:
    """User and item factors and biases of a fitted model (views of its arrays; do not write to them).

    ``score[u, i] == user[u] @ item[i] + user_bias[u] + item_bias[i] + global_bias`` (rating models then
    clip to the rating range).
    """

    user: np.ndarray  # float32 [n_users, d]
    item: np.ndarray  # float32 [n_items, d]
    user_bias: np.ndarray | None = None  # float32 [n_users]
    item_bias: np.ndarray | None = None  # float32 [n_items]
    global_bias: float = 0.0

    @property
    def n_factors(self) -> int:
        """The latent dimension ``d``."""
        return int(self.item.shape[1])

    def augmented(self) -> tuple[np.ndarray, np.ndarray]:
        """``(U', I')`` float32 with ``U'[u] @ I'[i] == score[u, i]``.

        ``U' = [user, 1, user_bias + global_bias]`` and ``I' = [item, item_bias, 1]``; the item-bias column pair is
        present only with an item bias, the user-bias pair only with a user bias or a non-zero global bias.
        """
        n_u, n_i = self.user.shape[0], self.item.shape[0]
        ucols: list[np.ndarray] = [np.asarray(self.user, np.float32)]
        icols: list[np.ndarray] = [np.asarray(self.item, np.float32)]
        if self.item_bias is not None:
            ucols.append(np.ones((n_u, 1), np.float32))
            icols.append(np.asarray(self.item_bias, np.float32).reshape(-1, 1))
        if self.user_bias is not None or self.global_bias != 0.0:
            ub = np.zeros(n_u, np.float64) if self.user_bias is None else np.asarray(self.user_bias, np.float64)
            ucols.append((ub + float(self.global_bias)).astype(np.float32).reshape(-1, 1))
            icols.append(np.ones((n_i, 1), np.float32))
        return np.ascontiguousarray(np.hstack(ucols)), np.ascontiguousarray(np.hstack(icols))

    def scores(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """``float32 [U, I]`` scores of ``users`` x ``items`` (all items when ``None``): THE factor score.

        Computed in the arrays' own dtype (float32 for every model: one BLAS ``sgemm``, no float64 copy of the item
        matrix per batch) as ``(global_bias + (user_bias[u] + item_bias[i])) + user[u] @ item[i]``, the order of
        additions every factor model used before it scored through here (so their scores are bit-identical).
        """
        users = np.atleast_1d(np.asarray(users, dtype=np.int64))
        cols: Any = slice(None) if items is None else np.asarray(items, dtype=np.int64)
        dot = self.user[users] @ self.item[cols].T
        bias = self._bias(
            None if self.user_bias is None else self.user_bias[users][:, None],
            None if self.item_bias is None else self.item_bias[cols][None, :],
        )
        return np.asarray(dot if bias is None else bias + dot, dtype=np.float32)

    def pair_scores(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """``float32 [n]`` scores of the pairs ``(users[j], items[j])`` (vectorised, in blocks of 8192 pairs)."""
        users = np.asarray(users, dtype=np.int64).ravel()
        items = np.asarray(items, dtype=np.int64).ravel()
        if users.shape != items.shape:
            raise DataError(f"users and items must pair up one to one, got {users.shape[0]} and {items.shape[0]}")
        out = np.empty(len(users), dtype=np.float32)
        for start in range(0, len(users), _PAIR_BLOCK):
            u, i = users[start : start + _PAIR_BLOCK], items[start : start + _PAIR_BLOCK]
            dot = np.einsum("nf,nf->n", self.user[u], self.item[i])
            bias = self._bias(
                None if self.user_bias is None else self.user_bias[u],
                None if self.item_bias is None else self.item_bias[i],
            )
            out[start : start + len(u)] = dot if bias is None else bias + dot
        return out

    def _bias(self, user_bias: np.ndarray | None, item_bias: np.ndarray | None) -> np.ndarray | float | None:
        """``global_bias + (user_bias + item_bias)`` of the parts present (``None``: no bias at all)."""
        g = float(self.global_bias)
        bias = user_bias if item_bias is None else item_bias if user_bias is None else user_bias + item_bias
        if bias is None:
            return g if g != 0.0 else None
        return bias if g == 0.0 else g + bias


def finish_ratings(
    est: np.ndarray,
    *,
    low: float | None,
    high: float | None,
    known: np.ndarray | None = None,
    fallback: np.ndarray | float | None = None,
) -> np.ndarray:
    """The rating models' finishing of :meth:`Factors.scores` / :meth:`Factors.pair_scores`: ``float32``.

    Where ``known`` is False (the user or the item had no training rating) the estimate is replaced by
    ``fallback`` (e.g. ``global_mean + b_u + b_i``); then every value is clipped to ``[low, high]`` (the training
    rating range; ``None`` leaves that side open).  Clipping is monotone, so rankings are kept.
    """
    if known is not None and fallback is not None and not np.all(known):
        est = np.where(known, est, fallback)
    if low is not None or high is not None:
        est = np.clip(est, low, high)
    return np.asarray(est, dtype=np.float32)


@runtime_checkable
class FactorModel(Protocol):
    """A fitted model whose scores are :class:`Factors` inner products (module notes)."""

    def factors(self) -> Factors: ...

    def add_item_vectors(self, vectors: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray: ...


@dataclass(frozen=True)
class FactorSpec:
    """One model's declaration of where its factors live and how a user is folded in.

    Parameters
    ----------
    user, item
        Learned attributes ``[n_users, d]`` / ``[n_items, d]`` (``None``: ``d = 0``, a bias-only model).
    user_bias, item_bias
        Learned bias attributes (``[n_users]`` / ``[n_items]``), or ``None``.
    global_bias
        Learned float attribute added to every score, or ``None``.
    fold_in
        ``"ridge"``, ``"confidence"``, ``"pairwise"`` (module notes) or ``None`` (no generic fold-in).
    regularization
        Hyper-parameter name(s) of the L2 weight used by the fold-in (the first one that is not ``None``), or a
        number for models without one (Bayesian models: the prior precision).
    confidence
        Hyper-parameter name (or number) of ``alpha`` in ``c = 1 + alpha r`` (``"confidence"`` fold-in).
    fit_user_bias
        Whether the ridge fold-in solves a user bias: a bool, or the name of a bool hyper-parameter (``"biased"``).
    reg_per_rating
        The model's L2 term is applied once per rating (SGD, NMF), so the fold-in scales ``reg`` by the history
        length.
    nonnegative
        Solve the ridge fold-in with non-negative factors (NMF).
    """

    user: str | None
    item: str | None
    user_bias: str | None = None
    item_bias: str | None = None
    global_bias: str | None = None
    fold_in: str | None = None
    regularization: str | tuple[str, ...] | float | None = None
    confidence: str | float | None = None
    fit_user_bias: bool | str = True
    reg_per_rating: bool = False
    nonnegative: bool = False


def append_rows(model: Any, rows: Mapping[str, np.ndarray]) -> None:
    """Append ``rows[name]`` (``[m, ...]``) to each learned array ``model.<name>`` (dtype kept)."""
    for name, new in rows.items():
        current = getattr(model, name)
        block = np.asarray(new, dtype=current.dtype)
        if block.ndim == current.ndim - 1:  # one row
            block = block[None]
        # the row count from the block itself: ``-1`` is ambiguous for zero-width rows (``[m, 0]``)
        rows_of = block.shape[0] if block.ndim == current.ndim else -1
        block = block.reshape((rows_of, *current.shape[1:]))
        setattr(model, name, np.concatenate([current, block]))


def _hyper(model: Any, value: str | tuple[str, ...] | float | None, what: str) -> float:
    if value is None:
        raise ConfigError(f"{type(model).__name__} declares no {what} for its fold-in")
    if isinstance(value, int | float):
        return float(value)
    for name in (value,) if isinstance(value, str) else value:
        got = getattr(model, name)
        if got is not None:
            return float(got)
    raise ConfigError(f"{type(model).__name__}: none of {value} is set; give one of them a value")


def ridge_fold_in(
    factors: Factors,
    items: np.ndarray,
    values: np.ndarray,
    *,
    reg: float,
    fit_user_bias: bool = True,
    nonnegative: bool = False,
) -> tuple[np.ndarray, float]:
    """A user's ``(vector float32 [d], bias)`` by ridge least squares on their ratings against fixed item factors.

    Minimises ``sum_j (values_j - g - b_i - x . q_i - b)^2 + reg (|x|^2 + b^2)`` over ``items`` (``b`` fixed at 0
    unless ``fit_user_bias``); with ``nonnegative`` the solution has ``x >= 0`` (NNLS on the augmented system).
    An empty history gives zeros.
    """
    d = factors.n_factors
    items = np.asarray(items, dtype=np.int64)
    if items.size == 0:
        return np.zeros(d, np.float32), 0.0
    y = np.asarray(values, np.float64) - float(factors.global_bias)
    if factors.item_bias is not None:
        y = y - np.asarray(factors.item_bias, np.float64)[items]
    X = np.asarray(factors.item, np.float64)[items]
    if fit_user_bias:
        X = np.hstack([X, np.ones((len(items), 1))])
    k = X.shape[1]
    if k == 0:
        return np.zeros(0, np.float32), 0.0
    if nonnegative:
        from scipy.optimize import nnls

        A = np.vstack([X, np.sqrt(max(reg, 0.0)) * np.eye(k)])
        b = np.concatenate([y, np.zeros(k)])
        if fit_user_bias:  # the bias may be negative: split it into two non-negative parts
            A = np.hstack([A, -A[:, -1:]])
        w = nnls(A, b)[0]
        if fit_user_bias:
            w = np.concatenate([w[: k - 1], [w[k - 1] - w[k]]])
    else:
        w = np.linalg.solve(X.T @ X + reg * np.eye(k), X.T @ y)
    if fit_user_bias:
        return w[:d].astype(np.float32), float(w[d])
    return w.astype(np.float32), 0.0


def confidence_fold_in(
    item_factors: np.ndarray,
    items: np.ndarray,
    values: np.ndarray,
    *,
    reg: float,
    alpha: float,
    gram: np.ndarray | None = None,
) -> np.ndarray:
    """A user's vector ``float32 [d]`` by the Hu-Koren-Volinsky confidence-weighted least squares.

    ``x = (Y^T Y + Y_h^T (C_h - I) Y_h + reg I)^{-1} Y_h^T c_h`` with ``Y_h`` the history's item factors and
    ``c_h = 1 + alpha values``; ``gram`` is ``Y^T Y`` (computed when not given).  An empty history gives zeros.
    """
    d = item_factors.shape[1]
    items = np.asarray(items, dtype=np.int64)
    if items.size == 0 or d == 0:
        return np.zeros(d, np.float32)
    Y = np.asarray(item_factors, np.float64)
    G = Y.T @ Y if gram is None else np.asarray(gram, np.float64)
    X = Y[items]
    c = 1.0 + float(alpha) * np.asarray(values, np.float64)
    A = G + (X.T * (c - 1.0)) @ X + reg * np.eye(d)
    return np.linalg.solve(A, X.T @ c).astype(np.float32)


class FactorMixin:
    """``factors()`` and ``add_item_vectors`` from the class's :class:`FactorSpec` (``factor_spec``).

    Mix in before :class:`~fusionrec.models.base.Recommender`.  :meth:`score` and :meth:`predict` are
    :meth:`Factors.scores` / :meth:`Factors.pair_scores` of :meth:`factors`: the one place a factor score is
    computed (a model whose score adds terms, e.g. rating clipping or time biases, calls them and finishes the
    result).  Models whose factors are computed rather than stored override :meth:`factors` and
    :meth:`add_item_vectors`; models with more per-item arrays extend :meth:`_new_item_rows`.
    """

    factor_spec: ClassVar[FactorSpec | None] = None
    #: declared capability (fusionrec.models.declaration); the spec's user/item arrays are declared state
    has_factors: ClassVar[bool] = True
    n_users_: int
    n_items_: int
    seen_: Any

    if TYPE_CHECKING:  # provided by Recommender

        def _check_fitted(self) -> None: ...

    def factors(self) -> Factors:
        """The model's :class:`Factors` (views of the learned arrays, O(1))."""
        self._check_fitted()
        return self._spec_factors()

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """Scores ``float32 [U, I]`` of ``users`` x ``items`` (all items when ``None``): :meth:`Factors.scores` of
        :meth:`factors`, the one factor scoring path (rating models finish it with :func:`finish_ratings`)."""
        self._check_fitted()
        return self.factors().scores(users, items)

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Score of each ``(users[j], items[j])`` pair, ``float32 [n]`` (:meth:`Factors.pair_scores`)."""
        self._check_fitted()
        return self.factors().pair_scores(users, items)

    def _spec_factors(self) -> Factors:
        """:class:`Factors` of the arrays named by ``factor_spec`` (models that replace :meth:`factors`, e.g. by
        ``None`` when their score has more terms, still build on these)."""
        spec = self._spec()
        item = np.zeros((self.n_items_, 0), np.float32) if spec.item is None else getattr(self, spec.item)
        user = np.zeros((self.n_users_, 0), np.float32) if spec.user is None else getattr(self, spec.user)
        return Factors(
            user,
            item,
            None if spec.user_bias is None else getattr(self, spec.user_bias),
            None if spec.item_bias is None else getattr(self, spec.item_bias),
            0.0 if spec.global_bias is None else float(getattr(self, spec.global_bias)),
        )

    def _item_gram(self, item: np.ndarray) -> np.ndarray:
        """``Y^T Y`` (float64 ``[d, d]``) of the item factors, kept while the learned item array is the same object.

        The confidence fold-in needs it for every placed user: recomputing it is an ``O(n_items d^2)`` product (about
        20 ms at 100k items x 64), which made each served event post cost that.  Learned arrays are replaced, never
        written in place (``add_items`` and ``fit`` assign new ones), so the object identity is the cache key; the
        cache holds the array itself (no id reuse) and is no learned state (no trailing underscore, never saved).
        """
        cached = self.__dict__.get("_item_gram_cache")
        if cached is not None and cached[0] is item and cached[1].shape[0] == item.shape[1]:
            return cached[1]  # type: ignore[no-any-return]
        y = np.asarray(item, np.float64)
        gram = y.T @ y
        self.__dict__["_item_gram_cache"] = (item, gram)
        return gram

    def _spec(self) -> FactorSpec:
        spec = type(self).factor_spec
        if spec is None:  # pragma: no cover - a declaration error
            raise NotImplementedError(f"{type(self).__name__} declares no factor_spec")
        return spec

    def add_item_vectors(self, vectors: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
        """Append ``m`` items with latent rows ``vectors`` ``[m, d]`` (and biases ``[m]``); returns ``int64 [m]``.

        The new items score ``user[u] @ vectors[j] + bias[j] + ...`` at once (serving places a new item at the
        average vector of its content neighbours this way).  Models without an item bias need ``bias=None``.
        """
        self._check_fitted()
        spec = self._spec()
        vec, b = self._check_item_vectors(vectors, bias, has_bias=spec.item_bias is not None)
        rows: dict[str, np.ndarray] = {} if spec.item is None else {spec.item: vec}
        if spec.item_bias is not None:
            rows[spec.item_bias] = b
        rows.update(self._new_item_rows(len(vec)))
        append_rows(self, rows)
        return self._grow_items(len(vec))

    def _check_item_vectors(
        self, vectors: np.ndarray, bias: np.ndarray | None, *, has_bias: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        d = self.factors().n_factors
        vec = np.asarray(vectors, dtype=np.float32)
        if vec.ndim == 1 and d > 0:
            vec = vec[None, :]
        if vec.ndim != 2 or vec.shape[1] != d:
            raise DataError(f"item vectors must be [m, {d}] (the model's factor width), got shape {vec.shape}")
        if not np.isfinite(vec).all():
            raise DataError("item vectors hold NaN or infinite values")
        m = vec.shape[0]
        b = np.zeros(m, np.float32) if bias is None else np.asarray(bias, dtype=np.float32).ravel()
        if b.shape != (m,) or not np.isfinite(b).all():
            raise DataError(f"item biases must be {m} finite numbers, one per new item")
        if not has_bias and np.any(b != 0):
            raise ConfigError(f"{type(self).__name__} has no item biases; pass bias=None")
        return vec, b

    def _new_item_rows(self, m: int) -> dict[str, np.ndarray]:
        """Rows of the other per-item learned arrays for ``m`` items added by :meth:`add_item_vectors`."""
        return {}

    def _grow_items(self, m: int) -> np.ndarray:
        start = int(self.n_items_)
        self.n_items_ = start + m
        self.seen_ = grow_seen(self.seen_, self.n_users_, self.n_items_)
        if hasattr(type(self), "_reps"):  # models that cache their item representations
            self.__dict__["_reps"] = None
        return np.arange(start, self.n_items_, dtype=np.int64)


class FactorFoldIn(FactorMixin):
    """:class:`FactorMixin` plus the generic cold-start ``fold_in_user`` of the declared kind (module notes)."""

    can_fold_in: ClassVar[bool] = True

    def fold_in_user(
        self,
        items: np.ndarray | Sequence[int],
        values: np.ndarray | None = None,
        *,
        user_features: dict[str, np.ndarray] | None = None,
        user: int | None = None,
    ) -> np.ndarray:
        """Place a new user (``user=None``) or re-place user ``user`` from their history; returns ``int64 [1]``.

        The cold-start contract of :mod:`fusionrec.models.coldstart`; the item factors stay fixed and the user's
        vector (and bias) solve the model's objective for that user alone (``factor_spec.fold_in``).
        """
        self._check_fitted()
        name = type(self).__name__
        if user_features is not None:
            raise ConfigError(f"{name} has no user features; use HybridMF(user_features=...) for profile-only users")
        uniq, weights = check_history(items, values, self.n_items_, self.n_users_, user)
        spec = self._spec()
        f = self.factors()
        bias = 0.0
        if spec.fold_in == "ridge":
            reg = _hyper(self, spec.regularization, "regularization")
            if spec.reg_per_rating:
                reg *= max(len(uniq), 1)
            fit_bias = spec.user_bias is not None and (
                spec.fit_user_bias if isinstance(spec.fit_user_bias, bool) else bool(getattr(self, spec.fit_user_bias))
            )
            vec, bias = ridge_fold_in(f, uniq, weights, reg=reg, fit_user_bias=fit_bias, nonnegative=spec.nonnegative)
        elif spec.fold_in == "confidence":
            reg = _hyper(self, spec.regularization, "regularization")
            vec = confidence_fold_in(
                f.item, uniq, weights, reg=reg, alpha=_hyper(self, spec.confidence, "confidence (alpha)"),
                gram=self._item_gram(f.item),
            )  # fmt: skip
        elif spec.fold_in == "pairwise":
            from fusionrec.models._foldin import fold_in_vector

            ib = np.zeros(f.item.shape[0], np.float32) if f.item_bias is None else f.item_bias
            observed = np.flatnonzero(np.diff(self.seen_.tocsc().indptr) > 0)
            vec = fold_in_vector(
                f.item, ib, uniq, weights, reg=_hyper(self, spec.regularization, "regularization"),
                negatives=observed, seed=int(getattr(self, "seed", 0) or 0),
            )  # fmt: skip
        else:  # pragma: no cover - a declaration error
            raise NotImplementedError(f"{name} declares no generic fold-in")
        rows: dict[str, np.ndarray] = {}
        if spec.user is not None:
            rows[spec.user] = vec
        if spec.user_bias is not None:
            rows[spec.user_bias] = np.asarray(bias, np.float32)
        rows.update(self._new_user_row(vec, uniq, weights))
        return place_user(self, rows, uniq, weights, user)

    def _new_user_row(self, vector: np.ndarray, items: np.ndarray, values: np.ndarray) -> dict[str, np.ndarray]:
        """The folded-in user's row of the other per-user learned arrays (keyed by attribute name)."""
        return {}
