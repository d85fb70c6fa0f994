"""GraphEASE: the contract, EASE at zero graph, the closed form against dense algebra, cold items from content."""

from __future__ import annotations

import numpy as np
import pytest

from fusionrec.data import Interactions
from fusionrec.errors import DataError
from fusionrec.models import SideInfo, make_model
from fusionrec.models.graph import knn_graph
from fusionrec.models.graph_ease import GraphEASE, modality_graph
from fusionrec.models.linear import EASE
from fusionrec.models.registry import MODELS, get_model_class, registered_name

from ..conftest import make_interactions
from .contract import RecommenderContract


def _side(n_items: int, seed: int = 0) -> SideInfo:
    rng = np.random.default_rng(seed)
    return SideInfo(
        item_features={
            "audio": rng.normal(size=(n_items, 6)).astype(np.float32),
            "image": rng.random((n_items, 5)).astype(np.float32),
        }
    )


class TestGraphEASE(RecommenderContract):
    implicit = True
    seeded = False

    def make_model(self) -> GraphEASE:
        return GraphEASE(reg=10.0, graph_weight=2.0, propagation=1.0, knn_k=3)

    def make_side(self, train: Interactions) -> SideInfo:
        return _side(train.n_items)


def test_registry_name() -> None:
    assert MODELS["GraphEASE"] == "fusionrec.models.graph_ease:GraphEASE"
    assert get_model_class("GraphEASE") is GraphEASE and registered_name(GraphEASE) == "GraphEASE"
    assert isinstance(make_model("GraphEASE", knn_k=5), GraphEASE)


def test_zero_graph_is_ease() -> None:
    train = make_interactions(seed=3, explicit=False)
    side = _side(train.n_items)
    ours = GraphEASE(reg=15.0, graph_weight=0.0, propagation=0.0, popularity=0.0, dropout=0.0, cold_reg=0.0)
    ours.fit(train, side)
    ease = EASE(reg=15.0).fit(train)
    np.testing.assert_allclose(ours.weights_, ease.weights_, atol=1e-6)
    np.testing.assert_allclose(ours.score(np.arange(5)), ease.score(np.arange(5)), atol=1e-5)


def test_popularity_prior_and_contributions_sum_to_the_score() -> None:
    train = make_interactions(seed=3, explicit=False)
    side = _side(train.n_items)
    model = GraphEASE(reg=10.0, knn_k=3, popularity=0.5).fit(train, side)
    counts = np.asarray((train.matrix > 0).sum(axis=0)).ravel()
    np.testing.assert_allclose(model.item_pop_, counts / counts.max(), atol=1e-6)
    users = np.arange(6)
    without = model.set_params(popularity=0.0).score(users)
    model.set_params(popularity=0.5)
    np.testing.assert_allclose(model.score(users) - without, np.tile(0.5 * model.item_pop_, (6, 1)), atol=1e-5)
    for u, i in ((0, 1), (3, 7)):
        items, shares = model.item_contributions(u, i)
        assert len(items) and shares.sum() == pytest.approx(float(model.score(np.array([u]))[0, i]), abs=1e-4)


def test_closed_form_matches_dense_algebra() -> None:
    """W = B (I + p S) with B EASE's solution of X^T X + w (I + S) + reg I; S the mean of the modality graphs."""
    train = make_interactions(seed=5, explicit=False)
    side = _side(train.n_items, seed=1)
    reg, w, p, k = 7.0, 3.0, 2.0, 4
    model = GraphEASE(reg=reg, graph_weight=w, propagation=p, knn_k=k, dropout=0.0, cold_reg=0.0).fit(train, side)
    S = (knn_graph(side.item_features["audio"], k).toarray() + knn_graph(side.item_features["image"], k).toarray()) / 2
    np.testing.assert_allclose(modality_graph(side.item_features, k).toarray(), S, atol=1e-6)
    X = (train.matrix.toarray() > 0).astype(np.float64)
    n = X.shape[1]
    P = np.linalg.inv(X.T @ X + w * (np.eye(n) + S) + reg * np.eye(n))
    B = -P / np.diag(P)[None, :]
    np.fill_diagonal(B, 0.0)
    np.testing.assert_allclose(model.weights_, B @ (np.eye(n) + p * S), atol=1e-5)
    # the graph changes the model: without it the weights differ (so the test above can fail)
    plain = GraphEASE(reg=reg, graph_weight=0.0, propagation=0.0, knn_k=k, dropout=0.0, cold_reg=0.0).fit(train, side)
    assert np.abs(plain.weights_ - model.weights_).max() > 1e-3


def test_cold_item_is_ranked_by_its_content_neighbours() -> None:
    """An item with no training interaction, whose features copy item 0's, is scored from the graph; EASE gives
    it nothing."""
    train = make_interactions(seed=3, explicit=False)
    m = train.matrix.tolil()
    m[:, 1] = 0  # item 1 is cold
    cold = Interactions(m.tocsr(), user_ids=train.user_ids, item_ids=train.item_ids)
    side = _side(train.n_items)
    for x in side.item_features.values():
        x[1] = x[0]
    model = GraphEASE(reg=10.0, graph_weight=2.0, propagation=1.0, knn_k=3, cold_reg=0.0).fit(cold, side)
    assert np.abs(model.weights_[:, 1]).sum() > 0
    assert np.abs(EASE(reg=10.0).fit(cold).weights_[:, 1]).sum() == 0


