"""The live service: the current :class:`~fusionrec.serving.online.OnlineModel` (swapped atomically after a
retrain), the event store, and the background jobs (sync with other workers, scheduled retrains).

Every write is stored first (durable) and then applied to the online model.  Inputs arrive checked at the edge
(:mod:`fusionrec.serving.schemas`, :mod:`fusionrec.serving.rules`); the engine adds only the checks that need the
served bundle (unknown items, the model's value range, unknown friends) and trusts the rest.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fusionrec.errors import FusionRecError
from fusionrec.serving.catalogue import UnknownItemError, UnknownUserError
from fusionrec.serving.online import OnlineModel
from fusionrec.serving.placement import FOLD_CHUNK
from fusionrec.serving.retrain import CONTENT_KEY, TEXT_KEY, forget_from_store, prepare_retrain, replay, retrain_bundle
from fusionrec.serving.rules import id_key
from fusionrec.serving.store import StoreUnavailableError

if TYPE_CHECKING:
    from fusionrec.serving.store import Event, EventStore

__all__ = [
    "FOLD_CHUNK",
    "OnlineModel",
    "RetrainError",
    "ServingEngine",
    "UnknownItemError",
    "UnknownUserError",
    "replay",
    "retrain_bundle",
]

log = logging.getLogger(__name__)


class RetrainError(FusionRecError):
    """A retrain could not start (its data fail validation) or failed; the reason is in the message."""


def check_store_position(store_seq: int, store: EventStore, path: Path) -> None:
    """``BundleError`` when a bundle says it was trained on the store's events up to ``store_seq`` but the store
    never reached that position (its highest event, or the position a tombstone recorded when a forgotten user's
    events left it): the bundle belongs to another store or was edited, and serving it would skip the store's
    events up to ``store_seq`` without a word."""
    from fusionrec.errors import BundleError

    if store_seq <= 0:
        return
    reached = max([store.last_seq(), *(f.after_seq for f in store.forgotten_since(0))])
    if store_seq > reached:
        raise BundleError(
            f"{path}: the bundle says it holds the store's events up to store_seq={store_seq} but this store holds "
            f"events up to {reached} only (another service's store, or an edited bundle); serve it with the store "
            "it was retrained from, or write the bundle again with save_bundle(..., store_seq=0)"
        )


class ServingEngine:
    """The live service: the current :class:`OnlineModel` (swapped atomically), the store, background jobs."""

    def __init__(
        self,
        bundle_path: str | Path,
        store: EventStore,
        *,
        index: str = "auto",
        ann_threshold: int = 50_000,
        retrain_params: Mapping[str, Any] | None = None,
    ) -> None:
        from fusionrec.serving.bundle import load_bundle

        self.bundle_path = Path(bundle_path)
        self.store = store
        self.index = index
        self.ann_threshold = ann_threshold
        self.retrain_params = dict(retrain_params or {})
        self.write_lock = threading.RLock()
        bundle = load_bundle(self.bundle_path)
        check_store_position(bundle.store_seq, store, self.bundle_path)
        state = OnlineModel(bundle, index=index, ann_threshold=ann_threshold)
        replay(state, store)
        self.state = state
        self.retrain_status: dict[str, Any] = {"state": "idle", "last_error": None, "last_finished": None, "runs": 0}
        self._retrain_thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # writes: store first (durable), then fold in
    def post_events(self, events: Sequence[Event]) -> list[int]:
        from fusionrec.serving.store import Event as Ev

        with self.write_lock:
            state = self.state
            state.require_items([e.item for e in events])
            state.check_values([e.value for e in events])
            seqs = self.store.append(events)
            if seqs and seqs[0] != state.applied_seq + 1:
                # another process stored events since this one last synced (or a forgotten user's events left a
                # hole): catch up from the store in order, these events included; applying only these would move
                # the position past the others and this process would never see them
                replay(state, self.store)
            else:
                state.apply_events([Ev(e.user, e.item, e.value, e.timestamp, s) for e, s in zip(events, seqs)])
            return seqs

    def post_item(
        self,
        raw: Any,
        meta: Mapping[str, Any],
        features: Sequence[float] | None = None,
        text: str | None = None,
        content: Mapping[str, Any] | None = None,
    ) -> int:
        """Add an item (stored with its raw content, so a restart replays it) and place it at once."""
        with self.write_lock:
            state = self.state
            state.catalogue.check_meta(meta)
            # encoded once, before anything is stored: bad content is refused without a trace
            # encoded also for a known item: never store what could not be loaded again
            encoded: dict[str, np.ndarray] | None = state.encode_content(content, features)
            rows = None if state.item_index(raw) is not None else encoded
            stored: dict[str, Any] = dict(meta)
            if text:
                stored[TEXT_KEY] = text
            if content:
                stored[CONTENT_KEY] = dict(content)
            self.store.add_items([(id_key(raw), stored, None if features is None else list(features))])
            return state.add_item(raw, meta, features, text, content, rows=rows)

    def post_user(
        self, raw: Any, attributes: Mapping[str, Any], friends: Sequence[tuple[Any, float]] | None = None
    ) -> int:
        """Create a user or update its profile (empty ``attributes`` keep the profile it has); ``friends`` (raw
        ids of known users and weights, cleaned at the edge by :func:`fusionrec.serving.rules.clean_links`) replaces
        its posted links (``[]`` removes them; ``None`` keeps them).

        The profile and links are stored in one transaction before anything changes here; the user is then placed
        through its links when the model uses them (:mod:`fusionrec.serving.placement`).  Raises
        :class:`UnknownUserError` naming unknown friends (nothing stored)."""
        with self.write_lock:
            state = self.state
            links = None if friends is None else state.resolve_friends(friends)
            known = state.user_index(raw)
            attrs = dict(attributes) or ({} if known is None else dict(state.user_attrs.get(known, {})))
            key = id_key(raw)
            stored = None if links is None else {key: [(id_key(state.user_raw[f]), w) for f, w in links.items()]}
            self.store.add_users([(key, attrs)], links=stored)
            u = state.add_user(raw, attributes)
            if links is not None:
                state.set_links(u, links)
                state.place_pending()
            return u

    def delete_user(self, raw: Any) -> int:
        """Forget the user ``raw`` everywhere: its events and profile leave the store (one transaction, with a
        tombstone that other workers and restarts apply), and this process's state forgets it
        (:meth:`OnlineModel.forget_user`; the users that linked to it are placed again without it); the next
        retrain no longer sees it.  Returns the number of stored events, profiles and links deleted.

        Raises :class:`UnknownUserError` when neither the state nor the store knows the user (nothing is written).
        """
        with self.write_lock:
            state = self.state
            u = state.user_index(raw)
            key = id_key(raw)
            if u is None and not self.store.history([key])[key] and all(x.user != key for x in self.store.users()):
                raise UnknownUserError(
                    f"unknown user {raw!r}: nothing to forget (it was never known here, or is already forgotten)"
                )
            n = self.store.delete_user(key)
            if u is not None:
                state.forget_user(u)
            forget_from_store(state, self.store)  # this tombstone (and any other worker's) now applied
            state.place_pending()  # the users who linked to it, placed without it
            return n

    def sync(self) -> None:
        """Fold in what other processes wrote to the store."""
        with self.write_lock:
            replay(self.state, self.store)

    # retrain
    def retrain(self, wait: bool = False) -> bool:
        """Start a background retrain; ``wait`` blocks until it finishes.

        Returns False when one is already running.  The data are built and validated before anything starts:
        when that fails, no retrain starts, :attr:`retrain_status` is ``failed`` with the reason in
        ``last_error``, and :class:`RetrainError` is raised (also when a waited-for retrain fails);
        :class:`~fusionrec.serving.store.StoreUnavailableError` when the store cannot be read (HTTP 503).
        """
        with self.write_lock:
            if self._retrain_thread is not None and self._retrain_thread.is_alive():
                return False
            try:
                job = prepare_retrain(self.state, self.store, self.retrain_params)
            except StoreUnavailableError as exc:  # the store is down: 503 and retry, not a bad request
                self._failed(exc)
                raise
            except (FusionRecError, ValueError, OverflowError) as exc:
                self._failed(exc)
                raise RetrainError(f"the retrain cannot start: {exc}") from exc
            self.retrain_status.update(state="running", last_error=None)
            t = threading.Thread(target=self._retrain, args=(job,), name="fusionrec-retrain", daemon=True)
            self._retrain_thread = t
            t.start()
        if wait:
            t.join()
            if self.retrain_status["state"] == "failed":
                raise RetrainError(f"the retrain failed: {self.retrain_status['last_error']}")
        return True

    def _failed(self, exc: BaseException) -> None:
        log.warning("retrain failed: %s", type(exc).__name__)
        self.retrain_status.update(state="failed", last_error=str(exc))
        self.retrain_status["runs"] += 1
        self.retrain_status["last_finished"] = time.time()

    def _retrain(self, job: Any) -> None:
        from fusionrec.serving.bundle import load_bundle

        try:
            path = job(self.bundle_path)
            fresh = OnlineModel(load_bundle(path), index=self.index, ann_threshold=self.ann_threshold)
            replay(fresh, self.store)  # most of the catch-up outside the write lock
            with self.write_lock:
                replay(fresh, self.store)
                self.state = fresh  # atomic swap: readers hold the old state until they finish
            self.retrain_status.update(state="idle", last_error=None)
            self.retrain_status["runs"] += 1
            self.retrain_status["last_finished"] = time.time()
        except (FusionRecError, ValueError, OSError, ArithmeticError, np.linalg.LinAlgError) as exc:
            self._failed(exc)

    def start_background(self, retrain_interval_s: float = 0.0, sync_interval_s: float = 0.0) -> None:
        """Periodic sync with the store and scheduled retrains (daemon threads, stopped by :meth:`close`)."""
        if sync_interval_s > 0:
            self._threads.append(_every(sync_interval_s, self.sync, self._stop, "fusionrec-sync"))
        if retrain_interval_s > 0:
            self._threads.append(_every(retrain_interval_s, self.retrain, self._stop, "fusionrec-retrain-schedule"))

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
        if self._retrain_thread is not None:
            self._retrain_thread.join(timeout=60)
        self.store.close()


def _every(interval: float, fn: Any, stop: threading.Event, name: str) -> threading.Thread:
    def loop() -> None:
        while not stop.wait(interval):
            try:
                fn()
            except Exception as exc:  # the type only: messages may quote ids or values a client sent
                log.error("%s failed (%s)", name, type(exc).__name__)

    t = threading.Thread(target=loop, name=name, daemon=True)
    t.start()
    return t
