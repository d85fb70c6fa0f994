"""VBPR: visual Bayesian personalised ranking (He & McAuley 2016), generalised to any content modality.

Shapes: ``U`` users, ``I`` items, ``K`` latent factors, ``K2`` content factors, ``F`` content width.

``x_ui = b_i + gamma_u . gamma_i + theta_u . (E f_i) + beta . f_i``

where ``f_i`` ``[F]`` concatenates one or several named ``SideInfo.item_features`` modalities (each row
imputed when missing, L2-normalised and weighted as in :func:`fusionrec.data.side.fuse_modalities`),
``E`` ``[K2, F]`` projects content into the user's content-taste space ``theta_u`` and ``beta`` is a
content bias.  Trained by BPR (Adagrad by default, or SGD, on sampled triples,
:mod:`fusionrec.models._kernels.vbpr`); the fit warns (:class:`~fusionrec.errors.CollapseWarning`) when the
result recommends nearly the same items to everyone.

Cold items (no training interactions) have ``gamma_i = 0`` and ``b_i = 0`` (they are never sampled: negatives
are drawn among items with interactions), so they are scored from content,
``theta_u . (E f_i) + beta . f_i``.  The cold-start API is the one documented in
:mod:`fusionrec.models.hybrid` (``add_items``, ``fold_in_user``); VBPR has no user features, so a user with
no items gets the non-personalised ``b_i + beta . f_i``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp

from fusionrec._progress import progress
from fusionrec.data.interactions import Interactions
from fusionrec.data.side import fuse_modalities
from fusionrec.errors import ConfigError, DataError
from fusionrec.models._foldin import fold_in_vector
from fusionrec.models._params import (
    MODALITY_NAMES,
    MODALITY_WEIGHTS,
    NONNEGATIVE,
    POSITIVE,
    POSITIVE_INT,
    SEED,
    Options,
)
from fusionrec.models.base import Recommender, SideInfo
from fusionrec.models.coldstart import check_history, grow_seen, place_user
from fusionrec.models.declaration import ROWS, Indexed
from fusionrec.models.factors import append_rows
from fusionrec.models.hybrid import IMPUTE, RepresentationFactors
from fusionrec.models.mf.bpr import INIT_STD, OPTIMIZERS, check_collapse

if TYPE_CHECKING:
    from fusionrec.models.explanation import ScoreParts

__all__ = ["VBPR", "sample_negatives"]

_CHUNK = 1 << 18


def sample_negatives(
    users: np.ndarray, keys_sorted: np.ndarray, n_items: int, pool: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """One negative per user drawn uniformly from ``pool``, redrawn while ``users * n_items + j`` is in ``keys_sorted``."""
    neg = pool[rng.integers(0, len(pool), size=len(users))].astype(np.int64)
    todo = np.arange(len(users))
    for _ in range(1000):
        if not todo.size:
            break
        k = users[todo].astype(np.int64) * n_items + neg[todo]
        at = np.minimum(np.searchsorted(keys_sorted, k), len(keys_sorted) - 1)
        todo = todo[keys_sorted[at] == k]
        neg[todo] = pool[rng.integers(0, len(pool), size=todo.size)]
    return neg


class VBPR(RepresentationFactors, Recommender):
    """VBPR over content features of any modality (module notes).

    Parameters
    ----------
    n_factors
        ``K``, the collaborative factors ``gamma``.
    content_factors
        ``K2``, the width of ``theta_u`` and of ``E f_i``.
    lr
        Step size (Adagrad: the initial per-coordinate step; SGD: the step on the raw gradient).
    optimizer
        ``"adagrad"`` (default) or ``"sgd"``.  Plain SGD at its former default ``lr=0.01`` ended at
        item popularity (top-20 coverage under 5%) on ml-posters; Adagrad scales every coordinate's step.
    reg
        L2 penalty on ``gamma`` and ``theta``.
    reg_bias
        L2 penalty on the item biases ``b``.
    reg_content
        L2 penalty on ``E`` and ``beta``.
    epochs
        Passes of ``nnz`` sampled triples each.
    modalities
        Names in ``SideInfo.item_features`` (``None``: all, sorted).
    modality_weights
        Per-modality weight (default 1).
    impute
        Missing modality rows: ``"mean"`` (default) or ``"zero"``.
    seed
        Seeds the initial parameters and the triples.

    Attributes
    ----------
    user_factors_, item_factors_, item_bias_
        ``gamma_u [U, K]``, ``gamma_i [I, K]``, ``b [I]``.
    user_content_factors_, projection_, content_bias_
        ``theta [U, K2]``, ``E [K2, F]``, ``beta [F]``.
    item_content_
        ``f [I, F]`` (prepared content rows).
    modalities_, modality_dims_, modality_means_
        For :meth:`add_items`.
    loss_history_
        ``float64 [epochs]``: mean ``-ln sigma(x_uij)``.
    coverage_
        Top-20 item coverage measured after the fit (:func:`fusionrec.models.mf.bpr.check_collapse`).
    """

    #: tuning ranges (:mod:`fusionrec.tuning`): name -> (kind, low, high[, "log"]) or ("categorical", [choices]).
    #: ``lr`` starts at 0.01: at 1e-3 the default 30 epochs end under popularity (synthetic 400 x 300, 80/20: test
    #: NDCG@20 .173 vs MostPopular .223; .361 at 0.01)
    _search_space: ClassVar[dict[str, tuple[Any, ...]]] = {
        "n_factors": ("int", 8, 64, "log"),
        "content_factors": ("int", 8, 64, "log"),
        "lr": ("float", 0.01, 0.2, "log"),
        "reg": ("float", 1e-5, 0.1, "log"),
        "epochs": ("int", 10, 60),
    }

    uses_side_info = True
    #: declaration (:mod:`fusionrec.models.declaration`): ``gamma_u``, ``theta_u`` per user; ``gamma_i``, ``b_i`` and
    #: the content row ``f_i`` per item.  The projection ``E`` ``[K2, F]`` and the content bias ``beta`` ``[F]`` are
    #: per content column, shared by every item (an item's content score ``theta_u . E f_i + beta . f_i`` is
    #: computed from its row, never stored)
    user_state: ClassVar[dict[str, Indexed]] = {"user_factors_": ROWS, "user_content_factors_": ROWS}
    item_state: ClassVar[dict[str, Indexed]] = {"item_factors_": ROWS, "item_bias_": ROWS, "item_content_": ROWS}
    modality_param = "modalities"
    can_fold_in = True
    can_add_items = True
    explanation_hooks = frozenset({"score_parts"})
    #: cached item representations (not persisted; rebuilt when the items change)
    _reps: tuple[np.ndarray, np.ndarray] | None = None

    factor_spec = None  # factors() and add_item_vectors are computed from the content projection (below)
    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        "n_factors": [*POSITIVE_INT],
        "content_factors": [*POSITIVE_INT],
        "lr": [*POSITIVE],
        "optimizer": [Options(OPTIMIZERS)],
        "reg": [*NONNEGATIVE],
        "reg_bias": [*NONNEGATIVE],
        "reg_content": [*NONNEGATIVE],
        "epochs": [*POSITIVE_INT],
        "modalities": [*MODALITY_NAMES],
        "modality_weights": [*MODALITY_WEIGHTS],
        "impute": [Options(IMPUTE)],
        "seed": [*SEED],
    }
    #: the library's one vocabulary (the former names still work, with a FutureWarning)
    _renamed_params: ClassVar[dict[str, str]] = {
        "learning_rate": "lr",
        "regularization": "reg",
        "bias_regularization": "reg_bias",
        "content_regularization": "reg_content",
    }

    def __init__(
        self,
        *,
        n_factors: int = 32,
        content_factors: int = 32,
        lr: float = 0.05,
        optimizer: str = "adagrad",
        reg: float = 0.001,
        reg_bias: float = 0.001,
        reg_content: float = 0.0001,
        epochs: int = 30,
        modalities: list[str] | None = None,
        modality_weights: dict[str, float] | None = None,
        impute: str = "mean",
        seed: int = 0,
    ) -> None:
        self.n_factors = n_factors
        self.content_factors = content_factors
        self.lr = lr
        self.optimizer = optimizer
        self.reg = reg
        self.reg_bias = reg_bias
        self.reg_content = reg_content
        self.epochs = epochs
        self.modalities = modalities
        self.modality_weights = modality_weights
        self.impute = impute
        self.seed = seed

    def _fit(self, train: Interactions, side: SideInfo | None) -> None:
        if side is None or not side.item_features:
            raise ConfigError(
                "VBPR needs item content: fit(train, side) with side.item_features "
                "(e.g. fusionrec.features.build_side_info(dataset))"
            )
        names = sorted(side.item_features) if self.modalities is None else list(self.modalities)
        if not names:
            raise ConfigError("modalities must name at least one item feature modality")
        content, dims, means = fuse_modalities(
            side.item_features, names, modality_weights=self.modality_weights, impute=str(self.impute),
            present=side.item_present,
        )  # fmt: skip
        if content.shape[0] != train.n_items:
            raise DataError(
                f"item features have {content.shape[0]} rows for {train.n_items} items; align them with the train id map"
            )
        from fusionrec.models._kernels.vbpr import vbpr_epoch
        from fusionrec.models.mf.bpr import entry_keys

        m = sp.csr_matrix(train.matrix, copy=True)
        m.sum_duplicates()
        m.eliminate_zeros()
        m.sort_indices()
        counts_i = np.diff(m.tocsc().indptr)
        pool = np.flatnonzero(counts_i > 0)
        counts_u = np.diff(m.indptr)
        # users who have every item of the pool have no negative: leave their entries out
        full = counts_u >= len(pool)
        eligible = np.flatnonzero(np.repeat(~full, counts_u))
        k1, k2, nf = int(self.n_factors), int(self.content_factors), content.shape[1]
        rng = np.random.default_rng(self.seed)

        def init(*shape: int) -> np.ndarray:
            return (rng.standard_normal(shape, dtype=np.float32) * INIT_STD).astype(np.float32)

        G_u, G_i = init(train.n_users, k1), init(train.n_items, k1)
        T = init(train.n_users, k2)
        E = init(k2, nf)
        b = np.zeros(train.n_items, np.float32)
        beta = np.zeros(nf, np.float32)
        lr = float(self.lr)
        reg, reg_b, reg_e = float(self.reg), float(self.reg_bias), float(self.reg_content)
        rows, keys = entry_keys(m)
        adagrad = self.optimizer == "adagrad"
        acc = [np.zeros_like(a) for a in (G_u, G_i, b, T, E, beta)]
        losses: list[float] = []
        if len(eligible) and len(pool) > 1:
            for epoch in progress(range(int(self.epochs)), total=int(self.epochs), desc="VBPR"):
                total = 0.0
                for start in range(0, len(eligible), _CHUNK):
                    size = min(_CHUNK, len(eligible) - start)
                    pick = eligible[rng.integers(0, len(eligible), size=size)]
                    users = rows[pick]
                    pos = m.indices[pick].astype(np.int64)
                    neg = sample_negatives(users, keys, m.shape[1], pool, rng)
                    total += vbpr_epoch(
                        G_u, G_i, b, T, E, beta, content,
                        users.astype(np.int32), pos.astype(np.int32), neg.astype(np.int32), lr, reg, reg_b, reg_e,
                        adagrad, *acc,
                    )  # fmt: skip
                losses.append(-total / len(eligible))
                self._end_epoch(
                    epoch, losses[-1], user_factors_=G_u, item_factors_=G_i, item_bias_=b, user_content_factors_=T,
                    projection_=E, content_bias_=beta, item_content_=content, _reps=None,
                )  # fmt: skip
        if not all(np.isfinite(a).all() for a in (G_u, G_i, T, E, b, beta)):
            raise ConfigError("VBPR diverged (non-finite parameters); lower lr")
        G_i[counts_i == 0] = 0.0
        b[counts_i == 0] = 0.0
        self.user_factors_, self.item_factors_, self.item_bias_ = G_u, G_i, b
        self.user_content_factors_, self.projection_, self.content_bias_ = T, E, beta
        self.item_content_ = content
        self.modalities_ = np.array(names, dtype=str)
        self.modality_dims_ = dims
        self.modality_means_ = means
        self.loss_history_ = np.asarray(losses, dtype=np.float64)
        self._reps = None
        self.coverage_ = check_collapse(self, stacklevel=4)

    # ------------------------------------------------------------------ scoring (RepresentationFactors: Factors.scores)
    def item_representations(self) -> tuple[np.ndarray, np.ndarray]:
        """``(q float32 [I, K + K2], c float32 [I])``: ``[gamma_i, E f_i]`` and ``b_i + beta . f_i``."""
        self._check_fitted()
        reps = getattr(self, "_reps", None)
        if reps is None or reps[0].shape[0] != self.n_items_:
            proj = self.item_content_ @ self.projection_.T
            q = np.hstack([self.item_factors_, proj]).astype(np.float32)
            c = (self.item_bias_ + self.item_content_ @ self.content_bias_).astype(np.float32)
            reps = (q, c)
            self._reps = reps
        return reps

    def user_representations(self, users: np.ndarray | None = None) -> np.ndarray:
        """``[gamma_u, theta_u]`` ``float32 [U, K + K2]`` (all users when ``None``)."""
        self._check_fitted()
        sel = np.arange(self.n_users_) if users is None else np.atleast_1d(np.asarray(users, dtype=np.int64))
        return np.hstack([self.user_factors_[sel], self.user_content_factors_[sel]]).astype(np.float32)

    def score_parts(self, user: int, item: int, side: SideInfo | None = None) -> ScoreParts:
        """Explanation hook (:mod:`fusionrec.explain`): the exact split of ``x_ui`` by modality.

        ``"collaborative"`` = ``b_i + gamma_u . gamma_i``; each modality ``m`` =
        ``theta_u . (E[:, m] f_i[m]) + beta[m] . f_i[m]`` over its columns of the content row (``side`` unused).
        """
        from fusionrec.models.explanation import ScoreParts

        self._check_fitted()
        u, i = int(user), int(item)
        f = self.item_content_[i].astype(np.float64)
        theta = self.user_content_factors_[u].astype(np.float64)
        parts = {
            "collaborative": float(self.item_bias_[i])
            + float(self.user_factors_[u].astype(np.float64) @ self.item_factors_[i].astype(np.float64))
        }
        start = 0
        for name, d in zip(self.modalities_.tolist(), self.modality_dims_.tolist()):
            cols = slice(start, start + int(d))
            start += int(d)
            part = theta @ (self.projection_[:, cols].astype(np.float64) @ f[cols]) + self.content_bias_[cols] @ f[cols]
            parts[str(name)] = float(part)
        return ScoreParts(parts, "exact", "none: the score is the sum of the parts")

    def add_item_vectors(self, vectors: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
        """Append items with effective vectors ``[gamma_i, E f_i]`` and biases ``b_i + beta . f_i``.

        The content part is realised by the minimum-norm content row ``f = pinv(E) t`` (exact when ``E`` has full
        row rank, i.e. the content is at least ``content_factors`` wide) and ``b_i`` absorbs ``beta . f``.
        """
        self._check_fitted()
        vec, b = self._check_item_vectors(vectors, bias, has_bias=True)
        k1 = self.user_factors_.shape[1]
        f = np.linalg.lstsq(self.projection_.astype(np.float64), vec[:, k1:].T.astype(np.float64), rcond=None)[0].T
        append_rows(self, {
            "item_content_": f, "item_factors_": vec[:, :k1], "item_bias_": b - f @ self.content_bias_,
        })  # fmt: skip
        return self._grow_items(len(vec))

    # ------------------------------------------------------------------ cold start
    def add_items(self, features: dict[str, np.ndarray]) -> np.ndarray:
        """Append new items from their content; returns their indices (cold-start API, :mod:`~fusionrec.models.hybrid`).

        A modality left out of ``features`` (or an all-zero row) counts as missing and is imputed.
        """
        self._check_fitted()
        if not isinstance(features, dict) or not features:
            raise DataError("add_items expects {modality: float [m, d]} for the fitted modalities")
        names = [str(n) for n in self.modalities_]
        unknown = sorted(set(features) - set(names))
        if unknown:
            raise DataError(f"add_items got features {unknown} the model was not fitted with; fitted: {names}")
        sizes = {np.atleast_2d(np.asarray(v)).shape[0] for v in features.values()}
        if len(sizes) != 1:
            raise DataError(f"add_items needs the same number of rows in every modality, got {sorted(sizes)}")
        n = sizes.pop()
        full = {}
        for name, d in zip(names, self.modality_dims_.tolist()):
            x = features.get(name)
            x = np.zeros((n, d), np.float32) if x is None else np.atleast_2d(np.asarray(x, dtype=np.float32))
            if x.shape != (n, d):
                raise DataError(f"add_items: {name!r} must be [{n}, {d}], got {x.shape}")
            full[name] = x
        new, _, _ = fuse_modalities(
            full, names, modality_weights=self.modality_weights, impute=str(self.impute), means=self.modality_means_
        )
        start = self.n_items_
        self.item_content_ = np.vstack([self.item_content_, new]).astype(np.float32)
        self.item_factors_ = np.vstack([self.item_factors_, np.zeros((n, self.item_factors_.shape[1]), np.float32)])
        self.item_bias_ = np.concatenate([self.item_bias_, np.zeros(n, np.float32)])
        self.n_items_ = start + n
        self.seen_ = grow_seen(self.seen_, self.n_users_, self.n_items_)
        self._reps = None
        return np.arange(start, self.n_items_, dtype=np.int64)

    def fold_in_user(
        self,
        items: np.ndarray | list[int],
        values: np.ndarray | None = None,
        *,
        user_features: dict[str, np.ndarray] | None = None,
        user: int | None = None,
        reg: float = 0.01,
    ) -> np.ndarray:
        """Add (or re-fold) a user from their items: ``[gamma_u, theta_u]`` by :func:`fold_in_vector`.

        Returns ``int64 [1]``, the user's index.  VBPR has no user features (``user_features`` raises).
        """
        self._check_fitted()
        if user_features is not None:
            raise ConfigError("VBPR has no user features; use HybridMF(user_features=...) for profile-only users")
        uniq, weights = check_history(items, values, self.n_items_, self.n_users_, user)
        q, c = self.item_representations()
        observed = np.flatnonzero(np.diff(sp.csc_matrix(self.seen_).indptr) > 0)
        v = fold_in_vector(q, c, uniq, weights, reg=reg, negatives=observed, seed=int(self.seed))
        k1 = self.user_factors_.shape[1]
        rows = {"user_factors_": v[:k1], "user_content_factors_": v[k1:]}
        return place_user(self, rows, uniq, weights, user)
