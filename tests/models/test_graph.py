"""GraphFusion: the contract, graph normalisation against dense algebra, cold items from content, add_items."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from fusionrec.data import Interactions, Split
from fusionrec.errors import ConfigError, DataError
from fusionrec.models import SideInfo, load_model, make_model
from fusionrec.models.declaration import undeclared_state
from fusionrec.models.graph import GraphFusion, knn_graph, normalized_adjacency, sym_normalize
from fusionrec.models.registry import MODELS, available_models, get_model_class, registered_name

from .contract import RecommenderContract

pytest.importorskip("torch")

NAME, PATH = "GraphFusion", "fusionrec.models.graph:GraphFusion"


def _side(n_items: int, seed: int = 0) -> SideInfo:
    rng = np.random.default_rng(seed)
    return SideInfo(
        item_features={
            "text": rng.normal(size=(n_items, 8)).astype(np.float32),
            "image": rng.random((n_items, 5)).astype(np.float32),
        }
    )


class TestGraphFusion(RecommenderContract):
    implicit = True

    def make_model(self) -> GraphFusion:
        return GraphFusion(n_factors=8, epochs=3, knn_k=3, batch_size=256, edge_dropout=0.1)

    def make_side(self, train: Interactions) -> SideInfo:
        return _side(train.n_items)


def test_registry_name() -> None:
    """The package's own registry names the class (nothing in this module registers it): by name, by class, and
    through make_model."""
    assert NAME in available_models() and MODELS[NAME] == PATH
    assert get_model_class(NAME) is GraphFusion
    assert registered_name(GraphFusion) == NAME
    assert isinstance(make_model(NAME), GraphFusion)


def test_importing_graph_does_not_import_torch() -> None:
    code = "import sys, fusionrec.models.graph; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------------- graph algebra
def test_normalized_adjacency_matches_dense() -> None:
    r = np.array([[1, 0, 3], [0, 0, 0], [2, 1, 0], [0, 0, 5]], dtype=np.float32)  # user 1 has no items
    a_hat = normalized_adjacency(sp.csr_matrix(r)).toarray()
    b = (r > 0).astype(np.float64)
    a = np.block([[np.zeros((4, 4)), b], [b.T, np.zeros((3, 3))]])
    deg = a.sum(1)
    inv = np.where(deg > 0, 1 / np.sqrt(np.where(deg > 0, deg, 1)), 0.0)
    np.testing.assert_allclose(a_hat, inv[:, None] * a * inv[None, :], atol=1e-6)
    np.testing.assert_allclose(a_hat, a_hat.T, atol=1e-7)
    # dropping edges equals normalising the kept graph
    m = sp.csr_matrix(r)
    keep = np.array([True, False, True, True, True])
    kept = m.toarray() * 0
    rows = np.repeat(np.arange(4), np.diff(m.indptr))
    kept[rows[keep], m.indices[keep]] = 1
    np.testing.assert_allclose(
        normalized_adjacency(m, keep).toarray(), normalized_adjacency(sp.csr_matrix(kept)).toarray()
    )
    assert m.nnz == 5 and m.indptr.tolist() == [0, 2, 2, 4, 5]  # input untouched


def test_knn_graph_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 4)).astype(np.float32)
    x[5] = 0.0  # absent item: no edges
    k = 3
    s = knn_graph(x, k, block=5).toarray()
    xn = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    cos = xn @ xn.T
    np.fill_diagonal(cos, -np.inf)
    cos[:, 5] = -np.inf
    kmat = np.zeros((12, 12))
    for i in range(12):
        if i == 5:
            continue
        kmat[i, np.argsort(-cos[i])[:k]] = 1
    kmat = np.maximum(kmat, kmat.T)
    deg = kmat.sum(1)
    inv = np.where(deg > 0, 1 / np.sqrt(np.where(deg > 0, deg, 1)), 0.0)
    np.testing.assert_allclose(s, inv[:, None] * kmat * inv[None, :], atol=1e-6)
    assert (s[5] == 0).all() and (s[:, 5] == 0).all()
    np.testing.assert_allclose(sym_normalize(sp.csr_matrix(kmat)).toarray(), s, atol=1e-6)


# ---------------------------------------------------------------------- planted signal
@pytest.fixture(scope="module")
def planted() -> tuple[object, SideInfo]:
    from fusionrec.data.datasets.synthetic import make_synthetic
    from fusionrec.features.pipeline import build_side_info

    ds = make_synthetic(n_users=120, n_items=80, with_audio=False, with_images=False, with_social=False)
    side, _ = build_side_info(ds, cache=False)
    return ds, side


def _ndcg(model: object, split: Split, candidates: np.ndarray | None = None) -> float:
    from fusionrec.evaluation.protocol import evaluate_ranking

    return evaluate_ranking(model, split.train, split.test, k=20, candidates=candidates).metrics["NDCG@20"]  # type: ignore[arg-type]


def test_warm_beats_random_and_weights_are_a_softmax(planted: tuple[object, SideInfo]) -> None:
    from fusionrec.data.splits import per_user_split
    from fusionrec.models.baselines import Random

    s = per_user_split(planted[0], (0.8, 0.1, 0.1), seed=0)  # type: ignore[arg-type]
    split = Split(train=s.train.binarize(), test=s.test)
    model = GraphFusion(n_factors=16, epochs=15, batch_size=256).fit(split.train, planted[1])
    assert _ndcg(model, split) > _ndcg(Random(seed=0).fit(split.train), split) + 0.05
    w = model.modality_weights_
    assert w.shape == (len(model.modalities_),) and abs(w.sum() - 1) < 1e-5 and (w > 0).all()
    fixed = GraphFusion(n_factors=8, epochs=2, learn_weights=False).fit(split.train, planted[1])
    np.testing.assert_allclose(fixed.modality_weights_, 1 / len(fixed.modalities_), rtol=1e-6)


def test_cold_items_scored_from_content_neighbours(planted: tuple[object, SideInfo]) -> None:
    from fusionrec.data.splits import cold_items_split
    from fusionrec.models.baselines import Random

    ds, side = planted
    s = cold_items_split(ds, test=0.25, valid=0.0, seed=1)  # type: ignore[arg-type]
    split = Split(train=s.train.binarize(), test=s.test)
    cold = s.meta["test_items"]
    model = GraphFusion(modalities=["genres", "text"], n_factors=16, epochs=15, batch_size=256).fit(split.train, side)
    scores = model.score(np.arange(20), cold)
    assert np.isfinite(scores).all() and (scores.std(axis=1) > 1e-6).all()
    assert _ndcg(model, split, cold) > _ndcg(Random(seed=0).fit(split.train), split, cold) + 0.05
    lightgcn = GraphFusion(modalities=[], n_factors=8, epochs=2).fit(split.train, side)
    np.testing.assert_allclose(lightgcn.score(np.arange(5), cold), 0.0, atol=1e-7)  # no content: nothing to go on


def test_add_items_and_missing_rows() -> None:
    from tests.conftest import make_interactions

    train = make_interactions(seed=5, explicit=False)
    side = _side(train.n_items)
    side.item_features["image"][:4] = 0.0
    side.item_present["image"] = np.arange(train.n_items) >= 4
    model = GraphFusion(n_factors=8, epochs=3, knn_k=4).fit(train, side)
    assert np.isfinite(model.score(np.arange(train.n_users))).all()
    old = model.score(np.arange(3))
    new = model.add_items({"text": side.item_features["text"][:2] + 0.01})
    assert new.tolist() == [train.n_items, train.n_items + 1] and model.n_items_ == train.n_items + 2
    s = model.score(np.arange(3))
    np.testing.assert_allclose(s[:, : train.n_items], old)
    assert np.isfinite(s).all() and np.abs(s[:, new]).sum() > 0
    with pytest.raises(DataError):
        model.add_items({"audio": np.ones((1, 3), dtype=np.float32)})


def test_bad_parameters_raise() -> None:
    from tests.conftest import make_interactions

    train = make_interactions(seed=1, explicit=False)
    side = _side(train.n_items)
    for bad in ({"n_factors": 0}, {"layers": -1}, {"edge_dropout": 1.0}, {"lr": 0.0}):
        with pytest.raises(ConfigError):
            GraphFusion(**bad).fit(train, side)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="audio"):
        GraphFusion(modalities=["audio"]).fit(train, side)


# ---------------------------------------------------------------------- declaration and forgetting
def _odd() -> tuple[Interactions, SideInfo]:
    """61 users x 42 items: sizes unlike n_factors 6, knn_k 3 and the feature widths 5 and 8 (undeclared_state is
    exact)."""
    from tests.conftest import make_interactions

    train = make_interactions(n_users=61, n_items=43, explicit=False, seed=6)
    return train, _side(train.n_items)


def test_every_per_user_and_per_item_array_is_declared() -> None:
    train, side = _odd()
    model = GraphFusion(n_factors=6, epochs=2, knn_k=3).fit(train, side)
    assert undeclared_state(model) == []
    decl = GraphFusion.declaration()
    assert set(decl.user_state) >= {"user_factors_", "seen_"}
    assert set(decl.item_state) >= {"item_factors_", "item_ego_", "item_features_", "warm_"}
    assert decl.modality_param == "modalities" and decl.fit_inputs == {"side"}
    assert decl.can_fold_in and decl.can_add_items and decl.has_factors and not decl.can_batch_fold_in
    model.add_items({"text": np.ones((2, 8), np.float32)})
    model.fold_in_user([1, 2, 3])
    assert undeclared_state(model) == [] and model.item_features_.shape == (train.n_items + 2, 13)


def _rows_holding(path: Path, vector: np.ndarray) -> list[str]:
    """The saved arrays that hold ``vector`` as a row."""
    with np.load(path / "arrays.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return [k for k, a in arrays.items() if a.ndim == 2 and a.shape[1] == vector.size and (a == vector).all(1).any()]


def test_forget_user_leaves_no_vector_in_the_saved_files(tmp_path: Path) -> None:
    train, side = _odd()
    model = GraphFusion(n_factors=6, epochs=2, knn_k=3).fit(train, side)
    u = 9
    vector = model.user_factors_[u].copy()
    others = np.setdiff1d(np.arange(train.n_users), [u])
    before = model.score(others)
    model.save(tmp_path / "kept")
    assert _rows_holding(tmp_path / "kept", vector) == ["user_factors_"]  # the search finds it before forgetting
    model.forget_user(u)
    model.save(tmp_path / "m")
    assert _rows_holding(tmp_path / "m", vector) == []
    np.testing.assert_array_equal(load_model(tmp_path / "m").score(others), before)


def test_bundles_from_before_the_declaration_load() -> None:
    """Bundles kept ``warm_items_`` (indices) and one ``features_<m>_`` per modality; they load into ``warm_`` and
    ``item_features_`` and score, fold in and add items as the model that wrote them."""
    train, side = _odd()
    model = GraphFusion(n_factors=6, epochs=2, knn_k=3).fit(train, side)
    model.warm_[[0, 5]] = False  # as if two items had no training interaction
    state = model._get_state()
    dims = model.feature_dims_.tolist()
    old = {k: v for k, v in state.items() if k not in ("warm_", "item_features_", "feature_dims_")}
    old["warm_items_"] = np.flatnonzero(model.warm_)
    old["features_0_"], old["features_1_"] = model.item_features_[:, : dims[0]], model.item_features_[:, dims[0] :]
    again = GraphFusion(n_factors=6, epochs=2, knn_k=3)
    again._set_state(old)
    np.testing.assert_array_equal(again.warm_, model.warm_)
    np.testing.assert_array_equal(again.item_features_, model.item_features_)
    np.testing.assert_array_equal(again.feature_dims_, model.feature_dims_)
    np.testing.assert_array_equal(again.score(again.fold_in_user([1, 2])), model.score(model.fold_in_user([1, 2])))
    new = {"image": np.ones((1, 5), np.float32)}
    again.add_items(new)
    model.add_items(new)
    np.testing.assert_array_equal(again.score(np.arange(3)), model.score(np.arange(3)))
