"""GraphEASE: EASE tied and smoothed by frozen, sparsified modality item-item kNN graphs (FREEDOM's graph, closed form).

Shapes: ``U`` users, ``I`` items, ``M`` modalities, ``k`` neighbours.

* Item graph (Zhou & Shen 2023, FREEDOM; Zhang et al. 2021, LATTICE): for each modality ``m`` the top-``k`` cosine
  neighbours of every item, symmetrised and degree-normalised ``S_m = D_m^-1/2 max(K_m, K_m^T) D_m^-1/2``
  (:func:`fusionrec.models.graph.knn_graph`), combined as ``S = sum_m w_m S_m / sum_m w_m``; built once from the
  features and frozen.  FREEDOM's finding is that this sparse, degree-normalised graph carries the content signal
  better than the raw features or a learned dense graph.
* Tie: the Gram matrix gets the graph as pseudo-users (as CEASE adds content rows),
  ``G = X^T X + graph_weight (I + S)`` (``I + S`` is positive semi-definite: the eigenvalues of ``S`` lie in
  ``[-1, 1]``), and ``B`` is EASE's closed form of ``G`` (:func:`~fusionrec.models.linear.ease_solve`).
  Items with no training interaction get weights from their graph neighbours.  ``dropout = p`` replaces the
  uniform penalty by EDLAE's emphasised-dropout penalty ``reg + p / (1 - p) diag(G)`` (Steck 2020; ``ease_solve``).
* Smooth: the scores are propagated one step over the graph, ``W = B (I + propagation S)`` (FREEDOM's frozen item
  graph convolution ``h = e + S e``, applied to the item-item weights).
* Prior: ``s_ui = x_u W_:i + popularity * pop_i`` with ``pop_i`` the item's training count over the largest.  The
  item-item scores of a user with one or two history items are small, so the prior ranks their ties and
  their long tail by popularity while users with long histories are ranked by ``W``; on TikTok (median two training
  items per user) it adds about 3% NDCG@20 on valid.  :meth:`item_contributions` splits the prior evenly over the
  history, so the contributions still sum to the score.
* Cold items (``cold_reg > 0``): the column of an item with no training interaction comes from its content alone,
  by kernel ridge regression of the warm items' columns (ContentKRR's kernel,
  :func:`~fusionrec.models.krr.content_kernel`):
  ``W_:c = T (K_WW + cold_reg I)^{-1} k_W(f_c)`` with ``T = (W + cold_history I)_:W`` over the warm items ``W``
  and ``K = exp(cold_gamma (cos - 1))`` on the modality features (weighted by ``modality_weights``).  The graph
  tie alone gives a cold item a column from its few graph neighbours; the regression learns from every warm item
  which content predicts which column, and the history term lets a user's own items vote for content like theirs.
  :meth:`add_items` gives a new item the same column.

``graph_weight = propagation = popularity = dropout = cold_reg = 0`` is exactly :class:`~fusionrec.models.linear.EASE`.
Training is one dense ``I x I`` solve (about ``3 * 8 I^2`` bytes, as EASE), ``O(I k M)`` for the graphs and, with
cold items, one Cholesky of the warm items' ``W x W`` kernel; no epochs, no seed.

Defaults (the stated procedure): chosen by NDCG@20 on the validation part of TikTok's DiffMM split
(``benchmarks/tiktok.py``): ``reg`` in {15, 30} x ``dropout`` in {0, .25} x ``popularity`` in {.02, .03, .04} at
``graph_weight`` 10, ``propagation`` 4, ``knn_k`` 10 (edges extended: ``reg`` 7.5 and ``dropout`` .5 were worse).
``graph_weight`` 10 and ``propagation`` 4 won {5, 10} x {2, 4} before (20 and 8 worse, also with dropout); ``knn_k``
5 or 20 and image:audio weights 2:1 or 1:2 were no better in an exploration.  The cold-item regression was chosen by
NDCG@20 on the 193 valid items without training interactions (only they ranked): ``cold_gamma`` in {1, 2, 4, 16}
x ``cold_reg`` in {.03, .1, 1, 10} x ``cold_history`` in {0, .05, .1, .2, .5, 1, 3, 10} (partly crossed), best
.1338 against the graph tie's .1200 (ContentKRR .1257).  Result: ``reg=15, dropout=0.25, popularity=0.03,
cold_reg=0.03, cold_gamma=1, cold_history=0.1`` (valid .0472 against tuned EASE's .0379 with the same dropout
knob; test .0458 against .0399, +14.8%; cold test items .1154 against ContentKRR's .1123).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from fusionrec._similarity import normalize_rows
from fusionrec.data.interactions import Interactions
from fusionrec.errors import DataError
from fusionrec.models._params import (
    BOOL,
    MODALITY_NAMES,
    MODALITY_WEIGHTS,
    NONNEGATIVE,
    POSITIVE,
    POSITIVE_INT,
    Interval,
)
from fusionrec.models.base import SideInfo
from fusionrec.models.coldstart import grow_seen, new_item_count
from fusionrec.models.declaration import ROWS, Indexed
from fusionrec.models.graph import knn_graph
from fusionrec.models.linear import LinearItemModel, check_dense_memory, ease_gram, ease_solve

__all__ = ["GraphEASE", "modality_graph"]


def modality_graph(
    features: Mapping[str, np.ndarray], k: int, weights: Mapping[str, float] | None = None
) -> sp.csr_matrix:
    """``S = sum_m w_m S_m / sum_m w_m`` of the modalities' symmetric-normalised cosine top-``k`` graphs (CSR)."""
    total: sp.csr_matrix | None = None
    wsum = 0.0
    for name, x in features.items():
        w = 1.0 if weights is None else float(weights.get(name, 1.0))
        if w <= 0:
            continue
        g = knn_graph(np.asarray(x, dtype=np.float32), int(k)) * w
        total = g if total is None else total + g
        wsum += w
    if total is None:
        raise DataError("GraphEASE needs at least one modality with a positive weight")
    out = sp.csr_matrix(total / wsum, dtype=np.float64)
    out.sort_indices()
    return out


