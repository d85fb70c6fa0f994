"""ContentKNN: the model contract, cold items, modality fusion and add_items."""

from __future__ import annotations

import numpy as np
import pytest

from fusionrec.data import IdMap, Interactions
from fusionrec.data.side import fuse_modalities
from fusionrec.errors import ConfigError, DataError
from fusionrec.models import SideInfo, make_model
from fusionrec.models.content import ContentKNN

from .contract import RecommenderContract


def _side(n_items: int, seed: int = 0) -> SideInfo:
    rng = np.random.default_rng(seed)
    return SideInfo(
        item_features={
            "text": rng.normal(size=(n_items, 8)).astype(np.float32),
            "image": rng.random((n_items, 5)).astype(np.float32) * 100,
        }
    )


class TestContentKNN(RecommenderContract):
    seeded = False

    def make_model(self) -> ContentKNN:
        return ContentKNN(modality_weights={"text": 1.0, "image": 0.5})

    def make_side(self, train: Interactions) -> SideInfo:
        return _side(train.n_items)


def test_registry_name() -> None:
    assert isinstance(make_model("ContentKNN"), ContentKNN)


def test_fusion_is_weighted_sum_of_cosines() -> None:
    side = _side(10)
    w = {"text": 2.0, "image": 0.5}
    fused = fuse_modalities(side.item_features, ["text", "image"], modality_weights=w)[0]
    cos = {}
    for name, x in side.item_features.items():
        xn = x / np.linalg.norm(x, axis=1, keepdims=True)
        cos[name] = xn @ xn.T
    np.testing.assert_allclose(fused @ fused.T, 2.0 * cos["text"] + 0.5 * cos["image"], atol=1e-5)


def _cold_setup() -> tuple[Interactions, SideInfo]:
    # items 0-3 are "genre A", 4-7 "genre B"; items 3 and 7 have no interactions (cold)
    feats = np.zeros((8, 2), dtype=np.float32)
    feats[:4, 0] = 1.0
    feats[4:, 1] = 1.0
    feats += np.random.default_rng(0).normal(scale=0.05, size=feats.shape).astype(np.float32)
    users = ["u0", "u0", "u1", "u1", "u2"]
    items = [0, 1, 4, 5, 2]
    train = Interactions.from_arrays(users, items, [5, 4, 5, 5, 1], item_ids=IdMap(range(8)))
    return train, SideInfo(item_features={"genre": feats})


def test_recommends_cold_items_by_content() -> None:
    train, side = _cold_setup()
    model = ContentKNN().fit(train, side)
    assert train.item_counts()[[3, 7]].tolist() == [0, 0]
    items, _ = model.recommend(np.array([0, 1]), k=2, candidates=np.array([3, 7]))
    assert items[:, 0].tolist() == [3, 7]
    # centered weighting: u0 likes A; u2 rated one A item low (a single rating -> uniform weight)
    centered = ContentKNN(weighting="centered").fit(train, side)
    assert np.isfinite(centered.score(np.arange(3))).all()


def test_add_items_and_similar_items() -> None:
    train, side = _cold_setup()
    model = ContentKNN().fit(train, side)
    new = model.add_items({"genre": np.array([[0.0, 1.0], [1.0, 0.0]], dtype=np.float32)})
    assert new.tolist() == [8, 9] and model.n_items_ == 10
    items, _ = model.recommend(np.array([1]), k=1, candidates=new)
    assert items[0, 0] == 8  # u1 likes B
    sims, _ = model.similar_items(np.array([9]), k=3)
    assert set(sims[0].tolist()) <= {0, 1, 2, 3}
    with pytest.raises(DataError):
        model.add_items(np.zeros((1, 5), dtype=np.float32))
    with pytest.raises(DataError):
        model.add_items({"other": np.zeros((1, 2))})
    prof = model.user_profile(np.eye(1, 10, 0, dtype=np.float32))
    assert prof.shape == (2,) and prof[0] > prof[1]


def test_errors() -> None:
    train, side = _cold_setup()
    with pytest.raises(ConfigError, match="item features"):
        ContentKNN().fit(train)
    with pytest.raises(ConfigError):
        ContentKNN(weighting="bogus").fit(train, side)
    with pytest.raises(DataError):
        ContentKNN(modalities=["missing"]).fit(train, side)
    with pytest.raises(DataError):
        ContentKNN().fit(train, SideInfo(item_features={"g": np.ones((3, 2), dtype=np.float32)}))


def test_a_min_rating_above_every_value_is_refused() -> None:
    from ..conftest import make_interactions

    train = make_interactions(seed=3, explicit=False)
    with pytest.raises(DataError, match="min_rating"):
        ContentKNN(min_rating=5.0).fit(train, _side(train.n_items))
