"""Fault injection (issue 21) with a real PostgreSQL: the server stopped and restarted under load, a connection
dropped mid-transaction (``pg_terminate_backend`` from a second connection) and during the commit.

Each test uses a throwaway cluster of its own (``tests/serving/_pgcluster.py``: a temporary folder, a free port),
never the shared server of ``FUSIONREC_PG_DSN``; they skip where the PostgreSQL binaries or psycopg are absent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fusionrec.serving.store import Event, PostgresStore, StoreUnavailableError
from tests.serving._pgcluster import Cluster

KEY = {"X-API-Key": "secret"}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = Cluster()
    try:
        yield c
    finally:
        c.destroy()


@pytest.fixture
def dsn(cluster: Cluster) -> str:
    return cluster.new_database()


class _Dropping:
    """A proxy of a psycopg connection that has its backend terminated (from a second connection) at a chosen
    moment: before the ``nth`` INSERT of the transaction, before the commit, or just after a commit that went
    through (its answer lost: the connection reads as broken)."""

    def __init__(self, conn: Any, cluster: Cluster, *, at: str, nth: int = 2) -> None:
        self._conn, self._cluster, self._at, self._nth = conn, cluster, at, nth
        self.inserts = 0
        self.fired = False
        self.lost_after_commit = False

    def _drop(self) -> None:
        self.fired = True
        self._cluster.terminate(self._conn.info.backend_pid)

    def cursor(self) -> Any:
        proxy = self

        class _Cur:
            def __init__(self, cur: Any) -> None:
                self._cur = cur

            def execute(self, sql: Any, *args: Any) -> Any:
                if str(sql).lstrip().upper().startswith("INSERT"):
                    proxy.inserts += 1
                    if proxy._at == "insert" and proxy.inserts == proxy._nth and not proxy.fired:
                        proxy._drop()
                return self._cur.execute(sql, *args)

            def __enter__(self) -> Any:
                return self

            def __exit__(self, *exc: object) -> None:
                self._cur.close()

            def __getattr__(self, name: str) -> Any:
                return getattr(self._cur, name)

        return _Cur(self._conn.cursor())

    def commit(self) -> None:
        import psycopg

        if self._at == "commit" and not self.fired:
            self._drop()
        self._conn.commit()
        if self._at == "after-commit" and not self.fired:
            self._drop()  # committed; the answer is lost with the connection
            self.lost_after_commit = True
            raise psycopg.OperationalError("server closed the connection unexpectedly")

    @property
    def broken(self) -> bool:
        return bool(self.lost_after_commit or self._conn.broken)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _eventually(call: Any, timeout: float = 10.0) -> Any:
    """``call()`` once the store takes calls again (it fails at once during its reconnect backoff)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except StoreUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _events(user: str, n: int = 3) -> list[Event]:
    return [Event(user, f"i{j}", 1.0, 1_700_000_000 + j) for j in range(n)]


@pytest.mark.parametrize("at", ["insert", "commit", "after-commit"])
def test_connection_dropped_mid_transaction_stores_each_event_once(cluster: Cluster, dsn: str, at: str) -> None:
    """The backend is terminated between two INSERTs of one append, just before its COMMIT, or just after a
    COMMIT that went through: the store reconnects by itself, and the three events are stored exactly once."""
    store = PostgresStore(dsn)
    try:
        store.append(_events("warm", 1))
        proxy = _Dropping(store._conn, cluster, at=at)
        store._conn = proxy
        seqs = store.append(_events("u1"))
        assert proxy.fired
        stored = store.history(["u1"])["u1"]
        assert [e.seq for e in stored] == seqs and [e.item for e in stored] == ["i0", "i1", "i2"]
        assert store.reconnects >= 1 and store.count() == 4
    finally:
        store.drop()
        store.close()


def test_connection_dropped_without_retries_is_a_typed_error_and_stores_nothing(cluster: Cluster, dsn: str) -> None:
    """With ``retries=0`` the dropped transaction is StoreUnavailableError (nothing stored); the next call
    reconnects by itself."""
    store = PostgresStore(dsn, retries=0)
    try:
        store._conn = _Dropping(store._conn, cluster, at="insert")
        with pytest.raises(StoreUnavailableError, match="nothing was stored"):
            store.append(_events("u1"))
        assert store.count() == 0  # reconnected
        assert store.append(_events("u1", 1)) and store.count() == 1
    finally:
        store.drop()
        store.close()


