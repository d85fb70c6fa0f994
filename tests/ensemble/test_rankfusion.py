"""ReciprocalRankFusion: contract, exact fusion on fixed tables, unseen-only ranking, fitted members, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fusionrec.data import Interactions
from fusionrec.ensemble.rankfusion import ReciprocalRankFusion, row_ranks
from fusionrec.errors import ConfigError
from fusionrec.models import SideInfo, load_model, make_model
from fusionrec.models.baselines import MostPopular
from fusionrec.models.mf.bpr import BPR

from ..models.contract import RecommenderContract
from ._helpers import Fixed, grid


class TestReciprocalRankFusionContract(RecommenderContract):
    implicit = True

    def make_model(self) -> ReciprocalRankFusion:
        return ReciprocalRankFusion(
            models=["MostPopular", {"name": "BPR", "params": {"n_factors": 4, "epochs": 3, "seed": 1}}], k=10
        )

    def make_side(self, train: Interactions) -> SideInfo | None:
        return None


def test_registry_name() -> None:
    assert isinstance(make_model("ReciprocalRankFusion", models=["MostPopular"]), ReciprocalRankFusion)


def test_row_ranks_ties_by_lower_index() -> None:
    np.testing.assert_array_equal(row_ranks(np.array([[0.5, 0.9, 0.5, -np.inf]])), [[2, 1, 3, 4]])


def _train() -> Interactions:
    # 2 users x 5 items; user 0 has seen item 0
    return grid(np.array([0, 1]), np.array([0, 4]), np.array([1.0, 1.0]), 2, 5)


def test_exact_fusion_with_weights() -> None:
    train = _train()
    a = np.array([[5.0, 4, 3, 2, 1], [1, 2, 3, 4, 5]])
    b = np.array([[0.0, 1, 2, 3, 4], [0, 1, 2, 3, 4]])
    members = [Fixed(a).fit(train), Fixed(b).fit(train)]
    model = ReciprocalRankFusion(models=members, k=1.0, weights=[2.0, 1.0], rank_unseen=False).fit_blend()
    ra, rb = row_ranks(a), row_ranks(b)
    np.testing.assert_allclose(model.score(np.array([0, 1])), 2.0 / (1 + ra) + 1.0 / (1 + rb), rtol=1e-6)
    # unseen-only ranking: user 0's seen item 0 goes last for every member, the others move up by one
    unseen = ReciprocalRankFusion(models=members, k=1.0).fit_blend()
    s = unseen.score(np.array([0]))[0]
    np.testing.assert_allclose(s[1:], 1 / (1 + np.array([1, 2, 3, 4])) + 1 / (1 + np.array([4, 3, 2, 1])), rtol=1e-6)
    items, _ = unseen.recommend(np.array([0]), k=4)
    assert 0 not in items[0]
    np.testing.assert_allclose(unseen.predict(np.array([0, 1]), np.array([2, 3])), unseen.score([0, 1])[[0, 1], [2, 3]])


def test_fit_fits_fresh_members_and_roundtrips(implicit_interactions: Interactions, tmp_path: Path) -> None:
    bpr = BPR(n_factors=4, epochs=2, seed=0)
    model = ReciprocalRankFusion(models=[MostPopular(), bpr]).fit(implicit_interactions)
    assert not hasattr(bpr, "n_items_")  # instances are cloned, not fitted in place
    assert len(model.members_) == 2
    model.save(tmp_path / "rrf")
    loaded = load_model(tmp_path / "rrf")
    assert isinstance(loaded, ReciprocalRankFusion)
    np.testing.assert_allclose(loaded.score(np.arange(4)), model.score(np.arange(4)), rtol=1e-6)


def test_errors(implicit_interactions: Interactions) -> None:
    with pytest.raises(ConfigError):
        ReciprocalRankFusion(models=[]).fit(implicit_interactions)
    with pytest.raises(ConfigError):
        ReciprocalRankFusion(models=["MostPopular"], k=0).fit(implicit_interactions)
    with pytest.raises(ConfigError):
        ReciprocalRankFusion(models=["MostPopular"], weights=[1.0, 2.0]).fit(implicit_interactions)
