"""Fault injection (issue 21): a full disk during event ingestion and during a bundle write.

The disk is filled by injection at the store's write calls (SQLite's own "database or disk is full" error, raised
by the connection as it would be on ENOSPC) and at the bundle writer's file writes (``OSError(ENOSPC)``): mounting a
small tmpfs needs privileges the test machines do not have.
"""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.serving.conftest import make_client

KEY = {"X-API-Key": "secret"}


class _FullDisk:
    """A proxy of a sqlite3 connection whose writes fail as on a full disk while ``full`` is set."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.full = False

    def cursor(self) -> Any:
        return _FullCursor(self._conn.cursor(), self)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class _FullCursor:
    def __init__(self, cur: sqlite3.Cursor, disk: _FullDisk) -> None:
        self._cur, self._disk = cur, disk

    def execute(self, sql: str, *args: Any) -> Any:
        if self._disk.full and sql.lstrip().upper().startswith(("INSERT", "COMMIT")):
            raise sqlite3.OperationalError("database or disk is full")
        return self._cur.execute(sql, *args)

    def executemany(self, sql: str, rows: Any) -> Any:
        if self._disk.full:
            raise sqlite3.OperationalError("database or disk is full")
        return self._cur.executemany(sql, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cur, name)


def test_disk_full_during_ingestion(tiny_bundle: Path, implicit_train: Any) -> None:
    """Writes answer 507 while the disk is full (nothing acknowledged is lost, nothing half-stored), reads keep
    working, and the service takes writes again when space returns."""
    items = [str(x) for x in implicit_train.item_ids.ids.tolist()]
    for client in make_client(tiny_bundle, api_key="secret"):
        store = client.app.state.engine.store
        disk = _FullDisk(store._conn)
        store._conn = disk
        acked: list[int] = []
        answers: dict[int, int] = {}
        for j in range(30):
            disk.full = 10 <= j < 20
            ev = {"events": [{"user": f"w{j % 4}", "item": items[j % len(items)]}]}
            r = client.post("/events", json=ev, headers=KEY)
            answers[r.status_code] = answers.get(r.status_code, 0) + 1
            if r.status_code == 200:
                acked.extend(r.json()["seqs"])
            else:
                assert r.status_code == 507 and "disk is full" in r.json()["detail"], r.text
                assert r.headers["Retry-After"]
            # reads keep working throughout
            assert client.get("/recommend", params={"user": "w0", "k": 3}).status_code in (200, 404)
            assert client.get("/health").status_code == 200
        r = client.post("/users", json={"user": "p1", "attributes": {"a": "b"}}, headers=KEY)
        assert r.status_code in (200, 201), r.text  # space is back
        disk.full = True
        assert client.post("/users", json={"user": "p2", "attributes": {"a": "b"}}, headers=KEY).status_code == 507
        assert client.delete("/users/w3", headers=KEY).status_code == 507
        disk.full = False
        assert answers == {200: 20, 507: 10}
        stored = [e.seq for e in store.events_since(0)]
        assert stored == sorted(acked) and len(stored) == 20  # every acknowledged event, and only those


def test_disk_full_during_a_retrain_keeps_the_old_bundle(
    tiny_bundle: Path, implicit_train: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bundle write that hits ENOSPC fails the retrain (status says why); the old bundle stays on disk, loadable,
    and served; the next retrain, with space back, succeeds."""
    from fusionrec.serving import load_bundle

    before = (tiny_bundle / "bundle.json").read_text()
    items = [str(x) for x in implicit_train.item_ids.ids.tolist()]
    real = Path.write_bytes

    def full(self: Path, data: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    for client in make_client(tiny_bundle, api_key="secret"):
        r = client.post("/events", json={"events": [{"user": "n1", "item": items[0]}]}, headers=KEY)
        assert r.status_code == 200
        monkeypatch.setattr(Path, "write_bytes", full)
        r = client.post("/admin/retrain", params={"wait": True}, headers=KEY)
        monkeypatch.setattr(Path, "write_bytes", real)
        assert r.status_code == 400 and "No space left" in r.json()["status"]["last_error"], r.text
        assert (tiny_bundle / "bundle.json").read_text() == before
        load_bundle(tiny_bundle)  # loadable
        assert not [p for p in tiny_bundle.parent.iterdir() if p.name.startswith(".tiny.")]  # no temp left
        assert client.get("/recommend", params={"user": "n1", "k": 3}).status_code == 200
        r = client.post("/admin/retrain", params={"wait": True}, headers=KEY)
        assert r.status_code == 202, r.text
    assert "n1" in [str(x) for x in load_bundle(tiny_bundle).user_ids.ids.tolist()]


class _BrokenReads:
    """A proxy of a sqlite3 connection whose queries fail as on a damaged database file while ``broken`` is set."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.broken = False

    def execute(self, sql: str, *args: Any) -> Any:
        if self.broken and sql.lstrip().upper().startswith("SELECT"):
            raise sqlite3.DatabaseError("database disk image is malformed")
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def test_store_that_cannot_be_read_answers_503_and_keeps_serving(tiny_bundle: Path) -> None:
    """A store whose reads fail (a damaged or vanished file) gives the typed StoreUnavailableError: a DELETE that must
    read first answers 503 with Retry-After and deletes nothing, /metrics and /recommend keep answering, and all works
    again once the store reads."""
    from fusionrec.serving.store import StoreUnavailableError

    for client in make_client(tiny_bundle, api_key="secret"):
        store = client.app.state.engine.store
        proxy = _BrokenReads(store._conn)
        store._conn = proxy
        proxy.broken = True
        with pytest.raises(StoreUnavailableError, match="cannot be read"):
            store.events_since(0)
        r = client.delete("/users/nobody-known", headers=KEY)
        assert r.status_code == 503 and r.headers["Retry-After"], r.text
        m = client.get("/metrics")
        assert m.status_code == 200 and "fusionrec_events_stored NaN" in m.text
        assert client.get("/health").status_code == 200
        proxy.broken = False
        assert client.delete("/users/nobody-known", headers=KEY).status_code == 404
