"""ContentKRR (fusionrec.models.krr): the closed form, cold items ranked by content, add_items, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fusionrec.data import Interactions
from fusionrec.data.idmap import IdMap
from fusionrec.data.side import fuse_modalities
from fusionrec.errors import ConfigError, DataError
from fusionrec.models import ItemColdStart, SideInfo, load_model, make_model
from fusionrec.models.krr import ContentKRR, content_kernel
from fusionrec.models.linear import EASE

from ..conftest import make_interactions
from .contract import RecommenderContract
from .test_linear import _genre_side as _side


class TestContentKRR(RecommenderContract):
    seeded = False
    implicit = True

    def make_model(self) -> ContentKRR:
        return ContentKRR(gamma=2.0, reg=0.5, ease_weight=1.0, ease_reg=20.0)

    def make_side(self, train: Interactions) -> SideInfo | None:
        return _side(train.n_items)


class TestContentKRRHistoryOnly(TestContentKRR):
    def make_model(self) -> ContentKRR:
        return ContentKRR(gamma=1.0, reg=1.0, ease_weight=0.0, binarize=False)


def _genre_world(n_users: int = 60, n_items: int = 36, warm: int = 30) -> tuple[Interactions, SideInfo]:
    """Users like genre u % 3; items warm..n_items-1 have no interactions."""
    rng = np.random.default_rng(0)
    users, items = [], []
    for u in range(n_users):
        liked = [i for i in range(warm) if i % 3 == u % 3]
        for i in rng.choice(liked, 5, replace=False):
            users.append(u)
            items.append(int(i))
    train = Interactions.from_arrays(
        np.array(users), np.array(items), None, user_ids=IdMap(range(n_users)), item_ids=IdMap(range(n_items))
    )
    genre = np.eye(3, dtype=np.float32)[np.arange(n_items) % 3] + 0.1 * rng.random((n_items, 3)).astype(np.float32)
    return train, SideInfo(item_features={"genre": genre})


def test_closed_form_is_kernel_ridge_on_ease_targets() -> None:
    train = make_interactions(seed=3, explicit=False)
    side = _side(train.n_items)
    gamma, reg, c, ease_reg = 1.5, 0.7, 2.0, 15.0
    model = ContentKRR(gamma=gamma, reg=reg, ease_weight=c, ease_reg=ease_reg, modality_weights={"genre": 2.0})
    model.fit(train, side)
    X = (train.matrix.toarray() > 0).astype(np.float64)
    warm = np.flatnonzero(X.sum(0) > 0)
    B = EASE(reg=ease_reg).fit(train).weights_.astype(np.float64)
    T = X @ (np.eye(train.n_items) + c * B)  # per-user targets, used on the warm items only
    F = fuse_modalities(side.item_features, ["genre", "text"], modality_weights={"genre": 2.0})[0]
    Fn = F / np.linalg.norm(F, axis=1, keepdims=True)
    K = np.exp(gamma * (Fn @ Fn.T - 1.0))
    alpha = np.linalg.solve(K[np.ix_(warm, warm)] + reg * np.eye(len(warm)), T[:, warm].T)  # dual coefficients
    expected = (K[:, warm] @ alpha).T
    np.testing.assert_allclose(model.score(np.arange(train.n_users)), expected, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(content_kernel(F[:3], F[:3], gamma), K[:3, :3], atol=1e-6)


def test_cold_items_are_ranked_by_content() -> None:
    train, side = _genre_world()
    cold = np.arange(30, 36)
    model = ContentKRR(gamma=2.0, reg=1.0, ease_weight=1.0, ease_reg=5.0).fit(train, side)
    top, _ = model.recommend(np.arange(60), k=2, candidates=cold)
    assert ((top % 3) == (np.arange(60) % 3)[:, None]).mean() >= 0.95
    assert not EASE(reg=5.0).fit(train).score(np.arange(60), cold).any()  # EASE: no signal at all


def test_add_items_matches_a_fit_that_knew_the_cold_item() -> None:
    train, side = _genre_world()
    n = train.n_items
    known = ContentKRR(gamma=2.0, reg=1.0).fit(train, side)
    # the same interactions without the last (cold) item, then the item added from its content
    sub = Interactions(train.matrix[:, : n - 1], train.user_ids, IdMap(range(n - 1)))
    feats = side.item_features["genre"]
    model = ContentKRR(gamma=2.0, reg=1.0).fit(sub, SideInfo(item_features={"genre": feats[: n - 1]}))
    assert isinstance(model, ItemColdStart)
    new = model.add_items({"genre": feats[n - 1 :]})
    assert new.tolist() == [n - 1] and model.n_items_ == n and model.seen_.shape == (60, n)
    np.testing.assert_allclose(model.score(np.arange(60)), known.score(np.arange(60)), rtol=1e-4, atol=1e-5)
    with pytest.raises(DataError, match="not fitted with"):
        model.add_items({"poster": feats[:1]})
    with pytest.raises(DataError, match=r"must be \[1, 3\]"):
        model.add_items({"genre": np.ones((1, 5), np.float32)})


def test_add_items_survive_save_and_load(tmp_path: Path) -> None:
    train, side = _genre_world()
    model = ContentKRR().fit(train, side)
    model.add_items({"genre": np.eye(3, dtype=np.float32)})
    loaded = load_model(model.save(tmp_path / "krr"))
    np.testing.assert_allclose(loaded.score(np.arange(5)), model.score(np.arange(5)), rtol=1e-6)
    assert loaded.n_items_ == train.n_items + 3


def test_errors() -> None:
    train = make_interactions(seed=4, explicit=False)
    with pytest.raises(ConfigError, match="item features"):
        ContentKRR().fit(train)
    with pytest.raises(ConfigError, match="gamma"):
        make_model("ContentKRR", gamma=0.0)
    with pytest.raises(ConfigError, match="ease_weight"):
        ContentKRR(ease_weight=-1.0).fit(train, _side(train.n_items))
    with pytest.raises(DataError, match="rows"):
        ContentKRR().fit(train, _side(train.n_items + 1))
    with pytest.raises(ConfigError, match="max_memory_gb"):
        ContentKRR(max_memory_gb=1e-9).fit(train, _side(train.n_items))


def test_item_contributions_sum_to_the_score() -> None:
    train = make_interactions(seed=5, explicit=False)
    model = ContentKRR(gamma=2.0).fit(train, _side(train.n_items))
    items, contrib = model.item_contributions(4, 9)
    assert set(items.tolist()) == set(train.matrix[4].indices.tolist())
    np.testing.assert_allclose(contrib.sum(), model.score(np.array([4]), np.array([9]))[0, 0], rtol=1e-5, atol=1e-6)
