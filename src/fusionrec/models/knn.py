"""Neighbourhood models: item- and user-based k-NN and Koren's k-NN with baselines.

Similarities (between the rows ``a``, ``b`` of a sparse matrix; ``C`` is the set of columns both
rows store, the *common support*, ``n = |C|``):

* ``"cosine"``: ``a . b / (|a| |b|)`` over the full vectors (missing values are zeros), as in
  implicit's ``CosineRecommender`` and Sarwar et al. (2001).
* ``"pearson"``: Pearson correlation over ``C`` (each side centred on its mean over ``C``), as
  Surprise's ``pearson``.
* ``"adjusted_cosine"``: cosine over ``C`` of the values centred on the *other* side's mean
  (ratings minus the user mean for item similarities; Sarwar et al. 2001).
* ``"pearson_baseline"``: cosine over ``C`` of the baseline residuals ``r - (mu + b_u + b_i)``
  (Koren 2010; Surprise's ``pearson_baseline``), the baselines being fitted as
  :class:`~fusionrec.models.baselines.BiasBaseline`.

Shrinkage ``lambda`` multiplies a similarity by ``n / (n + lambda)``; ``pearson_baseline`` uses
Surprise's ``(n - 1) / (n - 1 + lambda)``.  Pairs with ``n < min_support`` get similarity 0.  Only
positive similarities are kept (Surprise's predictions ignore the others), at most ``k`` per row
(the largest, ties by lower index): the neighbour matrix is a CSR of ``O(n_rows * k)`` entries,
computed in row blocks of sparse products so no dense ``n x n`` matrix is ever formed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from fusionrec._progress import progress
from fusionrec._ranking import topk
from fusionrec.data.interactions import Interactions
from fusionrec.errors import ConfigError, DataError
from fusionrec.models._params import BOOL, NONNEGATIVE, NONNEGATIVE_INT, POSITIVE_INT, Interval, Options
from fusionrec.models.base import Recommender, SideInfo
from fusionrec.models.coldstart import HistoryFoldIn, append_seen_row
from fusionrec.models.declaration import COLUMNS, ROWS, SQUARE, Indexed

__all__ = ["ItemKNN", "KNNBaseline", "UserKNN", "bm25_weight", "neighbour_matrix", "tfidf_weight"]

SIMILARITIES = ("cosine", "pearson", "adjusted_cosine", "pearson_baseline", "dot")
WEIGHTINGS = (None, "bm25", "tfidf")
NEIGHBOURHOODS = ("fixed", "rated")
#: cells of one block of kept neighbours (block rows x k); about 32 MB per float64 array
_BLOCK_CELLS = 1 << 22
#: (user, item) pairs per kernel call when scoring full rows in rating mode
_SCORE_PAIRS = 1 << 21


# ---------------------------------------------------------------------- weighting
def tfidf_weight(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """TF-IDF weighting of the rows of ``matrix`` (documents x terms), as implicit's.

    ``w_dt = sqrt(x_dt) * idf_t`` with ``idf_t = log(N) - log(1 + df_t)``, ``N`` the number of rows
    and ``df_t`` the number of rows storing term ``t``.
    """
    m = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    n = float(m.shape[0])
    idf = np.log(n) - np.log1p(np.bincount(m.indices, minlength=m.shape[1]))
    m.data = np.sqrt(m.data) * idf[m.indices]
    return m


def bm25_weight(matrix: sp.csr_matrix, k1: float = 1.2, b: float = 0.75) -> sp.csr_matrix:
    """Okapi BM25 weighting of the rows of ``matrix`` (documents x terms), as implicit's.

    ``w_dt = x_dt (k1 + 1) / (k1 L_d + x_dt) * idf_t`` with the length norm
    ``L_d = 1 - b + b |d| / mean |d|`` (``|d|`` the row sum) and ``idf_t = log(N) - log(1 + df_t)``.
    """
    m = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    n = float(m.shape[0])
    idf = np.log(n) - np.log1p(np.bincount(m.indices, minlength=m.shape[1]))
    row_sums = np.asarray(m.sum(axis=1)).ravel()
    avg = row_sums.mean() if row_sums.size else 1.0
    norm = (1.0 - b) + b * row_sums / (avg if avg > 0 else 1.0)
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    m.data = m.data * (k1 + 1.0) / (k1 * norm[rows] + m.data) * idf[m.indices]
    return m


# ---------------------------------------------------------------------- similarities
def neighbour_matrix(
    vectors: sp.csr_matrix,
    similarity: str = "cosine",
    *,
    shrinkage: float = 0.0,
    min_support: int = 1,
    k: int | None = 40,
    desc: str = "similarities",
) -> sp.csr_matrix:
    """Top-``k`` positive similarities between the rows of ``vectors``, as a CSR ``[n, n]``.

    ``vectors`` holds the values to compare (for ``"adjusted_cosine"`` already centred, for
    ``"pearson_baseline"`` already baseline residuals; both are then compared by cosine over the
    common support).  Row ``a`` of the result stores ``s_ab > 0`` for its (at most) ``k`` most
    similar rows ``b != a`` (all positive ones when ``k`` is None), indices sorted.

    Rows are processed in blocks by a numba kernel that accumulates the sums over the common
    support from the co-occurrences (a fused sparse product) and keeps each row's top ``k``, so
    besides the output only ``O(n)`` scratch per thread and ``O(B k)`` per block are used.
    """
    if similarity not in SIMILARITIES:
        raise ConfigError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}")
    from fusionrec.models._kernels.knn import similarity_topk

    A = sp.csr_matrix(vectors, dtype=np.float64)
    A.sort_indices()
    n = A.shape[0]
    AT = A.T.tocsr()
    AT.sort_indices()
    kind = {"cosine": 0, "pearson": 1, "dot": 3}.get(similarity, 2)
    norms = np.sqrt(np.asarray(A.multiply(A).sum(axis=1), dtype=np.float64).ravel())
    i64 = np.int64
    offset = 1.0 if similarity == "pearson_baseline" else 0.0
    keep = n if k is None else max(1, min(int(k), n))
    block = max(1, min(n, _BLOCK_CELLS // max(keep, 1)))
    args = (A.indptr.astype(i64), A.indices.astype(i64), A.data, AT.indptr.astype(i64), AT.indices.astype(i64), AT.data)
    rows_out: list[np.ndarray] = []
    cols_out: list[np.ndarray] = []
    vals_out: list[np.ndarray] = []
    starts = range(0, n, block)
    for s in progress(starts, total=len(starts), desc=desc):
        e = min(n, s + block)
        idx, val, cnt = similarity_topk(
            *args, norms, s, e, kind, float(shrinkage), offset, max(int(min_support), 1), keep
        )
        valid = np.arange(keep)[None, :] < cnt[:, None]
        rows_out.append(np.repeat(np.arange(s, e), cnt))
        cols_out.append(idx[valid])
        vals_out.append(val[valid])
    if rows_out:
        rows = np.concatenate(rows_out)
        cols = np.concatenate(cols_out)
        vals = np.concatenate(vals_out)
    else:
        rows = cols = np.empty(0, dtype=np.int64)
        vals = np.empty(0)
    out = sp.csr_matrix((vals.astype(np.float32), (rows, cols)), shape=(n, n))
    out.sort_indices()
    return out


def _centred_by_other_side(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Values minus their row mean (rows = the *other* side; used for adjusted cosine)."""
    m = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    counts = np.diff(m.indptr)
    sums = np.add.reduceat(m.data, m.indptr[:-1]) if m.nnz else np.zeros(m.shape[0])
    sums = np.where(counts > 0, sums, 0.0)
    means = sums / np.maximum(counts, 1)
    m.data = m.data - np.repeat(means, counts)
    return m


