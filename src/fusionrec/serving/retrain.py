"""Retrain and replay: bring a serving state up to date with the event store, and refit the model on the bundle's
data plus everything stored (one idea of the serving engine).

The store holds what was posted, already checked at the edge (:mod:`fusionrec.serving.rules`): links without
self-links, zero weights or repeats, ids in their canonical form.  A retrain fits the model with exactly the inputs
its class declares (``Declaration.fit_kwargs``): the side information only for models that take it, the items' raw
texts / images (the bundle's :class:`~fusionrec.data.documents.ItemDocuments`, grown by every posted item) only for
models that encode them themselves.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from fusionrec.errors import ConfigError, FusionRecError
from fusionrec.serving.catalogue import meta_text
from fusionrec.serving.online import OnlineModel
from fusionrec.serving.rules import id_key

if TYPE_CHECKING:
    from fusionrec.data.documents import ItemDocuments
    from fusionrec.data.side import SideInfo
    from fusionrec.models.declaration import Declaration
    from fusionrec.serving.store import EventStore

__all__ = ["CONTENT_KEY", "TEXT_KEY", "forget_from_store", "prepare_retrain", "replay", "retrain_bundle", "sync_links"]

log = logging.getLogger(__name__)

#: keys of a stored item's meta that hold what was posted besides display metadata
CONTENT_KEY, TEXT_KEY = "_content", "_text"


def replay(state: OnlineModel, store: EventStore) -> None:
    """Bring ``state`` up to date with the store: forgotten users, added items (with their posted content) and
    users, then events after its position (the state's lock is taken per step, not for the whole catch-up: reads
    go on)."""
    forget_from_store(state, store)
    for it in store.items():
        if state.item_index(it.item) is None:
            meta = dict(it.meta)
            text = meta.pop(TEXT_KEY, None)
            content = meta.pop(CONTENT_KEY, None)
            try:
                state.add_item(it.item, meta, it.features, text, content)
            except FusionRecError as exc:  # e.g. content of a modality the retrained model lacks
                log.warning("a stored item was placed without its content (%s)", type(exc).__name__)
                state.add_item(it.item, meta, None, text or meta_text(meta))
    for us in store.users():
        state.add_user(us.user, us.attributes)
    sync_links(state, store)
    while True:
        batch = store.events_since(state.applied_seq, limit=50_000)
        if not batch:
            break
        state.apply_events(batch)
    state.place_pending()  # users whose links changed, placed once their friends' events are in


def sync_links(state: OnlineModel, store: EventStore) -> None:
    """Make ``state``'s posted links those of the store (another worker's posts, a restart); the users whose links
    changed are marked to be placed again.  A friend not known yet (its events come next) is added as a user."""
    stored: dict[int, dict[int, float]] = {}
    for link in store.links():
        u = state.user_index(link.user)
        if u is None:
            u = state.add_user(link.user)
        f = state.user_index(link.friend)
        if f is None:
            f = state.add_user(link.friend)
        stored.setdefault(u, {})[f] = float(link.weight)
    for u in set(state.links) | set(stored):
        state.set_links(u, stored.get(u, {}))


def forget_from_store(state: OnlineModel, store: EventStore) -> None:
    """Apply the store's tombstones not yet applied to ``state``: the users they name are forgotten.

    A tombstone applies to a bundle user only when the bundle was trained up to no later than the deletion
    (``after_seq >= bundle.store_seq``): a bundle trained later never held the forgotten user, and a user of that
    raw id in it came back afterwards.
    """
    from fusionrec.serving.store import user_key

    marks = store.forgotten_since(state.forget_seq)
    if not marks:
        return
    latest: dict[str, int] = {}
    for m in marks:
        latest[m.key] = max(latest.get(m.key, -1), m.after_seq)
    with state.lock:
        for u, raw in enumerate(list(state.user_raw)):
            after = None if raw is None else latest.get(user_key(id_key(raw)))
            if after is None or (u < state.n_base_users and after < state.bundle.store_seq):
                continue
            state.forget_user(u)
        state.forget_seq = max(state.forget_seq, marks[-1].seq)


def _side_for_retrain(side: SideInfo, item_rows: np.ndarray, n_users: int) -> SideInfo:
    """``side`` re-aligned to the retrain's id maps: item rows taken by index, new users with empty rows."""
    out = side.take_items(item_rows)
    for name, x in list(out.user_features.items()):
        x = np.asarray(x, np.float32)
        extra = n_users - x.shape[0]
        if extra > 0:
            out.user_features[name] = np.vstack([x, np.zeros((extra, x.shape[1]), np.float32)])
            present = out.user_present.get(name, np.abs(x).sum(axis=1) > 0)
            out.user_present[name] = np.concatenate([np.asarray(present, bool), np.zeros(extra, bool)])
    if out.social is not None and out.social.shape[0] < n_users:
        s = sp.csr_matrix(out.social)
        out.social = sp.csr_matrix((s.data, s.indices, np.concatenate(
            [s.indptr, np.full(n_users - s.shape[0], s.indptr[-1])])), shape=(n_users, n_users))  # fmt: skip
    return out


