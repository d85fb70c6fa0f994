"""The event store's contract: :class:`EventStore`, its records (:class:`Event`, :class:`StoredItem`,
:class:`StoredUser`, :class:`StoredLink`, :class:`Forgotten`), its typed errors and :func:`user_key`.

The stores themselves are :class:`~fusionrec.serving.store.SQLiteStore` and
:class:`~fusionrec.serving.store_postgres.PostgresStore`; import everything from :mod:`fusionrec.serving.store`.
"""

from __future__ import annotations

import hashlib
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fusionrec.errors import FusionRecError

__all__ = [
    "Event",
    "EventStore",
    "Forgotten",
    "Links",
    "StoreFullError",
    "StoreUnavailableError",
    "StoredItem",
    "StoredLink",
    "StoredUser",
    "user_key",
]


class StoreUnavailableError(FusionRecError):
    """The store cannot take a call now (database gone, connection dropped, file locked or unreadable): nothing
    was stored (unless the message says the write may have been, when a connection was lost during its commit);
    retry later (HTTP 503).  A ``PostgresStore`` reconnects by itself on a later call."""


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