def _similarity_vectors(
    m: sp.csr_matrix, resid: sp.csr_matrix | None, similarity: str, user_based: bool
) -> sp.csr_matrix:
    """Rows to compare: users (``user_based``) or items, holding the values the similarity uses.

    ``m`` is the users x items value matrix, ``resid`` its baseline residuals (needed by
    ``"pearson_baseline"``).
    """
    if similarity == "adjusted_cosine":
        other = m.T.tocsr() if user_based else m
        return _centred_by_other_side(other).T.tocsr()
    src = resid if similarity == "pearson_baseline" else m
    if src is None:
        raise ConfigError("pearson_baseline needs the baseline residuals")
    return src if user_based else src.T.tocsr()


def _means(matrix: sp.csr_matrix, fallback: float) -> np.ndarray:
    """Mean stored value of each row (``fallback`` for empty rows)."""
    counts = np.diff(matrix.indptr)
    sums = np.asarray(matrix.sum(axis=1), dtype=np.float64).ravel()
    return np.where(counts > 0, sums / np.maximum(counts, 1), fallback)


#: similarities that compare values centred on a mean or a baseline: all zero when every value is the same
_CENTRED = ("pearson", "adjusted_cosine", "pearson_baseline")


def _check_common(model: Any, train: Interactions, *, needs_ratings: bool = False) -> None:
    """Refuse data the model cannot learn from: no interactions, or values that are all the same (implicit data)
    where the similarity (or the model, ``needs_ratings``) learns from their deviations, so every score would
    collapse to one value."""
    if train.nnz == 0:
        raise DataError("the training interactions are empty; nothing to fit")
    values = train.matrix.data
    if float(values.max()) != float(values.min()):
        return
    name = type(model).__name__
    if needs_ratings:
        raise DataError(
            f"{name} predicts ratings from their deviations from a baseline, but every training value is "
            f"{values[0]:g} (implicit data); use ItemKNN or EASE for implicit feedback"
        )
    if model.similarity in _CENTRED and not (model.similarity == "pearson" and getattr(model, "weighting", None)):
        raise ConfigError(
            f"{name}(similarity={model.similarity!r}) compares values centred on their mean, but every training value "
            f"is {values[0]:g} (implicit data), so every similarity is 0; use similarity='cosine' (or 'dot')"
        )


