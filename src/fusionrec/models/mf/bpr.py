"""Bayesian personalised ranking matrix factorisation (Rendle, Freudenthaler, Gantner & Schmidt-Thieme 2009).

BPR-Opt over triples ``(u, i, j)`` with ``i`` observed and ``j`` not observed for ``u``:

``max sum_{(u,i,j)} ln sigma(x_ui - x_uj) - reg / 2 |Theta|^2``,  ``x_ui = b_i + U_u . V_i``,

fitted by Adagrad (default) or plain SGD on triples drawn uniformly: ``(u, i)`` uniform over the observed entries (so users
are weighted by activity, as in LearnBPR and implicit), ``j`` uniform over items and redrawn while
``(u, j)`` is observed (verified negatives).
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from fusionrec._progress import progress
from fusionrec.data.interactions import Interactions
from fusionrec.errors import CollapseWarning, ConfigError
from fusionrec.models._params import BOOL, NONNEGATIVE, POSITIVE, POSITIVE_INT, SEED, Options
from fusionrec.models.base import Recommender, SideInfo
from fusionrec.models.factors import FactorFoldIn, FactorSpec

__all__ = [
    "BPR",
    "OPTIMIZERS",
    "BPRSweep",
    "BiasedDotScores",
    "bpr_entries",
    "check_collapse",
    "eligible_entries",
    "entry_keys",
    "sample_triples",
]

#: standard deviation of the initial factors (normal); ``(rand - 0.5) / n_factors`` made them so small that the
#: factor gradients ``z (V_i - V_j)`` vanished and a small learning rate only fitted the biases
INIT_STD = 0.1

#: optimisers of the BPR-family kernels
OPTIMIZERS = ("adagrad", "sgd")

#: triples drawn and applied per kernel call (bounds the sampling memory to ~24 bytes x this)
_CHUNK = 1 << 20


def entry_keys(matrix: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Row of every stored entry and its sorted key ``row * n_cols + col`` (CSR with sorted indices)."""
    rows = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))
    return rows, rows * matrix.shape[1] + matrix.indices


