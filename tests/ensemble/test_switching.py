"""Switching: contract, routing of cold users and cold items, normalisations, errors."""

from __future__ import annotations

import numpy as np
import pytest

from fusionrec.data import Interactions
from fusionrec.ensemble.switching import Switching, normalise_rows
from fusionrec.errors import ConfigError
from fusionrec.models import SideInfo, make_model

from ..models.contract import RecommenderContract
from ._helpers import Fixed, grid


class TestSwitchingContract(RecommenderContract):
    implicit = True

    def make_model(self) -> Switching:
        return Switching(
            models=[{"name": "BPR", "params": {"n_factors": 4, "epochs": 3, "seed": 1}}, "ContentKNN"],
            min_user_interactions=8,
        )

    def make_side(self, train: Interactions) -> SideInfo:
        rng = np.random.default_rng(0)
        return SideInfo(item_features={"text": rng.normal(size=(train.n_items, 5)).astype(np.float32)})


def test_registry_name() -> None:
    assert isinstance(make_model("Switching", models=["MostPopular", "Random"]), Switching)


def test_normalise_rows() -> None:
    s = np.array([[1.0, 2.0, 3.0, -np.inf]])
    z = normalise_rows(s, "zscore")
    np.testing.assert_allclose(z[0, :3], [-np.sqrt(1.5), 0.0, np.sqrt(1.5)], rtol=1e-6)
    assert z[0, 3] == -np.inf
    np.testing.assert_allclose(normalise_rows(s, "rank"), [[0.5, 0.75, 1.0, 0.25]])
    np.testing.assert_allclose(normalise_rows(np.ones((1, 3)), "zscore"), 0.0)


@pytest.mark.parametrize("how", ["zscore", "rank"])
def test_routing(how: str) -> None:
    # user 0: 3 interactions (warm with min 2), user 1: 1 (cold); item 4 has none (cold item)
    train = grid(np.array([0, 0, 0, 1]), np.array([0, 1, 2, 3]), np.ones(4), 2, 5)
    warm = np.array([[9.0, 8, 7, 6, 5], [1, 2, 3, 4, 5]])
    cold = np.array([[0.0, 1, 2, 3, 4], [4, 3, 2, 1, 0]])
    model = Switching(
        models=[Fixed(warm).fit(train), Fixed(cold).fit(train)], min_user_interactions=2, normalization=how
    ).fit_blend()
    s = model.score(np.array([0, 1]))
    nw, nc = normalise_rows(warm, how), normalise_rows(cold, how)
    np.testing.assert_allclose(s[0, :4], nw[0, :4])
    np.testing.assert_allclose(s[0, 4], nc[0, 4])  # cold item from the cold model
    np.testing.assert_allclose(s[1], nc[1])  # cold user: the whole row
    np.testing.assert_array_equal(model.routes(np.array([0, 1])), [False, True])
    items, _ = model.recommend(np.array([0]), k=2)
    np.testing.assert_array_equal(items[0], [4, 3])  # the cold item outranks the weak warm one


def test_errors(implicit_interactions: Interactions) -> None:
    with pytest.raises(ConfigError):
        Switching(models=["MostPopular"]).fit(implicit_interactions)
    with pytest.raises(ConfigError):
        Switching(models=["MostPopular", "Random"], normalization="minmax").fit(implicit_interactions)
    with pytest.raises(ConfigError):
        Switching(models=["MostPopular", "Random"], min_user_interactions=-1).fit(implicit_interactions)
