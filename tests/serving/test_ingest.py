"""Bulk ingestion (issue 11): new users are placed in batches on a copy of the model, reads never wait for it,
and the result equals one fold-in per user."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fusionrec.data import Interactions
from fusionrec.serving.store import Event, open_store


@pytest.fixture
def als_engine(tmp_path: Path, implicit_train: Interactions) -> Any:
    from fusionrec.models.mf.als import ALS
    from fusionrec.serving import save_bundle
    from fusionrec.serving.engine import ServingEngine

    bundle = save_bundle(tmp_path / "als", ALS(n_factors=8, epochs=3).fit(implicit_train), implicit_train)
    eng = ServingEngine(bundle, open_store(f"sqlite:///{tmp_path}/e.db"))
    yield eng
    eng.close()


def _events(n_users: int, items: list[Any], per_user: int = 3) -> list[Event]:
    return [
        Event(f"new{u}", str(items[(u * 7 + j) % len(items)]), 1.0 + j, 1)
        for u in range(n_users)
        for j in range(per_user)
    ]


def test_als_fold_in_users_equals_one_fold_in_per_user(implicit_train: Interactions) -> None:
    from fusionrec.models.mf.als import ALS

    a = ALS(n_factors=8, epochs=3).fit(implicit_train)
    b = a.clone().fit(implicit_train)
    rng = np.random.default_rng(0)
    hist = [(rng.choice(40, size=5, replace=False), rng.uniform(1, 3, 5)) for _ in range(7)]
    idx = a.fold_in_users(hist)
    one = [int(b.fold_in_user(i, v)[0]) for i, v in hist]
    assert idx.tolist() == one == list(range(50, 57))
    np.testing.assert_allclose(a.user_factors_, b.user_factors_, rtol=1e-5, atol=1e-6)
    assert (a.seen_ != b.seen_).nnz == 0 and a.n_users_ == b.n_users_ == 57
    np.testing.assert_allclose(a.score(np.arange(50, 57)), b.score(np.arange(50, 57)), rtol=1e-4, atol=1e-5)


def test_bulk_new_users_are_placed_in_batches(als_engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    model_cls = type(als_engine.state.model)
    calls = {"batch": 0, "single": 0}
    batch, single = model_cls.fold_in_users, model_cls.fold_in_user

    def count_batch(self: Any, *a: Any, **k: Any) -> Any:
        calls["batch"] += 1
        return batch(self, *a, **k)

    def count_single(self: Any, *a: Any, **k: Any) -> Any:
        calls["single"] += 1
        return single(self, *a, **k)

    monkeypatch.setattr(model_cls, "fold_in_users", count_batch)
    monkeypatch.setattr(model_cls, "fold_in_user", count_single)
    state = als_engine.state
    als_engine.post_events(_events(300, state.item_raw))
    from fusionrec.serving.engine import FOLD_CHUNK

    assert calls == {"batch": -(-300 // FOLD_CHUNK), "single": 0}  # a call per chunk, never one per user
    assert state.n_users == 350 and state.model.n_users_ == 350
    # every new user scores like a one-by-one fold-in of its history
    u = state.user_index("new5")
    items, values = state.history_arrays(u)
    ref = state.model.clone().fit(state.train_interactions())
    ref_model = single(ref, items, values)
    assert int(ref_model[0]) == 50
    np.testing.assert_allclose(
        state.model.score(np.array([state.model_rows[u]])), ref.score(np.array([50])), rtol=1e-4, atol=1e-5
    )
    # an existing user's events re-place it, without touching arrays readers hold
    before = state.model.user_factors_
    snapshot = before.copy()
    als_engine.post_events([Event("u1", str(state.item_raw[3]), 5.0, 1)])
    np.testing.assert_array_equal(before, snapshot)
    assert calls["single"] == 1 and not np.array_equal(state.model.user_factors_[1], snapshot[1])


def test_reads_do_not_wait_for_a_bulk_fold_in(als_engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    model_cls = type(als_engine.state.model)
    real = model_cls.fold_in_users
    inside = threading.Event()

    def slow(self: Any, *a: Any, **k: Any) -> Any:
        inside.set()
        time.sleep(1.0)
        return real(self, *a, **k)

    monkeypatch.setattr(model_cls, "fold_in_users", slow)
    state = als_engine.state
    writer = threading.Thread(target=als_engine.post_events, args=(_events(50, state.item_raw),))
    writer.start()
    assert inside.wait(10)
    t0 = time.perf_counter()
    idx, _ = state.recommend("u1", 5)
    waited = time.perf_counter() - t0
    writer.join()
    assert len(idx) == 5 and waited < 0.5
    assert state.model_row(state.user_index("new3")) is not None
