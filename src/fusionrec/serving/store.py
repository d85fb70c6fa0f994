"""Event stores: append-only interaction events plus added users and items, durable before the HTTP 2xx.

:class:`SQLiteStore` (default; WAL journal, ``synchronous=FULL``: a committed event survives ``kill -9`` and
power loss) and :class:`PostgresStore` (psycopg 3, a DSN) implement :class:`EventStore`.  Ids are stored as
text; the serving layer maps them through the bundle's :class:`~fusionrec.data.IdMap`.

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
import hashlib
import json
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fusionrec.errors import ConfigError, FusionRecError

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


class StoreUnavailableError(FusionRecError):
    """The store cannot take a write now (database gone, connection dropped, file locked or unreadable): nothing
    was stored; retry later (HTTP 503).  A :class:`PostgresStore` reconnects by itself on the next call."""


class StoreFullError(StoreUnavailableError):
    """The store's disk is full: nothing was stored; free space, then retry (HTTP 507)."""


def _is_full(exc: BaseException) -> bool:
    import errno

    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    text = str(exc).lower()
    return "disk is full" in text or "no space left" in text or "could not extend file" in text


def _unavailable(exc: BaseException) -> StoreUnavailableError:
    """The typed error of a failed store call (the cause is chained; the message says what to do)."""
    if _is_full(exc):
        return StoreFullError("the event store's disk is full: nothing was stored; free space and retry")
    return StoreUnavailableError(
        f"the event store is unavailable ({type(exc).__name__}): nothing was stored; retry in a few seconds"
    )


@dataclass(frozen=True)
class Event:
    """One interaction: raw user id, raw item id, value (rating, weight or 1) and unix time (seconds).

    ``seq`` is the store's sequence number (0 before the event is stored).
    """

    user: str
    item: str
    value: float = 1.0
    timestamp: int = 0
    seq: int = 0


@dataclass(frozen=True)
class StoredItem:
    item: str
    meta: dict[str, Any]
    features: list[float] | None
    seq: int


@dataclass(frozen=True)
class StoredUser:
    user: str
    attributes: dict[str, Any]
    seq: int


@dataclass(frozen=True)
class StoredLink:
    """A social link posted for a user: ``user`` (raw id) trusts / follows ``friend`` (raw id) with ``weight`` > 0;
    ``seq`` orders a user's links as posted."""

    user: str
    friend: str
    weight: float
    seq: int


#: ``{raw user id: [(friend raw id, weight), ...]}``: the outgoing links that replace each named user's links
Links = Mapping[str, Sequence[tuple[str, float]]]


@dataclass(frozen=True)
class Forgotten:
    """A tombstone: ``key`` (:func:`user_key` of the forgotten raw id), ``after_seq`` (the highest event sequence
    number when it was forgotten: a bundle trained up to a position ``<= after_seq`` may still hold the user) and
    ``seq`` (the tombstone's own sequence number)."""

    key: str
    after_seq: int
    seq: int


def user_key(user: str) -> str:
    """The tombstone key of a raw user id: SHA-256 of its text (a store keeps no raw id of a forgotten user)."""
    return hashlib.sha256(str(user).encode("utf-8", "surrogatepass")).hexdigest()


