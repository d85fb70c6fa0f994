"""User placement: histories, friends and fold-in on the served model (one idea of :class:`OnlineModel`).

Users
    A batch of events is stored, then every touched user is placed again with ONE
    ``model.fold_in_user(history, values, user=u)`` (a new user: ``user=None``; many new users at once through
    ``fold_in_users`` when the model declares ``can_batch_fold_in``).  Models that declare no fold-in (TimeSVD++,
    DeepFusion, ensembles) keep scoring known users from their training state, with the new items excluded; their
    new users, and profile-only users (``POST /users``), get popular items matching the profile.
Friends
    ``POST /users`` with ``friends`` stores the user's links to known users (cleaned at the edge:
    :func:`fusionrec.serving.rules.clean_links`; :func:`resolve_friends` maps them to indices, unknown ids refused).
    A model that declares ``uses_friends`` (the social models) places the user with
    ``fold_in_user(history, values, user=row, friends=<model rows>, friend_weights=...)``: with no history the user
    gets its placed friends' weighted mean vector, with a history too the history's fold-in moved towards it
    (:mod:`fusionrec.models.social`), again at each later event (posting links for a user with a history places it
    again as an event does).  A friend's later moves do not re-place the user (only a friend placed for the first
    time does); its next event, links or a retrain do.  A bundle user's links are its training links
    (``side.social``) plus those posted.  Friends the model cannot score yet (profile-only users) are skipped; a
    user with neither a history nor a placed friend gets popular, profile-matching items.  Other models store the
    links (for a retrain, and a later social bundle) and ignore them for scoring.  Forgetting a user drops its links
    both ways and places again the users that linked to it.

Placement works on a copy of the model (:func:`fusionrec.models.declaration.copy_user_state`: the declared per-user
arrays copied, everything else shared) swapped in under the lock, so that readers never see a half-placed user.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from fusionrec.errors import FusionRecError
from fusionrec.serving.catalogue import UnknownUserError
from fusionrec.serving.state import OnlineState

if TYPE_CHECKING:
    from fusionrec.serving.store import Event

__all__ = [
    "APPLY_CHUNK",
    "FOLD_CHUNK",
    "add_user",
    "apply_events",
    "forget_user",
    "friends_of",
    "place_pending",
    "resolve_friends",
    "set_links",
]

log = logging.getLogger(__name__)

#: events bookkept per hold of the state lock (a read waits for one chunk at most)
APPLY_CHUNK = 256
#: new users placed per ``fold_in_users`` call
FOLD_CHUNK = 256
#: rounds of placing users again through friends placed for the first time
MAX_LINK_ROUNDS = 8

Friends = tuple[np.ndarray, np.ndarray]


def add_user(state: OnlineState, raw: Any, attributes: Mapping[str, Any] | None = None) -> int:
    """Create (or update the profile of) a user; returns its index."""
    with state.lock:
        u = state.user_index(raw)
        if u is None:
            u = state.catalogue.add_user(raw)
        if attributes:
            state.catalogue.user_attrs[u] = dict(attributes)
        return u


def forget_user(state: OnlineState, u: int) -> None:
    """Forget user ``u`` (an index) in this process: the model's row through ``model.forget_user`` (the model
    contract: its declared per-user state), the training row and online events, the profile, the user's social links
    and profile features, its share of the popularity counts and the caches derived from them; the raw id is no
    longer looked up.

    The ANN index holds item vectors only (users are never indexed), so it is unchanged.  Aggregates the model
    learned from the user (item factors, item-item weights) keep its contribution until the next retrain, which no
    longer sees the user.  The users who posted links to it lose them and are marked to be placed again
    (:func:`place_pending`).
    """
    with state.lock:
        if u in state.catalogue.forgotten:
            return
        items, _ = state.history_arrays(u)
        row = state.model_row(u)
        if row is not None:
            state.model.forget_user(row)
        if u < state.n_base_users:
            from fusionrec.models.coldstart import append_seen_row

            if state.base_ts is not None:  # the row's timestamps leave with it
                lo, hi = int(state.base_seen.indptr[u]), int(state.base_seen.indptr[u + 1])
                state.base_ts = np.delete(state.base_ts, np.s_[lo:hi])
            state.base_seen = append_seen_row(state.base_seen, np.empty(0, np.int64), np.empty(0), u)
            _forget_side_user(state, u)
        state.seen_extra.pop(u, None)
        state.model_rows.pop(u, None)
        state.links.pop(u, None)
        state.pending.discard(u)
        for v, out in state.links.items():  # placed through the forgotten user: placed again without it
            if out.pop(u, None) is not None:
                state.pending.add(v)
        pop = state.popularity.copy()
        pop[items[items < len(pop)]] -= 1.0
        state.popularity = np.maximum(pop, 0.0)
        state.catalogue.forget_user(u)
        state.aug_cache = None


def _forget_side_user(state: OnlineState, u: int) -> None:
    """Zero bundle user ``u``'s profile features and drop its social links (rows and columns)."""
    side = state.side
    if side is None:
        return
    for name, x in list(side.user_features.items()):
        if u < len(x):
            x = np.array(x, copy=True)
            x[u] = 0
            side.user_features[name] = x
            present = np.array(side.user_present.get(name, np.abs(x).sum(axis=1) > 0), bool, copy=True)
            present[u] = False
            side.user_present[name] = present
    if side.social is not None and u < side.social.shape[0]:
        social = sp.csr_matrix(side.social, copy=True).tolil()
        social[u, :] = 0
        social[:, u] = 0
        side.social = social.tocsr()
        side.social.eliminate_zeros()


