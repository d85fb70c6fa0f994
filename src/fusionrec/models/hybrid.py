"""Hybrid matrix factorisation over identity and content features (the LightFM family, Kula 2015).

Shapes: ``U`` users, ``I`` items, ``f`` factors, ``D`` the width of the concatenated side features.

Users and items are represented by the sum of the embeddings of their features.  An item's features are
its identity (a one-hot column, weight ``w_i``) and the dense rows of one or several named
``SideInfo.item_features`` modalities (each row L2-normalised and multiplied by the modality weight, then the
whole row ``[w_i, x_i]`` normalised, see ``normalize``); users likewise with ``SideInfo.user_features``:

``r_i = w_i ID_i + sum_d x_id E_d``,  ``b_i = w_i IDb_i + sum_d x_id Eb_d``,  ``s_ui = r_u . r_i + b_i``.

Because an item is its features, an item with no interactions (cold) is scored from its content, and so is
a user known only by profile attributes.  Identity embeddings of items and users without training
interactions are never updated and are set to zero, so such entities are scored from content alone.

Missing modalities: an item without (say) a poster has a zero row and ``SideInfo.item_present[name]`` False;
with ``impute="mean"`` (default) its row is replaced by the mean raw row of the items that have the modality
(so the missing term contributes the "average item" instead of nothing), with ``impute="zero"`` the term is
masked (left out).

The cold-start API (the contract for content-aware models)
----------------------------------------------------------
``add_items(features: dict[str, ndarray]) -> ndarray``
    Appends new items described by ``{modality: float [m, d]}`` (every fitted modality; all-zero rows mean
    "missing" and are imputed as at fit time) and returns their indices ``n_items .. n_items + m - 1``.
    They are recommendable at once (content only; no identity term).
``fold_in_user(items, values=None, *, user_features=None, user=None) -> ndarray``
    A user's free vector (identity embedding) is learned from their interacted ``items`` against the fixed
    item representations (:func:`fold_in_vector`, convex BPR log-loss + L2, no refit); ``user_features``
    (``{modality: float [d]}``) give the profile part.  ``items=[]`` with ``user_features`` makes a
    profile-only user.  Returns ``int64 [1]``: the new user's index (appended), or ``user`` when an
    existing index is given (re-folded in place).  The items become that user's seen items.
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
    BOOL,
    MODALITY_NAMES,
    MODALITY_WEIGHTS,
    NONNEGATIVE,
    POSITIVE,
    POSITIVE_INT,
    SEED,
    Options,
)
from fusionrec.models.base import Recommender, SideInfo
from fusionrec.models.coldstart import append_seen_row, check_history, grow_seen
from fusionrec.models.declaration import ROWS, Indexed
from fusionrec.models.factors import FactorMixin, Factors, append_rows

if TYPE_CHECKING:
    from fusionrec.models.explanation import ScoreParts

__all__ = ["HybridMF", "RepresentationFactors", "fold_in_vector"]

LOSSES = ("warp", "bpr")
SCHEDULES = ("adagrad", "sgd")
NORMALIZE = ("l2", "l1", "none")
IMPUTE = ("mean", "zero")


# ---------------------------------------------------------------------------------------------- helpers
def _normalise_rows(identity: np.ndarray, x: np.ndarray, how: str) -> tuple[np.ndarray, sp.csr_matrix]:
    """Scale each row ``[identity_e, x_e]`` to unit L2 / L1 norm (or leave it); returns ``(w, CSR of x)``."""
    identity = identity.astype(np.float64)
    if how == "l2":
        norm = np.sqrt(identity**2 + np.square(x, dtype=np.float64).sum(axis=1))
    elif how == "l1":
        norm = np.abs(identity) + np.abs(x).sum(axis=1, dtype=np.float64)
    else:
        norm = np.ones(len(identity))
    norm = np.where(norm > 0, norm, 1.0)
    w = (identity / norm).astype(np.float32)
    csr = sp.csr_matrix((x / norm[:, None]).astype(np.float32))
    csr.eliminate_zeros()
    csr.sort_indices()
    return w, csr


# ---------------------------------------------------------------------------------------------- computed factors
class RepresentationFactors(FactorMixin):
    """Factor models whose user and item vectors are computed from their parameters (HybridMF, VBPR).

    The class implements :meth:`item_representations` (``(vectors [I, d], biases [I])``, cached until the items
    change) and :meth:`user_representations` (``[U, d]`` of the users asked for); :meth:`score`, :meth:`predict` and
    :meth:`factors` are then :meth:`Factors.scores` / :meth:`Factors.pair_scores` of those vectors, the one factor
    scoring path (only the requested users' vectors are computed).
    """

    def item_representations(self) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def user_representations(self, users: np.ndarray | None = None) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _factors_of(self, users: np.ndarray | None) -> Factors:
        """:class:`Factors` whose user rows are ``users`` in order (all users when ``None``)."""
        vectors, bias = self.item_representations()
        return Factors(self.user_representations(users), vectors, None, bias)

    def factors(self) -> Factors:
        """``Factors(user_representations(), *item_representations())`` (computed; item side cached; no user bias)."""
        self._check_fitted()
        return self._factors_of(None)

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """``r_u . r_i + b_i`` for ``users`` x ``items`` (all items when ``None``), ``float32 [U, I]``."""
        self._check_fitted()
        users = np.atleast_1d(np.asarray(users, dtype=np.int64))
        return self._factors_of(users).scores(np.arange(len(users)), items)

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """``r_u . r_i + b_i`` for the pairs ``(users[n], items[n])``, ``float32 [N]``."""
        self._check_fitted()
        uniq, inverse = np.unique(np.asarray(users, dtype=np.int64).ravel(), return_inverse=True)
        return self._factors_of(uniq).pair_scores(inverse, items)

    def item_embeddings(self) -> np.ndarray:
        return self.item_representations()[0]


# ---------------------------------------------------------------------------------------------- model
class HybridMF(RepresentationFactors, Recommender):
    """LightFM-style hybrid factorisation: entities are sums of feature embeddings (module notes).

    Trained on the stored entries of ``train`` as positives (values ignored) with the WARP or BPR loss,
    per-parameter Adagrad or SGD, numba kernels (:mod:`fusionrec.models._kernels.hybrid`).  Negatives are
    drawn among the items that have training interactions.

    Parameters
    ----------
    n_factors
        Embedding dimension ``f``.
    loss
        ``"warp"`` (default; draws up to ``max_sampled`` negatives per positive until one violates the
        margin, weight ``ln floor((I - 1) / N)``) or ``"bpr"``.
    learning_schedule
        ``"adagrad"`` (default) or ``"sgd"``.
    lr
        Step size.
    reg_item, reg_user
        L2 penalty on the item / user parameters a step touches.
    max_sampled
        WARP's largest number of negatives drawn for one positive.
    epochs
        Passes over the positives (shuffled each epoch).
    item_features, user_features
        Names in ``SideInfo.item_features`` / ``user_features`` (``None``: all present; ``[]``: none).
    modality_weights
        Per-modality weight ``w_m`` (default 1), users and items alike.
    item_identity, user_identity
        Include the identity feature (pure collaborative part).  With both False and no features there is
        nothing to learn.
    normalize
        Row normalisation of ``[identity, features]``: ``"l2"`` (default), ``"l1"`` (LightFM's) or ``"none"``.
    impute
        Missing modality rows: ``"mean"`` (default) or ``"zero"``.
    seed
        Seeds the initial embeddings, the epoch orders and the negative draws.

    Attributes
    ----------
    item_id_weight_, item_identity_, item_identity_bias_
        ``float32 [I]``, ``[I, f]``, ``[I]``: identity weight and embeddings.
    item_x_ : csr_matrix
        ``float32 [I, D]`` normalised item side features; ``item_emb_`` ``[D, f]``, ``item_emb_bias_`` ``[D]``.
    user_id_weight_, user_identity_, user_x_, user_emb_
        The same for users (no user bias: it does not change a ranking).
    item_modalities_, item_modality_dims_, item_modality_means_ (and ``user_*``)
        Names, widths and raw means of the modalities, reused by :meth:`add_items` / :meth:`fold_in_user`.
    loss_history_
        ``float64 [epochs]`` mean loss per positive.
    """

    #: tuning ranges (:mod:`fusionrec.tuning`): name -> (kind, low, high[, "log"]) or ("categorical", [choices]).
    #: ``lr`` starts at 0.01: at 1e-3 the default 20 epochs end under popularity (synthetic 400 x 300, 80/20: test
    #: NDCG@20 .177 vs MostPopular .223; .283 at 0.01)
    _search_space: ClassVar[dict[str, tuple[Any, ...]]] = {
        "n_factors": ("int", 8, 64, "log"),
        "lr": ("float", 0.01, 0.2, "log"),
        "reg_item": ("float", 1e-7, 1e-2, "log"),
        "reg_user": ("float", 1e-7, 1e-2, "log"),
        "epochs": ("int", 5, 50),
        "loss": ("categorical", ["warp", "bpr"]),
    }

    uses_side_info = True
    #: declaration (:mod:`fusionrec.models.declaration`): a user's / an item's identity weight, identity embedding
    #: (and bias) and normalised side-feature row; the feature embeddings ``*_emb_`` ``[D, f]`` are per feature,
    #: shared by every entity that has the feature, and the modality names / widths / means are aggregates
    user_state: ClassVar[dict[str, Indexed]] = {"user_id_weight_": ROWS, "user_identity_": ROWS, "user_x_": ROWS}
    item_state: ClassVar[dict[str, Indexed]] = {
        "item_id_weight_": ROWS,
        "item_identity_": ROWS,
        "item_identity_bias_": ROWS,
        "item_x_": ROWS,
    }
    modality_param = "item_features"
    can_fold_in = True
    can_add_items = True
    explanation_hooks = frozenset({"score_parts"})
    #: cached item representations (not persisted; rebuilt when the items change)
    _reps: tuple[np.ndarray, np.ndarray] | None = None

    factor_spec = None  # factors() and add_item_vectors are computed from the feature embeddings (below)
    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        "n_factors": [*POSITIVE_INT],
        "loss": [Options(LOSSES)],
        "learning_schedule": [Options(SCHEDULES)],
        "lr": [*POSITIVE],
        "reg_item": [*NONNEGATIVE],
        "reg_user": [*NONNEGATIVE],
        "max_sampled": [*POSITIVE_INT],
        "epochs": [*POSITIVE_INT],
        "item_features": [*MODALITY_NAMES],
        "user_features": [*MODALITY_NAMES],
        "modality_weights": [*MODALITY_WEIGHTS],
        "item_identity": [*BOOL],
        "user_identity": [*BOOL],
        "normalize": [Options(NORMALIZE)],
        "impute": [Options(IMPUTE)],
        "seed": [*SEED],
    }
    #: the library's one vocabulary (the former names still work, with a FutureWarning)
    _renamed_params: ClassVar[dict[str, str]] = {
        "learning_rate": "lr",
        "item_alpha": "reg_item",
        "user_alpha": "reg_user",
    }

    def __init__(
        self,
        *,
        n_factors: int = 32,
        loss: str = "warp",
        learning_schedule: str = "adagrad",
        lr: float = 0.05,
        reg_item: float = 0.0,
        reg_user: float = 0.0,
        max_sampled: int = 10,
        epochs: int = 20,
        item_features: list[str] | None = None,
        user_features: list[str] | None = None,
        modality_weights: dict[str, float] | None = None,
        item_identity: bool = True,
        user_identity: bool = True,
        normalize: str = "l2",
        impute: str = "mean",
        seed: int = 0,
    ) -> None:
        self.n_factors = n_factors
        self.loss = loss
        self.learning_schedule = learning_schedule
        self.lr = lr
        self.reg_item = reg_item
        self.reg_user = reg_user
        self.max_sampled = max_sampled
        self.epochs = epochs
        self.item_features = item_features
        self.user_features = user_features
        self.modality_weights = modality_weights
        self.item_identity = item_identity
        self.user_identity = user_identity
        self.normalize = normalize
        self.impute = impute
        self.seed = seed

    # ------------------------------------------------------------------ fitting
    def _side(
        self, n: int, names: list[str] | None, store: dict[str, np.ndarray], present: dict[str, np.ndarray], what: str
    ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
        chosen = sorted(store) if names is None else list(names)
        if not chosen:
            return [], np.zeros((n, 0), np.float32), np.zeros(0, np.int64), np.zeros(0, np.float32)
        x, dims, means = fuse_modalities(
            store, chosen, modality_weights=self.modality_weights, impute=str(self.impute), present=present
        )
        if x.shape[0] != n:
            raise DataError(f"{what} features have {x.shape[0]} rows for {n} {what}s; align them with the train id map")
        return chosen, x, dims, means

    def _fit(self, train: Interactions, side: SideInfo | None) -> None:
        side = side if side is not None else SideInfo()
        if self.item_features and not side.item_features:
            raise ConfigError(
                f"HybridMF was asked for item features {self.item_features} but got none: pass "
                "fit(train, side) with side.item_features (fusionrec.features.build_side_info(dataset))"
            )
        i_names, i_x, i_dims, i_means = self._side(
            train.n_items, self.item_features, side.item_features, side.item_present, "item"
        )
        u_names, u_x, u_dims, u_means = self._side(
            train.n_users, self.user_features, side.user_features, side.user_present, "user"
        )
        if not self.item_identity and i_x.shape[1] == 0:
            raise ConfigError("items have neither identity nor side features; set item_identity=True or pass features")
        if not self.user_identity and u_x.shape[1] == 0:
            raise ConfigError("users have neither identity nor side features; set user_identity=True or pass features")
        self.item_modalities_ = np.array(i_names, dtype=str)
        self.item_modality_dims_ = i_dims
        self.item_modality_means_ = i_means
        self.user_modalities_ = np.array(u_names, dtype=str)
        self.user_modality_dims_ = u_dims
        self.user_modality_means_ = u_means

        f = int(self.n_factors)
        rng = np.random.default_rng(self.seed)
        n_u, n_i = train.n_users, train.n_items
        self.item_id_weight_, self.item_x_ = _normalise_rows(
            np.full(n_i, float(bool(self.item_identity))), i_x, str(self.normalize)
        )
        self.user_id_weight_, self.user_x_ = _normalise_rows(
            np.full(n_u, float(bool(self.user_identity))), u_x, str(self.normalize)
        )

        def init(rows: int) -> np.ndarray:
            return ((rng.random((rows, f), dtype=np.float32) - 0.5) / f).astype(np.float32)

        I_ID, I_E = init(n_i), init(i_x.shape[1])
        U_ID, U_E = init(n_u), init(u_x.shape[1])
        I_IDb = np.zeros(n_i, np.float32)
        I_Eb = np.zeros(i_x.shape[1], np.float32)

        m = sp.csr_matrix(train.matrix, copy=True)
        m.sum_duplicates()
        m.eliminate_zeros()
        m.sort_indices()
        users = np.repeat(np.arange(n_u, dtype=np.int32), np.diff(m.indptr))
        items = m.indices.astype(np.int32)
        negatives = np.flatnonzero(np.diff(m.tocsc().indptr) > 0).astype(np.int32)
        losses: list[float] = []
        if len(items) and len(negatives) > 1:
            from fusionrec.models._kernels.hybrid import hybrid_epoch

            acc = [np.ones_like(a) for a in (I_ID, I_IDb, I_E, I_Eb, U_ID, U_E)]
            ix, ux = self.item_x_, self.user_x_
            for _ in progress(range(int(self.epochs)), total=int(self.epochs), desc="HybridMF"):
                order = rng.permutation(len(items))
                total = hybrid_epoch(
                    users[order], items[order], m.indptr, m.indices, negatives,
                    self.item_id_weight_, I_ID, I_IDb, ix.indptr, ix.indices, ix.data, I_E, I_Eb,
                    acc[0], acc[1], acc[2], acc[3],
                    self.user_id_weight_, U_ID, ux.indptr, ux.indices, ux.data, U_E, acc[4], acc[5],
                    self.loss == "warp", int(self.max_sampled), float(self.lr),
                    float(self.reg_item), float(self.reg_user), self.learning_schedule == "adagrad",
                    int(rng.integers(2**31 - 1)),
                )  # fmt: skip
                losses.append(total / len(items))
        if not all(np.isfinite(a).all() for a in (I_ID, I_E, U_ID, U_E, I_IDb, I_Eb)):
            raise ConfigError("HybridMF diverged (non-finite embeddings); lower lr")
        # identities never trained (no interactions) carry no information: zero them
        I_ID[np.diff(m.tocsc().indptr) == 0] = 0.0
        I_IDb[np.diff(m.tocsc().indptr) == 0] = 0.0
        U_ID[np.diff(m.indptr) == 0] = 0.0
        self.item_identity_, self.item_identity_bias_ = I_ID, I_IDb
        self.item_emb_, self.item_emb_bias_ = I_E, I_Eb
        self.user_identity_, self.user_emb_ = U_ID, U_E
        self.loss_history_ = np.asarray(losses, dtype=np.float64)
        self._reps = None

    # ------------------------------------------------------------------ representations
    def item_representations(self) -> tuple[np.ndarray, np.ndarray]:
        """``(r float32 [I, f], b float32 [I])``: item vectors and biases (cached until the model changes)."""
        self._check_fitted()
        reps = getattr(self, "_reps", None)
        if reps is None or reps[0].shape[0] != self.n_items_:
            w = self.item_id_weight_[:, None]
            r = w * self.item_identity_ + np.asarray(self.item_x_ @ self.item_emb_)
            b = self.item_id_weight_ * self.item_identity_bias_ + np.asarray(self.item_x_ @ self.item_emb_bias_)
            reps = (r.astype(np.float32), np.asarray(b, dtype=np.float32).ravel())
            self._reps = reps
        return reps

    def user_representations(self, users: np.ndarray | None = None) -> np.ndarray:
        """User vectors ``float32 [U, f]`` (all users when ``None``)."""
        self._check_fitted()
        sel = np.arange(self.n_users_) if users is None else np.atleast_1d(np.asarray(users, dtype=np.int64))
        w = self.user_id_weight_[sel, None]
        return (w * self.user_identity_[sel] + np.asarray(self.user_x_[sel] @ self.user_emb_)).astype(np.float32)

    def score_parts(self, user: int, item: int, side: SideInfo | None = None) -> ScoreParts:
        """Explanation hook (:mod:`fusionrec.explain`): the exact split of ``r_u . r_i + b_i`` by item feature.

        ``"collaborative"`` = ``w_i (r_u . ID_i + IDb_i)`` (the identity feature); each item modality ``m`` =
        ``x_i[m] (E[m] r_u + Eb[m])`` over its columns of the item's side row (``side`` unused).
        """
        from fusionrec.models.explanation import ScoreParts

        self._check_fitted()
        u, i = int(user), int(item)
        r_u = self.user_representations(np.array([u]))[0].astype(np.float64)
        w = float(self.item_id_weight_[i])
        parts = {
            "collaborative": w * float(r_u @ self.item_identity_[i].astype(np.float64) + self.item_identity_bias_[i])
        }
        x = np.asarray(self.item_x_[i].todense(), np.float64).ravel()
        contrib = x * (self.item_emb_.astype(np.float64) @ r_u + self.item_emb_bias_.astype(np.float64))
        start = 0
        for name, d in zip(self.item_modalities_.tolist(), self.item_modality_dims_.tolist()):
            parts[str(name)] = float(contrib[start : start + int(d)].sum())
            start += int(d)
        return ScoreParts(parts, "exact", "none: the score is the sum of the parts")

    def add_item_vectors(self, vectors: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
        """Append items whose representation is ``vectors`` (an identity embedding of weight 1, no content)."""
        self._check_fitted()
        vec, b = self._check_item_vectors(vectors, bias, has_bias=True)
        m = len(vec)
        append_rows(self, {
            "item_id_weight_": np.ones(m, np.float32), "item_identity_": vec, "item_identity_bias_": b,
        })  # fmt: skip
        self.item_x_ = sp.vstack([self.item_x_, sp.csr_matrix((m, self.item_x_.shape[1]), dtype=np.float32)], "csr")
        return self._grow_items(m)

    # ------------------------------------------------------------------ cold start
    def _new_rows(
        self, features: dict[str, np.ndarray], names: np.ndarray, dims: np.ndarray, means: np.ndarray, what: str
    ) -> np.ndarray:
        names_l = [str(n) for n in names]
        unknown = sorted(set(features) - set(names_l))
        if unknown:
            raise DataError(f"{what} features {unknown} were not used at fit time; fitted: {names_l}")
        sizes = {np.atleast_2d(np.asarray(v)).shape[0] for v in features.values()}
        if len(sizes) > 1:
            raise DataError(f"every {what} modality needs the same number of rows, got {sorted(sizes)}")
        n = sizes.pop() if sizes else 1
        full = {}
        for name, d in zip(names_l, dims.tolist()):
            x = features.get(name)
            x = np.zeros((n, d), np.float32) if x is None else np.atleast_2d(np.asarray(x, dtype=np.float32))
            if x.shape != (n, d):
                raise DataError(f"{what} features {name!r} must be [{n}, {d}], got {x.shape}")
            full[name] = x
        if not names_l:
            return np.zeros((n, 0), np.float32)
        x, _, _ = fuse_modalities(
            full, names_l, modality_weights=self.modality_weights, impute=str(self.impute), means=means
        )
        return x

    def add_items(self, features: dict[str, np.ndarray]) -> np.ndarray:
        """Append new items from their content; returns their indices (module notes, cold-start API).

        A modality left out of ``features`` (or an all-zero row) counts as missing and is imputed.
        """
        self._check_fitted()
        if not isinstance(features, dict) or not features:
            raise DataError("add_items expects {modality: float [m, d]} for the fitted item modalities")
        if len(self.item_modalities_) == 0:
            raise ConfigError("this HybridMF was fitted without item features; new items cannot be described")
        x = self._new_rows(features, self.item_modalities_, self.item_modality_dims_, self.item_modality_means_, "item")
        m = x.shape[0]
        w, csr = _normalise_rows(np.full(m, float(bool(self.item_identity))), x, str(self.normalize))
        f = self.item_identity_.shape[1]
        start = self.n_items_
        self.item_id_weight_ = np.concatenate([self.item_id_weight_, w])
        self.item_identity_ = np.vstack([self.item_identity_, np.zeros((m, f), np.float32)])
        self.item_identity_bias_ = np.concatenate([self.item_identity_bias_, np.zeros(m, np.float32)])
        self.item_x_ = sp.vstack([self.item_x_, csr], format="csr")
        self.n_items_ = start + m
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
        """Add (or re-fold) a user from their items and/or profile features; returns ``int64 [1]`` (module notes).

        ``values`` weight the positives (default 1); ``reg`` is the L2 penalty of :func:`fold_in_vector`.
        """
        self._check_fitted()
        uniq, weights = check_history(items, values, self.n_items_, self.n_users_, user)
        if user_features is not None and len(self.user_modalities_) == 0:
            raise ConfigError("this HybridMF was fitted without user features; pass none or refit with them")
        if user_features is not None:
            x = self._new_rows(
                {k: np.atleast_2d(v) for k, v in user_features.items()},
                self.user_modalities_, self.user_modality_dims_, self.user_modality_means_, "user",
            )  # fmt: skip
        else:
            x = np.zeros((1, int(self.user_modality_dims_.sum())), np.float32)
            if user is not None:
                x = np.asarray(self.user_x_[int(user)].todense(), np.float32)
        identity = 1.0 if self.user_identity and uniq.size else 0.0
        w, csr = _normalise_rows(np.array([identity]), x, str(self.normalize))
        if user is not None and self.user_identity:
            w = self.user_id_weight_[[int(user)]]
        base = np.asarray(csr @ self.user_emb_).ravel() if csr.shape[1] else None
        r, b = self.item_representations()
        vec = np.zeros(self.user_identity_.shape[1], np.float32)
        if uniq.size and w[0] > 0:
            observed = np.flatnonzero(np.diff(sp.csc_matrix(self.seen_).indptr) > 0)
            v = fold_in_vector(r, b, uniq, weights, base=base, reg=reg, negatives=observed, seed=int(self.seed))
            vec = (v / w[0]).astype(np.float32)  # r_u = w * ID_u + base, so ID_u = v / w
        if user is None:
            self.user_id_weight_ = np.concatenate([self.user_id_weight_, w.astype(np.float32)])
            self.user_identity_ = np.vstack([self.user_identity_, vec[None, :]])
            self.user_x_ = sp.vstack([self.user_x_, csr], format="csr")
            self.seen_ = append_seen_row(self.seen_, uniq, weights, None)
            self.n_users_ += 1
            return np.array([self.n_users_ - 1], dtype=np.int64)
        u = int(user)
        self.user_identity_[u] = vec
        self.user_x_ = sp.vstack([self.user_x_[:u], csr, self.user_x_[u + 1 :]], format="csr")
        self.seen_ = append_seen_row(self.seen_, uniq, weights, u)
        return np.array([u], dtype=np.int64)