def _with_links(social: Any, links: Sequence[Any], user_ids: Sequence[Any]) -> sp.csr_matrix:
    """``social`` (users x users) with the posted ``links`` (:class:`~fusionrec.serving.store.StoredLink`, cleaned
    at the edge before they were stored) between users of ``user_ids`` added, the largest weight where both hold a
    pair."""
    index = {id_key(x): i for i, x in enumerate(user_ids)}
    pairs = [(index[x.user], index[x.friend], x.weight) for x in links if x.user in index and x.friend in index]
    s = sp.csr_matrix(social)
    if not pairs:
        return s
    r, c, w = (np.asarray(v) for v in zip(*pairs))
    extra = sp.csr_matrix((w.astype(np.float64), (r.astype(np.int64), c.astype(np.int64))), shape=s.shape)
    return sp.csr_matrix(s.maximum(extra), dtype=s.dtype)


def _keep_side_users(side: SideInfo, keep: np.ndarray) -> SideInfo:
    """``side`` with only the bundle users ``keep`` marks (profile rows and social links)."""
    from dataclasses import replace

    idx = np.flatnonzero(keep)
    feats = {k: np.asarray(v)[idx] for k, v in side.user_features.items()}
    present = {k: np.asarray(v)[idx] for k, v in side.user_present.items()}
    social = None if side.social is None else sp.csr_matrix(side.social)[idx][:, idx].tocsr()
    return replace(side, user_features=feats, user_present=present, social=social)


def retrain_bundle(
    state: OnlineModel, store: EventStore, path: str | Path, params: Mapping[str, Any] | None = None
) -> Path:
    """Refit the model on the bundle's training data plus every stored event; write a new bundle to ``path``.

    Items added online that have events join the item map with their content rows; users added online get empty
    user-feature rows; the links posted with ``POST /users`` join the social links when the bundle has them
    (``side.social``; a link counts when both users are in the new user map, i.e. have training data or events;
    the largest weight when a training link holds the pair too); a content-aware model is refit with ``fit(train, side)`` and the new bundle
    stores that side information.  Items without events stay in the store and are placed again by their content
    when the new bundle is served.
    """
    return prepare_retrain(state, store, params)(path)


def prepare_retrain(state: OnlineModel, store: EventStore, params: Mapping[str, Any] | None = None) -> Any:
    """The data of a retrain, built and validated now (``FusionRecError`` / ``ValueError`` when it cannot run);
    returns ``fit_and_save(path) -> Path`` that refits and writes the bundle (the slow part)."""
    from fusionrec.data.interactions import DataWarning, Interactions
    from fusionrec.serving.bundle import save_bundle

    upto = store.last_seq()
    with state.lock:
        base = state.train_interactions()
        meta = {k: list(v) for k, v in state.item_meta.items()}
        item_raw = list(state.item_raw)
        side = state.side
        side_rows_src = None if side is None else side.take_items(np.arange(state.n_items))
        gone = sorted(u for u in state.catalogue.forgotten if u < state.n_base_users)
        documents = None if state.documents is None else state.documents.copy()
        n_catalogue = state.n_items
    events = [e for e in store.events_since(state.bundle.store_seq) if e.seq <= upto]
    links = store.links()
    known_items = {id_key(x): i for i, x in enumerate(item_raw)}
    events = [e for e in events if e.item in known_items]
    frame = base.to_frame()
    cat = state.catalogue
    ev_users = [cat.coerce_user(e.user) for e in events]
    ev_items = [item_raw[known_items[e.item]] for e in events]
    base_users, base_items = base.user_ids.ids.tolist(), base.item_ids.ids.tolist()
    if gone:  # forgotten users leave the id map (their training rows are already empty)
        keep = np.ones(len(base_users), bool)
        keep[gone] = False
        base_users = [x for x, k in zip(base_users, keep.tolist()) if k]
        side_rows_src = None if side_rows_src is None else _keep_side_users(side_rows_src, keep)
    known_users = {id_key(x) for x in base_users}
    new_users = list(dict.fromkeys(u for u in ev_users if id_key(u) not in known_users))
    with_events = {e.item for e in events}
    new_items = [x for x in item_raw[len(base.item_ids) :] if id_key(x) in with_events]
    # one id type per map: ints stay ints until a non-integer id joins them, then every id is its string
    user_ids, as_str_u = _id_map(base_users + new_users)
    item_ids, as_str_i = _id_map(base_items + new_items)
    users = _id_values(frame["user"].tolist() + ev_users, as_str_u)
    items = _id_values(frame["item"].tolist() + ev_items, as_str_i)
    values = np.concatenate([frame["rating"].to_numpy(np.float64), np.array([e.value for e in events], np.float64)])
    timed = base.timestamps is not None or "timestamps" in type(state.model).declaration().fit_inputs
    stamps = _retrain_timestamps(frame, events, state.bundle.created) if timed else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        train = Interactions.from_arrays(
            users,
            items,
            values,
            stamps,
            user_ids=user_ids,
            item_ids=item_ids,
            explicit=base.explicit,
            duplicates="last" if base.explicit else "sum",
        )
    rows = np.asarray([known_items[id_key(x)] for x in item_ids.ids.tolist()], dtype=np.int64)
    new_side = None if side_rows_src is None else _side_for_retrain(side_rows_src, rows, train.n_users)
    if new_side is not None and new_side.social is not None and links:
        new_side.social = _with_links(new_side.social, links, train.user_ids.ids.tolist())
    estimator = state.model.clone(**dict(params or {}))
    new_meta = {k: [col[r] for r in rows] for k, col in meta.items()}
    extra = state.bundle.extra
    decl = type(estimator).declaration()
    new_docs = _documents_for_retrain(decl, documents, rows, n_catalogue)
    raw = {} if new_docs is None else new_docs.fit_kwargs()

    def fit_and_save(path: str | Path) -> Path:
        model = estimator.fit(train, **decl.fit_kwargs(side=new_side, **raw))
        return save_bundle(path, model, train, new_meta, side=new_side, store_seq=upto, extra=extra, documents=new_docs)

    return fit_and_save