def apply_events(state: OnlineState, events: Sequence[Event]) -> None:
    """Fold events (already stored, of known items) in, in batches that never hold up reads for long.

    The histories, new users and popularity are updated under the lock, :data:`APPLY_CHUNK` events per hold (a read
    waits for one chunk at most, well under a millisecond); the touched users are then placed on a working copy of
    the model, outside the lock, and the copy is swapped in under the lock.  Writers are serialised by the caller
    (:class:`~fusionrec.serving.engine.ServingEngine` holds its write lock).
    """
    lookup = state.catalogue.item_lookup
    touched: dict[int, None] = {}
    for lo in range(0, len(events), APPLY_CHUNK):  # the lock is released between chunks: reads slip in
        chunk = events[lo : lo + APPLY_CHUNK]
        with state.lock:
            hits = []
            for e in chunk:
                i = lookup.get(str(e.item))
                if i is None:  # an item another worker added, not replayed here yet
                    log.warning("an event for an unknown item was skipped")
                    continue
                u = state.user_index(e.user)
                if u is None:
                    u = state.catalogue.add_user(e.user)
                state.seen_extra.setdefault(u, {})[i] = float(e.value)
                touched[u] = None
                hits.append(i)
            state.applied_seq = max(state.applied_seq, max(int(e.seq) for e in chunk))
            state.n_events += len(hits)
            state.popularity = state.popularity + np.bincount(
                np.asarray(hits, np.int64), minlength=len(state.popularity)
            ).astype(np.float64)
    _place(state, list(touched))


# ---------------------------------------------------------------------------------------------- social links
def resolve_friends(state: OnlineState, friends: Sequence[tuple[Any, float]]) -> dict[int, float]:
    """Links posted for a user (already cleaned at the edge: :func:`fusionrec.serving.rules.clean_links`) as
    ``{friend index: weight}``; :class:`UnknownUserError` (HTTP 404) names the friends that are not known users."""
    out: dict[int, float] = {}
    unknown: list[Any] = []
    with state.lock:
        for f, w in friends:
            i = state.user_index(f)
            if i is None:
                unknown.append(f)
            else:
                out[i] = float(w)
    if unknown:
        shown = list(dict.fromkeys(str(f) for f in unknown))
        raise UnknownUserError(
            f"{len(shown)} unknown friend(s): {shown[:10]}{' ...' if len(shown) > 10 else ''}; links must point "
            "to known users: create them first (POST /users or POST /events)"
        )
    return out


def set_links(state: OnlineState, u: int, links: Mapping[int, float]) -> bool:
    """Replace user ``u``'s posted links (``{friend index: weight > 0}``, cleaned at the edge); whether they
    changed (the user is then marked to be placed again, :func:`place_pending`)."""
    clean = {int(f): float(w) for f, w in links.items()}
    with state.lock:
        if state.links.get(u, {}) == clean:
            return False
        if clean:
            state.links[u] = clean
        else:
            state.links.pop(u, None)
        state.pending.add(u)
        return True


def friends_of(state: OnlineState, u: int) -> dict[int, float]:
    """User ``u``'s links as ``{friend index: weight}``: its training links (bundle users, ``side.social``, cleaned
    when the bundle was loaded) and the posted ones (the largest weight when both hold a friend), forgotten users
    left out."""
    out: dict[int, float] = {}
    social = None if state.side is None else state.side.social
    if social is not None and u < social.shape[0]:
        row = sp.csr_matrix(social[u])
        out.update(zip(row.indices.tolist(), map(float, row.data.tolist())))
    for f, w in state.links.get(u, {}).items():
        out[f] = max(out.get(f, 0.0), w)
    gone = state.catalogue.forgotten
    return {f: w for f, w in out.items() if f not in gone}


def _model_friends(state: OnlineState, u: int) -> Friends | None:
    """``(model rows, weights)`` of the friends of ``u`` the model can place it by; ``None``: no links."""
    links = friends_of(state, u)
    if not links:
        return None
    pairs = [(state.model_row(f), w) for f, w in links.items()]
    rows = np.asarray([r for r, _ in pairs if r is not None], np.int64)
    weights = np.asarray([w for r, w in pairs if r is not None], np.float64)
    return rows, weights


