from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fusionrec.errors import ConfigError
from fusionrec.serving.store import Event, EventStore, SQLiteStore, open_store
from tests.serving._stores import temporary_pg_store


def _exercise(store: EventStore) -> None:
    assert store.count() == 0 and store.last_seq() == 0
    seqs = store.append([Event("u1", "i1", 1.0, 100), Event("u2", "i2", 4.5, 101), Event("u1", "i3")])
    assert seqs == sorted(seqs) and len(seqs) == 3 and store.last_seq() == seqs[-1]
    since = store.events_since(seqs[0])
    assert [(e.user, e.item) for e in since] == [("u2", "i2"), ("u1", "i3")]
    assert since[0].value == 4.5 and since[1].timestamp > 0
    assert len(store.events_since(0, limit=1)) == 1
    hist = store.history(["u1", "nobody"])
    assert [e.item for e in hist["u1"]] == ["i1", "i3"] and hist["nobody"] == []
    store.add_items([("new", {"title": "New"}, [0.5, 1.0]), ("txt", {}, None)])
    store.add_items([("new", {"title": "Newer"}, None)])
    items = {i.item: i for i in store.items()}
    assert items["new"].meta == {"title": "Newer"} and items["new"].features is None
    store.add_users([("p", {"genres": ["Comedy"]})])
    assert store.users()[0].attributes == {"genres": ["Comedy"]}
    assert store.count() == 3


def test_sqlite_store(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "events.db"
    with SQLiteStore(path) as store:
        _exercise(store)
        mode = store._conn.execute("PRAGMA journal_mode").fetchone()[0]
        sync = store._conn.execute("PRAGMA synchronous").fetchone()[0]
    assert mode == "wal" and sync == 2  # FULL
    with open_store(f"sqlite:///{path}") as again:
        assert again.count() == 3 and again.items()[0].item in ("new", "txt")


def test_open_store_urls(tmp_path: Path) -> None:
    assert isinstance(open_store("sqlite://"), SQLiteStore)
    assert isinstance(open_store(str(tmp_path / "a.db")), SQLiteStore)
    with pytest.raises(ConfigError, match="unsupported store URL"):
        open_store("mysql://x")


@pytest.fixture
def pg_store() -> Iterator[EventStore]:
    yield from temporary_pg_store()


def test_postgres_store(pg_store: EventStore) -> None:
    _exercise(pg_store)


def test_postgres_bad_dsn() -> None:
    pytest.importorskip("psycopg")
    with pytest.raises(ConfigError, match="cannot connect"):
        open_store("postgresql://nobody:wrong@127.0.0.1:1/none?connect_timeout=2")
