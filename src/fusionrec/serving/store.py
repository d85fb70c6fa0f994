"""Event stores: append-only interaction events plus added users and items, durable before the HTTP 2xx.

:class:`SQLiteStore` (default; WAL journal, ``synchronous=FULL``: a committed event survives ``kill -9`` and
power loss) and :class:`PostgresStore` (psycopg 3, a DSN; :mod:`fusionrec.serving.store_postgres`) implement
:class:`EventStore` (:mod:`fusionrec.serving.store_base`); import them all from here.  Ids are stored as text; the
serving layer maps them through the bundle's :class:`~fusionrec.data.IdMap`.

A store that cannot take a call (a full disk, a database that went away, a dropped connection) raises
:class:`StoreUnavailableError` (HTTP 503 + ``Retry-After``) or :class:`StoreFullError` (507) and stores nothing of
it; the PostgreSQL store reconnects by itself on a later call.

Forgetting a user (:meth:`EventStore.delete_user`) deletes its events and profile and records a tombstone, in one
transaction.  The tombstone holds a SHA-256 of the raw id (:func:`user_key`), never the id, plus the event position
at the time: serving processes (other workers, a restart on a bundle trained before the deletion) read it with
:meth:`EventStore.forgotten_since` and drop the user from the bundle's copy too.  The user's social links, those
it posted and those pointing to it, are deleted in the same transaction.

Social links (``POST /users`` with ``friends``) are directed ``user -> friend`` with a weight > 0, one row per pair;
:meth:`EventStore.add_users` with ``links`` replaces the named users' outgoing links in the transaction that stores
their profiles, and :meth:`EventStore.links` reads them all back (replay, retrain).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fusionrec.errors import ConfigError
from fusionrec.serving.store_base import (
    Event,
    EventStore,
    Forgotten,
    Links,
    StoredItem,
    StoredLink,
    StoredUser,
    StoreFullError,
    StoreUnavailableError,
    _normalise,
    _unavailable,
    user_key,
)
from fusionrec.serving.store_postgres import PostgresStore

__all__ = [
    "Event",
    "EventStore",
    "Forgotten",
    "PostgresStore",
    "SQLiteStore",
    "StoreFullError",
    "StoreUnavailableError",
    "StoredItem",
    "StoredLink",
    "StoredUser",
    "open_store",
    "user_key",
]

# ------------------------------------------------------------------------------------------ SQLite
_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, item_id TEXT NOT NULL,
    value REAL NOT NULL, ts INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS events_user ON events(user_id, seq);
CREATE TABLE IF NOT EXISTS items (
    item_id TEXT PRIMARY KEY, meta TEXT NOT NULL, features TEXT, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    user_id TEXT PRIMARY KEY, attributes TEXT NOT NULL, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS forgotten (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, user_key TEXT NOT NULL, after_seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS links (
    user_id TEXT NOT NULL, friend_id TEXT NOT NULL, weight REAL NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (user_id, friend_id));
CREATE INDEX IF NOT EXISTS links_friend ON links(friend_id);
"""