def sample_triples(
    matrix: sp.csr_matrix,
    n: int,
    rng: np.random.Generator,
    eligible: np.ndarray | None = None,
    keys: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` BPR triples ``(users, positives, negatives)`` (int32) from a CSR with sorted indices.

    ``(u, i)`` is a uniform draw among the stored entries listed in ``eligible`` (all by default);
    ``j`` is uniform over the columns, redrawn until ``(u, j)`` is not stored (a numba binary search in
    the user's row, redraws from a seeded pool).  Entries
    of users who have every item must be left out of ``eligible`` (no negative exists).  ``keys`` is
    :func:`entry_keys` of ``matrix``, passed to avoid recomputing it on every call.
    """
    n_items = matrix.shape[1]
    rows = (entry_keys(matrix) if keys is None else keys)[0]
    pick = rng.integers(0, matrix.nnz if eligible is None else len(eligible), size=n)
    if eligible is not None:
        pick = eligible[pick]
    users = rows[pick]
    pos = matrix.indices[pick].astype(np.int64)
    from fusionrec.models._kernels.bpr import verify_negatives

    users = users.astype(np.int32)
    neg = rng.integers(0, n_items, size=n).astype(np.int32)
    # redraws come from a seeded pool (deterministic), sized at twice the expected need: a draw is rejected
    # with probability deg_u / n_items, and u is picked in proportion to deg_u
    deg = np.diff(matrix.indptr).astype(np.float64)
    reject = float((deg * deg).sum() / max(1.0, deg.sum() * n_items))
    pool_size = int(2 * n * reject / max(1e-9, 1 - reject)) + 1024
    while verify_negatives(matrix.indptr, matrix.indices, users, neg, rng.integers(0, n_items, pool_size)) < 0:
        pool_size *= 2
    return users, pos.astype(np.int32), neg


def check_collapse(
    model: Recommender, *, k: int = 20, threshold: float = 0.05, max_users: int = 2000, stacklevel: int = 2
) -> float:
    """Warn (:class:`~fusionrec.errors.CollapseWarning`) when a fitted model recommends the same few items to all.

    Coverage = distinct items in the unmasked top ``k`` of up to ``max_users`` evenly spaced users, over the
    number of items.  Below ``threshold`` (and only when ``k / n_items < threshold``, so a small catalogue never
    warns) the model has collapsed to popularity -- typically a learning rate too small for the factors to move
    before the biases fit.  ``stacklevel`` is passed to :func:`warnings.warn` (4 from a model's ``_fit``, so the
    warning points at the caller of ``fit``).  Returns the coverage.
    """
    n_users, n_items = int(model.n_users_), int(model.n_items_)
    if n_users == 0 or n_items == 0:
        return 1.0
    users = np.unique(np.linspace(0, n_users - 1, min(n_users, max_users)).astype(np.int64))
    kk = min(k, n_items)
    seen = np.zeros(n_items, dtype=bool)
    for start in range(0, len(users), 256):
        scores = model.score(users[start : start + 256])
        top = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        seen[top.ravel()] = True
    coverage = float(seen.mean())
    if coverage < threshold and k / n_items < threshold:
        advice = "raise lr or epochs"
        if getattr(model, "optimizer", None) == "sgd":
            advice += ", or use optimizer='adagrad'"
        warnings.warn(
            f"{type(model).__name__} collapsed: its top-{k} lists cover {coverage:.1%} of the {n_items} items "
            f"(popularity-like); {advice}",
            CollapseWarning,
            stacklevel=stacklevel,
        )
    return coverage


def eligible_entries(matrix: sp.csr_matrix) -> tuple[np.ndarray | None, int]:
    """The stored entries BPR triples may start from, and their number.

    Entries of users who have every item are left out (no negative exists): ``eligible`` lists the others by
    position in ``matrix.data``, or is ``None`` when no user is full (all entries, the usual case).
    """
    counts = np.diff(matrix.indptr)
    full = counts >= matrix.shape[1]
    eligible = np.flatnonzero(np.repeat(~full, counts)) if full.any() else None
    return eligible, (matrix.nnz if eligible is None else len(eligible))


def bpr_entries(matrix: sp.spmatrix, name: str) -> tuple[sp.csr_matrix, np.ndarray | None, int]:
    """The CSR a BPR fit samples from, the stored entries it may draw and their number.

    A copy of ``matrix`` with duplicates summed, sorted indices and no stored zeros; ``eligible`` lists the
    entries of users who still miss an item (``None``: all entries, the usual case), since a user who has every
    item has no negative.  Raises :class:`ConfigError` naming the model ``name`` when no entry is eligible.
    """
    m = sp.csr_matrix(matrix, copy=True)
    m.sum_duplicates()
    m.sort_indices()
    m.eliminate_zeros()
    eligible, n_eligible = eligible_entries(m)
    if n_eligible == 0:
        raise ConfigError(f"{name} needs at least one user with an observed and an unobserved item")
    return m, eligible, n_eligible


class BPRSweep:
    """One epoch of BPR-Opt: as many uniform triples as eligible entries, applied in place to ``U, V, b``.

    The triples are drawn by :func:`sample_triples` in chunks of ``_CHUNK`` and applied by the numba kernel the
    ``optimizer`` and ``hogwild`` settings pick (Adagrad keeps its squared-gradient sums here across epochs).
    ``m, eligible`` come from :func:`bpr_entries`; the factor arrays are updated in place, so a caller may
    also change them in place between sweeps.
    """

    def __init__(
        self,
        m: sp.csr_matrix,
        eligible: np.ndarray | None,
        U: np.ndarray,
        V: np.ndarray,
        b: np.ndarray,
        *,
        lr: float,
        reg: float,
        optimizer: str,
        hogwild: bool,
    ) -> None:
        self.m, self.eligible, self.keys = m, eligible, entry_keys(m)
        self.n = m.nnz if eligible is None else len(eligible)
        self.U, self.V, self.b = U, V, b
        self.lr, self.reg = float(lr), float(reg)
        self.n_threads = 1
        if hogwild:
            import numba

            self.n_threads = numba.get_num_threads()
        self.adagrad = optimizer == "adagrad"
        self.GU, self.GV, self.Gb = np.zeros_like(U), np.zeros_like(V), np.zeros_like(b)

    def run(self, rng: np.random.Generator) -> float:
        """One sweep; the summed ``ln sigma(x_ui - x_uj)`` of its triples (before their updates)."""
        from fusionrec.models._kernels.bpr import (
            bpr_epoch,
            bpr_epoch_adagrad,
            bpr_epoch_adagrad_hogwild,
            bpr_epoch_hogwild,
        )

        U, V, b, lr, reg, n_threads = self.U, self.V, self.b, self.lr, self.reg, self.n_threads
        total = 0.0
        for start in range(0, self.n, _CHUNK):
            size = min(_CHUNK, self.n - start)
            users, pos, neg = sample_triples(self.m, size, rng, self.eligible, self.keys)
            if self.adagrad and n_threads > 1:
                total += bpr_epoch_adagrad_hogwild(
                    U, V, b, self.GU, self.GV, self.Gb, users, pos, neg, lr, reg, n_threads
                )
            elif self.adagrad:
                total += bpr_epoch_adagrad(U, V, b, self.GU, self.GV, self.Gb, users, pos, neg, lr, reg)
            elif n_threads > 1:
                total += bpr_epoch_hogwild(U, V, b, users, pos, neg, lr, reg, n_threads)
            else:
                total += bpr_epoch(U, V, b, users, pos, neg, lr, reg)
        return total


class BiasedDotScores(FactorFoldIn):
    """The factor declaration of the models that score ``b_i + U_u . V_i`` (BPR, SocialBPR, DPMF, FedMF).

    Mix in before :class:`~fusionrec.models.base.Recommender`: whatever trains ``user_factors_ [n_users, f]``,
    ``item_factors_ [n_items, f]`` and ``item_bias_ [n_items]``, the score is :meth:`Factors.scores` (the one factor
    scoring path of :class:`~fusionrec.models.factors.FactorMixin`), a new user is fitted by the pairwise (BPR)
    log-loss against the fixed item factors with the L2 weight ``reg``, and :meth:`similar_items` compares the item
    factors.
    """

    factor_spec = FactorSpec(
        user="user_factors_", item="item_factors_", item_bias="item_bias_", fold_in="pairwise", regularization="reg"
    )
    item_factors_: np.ndarray

    def item_embeddings(self) -> np.ndarray:
        """The item factors ``V`` (:meth:`similar_items`)."""
        return self.item_factors_


class BPR(BiasedDotScores, Recommender):
    """Matrix factorisation with item biases trained by BPR (pairwise ranking, SGD).

    Score ``x_ui = b_i + U_u . V_i``.  Every epoch draws ``nnz`` triples (see :func:`sample_triples`)
    and applies one Adagrad (default) or SGD ascent step per triple on
    ``ln sigma(x_ui - x_uj) - reg / 2 (|U_u|^2 + |V_i|^2 + |V_j|^2 + b_i^2 + b_j^2)``.

    Parameters
    ----------
    n_factors
        Latent dimension.
    lr
        Step size (Adagrad: the initial per-coordinate step; SGD: the step on the raw gradient).
    optimizer
        ``"adagrad"`` (default): per-parameter step ``lr * g / sqrt(sum g^2)``, which moves the
        small initial factors as fast as the biases and works over a wide range of learning rates.
        ``"sgd"``: plain SGD (Rendle et al.); at ``lr <= 0.005`` it ends at item popularity
        within the default epochs (a :class:`~fusionrec.errors.CollapseWarning` says so after the fit).
    reg
        L2 penalty applied at every step to the parameters the triple touches.
    epochs
        Passes of ``nnz`` sampled triples each.
    seed
        Seeds the initial factors (normal, standard deviation :data:`INIT_STD`; biases 0) and the triples.
    hogwild
        ``False`` (default): one thread applies the triples in the sampled order, so a seed
        reproduces the fit exactly.  ``True``: the triples of an epoch are split across the numba
        threads, which update the shared factors without locks (Hogwild) — faster on several
        cores, but the result then varies slightly from run to run.

    Attributes
    ----------
    user_factors_, item_factors_, item_bias_
        ``float32 [n_users, f]``, ``float32 [n_items, f]``, ``float32 [n_items]``.
    loss_history_
        ``float64 [epochs]``: mean ``-ln sigma(x_uij)`` over each epoch's triples (taken before each step).
    coverage_
        Distinct items in the top-20 lists of (up to 2000) users over the catalogue size, measured after the
        fit by :func:`check_collapse` (which warns below 5%).
    """

    #: tuning ranges (:mod:`fusionrec.tuning`): name -> (kind, low, high[, "log"]) or ("categorical", [choices]).
    #: ``lr`` starts at 0.01: below it the factors barely move in the default epochs and the model ranks under
    #: popularity (ml-100k 80/20 test NDCG@20: .130 at lr 1e-3, .273 at 5e-3, .340 at 0.01; MostPopular .212)
    _search_space: ClassVar[dict[str, tuple[Any, ...]]] = {
        "n_factors": ("int", 8, 256, "log"),
        "lr": ("float", 0.01, 0.3, "log"),
        "reg": ("float", 1e-5, 0.1, "log"),
        "epochs": ("int", 10, 100),
    }

    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        "n_factors": [*POSITIVE_INT],
        "lr": [*POSITIVE],
        "optimizer": [Options(OPTIMIZERS)],
        "reg": [*NONNEGATIVE],
        "epochs": [*POSITIVE_INT],
        "seed": [*SEED],
        "hogwild": [*BOOL],
    }
    #: the library's one vocabulary (the former names still work, with a FutureWarning)
    _renamed_params: ClassVar[dict[str, str]] = {"learning_rate": "lr", "regularization": "reg"}

    def __init__(
        self,
        *,
        n_factors: int = 64,
        lr: float = 0.05,
        optimizer: str = "adagrad",
        reg: float = 0.001,
        epochs: int = 50,
        seed: int = 0,
        hogwild: bool = False,
    ) -> None:
        self.n_factors = n_factors
        self.lr = lr
        self.optimizer = optimizer
        self.reg = reg
        self.epochs = epochs
        self.seed = seed
        self.hogwild = hogwild

    def _fit(self, train: Interactions, side: SideInfo | None) -> None:
        m, eligible, n_eligible = bpr_entries(train.matrix, "BPR")
        f = int(self.n_factors)
        rng = np.random.default_rng(self.seed)
        U = (rng.standard_normal((train.n_users, f), dtype=np.float32) * INIT_STD).astype(np.float32)
        V = (rng.standard_normal((train.n_items, f), dtype=np.float32) * INIT_STD).astype(np.float32)
        b = np.zeros(train.n_items, dtype=np.float32)
        sweep = BPRSweep(m, eligible, U, V, b, lr=self.lr, reg=self.reg, optimizer=self.optimizer, hogwild=self.hogwild)
        losses = []
        for epoch in progress(range(int(self.epochs)), total=int(self.epochs), desc="BPR"):
            losses.append(-sweep.run(rng) / n_eligible)
            self._end_epoch(epoch, losses[-1], user_factors_=U, item_factors_=V, item_bias_=b)
        if not (np.isfinite(U).all() and np.isfinite(V).all()):
            raise ConfigError("BPR diverged (non-finite factors); lower lr")
        self.user_factors_ = U
        self.item_factors_ = V
        self.item_bias_ = b
        self.loss_history_ = np.asarray(losses, dtype=np.float64)
        self.coverage_ = check_collapse(self, stacklevel=4)