_COMMON_CONSTRAINTS: dict[str, list[Any]] = {
    "k": [*POSITIVE_INT],
    "similarity": [Options(SIMILARITIES)],
    "shrinkage": [*NONNEGATIVE],
    "min_support": [*NONNEGATIVE_INT],
    "min_k": [*NONNEGATIVE_INT],
    "max_neighbors": [*POSITIVE_INT, None],
    "reg_user": [*NONNEGATIVE],
    "reg_item": [*NONNEGATIVE],
    "epochs": [*POSITIVE_INT],
}


# ---------------------------------------------------------------------- shared machinery
#: the learned state of an item-based model: item x item neighbours, users x items residuals
_ITEM_BASED_USER_STATE: dict[str, Indexed] = {"user_residuals_": ROWS}
_ITEM_BASED_ITEM_STATE: dict[str, Indexed] = {"item_neighbours_": SQUARE, "user_residuals_": COLUMNS}
#: the learned state of a user-based model: user x user neighbours, items x users residuals
_USER_BASED_USER_STATE: dict[str, Indexed] = {"user_neighbours_": SQUARE, "item_residuals_": COLUMNS}
_USER_BASED_ITEM_STATE: dict[str, Indexed] = {"item_residuals_": ROWS}


class _NeighbourModel(Recommender):
    """Shared scoring of the k-NN models (state set by the subclasses' ``_fit``).

    Learned state, named by what indexes it so that the declaration (``user_state`` / ``item_state``) is exact
    whichever side the neighbours are on: the neighbour matrix ``item_neighbours_`` (items x items) or, when
    ``user_based_``, ``user_neighbours_`` (users x users); the residuals ``r - base`` of every known value over the
    other side, ``user_residuals_`` (users x items, item-based) or ``item_residuals_`` (items x users, user-based),
    absent in implicit mode; ``implicit_mode_``, ``rating_min_``/``rating_max_`` and the base terms of
    :meth:`_base`.  :attr:`neighbours_` and :attr:`residuals_` read whichever is held.
    """

    _renamed_params: ClassVar[dict[str, str]] = {"n_epochs": "epochs"}

    k: int
    min_k: int
    user_based_: bool
    implicit_mode_: bool
    rating_min_: float
    rating_max_: float

    @property
    def neighbours_(self) -> sp.csr_matrix:
        """The neighbour matrix: ``user_neighbours_`` when user-based, else ``item_neighbours_``."""
        return self.user_neighbours_ if self.user_based_ else self.item_neighbours_

    @property
    def residuals_(self) -> sp.csr_matrix:
        """The residuals of the known values: ``item_residuals_`` when user-based, else ``user_residuals_``."""
        return self.item_residuals_ if self.user_based_ else self.user_residuals_

    def _store_neighbours(self, neighbours: sp.csr_matrix, residuals: sp.csr_matrix | None, user_based: bool) -> None:
        """Keep the neighbour matrix and the residuals (``None``: implicit mode, none) under the names of their
        orientation, dropping those of an earlier fit."""
        for name in ("user_neighbours_", "item_neighbours_", "user_residuals_", "item_residuals_"):
            vars(self).pop(name, None)
        self.user_based_ = user_based
        if user_based:
            self.user_neighbours_ = neighbours
        else:
            self.item_neighbours_ = neighbours
        if residuals is not None and user_based:
            self.item_residuals_ = residuals
        elif residuals is not None:
            self.user_residuals_ = residuals

    def _set_state(self, state: dict[str, Any]) -> None:
        """Bundles saved before the state was named by orientation hold ``neighbours_`` / ``residuals_``."""
        state = dict(state)
        neighbours, residuals = state.pop("neighbours_", None), state.pop("residuals_", None)
        if neighbours is not None:
            user_based = bool(state.get("user_based_", False))
            state["user_neighbours_" if user_based else "item_neighbours_"] = neighbours
            if residuals is not None and residuals.shape != (0, 0):  # implicit mode saved an empty one
                state["item_residuals_" if user_based else "user_residuals_"] = residuals
        super()._set_state(state)

    def _base(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _corrections(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Neighbourhood corrections of each ``(users[j], items[j])`` pair (numba kernel)."""
        from fusionrec.models._kernels.knn import knn_corrections

        if self.user_based_:
            x, y, n_x = users, items, self.n_users_
        else:
            x, y, n_x = items, users, self.n_items_
        order = np.argsort(y, kind="stable")
        ys = y[order]
        bounds = np.flatnonzero(np.diff(ys)) + 1
        bounds = np.concatenate([[0], bounds, [len(ys)]]).astype(np.int64) if len(ys) else np.zeros(1, np.int64)
        nb = self.neighbours_
        max_row = int(np.diff(nb.indptr).max()) if nb.shape[0] else 0
        res = self.residuals_
        corr, _ = knn_corrections(
            x.astype(np.int64),
            y.astype(np.int64),
            order.astype(np.int64),
            bounds,
            nb.indptr.astype(np.int64),
            nb.indices.astype(np.int64),
            nb.data.astype(np.float64),
            res.indptr.astype(np.int64),
            res.indices.astype(np.int64),
            res.data.astype(np.float64),
            int(n_x),
            int(self.k),
            int(self.min_k),
            max_row,
        )
        return corr

    def _rating_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        if users.shape != items.shape:
            raise ConfigError(f"users and items must have the same length, got {users.shape} and {items.shape}")
        if users.size and (users.min() < 0 or users.max() >= self.n_users_):
            raise ConfigError(f"user index out of range (0..{self.n_users_ - 1}); fold in new users first")
        if items.size and (items.min() < 0 or items.max() >= self.n_items_):
            raise ConfigError(f"item index out of range (0..{self.n_items_ - 1})")
        est = self._base(users, items) + self._corrections(users, items)
        return np.clip(est, self.rating_min_, self.rating_max_).astype(np.float32)

    def _implicit_scores(self, users: np.ndarray, cols: np.ndarray) -> np.ndarray:
        X = self.seen_
        W = self.neighbours_
        if self.user_based_:
            s = W[users] @ X[:, cols]
        else:
            s = X[users] @ W[:, cols]
        return np.asarray(s.toarray() if sp.issparse(s) else s, dtype=np.float32)

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """Scores ``float32 [U, I]``: predicted ratings (rating mode) or neighbourhood sums (implicit)."""
        self._check_fitted()
        users = np.atleast_1d(np.asarray(users, dtype=np.int64))
        cols = np.arange(self.n_items_) if items is None else np.asarray(items, dtype=np.int64)
        if self.implicit_mode_:
            return self._implicit_scores(users, cols)
        out = np.empty((len(users), len(cols)), dtype=np.float32)
        step = max(1, _SCORE_PAIRS // max(len(cols), 1))  # bounds the pair arrays of one kernel call
        for s in range(0, len(users), step):
            chunk = users[s : s + step]
            uu = np.repeat(chunk, len(cols))
            ii = np.tile(cols, len(chunk))
            out[s : s + len(chunk)] = self._rating_pairs(uu, ii).reshape(len(chunk), len(cols))
        return out

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Score of each ``(users[j], items[j])`` pair; in rating mode one pass of the numba kernel."""
        self._check_fitted()
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        if self.implicit_mode_:
            return super().predict(users, items)
        return self._rating_pairs(users, items)

    def similar_items(self, items: np.ndarray | int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most similar items from the item neighbour matrix (``-1`` / ``-inf`` pads)."""
        self._check_fitted()
        if self.user_based_:
            raise NotImplementedError(f"{type(self).__name__} is user-based; use ItemKNN for similar_items")
        items = np.atleast_1d(np.asarray(items, dtype=np.int64))
        W = self.neighbours_
        dense = np.full((len(items), self.n_items_), -np.inf, dtype=np.float32)
        for j, i in enumerate(items.tolist()):
            lo, hi = W.indptr[i], W.indptr[i + 1]
            dense[j, W.indices[lo:hi]] = W.data[lo:hi]
        idx, val = topk(dense, k)
        idx[~np.isfinite(val)] = -1
        return idx, val


class _KNN(_NeighbourModel):
    """Item- or user-based k-NN (``KNNWithMeans`` in rating mode, implicit-style in implicit mode)."""

    _user_based: bool = False
    user_state: ClassVar[Mapping[str, Indexed]] = {"user_mean_": ROWS}
    item_state: ClassVar[Mapping[str, Indexed]] = {"item_mean_": ROWS}
    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        **_COMMON_CONSTRAINTS,
        "implicit": [*BOOL],
        "weighting": [Options(tuple(w for w in WEIGHTINGS if w is not None)), None],
        "bm25_k1": [*NONNEGATIVE],
        "bm25_b": [Interval(float, 0.0, 1.0)],
        "neighbourhood": [Options(NEIGHBOURHOODS)],
    }

    def __init__(
        self,
        *,
        k: int = 40,
        similarity: str = "cosine",
        shrinkage: float = 0.0,
        min_support: int = 1,
        min_k: int = 1,
        implicit: bool = False,
        weighting: str | None = None,
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
        reg_user: float = 15.0,
        reg_item: float = 10.0,
        epochs: int = 10,
        neighbourhood: str = "fixed",
        max_neighbors: int | None = None,
    ) -> None:
        self.k = k
        self.similarity = similarity
        self.shrinkage = shrinkage
        self.min_support = min_support
        self.min_k = min_k
        self.neighbourhood = neighbourhood
        self.max_neighbors = max_neighbors
        self.implicit = implicit
        self.weighting = weighting
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.reg_user = reg_user
        self.reg_item = reg_item
        self.epochs = epochs

    def _fit(self, train: Interactions, side: SideInfo | None) -> None:
        _check_common(self, train)
        user_based = self._user_based
        implicit_mode = bool(self.implicit) or not train.explicit
        stored: int | None = int(self.k)
        if self.neighbourhood == "rated" and not implicit_mode:
            stored = None if self.max_neighbors is None else int(self.max_neighbors)
        m = sp.csr_matrix(train.matrix, dtype=np.float64)
        m.sort_indices()
        mu = float(m.data.mean()) if m.nnz else 0.0
        resid = None
        if self.similarity == "pearson_baseline":
            resid = _baseline_residuals(train, self.reg_user, self.reg_item, int(self.epochs))[0]
        vectors = _similarity_vectors(m, resid, self.similarity, user_based)
        if self.weighting == "bm25":
            vectors = bm25_weight(vectors, self.bm25_k1, self.bm25_b)
        elif self.weighting == "tfidf":
            vectors = tfidf_weight(vectors)
        neighbours = neighbour_matrix(
            vectors,
            self.similarity,
            shrinkage=float(self.shrinkage),
            min_support=int(self.min_support),
            k=stored,
            desc=type(self).__name__,
        )
        self.implicit_mode_ = implicit_mode
        self.global_mean_ = mu
        self.rating_min_ = float(m.data.min()) if m.nnz else 0.0
        self.rating_max_ = float(m.data.max()) if m.nnz else 0.0
        self.user_mean_ = _means(m, mu).astype(np.float64)
        self.item_mean_ = _means(m.T.tocsr(), mu).astype(np.float64)
        if implicit_mode:  # scores are neighbourhood sums of the seen rows: no residuals
            self._store_neighbours(neighbours, None, user_based)
            return
        if user_based:  # known values of each item: r_vi - mu_v over users v
            res = m.T.tocsr()
            res.data = res.data - self.user_mean_[res.indices]
        else:  # known values of each user: r_uj - mu_j over items j
            res = m.copy()
            res.data = res.data - self.item_mean_[res.indices]
        self._store_neighbours(neighbours, res, user_based)

    def _base(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.user_mean_[users] if self.user_based_ else self.item_mean_[items]


class ItemKNN(HistoryFoldIn, _KNN):
    """Item-based k-nearest-neighbours.

    Rating mode (explicit data and ``implicit=False``; Surprise's ``KNNWithMeans``, item-based):

    ``r_ui = mu_i + sum_{j in N_k(i) ∩ I(u)} s_ij (r_uj - mu_j) / sum_{j in N_k(i) ∩ I(u)} s_ij``

    with ``mu_i`` the item mean, ``N_k(i)`` the ``k`` items most similar to ``i`` (positive
    similarities only) and ``I(u)`` the items rated by ``u``; the prediction falls back to ``mu_i``
    when fewer than ``min_k`` neighbours are rated, and is clipped to the training rating range.
    With ``neighbourhood="rated"`` the sums run instead over the ``k`` items *rated by u* most
    similar to ``i`` (Surprise's ``KNNWithMeans`` semantics, usually more accurate: on ML-100K u1 pearson RMSE
    0.9525 as Surprise vs 1.10 for fixed lists), from up to ``max_neighbors`` stored similarities per item.

    Implicit mode (``train.explicit`` False or ``implicit=True``; implicit's ``ItemItemRecommender``):
    ``score_u = x_u @ W`` with ``x_u`` the user's stored values and ``W`` the neighbour matrix.

    Parameters
    ----------
    k
        Neighbours kept per item.
    similarity
        ``"cosine"``, ``"pearson"``, ``"adjusted_cosine"`` or ``"pearson_baseline"`` (module docs).
    shrinkage
        ``lambda`` in ``s * n / (n + lambda)`` (``n`` common raters).
    min_support
        Pairs with fewer common raters get similarity 0.
    min_k
        Minimum number of rated neighbours for a neighbourhood term (rating mode).
    neighbourhood
        ``"fixed"`` (default: the top-``k`` list of ``i`` intersected with ``I(u)``, ``k`` similarities
        stored per item) or ``"rated"`` (the ``k`` most similar among ``I(u)``; rating mode only,
        implicit mode always uses the fixed lists).
    max_neighbors
        With ``neighbourhood="rated"``: similarities stored per item (``None``: every positive
        one, ``O(n_items^2)`` worst-case memory).
    implicit
        Force implicit mode on explicit data.
    weighting
        ``None``, ``"bm25"`` or ``"tfidf"``: weighting of the item vectors (documents = items,
        terms = users) before the similarity, as implicit's ``BM25Recommender`` / ``TFIDFRecommender``.
    bm25_k1, bm25_b
        BM25 parameters.
    reg_user, reg_item, epochs
        Baseline fit for ``"pearson_baseline"`` (as :class:`~fusionrec.models.baselines.BiasBaseline`);
        ``epochs`` was ``n_epochs``.

    Attributes
    ----------
    item_neighbours_ (also ``neighbours_``)
        CSR ``float32 [n_items, n_items]``: row ``i`` holds ``s_ij > 0`` of its ``k`` neighbours.
    """

    #: tuning ranges (:mod:`fusionrec.tuning`): name -> (kind, low, high[, "log"]) or ("categorical", [choices])
    _search_space: ClassVar[dict[str, tuple[Any, ...]]] = {
        "k": ("int", 10, 500, "log"),
        "shrinkage": ("float", 0.0, 100.0),
    }

    _user_based = False
    user_state: ClassVar[Mapping[str, Indexed]] = _ITEM_BASED_USER_STATE
    item_state: ClassVar[Mapping[str, Indexed]] = _ITEM_BASED_ITEM_STATE

    def _history_user_row(self, items: np.ndarray, values: np.ndarray, user: int | None) -> dict[str, np.ndarray]:
        mean = float(values.mean()) if len(values) else float(self.global_mean_)
        if not self.implicit_mode_:  # rating mode scores from the user's residuals r_uj - mu_j
            self.user_residuals_ = append_seen_row(self.user_residuals_, items, values - self.item_mean_[items], user)
        return {"user_mean_": np.asarray(mean)}


class UserKNN(_KNN):
    """User-based k-nearest-neighbours.

    Rating mode (Surprise's ``KNNWithMeans``, user-based):

    ``r_ui = mu_u + sum_{v in N_k(u) ∩ U(i)} s_uv (r_vi - mu_v) / sum_{v in N_k(u) ∩ U(i)} s_uv``

    with ``mu_u`` the user mean, ``N_k(u)`` the ``k`` most similar users (positive similarities)
    and ``U(i)`` the raters of ``i``; falls back to ``mu_u`` with fewer than ``min_k`` neighbours,
    clipped to the rating range.  Implicit mode: ``score_u = sum_v s_uv x_v`` (``W[u] @ X``).

    Parameters are those of :class:`ItemKNN`, with users and items swapped (``weighting`` treats
    users as documents and items as terms).

    Attributes
    ----------
    user_neighbours_ (also ``neighbours_``)
        CSR ``float32 [n_users, n_users]`` of the top-``k`` positive user similarities.
    """

    #: tuning ranges (:mod:`fusionrec.tuning`): name -> (kind, low, high[, "log"]) or ("categorical", [choices])
    _search_space: ClassVar[dict[str, tuple[Any, ...]]] = {
        "k": ("int", 10, 500, "log"),
        "shrinkage": ("float", 0.0, 100.0),
    }

    _user_based = True
    user_state: ClassVar[Mapping[str, Indexed]] = _USER_BASED_USER_STATE
    item_state: ClassVar[Mapping[str, Indexed]] = _USER_BASED_ITEM_STATE


# ---------------------------------------------------------------------- KNNBaseline
def _baseline_residuals(
    train: Interactions, reg_user: float, reg_item: float, epochs: int
) -> tuple[sp.csr_matrix, Any]:
    """Users x items CSR of ``r_ui - (mu + b_u + b_i)`` and the fitted :class:`BiasBaseline`."""
    from fusionrec.models.baselines import BiasBaseline

    base = BiasBaseline(reg_user=reg_user, reg_item=reg_item, epochs=epochs).fit(train)
    m = sp.csr_matrix(train.matrix, dtype=np.float64, copy=True)
    m.sort_indices()
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    m.data = m.data - (
        base.global_mean_ + base.user_bias_[rows].astype(np.float64) + base.item_bias_[m.indices].astype(np.float64)
    )
    return m, base


class KNNBaseline(HistoryFoldIn, _NeighbourModel):
    """k-NN on baseline residuals (Koren 2010; Surprise's ``KNNBaseline``).

    Item-based (default):

    ``r_ui = b_ui + sum_{j in N^k_u(i)} s_ij (r_uj - b_uj) / sum_{j in N^k_u(i)} s_ij``

    with the baseline ``b_ui = mu + b_u + b_i`` (fitted as
    :class:`~fusionrec.models.baselines.BiasBaseline`, Surprise's ALS defaults) and
    ``N^k_u(i)`` the ``k`` items rated by ``u`` with the largest positive similarity to ``i``
    (Surprise's semantics: neighbours are chosen among the user's items, not from a fixed list).
    With fewer than ``min_k`` such neighbours the prediction is ``b_ui``.  Predictions are clipped
    to the training rating range.  Users or items without training ratings keep their (zero)
    bias, so they get ``mu + b_u`` / ``mu + b_i`` where Surprise falls back to ``mu``.  ``user_based=True`` swaps the roles of users and items.

    Parameters
    ----------
    k
        Neighbours used per prediction.
    min_k
        Minimum number of neighbours for the neighbourhood term.
    similarity
        One of the module's similarities; ``"pearson_baseline"`` (default) uses the baseline
        residuals.
    shrinkage
        Similarity shrinkage (default 100 as Surprise).
    min_support
        Pairs with fewer common raters get similarity 0.
    user_based
        Neighbours are users instead of items.
    reg_user, reg_item, epochs
        Baseline ALS: penalties of the user / item biases and alternating passes (``epochs`` was ``n_epochs``).
    max_neighbors
        Similarities stored per row (the largest positive ones).  ``None`` stores all positive
        similarities, which reproduces Surprise exactly at ``O(n^2)`` worst-case memory; an
        integer bounds the neighbour matrix to ``n * max_neighbors`` entries (candidates for
        ``N^k_u(i)`` are then taken from those).

    Attributes
    ----------
    item_neighbours_ / user_neighbours_ (also ``neighbours_``)
        CSR ``float32 [n, n]`` of the stored similarities between items, or users when user-based.
    global_mean_, user_bias_, item_bias_
        Baseline terms.
    """

    predicts_ratings = True
    #: item- or user-based by the ``user_based`` parameter: either orientation's state
    user_state: ClassVar[Mapping[str, Indexed]] = {
        "user_bias_": ROWS,
        **_ITEM_BASED_USER_STATE,
        **_USER_BASED_USER_STATE,
    }
    item_state: ClassVar[Mapping[str, Indexed]] = {
        "item_bias_": ROWS,
        **_ITEM_BASED_ITEM_STATE,
        **_USER_BASED_ITEM_STATE,
    }
    _param_constraints: ClassVar[dict[str, list[Any]]] = {**_COMMON_CONSTRAINTS, "user_based": [*BOOL]}

    def __init__(
        self,
        *,
        k: int = 40,
        min_k: int = 1,
        similarity: str = "pearson_baseline",
        shrinkage: float = 100.0,
        min_support: int = 1,
        user_based: bool = False,
        reg_user: float = 15.0,
        reg_item: float = 10.0,
        epochs: int = 10,
        max_neighbors: int | None = None,
    ) -> None:
        self.k = k
        self.min_k = min_k
        self.similarity = similarity
        self.shrinkage = shrinkage
        self.min_support = min_support
        self.user_based = user_based
        self.reg_user = reg_user
        self.reg_item = reg_item
        self.epochs = epochs
        self.max_neighbors = max_neighbors

    def _fit(self, train: Interactions, side: SideInfo | None) -> None:
        _check_common(self, train, needs_ratings=True)
        user_based = bool(self.user_based)
        resid, base = _baseline_residuals(train, self.reg_user, self.reg_item, int(self.epochs))
        m = sp.csr_matrix(train.matrix, dtype=np.float64)
        m.sort_indices()
        vectors = _similarity_vectors(m, resid, self.similarity, user_based)
        neighbours = neighbour_matrix(
            vectors,
            self.similarity,
            shrinkage=float(self.shrinkage),
            min_support=int(self.min_support),
            k=None if self.max_neighbors is None else int(self.max_neighbors),
            desc="KNNBaseline",
        )
        self.implicit_mode_ = False
        self.global_mean_ = float(base.global_mean_)
        self.user_bias_ = base.user_bias_.astype(np.float64)
        self.item_bias_ = base.item_bias_.astype(np.float64)
        self.rating_min_ = float(m.data.min()) if m.nnz else 0.0
        self.rating_max_ = float(m.data.max()) if m.nnz else 0.0
        # residuals r - b over the "y" side (users for item-based, items for user-based)
        self._store_neighbours(neighbours, resid.T.tocsr() if user_based else resid, user_based)

    def _base(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.global_mean_ + self.user_bias_[users] + self.item_bias_[items]

    # ------------------------------------------------------------------ cold start
    def _before_history_fold_in(self, user: int | None) -> None:
        if self.user_based_:
            raise ConfigError(
                "a user-based KNNBaseline has no neighbour list for a new user; refit, or use the item-based "
                "KNNBaseline (user_based=False), which scores a user from their ratings alone"
            )

    def _history_user_row(self, items: np.ndarray, values: np.ndarray, user: int | None) -> dict[str, np.ndarray]:
        """The user's bias by the baseline's user step, ``sum (r - mu - b_i) / (n + reg_user)``, and residuals."""
        den = len(items) + float(self.reg_user)  # 0 only for an empty history at reg_user 0: bias 0
        bu = float((values - self.global_mean_ - self.item_bias_[items]).sum() / den) if den > 0 else 0.0
        resid = values - (self.global_mean_ + bu + self.item_bias_[items])
        self.user_residuals_ = append_seen_row(self.user_residuals_, items, resid, user)
        return {"user_bias_": np.asarray(bu)}
