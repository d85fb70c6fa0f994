"""Implicit top-N social models: social-regularised BPR and LightGCN over user-item plus user-user edges.

Both read the trust / friend links from ``side.social`` (users x users CSR aligned with the training user map,
rows = trusters) under the rule of :func:`fusionrec.models.social.clean_trust` (negative or non-finite weights
and misaligned shapes refused with :class:`~fusionrec.errors.DataError`; self-links and zeros dropped;
duplicates merged by max), and raise :class:`~fusionrec.errors.ConfigError` without them.

Cold users, the rule of :mod:`fusionrec.models.social`: after the fit, a user with no training interaction who
links to users who have one gets the link-weighted mean of those users' final vectors (scores
``b_i + x_u . y_i``: the friends' taste); a user with neither keeps the base model's placement.  A new user after
the fit is placed by ``fold_in_user(items, values, friends=[...])`` (:class:`~fusionrec.models.social.SocialFoldIn`):
links alone give the friends' mean vector, a history too moves the history's fold-in towards it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from fusionrec._progress import progress
from fusionrec.data.interactions import Interactions
from fusionrec.errors import ConfigError
from fusionrec.models._params import NONNEGATIVE, Interval
from fusionrec.models.base import SideInfo
from fusionrec.models.declaration import ROWS, Indexed
from fusionrec.models.graph import GraphFusion, normalized_adjacency
from fusionrec.models.mf.bpr import BPR, INIT_STD, BPRSweep, bpr_entries, check_collapse
from fusionrec.models.social import SocialFoldIn, _trust_of, cold_social_users, row_normalise

__all__ = ["SocialBPR", "SocialLightGCN", "social_pull_matrix", "trust_prox"]


def social_pull_matrix(T: sp.csr_matrix) -> sp.csr_matrix:
    """``M = D - T_n`` with ``T_n`` the row-normalised trust and ``D`` the diagonal of users with links.

    ``|M U|^2 = sum_{u with links} |U_u - sum_v T_n,uv U_v|^2`` is SocialMF's trust term; its gradient is
    ``2 M^T M U``.
    """
    Tn = row_normalise(T)
    has = (np.diff(Tn.indptr) > 0).astype(np.float64)
    return sp.csr_matrix(sp.diags(has) - Tn)


def trust_prox(
    M: sp.csr_matrix, U: np.ndarray, weight: float, *, MT: sp.csr_matrix | None = None, tol: float = 1e-6
) -> np.ndarray:
    """The proximal step of SocialMF's trust term: ``argmin_X |X - U|^2 / 2 + weight |M X|^2 / 2``.

    That is ``X = (I + weight M^T M)^{-1} U`` (``float64 [n, f]``), solved by conjugate gradients on every column at
    once (warm-started at ``U``; each iteration is two sparse products, ``M^T M`` is never formed) to a relative
    residual ``tol``.  Unlike the gradient step ``U - weight M^T M U``, which grows the components of ``U`` along
    the eigenvectors of ``M^T M`` whose eigenvalue exceeds ``2 / weight`` (a user trusted by many: FilmTrust's
    ``|M^T M|`` is about 16, so every weight above 0.13 diverged), it shrinks every component, whatever the weight
    and the graph.  The two agree to first order in ``weight``.
    """
    MT = sp.csr_matrix(M.T) if MT is None else MT
    w = float(weight)
    B = np.asarray(U, dtype=np.float64)
    X = B.copy()
    R = -w * (MT @ (M @ X))  # B - (I + w M^T M) X at X = B
    P = R.copy()
    rs = np.einsum("ij,ij->j", R, R)
    stop = tol * tol * np.maximum(np.einsum("ij,ij->j", B, B), np.finfo(np.float64).tiny)
    for _ in range(10 * B.shape[0] + 10):  # CG ends in at most n steps in exact arithmetic
        if (rs <= stop).all():
            break
        AP = P + w * (MT @ (M @ P))
        pap = np.einsum("ij,ij->j", P, AP)
        alpha = np.divide(rs, pap, out=np.zeros_like(rs), where=pap > 0)
        X += alpha * P
        R -= alpha * AP
        rs_new = np.einsum("ij,ij->j", R, R)
        beta = np.divide(rs_new, rs, out=np.zeros_like(rs), where=rs > 0)
        P = R + beta * P
        rs = rs_new
    return X


class SocialBPR(SocialFoldIn, BPR):
    """BPR matrix factorisation with SocialMF's trust regulariser (Jamali & Ester 2010 on a BPR loss).

    Maximises ``sum ln sigma(x_ui - x_uj) - reg / 2 |Theta|^2
    - social_weight / 2 sum_u |U_u - sum_v T_uv U_v|^2`` (``x_ui = b_i + U_u . V_i``; ``T`` the trust row-normalised
    over each user's trusted users; users without links have no term).  Every epoch is :class:`BPR`'s pass of
    ``nnz`` sampled triples (same sampler and kernels, same ``optimizer`` / ``hogwild``) followed by the proximal
    step of the trust term, ``U <- (I + social_weight M^T M)^{-1} U`` (:func:`trust_prox`, with ``M`` of
    :func:`social_pull_matrix`): a user's vector is pulled towards the mean of the users they trust and, through
    ``M^T``, the trusted users towards those who trust them.  ``social_weight=0`` is exactly :class:`BPR` with the
    same seed.

    Cold users and new users: see :mod:`fusionrec.models.social_graph` (a user with links but no interaction is
    recommended their friends' mean taste, at fit time and by ``fold_in_user(..., friends=...)``).

    Parameters
    ----------
    n_factors, lr, optimizer, reg, epochs, seed, hogwild
        As :class:`~fusionrec.models.mf.bpr.BPR`.
    social_weight
        Weight of the trust term, in ``[0, 0.5]``.  Every weight trains stably on any graph: the proximal step
        shrinks every component of ``U`` (the gradient step ``U -= social_weight M^T M U`` used before grew the
        components whose eigenvalue of ``M^T M`` exceeds ``2 / social_weight``, and ``|M^T M|`` is not bounded by
        4 when some user is trusted by many: about 16 on FilmTrust, where at ``lr=0.2`` it collapsed at 0.2 and
        overflowed at 0.35 and 0.5).  Measured on FilmTrust at ``lr=0.2`` (80/20 split, 30 epochs): test NDCG@20
        .5502 at 0 (BPR), .5565 / .5566 / .5573 at 0.2 / 0.35 / 0.5, top-20 item coverage .60 then .46.  The range
        stops at 0.5, the largest weight checked: a larger one pulls linked users together further.

    Attributes
    ----------
    user_factors_, item_factors_, item_bias_, loss_history_, coverage_
        As :class:`BPR`.
    social_users_
        ``bool [n_users]``: users placed through their links only (no training interaction).
    """

    uses_side_info = True
    #: declaration (:mod:`fusionrec.models.declaration`): BPR's factors plus the mask of users placed by their links
    user_state: ClassVar[dict[str, Indexed]] = {"social_users_": ROWS}
    _param_constraints: ClassVar[dict[str, list[Any]]] = {"social_weight": [Interval(float, 0.0, 0.5)]}

    def __init__(
        self,
        *,
        n_factors: int = 64,
        lr: float = 0.05,
        optimizer: str = "adagrad",
        reg: float = 0.001,
        social_weight: float = 0.1,
        epochs: int = 50,
        seed: int = 0,
        hogwild: bool = False,
    ) -> None:
        self.n_factors = n_factors
        self.lr = lr
        self.optimizer = optimizer
        self.reg = reg
        self.social_weight = social_weight
        self.epochs = epochs
        self.seed = seed
        self.hogwild = hogwild

    def _fit(self, train: Interactions, side: SideInfo | None) -> None:
        T = _trust_of(side, train.n_users, type(self).__name__)
        M = social_pull_matrix(T)
        MT = sp.csr_matrix(M.T)
        m, eligible, n_eligible = bpr_entries(train.matrix, type(self).__name__)
        f = int(self.n_factors)
        rng = np.random.default_rng(self.seed)  # the same draws as BPR's fit
        U = (rng.standard_normal((train.n_users, f), dtype=np.float32) * INIT_STD).astype(np.float32)
        V = (rng.standard_normal((train.n_items, f), dtype=np.float32) * INIT_STD).astype(np.float32)
        b = np.zeros(train.n_items, dtype=np.float32)
        step = float(self.social_weight)
        sweep = BPRSweep(m, eligible, U, V, b, lr=self.lr, reg=self.reg, optimizer=self.optimizer, hogwild=self.hogwild)
        losses = []
        for _ in progress(range(int(self.epochs)), total=int(self.epochs), desc=type(self).__name__):
            total = sweep.run(rng)
            if step > 0 and M.nnz:
                U[:] = trust_prox(M, U, step, MT=MT)
            losses.append(-total / n_eligible)
        if not (np.isfinite(U).all() and np.isfinite(V).all()):
            raise ConfigError(f"{type(self).__name__} diverged (non-finite factors); lower lr")
        self.social_users_ = cold_social_users(T, np.diff(m.indptr) > 0, U)
        self.user_factors_ = U
        self.item_factors_ = V
        self.item_bias_ = b
        self.loss_history_ = np.asarray(losses, dtype=np.float64)
        self.coverage_ = check_collapse(self, stacklevel=4)


class SocialLightGCN(SocialFoldIn, GraphFusion):
    """LightGCN over the user-item graph plus the user-user social graph (the propagation of DiffNet).

    The graph of :class:`~fusionrec.models.graph.GraphFusion` gets a user-user block:
    ``A = [[w S, R], [R^T, 0]]`` with ``S = max(T, T^T)`` the symmetrised links (weights scaled by the largest,
    so 1 for unweighted links) and ``w = social_weight``; ``A_hat = D^-1/2 A D^-1/2`` and
    ``E = mean_{l=0..L} A_hat^l E^0``.  A user's vector thus aggregates their items and their friends' vectors at
    every layer, and friends' items reach them at layer 2 (DiffNet's social diffusion, Wu et al. SIGIR 2019,
    with LightGCN's linear propagation instead of DiffNet's fused feature layers; items do not see the social
    block directly).  Trained with BPR as GraphFusion; ``modalities`` (default none) adds GraphFusion's item
    content graphs.  ``social_weight=0`` is GraphFusion (plain LightGCN with ``modalities=[]``).

    Cold users and new users: see :mod:`fusionrec.models.social_graph` (a user with links but no interaction gets
    their friends' mean final vector; the propagation alone would also mix in the user's untrained ego
    embedding).

    Parameters
    ----------
    social_weight
        Weight ``w >= 0`` of a user-user edge relative to a user-item edge.
    modalities, n_factors, layers, item_layers, knn_k, learn_weights, reg, edge_dropout, epochs, batch_size, lr,
    seed, threads
        As :class:`~fusionrec.models.graph.GraphFusion`, except that ``modalities=None`` (the default) means no
        content graphs here (GraphFusion: all); name the modalities to add their item graphs.
    """

    #: declaration (:mod:`fusionrec.models.declaration`): GraphFusion's state plus the mask of users placed by their
    #: links (the links themselves are not kept: the user-user graph lives only during the fit)
    user_state: ClassVar[dict[str, Indexed]] = {"social_users_": ROWS}
    _param_constraints: ClassVar[dict[str, list[Any]]] = {"social_weight": [*NONNEGATIVE]}
    _user_graph: sp.csr_matrix | None

    def __init__(
        self,
        *,
        social_weight: float = 1.0,
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
        super().__init__(
            modalities=modalities, n_factors=n_factors, layers=layers, item_layers=item_layers, knn_k=knn_k,
            learn_weights=learn_weights, reg=reg, edge_dropout=edge_dropout, epochs=epochs, batch_size=batch_size,
            lr=lr, seed=seed, threads=threads,
        )  # fmt: skip
        self.social_weight = social_weight

    def _graphs(self, side: SideInfo | None, n_items: int) -> tuple[list[str], list[sp.csr_matrix], list[np.ndarray]]:
        if self.modalities is None:  # no content graphs unless asked for
            return [], [], []
        return super()._graphs(side, n_items)

    def _adjacency(self, r: sp.csr_matrix, keep: np.ndarray | None = None) -> sp.csr_matrix:
        return normalized_adjacency(r, keep, self._user_graph)

    def _fit(self, train: Interactions, side: SideInfo | None) -> None:
        T = _trust_of(side, train.n_users, type(self).__name__)
        w = float(self.social_weight)
        S = sp.csr_matrix(T.maximum(T.T))
        self._user_graph = None
        if w > 0 and S.nnz:
            self._user_graph = sp.csr_matrix(S * (w / float(S.data.max())))
        try:
            super()._fit(train, side)
        finally:
            del self._user_graph
        placed = np.diff(sp.csr_matrix(train.matrix).indptr) > 0
        self.social_users_ = cold_social_users(T, placed, self.user_factors_)