@pytest.mark.slow
def test_commit_lost_while_the_server_is_down_says_the_write_may_be_stored(
    cluster: Cluster, dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit whose answer is lost and whose outcome cannot be checked (the server went down) is a
    StoreUnavailableError that says the events may have been stored, never a silent success or a false 'nothing
    was stored'."""
    import psycopg

    store = PostgresStore(dsn, connect_timeout=2)
    try:
        conn = store._conn

        class _Gone:
            broken = False  # until the commit below
            closed = False
            info = conn.info

            def cursor(self) -> Any:
                return conn.cursor()

            def commit(self) -> None:
                conn.commit()
                cluster.stop("immediate")
                self.broken = True
                raise psycopg.OperationalError("server closed the connection unexpectedly")

            def rollback(self) -> None:
                conn.rollback()

            def close(self) -> None:
                conn.close()

        store._conn = _Gone()
        with pytest.raises(StoreUnavailableError, match="may have been stored"):
            store.append(_events("u1", 1))
        # while it is down, calls fail at once (no connection attempt each: a backoff of 0.2 s doubling to 2 s)
        attempts = []
        real = psycopg.connect
        monkeypatch.setattr(psycopg, "connect", lambda *a, **k: attempts.append(1) or real(*a, **k))
        t0 = time.monotonic()
        for _ in range(200):
            with pytest.raises(StoreUnavailableError, match="unavailable"):
                store.count()
        assert len(attempts) <= 2 and time.monotonic() - t0 < 5
        cluster.start()
        assert _eventually(store.count) == 1  # it was: the caller was told it may be
    finally:
        store.drop()
        store.close()


def _app(bundle: Path, dsn: str) -> Any:
    from fusionrec.serving import ServingSettings, create_app

    settings = ServingSettings(
        bundle_path=bundle, store_url=dsn, sync_interval_s=0, api_key="secret", user_reads_require_key=False
    )
    return create_app(settings)


def test_http_write_over_a_terminated_connection_is_acknowledged_once(
    tiny_bundle: Path, implicit_train: Any, cluster: Cluster, dsn: str
) -> None:
    """Through HTTP: a POST /events whose connection is dropped mid-transaction answers 200 (the store reconnected
    and ran it again) and each of its events is stored once."""
    from fastapi.testclient import TestClient

    items = [str(x) for x in implicit_train.item_ids.ids.tolist()]
    with TestClient(_app(tiny_bundle, dsn)) as client:
        store = client.app.state.engine.store
        store._conn = _Dropping(store._conn, cluster, at="insert")
        body = {"events": [{"user": "h1", "item": items[j]} for j in range(3)]}
        r = client.post("/events", json=body, headers=KEY)
        assert r.status_code == 200, r.text
        assert [e.seq for e in store.events_since(0)] == r.json()["seqs"]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_postgres_stopped_and_restarted_under_load(
    tiny_bundle: Path, implicit_train: Any, cluster: Cluster, dsn: str, mode: str
) -> None:
    """PostgreSQL stops (``pg_ctl stop -m fast``, or ``immediate``: a crash) while a client posts events, and
    starts again: writes answer 503 + Retry-After while it is down (events, users, items, deletions, retrains),
    reads from memory keep answering 200, the service reconnects by itself, and every acknowledged event is in
    the store (an event answered 503 is stored only when the answer said it may be)."""
    from fastapi.testclient import TestClient

    items = [str(x) for x in implicit_train.item_ids.ids.tolist()]
    with TestClient(_app(tiny_bundle, dsn)) as client:
        store = client.app.state.engine.store
        acked: list[int] = []
        maybe = 0
        codes: dict[int, int] = {}
        down = threading.Event()
        up_again = threading.Event()
        checked = threading.Event()  # the other writes and reads were tried while it was down
        stopped: list[float] = []

        def operator() -> None:
            while len(acked) < 20:
                time.sleep(0.01)
            cluster.stop(mode)  # lands while the client is posting: maybe mid-request
            stopped.append(time.monotonic())
            down.set()
            while codes.get(503, 0) < 10 or not checked.is_set():
                time.sleep(0.01)
            cluster.start()
            up_again.set()

        op = threading.Thread(target=operator, daemon=True)
        op.start()
        j = 0
        after = 0
        deadline = time.monotonic() + 120
        while after < 20 and time.monotonic() < deadline:
            j += 1
            ev = {"events": [{"user": f"w{j % 5}", "item": items[j % len(items)]}]}
            r = client.post("/events", json=ev, headers=KEY)
            codes[r.status_code] = codes.get(r.status_code, 0) + 1
            if r.status_code == 200:
                acked.extend(r.json()["seqs"])
                if up_again.is_set():
                    after += 1
            else:
                assert r.status_code == 503, r.text
                assert r.headers["Retry-After"] and "event store" in r.json()["detail"]
                maybe += "may have been stored" in r.json()["detail"]
            # reads served from memory answer throughout
            assert client.get("/recommend", params={"user": "w1", "k": 3}).status_code in (200, 404)
            assert client.get("/health").status_code == 200
            if down.is_set() and not checked.is_set():  # the operator waits for these before restarting it
                assert client.get("/metrics").status_code == 200
                assert (
                    client.post("/users", json={"user": "p1", "attributes": {"a": "b"}}, headers=KEY).status_code == 503
                )
                assert (
                    client.post(
                        "/items", json={"item": "new1", "title": "New one", "features": [0.1] * 5}, headers=KEY
                    ).status_code
                    == 503
                )
                assert client.delete("/users/w1", headers=KEY).status_code == 503
                assert client.post("/admin/retrain", headers=KEY).status_code == 503
                checked.set()
        op.join(timeout=60)
        assert up_again.is_set() and after == 20, codes
        assert codes.get(503, 0) >= 10
        assert store.reconnects >= 1
        stored = {e.seq for e in store.events_since(0)}
        assert set(acked) <= stored  # no acknowledged event lost
        print(
            f"\nPG stop -m {mode}: answers {codes}, acknowledged {len(acked)}, stored {len(stored)}, "
            f"lost {len(set(acked) - stored)}, 'may have been stored' {maybe}, reconnects {store.reconnects}"
        )
        assert len(stored - set(acked)) <= maybe  # an unacknowledged stored event was announced as possible
        assert client.post("/users", json={"user": "p1", "attributes": {"a": "b"}}, headers=KEY).status_code in (
            200,
            201,
        )
        assert client.post("/admin/retrain", params={"wait": True}, headers=KEY).status_code == 202