class GraphEASE(LinearItemModel):
    """EASE with FREEDOM's frozen modality kNN item graph as pseudo-users and as one propagation step (module notes).

    Parameters
    ----------
    reg
        EASE's L2 penalty on ``B``.
    graph_weight
        How many co-interactions one unit of graph edge is worth in the Gram matrix (0: no tie).
    propagation
        Weight of the one-step graph smoothing of the weights, ``W = B (I + propagation S)`` (0: none).
    dropout
        EDLAE's input-dropout probability in the diagonal penalty (0: EASE's uniform ``reg``).
    cold_reg
        Ridge penalty of the cold items' content regression (0: no regression; cold items keep the graph tie's
        columns and :meth:`add_items` averages the content neighbours' columns).
    cold_gamma
        Kernel sharpness of that regression (larger: more local).
    cold_history
        Weight of the history itself in the regressed targets ``T = (W + cold_history I)_:W``.
    popularity
        Weight of the popularity prior added to every score (0: none).  Read at scoring time.
    knn_k
        Neighbours per item in each modality graph.
    modalities
        Item feature names of ``SideInfo.item_features`` to build graphs from (default: all, sorted).
    modality_weights
        Relative weight ``w_m`` per modality in ``S`` (default 1).
    binarize, max_memory_gb
        As in :class:`~fusionrec.models.linear.EASE`.

    Attributes
    ----------
    weights_ ``[I, I]``
        ``W``; ``score = x_u W``.
    item_pop_ ``[I]``
        Training interactions per item over the largest count (0 for items added later).
    item_features_ ``[I, sum d_m]``, feature_dims_ ``[M]``
        Each modality's L2-normalised features side by side (order of ``modalities_``), read by :meth:`add_items`.
    """

    #: tuning ranges (:mod:`fusionrec.tuning`): name -> (kind, low, high[, "log"]) or ("categorical", [choices])
    _search_space: ClassVar[dict[str, tuple[Any, ...]]] = {
        "reg": ("float", 1.0, 1e4, "log"),
        "graph_weight": ("float", 0.1, 100.0, "log"),
        "propagation": ("float", 0.0, 10.0),
        "popularity": ("float", 0.0, 0.1),
        "knn_k": ("int", 3, 40, "log"),
        "dropout": ("float", 0.0, 0.6),
        "cold_reg": ("float", 0.01, 10.0, "log"),
        "cold_gamma": ("float", 0.5, 32.0, "log"),
        "cold_history": ("float", 0.0, 10.0),
    }

    uses_side_info = True
    modality_param: ClassVar[str | None] = "modalities"
    can_add_items: ClassVar[bool] = True
    # declaration: weights_ (SQUARE) comes from LinearItemModel
    item_state: ClassVar[Mapping[str, Indexed]] = {"item_features_": ROWS, "item_pop_": ROWS}
    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        "reg": [*POSITIVE],
        "graph_weight": [*NONNEGATIVE],
        "propagation": [*NONNEGATIVE],
        "popularity": [*NONNEGATIVE],
        "knn_k": [*POSITIVE_INT],
        "dropout": [Interval(float, 0.0, 1.0, closed="left")],
        "cold_reg": [*NONNEGATIVE],
        "cold_gamma": [*POSITIVE],
        "cold_history": [*NONNEGATIVE],
        "modalities": [*MODALITY_NAMES],
        "modality_weights": [*MODALITY_WEIGHTS],
        "binarize": [*BOOL],
        "max_memory_gb": [*POSITIVE],
    }

    def __init__(
        self,
        *,
        reg: float = 15.0,
        graph_weight: float = 10.0,
        propagation: float = 4.0,
        popularity: float = 0.03,
        knn_k: int = 10,
        dropout: float = 0.25,
        cold_reg: float = 0.03,
        cold_gamma: float = 1.0,
        cold_history: float = 0.1,
        modalities: list[str] | None = None,
        modality_weights: dict[str, float] | None = None,
        binarize: bool = True,
        max_memory_gb: float = 8.0,
    ) -> None:
        self.reg = reg
        self.graph_weight = graph_weight
        self.propagation = propagation
        self.popularity = popularity
        self.knn_k = knn_k
        self.dropout = dropout
        self.cold_reg = cold_reg
        self.cold_gamma = cold_gamma
        self.cold_history = cold_history
        self.modalities = modalities
        self.modality_weights = modality_weights
        self.binarize = binarize
        self.max_memory_gb = max_memory_gb

    def _features(self, side: SideInfo | None, n_items: int) -> dict[str, np.ndarray]:
        feats = {} if side is None else side.item_features
        names = sorted(feats) if self.modalities is None else list(self.modalities)
        if not names:
            raise DataError(
                "GraphEASE builds its item graph from item features: pass side= with item_features "
                f"(available: {sorted(feats)}), or use EASE without content"
            )
        out = {}
        for name in names:
            if name not in feats:
                raise DataError(f"no item features {name!r}; available: {sorted(feats)}")
            x = np.nan_to_num(np.asarray(feats[name], dtype=np.float32))
            if x.ndim != 2 or x.shape[0] != n_items:
                raise DataError(f"item features {name!r} must be [{n_items}, d], got {x.shape}")
            present = None if side is None else side.item_present.get(name)
            if present is not None:
                x = np.where(np.asarray(present, dtype=bool)[:, None], x, 0.0).astype(np.float32)
            out[name] = x
        return out

    def _fit(self, train: Interactions, side: SideInfo | None) -> None:
        if train.nnz == 0:
            raise DataError("the training interactions are empty; nothing to fit")
        n = train.n_items
        check_dense_memory(
            "GraphEASE", n, 3, float(self.max_memory_gb), "the dense item-item solve",
            "prune rare items, or use ItemKNN (sparse top-k neighbours)",
        )  # fmt: skip
        feats = self._features(side, n)
        S = modality_graph(feats, int(self.knn_k), self.modality_weights)
        X = self._input(train.matrix)
        counts = np.asarray((X > 0).sum(axis=0), dtype=np.float64).ravel()
        self.item_pop_ = (counts / max(float(counts.max()), 1.0)).astype(np.float32)
        gram = ease_gram(X)
        if float(self.graph_weight) > 0:
            gram += float(self.graph_weight) * S.toarray()
            gram[np.diag_indices(n)] += float(self.graph_weight)
        B = ease_solve(gram, float(self.reg), dropout=float(self.dropout))
        del gram
        if float(self.propagation) > 0:
            B += float(self.propagation) * np.asarray((S @ B.T).T)  # B S (S is symmetric)
        self.weights_ = B.astype(np.float32)
        del B
        self.modalities_ = np.array(list(feats), dtype=str)
        self.feature_dims_ = np.array([x.shape[1] for x in feats.values()], dtype=np.int64)
        self.item_features_ = np.hstack([normalize_rows(x) for x in feats.values()]).astype(np.float32)
        if float(self.cold_reg) > 0:
            cold = np.flatnonzero((counts == 0) & (np.abs(self.item_features_).sum(axis=1) > 0))
            if len(cold):
                self.weights_[:, cold] = self._content_columns(self.item_features_[cold])

    def _kernel_rows(self, rows: np.ndarray) -> np.ndarray:
        """Rows laid out as ``item_features_`` with each modality block scaled by ``sqrt(w_m)`` (``float64``), so
        that their cosine is the ``modality_weights``-weighted mean of the modalities' cosines."""
        out = np.asarray(rows, np.float64).copy()
        if self.modality_weights is not None:
            offset = 0
            for name, d in zip(self.modalities_.tolist(), self.feature_dims_.tolist(), strict=True):
                out[:, offset : offset + d] *= np.sqrt(max(float(self.modality_weights.get(name, 1.0)), 0.0))
                offset += d
        return out

    def _content_columns(self, rows: np.ndarray) -> np.ndarray:
        """Columns of ``W`` (``float32 [I, m]``) for items with feature ``rows`` (``item_features_`` layout), by
        kernel ridge regression of the warm items' columns ``(W + cold_history I)_:W`` on their content (module
        notes); one Cholesky of the warm items' kernel, ``O(W^3)``."""
        from scipy.linalg import cho_factor, cho_solve

        from fusionrec.models.krr import content_kernel

        warm = np.flatnonzero(self.item_pop_ > 0)
        base = self._kernel_rows(self.item_features_[warm])
        K = content_kernel(base, base, float(self.cold_gamma))
        K[np.diag_indices(len(warm))] += float(self.cold_reg)
        alpha = cho_solve(
            cho_factor(K, lower=True, check_finite=False),
            content_kernel(base, self._kernel_rows(rows), float(self.cold_gamma)),
            check_finite=False,
        )  # [W, m]
        del K
        cols = self.weights_[:, warm].astype(np.float64) @ alpha
        cols[warm] += float(self.cold_history) * alpha
        return cols.astype(np.float32)

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """Scores ``x_u W + popularity * pop`` (``float32 [U, I]``)."""
        out = super().score(users, items)
        if float(self.popularity) > 0:
            pop = self.item_pop_ if items is None else self.item_pop_[np.asarray(items, dtype=np.int64)]
            out += np.float32(self.popularity) * pop[None, :]
        return out

    def item_contributions(self, user: int, item: int) -> tuple[np.ndarray, np.ndarray]:
        """Explanation hook: the history items ``j`` and their shares ``x_uj W_ji + popularity pop_i / h`` (``h``
        history items), which sum to ``score(user, item)``; a user without history has none."""
        items, shares = super().item_contributions(user, item)
        if len(items) and float(self.popularity) > 0:
            shares = shares + float(self.popularity) * float(self.item_pop_[int(item)]) / len(items)
        return items, shares

    def item_embeddings(self) -> np.ndarray:
        """Rows of ``W`` (an item's weights on every other item) for :meth:`similar_items`."""
        self._check_fitted()
        return self.weights_

    def add_items(self, features: dict[str, np.ndarray]) -> np.ndarray:
        """Append new items from their content alone (``{modality: float [m, d_m]}``) and return their indices.

        With ``cold_reg > 0`` a new item's column of ``W`` is the content regression of the fit's cold items
        (module notes; one ``O(W^3)`` Cholesky per call, ``W`` the warm items); a modality left out counts as
        missing, and an item with no usable modality gets a zero column.  Otherwise its column is the mean of its
        ``knn_k`` most cosine-similar existing items' columns in each modality given, averaged over those
        modalities with ``modality_weights``: the propagation step of the graph, with the new item as a node whose
        edges are its neighbours.  Its row is zero (a new item in a history adds nothing until the next fit), and it
        joins no other item's neighbour list.  A modality left out or an all-zero row adds nothing; an item with no
        usable modality gets a zero column.
        """
        self._check_fitted()
        names = self.modalities_.tolist()
        m = new_item_count(features, names)
        start, n = int(self.n_items_), int(self.n_items_) + m
        cols = np.zeros((start, m), dtype=np.float64)
        wsum = np.zeros(m)
        kk = max(1, min(int(self.knn_k), start))
        offset = 0
        for name, d in zip(names, self.feature_dims_.tolist(), strict=True):
            base = self.item_features_[:, offset : offset + d]
            offset += d
            if name not in features:
                continue
            x = np.nan_to_num(np.asarray(features[name], dtype=np.float32))
            if x.shape != (m, d):
                raise DataError(f"add_items: {name!r} must be [{m}, {d}], got {x.shape}")
            ok = np.abs(x).sum(1) > 0
            w = 1.0 if self.modality_weights is None else float(self.modality_weights.get(name, 1.0))
            wsum[ok] += w
            if float(self.cold_reg) > 0:  # the columns come from the content regression below
                continue
            sims = normalize_rows(x) @ base.T
            nb = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]  # [m, k]
            for r in np.flatnonzero(ok):
                cols[:, r] += w * self.weights_[:, nb[r]].mean(axis=1)
        cols = np.divide(cols, wsum[None, :], out=np.zeros_like(cols), where=wsum[None, :] > 0)
        new_feats = [
            normalize_rows(np.nan_to_num(np.asarray(features.get(name, np.zeros((m, d))), np.float32)))
            for name, d in zip(names, self.feature_dims_.tolist(), strict=True)
        ]
        new_rows = np.hstack(new_feats).astype(np.float32)
        if float(self.cold_reg) > 0:
            usable = wsum > 0
            cols = np.zeros((start, m), np.float32)
            if usable.any():
                cols[:, usable] = self._content_columns(new_rows[usable])
        weights = np.zeros((n, n), np.float32)
        weights[:start, :start] = self.weights_
        weights[:start, start:] = cols
        self.weights_ = weights
        self.item_features_ = np.vstack([self.item_features_, new_rows])
        self.item_pop_ = np.concatenate([self.item_pop_, np.zeros(m, np.float32)])
        self.n_items_ = n
        self.seen_ = grow_seen(self.seen_, self.n_users_, n)
        return np.arange(start, n, dtype=np.int64)
