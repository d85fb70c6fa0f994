"""Implicit-feedback alternating least squares (Hu, Koren & Volinsky 2008).

Given observed values ``r_ui >= 0`` (counts, ratings or ones) the model sets the preference
``p_ui = 1`` on observed entries (0 elsewhere) and the confidence ``c_ui = 1 + alpha * r_ui``
(1 elsewhere), and minimises

``L(X, Y) = sum_{u, i} c_ui (p_ui - x_u . y_i)^2 + reg (sum_u |x_u|^2 + sum_i |y_i|^2)``

over all user x item cells, by alternating exact (Cholesky) or approximate (conjugate-gradient,
Takács, Pilászy & Tikk 2011) solutions of the per-user and per-item normal equations.

Note on peers: implicit 0.7 uses ``c_ui = alpha * r_ui`` on observed entries (no ``1 +``); both
weight unobserved cells by 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from fusionrec._progress import progress
from fusionrec.data.interactions import Interactions
from fusionrec.errors import ConfigError, InvalidValueError
from fusionrec.models._params import BOOL, NONNEGATIVE, POSITIVE_INT, SEED, Interval, Options
from fusionrec.models.base import Recommender, SideInfo
from fusionrec.models.coldstart import check_history, history_row, place_user
from fusionrec.models.factors import FactorMixin, FactorSpec

__all__ = ["ALS", "confidence_matrix"]

_SOLVERS = ("cg", "cholesky")


def confidence_matrix(matrix: sp.csr_matrix, alpha: float, binarize: bool) -> sp.csr_matrix:
    """CSR of confidences ``1 + alpha * r`` on the stored entries (``r = 1`` when ``binarize``).

    Raises :class:`~fusionrec.errors.InvalidValueError` on negative or non-finite values.
    """
    m = sp.csr_matrix(matrix)
    if m.has_canonical_format:
        # share indptr/indices with the input (saves a copy on large matrices); only data is new
        m = sp.csr_matrix((m.data, m.indices, m.indptr), shape=m.shape, copy=False)
        m.has_canonical_format = True
    else:
        m = m.copy()
        m.sum_duplicates()
    if m.nnz and (not np.isfinite(m.data).all() or m.data.min() < 0):
        raise InvalidValueError(
            "ALS needs non-negative finite interaction values (counts, ratings or ones); "
            "clip or binarise the data (ALS(binarize=True)) first"
        )
    r = np.ones_like(m.data) if binarize else m.data
    m.data = (1.0 + np.float32(alpha) * r).astype(np.float32)
    return m


def _gram(Y: np.ndarray) -> np.ndarray:
    Y64 = Y.astype(np.float64)
    return Y64.T @ Y64


class ALS(FactorMixin, Recommender):
    """Weighted matrix factorisation for implicit feedback, solved by alternating least squares.

    Minimises ``sum_{u,i} c_ui (p_ui - x_u . y_i)^2 + reg (|X|^2 + |Y|^2)`` with
    ``p_ui = 1`` on observed entries and ``c_ui = 1 + alpha * r_ui`` (``r_ui = 1`` when
    ``binarize``), unobserved cells having ``p = 0, c = 1``.  Scores are ``x_u . y_i``.

    Each half-step solves, for every user ``u`` with the item factors ``Y`` fixed,
    ``(Y^T Y + reg I + Y^T (C_u - I) Y) x_u = Y^T C_u p_u`` (and symmetrically for items), using
    the ``Y^T Y`` precomputation so a user costs ``O(n_u f^2)`` (Cholesky) or
    ``O(cg_steps (n_u f + f^2))`` (conjugate gradient warm-started from the previous factors).

    Parameters
    ----------
    n_factors
        Latent dimension ``f``.
    reg
        L2 penalty on every user and item factor (not scaled by counts, as in implicit).  The default 10 is the
        value chosen on valid NDCG@20 by ``benchmarks/topn_implicit.py`` (grid 0.1 / 1 / 10, its edge extended to
        100) on both ml-latest-small and ml-100k, and by ``benchmarks/posters_topn.py`` on ml-posters; the former
        default 0.01 (implicit's) overfits: on ml-100k (80/20, binarised) test NDCG@20 .358 at 0.01 against .401
        at 10, and at ``n_factors=256`` (the search space's upper edge) .175, below MostPopular's .212, against .387
        at 10.
    alpha
        Confidence slope: ``c = 1 + alpha * r``.
    epochs
        Alternating sweeps (users then items).
    solver
        ``"cg"`` (default, ``cg_steps`` conjugate-gradient steps per row and sweep) or
        ``"cholesky"`` (exact solve of each row).
    cg_steps
        CG steps per row and sweep (3 as in implicit); ignored by the Cholesky solver.
    binarize
        Use ``r = 1`` for every stored entry instead of its value.
    seed
        Seeds the initial factors (uniform in ``[0, 0.01)``); with a fixed seed the fit is
        reproducible, whatever the number of numba threads (rows are solved independently).
    track_loss
        Record the objective ``L`` after every iteration in ``loss_history_`` (costs about one
        CG step per iteration).

    Attributes
    ----------
    user_factors_, item_factors_
        ``float32 [n_users, f]`` and ``float32 [n_items, f]``.
    loss_history_
        ``float64 [epochs]`` objective after each iteration (empty unless ``track_loss``).
    """

    #: tuning ranges (:mod:`fusionrec.tuning`): name -> (kind, low, high[, "log"]) or ("categorical", [choices]).
    #: ``reg`` stops at 30: at 100 ALS ranks like popularity (ml-100k test NDCG@20 .220 vs .404 at 30; MostPopular
    #: .212; ml-latest-small valid .112 vs .22 at 10 in benchmarks/topn_implicit.py)
    _search_space: ClassVar[dict[str, tuple[Any, ...]]] = {
        "n_factors": ("int", 8, 256, "log"),
        "reg": ("float", 1e-3, 30.0, "log"),
        "alpha": ("float", 0.1, 50.0, "log"),
        "epochs": ("int", 5, 30),
    }

    #: declaration (:mod:`fusionrec.models.declaration`): the factors are its only per-user / per-item state (from
    #: ``factor_spec``); one user at a time (:meth:`fold_in_user`) or many in one solve (:meth:`fold_in_users`)
    can_fold_in = True
    can_batch_fold_in = True

    #: scores ``user_factors_ . item_factors_``; :meth:`fold_in_user` is the exact confidence-weighted solve
    factor_spec = FactorSpec(
        user="user_factors_", item="item_factors_", fold_in="confidence", regularization="reg",
        confidence="alpha",
    )  # fmt: skip

    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        # rank 1 orders every user's items alike (a scalar times one item vector): not a personalised model
        "n_factors": [Interval(int, 2, None)],
        # the weight is on the whole log (Hu et al.): above ~30 every factor shrinks to zero on ml-100k
        "reg": [Interval(float, 0, 30)],
        "alpha": [*NONNEGATIVE],
        "epochs": [*POSITIVE_INT],
        "solver": [Options(_SOLVERS)],
        "cg_steps": [*POSITIVE_INT],
        "binarize": [*BOOL],
        "seed": [*SEED],
        "track_loss": [*BOOL],
    }
    #: the library's one vocabulary (the former names still work, with a FutureWarning)
    _renamed_params: ClassVar[dict[str, str]] = {"regularization": "reg", "iterations": "epochs"}

    def __init__(
        self,
        *,
        n_factors: int = 64,
        reg: float = 10.0,
        alpha: float = 1.0,
        epochs: int = 15,
        solver: str = "cg",
        cg_steps: int = 3,
        binarize: bool = False,
        seed: int = 0,
        track_loss: bool = False,
    ) -> None:
        self.n_factors = n_factors
        self.reg = reg
        self.alpha = alpha
        self.epochs = epochs
        self.solver = solver
        self.cg_steps = cg_steps
        self.binarize = binarize
        self.seed = seed
        self.track_loss = track_loss

    # ------------------------------------------------------------------ fitting
    def _check_params(self) -> None:
        if self.solver == "cholesky" and self.reg <= 0:
            raise ConfigError("the Cholesky solver needs reg > 0 (the normal equations may be singular)")

    def _fit(self, train: Interactions, side: SideInfo | None) -> None:
        self._check_params()
        from threadpoolctl import threadpool_limits

        from fusionrec.models._kernels.als import als_row_losses

        cui = confidence_matrix(train.matrix, self.alpha, self.binarize)
        ciu = cui.T.tocsr()
        ciu.sort_indices()
        f = int(self.n_factors)
        rng = np.random.default_rng(self.seed)
        X = (rng.random((train.n_users, f), dtype=np.float32) * np.float32(0.01)).astype(np.float32)
        Y = (rng.random((train.n_items, f), dtype=np.float32) * np.float32(0.01)).astype(np.float32)
        losses = []
        # the f x f Gram products are tiny; multi-threaded BLAS right after a numba parallel sweep fights the
        # still-spinning numba threads (2 ms instead of 0.1 ms per product on ML-100K), so keep BLAS at 1 thread
        with threadpool_limits(limits=1, user_api="blas"):
            for epoch in progress(range(int(self.epochs)), total=int(self.epochs), desc="ALS"):
                self._sweep(cui, Y, X)
                self._sweep(ciu, X, Y)
                if self.track_loss:
                    rows = als_row_losses(cui.indptr, cui.indices, cui.data, X, Y, _gram(Y))
                    penalty = self.reg * (
                        float(np.square(X, dtype=np.float64).sum()) + float(np.square(Y, dtype=np.float64).sum())
                    )
                    losses.append(float(rows.sum()) + penalty)
                self._end_epoch(epoch, losses[-1] if self.track_loss else None, user_factors_=X, item_factors_=Y)
        self.user_factors_ = X
        self.item_factors_ = Y
        self.loss_history_ = np.asarray(losses, dtype=np.float64)

    def _sweep(self, conf: sp.csr_matrix, Y: np.ndarray, X: np.ndarray) -> None:
        """Solve every row of ``X`` (in place) against fixed ``Y``."""
        from fusionrec.models._kernels.als import als_cg_sweep, als_cholesky_sweep

        A0 = _gram(Y) + self.reg * np.eye(Y.shape[1])
        if self.solver == "cg":
            als_cg_sweep(conf.indptr, conf.indices, conf.data, Y, A0.astype(np.float32), X, int(self.cg_steps))
        else:
            als_cholesky_sweep(conf.indptr, conf.indices, conf.data, Y, A0, X)

    # ------------------------------------------------------------------ cold start
    def fold_in(self, rows: sp.spmatrix | sp.sparray | Interactions) -> np.ndarray:
        """Factors of new (or updated) users from their interaction rows, item factors fixed.

        Each row ``r`` (over the training items) gets the exact least-squares solution
        ``x = (Y^T Y + reg I + Y^T (C - I) Y)^{-1} Y^T C p`` — the user half-step of :meth:`fit`
        solved with Cholesky whatever ``solver`` was used.  An empty row gives the zero vector.

        Parameters
        ----------
        rows
            ``[n, n_items]`` sparse matrix (or :class:`Interactions` over the training item map)
            of interaction values, interpreted as in :meth:`fit` (``alpha``, ``binarize``).

        Returns
        -------
        ndarray
            ``float32 [n, factors]``; score items with ``factors @ item_factors_.T``.
        """
        self._check_fitted()
        from fusionrec.models._kernels.als import als_cholesky_sweep

        matrix = rows.matrix if isinstance(rows, Interactions) else rows
        if not sp.issparse(matrix):
            raise ConfigError("fold_in expects a scipy sparse matrix [n, n_items] or an Interactions")
        if matrix.shape[1] != self.n_items_:
            raise ConfigError(
                f"fold_in rows have {matrix.shape[1]} columns but the model knows {self.n_items_} items; "
                "express the rows over the training item map"
            )
        if self.reg <= 0:
            raise ConfigError("fold_in needs reg > 0")
        conf = confidence_matrix(sp.csr_matrix(matrix), self.alpha, self.binarize)
        Y = self.item_factors_
        out = np.zeros((conf.shape[0], Y.shape[1]), dtype=np.float32)
        A0 = self._item_gram(Y) + self.reg * np.eye(Y.shape[1])  # kept across fold-ins (one per served event)
        als_cholesky_sweep(conf.indptr, conf.indices, conf.data, Y, A0, out)
        return out

    def fold_in_user(
        self,
        items: np.ndarray | Sequence[int],
        values: np.ndarray | None = None,
        *,
        user_features: dict[str, np.ndarray] | None = None,
        user: int | None = None,
    ) -> np.ndarray:
        """Place a new user (``user=None``) or re-place user ``user`` from their history; returns ``int64 [1]``.

        The cold-start contract of :mod:`fusionrec.models.coldstart`: the factors come from :meth:`fold_in`
        (exact least squares against the fixed item factors), the history becomes the user's seen row.
        """
        self._check_fitted()
        if user_features is not None:
            raise ConfigError("ALS has no user features; use HybridMF(user_features=...) for profile-only users")
        uniq, weights = check_history(items, values, self.n_items_, self.n_users_, user)
        vec = self.fold_in(history_row(uniq, weights, self.n_items_))[0]
        return place_user(self, {"user_factors_": vec}, uniq, weights, user)

    def fold_in_users(self, histories: Sequence[tuple[np.ndarray, np.ndarray | None]]) -> np.ndarray:
        """Place many new users at once: ``fold_in_user(items, values)`` for each ``(items, values)`` in turn, in
        one :meth:`fold_in` and one append (serving's bulk ingestion); returns their indices, ``int64 [m]``."""
        self._check_fitted()
        checked = [check_history(i, v, self.n_items_, self.n_users_) for i, v in histories]
        start = int(self.n_users_)
        if not checked:
            return np.empty(0, np.int64)
        indptr = np.concatenate([[0], np.cumsum([len(i) for i, _ in checked])])
        rows = sp.csr_matrix(
            (np.concatenate([w for _, w in checked]), np.concatenate([i for i, _ in checked]), indptr),
            shape=(len(checked), self.n_items_),
        )
        vecs = self.fold_in(rows)
        self.user_factors_ = np.concatenate([self.user_factors_, vecs.astype(self.user_factors_.dtype)])
        seen = sp.csr_matrix(self.seen_)
        self.seen_ = sp.vstack([seen, rows.astype(seen.dtype)], format="csr")
        self.n_users_ = start + len(checked)
        return np.arange(start, self.n_users_, dtype=np.int64)

    # ------------------------------------------------------------------ scoring (FactorMixin.score: Factors.scores)
    def item_embeddings(self) -> np.ndarray:
        return self.item_factors_