class EventStore(ABC):
    """Where events, new items and new users live between retrains."""

    @abstractmethod
    def append(self, events: Sequence[Event]) -> list[int]:
        """Store ``events`` in one transaction, committed durably before returning; their sequence numbers."""

    @abstractmethod
    def events_since(self, seq: int = 0, limit: int | None = None) -> list[Event]:
        """Events with sequence number ``> seq``, in order."""

    @abstractmethod
    def history(self, users: Sequence[str]) -> dict[str, list[Event]]:
        """Each user's stored events, oldest first."""

    @abstractmethod
    def add_items(self, items: Sequence[tuple[str, dict[str, Any], list[float] | None]]) -> None:
        """Insert or replace items ``(raw id, metadata, feature vector or None)``."""

    @abstractmethod
    def add_users(self, users: Sequence[tuple[str, dict[str, Any]]], links: Links | None = None) -> None:
        """Insert or replace users ``(raw id, attributes)``; ``links`` (optional) replaces the outgoing social links
        of each user it names (an empty list removes them), in the same transaction, committed durably."""

    @abstractmethod
    def links(self) -> list[StoredLink]:
        """Every stored social link, grouped by user, in the order posted."""

    @abstractmethod
    def items(self) -> list[StoredItem]:
        """Every added item, in insertion order."""

    @abstractmethod
    def users(self) -> list[StoredUser]:
        """Every added user, in insertion order."""

    @abstractmethod
    def count(self) -> int:
        """Number of stored events."""

    @abstractmethod
    def delete_user(self, user: str) -> int:
        """Forget ``user`` (raw id): delete its events, profile and social links (those it posted and those pointing
        to it) and record a :class:`Forgotten` tombstone, in one transaction committed durably before returning; the
        number of events, profiles and links deleted (0: the store held nothing of the user, the tombstone is
        recorded all the same)."""

    @abstractmethod
    def forgotten_since(self, seq: int = 0) -> list[Forgotten]:
        """Tombstones with sequence number ``> seq``, in order."""

    @abstractmethod
    def last_seq(self) -> int:
        """The highest event sequence number (0 when empty)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _now() -> int:
    return int(time.time())


def _normalise(events: Iterable[Event]) -> list[tuple[str, str, float, int]]:
    rows = []
    for e in events:
        rows.append((str(e.user), str(e.item), float(e.value), int(e.timestamp or _now())))
    return rows


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
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [Event(u, i, v, t, s) for s, u, i, v, t in rows]

    def history(self, users: Sequence[str]) -> dict[str, list[Event]]:
        out: dict[str, list[Event]] = {str(u): [] for u in users}
        if not out:
            return out
        marks = ",".join("?" * len(out))
        with self._lock:
            rows = self._conn.execute(
                f"SELECT seq, user_id, item_id, value, ts FROM events WHERE user_id IN ({marks}) ORDER BY seq",
                tuple(out),
            ).fetchall()
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
        with self._lock:
            rows = self._conn.execute(
                "SELECT user_id, friend_id, weight, seq FROM links ORDER BY user_id, seq, friend_id"
            ).fetchall()
        return [StoredLink(u, f, float(w), int(s)) for u, f, w, s in rows]

    def items(self) -> list[StoredItem]:
        with self._lock:
            rows = self._conn.execute("SELECT item_id, meta, features, seq FROM items ORDER BY seq").fetchall()
        return [StoredItem(i, json.loads(m), None if f is None else json.loads(f), s) for i, m, f, s in rows]

    def users(self) -> list[StoredUser]:
        with self._lock:
            rows = self._conn.execute("SELECT user_id, attributes, seq FROM users ORDER BY seq").fetchall()
        return [StoredUser(u, json.loads(a), s) for u, a, s in rows]

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])

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
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return int(n)

    def forgotten_since(self, seq: int = 0) -> list[Forgotten]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, user_key, after_seq FROM forgotten WHERE seq > ? ORDER BY seq", (int(seq),)
            ).fetchall()
        return [Forgotten(k, int(a), int(s)) for s, k, a in rows]

    def last_seq(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


# ------------------------------------------------------------------------------------------ PostgreSQL
_PG_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS {p}events (
        seq BIGSERIAL PRIMARY KEY, user_id TEXT NOT NULL, item_id TEXT NOT NULL,
        value DOUBLE PRECISION NOT NULL, ts BIGINT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS {p}events_user ON {p}events(user_id, seq)",
    """CREATE TABLE IF NOT EXISTS {p}items (
        item_id TEXT PRIMARY KEY, meta TEXT NOT NULL, features TEXT, seq BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS {p}users (
        user_id TEXT PRIMARY KEY, attributes TEXT NOT NULL, seq BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS {p}forgotten (
        seq BIGSERIAL PRIMARY KEY, user_key TEXT NOT NULL, after_seq BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS {p}links (
        user_id TEXT NOT NULL, friend_id TEXT NOT NULL, weight DOUBLE PRECISION NOT NULL, seq BIGINT NOT NULL,
        PRIMARY KEY (user_id, friend_id))""",
    "CREATE INDEX IF NOT EXISTS {p}links_friend ON {p}links(friend_id)",
]


class PostgresStore(EventStore):
    """PostgreSQL event store through psycopg 3 (``pip install "psycopg[binary]"``).

    A forgotten user's deleted rows stay in the table files until PostgreSQL vacuums them (autovacuum, or
    ``VACUUM`` by the operator); they are invisible to every query from the commit on.

    Parameters
    ----------
    dsn
        ``postgresql://user:password@host:port/db``.
    table_prefix
        Prefix of the five tables (lets tests use a fresh namespace).
    """

    def __init__(self, dsn: str, table_prefix: str = "fusionrec_") -> None:
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ConfigError('PostgreSQL stores need psycopg 3: pip install "psycopg[binary]"') from exc
        if not table_prefix.replace("_", "").isalnum():
            raise ConfigError("table_prefix must be letters, digits and underscores")
        self.dsn = dsn
        self.prefix = table_prefix
        self._lock = threading.RLock()
        try:
            self._conn = psycopg.connect(dsn, autocommit=False)
        except psycopg.OperationalError as exc:
            raise ConfigError(f"cannot connect to PostgreSQL ({exc}); check the DSN and that the server runs") from exc
        with self._lock, self._conn.transaction(), self._conn.cursor() as cur:
            for stmt in _PG_SCHEMA:
                cur.execute(stmt.format(p=self.prefix))  # type: ignore[arg-type]

    def _q(self, sql: str) -> Any:
        return sql.format(p=self.prefix)

    def append(self, events: Sequence[Event]) -> list[int]:
        rows = _normalise(events)
        if not rows:
            return []
        sql = self._q("INSERT INTO {p}events(user_id, item_id, value, ts) VALUES (%s, %s, %s, %s) RETURNING seq")
        out = []
        with self._lock, self._conn.transaction(), self._conn.cursor() as cur:
            for row in rows:
                cur.execute(sql, row)
                out.append(int(cur.fetchone()[0]))  # type: ignore[index]
        return out

    def _select(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock, self._conn.transaction(), self._conn.cursor() as cur:
            cur.execute(self._q(sql), args)
            return list(cur.fetchall())

    def events_since(self, seq: int = 0, limit: int | None = None) -> list[Event]:
        sql = "SELECT seq, user_id, item_id, value, ts FROM {p}events WHERE seq > %s ORDER BY seq"
        args: tuple[Any, ...] = (int(seq),)
        if limit is not None:
            sql += " LIMIT %s"
            args += (int(limit),)
        return [Event(u, i, float(v), int(t), int(s)) for s, u, i, v, t in self._select(sql, args)]

    def history(self, users: Sequence[str]) -> dict[str, list[Event]]:
        out: dict[str, list[Event]] = {str(u): [] for u in users}
        if not out:
            return out
        rows = self._select(
            "SELECT seq, user_id, item_id, value, ts FROM {p}events WHERE user_id = ANY(%s) ORDER BY seq",
            (list(out),),
        )
        for s, u, i, v, t in rows:
            out[u].append(Event(u, i, float(v), int(t), int(s)))
        return out

    def add_items(self, items: Sequence[tuple[str, dict[str, Any], list[float] | None]]) -> None:
        sql = self._q(
            "INSERT INTO {p}items(item_id, meta, features, seq) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (item_id) DO UPDATE SET meta = EXCLUDED.meta, features = EXCLUDED.features, seq = EXCLUDED.seq"
        )
        with self._lock, self._conn.transaction(), self._conn.cursor() as cur:
            for i, m, f in items:
                feats = None if f is None else json.dumps([float(x) for x in f])
                cur.execute(sql, (str(i), json.dumps(m or {}), feats, time.time_ns()))

    def add_users(self, users: Sequence[tuple[str, dict[str, Any]]], links: Links | None = None) -> None:
        sql = self._q(
            "INSERT INTO {p}users(user_id, attributes, seq) VALUES (%s, %s, %s) "
            "ON CONFLICT (user_id) DO UPDATE SET attributes = EXCLUDED.attributes, seq = EXCLUDED.seq"
        )
        link_sql = self._q(
            "INSERT INTO {p}links(user_id, friend_id, weight, seq) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (user_id, friend_id) DO UPDATE SET weight = EXCLUDED.weight, seq = EXCLUDED.seq"
        )
        with self._lock, self._conn.transaction(), self._conn.cursor() as cur:
            for u, a in users:
                cur.execute(sql, (str(u), json.dumps(a or {}), time.time_ns()))
            for user, out in (links or {}).items():
                cur.execute(self._q("DELETE FROM {p}links WHERE user_id = %s"), (str(user),))
                for f, w in out:
                    cur.execute(link_sql, (str(user), str(f), float(w), time.time_ns()))

    def links(self) -> list[StoredLink]:
        rows = self._select("SELECT user_id, friend_id, weight, seq FROM {p}links ORDER BY user_id, seq, friend_id", ())
        return [StoredLink(str(u), str(f), float(w), int(s)) for u, f, w, s in rows]

    def items(self) -> list[StoredItem]:
        rows = self._select("SELECT item_id, meta, features, seq FROM {p}items ORDER BY seq", ())
        return [StoredItem(i, json.loads(m), None if f is None else json.loads(f), int(s)) for i, m, f, s in rows]

    def users(self) -> list[StoredUser]:
        rows = self._select("SELECT user_id, attributes, seq FROM {p}users ORDER BY seq", ())
        return [StoredUser(u, json.loads(a), int(s)) for u, a, s in rows]

    def count(self) -> int:
        return int(self._select("SELECT COUNT(*) FROM {p}events", ())[0][0])

    def delete_user(self, user: str) -> int:
        with self._lock, self._conn.transaction(), self._conn.cursor() as cur:
            # the events table is locked against inserts so that after_seq is the highest position at deletion
            cur.execute(self._q("LOCK TABLE {p}events IN SHARE ROW EXCLUSIVE MODE"))
            cur.execute(self._q("SELECT COALESCE(MAX(seq), 0) FROM {p}events"))
            top = int(cur.fetchone()[0])  # type: ignore[index]
            cur.execute(self._q("DELETE FROM {p}events WHERE user_id = %s"), (str(user),))
            n = cur.rowcount
            cur.execute(self._q("DELETE FROM {p}users WHERE user_id = %s"), (str(user),))
            n += cur.rowcount
            cur.execute(self._q("DELETE FROM {p}links WHERE user_id = %s OR friend_id = %s"), (str(user),) * 2)
            n += cur.rowcount
            cur.execute(self._q("INSERT INTO {p}forgotten(user_key, after_seq) VALUES (%s, %s)"), (user_key(user), top))
        return int(n)

    def forgotten_since(self, seq: int = 0) -> list[Forgotten]:
        rows = self._select(
            "SELECT seq, user_key, after_seq FROM {p}forgotten WHERE seq > %s ORDER BY seq", (int(seq),)
        )
        return [Forgotten(str(k), int(a), int(s)) for s, k, a in rows]

    def last_seq(self) -> int:
        return int(self._select("SELECT COALESCE(MAX(seq), 0) FROM {p}events", ())[0][0])

    def drop(self) -> None:
        """Drop this store's tables (tests)."""
        with self._lock, self._conn.transaction(), self._conn.cursor() as cur:
            for t in ("events", "items", "users", "forgotten", "links"):
                cur.execute(self._q(f"DROP TABLE IF EXISTS {{p}}{t}"))

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