class SQLiteStore(EventStore):
    """SQLite event store (WAL, ``synchronous=FULL``, ``secure_delete``); safe across threads and processes.

    Parameters
    ----------
    path
        Database file (created with its folder); ``":memory:"`` for tests.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA busy_timeout=30000")
        self._conn.execute("PRAGMA secure_delete=ON")  # deleted rows (forgotten users) are overwritten with zeros
        with self._lock:
            self._conn.executescript(_SQLITE_SCHEMA)

    def _rollback(self, cur: Any) -> None:
        """Roll back what is open (SQLite may have rolled back already, e.g. on a full disk)."""
        if self._conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):  # the disk or the file went away: the transaction went with it
                cur.execute("ROLLBACK")

    def _write(self, sql: str, rows: list[tuple[Any, ...]]) -> list[int]:
        with self._lock:
            cur = self._conn.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
                ids = []
                for row in rows:
                    cur.execute(sql, row)
                    ids.append(int(cur.lastrowid or 0))
                cur.execute("COMMIT")
            except (sqlite3.OperationalError, sqlite3.DatabaseError, OSError) as exc:
                self._rollback(cur)
                raise _unavailable(exc) from exc
            except BaseException:
                self._rollback(cur)
                raise
            return ids

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        """All rows of one query; a database that cannot be read (a file gone, corrupt or locked past the busy
        timeout) raises :class:`StoreUnavailableError` (HTTP 503), as a failed write does."""
        with self._lock:
            try:
                return self._conn.execute(sql, args).fetchall()
            except (sqlite3.OperationalError, sqlite3.DatabaseError, OSError) as exc:
                raise StoreUnavailableError(
                    f"the event store cannot be read ({type(exc).__name__}: {exc}); nothing was changed; retry in a "
                    "few seconds, and check the database file if it persists"
                ) from exc

    def append(self, events: Sequence[Event]) -> list[int]:
        rows = _normalise(events)
        if not rows:
            return []
        return self._write("INSERT INTO events(user_id, item_id, value, ts) VALUES (?, ?, ?, ?)", rows)

    def events_since(self, seq: int = 0, limit: int | None = None) -> list[Event]:
        sql = "SELECT seq, user_id, item_id, value, ts FROM events WHERE seq > ? ORDER BY seq"
        args: tuple[Any, ...] = (int(seq),)
        if limit is not None:
            sql += " LIMIT ?"
            args += (int(limit),)
        rows = self._read(sql, args)
        return [Event(u, i, v, t, s) for s, u, i, v, t in rows]

    def history(self, users: Sequence[str]) -> dict[str, list[Event]]:
        out: dict[str, list[Event]] = {str(u): [] for u in users}
        if not out:
            return out
        marks = ",".join("?" * len(out))
        rows = self._read(
            f"SELECT seq, user_id, item_id, value, ts FROM events WHERE user_id IN ({marks}) ORDER BY seq", tuple(out)
        )
        for s, u, i, v, t in rows:
            out[u].append(Event(u, i, v, t, s))
        return out

    def add_items(self, items: Sequence[tuple[str, dict[str, Any], list[float] | None]]) -> None:
        rows = [
            (str(i), json.dumps(m or {}), None if f is None else json.dumps([float(x) for x in f]), time.time_ns())
            for i, m, f in items
        ]
        self._write("INSERT OR REPLACE INTO items(item_id, meta, features, seq) VALUES (?, ?, ?, ?)", rows)

    def add_users(self, users: Sequence[tuple[str, dict[str, Any]]], links: Links | None = None) -> None:
        rows = [(str(u), json.dumps(a or {}), time.time_ns()) for u, a in users]
        if not links:
            self._write("INSERT OR REPLACE INTO users(user_id, attributes, seq) VALUES (?, ?, ?)", rows)
            return
        with self._lock:
            cur = self._conn.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
                cur.executemany("INSERT OR REPLACE INTO users(user_id, attributes, seq) VALUES (?, ?, ?)", rows)
                for user, out in links.items():
                    cur.execute("DELETE FROM links WHERE user_id = ?", (str(user),))
                    cur.executemany(
                        "INSERT OR REPLACE INTO links(user_id, friend_id, weight, seq) VALUES (?, ?, ?, ?)",
                        [(str(user), str(f), float(w), time.time_ns()) for f, w in out],
                    )
                cur.execute("COMMIT")
            except (sqlite3.OperationalError, sqlite3.DatabaseError, OSError) as exc:
                self._rollback(cur)
                raise _unavailable(exc) from exc
            except BaseException:
                self._rollback(cur)
                raise

    def links(self) -> list[StoredLink]:
        rows = self._read("SELECT user_id, friend_id, weight, seq FROM links ORDER BY user_id, seq, friend_id")
        return [StoredLink(u, f, float(w), int(s)) for u, f, w, s in rows]

    def items(self) -> list[StoredItem]:
        rows = self._read("SELECT item_id, meta, features, seq FROM items ORDER BY seq")
        return [StoredItem(i, json.loads(m), None if f is None else json.loads(f), s) for i, m, f, s in rows]

    def users(self) -> list[StoredUser]:
        rows = self._read("SELECT user_id, attributes, seq FROM users ORDER BY seq")
        return [StoredUser(u, json.loads(a), s) for u, a, s in rows]

    def count(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM events")[0][0])

    def delete_user(self, user: str) -> int:
        with self._lock:
            cur = self._conn.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
                top = cur.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
                n = cur.execute("DELETE FROM events WHERE user_id = ?", (str(user),)).rowcount
                n += cur.execute("DELETE FROM users WHERE user_id = ?", (str(user),)).rowcount
                n += cur.execute("DELETE FROM links WHERE user_id = ? OR friend_id = ?", (str(user),) * 2).rowcount
                cur.execute("INSERT INTO forgotten(user_key, after_seq) VALUES (?, ?)", (user_key(user), int(top)))
                cur.execute("COMMIT")
            except (sqlite3.OperationalError, sqlite3.DatabaseError, OSError) as exc:
                self._rollback(cur)
                raise _unavailable(exc) from exc
            except BaseException:
                self._rollback(cur)
                raise
            # the write-ahead log still holds the deleted rows' old pages: copy it into the database (zeroed pages)
            # and empty it (best effort: a reader in another process may hold it; the next checkpoint does it)
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return int(n)

    def forgotten_since(self, seq: int = 0) -> list[Forgotten]:
        rows = self._read("SELECT seq, user_key, after_seq FROM forgotten WHERE seq > ? ORDER BY seq", (int(seq),))
        return [Forgotten(k, int(a), int(s)) for s, k, a in rows]

    def last_seq(self) -> int:
        return int(self._read("SELECT COALESCE(MAX(seq), 0) FROM events")[0][0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def open_store(url: str) -> EventStore:
    """Open a store from a URL: ``sqlite:///path``, a bare file path, or ``postgresql://`` / ``postgres://``."""
    if url.startswith(("postgresql://", "postgres://")) or url.startswith("host="):
        return PostgresStore(url)
    if url.startswith("sqlite://"):
        # SQLAlchemy spelling: sqlite:///relative.db, sqlite:////absolute/path.db, sqlite:// for memory
        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
        return SQLiteStore(path or ":memory:")
    if "://" in url:
        raise ConfigError(f"unsupported store URL {url!r}; use sqlite:///path/events.db or postgresql://...")
    return SQLiteStore(url)