def test_add_items_from_content() -> None:
    train = make_interactions(seed=3, explicit=False)
    side = _side(train.n_items)
    model = GraphEASE(reg=10.0, knn_k=1, cold_reg=0.0).fit(train, side)  # the neighbours' path (cold_reg 0)
    copy_of = 4
    new = model.add_items({name: x[[copy_of]] for name, x in side.item_features.items()})
    assert new.tolist() == [train.n_items] and model.weights_.shape == (train.n_items + 1,) * 2
    # k=1: the new item's column is the column of the item whose content it copies (its nearest neighbour)
    np.testing.assert_allclose(model.weights_[:-1, -1], model.weights_[:-1, copy_of], atol=1e-6)
    assert (model.weights_[-1] == 0).all() and model.item_pop_[-1] == 0
    with pytest.raises(DataError, match="fitted modalities"):
        model.add_items({"text": np.ones((1, 3), np.float32)})


def test_needs_item_features() -> None:
    with pytest.raises(DataError, match="pass side="):
        GraphEASE().fit(make_interactions(seed=3, explicit=False))


def test_dropout_is_edlae_closed_form() -> None:
    """dropout p: the diagonal penalty reg + p/(1-p) diag(G) of EDLAE (Steck 2020), diag(B) = 0 kept."""
    train = make_interactions(seed=5, explicit=False)
    side = _side(train.n_items, seed=1)
    reg, w, k, p = 7.0, 3.0, 4, 0.3
    model = GraphEASE(reg=reg, graph_weight=w, propagation=0.0, knn_k=k, dropout=p, cold_reg=0.0).fit(train, side)
    S = modality_graph(side.item_features, k).toarray()
    X = (train.matrix.toarray() > 0).astype(np.float64)
    n = X.shape[1]
    G = X.T @ X + w * (np.eye(n) + S)
    P = np.linalg.inv(G + np.diag(reg + p / (1 - p) * np.diag(G)))
    B = -P / np.diag(P)[None, :]
    np.fill_diagonal(B, 0.0)
    np.testing.assert_allclose(model.weights_, B, atol=1e-5)
    plain = GraphEASE(reg=reg, graph_weight=w, propagation=0.0, knn_k=k, dropout=0.0, cold_reg=0.0).fit(train, side)
    assert np.abs(plain.weights_ - model.weights_).max() > 1e-3


def _with_cold_item(item: int, like: int) -> tuple[Interactions, SideInfo]:
    train = make_interactions(seed=3, explicit=False)
    m = train.matrix.tolil()
    m[:, item] = 0
    side = _side(train.n_items)
    for x in side.item_features.values():
        x[item] = x[like] + 0.1
    return Interactions(m.tocsr(), user_ids=train.user_ids, item_ids=train.item_ids), side


def test_cold_columns_are_the_content_regression_of_warm_columns() -> None:
    from fusionrec.models.krr import content_kernel

    cold, side = _with_cold_item(1, like=0)
    kw = {"reg": 10.0, "graph_weight": 2.0, "propagation": 1.0, "knn_k": 3}
    tie = GraphEASE(**kw, cold_reg=0.0).fit(cold, side)
    model = GraphEASE(**kw, cold_reg=0.5, cold_gamma=3.0, cold_history=2.0).fit(cold, side)
    n = cold.n_items
    warm = np.flatnonzero(np.asarray((cold.matrix > 0).sum(axis=0)).ravel() > 0)
    assert 1 not in warm
    np.testing.assert_allclose(np.delete(model.weights_, 1, axis=1), np.delete(tie.weights_, 1, axis=1))
    F = np.hstack([x / np.linalg.norm(x, axis=1, keepdims=True) for _, x in sorted(side.item_features.items())])
    K = content_kernel(F[warm], F[warm], 3.0) + 0.5 * np.eye(len(warm))
    T = tie.weights_[:, warm].astype(np.float64) + 2.0 * np.eye(n)[:, warm]
    expected = T @ np.linalg.solve(K, content_kernel(F[warm], F[[1]], 3.0))
    np.testing.assert_allclose(model.weights_[:, 1], expected.ravel(), atol=1e-4)
    assert np.abs(model.weights_[:, 1] - tie.weights_[:, 1]).max() > 1e-3
    # a served new item with the same content gets the same column
    new = model.add_items({name: x[[1]] for name, x in side.item_features.items()})
    np.testing.assert_allclose(model.weights_[:n, new[0]], model.weights_[:n, 1], atol=1e-5)
    # an item without content gets nothing
    empty = model.add_items({name: np.zeros((1, x.shape[1]), np.float32) for name, x in side.item_features.items()})
    assert (model.weights_[:, empty[0]] == 0).all()
