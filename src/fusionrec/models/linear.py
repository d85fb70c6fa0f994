"""Linear item-item models: EASE (Steck 2019) and its side-information form CEASE (Jeunen et al. 2020)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp

from fusionrec.data.interactions import Interactions
from fusionrec.errors import ConfigError, DataError
from fusionrec.models._params import BOOL, MODALITY_NAMES, MODALITY_WEIGHTS, NONNEGATIVE, POSITIVE, Interval
from fusionrec.models.base import Recommender, SideInfo
from fusionrec.models.coldstart import HistoryFoldIn
from fusionrec.models.declaration import SQUARE, Indexed

if TYPE_CHECKING:
    from fusionrec.models.explanation import ScoreParts

__all__ = ["CEASE", "EASE", "LinearItemModel", "ease_gram", "ease_solve", "history_matrix"]


def check_dense_memory(owner: str, n_items: int, copies: int, max_memory_gb: float, what: str, instead: str) -> None:
    """Raise :class:`ConfigError` when ``copies`` dense float64 ``[n_items, n_items]`` matrices exceed
    ``max_memory_gb``; the message names ``what`` needs them and what to do ``instead``."""
    need_gb = copies * 8 * n_items * n_items / 1e9
    if need_gb > max_memory_gb:
        raise ConfigError(
            f"{owner} with {n_items} items needs about {need_gb:.1f} GB for {what} "
            f"(max_memory_gb={max_memory_gb}); raise max_memory_gb if you have the memory, {instead}"
        )


def history_matrix(matrix: sp.spmatrix | sp.sparray, binarize: bool) -> sp.csr_matrix:
    """A ``float64`` CSR copy of the users x items ``matrix``; every stored value is 1 when ``binarize``."""
    X = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    if binarize:
        X.data = np.ones_like(X.data)
    return X


def ease_gram(X: sp.csr_matrix, *, user_power: float = 0.0) -> np.ndarray:
    """The dense ``float64 [I, I]`` Gram matrix ``X^T X`` of a users x items CSR ``X``.

    With ``user_power = p > 0`` the user-degree-weighted ``X^T D X`` (``D_vv = n_v^{-p}``, ``n_v`` the stored entries
    of row ``v``, at least 1), rescaled to the trace of ``X^T X`` so that penalties keep their scale
    (:class:`~fusionrec.models.activity.ActivityCEASE`).
    """
    G = (X.T @ X).toarray().astype(np.float64)
    if user_power > 0:
        deg = np.maximum(np.diff(X.indptr), 1).astype(np.float64)
        Xw = sp.diags(deg ** (-user_power / 2.0)) @ X
        Gw = (Xw.T @ Xw).toarray().astype(np.float64)
        trace = float(np.trace(Gw))
        G = Gw * (float(np.trace(G)) / trace) if trace > 0 else G
    return G


def ease_solve(
    gram: np.ndarray,
    reg: float,
    *,
    content: np.ndarray | None = None,
    side_weight: float = 0.0,
    columns: np.ndarray | None = None,
    dropout: float = 0.0,
) -> np.ndarray:
    """The EASE closed form (Steck 2019), written once for EASE, CEASE, ActivityCEASE, ContentKRR and GraphEASE.

    ``P = (gram + side_weight C C^T + reg I)^{-1}`` and ``B_ij = -P_ij / P_jj`` with ``B_jj = 0``: the item-item
    weights minimising ``|X - X B|^2 + reg |B|^2`` subject to ``diag(B) = 0`` when ``gram = X^T X``.  ``content``
    (``C``, ``float64 [I, D]``) adds each content dimension as a pseudo-user weighted ``side_weight`` (CEASE,
    Jeunen et al. 2020); ``columns`` keeps only those columns of ``B`` (ContentKRR's warm items).

    ``dropout = p`` (``0 <= p < 1``) is EDLAE's emphasised-dropout penalty (Steck 2020, "Autoencoders that don't
    overfit towards the identity"): the diagonal penalty becomes ``reg + p / (1 - p) * diag(gram)`` (``gram`` as
    given, before ``content``), the closed form of denoising with input dropout ``p``, with ``diag(B) = 0`` kept;
    it penalises popular items' weights more than rare ones'.  ``p = 0`` is the uniform ``reg`` exactly.

    ``gram`` (``float64 [I, I]``) is overwritten: without ``columns`` the result ``float64 [I, I]`` is written into
    its memory, so the solve holds two dense ``I x I`` matrices at a time; with ``columns`` the result is
    ``float64 [I, len(columns)]``.
    """
    n = gram.shape[0]
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"ease_solve: dropout must be in [0, 1), got {dropout}")
    diag = np.diag(gram) * (dropout / (1.0 - dropout)) if dropout > 0 else None
    if side_weight > 0 and content is not None:
        gram += side_weight * (content @ content.T)
    gram[np.diag_indices(n)] += reg
    if diag is not None:
        gram[np.diag_indices(n)] += diag
    P = np.linalg.inv(gram)
    if columns is None:
        B = np.divide(P, -np.diag(P)[None, :], out=gram)  # -P_ij / P_jj, exactly
        B[np.diag_indices(n)] = 0.0
        return B
    cols = np.asarray(columns, dtype=np.int64)
    B = np.divide(P[:, cols], -np.diag(P)[cols][None, :])
    B[cols, np.arange(len(cols))] = 0.0
    return B


class LinearItemModel(HistoryFoldIn, Recommender):
    """The linear item-item models' shared half: scores ``s_u = x_u W`` from the user's seen row ``x_u`` (binarised
    when ``binarize``) and an item-item matrix ``weights_`` (``float32 [I, I]``), their explanation hook and their
    history fold-in.  Subclasses (:class:`EASE`, :class:`CEASE`, ContentKRR, ActivityCEASE) learn ``weights_``."""

    item_state: ClassVar[Mapping[str, Indexed]] = {"weights_": SQUARE}
    explanation_hooks: ClassVar[frozenset[str]] = frozenset({"item_contributions"})
    binarize: bool
    weights_: np.ndarray

    def _input(self, matrix: sp.spmatrix | sp.sparray) -> sp.csr_matrix:
        return history_matrix(matrix, bool(self.binarize))

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """Scores ``x_u W`` (``float32 [U, I]``)."""
        self._check_fitted()
        users = np.atleast_1d(np.asarray(users, dtype=np.int64))
        X = self._input(self.seen_[users]).astype(np.float32)
        W = self.weights_ if items is None else self.weights_[:, np.asarray(items, dtype=np.int64)]
        return np.asarray(X @ W, dtype=np.float32)

    def item_contributions(self, user: int, item: int) -> tuple[np.ndarray, np.ndarray]:
        """Explanation hook (:mod:`fusionrec.explain`): the user's history items ``j`` and their additive shares
        ``x_uj W_ji`` of ``score(user, item)`` (they sum to it)."""
        self._check_fitted()
        row = self._input(self.seen_[[int(user)]])
        items = row.indices.astype(np.int64)
        return items, (row.data * self.weights_[items, int(item)]).astype(np.float64)


class EASE(LinearItemModel):
    """Embarrassingly Shallow Autoencoder (Steck 2019).

    Solves ``min_B |X - X B|_F^2 + reg |B|_F^2`` subject to ``diag(B) = 0`` in closed form
    (:func:`ease_solve`):

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
    dropout
        EDLAE's emphasised-dropout penalty (Steck 2020): the diagonal penalty is ``reg + dropout / (1 - dropout)
        * diag(X^T X)`` (:func:`ease_solve`); 0 (default) is EASE.  Only :class:`EASE` itself reads it.
    binarize
        Use ``x_ui = 1`` for every stored entry (default) instead of its value.
    max_memory_gb
        Largest working memory allowed for the closed-form solve.

    Attributes
    ----------
    weights_
        ``float32 [n_items, n_items]`` item-item weights ``B`` (zero diagonal).
    """

    #: tuning ranges (:mod:`fusionrec.tuning`): name -> (kind, low, high[, "log"]) or ("categorical", [choices])
    _search_space: ClassVar[dict[str, tuple[Any, ...]]] = {
        "reg": ("float", 1.0, 1e4, "log"),
        "dropout": ("float", 0.0, 0.6),
    }

    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        "reg": [*POSITIVE],
        "dropout": [Interval(float, 0.0, 1.0, closed="left")],
        "binarize": [*BOOL],
        "max_memory_gb": [*POSITIVE],
    }

    def __init__(
        self, *, reg: float = 500.0, dropout: float = 0.0, binarize: bool = True, max_memory_gb: float = 8.0
    ) -> None:
        self.reg = reg
        self.dropout = dropout
        self.binarize = binarize
        self.max_memory_gb = max_memory_gb

    def _fit(self, train: Interactions, side: SideInfo | None) -> None:
        if train.nnz == 0:
            raise DataError("the training interactions are empty; nothing to fit")
        check_dense_memory(
            type(self).__name__, train.n_items, 3, float(self.max_memory_gb), "the dense item-item solve",
            "prune rare items, or use ItemKNN (sparse top-k neighbours)",
        )  # fmt: skip
        X = self._input(train.matrix)
        content, side_weight = self._side_content(train, side)
        dropout = float(self.dropout) if "dropout" in self.param_names() else 0.0  # subclasses without the knob
        B = ease_solve(ease_gram(X), float(self.reg), content=content, side_weight=side_weight, dropout=dropout)
        self.weights_ = B.astype(np.float32)

    def _side_content(self, train: Interactions, side: SideInfo | None) -> tuple[np.ndarray | None, float]:
        """Hook for :class:`CEASE`: the item content rows ``F`` and their weight in the Gram (none for EASE)."""
        return None, 0.0

    def item_embeddings(self) -> np.ndarray | None:
        """Rows of ``B`` (an item's weights on every other item) for :meth:`similar_items`."""
        self._check_fitted()
        return self.weights_


class CEASE(EASE):
    """EASE with item side information as extra rows of ``X`` (collective EASE, Jeunen et al. 2020).

    Every item feature becomes a pseudo-user who "interacted" with the items that have it:
    ``X' = [X; sqrt(side_weight) F^T]``, so the Gram matrix is ``X^T X + side_weight * F F^T`` and the closed form
    is EASE's (:func:`ease_solve`).  ``F`` stacks the chosen modalities of ``SideInfo.item_features``, each row
    L2-normalised per modality and scaled by ``sqrt(modality_weights[m])`` (:func:`~fusionrec.data.side.fuse_modalities`),
    so ``F F^T = sum_m w_m cos_m``: items with similar content are tied as if many users had both.
    This is early (feature-level) fusion inside a collaborative model.  Items without interactions get
    weights from their content neighbours, so cold items are ranked too; a missing modality (zero row) adds
    nothing.  ``side_weight = 0`` is exactly :class:`EASE`.

    Parameters
    ----------
    reg, binarize, max_memory_gb
        As in :class:`EASE`.
    side_weight
        ``beta``: how many co-interactions one unit of content similarity is worth (tune on validation;
        the diagonal of ``X^T X`` is each item's popularity).
    modalities
        Item feature names to use (default: all, sorted).
    modality_weights
        Relative weight ``w_m`` per modality (default 1).
    """

    #: tuning ranges (:mod:`fusionrec.tuning`): name -> (kind, low, high[, "log"]) or ("categorical", [choices])
    _search_space: ClassVar[dict[str, tuple[Any, ...]]] = {
        "reg": ("float", 1.0, 1e4, "log"),
        "side_weight": ("float", 0.1, 1000.0, "log"),
    }

    uses_side_info = True
    modality_param = "modalities"
    explanation_hooks: ClassVar[frozenset[str]] = frozenset({"item_contributions", "score_parts"})
    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        "side_weight": [*NONNEGATIVE],
        "modalities": [*MODALITY_NAMES],
        "modality_weights": [*MODALITY_WEIGHTS],
    }

    def __init__(
        self,
        *,
        reg: float = 500.0,
        side_weight: float = 50.0,
        modalities: list[str] | None = None,
        modality_weights: dict[str, float] | None = None,
        binarize: bool = True,
        max_memory_gb: float = 8.0,
    ) -> None:
        super().__init__(reg=reg, binarize=binarize, max_memory_gb=max_memory_gb)
        self.side_weight = side_weight
        self.modalities = modalities
        self.modality_weights = modality_weights

    def _side_content(self, train: Interactions, side: SideInfo | None) -> tuple[np.ndarray | None, float]:
        from fusionrec.models.content import fused_side_features

        names, fused = fused_side_features(
            side, self.modalities, self.modality_weights, train.n_items, type(self).__name__,
            "; use EASE without side information",
        )  # fmt: skip
        self.modalities_ = np.array(names, dtype=str)
        return fused.astype(np.float64), float(self.side_weight)

    def score_parts(self, user: int, item: int, side: SideInfo | None = None) -> ScoreParts:
        """Explanation hook (:mod:`fusionrec.explain`): Shapley values of the modalities in ``score(user, item)``.

        The game: ``v(S)`` is the score the model gives when fitted with only the modalities ``S`` (same ``reg``,
        ``side_weight`` and weights; the interactions of ``seen_``), so the baseline ``v({})`` is plain EASE and
        ``v(all)`` the model's own score.  Only column ``item`` of each ``B_S`` is needed: ``p = G_S^{-1} e_item``
        by conjugate gradients on ``G_S = X^T X + side_weight F_S F_S^T + reg I`` (never formed), then
        ``B_S[j, item] = -p_j / p_item``.  ``2^M`` solves for ``M`` modalities (at most 10).  Needs ``side``.
        The baseline (plain EASE) is the part named ``"collaborative"``.
        """
        from scipy.sparse.linalg import LinearOperator, cg

        from fusionrec.models.content import fused_side_features
        from fusionrec.models.explanation import MAX_SHAPLEY_PLAYERS, shapley_parts

        self._check_fitted()
        names = [str(x) for x in getattr(self, "modalities_", [])]
        if side is None:
            raise ConfigError("CEASE's modality attribution refits item columns from content: pass side=")
        if len(names) > MAX_SHAPLEY_PLAYERS:
            raise ConfigError(f"{len(names)} modalities: Shapley attribution is limited to {MAX_SHAPLEY_PLAYERS}")
        u, i = int(user), int(item)
        X = self._input(self.seen_)
        n = X.shape[1]
        blocks = []
        for name in names:
            w = None if self.modality_weights is None else {name: self.modality_weights.get(name, 1.0)}
            blocks.append(fused_side_features(side, [name], w, n, "CEASE")[1].astype(np.float64))
        x_u = np.asarray(X[[u]].todense(), np.float64).ravel()
        e = np.zeros(n)
        e[i] = 1.0
        pop = np.asarray(X.multiply(X).sum(axis=0), np.float64).ravel() + float(self.reg)
        values = np.empty(1 << len(names))
        for mask in range(1 << len(names)):
            F = [blocks[m] for m in range(len(names)) if mask >> m & 1 and self.side_weight > 0]
            diag = pop + sum((float(self.side_weight) * np.square(f).sum(axis=1) for f in F), np.zeros(n))
            jacobi = LinearOperator((n, n), matvec=lambda v, d=diag: v / d, dtype=np.float64)

            def matvec(v: np.ndarray, F: list[np.ndarray] = F) -> np.ndarray:
                out = X.T @ (X @ v) + float(self.reg) * v
                for f in F:
                    out += float(self.side_weight) * (f @ (f.T @ v))
                return np.asarray(out)

            p, _ = cg(LinearOperator((n, n), matvec=matvec, dtype=np.float64), e, rtol=1e-10, maxiter=5 * n, M=jacobi)
            col = -p / p[i]
            col[i] = 0.0
            values[mask] = float(x_u @ col)
        values[-1] = float(self.score(np.array([u]), np.array([i]))[0, 0])  # exact sum to the model's score
        return shapley_parts(
            values, names, "EASE on the same interactions without side information", baseline_name="collaborative"
        )