def _documents_for_retrain(
    decl: Declaration, documents: ItemDocuments | None, rows: np.ndarray, n_catalogue: int
) -> ItemDocuments | None:
    """The raw content of the retrain's items (``rows`` of the catalogue) for a model that encodes it itself; ``None``
    for the other models.  ``ConfigError`` when the bundle holds none (written before bundles kept it) or it is
    out of step with the catalogue."""
    if not decl.raw_content:
        return None
    if documents is None or documents.empty:
        raise ConfigError(
            f"{decl.name} refits from the items' raw {' and '.join(sorted(decl.raw_content))}, which this bundle "
            "does not hold (it was written before bundles kept them); write it again with `fusionrec train` (or "
            "save_bundle(..., documents=ItemDocuments.of(texts, images))) and serve that one"
        )
    if documents.n_items != n_catalogue:
        raise FusionRecError(
            f"the items' raw content covers {documents.n_items} items but the catalogue holds {n_catalogue}; "
            "restart the service from its bundle"
        )
    return documents.take(rows)


def _retrain_timestamps(frame: Any, events: Sequence[Any], created: float) -> np.ndarray:
    """The timestamps of a retrain's rows: the bundle's training rows then the stored ``events`` (in store order).

    Training rows keep their timestamps (a bundle without them -- written before they were stored -- puts them at
    the time it was written, before every event; their order within a user is then the item order, which is how
    the model was first fitted when its timestamps tied).  Each stored event keeps its time (the client's, else its
    arrival second); a user's events are ordered by (time, arrival), and a time that ties with the user's previous
    event is moved forward by whole seconds, so that the order a time-aware model sees is the order of the events
    (sequential models break ties by item index, which would reorder a burst of events posted within a second).
    """
    if "timestamp" in frame:
        base = frame["timestamp"].to_numpy(np.int64)
    else:
        first = min((int(e.timestamp) for e in events), default=int(created))
        base = np.full(len(frame), min(int(created), first - 1), np.int64)
    ev = np.array([int(e.timestamp) for e in events], np.int64)
    if len(ev):
        owner = np.asarray([str(e.user) for e in events])
        order = np.lexsort((np.arange(len(ev)), ev, owner))  # by user, then time, then arrival
        out = ev.copy()
        prev_user, prev = None, 0
        for j in order.tolist():
            t = int(ev[j])
            if owner[j] == prev_user and t <= prev:
                t = prev + 1
            out[j] = t
            prev_user, prev = owner[j], t
        ev = out
    return np.concatenate([base, ev])


def _id_values(values: list[Any], as_str: bool) -> np.ndarray:
    if as_str:
        return np.asarray([id_key(v) for v in values], dtype=object)
    return np.asarray(values, dtype=np.int64)


def _id_map(values: list[Any]) -> tuple[Any, bool]:
    """An IdMap of ``values`` (unique, in order) and whether it had to become string-typed."""
    from fusionrec.data.idmap import IdMap

    as_str = not all(isinstance(v, int) and not isinstance(v, bool) for v in values)
    return IdMap(_id_values(values, as_str)), as_str
