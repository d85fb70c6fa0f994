"""GraphFusion: LightGCN on the user-item graph plus frozen item-item modality kNN graphs (FREEDOM / LATTICE).

Shapes: ``U`` users, ``I`` items, ``N = U + I`` graph nodes, ``f`` factors, ``M`` modalities, ``k`` neighbours.

* User-item graph: ``A = [[0, R], [R^T, 0]]`` with ``R`` the binarised training matrix and
  ``A_hat = D^-1/2 A D^-1/2`` (He et al. 2020, LightGCN).  From ego embeddings ``E^0 [N, f]``,
  ``E^(l+1) = A_hat E^l`` and ``E = mean_{l=0..L} E^l``.
* Item-item graphs (Zhang et al. 2021, LATTICE; Zhou & Shen 2023, FREEDOM): for each modality ``m``, the
  top-``k`` cosine neighbours of every item, symmetrised (``max(K, K^T)``) and normalised
  ``S_m = D_m^-1/2 K_m D_m^-1/2``; built once from the features and frozen.  They are combined with
  learned weights ``w = softmax(alpha)``: ``H^(l+1) = sum_m w_m S_m H^l`` from ``H^0`` the item ego
  embeddings, ``L_i`` layers.
* Final vectors: ``x_u = E_u``, ``y_i = E_i + H_i``; ``s_ui = x_u . y_i``.  Items with no training
  interaction have a zero ego embedding, so a cold item is scored from its content neighbours.
* Loss: BPR ``-log sigmoid(s_ui - s_uj)`` over (user, positive, sampled training item) triples plus
  ``reg * (|e_u^0|^2 + |e_i^0|^2 + |e_j^0|^2) / batch``.  Optional degree-sensitive edge dropout (FREEDOM):
  each epoch keeps ``(1 - edge_dropout) nnz`` edges sampled with probability ``~ 1/sqrt(d_u d_i)``.

Memory is ``O(nnz + I k M + N f)``: the graphs are sparse CSR and the kNN search runs in row blocks.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from fusionrec._progress import progress
from fusionrec._similarity import normalize_rows
from fusionrec.data.interactions import Interactions
from fusionrec.errors import ConfigError, DataError
from fusionrec.models._foldin import fold_in_vector
from fusionrec.models._params import (
    BOOL,
    MODALITY_NAMES,
    NONNEGATIVE,
    NONNEGATIVE_INT,
    POSITIVE,
    POSITIVE_INT,
    SEED,
    Interval,
)
from fusionrec.models.base import Recommender, SideInfo
from fusionrec.models.coldstart import check_history, new_item_count, place_user
from fusionrec.models.declaration import ROWS, Indexed
from fusionrec.models.factors import FactorMixin, FactorSpec

__all__ = ["GraphFusion", "knn_graph", "normalized_adjacency", "sym_normalize", "torch_threads"]


def sym_normalize(a: sp.spmatrix) -> sp.csr_matrix:
    """``D^-1/2 A D^-1/2`` with ``D = diag(row sums of A)`` (zero-degree rows stay zero), float32 CSR."""
    a = sp.csr_matrix(a, dtype=np.float64)
    deg = np.asarray(a.sum(1)).ravel()
    inv = np.zeros_like(deg)
    np.divide(1.0, np.sqrt(deg), out=inv, where=deg > 0)
    d = sp.diags(inv)
    out = (d @ a @ d).tocsr().astype(np.float32)
    out.sort_indices()
    return out


def normalized_adjacency(
    matrix: sp.spmatrix, keep: np.ndarray | None = None, user_graph: sp.spmatrix | None = None
) -> sp.csr_matrix:
    """LightGCN's ``A_hat = D^-1/2 [[0, R], [R^T, 0]] D^-1/2`` over ``U + I`` nodes from the ``U x I`` matrix.

    ``R`` is ``matrix`` binarised; ``keep`` (bool over ``R``'s stored entries, CSR order) drops edges.
    ``user_graph`` (``U x U``, weighted) fills the top-left block with user-user edges (SocialLightGCN).
    """
    r = sp.csr_matrix(matrix)
    indices, indptr = r.indices, r.indptr
    if keep is not None:
        keep = np.asarray(keep, dtype=bool)
        rows = np.repeat(np.arange(r.shape[0]), np.diff(indptr))
        indices = indices[keep]
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows[keep], minlength=r.shape[0]))])
    # new arrays (never edits the caller's matrix in place)
    r = sp.csr_matrix((np.ones(len(indices)), indices.copy(), indptr.copy()), shape=r.shape)
    a = sp.bmat([[user_graph, r], [r.T, None]], format="csr")
    return sym_normalize(a)


def knn_graph(features: np.ndarray, k: int, present: np.ndarray | None = None, block: int = 1024) -> sp.csr_matrix:
    """Symmetric-normalised cosine top-``k`` item graph ``S = D^-1/2 max(K, K^T) D^-1/2`` (CSR, ``I x I``).

    ``K_ij = 1`` when ``j`` is among the ``k`` most cosine-similar items to ``i`` (``j != i``, both present,
    ties broken by index).  Items that are absent (``present`` False or an all-zero row) get no edges.
    Runs in blocks of ``block`` rows, so memory is ``O(block * I + I * k)``.
    """
    x = np.asarray(features, dtype=np.float32)
    n = x.shape[0]
    norms = np.linalg.norm(x, axis=1)
    ok = (norms > 0) & np.isfinite(norms)
    if present is not None:
        ok &= np.asarray(present, dtype=bool)
    xn = np.where(ok[:, None], normalize_rows(x), 0.0).astype(np.float32)
    cand = np.flatnonzero(ok)
    kk = min(int(k), max(len(cand) - 1, 0))
    rows, cols = [], []
    if kk > 0:
        for start in range(0, len(cand), block):
            idx = cand[start : start + block]
            sims = xn[idx] @ xn[cand].T
            sims[np.arange(len(idx)), np.arange(start, start + len(idx))] = -np.inf
            part = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
            rows.append(np.repeat(idx, kk))
            cols.append(cand[part].ravel())
    r = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    c = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
    kmat = sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(n, n))
    kmat = kmat.maximum(kmat.T)
    return sym_normalize(kmat)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)``, restoring the previous count afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _torch_csr(m: sp.csr_matrix) -> Any:
    import warnings

    import torch

    m = sp.csr_matrix(m, dtype=np.float32)
    with warnings.catch_warnings():
        # torch flags sparse CSR as beta on first use; CSR @ dense (and its autograd) is what we rely on
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(
            torch.from_numpy(m.indptr.astype(np.int64)),
            torch.from_numpy(m.indices.astype(np.int64)),
            torch.from_numpy(m.data),
            size=m.shape,
            check_invariants=False,
        )


class GraphFusion(FactorMixin, Recommender):
    """LightGCN + frozen modality kNN item graphs with learned modality weights, trained with BPR.

    See the module docstring for the definitions.

    Parameters
    ----------
    modalities
        Item feature names of ``SideInfo.item_features`` to build graphs from (default: all, sorted);
        ``[]`` gives plain LightGCN.
    n_factors
        Embedding width ``f``.
    layers
        LightGCN layers ``L`` on the user-item graph.
    item_layers
        Propagation steps ``L_i`` on the combined item-item graph.
    knn_k
        Neighbours per item in each modality graph.
    learn_weights
        Learn the modality weights ``softmax(alpha)`` (LATTICE); False keeps them uniform (FREEDOM).
    reg
        L2 weight on the ego embeddings of each BPR triple.
    edge_dropout
        Share of user-item edges dropped each epoch, degree-sensitively (0 = off).
    epochs, batch_size, lr
        Adam optimisation over BPR triples (one per training interaction and epoch).
    seed
        Seeds initialisation, sampling and dropout (the fit is reproducible).
    threads
        torch intra-op threads during fit (restored afterwards).  Small models train fastest on one thread,
        and on a shared machine more threads oversubscribe the cores (20x slower measured on 2 busy cores).

    Attributes
    ----------
    user_factors_ ``[U, f]``, item_factors_ ``[I, f]``
        Final vectors; ``score = user_factors_ @ item_factors_.T``.
    modality_weights_
        ``softmax(alpha)`` per modality (order of ``modalities_``).
    item_ego_ ``[I, f]``
        The items' ego embeddings ``H^0`` (zero for items without a training interaction), read by :meth:`add_items`.
    item_features_ ``[I, sum d_m]``, feature_dims_ ``[M]``
        Each modality's L2-normalised features side by side (``feature_dims_`` wide each, order of ``modalities_``).
    warm_ ``[I]``
        Whether the item had a training interaction (the items BPR samples negatives from).
    """

    #: tuning ranges (:mod:`fusionrec.tuning`): name -> (kind, low, high[, "log"]) or ("categorical", [choices])
    _search_space: ClassVar[dict[str, tuple[Any, ...]]] = {
        "n_factors": ("int", 16, 128, "log"),
        "layers": ("int", 1, 3),
        "lr": ("float", 1e-4, 1e-2, "log"),
        "reg": ("float", 1e-6, 1e-2, "log"),
        "epochs": ("int", 10, 60),
    }

    uses_side_info = True
    factor_spec = FactorSpec(user="user_factors_", item="item_factors_")
    # declaration (fusionrec.models.declaration): the factor_spec arrays are declared by it
    item_state: ClassVar[dict[str, Indexed]] = {"item_ego_": ROWS, "item_features_": ROWS, "warm_": ROWS}
    modality_param: ClassVar[str | None] = "modalities"
    can_fold_in: ClassVar[bool] = True
    can_add_items: ClassVar[bool] = True
    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        "modalities": [*MODALITY_NAMES],
        **{name: [*POSITIVE_INT] for name in ("n_factors", "knn_k", "epochs", "batch_size", "threads")},
        "layers": [*NONNEGATIVE_INT],
        "item_layers": [*NONNEGATIVE_INT],
        "learn_weights": [*BOOL],
        "reg": [*NONNEGATIVE],
        "edge_dropout": [Interval(float, 0.0, 1.0, closed="left")],
        "lr": [*POSITIVE],
        "seed": [*SEED],
    }

    def __init__(
        self,
        *,
        modalities: list[str] | None = None,
        n_factors: int = 64,
        layers: int = 2,
        item_layers: int = 1,
        knn_k: int = 10,
        learn_weights: bool = True,
        reg: float = 1e-4,
        edge_dropout: float = 0.0,
        epochs: int = 30,
        batch_size: int = 2048,
        lr: float = 5e-3,
        seed: int = 0,
        threads: int = 1,
    ) -> None:
        self.modalities = modalities
        self.n_factors = n_factors
        self.layers = layers
        self.item_layers = item_layers
        self.knn_k = knn_k
        self.learn_weights = learn_weights
        self.reg = reg
        self.edge_dropout = edge_dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.seed = seed
        self.threads = threads

    def _adjacency(self, r: sp.csr_matrix, keep: np.ndarray | None = None) -> sp.csr_matrix:
        """The normalised propagation graph over ``U + I`` nodes (hook: SocialLightGCN adds user-user edges)."""
        return normalized_adjacency(r, keep)

    def _graphs(self, side: SideInfo | None, n_items: int) -> tuple[list[str], list[sp.csr_matrix], list[np.ndarray]]:
        feats = {} if side is None else side.item_features
        names = sorted(feats) if self.modalities is None else list(self.modalities)
        graphs, normed = [], []
        for name in names:
            if name not in feats:
                raise DataError(f"no item features {name!r}; available: {sorted(feats)}")
            x = np.nan_to_num(np.asarray(feats[name], dtype=np.float32))
            if x.ndim != 2 or x.shape[0] != n_items:
                raise DataError(f"item features {name!r} must be [{n_items}, d], got {x.shape}")
            present = side.item_present.get(name) if side is not None else None
            if present is not None:
                x = np.where(np.asarray(present, dtype=bool)[:, None], x, 0.0).astype(np.float32)
            graphs.append(knn_graph(x, int(self.knn_k)))
            normed.append(normalize_rows(x))
        return names, graphs, normed

    def _fit(self, train: Interactions, side: SideInfo | None) -> None:
        import torch

        n_users, n_items = train.n_users, train.n_items
        names, graphs, normed = self._graphs(side, n_items)
        r = sp.csr_matrix(train.matrix)
        r.sum_duplicates()
        rows = np.repeat(np.arange(n_users), np.diff(r.indptr)).astype(np.int64)
        cols = r.indices.astype(np.int64)
        warm = np.asarray(np.diff(r.tocsc().indptr) > 0)
        warm_items = np.flatnonzero(warm)
        if not len(warm_items):
            raise DataError("GraphFusion needs at least one training interaction")
        rng = np.random.default_rng(self.seed)
        f = int(self.n_factors)
        deg_u = np.diff(r.indptr).astype(np.float64)
        deg_i = np.bincount(cols, minlength=n_items).astype(np.float64)
        edge_p = 1.0 / np.sqrt(deg_u[rows] * deg_i[cols])
        edge_p /= edge_p.sum()
        s_graphs = [_torch_csr(g) for g in graphs]
        a_full = _torch_csr(self._adjacency(r))

        with torch.random.fork_rng(devices=[]), torch_threads(int(self.threads)):
            torch.manual_seed(int(self.seed))
            emb = torch.nn.Parameter(torch.randn(n_users + n_items, f) * 0.1)
            alpha = torch.nn.Parameter(torch.zeros(len(names)))
            params = [emb] + ([alpha] if self.learn_weights and names else [])
            opt = torch.optim.Adam(params, lr=float(self.lr))
            item_mask = torch.from_numpy(np.concatenate([np.ones(n_users), warm.astype(np.float64)]).astype(np.float32))

            def propagate(adj: Any) -> tuple[Any, Any]:
                ego = emb * item_mask[:, None]
                out, cur = ego, ego
                for _ in range(int(self.layers)):
                    cur = adj @ cur
                    out = out + cur
                out = out / (int(self.layers) + 1)
                users, items = out[:n_users], out[n_users:]
                if s_graphs:
                    w = torch.softmax(alpha, 0)
                    h = ego[n_users:]
                    for _ in range(int(self.item_layers)):
                        h = sum(w[m] * (s_graphs[m] @ h) for m in range(len(s_graphs)))
                    items = items + h
                return users, items

            bs = int(self.batch_size)
            for _epoch in progress(range(int(self.epochs)), total=int(self.epochs), desc="GraphFusion"):
                adj = a_full
                if float(self.edge_dropout) > 0:
                    n_keep = max(1, round((1 - float(self.edge_dropout)) * len(rows)))
                    kept = rng.choice(len(rows), size=n_keep, replace=False, p=edge_p)
                    keep = np.zeros(len(rows), dtype=bool)
                    keep[kept] = True
                    adj = _torch_csr(self._adjacency(r, keep))
                order = rng.permutation(len(rows))
                for start in range(0, len(order), bs):
                    sel = order[start : start + bs]
                    u = torch.from_numpy(rows[sel])
                    i = torch.from_numpy(cols[sel])
                    j = torch.from_numpy(warm_items[rng.integers(0, len(warm_items), size=len(sel))])
                    users, items = propagate(adj)
                    xu = users[u]
                    diff = (xu * items[i]).sum(1) - (xu * items[j]).sum(1)
                    ego_u, ego_i, ego_j = emb[u], emb[n_users + i], emb[n_users + j]
                    l2 = (ego_u.pow(2).sum() + ego_i.pow(2).sum() + ego_j.pow(2).sum()) / len(sel)
                    loss = -torch.nn.functional.logsigmoid(diff).mean() + float(self.reg) * l2
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            with torch.no_grad():
                users, items = propagate(a_full)
                self.user_factors_ = users.numpy().astype(np.float32, copy=True)
                self.item_factors_ = items.numpy().astype(np.float32, copy=True)
                self.item_ego_ = (emb[n_users:] * item_mask[n_users:, None]).numpy().astype(np.float32, copy=True)
                self.modality_weights_ = torch.softmax(alpha, 0).numpy().astype(np.float32, copy=True)
        self.modalities_ = np.array(names, dtype=str)
        self.warm_ = warm.astype(bool)
        self.feature_dims_ = np.array([x.shape[1] for x in normed], dtype=np.int64)
        self.item_features_ = np.hstack(normed) if normed else np.zeros((n_items, 0), dtype=np.float32)

    def _set_state(self, state: dict[str, Any]) -> None:
        """Learned state, upgrading bundles saved before the declaration (``warm_items_`` indices and one
        ``features_<m>_`` array per modality) to ``warm_`` and ``item_features_``."""
        state = dict(state)
        if "warm_items_" in state and "warm_" not in state:
            warm = np.zeros(int(state["n_items_"]), dtype=bool)
            warm[np.asarray(state.pop("warm_items_"), dtype=np.int64)] = True
            state["warm_"] = warm
        old = sorted((k for k in state if k.startswith("features_") and k[9:-1].isdigit()), key=lambda k: int(k[9:-1]))
        if old and "item_features_" not in state:
            parts = [np.asarray(state.pop(k), dtype=np.float32) for k in old]
            state["item_features_"] = np.hstack(parts)
            state["feature_dims_"] = np.array([p.shape[1] for p in parts], dtype=np.int64)
        super()._set_state(state)

    def _features(self, m: int) -> np.ndarray:
        """Modality ``m``'s L2-normalised features ``[I, d_m]`` (a view of ``item_features_``)."""
        start = int(self.feature_dims_[:m].sum())
        return self.item_features_[:, start : start + int(self.feature_dims_[m])]

    def fold_in_user(
        self,
        items: np.ndarray | Sequence[int],
        values: np.ndarray | None = None,
        *,
        user_features: dict[str, np.ndarray] | None = None,
        user: int | None = None,
        reg: float = 0.01,
    ) -> np.ndarray:
        """Place a new user (``user=None``) or re-place user ``user`` from their history; returns ``int64 [1]``.

        The cold-start contract of :mod:`fusionrec.models.coldstart`.  The propagated item vectors stay fixed;
        the user's final vector is fitted to them by the pairwise loss of
        :func:`~fusionrec.models._foldin.fold_in_vector` against the training items (no re-propagation, so the
        new user does not change any item's vector until the next fit).
        """
        self._check_fitted()
        if user_features is not None:
            raise ConfigError(
                "GraphFusion has no user features; use HybridMF(user_features=...) for profile-only users"
            )
        uniq, weights = check_history(items, values, self.n_items_, self.n_users_, user)
        zero_bias = np.zeros(self.n_items_, dtype=np.float32)
        vec = fold_in_vector(
            self.item_factors_,
            zero_bias,
            uniq,
            weights,
            reg=reg,
            negatives=np.flatnonzero(self.warm_),
            seed=int(self.seed),
        )
        return place_user(self, {"user_factors_": vec}, uniq, weights, user)

    # score / predict: FactorMixin's (Factors.scores / pair_scores of factor_spec), the one factor scoring path
    def item_embeddings(self) -> np.ndarray:
        self._check_fitted()
        return self.item_factors_

    def _new_item_rows(self, m: int) -> dict[str, np.ndarray]:
        return {
            "item_ego_": np.zeros((m, self.item_ego_.shape[1]), np.float32),
            "item_features_": np.zeros((m, self.item_features_.shape[1]), np.float32),
            "warm_": np.zeros(m, dtype=bool),
        }

    def add_items(self, features: dict[str, np.ndarray]) -> np.ndarray:
        """Append new items placed by their content neighbours among the training items; returns their indices.

        A new item's vector is ``sum_m w_m mean_{j in kNN_m(new)} y^ego_j`` over the modalities given (a
        one-step approximation of the item-graph propagation; the new items do not join others' neighbour
        lists).  Modalities left out or all-zero rows are skipped for that item.
        """
        self._check_fitted()
        names = self.modalities_.tolist()
        n_new = new_item_count(features, names)
        warm = np.flatnonzero(self.warm_)
        kk = min(int(self.knn_k), len(warm))
        out = np.zeros((n_new, self.item_factors_.shape[1]), dtype=np.float32)
        for m, name in enumerate(names):
            if name not in features:
                continue
            base = self._features(m)
            x = np.nan_to_num(np.asarray(features[name], dtype=np.float32))
            if x.shape != (n_new, base.shape[1]):
                raise DataError(f"add_items: {name!r} must be [{n_new}, {base.shape[1]}], got {x.shape}")
            ok = np.abs(x).sum(1) > 0
            sims = normalize_rows(x) @ base[warm].T
            nb = warm[np.argpartition(-sims, kk - 1, axis=1)[:, :kk]]
            out += np.where(ok[:, None], self.modality_weights_[m] * self.item_ego_[nb].mean(1), 0.0).astype(np.float32)
        start = int(self.n_items_)
        new_features = [
            normalize_rows(np.nan_to_num(np.asarray(features.get(name, np.zeros((n_new, int(d)))), np.float32)))
            for name, d in zip(names, self.feature_dims_, strict=True)
        ]
        self.item_factors_ = np.vstack([self.item_factors_, out])
        self.item_ego_ = np.vstack([self.item_ego_, np.zeros_like(out)])
        self.item_features_ = np.vstack(
            [self.item_features_, np.hstack([np.zeros((n_new, 0), np.float32), *new_features])]
        )
        self.warm_ = np.concatenate([self.warm_, np.zeros(n_new, dtype=bool)])
        self.n_items_ = self.item_factors_.shape[0]
        seen = sp.csr_matrix(self.seen_)
        self.seen_ = sp.csr_matrix((seen.data, seen.indices, seen.indptr), shape=(seen.shape[0], self.n_items_))
        return np.arange(start, self.n_items_, dtype=np.int64)
