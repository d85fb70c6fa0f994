from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from fusionrec.data import Interactions
from fusionrec.models import BiasBaseline, MostPopular
from fusionrec.serving import load_bundle, save_bundle
from fusionrec.serving.online import OnlineModel, ServingEngine, factor_view, fold_in_ridge
from fusionrec.serving.store import Event, SQLiteStore
from tests.conftest import make_interactions
from tests.serving._models import TinyMF


def test_factor_view_is_checked_against_scores(implicit_train: Interactions) -> None:
    tiny = TinyMF(factors=4).fit(implicit_train)
    view = factor_view(tiny)
    assert view is not None and view.n_factors == 4 and view.item_bias_col == -1
    explicit = make_interactions(n_users=30, n_items=20, seed=2)
    bias = BiasBaseline().fit(explicit)
    bview = factor_view(bias)
    assert bview is not None and bview.n_factors == 0
    np.testing.assert_allclose(bview.user_vecs[:3] @ bview.item_vecs.T, bias.score([0, 1, 2]), atol=1e-4)
    assert factor_view(MostPopular().fit(implicit_train)) is None


def test_explicit_fold_in_recovers_a_planted_user() -> None:
    rng = np.random.default_rng(0)
    q = rng.normal(size=(40, 3)).astype(np.float32)
    from fusionrec.serving.online import FactorView

    view = FactorView(
        np.zeros((1, 5), np.float32),
        np.hstack([q, rng.normal(size=(40, 1)), np.ones((40, 1))]).astype(np.float32),
        3,
        3,
        4,
        3.0,
    )
    true = np.array([0.5, -1.0, 2.0, 1.0, 3.0 + 0.25], np.float32)  # factors, 1, b_u + mu
    items = np.arange(25)
    ratings = view.item_vecs[items] @ true
    vec = fold_in_ridge(view, items, ratings, explicit=True, reg=1e-6)
    np.testing.assert_allclose(vec, true, atol=1e-3)


def test_events_fold_in_within_a_second_and_new_users(tiny_bundle: Path) -> None:
    state = OnlineModel(load_bundle(tiny_bundle))
    before = state.scores(0).copy()
    start = time.perf_counter()
    state.apply_events([Event("u0", "i5", 1.0, 1, 1), Event("fresh", "i1", 1.0, 1, 2), Event("fresh", "i2", 1.0, 1, 3)])
    assert time.perf_counter() - start < 1.0
    assert not np.allclose(before, state.scores(0))
    f = state.require_user("fresh")
    assert f == state.n_base_users and state.has_vector(f)
    items, _ = state.recommend("fresh", 5)
    assert not set(items.tolist()) & {state.item_index("i1"), state.item_index("i2")}
    assert state.applied_seq == 3


def test_new_item_by_features_sits_next_to_its_neighbours(tiny_bundle: Path) -> None:
    state = OnlineModel(load_bundle(tiny_bundle))
    feats = state.bundle.item_features
    assert feats is not None
    i = state.add_item("clone-of-3", {"title": "Clone"}, feats[3].tolist())
    assert i == state.n_base_items and state.item_meta["title"][i] == "Clone"
    sims = state.item_similarity(i)
    assert np.argsort(-sims)[0] in (i, 3)
    # recommendable at once: with the item as the only candidate it comes back
    items, _ = state.recommend("u0", 3, candidates=["clone-of-3"])
    assert items.tolist() == [i]


def test_non_factor_model_new_items_and_users(pop_bundle: Path) -> None:
    state = OnlineModel(load_bundle(pop_bundle))
    assert state.view is None and state.index is None
    i = state.add_item("t", {"title": "Movie i3 the funny one"}, text="Movie the funny one")
    assert np.isfinite(state.scores(0)[i])
    state.apply_events([Event("x", "i3", 1.0, 1, 1)])
    items, _ = state.recommend("x", 50)
    assert state.item_index("i3") not in items.tolist()
    state.add_user("p", {"genres": ["Horror"]})
    top, _ = state.recommend("p", 3)
    assert all("Horror" in state.item_meta["genres"][j] for j in top.tolist())


def test_engine_retrain_swaps_and_keeps_new_events(tiny_bundle: Path, tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "e.db")
    engine = ServingEngine(tiny_bundle, store)
    engine.post_events([Event("newbie", "i1"), Event("newbie", "i4"), Event("u0", "i7")])
    engine.post_item("extra", {"title": "Extra"}, None, "funny")
    old = engine.state
    assert engine.retrain(wait=True)
    assert engine.state is not old and engine.retrain_status["last_error"] is None
    fresh = load_bundle(tiny_bundle)
    assert fresh.store_seq == 3 and "newbie" in fresh.user_ids
    assert engine.state.item_index("extra") is not None  # no events: replayed as a content item
    engine.post_events([Event("newbie", "i2")])
    assert engine.state.applied_seq == 4
    engine.close()
    # a restart replays what the bundle does not hold
    again = ServingEngine(tiny_bundle, SQLiteStore(tmp_path / "e.db"))
    st = again.state
    assert st.applied_seq == 4 and st.item_index("i2") in st.history_arrays(st.require_user("newbie"))[0].tolist()
    again.close()


def test_sync_picks_up_other_writers(tiny_bundle: Path, tmp_path: Path) -> None:
    a = ServingEngine(tiny_bundle, SQLiteStore(tmp_path / "s.db"))
    b = ServingEngine(tiny_bundle, SQLiteStore(tmp_path / "s.db"))
    a.post_events([Event("shared", "i3")])
    assert b.state.user_index("shared") is None
    b.sync()
    assert b.state.user_index("shared") is not None
    a.close()
    b.close()


def test_bias_model_fold_in_for_explicit(tmp_path: Path) -> None:
    tr = make_interactions(n_users=30, n_items=20, seed=2)
    path = save_bundle(tmp_path / "bias", BiasBaseline().fit(tr), tr)
    state = OnlineModel(load_bundle(path))
    state.apply_events([Event("critic", "i1", 1.0, 1, 1), Event("critic", "i2", 1.0, 1, 2)])
    u = state.require_user("critic")
    assert state.scores(u).mean() < state.scores(0).mean()  # a harsh rater gets a negative bias
