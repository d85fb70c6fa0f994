"""PostgreSQL event store (psycopg 3): reconnects by itself after the server or the connection goes away.

Import it from :mod:`fusionrec.serving.store`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Sequence
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
    StoreUnavailableError,
    _normalise,
    _unavailable,
    user_key,
)

__all__ = ["PostgresStore"]

log = logging.getLogger(__name__)

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

    One connection, used under a lock (writes are serialised by the serving engine anyway).  When the server goes
    away (stopped, restarted, the connection dropped or terminated mid-transaction), the call raises
    :class:`StoreUnavailableError` (HTTP 503 + ``Retry-After``) and nothing of it is stored; the next call
    reconnects by itself.  A call whose connection turns out dead before its commit (a stale connection after a
    restart, a backend terminated between statements) reconnects and runs again, at most ``retries`` times, so the
    client sees no error when the server is back.  A connection lost *during* the commit is ambiguous: reads and
    idempotent writes (items, users, links, deletions) simply run again; an :meth:`append` checks on a fresh
    connection whether its sequence numbers were committed, so an event is neither stored twice by the retry nor
    lost; when that check cannot run (the server is still down), the error says that the events may be stored.

    A forgotten user's deleted rows stay in the table files until PostgreSQL vacuums them (autovacuum, or
    ``VACUUM`` by the operator); they are invisible to every query from the commit on.

    Parameters
    ----------
    dsn
        ``postgresql://user:password@host:port/db``.
    table_prefix
        Prefix of the five tables (lets tests use a fresh namespace).
    connect_timeout
        Seconds one connection attempt may take (a server that does not answer fails the call after this).  After
        a failed attempt, calls fail at once (503) for 0.2 s, doubling up to 2 s while the server stays away.
    retries
        How many times a call whose connection was lost runs again on a fresh connection (0: never).
    """

    def __init__(
        self, dsn: str, table_prefix: str = "fusionrec_", *, connect_timeout: float = 5.0, retries: int = 1
    ) -> None:
        try:
            import psycopg  # noqa: F401 - checked here, used by the methods
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ConfigError('PostgreSQL stores need psycopg 3: pip install "psycopg[binary]"') from exc
        if not table_prefix.replace("_", "").isalnum():
            raise ConfigError("table_prefix must be letters, digits and underscores")
        if not connect_timeout > 0 or retries < 0:
            raise ConfigError("connect_timeout must be > 0 and retries >= 0")
        self.dsn = dsn
        self.prefix = table_prefix
        self.connect_timeout = connect_timeout
        self.retries = int(retries)
        self.reconnects = 0  # connections opened after the first (tests, metrics)
        self._lock = threading.RLock()
        self._conn: Any = None
        self._schema_ready = False
        # after a failed connection attempt, calls fail at once for a while (0.2 s, doubling up to 2 s) instead of
        # each waiting up to connect_timeout on a server that does not answer, holding the lock
        self._backoff = 0.0
        self._down_until = 0.0
        self._down_error: BaseException | None = None
        try:
            with self._lock:
                self._connection()
        except StoreUnavailableError as exc:
            raise ConfigError(
                f"cannot connect to PostgreSQL ({exc.__cause__}); check the DSN and that the server runs"
            ) from exc

    def _q(self, sql: str) -> Any:
        return sql.format(p=self.prefix)

    # ----------------------------------------------------------------------------- connection handling
    def _connection(self) -> Any:
        """The open connection, or a new one (raises :class:`StoreUnavailableError` when none can be opened)."""
        import psycopg

        conn = self._conn
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        self._discard()
        if time.monotonic() < self._down_until:
            raise _unavailable(self._down_error or ConnectionError()) from self._down_error
        try:
            # keepalives: a server that vanishes without closing the socket is noticed, not waited on for hours
            conn = psycopg.connect(
                self.dsn,
                autocommit=False,
                connect_timeout=max(1, round(self.connect_timeout)),
                keepalives=1,
                keepalives_idle=30,
                keepalives_interval=10,
                keepalives_count=3,
            )
        except psycopg.Error as exc:
            self._backoff = min(2.0, max(0.2, 2 * self._backoff))
            self._down_until = time.monotonic() + self._backoff
            self._down_error = exc
            raise _unavailable(exc) from exc
        self._backoff = 0.0
        if self._schema_ready:
            self.reconnects += 1
        else:
            try:
                with conn.cursor() as cur:
                    for stmt in _PG_SCHEMA:
                        cur.execute(stmt.format(p=self.prefix))  # type: ignore[arg-type]
                conn.commit()
            except psycopg.Error as exc:
                with contextlib.suppress(psycopg.Error):
                    conn.close()
                raise _unavailable(exc) from exc
            self._schema_ready = True
        self._conn = conn
        return conn

    def _discard(self) -> None:
        """Forget the current connection (closing it if it is still open)."""
        import psycopg

        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            with contextlib.suppress(psycopg.Error):
                conn.close()

    def _run(self, work: Any, *, committed: Any = None) -> Any:
        """``work(cursor)`` in one transaction, committed; its result.

        A lost connection (``conn.broken``) runs ``work`` again on a fresh one, at most :attr:`retries` times.
        When the connection was lost during the commit, ``committed(cursor, result)`` (on a fresh connection) says
        whether the commit went through; ``None`` means ``work`` is idempotent and simply runs again.  Any other
        database error rolls back and raises :class:`StoreUnavailableError` (or :class:`StoreFullError`).
        """
        import psycopg

        with self._lock:
            attempt = 0
            while True:
                conn = self._connection()
                committing = False
                try:
                    with conn.cursor() as cur:
                        result = work(cur)
                    committing = True
                    conn.commit()
                    return result
                except psycopg.Error as exc:
                    if not (conn.broken or conn.closed):  # the server answered: an error of this transaction
                        self._rollback(conn)
                        if isinstance(exc, psycopg.OperationalError | psycopg.InternalError):
                            raise _unavailable(exc) from exc  # disk full, lock or statement timeout, shutdown
                        raise
                    self._discard()
                    maybe_stored = committing
                    if committing and committed is not None:
                        if self._was_committed(committed, result):
                            return result
                        maybe_stored = False
                    if attempt >= self.retries:
                        if maybe_stored:  # an idempotent write: running it again is safe
                            raise StoreUnavailableError(
                                "the connection to the event store was lost while committing: the write may have "
                                "been stored; retrying it is safe (retry in a few seconds)"
                            ) from exc
                        raise _unavailable(exc) from exc
                    attempt += 1
                    log.warning("PostgreSQL connection lost (%s); reconnecting", type(exc).__name__)
                except BaseException:
                    self._rollback(conn)
                    raise

    def _rollback(self, conn: Any) -> None:
        import psycopg

        if conn.broken or conn.closed:
            self._discard()
            return
        try:
            conn.rollback()
        except psycopg.Error:
            self._discard()

    def _was_committed(self, committed: Any, result: Any) -> bool:
        """Whether a commit that lost its connection went through, asked on a fresh connection."""
        import psycopg

        try:
            conn = self._connection()
            with conn.cursor() as cur:
                done = bool(committed(cur, result))
            conn.rollback()
            return done
        except (psycopg.Error, StoreUnavailableError) as exc:
            self._discard()
            raise StoreUnavailableError(
                "the connection to the event store was lost while committing and the store cannot be reached to "
                "check whether the write went through: it may have been stored; retry in a few seconds (the retry "
                "may store it a second time)"
            ) from exc

    def _select(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        def work(cur: Any) -> list[tuple[Any, ...]]:
            cur.execute(self._q(sql), args)
            return list(cur.fetchall())

        return self._run(work)  # type: ignore[no-any-return]

    # ----------------------------------------------------------------------------- the store
    def append(self, events: Sequence[Event]) -> list[int]:
        rows = _normalise(events)
        if not rows:
            return []
        sql = self._q("INSERT INTO {p}events(user_id, item_id, value, ts) VALUES (%s, %s, %s, %s) RETURNING seq")

        def work(cur: Any) -> list[int]:
            out = []
            for row in rows:
                cur.execute(sql, row)
                out.append(int(cur.fetchone()[0]))  # type: ignore[index]
            return out

        def committed(cur: Any, seqs: list[int]) -> bool:
            # sequence numbers are never reused: the rows exist iff the commit went through
            cur.execute(self._q("SELECT COUNT(*) FROM {p}events WHERE seq = ANY(%s)"), (seqs,))
            return int(cur.fetchone()[0]) == len(seqs)  # type: ignore[index]

        return self._run(work, committed=committed)  # type: ignore[no-any-return]

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
        rows = [
            (str(i), json.dumps(m or {}), None if f is None else json.dumps([float(x) for x in f]), time.time_ns())
            for i, m, f in items
        ]

        def work(cur: Any) -> None:
            for row in rows:
                cur.execute(sql, row)

        self._run(work)  # an upsert: running it again after an ambiguous commit stores the same rows

    def add_users(self, users: Sequence[tuple[str, dict[str, Any]]], links: Links | None = None) -> None:
        sql = self._q(
            "INSERT INTO {p}users(user_id, attributes, seq) VALUES (%s, %s, %s) "
            "ON CONFLICT (user_id) DO UPDATE SET attributes = EXCLUDED.attributes, seq = EXCLUDED.seq"
        )
        link_sql = self._q(
            "INSERT INTO {p}links(user_id, friend_id, weight, seq) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (user_id, friend_id) DO UPDATE SET weight = EXCLUDED.weight, seq = EXCLUDED.seq"
        )
        rows = [(str(u), json.dumps(a or {}), time.time_ns()) for u, a in users]
        link_rows = {
            str(user): [(str(user), str(f), float(w), time.time_ns()) for f, w in out]
            for user, out in (links or {}).items()
        }

        def work(cur: Any) -> None:
            for row in rows:
                cur.execute(sql, row)
            for user, out in link_rows.items():
                cur.execute(self._q("DELETE FROM {p}links WHERE user_id = %s"), (user,))
                for link in out:
                    cur.execute(link_sql, link)

        self._run(work)  # upserts and a replacement: idempotent

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
        def work(cur: Any) -> int:
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

        # run again after an ambiguous commit, it deletes nothing more and records a second tombstone for the same
        # key, which forgetting applies as a no-op
        return self._run(work)  # type: ignore[no-any-return]

    def forgotten_since(self, seq: int = 0) -> list[Forgotten]:
        rows = self._select(
            "SELECT seq, user_key, after_seq FROM {p}forgotten WHERE seq > %s ORDER BY seq", (int(seq),)
        )
        return [Forgotten(str(k), int(a), int(s)) for s, k, a in rows]

    def last_seq(self) -> int:
        return int(self._select("SELECT COALESCE(MAX(seq), 0) FROM {p}events", ())[0][0])

    def drop(self) -> None:
        """Drop this store's tables (tests)."""

        def work(cur: Any) -> None:
            for t in ("events", "items", "users", "forgotten", "links"):
                cur.execute(self._q(f"DROP TABLE IF EXISTS {{p}}{t}"))

        self._run(work)

    def close(self) -> None:
        with self._lock:
            self._discard()