def place_pending(state: OnlineState) -> None:
    """Place again the users whose links changed (writers only; serialised by the caller)."""
    with state.lock:
        users = sorted(u for u in state.pending if u not in state.catalogue.forgotten)
        state.pending.clear()
    if state.uses_friends:  # other models score no one by links: nothing changed for them
        _place(state, users)


# ---------------------------------------------------------------------------------------------- fold-in
def _place(
    state: OnlineState, users: Sequence[int], done: frozenset[int] | set[int] = frozenset(), depth: int = 0
) -> None:
    """Fold ``users`` in (history, and links when the model uses them) on a working copy swapped in under the
    lock.  A user with neither a history nor a friend the model scores is not placed (popularity and profile); one
    that was placed through links it no longer has loses its model row."""
    if not (state.can_fold and users):
        return
    # only writers change the histories and placements, and they are serialised: read them without the lock
    histories = {u: state.history_arrays(u) for u in users}
    friends = {u: _model_friends(state, u) for u in users} if state.uses_friends else {}
    drop = [u for u in users if not len(histories[u][0]) and not len(_rows_of(friends.get(u)))]
    for u in drop:
        histories.pop(u)
        friends.pop(u, None)
    rows = {u: state.model_row(u) for u in histories}
    work, placed = fold_in_copy(state.model, histories, rows, friends)
    with state.lock:
        for u in drop:  # an online user placed through links it no longer has: back to popularity and profile
            row = state.model_rows.pop(u, None)
            if row is not None:
                work.forget_user(row)
        state.model = work
        state.model_rows.update(placed)
        state.aug_cache = None
        # users linked to someone placed for the first time just now are placed again through them
        later = {v for v, out in state.links.items() if v not in done and not out.keys().isdisjoint(placed)}
    if state.uses_friends and later and depth < MAX_LINK_ROUNDS:
        _place(state, sorted(later), done=done | set(placed), depth=depth + 1)


def fold_in_copy(
    model: Any,
    histories: Mapping[int, tuple[np.ndarray, np.ndarray]],
    rows: Mapping[int, int | None],
    friends: Mapping[int, Friends | None] | None = None,
) -> tuple[Any, dict[int, int]]:
    """A copy of ``model`` (which declares ``can_fold_in``) with the users placed, and the model rows of the new ones.

    ``histories``: each user's ``(items, values)``; ``rows``: its model row, ``None`` for a user the model does not
    know yet; ``friends``: each user's ``(friend model rows, weights)``, passed to ``fold_in_user`` when not
    ``None``.  Users placed again write their rows in place, so the declared per-user arrays are copied first
    (:func:`~fusionrec.models.declaration.copy_user_state`): the readers' arrays stay untouched.
    """
    from fusionrec.models.declaration import copy_user_state

    decl = type(model).declaration()
    n_model = int(model.n_items_)  # proxy items are unknown to the model
    again = [u for u in histories if rows[u] is not None]
    work = copy_user_state(model) if again else _shallow_copy(model)
    placed: dict[int, int] = {}
    links = {u: f for u, f in (friends or {}).items() if f is not None}
    social = [u for u in histories if rows[u] is None and u in links]  # placed one by one, with their links
    new = [u for u in histories if rows[u] is None and u not in links]
    hist = {u: (h[0][h[0] < n_model], h[1][h[0] < n_model]) for u, h in histories.items()}
    if new and decl.can_batch_fold_in:
        try:  # in chunks: a model's compiled solver may hold the GIL for the length of one call
            for lo in range(0, len(new), FOLD_CHUNK):
                part = new[lo : lo + FOLD_CHUNK]
                idx = np.asarray(work.fold_in_users([hist[u] for u in part])).ravel()
                placed.update({u: int(j) for u, j in zip(part, idx)})
            new = []
        except (FusionRecError, ValueError, np.linalg.LinAlgError) as exc:
            log.warning("batch fold-in failed (%s); placing the remaining users one by one", type(exc).__name__)
            new = [u for u in new if u not in placed]
    for u in again + new + social:
        items, values = hist[u]
        extra: dict[str, Any] = {}
        if u in links:
            extra = {"friends": links[u][0], "friend_weights": links[u][1]}
        try:
            out = work.fold_in_user(items, values, user=rows[u], **extra)
        except (FusionRecError, ValueError, np.linalg.LinAlgError) as exc:
            log.warning("fold-in of a user failed (%s); it keeps its previous placement", type(exc).__name__)
            continue
        if rows[u] is None:
            placed[u] = int(np.asarray(out).ravel()[0])
    return work, placed


def _shallow_copy(model: Any) -> Any:
    import copy

    return copy.copy(model)


def _rows_of(friends: Friends | None) -> np.ndarray:
    return np.empty(0, np.int64) if friends is None else friends[0]
