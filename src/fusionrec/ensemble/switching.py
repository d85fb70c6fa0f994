"""Switching hybrid (Burke 2002): a warm (collaborative) model where it has data, a cold (content) model elsewhere.

Shapes: ``U`` users, ``I`` items.

For user ``u`` and item ``i`` (``n_u`` / ``n_i`` their training interaction counts):

* ``n_u < min_user_interactions``: the whole row comes from the cold model;
* otherwise warm items come from the warm model and cold items (``n_i < min_item_interactions``, e.g. items
  added after training or with no training interactions) from the cold model.

The two models' scores live on different scales, so each row of each model is first made comparable by
``normalization``: ``"zscore"`` (default; ``(s - mean_u) / sd_u`` over the row) or ``"rank"`` (``1 - (rank - 1)
/ I``, in ``(0, 1]``, 1 for the best item).  Both are per user and monotone, so a pure-warm or pure-cold row
keeps its model's ranking.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from fusionrec.ensemble.blend import MemberSpec
from fusionrec.ensemble.rankfusion import RankingEnsemble, row_ranks
from fusionrec.errors import ConfigError
from fusionrec.models._params import NONNEGATIVE_INT, Options
from fusionrec.models.declaration import ROWS, Indexed

__all__ = ["Switching", "normalise_rows"]

NORMALIZATIONS = ("zscore", "rank")


def normalise_rows(scores: np.ndarray, how: str) -> np.ndarray:
    """Per-row ``"zscore"`` or ``"rank"`` normalisation of ``scores [U, I]`` (non-finite entries stay lowest)."""
    s = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(s)
    if how == "rank":
        return (1.0 - (row_ranks(np.where(finite, s, -np.inf)) - 1.0) / max(s.shape[1], 1)).astype(np.float32)
    cnt = np.maximum(finite.sum(axis=1, keepdims=True), 1)
    z = np.where(finite, s, 0.0)
    mean = z.sum(axis=1, keepdims=True) / cnt
    var = (np.where(finite, (s - mean) ** 2, 0.0)).sum(axis=1, keepdims=True) / cnt
    out = (z - mean) / np.where(var > 0, np.sqrt(var), 1.0)
    return np.where(finite, out, -np.inf).astype(np.float32)


class Switching(RankingEnsemble):
    """Warm model for users / items with enough training interactions, cold model otherwise (module notes).

    Parameters
    ----------
    models
        ``[warm_model, cold_model]``: instances (fitted or not), registered names or specs, as in every
        :class:`~fusionrec.ensemble.blend.Ensemble`.
    min_user_interactions
        Users with fewer training interactions are served by the cold model only.
    min_item_interactions
        Items with fewer training interactions (cold items) are scored by the cold model.
    normalization
        ``"zscore"`` or ``"rank"`` (per-user, makes the two models' scores comparable).

    Attributes
    ----------
    user_counts_, item_counts_
        ``int64 [U]``, ``[I]`` training interaction counts.
    """

    user_state: ClassVar[dict[str, Indexed]] = {"user_counts_": ROWS}
    item_state: ClassVar[dict[str, Indexed]] = {"item_counts_": ROWS}
    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        "min_user_interactions": [*NONNEGATIVE_INT],
        "min_item_interactions": [*NONNEGATIVE_INT],
        "normalization": [Options(NORMALIZATIONS)],
    }

    def __init__(
        self,
        *,
        models: list[MemberSpec],
        min_user_interactions: int = 5,
        min_item_interactions: int = 1,
        normalization: str = "zscore",
    ) -> None:
        super().__init__(models=models, refit=False, clip=False)
        self.min_user_interactions = min_user_interactions
        self.min_item_interactions = min_item_interactions
        self.normalization = normalization

    def _check_models(self) -> None:
        super()._check_models()
        if len(self.models) != 2:
            raise ConfigError("Switching takes exactly two members: models=[warm_model, cold_model]")

    def _prepare_ranking(self, matrix: Any) -> None:
        m = sp.csr_matrix(matrix)
        self.user_counts_ = np.diff(m.indptr).astype(np.int64)
        self.item_counts_ = np.bincount(m.indices, minlength=m.shape[1]).astype(np.int64)

    def fuse(self, member_scores: np.ndarray, users: np.ndarray) -> np.ndarray:
        how = str(self.normalization)
        warm = normalise_rows(member_scores[0], how)
        cold = normalise_rows(member_scores[1], how)
        cold_user = self.user_counts_[users] < int(self.min_user_interactions)
        cold_item = self.item_counts_ < int(self.min_item_interactions)
        use_cold = cold_user[:, None] | cold_item[None, :]
        return np.where(use_cold, cold, warm).astype(np.float32)

    def routes(self, users: np.ndarray) -> np.ndarray:
        """Whether each user is served by the cold model only (``bool [U]``)."""
        self._check_fitted()
        users = np.atleast_1d(np.asarray(users, dtype=np.int64))
        return self.user_counts_[users] < int(self.min_user_interactions)
