"""Forgetting a user (issue 13): ``DELETE /users/{user}``, ``fusionrec forget`` and ``EventStore.delete_user``.

After deletion no response reveals the user, the deletion survives a restart and reaches other workers, the next
retrain equals a fit on the data without the user, user reads need the key, and logs carry no profile values.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from fusionrec.data import Interactions
from fusionrec.data.idmap import IdMap
from fusionrec.errors import ConfigError
from fusionrec.serving.store import Event, EventStore, SQLiteStore, user_key
from tests.conftest import make_interactions
from tests.serving._stores import temporary_pg_store
from tests.serving.conftest import item_meta, make_client

KEY = {"X-API-Key": "k"}
TARGET = "person-007"  # a bundle user with training rows
FRIEND = "person-003"
WALKIN = "walk-in-1"  # a user known only from posted events
EMAIL = "seven@example.org"
#: click 8.5 deprecates helpers typer's CliRunner still calls (not this code's warning)
CLICK_HELPER = pytest.mark.filterwarnings("ignore:'click.utils.get_:DeprecationWarning")


def _train() -> Interactions:
    base = make_interactions(n_users=30, n_items=25, seed=5, explicit=False)
    frame = base.to_frame()
    users = np.array([f"person-{int(str(u)[1:]):03d}" for u in frame["user"]], dtype=object)
    return Interactions.from_arrays(users, frame["item"].to_numpy(object), None, explicit=False)


@pytest.fixture
def train() -> Interactions:
    return _train()


@pytest.fixture
def bundle(tmp_path: Path, train: Interactions) -> Path:
    from fusionrec.data.side import SideInfo
    from fusionrec.models.linear import EASE
    from fusionrec.serving import save_bundle

    n = train.n_users
    links = [(i, (i + 1) % n) for i in range(n)] + [(i, (i + 4) % n) for i in range(n)]
    r, c = zip(*links)
    social = sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(n, n))
    side = SideInfo(social=social)
    model = EASE(reg=50.0).fit(train)
    return save_bundle(tmp_path / "ease", model, train, item_meta(train), side=side)


def _client(bundle: Path, **kw: Any) -> Iterator[Any]:
    return make_client(bundle, api_key="k", user_reads_require_key=True, **kw)


def _bodies(c: Any, users: list[str], items: list[str]) -> list[str]:
    """The text of every read a client can make about these users and items (listing paged to the end)."""
    out = [c.get("/health").text, c.get("/metrics").text, c.get("/admin/retrain").text]
    offset = 0
    while True:
        page = c.get("/users", params={"limit": 7, "offset": offset}, headers=KEY)
        out.append(page.text)
        if not page.json()["users"]:
            break
        offset += 7
    for u in users:
        out.append(c.get(f"/users/{u}", headers=KEY).text)
        out.append(c.get(f"/users/{u}/history", headers=KEY).text)
        out.append(c.get("/recommend", params={"user": u, "k": 25}, headers=KEY).text)
        for i in items[:3]:
            out.append(c.get("/explain", params={"user": u, "item": i}, headers=KEY).text)
    for i in items:
        out.append(c.get(f"/similar/{i}", headers=KEY).text)
    return out


def test_delete_forgets_the_user_everywhere_and_the_retrain_equals_a_fit_without_it(
    bundle: Path, train: Interactions, caplog: pytest.LogCaptureFixture
) -> None:
    from fusionrec.models.linear import EASE
    from fusionrec.serving.bundle import load_bundle

    items = [str(x) for x in train.item_ids.ids]
    others = [str(x) for x in train.user_ids.ids if x != TARGET][:4]
    gen = _client(bundle)
    c = next(gen)
    with caplog.at_level(logging.DEBUG):
        assert c.post("/users", json={"user": TARGET, "attributes": {"email": EMAIL}}, headers=KEY).status_code == 201
        events = [{"user": TARGET, "item": items[-1]}, {"user": WALKIN, "item": items[0]}]
        assert c.post("/events", json={"events": events}, headers=KEY).status_code == 200
        assert c.post("/users", json={"user": WALKIN, "attributes": {"email": EMAIL}}, headers=KEY).status_code == 201
        assert c.get(f"/users/{TARGET}", headers=KEY).json()["attributes"] == {"email": EMAIL}
        state = c.app.state.engine.state
        t = state.user_index(TARGET)
        assert state.side.social[t].nnz and state.side.social[:, t].nnz
        assert any(TARGET in body for body in _bodies(c, [TARGET], items))  # the check can fail

        # the key is required: nothing is deleted without it
        assert c.delete(f"/users/{TARGET}").status_code == 401
        assert c.delete(f"/users/{TARGET}", headers={"X-API-Key": "wrong"}).status_code == 401
        assert c.get(f"/users/{TARGET}", headers=KEY).status_code == 200
        assert c.delete(f"/users/{TARGET}", headers=KEY).status_code == 204
        assert c.delete(f"/users/{WALKIN}", headers=KEY).status_code == 204
        again = c.delete(f"/users/{TARGET}", headers=KEY)
        assert again.status_code == 404 and "nothing to forget" in again.json()["detail"]
        assert c.delete("/users/never-seen", headers=KEY).status_code == 404

        for u in (TARGET, WALKIN):
            for path, params in ((f"/users/{u}", {}), (f"/users/{u}/history", {}), ("/recommend", {"user": u})):
                assert c.get(path, params=params, headers=KEY).status_code == 404, path
            assert c.get("/explain", params={"user": u, "item": items[0]}, headers=KEY).status_code == 404
        bodies = _bodies(c, others, items)
        for body in bodies:
            assert TARGET not in body and WALKIN not in body and EMAIL not in body
        assert json.loads(bodies[3])["total"] == train.n_users - 1  # the listing counts the bundle users left

        # the store holds nothing of them; the social graph no link; the model no row
        store = c.app.state.engine.store
        assert store.history([TARGET, WALKIN]) == {TARGET: [], WALKIN: []}
        assert {u.user for u in store.users()} == set()
        state = c.app.state.engine.state
        assert state.side.social[t].nnz == 0 and state.side.social[:, t].nnz == 0
        assert state.model.seen_[t].nnz == 0 and state.base_seen[t].nnz == 0

        # the retrain sees neither: it equals EASE fitted on the bundle's data without the user's rows
        assert c.post("/admin/retrain", params={"wait": True}, headers=KEY).status_code == 202
        fresh = load_bundle(bundle)
        assert TARGET not in fresh.user_ids.ids.tolist() and WALKIN not in fresh.user_ids.ids.tolist()
        frame = train.to_frame()
        frame = frame[frame["user"] != TARGET]
        expected_train = Interactions.from_arrays(
            frame["user"].to_numpy(object),
            frame["item"].to_numpy(object),
            frame["rating"].to_numpy(np.float64),
            user_ids=IdMap([u for u in train.user_ids.ids.tolist() if u != TARGET]),
            item_ids=train.item_ids,
            explicit=False,
        )
        expected = EASE(reg=50.0).fit(expected_train)
        assert fresh.fingerprint == expected_train.fingerprint()
        users = np.arange(expected_train.n_users)
        np.testing.assert_allclose(fresh.model.score(users), expected.score(users), rtol=1e-5, atol=1e-6)
        assert fresh.side is not None and fresh.side.social.shape == (train.n_users - 1,) * 2
        for body in _bodies(c, others, items):
            assert TARGET not in body and WALKIN not in body
    with pytest.raises(StopIteration):
        next(gen)
    # the server's records (httpx logs the test client's own request lines)
    server_logs = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("httpx"))
    assert caplog.records and EMAIL not in server_logs and TARGET not in server_logs


def test_the_deletion_survives_a_restart_and_a_returning_user_starts_afresh(bundle: Path, train: Interactions) -> None:
    items = [str(x) for x in train.item_ids.ids]
    gen = _client(bundle)
    c = next(gen)
    before = len(c.get(f"/users/{TARGET}/history", headers=KEY).json()["items"])
    assert before >= 3
    assert c.delete(f"/users/{TARGET}", headers=KEY).status_code == 204
    with pytest.raises(StopIteration):
        next(gen)

    gen = _client(bundle)  # a restart on the same (untouched) bundle and store
    c = next(gen)
    assert c.get(f"/users/{TARGET}", headers=KEY).status_code == 404
    assert TARGET not in c.get("/users", params={"limit": 1000}, headers=KEY).text
    assert c.delete(f"/users/{TARGET}", headers=KEY).status_code == 404
    # the same raw id posted again is a new user with only its new history, also after a restart
    assert c.post("/events", json={"events": [{"user": TARGET, "item": items[2]}]}, headers=KEY).status_code == 200
    with pytest.raises(StopIteration):
        next(gen)
    gen = _client(bundle)
    c = next(gen)
    hist = c.get(f"/users/{TARGET}/history", headers=KEY).json()["items"]
    assert [h["item"] for h in hist] == [items[2]]
    with pytest.raises(StopIteration):
        next(gen)


def test_other_workers_forget_at_their_next_sync(bundle: Path) -> None:
    from fusionrec.serving.engine import ServingEngine, UnknownUserError
    from fusionrec.serving.store import open_store

    url = f"sqlite:///{bundle}.workers.db"
    a = ServingEngine(bundle, open_store(url), index="exact")
    b = ServingEngine(bundle, open_store(url), index="exact")
    try:
        assert b.state.user_index(TARGET) is not None
        a.delete_user(TARGET)
        assert b.state.user_index(TARGET) is not None
        b.sync()
        assert b.state.user_index(TARGET) is None and TARGET not in b.state.catalogue.known_users()
        with pytest.raises(UnknownUserError):
            b.delete_user(TARGET)
    finally:
        a.close()
        b.close()


def test_user_reads_need_the_key_item_reads_do_not(bundle: Path, train: Interactions) -> None:
    item = str(train.item_ids.ids[0])
    gen = _client(bundle)
    c = next(gen)
    private = [
        ("/users", {}),
        (f"/users/{TARGET}", {}),
        (f"/users/{TARGET}/history", {}),
        ("/recommend", {"user": TARGET}),
        ("/explain", {"user": TARGET, "item": item}),
    ]
    for path, params in private:
        assert c.get(path, params=params).status_code == 401, path
        assert c.get(path, params=params, headers={"X-API-Key": "wrong"}).status_code == 401, path
        assert c.get(path, params=params, headers=KEY).status_code == 200, path
    for path in (f"/similar/{item}", "/health", "/metrics"):
        assert c.get(path).status_code == 200, path
    with pytest.raises(StopIteration):
        next(gen)
    # without the setting (embedders' default) user reads stay open; deletion still needs the key
    gen = make_client(bundle, api_key="k")
    c = next(gen)
    assert c.get(f"/users/{TARGET}").status_code == 200
    assert c.delete(f"/users/{TARGET}").status_code == 401
    with pytest.raises(StopIteration):
        next(gen)


@CLICK_HELPER
def test_serve_turns_user_reads_private_with_a_key(monkeypatch: pytest.MonkeyPatch, bundle: Path) -> None:
    from typer.testing import CliRunner

    from fusionrec.cli.main import app
    from fusionrec.serving.settings import ENV_PREFIX, ServingSettings

    for name in ("API_KEY", "READ_REQUIRES_KEY", "USER_READS_REQUIRE_KEY", "BUNDLE_PATH", "STORE_URL"):
        monkeypatch.setenv(ENV_PREFIX + name, "")
    monkeypatch.delenv(ENV_PREFIX + "USER_READS_REQUIRE_KEY")
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)
    out = CliRunner().invoke(app, ["serve", str(bundle), "--api-key", "k", "--store", f"sqlite:///{bundle}.s.db"])
    assert out.exit_code == 0, out.output
    assert ServingSettings.from_env().user_reads_require_key
    assert os.environ[ENV_PREFIX + "USER_READS_REQUIRE_KEY"] == "1"


@CLICK_HELPER
def test_fusionrec_forget_and_retrain(bundle: Path, train: Interactions) -> None:
    from typer.testing import CliRunner

    from fusionrec.cli.main import app
    from fusionrec.serving.bundle import load_bundle

    store = f"sqlite:///{bundle}.cli.db"
    with SQLiteStore(f"{bundle}.cli.db") as s:
        s.append([Event(TARGET, str(train.item_ids.ids[0]), 1.0, 5)])
        s.add_users([(TARGET, {"email": EMAIL})])
    runner = CliRunner()
    out = runner.invoke(app, ["forget", str(bundle), TARGET, "nobody", "--store", store])
    assert out.exit_code != 0 and "forgotten: person-007" in out.output  # an unknown user is an error
    assert "until the next retrain" in out.output
    assert TARGET in load_bundle(bundle).user_ids.ids.tolist()  # hidden by the tombstone until a retrain
    out = runner.invoke(app, ["forget", str(bundle), TARGET, "--store", store, "--missing-ok", "--retrain"])
    assert out.exit_code == 0, out.output
    fresh = load_bundle(bundle)
    assert TARGET not in fresh.user_ids.ids.tolist() and len(fresh.user_ids) == train.n_users - 1
    with SQLiteStore(f"{bundle}.cli.db") as s:
        assert s.history([TARGET])[TARGET] == [] and s.users() == []


# ------------------------------------------------------------------------------------------ stores
def _exercise_delete(store: EventStore) -> None:
    store.append([Event("gone", "i1", 1.0, 1), Event("kept", "i1", 2.0, 2), Event("gone", "i2", 3.0, 3)])
    store.add_users([("gone", {"email": EMAIL}), ("kept", {"a": 1})])
    top = store.last_seq()
    assert store.delete_user("gone") == 3  # two events and the profile
    assert store.history(["gone", "kept"]) == {"gone": [], "kept": [store.history(["kept"])["kept"][0]]}
    assert [e.user for e in store.events_since(0)] == ["kept"] and store.count() == 1
    assert [u.user for u in store.users()] == ["kept"]
    marks = store.forgotten_since(0)
    assert [(m.key, m.after_seq) for m in marks] == [(user_key("gone"), top)]
    assert "gone" not in json.dumps([m.__dict__ for m in marks])
    assert store.delete_user("gone") == 0  # nothing left; a second tombstone
    assert len(store.forgotten_since(0)) == 2 and store.forgotten_since(marks[0].seq)[0].seq > marks[0].seq
    new = store.append([Event("gone", "i3", 1.0, 4)])  # a returning user's events come after the tombstone
    assert new[0] > top and [e.item for e in store.history(["gone"])["gone"]] == ["i3"]


def test_sqlite_delete_user_leaves_no_trace_in_the_files(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    with SQLiteStore(path) as store:
        _exercise_delete(store)
        store.delete_user("gone")
        store.add_users([("someone", {"x": 1})])
        store.delete_user("someone")
        data = path.read_bytes() + (Path(f"{path}-wal").read_bytes() if Path(f"{path}-wal").exists() else b"")
    assert EMAIL.encode() not in data and b"someone" not in data


def test_sqlite_delete_user_is_one_transaction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fusionrec.serving.store as store_mod

    with SQLiteStore(tmp_path / "e.db") as store:
        store.append([Event("gone", "i1", 1.0, 1)])

        def broken(user: str) -> str:
            raise RuntimeError("disk full")

        monkeypatch.setattr(store_mod, "user_key", broken)
        with pytest.raises(RuntimeError):
            store.delete_user("gone")
        assert store.count() == 1 and store.forgotten_since(0) == []  # rolled back: nothing half-deleted


@pytest.fixture
def pg_store() -> Iterator[EventStore]:
    yield from temporary_pg_store()


def test_postgres_delete_user(pg_store: EventStore) -> None:
    _exercise_delete(pg_store)


def test_postgres_delete_user_is_one_transaction(pg_store: EventStore, monkeypatch: pytest.MonkeyPatch) -> None:
    import fusionrec.serving.store_postgres as store_mod  # PostgresStore's module (split from store.py)

    pg_store.append([Event("gone", "i1", 1.0, 1)])
    monkeypatch.setattr(store_mod, "user_key", lambda user: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        pg_store.delete_user("gone")
    assert pg_store.count() == 1 and pg_store.forgotten_since(0) == []


def test_bad_store_url_still_refused() -> None:
    from fusionrec.serving.store import open_store

    with pytest.raises(ConfigError):
        open_store("mysql://x")
