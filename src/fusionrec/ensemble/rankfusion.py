"""Reciprocal rank fusion (Cormack, Clarke & Buettcher 2009) of several recommenders, for ranking.

Shapes: ``M`` members, ``U`` users, ``I`` items.

For user ``u`` every member ``m`` ranks all items (``rank_m(u, i)``: 1 for its best item); the fused score is

``s(u, i) = sum_m w_m / (k + rank_m(u, i))``.

Only ranks enter, so members on incomparable scales (ALS dot products, cosine similarities, BPR logits) fuse
without calibration; ``k`` damps the weight of the very top ranks (60 in the original paper).  With
``rank_unseen=True`` (default) each member ranks the user's unseen items only (training items are ranked
last), so a member that puts the training items on top does not push every candidate down by a different
amount.  Scores depend on the whole ranking, so :meth:`score` always ranks all items and then returns the
requested columns.  Ties are broken by the lower item index (stable sort), so results are deterministic.

Members are given and persisted as in :class:`fusionrec.ensemble.blend.Ensemble`: ``fit(train, side)``
fits fresh copies of them on ``train`` (nothing is learned on validation data); ``fit_blend()`` wraps
already fitted instances.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np

from fusionrec._ranking import mask_rows
from fusionrec.data.interactions import Interactions
from fusionrec.ensemble.blend import Ensemble, MemberSpec, _fit_member, _make_member
from fusionrec.errors import ConfigError, DataError
from fusionrec.models._params import BOOL, Interval
from fusionrec.models.base import Recommender, SideInfo

__all__ = ["RankingEnsemble", "ReciprocalRankFusion", "row_ranks"]


def row_ranks(scores: np.ndarray) -> np.ndarray:
    """1-based rank of every column within its row (``float32 [U, I]``; best = 1, ties by lower index)."""
    scores = np.asarray(scores)
    order = np.argsort(-scores, axis=1, kind="stable")
    ranks = np.empty(scores.shape, dtype=np.float32)
    np.put_along_axis(ranks, order, np.arange(1, scores.shape[1] + 1, dtype=np.float32)[None, :], axis=1)
    return ranks


class RankingEnsemble(Ensemble):
    """Base of the ranking ensembles: members fitted on all of ``train``, no combiner learned on validation.

    :meth:`score` gets every member's full score rows and applies :meth:`fuse` (which may use whole rows:
    ranks, per-user normalisation); :meth:`predict` scores per user through it.
    """

    predicts_ratings = False

    def fit(self, train: Interactions, side: SideInfo | None = None, valid: Interactions | None = None) -> Self:
        """Fit fresh copies of the members on ``train`` (``valid`` is not needed and ignored)."""
        if not isinstance(train, Interactions):
            raise ConfigError("fit expects an fusionrec.data.Interactions; build one with Interactions.from_frame")
        self._check_models()
        self._check_params()
        members = [_make_member(spec) for spec in self.models]
        for member in members:
            _fit_member(member, train, side)
        self.members_ = members
        self._set_base(train)
        return self

    def fit_blend(self, valid: Interactions | None = None) -> Self:
        """Use the already fitted instances in ``models`` as they are (``valid`` is ignored)."""
        return super().fit_blend(valid)  # type: ignore[arg-type]

    def _fit_combiner(self, valid: Interactions | None) -> None:
        """Nothing to learn."""

    def _prepare_features(self, matrix: Any) -> None:
        super()._prepare_features(matrix)
        self._prepare_ranking(matrix)

    def _prepare_ranking(self, matrix: Any) -> None:
        """Per-user / per-item state derived from the training matrix (subclasses)."""

    def fuse(self, member_scores: np.ndarray, users: np.ndarray) -> np.ndarray:
        """Fuse full rows ``member_scores [M, U, I]`` of ``users`` into ``float32 [U, I]``."""
        raise NotImplementedError

    def combine(self, member_scores: np.ndarray, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        users = np.asarray(users).reshape(-1)
        if member_scores.ndim != 3 or member_scores.shape[2] != self.n_items_:
            raise DataError(f"{type(self).__name__} fuses whole rankings; pass score rows over all items")
        return self.fuse(member_scores, users)

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        self._check_fitted()
        users = np.atleast_1d(np.asarray(users, dtype=np.int64))
        fused = np.asarray(self.fuse(self.member_scores(users), users), dtype=np.float32)
        return fused if items is None else fused[:, np.asarray(items, dtype=np.int64)]

    def predict(self, users: np.ndarray, items: np.ndarray, timestamps: np.ndarray | None = None) -> np.ndarray:
        """Fused rank scores of the pairs (ranks carry no time: ``timestamps`` is accepted and unused)."""
        return Recommender.predict(self, users, items)

    def _masked(self, scores: np.ndarray, users: np.ndarray) -> np.ndarray:
        """A copy of ``scores [U, I]`` with each user's training items at ``-inf``."""
        out = np.array(scores, dtype=np.float32, copy=True)
        out[~np.isfinite(out)] = -np.inf
        mask_rows(out, self.seen_, users)
        return out


class ReciprocalRankFusion(RankingEnsemble):
    """``s(u, i) = sum_m w_m / (k + rank_m(u, i))`` over the members' rankings (module notes).

    Parameters
    ----------
    models
        Members: instances (fitted or not), registered names or ``{"name": ..., "params": {...}}`` specs.
    k
        Rank offset (> 0); larger values flatten the weight of the top ranks.
    weights
        Per-member weights ``w_m`` (>= 0, default 1 each).
    rank_unseen
        Rank each user's unseen items only (training items ranked after them).
    """

    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        "k": [Interval(float, 0.0, None, closed="neither")],
        "weights": [list, None],
        "rank_unseen": [*BOOL],
    }

    def __init__(
        self,
        *,
        models: list[MemberSpec],
        k: float = 60.0,
        weights: list[float] | None = None,
        rank_unseen: bool = True,
    ) -> None:
        super().__init__(models=models, refit=False, clip=False)
        self.k = k
        self.weights = weights
        self.rank_unseen = rank_unseen

    def _check_params(self) -> None:
        if self.weights is not None:
            w = np.asarray(self.weights, dtype=np.float64)
            if w.shape != (len(self.models),) or not np.isfinite(w).all() or (w < 0).any():
                raise ConfigError(f"weights must be {len(self.models)} finite numbers >= 0, one per member")

    def fuse(self, member_scores: np.ndarray, users: np.ndarray) -> np.ndarray:
        w = np.ones(len(member_scores)) if self.weights is None else np.asarray(self.weights, dtype=np.float64)
        out = np.zeros(member_scores.shape[1:], dtype=np.float32)
        for m, scores in enumerate(member_scores):
            if self.rank_unseen:
                scores = self._masked(scores, users)
            out += np.float32(w[m]) / (np.float32(self.k) + row_ranks(scores))
        return out
