"""The serving engine over the model contract: fold-in per user, new items, top-k through model.recommend."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from fusionrec.data import Interactions
from fusionrec.models import BiasBaseline
from fusionrec.serving import load_bundle, save_bundle
from fusionrec.serving.engine import OnlineModel, ServingEngine
from fusionrec.serving.store import Event, SQLiteStore
from tests.conftest import make_interactions


def test_events_fold_in_within_a_second_and_new_users(tiny_bundle: Path) -> None:
    state = OnlineModel(load_bundle(tiny_bundle))
    before = state.scores(0).copy()
    start = time.perf_counter()
    state.apply_events([Event("u0", "i5", 1.0, 1, 1), Event("fresh", "i1", 1.0, 1, 2), Event("fresh", "i2", 1.0, 1, 3)])
    assert time.perf_counter() - start < 1.0
    assert not np.allclose(before, state.scores(0))
    f = state.require_user("fresh")
    assert f == state.n_base_users and state.has_vector(f) and state.model_row(f) == state.n_base_users
    items, _ = state.recommend("fresh", 5)
    assert not set(items.tolist()) & {state.item_index("i1"), state.item_index("i2")}
    assert state.applied_seq == 3


def test_one_fold_in_per_touched_user(tiny_bundle: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    state = OnlineModel(load_bundle(tiny_bundle))
    calls: list[int | None] = []
    original = state.model.fold_in_user  # type: ignore[attr-defined]

    def spy(items, values=None, *, user_features=None, user=None):  # type: ignore[no-untyped-def]
        calls.append(user)
        return original(items, values, user_features=user_features, user=user)

    monkeypatch.setattr(state.model, "fold_in_user", spy)
    state.apply_events([Event("u0", f"i{j}", 1.0, 1, j + 1) for j in range(5)] + [Event("new", "i1", 1.0, 1, 9)])
    assert calls == [0, None]


def test_recommend_equals_model_recommend_including_short_lists(tiny_bundle: Path) -> None:
    state = OnlineModel(load_bundle(tiny_bundle))
    model = load_bundle(tiny_bundle).model
    for u in (0, 7):
        for k in (5, state.n_items):  # k = all items: the list is shorter (seen items are left out)
            idx, val = state.recommend(state.user_raw[u], k)
            ref_idx, ref_val = model.recommend(u, k)
            keep = ref_idx[0] >= 0
            np.testing.assert_array_equal(idx, ref_idx[0][keep])
            np.testing.assert_allclose(val, ref_val[0][keep], rtol=1e-6)
        assert len(state.recommend(state.user_raw[u], state.n_items)[0]) == state.n_items - model.seen_[u].nnz


def test_new_item_by_features_sits_next_to_its_neighbours(tiny_bundle: Path) -> None:
    state = OnlineModel(load_bundle(tiny_bundle))
    feats = state.bundle.item_features
    assert feats is not None
    i = state.add_item("clone-of-3", {"title": "Clone"}, feats[3].tolist())
    assert i == state.n_base_items == state.model.n_items_ - 1 and state.item_meta["title"][i] == "Clone"
    # placed at the similarity-weighted mean vector of its 10 nearest items by content (item 3 first)
    norm = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    cos = norm @ norm[3]
    nbrs = np.argsort(-cos, kind="stable")[:10]
    nbrs = nbrs[cos[nbrs] > 0]
    assert nbrs[0] == 3
    item = state.model.factors().item
    expected = cos[nbrs] @ item[nbrs] / cos[nbrs].sum()
    np.testing.assert_allclose(item[i], expected, rtol=1e-4, atol=1e-5)
    assert state.side is not None and state.side.n_items == state.n_items  # content kept for a retrain
    items, _ = state.recommend("u0", 3, candidates=["clone-of-3"])
    assert items.tolist() == [i]


def test_non_factor_model_new_items_and_users(pop_bundle: Path) -> None:
    state = OnlineModel(load_bundle(pop_bundle))
    assert not state.is_factor and state.index is None and state.index_kind == "model-scores"
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
    assert fresh.side is not None and fresh.item_features is not None  # the side information is kept
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


def test_the_bundle_on_disk_is_never_mutated(tiny_bundle: Path, implicit_train: Interactions) -> None:
    before = {p.name: p.read_bytes() for p in tiny_bundle.rglob("*") if p.is_file()}
    state = OnlineModel(load_bundle(tiny_bundle))
    state.apply_events([Event("z", "i1", 1.0, 1, 1)])
    state.add_item("zz", {"title": "z"}, [0.5] * 5)
    after = {p.name: p.read_bytes() for p in tiny_bundle.rglob("*") if p.is_file()}
    assert before == after and load_bundle(tiny_bundle).model.n_items_ == implicit_train.n_items


def test_ann_index_over_augmented_factors(tiny_bundle: Path) -> None:
    import pytest

    pytest.importorskip("faiss")
    exact = OnlineModel(load_bundle(tiny_bundle))
    ann = OnlineModel(load_bundle(tiny_bundle), index="ann")
    assert ann.index is not None and ann.index_kind != "exact" and exact.index_kind == "exact"
    hits = [
        len(set(ann.recommend(f"u{u}", 5)[0].tolist()) & set(exact.recommend(f"u{u}", 5)[0].tolist()))
        for u in range(20)
    ]
    assert sum(hits) >= 0.9 * 5 * 20
    feats = ann.bundle.item_features
    assert feats is not None
    i = ann.add_item("n", {}, feats[0].tolist())
    assert len(ann.index) == ann.n_items and i == ann.n_items - 1
    ann.apply_events([Event("fresh", "i1", 1.0, 1, 1)])  # a folded-in user is searched with its new vector
    assert len(ann.recommend("fresh", 5)[0]) == 5


def test_new_item_of_a_non_factor_model_scores_as_its_neighbours_weighted_mean(
    tmp_path: Path, implicit_train: Interactions
) -> None:
    """A model that can neither add items nor place item vectors (ItemKNN) scores a new item, for each user, as the
    similarity-weighted mean of the scores of its 10 nearest items by content, not as the user's mean score."""
    from fusionrec.models import make_model

    rng = np.random.default_rng(1)
    feats = rng.normal(size=(implicit_train.n_items, 5)).astype(np.float32)
    path = save_bundle(tmp_path / "knn", make_model("ItemKNN").fit(implicit_train), implicit_train, item_features=feats)
    state = OnlineModel(load_bundle(path))
    assert state.placement_kind == "proxy"
    new = feats[3] + 0.3 * feats[8]
    i = state.add_item("near-3-and-8", {"title": "Near"}, new.tolist())
    norm = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    cos = norm @ (new / np.linalg.norm(new))
    nbrs = np.argsort(-cos, kind="stable")[:10]
    nbrs = nbrs[cos[nbrs] > 0]
    for u in range(10):
        base = state.model.score(np.array([u]))[0]
        expected = cos[nbrs] @ base[nbrs] / cos[nbrs].sum()
        assert abs(expected - base.mean()) > 1e-3  # the two rules give different scores for these users
        np.testing.assert_allclose(state.scores(u)[i], expected, rtol=1e-4, atol=1e-6)
    # and it is ranked by that score: as a candidate next to its own neighbours
    u = 0
    top, _ = state.recommend(state.user_raw[u], 3, exclude_seen=False, candidates=["near-3-and-8", "i3", "i8"])
    full = state.scores(u)
    assert top.tolist() == sorted([i, state.item_index("i3"), state.item_index("i8")], key=lambda j: (-full[j], j))
