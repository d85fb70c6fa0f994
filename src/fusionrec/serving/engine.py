"""The serving engine: a thin edge over the model contract.

Serving never inspects model attributes.  It holds an in-memory copy of the bundle's model (mutating it is fine;
the bundle on disk is never touched) and uses only the contracts of :mod:`fusionrec.models.coldstart` and
:mod:`fusionrec.models.factors`:

Users
    A batch of events is stored, then every touched user is placed again with ONE
    ``model.fold_in_user(history, values, user=u)`` (a new user: ``user=None``).  Models without a fold-in
    (TimeSVD++, DeepFusion, ensembles) keep scoring known users from their training state, with the new items
    excluded; their new users, and profile-only users (``POST /users``), get popular items matching the profile.
Friends
    ``POST /users`` with ``friends`` stores the user's links to known users (:meth:`OnlineModel.resolve_friends`:
    unknown ids refused, self-links and zero weights dropped, duplicates merged keeping the largest weight).  A
    model that declares ``uses_friends`` (the social models) places the user with
    ``fold_in_user(history, values, user=row, friends=<model rows>, friend_weights=...)``: with no history the
    user gets its placed friends' weighted mean vector, with a history too the history's fold-in moved towards it
    (:mod:`fusionrec.models.social`), again at each later event (posting links for a user with a history places
    it again as an event does).  A friend's later moves do not re-place the user (only a friend placed for the
    first time does); its next event, links or a retrain do.  A bundle user's links are its training links
    (``side.social``) plus those posted.  Friends the model cannot score yet (profile-only users) are skipped; a
    user with neither a history nor a placed friend gets popular, profile-matching items.  Other models store the
    links (for a retrain, and a later social bundle) and ignore them for scoring.  Forgetting a user drops its
    links both ways and places again the users that linked to it.
New items
    Content models (``add_items``) are given the item's content encoded with the bundle's fitted encoders
    (``side.encode_items``); factor models (``add_item_vectors``) get the weighted mean vector of the item's ``m``
    nearest items by content (side features, or posted text vs the titles); other models score the item as the
    weighted mean of its neighbours' scores.  The side information grows with every item (``side.append_items``)
    so that a retrain still sees the content.
Top-k
    ``model.recommend(u, k, seen=<the user's history>)`` (the library's one top-k and tie rule), or an ANN index
    over ``Factors.augmented()`` item vectors for large catalogues.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from fusionrec._ranking import topk
from fusionrec.errors import ConfigError, DataError, FusionRecError
from fusionrec.serving.catalogue import Catalogue, UnknownItemError, UnknownUserError, meta_text

if TYPE_CHECKING:
    from fusionrec.data.side import SideInfo
    from fusionrec.serving.bundle import Bundle
    from fusionrec.serving.store import Event, EventStore

__all__ = [
    "OnlineModel",
    "RetrainError",
    "ServingEngine",
    "UnknownItemError",
    "UnknownUserError",
    "replay",
    "retrain_bundle",
]

log = logging.getLogger(__name__)

#: content neighbours averaged to place a new item
N_NEIGHBOURS = 10
#: events bookkept per hold of the state lock (a read waits for one chunk at most)
APPLY_CHUNK = 256
#: new users placed per ``fold_in_users`` call
FOLD_CHUNK = 256
#: the largest implicit-feedback weight an event may carry (sums of many stay finite in float32)
MAX_IMPLICIT_VALUE = 1e6
#: keys of a stored item's meta that hold what was posted besides display metadata
CONTENT_KEY, TEXT_KEY = "_content", "_text"


class RetrainError(FusionRecError):
    """A retrain could not start (its data fail validation) or failed; the reason is in the message."""


def _hash_text(texts: Sequence[str], n_features: int = 2**16) -> sp.csr_matrix:
    from sklearn.feature_extraction.text import HashingVectorizer

    vec = HashingVectorizer(n_features=n_features, ngram_range=(1, 2), alternate_sign=False, norm="l2")
    return vec.transform([t or "" for t in texts]).tocsr()


def _nearest(sims: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    idx, val = topk(sims[None, :], m)
    keep = np.isfinite(val[0]) & (val[0] > 0)
    return idx[0][keep], val[0][keep].astype(np.float64)


def _any_content(rows: Mapping[str, np.ndarray]) -> bool:
    return any(np.abs(np.asarray(r)).sum() > 0 for r in rows.values())


class OnlineModel:
    """A bundle plus everything learned since: new users, new items, folded-in events, profiles.

    Thread-safe: mutations hold ``lock``; readers take short consistent snapshots under it.
    """

    def __init__(self, bundle: Bundle, *, index: str = "auto", ann_threshold: int = 50_000) -> None:
        from fusionrec.models.coldstart import ItemColdStart, UserColdStart
        from fusionrec.models.factors import FactorModel

        self.bundle = bundle
        self.model = bundle.model
        self.side: SideInfo | None = bundle.side
        self.lock = threading.RLock()
        self.catalogue = Catalogue(bundle.user_ids, bundle.item_ids, bundle.item_meta)
        self.explicit = bool(getattr(self.model, "predicts_ratings", False))
        # the training rows, copied: fold-ins replace rows of the model's own seen_
        self.base_seen: sp.csr_matrix = sp.csr_matrix(self.model.seen_, copy=True)
        self.seen_extra: dict[int, dict[int, float]] = {}
        self.model_rows: dict[int, int] = {}  # online users -> model row (users placed by fold-in)
        self.links: dict[int, dict[int, float]] = {}  # posted social links: user -> {friend: weight} (indices)
        self.pending: set[int] = set()  # users to place again (their links changed): place_pending()
        self.popularity = np.bincount(self.base_seen.indices, minlength=self.n_base_items).astype(np.float64)
        self.proxies: list[tuple[np.ndarray, np.ndarray]] = []  # new items of models that cannot add items
        self.applied_seq = int(bundle.store_seq)
        self.forget_seq = 0  # tombstones of forgotten users applied (EventStore.forgotten_since)
        self.n_events = 0
        self.is_factor = isinstance(self.model, FactorModel)
        self.can_fold = isinstance(self.model, UserColdStart)
        #: the model places users through their links (declared: ``Recommender.uses_friends``)
        self.uses_friends = self.can_fold and bool(type(self.model).uses_friends)
        self.can_add_content = (
            isinstance(self.model, ItemColdStart) and self.side is not None and bool(self.side.item_features)
        )
        self._aug: tuple[np.ndarray, np.ndarray] | None = None
        self._content: np.ndarray | None = None
        self._text_index: sp.csr_matrix | None = None
        self._seen_csc: sp.csc_matrix | None = None
        self.index: Any = None
        if self.is_factor and (index == "ann" or (index == "auto" and self.n_items >= ann_threshold)):
            from fusionrec.serving.index import build_index

            self.index = build_index(self.augmented()[1], "ann", ann_threshold=ann_threshold)

    # ---------------------------------------------------------------- catalogue shortcuts
    @property
    def n_users(self) -> int:
        return self.catalogue.n_users

    @property
    def n_items(self) -> int:
        return self.catalogue.n_items

    @property
    def n_base_users(self) -> int:
        return self.catalogue.n_base_users

    @property
    def n_base_items(self) -> int:
        return self.catalogue.n_base_items

    @property
    def user_raw(self) -> list[Any]:
        return self.catalogue.user_raw

    @property
    def item_raw(self) -> list[Any]:
        return self.catalogue.item_raw

    @property
    def item_meta(self) -> dict[str, list[Any]]:
        return self.catalogue.item_meta

    @property
    def user_attrs(self) -> dict[int, dict[str, Any]]:
        return self.catalogue.user_attrs

    @property
    def index_kind(self) -> str:
        """``faiss-...`` (ANN), ``exact`` (the model's factors, exact top-k) or ``model-scores``."""
        if self.index is not None:
            return str(self.index.kind)
        return "exact" if self.is_factor else "model-scores"

    def user_index(self, raw: Any) -> int | None:
        return self.catalogue.user_index(raw)

    def item_index(self, raw: Any) -> int | None:
        return self.catalogue.item_index(raw)

    def require_user(self, raw: Any) -> int:
        return self.catalogue.require_user(raw)

    def require_items(self, raws: Sequence[Any]) -> np.ndarray:
        return self.catalogue.require_items(raws)

    def model_row(self, u: int) -> int | None:
        """The model's row of user ``u`` (``None``: the model does not know the user)."""
        return u if u < self.n_base_users else self.model_rows.get(u)

    def augmented(self) -> tuple[np.ndarray, np.ndarray]:
        """``Factors.augmented()`` of the served model (cached until the next fold-in or new item)."""
        if self._aug is None:
            self._aug = self.model.factors().augmented()  # type: ignore[attr-defined]
        return self._aug

    def value_domain(self) -> tuple[float, float]:
        """The event values the model accepts: the training rating range (explicit models), else
        ``[0, MAX_IMPLICIT_VALUE]``."""
        data = self.base_seen.data
        if self.explicit and data.size:
            return float(data.min()), float(data.max())
        return 0.0, MAX_IMPLICIT_VALUE

    def check_values(self, values: Sequence[float]) -> None:
        """``ConfigError`` (HTTP 422) unless every value is finite and within :meth:`value_domain`."""
        v = np.asarray(values, np.float64)
        lo, hi = self.value_domain()
        bad = ~(np.isfinite(v) & (v >= lo) & (v <= hi))
        if bad.any():
            what = "ratings" if self.explicit else "implicit-feedback weights"
            raise ConfigError(
                f"{int(bad.sum())} event value(s) out of range, e.g. {float(v[bad][0])!r}: {what} of this model lie "
                f"in [{lo:g}, {hi:g}]"
            )

    # ---------------------------------------------------------------- users
    def add_user(self, raw: Any, attributes: Mapping[str, Any] | None = None) -> int:
        """Create (or update the profile of) a user; returns its index."""
        with self.lock:
            u = self.user_index(raw)
            if u is None:
                u = self.catalogue.add_user(raw)
            if attributes:
                self.catalogue.user_attrs[u] = dict(attributes)
            return u

    def forget_user(self, u: int) -> None:
        """Forget user ``u`` (an index) in this process: the model's row through ``model.forget_user`` (the model
        contract), the training row and online events, the profile, the user's social links and profile features,
        its share of the popularity counts and the caches derived from them; the raw id is no longer looked up.

        The ANN index holds item vectors only (users are never indexed), so it is unchanged.  Aggregates the
        model learned from the user (item factors, item-item weights) keep its contribution until the next
        retrain, which no longer sees the user.  The users who posted links to it lose them and are marked to be
        placed again (:meth:`place_pending`).
        """
        with self.lock:
            if u in self.catalogue.forgotten:
                return
            items, _ = self.history_arrays(u)
            row = self.model_row(u)
            if row is not None:
                self.model.forget_user(row)
            if u < self.n_base_users:
                from fusionrec.models.coldstart import append_seen_row

                self.base_seen = append_seen_row(self.base_seen, np.empty(0, np.int64), np.empty(0), u)
                self._forget_side_user(u)
            self.seen_extra.pop(u, None)
            self.model_rows.pop(u, None)
            self.links.pop(u, None)
            self.pending.discard(u)
            for v, out in self.links.items():  # placed through the forgotten user: placed again without it
                if out.pop(u, None) is not None:
                    self.pending.add(v)
            pop = self.popularity.copy()
            pop[items[items < len(pop)]] -= 1.0
            self.popularity = np.maximum(pop, 0.0)
            self.catalogue.forget_user(u)
            self._aug = self._seen_csc = None

    def _forget_side_user(self, u: int) -> None:
        """Zero bundle user ``u``'s profile features and drop its social links (rows and columns)."""
        side = self.side
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

    def apply_events(self, events: Sequence[Event]) -> None:
        """Fold events (already stored) in, in batches that never hold up reads for long.

        The histories, new users and popularity are updated under the lock, :data:`APPLY_CHUNK` events per hold
        (a read waits for one chunk at most, well under a millisecond); the touched
        users are then placed on a working copy of the model, outside the lock (new users together through the
        model's ``fold_in_users`` when it has one, else one ``fold_in_user`` each), and the copy is swapped in under
        the lock.  Writers are serialised by the caller (:class:`ServingEngine` holds its write lock).
        """
        lookup = self.catalogue.item_lookup
        touched: dict[int, None] = {}
        for lo in range(0, len(events), APPLY_CHUNK):  # the lock is released between chunks: reads slip in
            chunk = events[lo : lo + APPLY_CHUNK]
            with self.lock:
                hits = []
                for e in chunk:
                    i = lookup.get(str(e.item))
                    if i is None:
                        log.warning("an event for an unknown item was skipped")
                        continue
                    u = self.user_index(e.user)
                    if u is None:
                        u = self.catalogue.add_user(e.user)
                    self.seen_extra.setdefault(u, {})[i] = float(e.value)
                    touched[u] = None
                    hits.append(i)
                self.applied_seq = max(self.applied_seq, max(int(e.seq) for e in chunk))
                self.n_events += len(hits)
                self.popularity = self.popularity + np.bincount(
                    np.asarray(hits, np.int64), minlength=len(self.popularity)
                ).astype(np.float64)
        self._place(list(touched))

    # ---------------------------------------------------------------- social links
    def resolve_friends(self, raw: Any, friends: Sequence[tuple[Any, float]]) -> dict[int, float]:
        """Links posted for user ``raw`` as ``{friend index: weight}`` by the social models' rule
        (:func:`fusionrec.models.coldstart.check_friends`): a link to the user itself and zero weights are
        dropped, duplicates merged keeping the largest weight.

        Raises :class:`ConfigError` (HTTP 422) for a negative or non-finite weight and :class:`UnknownUserError`
        (HTTP 404) naming the friends that are not known users."""
        out: dict[int, float] = {}
        unknown: list[Any] = []
        with self.lock:
            for f, w in friends:
                w = float(w)
                if not (np.isfinite(w) and w >= 0):
                    raise ConfigError(f"friend weights must be finite and >= 0 (distrust is not modelled), got {w!r}")
                if str(f) == str(raw):
                    continue
                i = self.user_index(f)
                if i is None:
                    unknown.append(f)
                elif w > 0:
                    out[i] = max(out.get(i, 0.0), w)
        if unknown:
            shown = list(dict.fromkeys(str(f) for f in unknown))
            raise UnknownUserError(
                f"{len(shown)} unknown friend(s): {shown[:10]}{' ...' if len(shown) > 10 else ''}; links must point "
                "to known users: create them first (POST /users or POST /events)"
            )
        return out

    def set_links(self, u: int, links: Mapping[int, float]) -> bool:
        """Replace user ``u``'s posted links (``{friend index: weight > 0}``); whether they changed (the user is
        then marked to be placed again, :meth:`place_pending`)."""
        clean = {int(f): float(w) for f, w in links.items() if int(f) != u and w > 0}
        with self.lock:
            if self.links.get(u, {}) == clean:
                return False
            if clean:
                self.links[u] = clean
            else:
                self.links.pop(u, None)
            self.pending.add(u)
            return True

    def friends_of(self, u: int) -> dict[int, float]:
        """User ``u``'s links as ``{friend index: weight}``: its training links (bundle users, ``side.social``)
        and the posted ones (the largest weight when both hold a friend), forgotten users left out."""
        out: dict[int, float] = {}
        social = None if self.side is None else self.side.social
        if social is not None and u < social.shape[0]:
            row = sp.csr_matrix(social[u])
            for f, w in zip(row.indices.tolist(), row.data.tolist()):
                if f != u and w > 0:
                    out[f] = max(out.get(f, 0.0), float(w))
        for f, w in self.links.get(u, {}).items():
            out[f] = max(out.get(f, 0.0), w)
        gone = self.catalogue.forgotten
        return {f: w for f, w in out.items() if f not in gone}

    def _model_friends(self, u: int) -> tuple[np.ndarray, np.ndarray] | None:
        """``(model rows, weights)`` of the friends of ``u`` the model can place it by; ``None``: no links."""
        links = self.friends_of(u)
        if not links:
            return None
        pairs = [(self.model_row(f), w) for f, w in links.items()]
        rows = np.asarray([r for r, _ in pairs if r is not None], np.int64)
        weights = np.asarray([w for r, w in pairs if r is not None], np.float64)
        return rows, weights

    def place_pending(self) -> None:
        """Place again the users whose links changed (writers only; serialised by the caller)."""
        with self.lock:
            users = sorted(u for u in self.pending if u not in self.catalogue.forgotten)
            self.pending.clear()
        if self.uses_friends:  # other models score no one by links: nothing changed for them
            self._place(users)

    def _place(self, users: Sequence[int], _done: frozenset[int] | set[int] = frozenset(), _depth: int = 0) -> None:
        """Fold ``users`` in (history, and links when the model uses them) on a working copy swapped in under the
        lock.  A user with neither a history nor a friend the model scores is not placed (popularity and profile);
        one that was placed through links it no longer has loses its model row."""
        if not (self.can_fold and users):
            return
        # only writers change the histories and placements, and they are serialised: read them without the lock
        histories = {u: self.history_arrays(u) for u in users}
        friends = {u: self._model_friends(u) for u in users} if self.uses_friends else {}
        drop = [u for u in users if not len(histories[u][0]) and not len(_rows_of(friends.get(u)))]
        for u in drop:
            histories.pop(u)
            friends.pop(u, None)
        rows = {u: self.model_row(u) for u in histories}
        work, placed = self._fold_in_copy(histories, rows, friends)
        with self.lock:
            for u in drop:  # an online user placed through links it no longer has: back to popularity and profile
                row = self.model_rows.pop(u, None)
                if row is not None:
                    work.forget_user(row)
            self.model = work
            self.model_rows.update(placed)
            self._aug = None
            # users linked to someone placed for the first time just now are placed again through them
            later = {v for v, out in self.links.items() if v not in _done and not out.keys().isdisjoint(placed)}
        if self.uses_friends and later and _depth < 8:
            self._place(sorted(later), _done=_done | set(placed), _depth=_depth + 1)

    def _fold_in_copy(
        self,
        histories: Mapping[int, tuple[np.ndarray, np.ndarray]],
        rows: Mapping[int, int | None],
        friends: Mapping[int, tuple[np.ndarray, np.ndarray] | None] | None = None,
    ) -> tuple[Any, dict[int, int]]:
        """A copy of the model with the users placed, and the model rows of the new ones (``friends``: each
        user's ``(friend model rows, weights)``, passed to ``fold_in_user`` when not ``None``)."""
        import copy

        model = self.model
        work = copy.copy(model)
        n_model = int(model.n_items_)  # proxy items are unknown to the model
        again = [u for u in histories if rows[u] is not None]
        if again:  # fold_in_user(user=row) writes rows in place: the readers' arrays stay untouched
            n = int(model.n_users_)
            for name, value in list(vars(work).items()):
                if isinstance(value, np.ndarray) and value.ndim >= 1 and value.shape[0] == n:
                    setattr(work, name, value.copy())
        placed: dict[int, int] = {}
        links = {u: f for u, f in (friends or {}).items() if f is not None}
        social = [u for u in histories if rows[u] is None and u in links]  # placed one by one, with their links
        new = [u for u in histories if rows[u] is None and u not in links]
        hist = {u: (h[0][h[0] < n_model], h[1][h[0] < n_model]) for u, h in histories.items()}
        batch = getattr(work, "fold_in_users", None)
        if new and callable(batch):
            try:  # in chunks: a model's compiled solver may hold the GIL for the length of one call
                for lo in range(0, len(new), FOLD_CHUNK):
                    part = new[lo : lo + FOLD_CHUNK]
                    idx = np.asarray(batch([hist[u] for u in part])).ravel()
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
                out = work.fold_in_user(items, values, user=rows[u], **extra)  # type: ignore[attr-defined]
            except (FusionRecError, ValueError, np.linalg.LinAlgError) as exc:
                log.warning("fold-in of a user failed (%s); it keeps its previous placement", type(exc).__name__)
                continue
            if rows[u] is None:
                placed[u] = int(np.asarray(out).ravel()[0])
        return work, placed

    # ---------------------------------------------------------------- items
    def add_item(
        self,
        raw: Any,
        meta: Mapping[str, Any] | None = None,
        features: Sequence[float] | None = None,
        text: str | None = None,
        content: Mapping[str, Any] | None = None,
        *,
        rows: Mapping[str, np.ndarray] | None = None,
    ) -> int:
        """Make a new item recommendable at once, placed by its content (module notes); returns its index.

        ``content`` maps the bundle's item modality names to raw values (text, labels, an image path), encoded
        with the bundle's fitted encoders; ``features`` is a dense vector for the bundle's ``"features"``
        modality; ``text`` is matched against the catalogue's titles when there is no side information.
        ``rows`` are the already encoded content (:meth:`encode_content`), which then is not encoded again.
        """
        with self.lock:
            known = self.item_index(raw)
            if known is not None:
                self.catalogue.set_meta(known, meta or {})
                return known
            rows = dict(rows) if rows is not None else self.encode_content(content, features)
            nbrs, weights = self._neighbours(rows, text or meta_text(meta))
            expected = self.n_items
            if self.can_add_content and (_any_content(rows) or not self.is_factor):
                assert self.side is not None
                used = self._model_item_modalities()
                given = {k: v for k, v in rows.items() if k in used}
                if not given:  # no content at all: one all-zero (missing) row, imputed by the model
                    name = used[0]
                    d = np.asarray(self.side.item_features[name]).shape[1]
                    given = {name: np.zeros((1, d), np.float32)}
                placed = self.model.add_items(given)  # type: ignore[attr-defined]
            elif self.is_factor:
                f = self.model.factors()  # type: ignore[attr-defined]
                vec = _average(f.item, nbrs, weights)
                bias = None if f.item_bias is None else np.array([_average(f.item_bias[:, None], nbrs, weights)[0]])
                placed = self.model.add_item_vectors(vec[None, :], bias)  # type: ignore[attr-defined]
            else:
                placed = None
                self.proxies.append((nbrs, weights))
            if placed is not None and int(np.asarray(placed).ravel()[0]) != expected:
                raise FusionRecError(
                    f"the model placed the new item at index {int(np.asarray(placed).ravel()[0])}, serving expected "
                    f"{expected}; retrain the bundle (POST /admin/retrain) and restart"
                )
            i = self.catalogue.add_item(raw, meta)
            if self.side is not None and self.side.item_features:
                self.side.append_items({k: v for k, v in rows.items() if k in self.side.item_features}, 1)
            self.popularity = np.append(self.popularity, 0.0)
            self._aug = self._content = None
            if self.index is not None:
                self.index.add(self.augmented()[1][i : i + 1])
            return i

    def _model_item_modalities(self) -> list[str]:
        """The side modalities the model was fitted with: its ``modalities`` / ``item_features`` hyper-parameter
        when set (a subset), else all of them (the models' default)."""
        assert self.side is not None
        params = self.model.get_params()
        for key in ("modalities", "item_features", "item_modalities"):
            value = params.get(key)
            if isinstance(value, list | tuple) and value:
                names = [str(v) for v in value if str(v) in self.side.item_features]
                if names:
                    return names
        return sorted(self.side.item_features)

    def encode_content(
        self, content: Mapping[str, Any] | None, features: Sequence[float] | None = None
    ) -> dict[str, np.ndarray]:
        """One new item's raw content as ``{modality: float32 [1, d]}`` with the bundle's fitted encoders
        (``ConfigError`` for unknown modalities or wrong sizes)."""
        from fusionrec.serving.bundle import DENSE_MODALITY

        side = self.side
        raw = {k: [v] for k, v in (content or {}).items() if v is not None}
        both = features is not None and DENSE_MODALITY in raw
        shadowed = {DENSE_MODALITY: raw[DENSE_MODALITY]} if both else None
        if features is not None:  # 'features' wins over content['features'] (which is still checked below)
            raw[DENSE_MODALITY] = [list(features)]
        if not raw:
            return {}
        if side is None or not side.item_features:
            raise ConfigError(
                "this bundle holds no item side information, so content cannot be encoded; post title/text instead "
                "or train the bundle with item content"
            )
        try:
            if shadowed is not None:
                side.encode_items(shadowed)
            return side.encode_items(raw)
        except DataError as exc:
            raise ConfigError(str(exc)) from exc

    def _neighbours(self, rows: Mapping[str, np.ndarray], text: str) -> tuple[np.ndarray, np.ndarray]:
        """The nearest existing items by content, with their (positive) similarities as weights."""
        n_model = min(self.n_items, int(self.model.n_items_))  # neighbours the model can score
        names = [k for k, r in rows.items() if np.abs(r).sum() > 0]
        side = self.side
        if names and side is not None:
            from fusionrec.data.side import fuse_modalities

            catalogue, _, _ = fuse_modalities(side.item_features, names, present=side.item_present)
            new, _, _ = fuse_modalities(rows, names)
            sims = catalogue[:n_model] @ new[0]
            return _nearest(sims, N_NEIGHBOURS)
        titles = self.bundle.item_meta.get("title")
        if text and titles:
            if self._text_index is None:
                genres = self.bundle.item_meta.get("genres")
                docs = [f"{t} {' '.join(genres[j]) if genres else ''}" for j, t in enumerate(titles)]
                self._text_index = _hash_text(docs)
            sims = (self._text_index @ _hash_text([text]).T).toarray().ravel()
            return _nearest(sims[:n_model], N_NEIGHBOURS)
        return np.empty(0, np.int64), np.empty(0)

    # ---------------------------------------------------------------- reading
    def history_arrays(self, u: int) -> tuple[np.ndarray, np.ndarray]:
        """Item indices and values of user ``u`` (training row then online events, later values win)."""
        merged: dict[int, float] = {}
        if u < self.base_seen.shape[0]:
            lo, hi = self.base_seen.indptr[u], self.base_seen.indptr[u + 1]
            merged.update(zip(self.base_seen.indices[lo:hi].tolist(), self.base_seen.data[lo:hi].tolist()))
        merged.update(self.seen_extra.get(u, {}))
        items = np.fromiter(merged.keys(), dtype=np.int64, count=len(merged))
        return items, np.fromiter(merged.values(), dtype=np.float64, count=len(merged))

    def has_vector(self, u: int) -> bool:
        """Whether the model scores user ``u`` itself (else: popularity and profile)."""
        return self.model_row(u) is not None

    def filter_items(self, filters: Mapping[str, str]) -> np.ndarray:
        return self.catalogue.filter_items(filters)

    def scores(self, u: int, items: np.ndarray | None = None) -> np.ndarray:
        """Scores of ``items`` (all when None) for user ``u`` under the current state."""
        row = self.model_row(u)
        if row is not None:
            base = np.asarray(self.model.score(np.array([row])), np.float32)[0]
            full = self._extend_scores(base)
        else:
            full = self.catalogue.profile_scores(u, self.popularity)
        return full if items is None else full[items]

    def _extend_scores(self, base: np.ndarray) -> np.ndarray:
        if not self.proxies:
            return base
        extra = np.array(
            [float(base[n] @ w / w.sum()) if len(n) else float(base.mean()) for n, w in self.proxies], np.float32
        )
        return np.concatenate([base, extra])

    def _seen_matrix(self, row: int, items: np.ndarray) -> sp.csr_matrix:
        """A CSR whose row ``row`` holds ``items`` (the rows before it empty): ``seen=`` of ``model.recommend``."""
        indptr = np.zeros(row + 2, dtype=np.int64)
        indptr[-1] = len(items)
        data = np.ones(len(items), np.float32)
        return sp.csr_matrix((data, np.sort(items).astype(np.int32), indptr), shape=(row + 1, self.n_items))

    def recommend(
        self,
        user: Any,
        k: int,
        *,
        exclude_seen: bool = True,
        candidates: Sequence[Any] | None = None,
        filters: Mapping[str, str] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item indices and scores for a raw user id (shorter when fewer items qualify)."""
        with self.lock:
            u = self.require_user(user)
            cand = None if candidates is None else np.unique(self.require_items(candidates))
            if filters:
                f = self.filter_items(filters)
                cand = f if cand is None else np.intersect1d(cand, f)
            if cand is not None and len(cand) == 0:
                return np.empty(0, np.int64), np.empty(0, np.float32)
            excluded = self.history_arrays(u)[0] if exclude_seen else np.empty(0, np.int64)
            row = self.model_row(u)
            if row is not None and not self.proxies:
                if cand is None and self.index is not None:
                    return self._search(row, k, excluded)
                idx, val = self.model.recommend(
                    row, k, exclude_seen=exclude_seen, candidates=cand, seen=self._seen_matrix(row, excluded)
                )
                keep = idx[0] >= 0
                return idx[0][keep], val[0][keep]
            s = self.scores(u)
            s[excluded] = -np.inf
            if cand is not None:
                s = s[cand]
        idx, val = topk(s, k)
        keep = np.isfinite(val[0])
        idx, val = idx[0][keep], val[0][keep]
        return (idx if cand is None else cand[idx]), val

    def group_column(self) -> str | None:
        """The item labels re-ranking uses as groups: ``genres`` when the catalogue has it, else the first
        multi-label metadata column, else ``None``."""
        meta = self.item_meta
        if "genres" in meta:
            return "genres"
        return next((key for key, col in meta.items() if col and isinstance(col[0], list)), None)

    def rerank(
        self, user: Any, idx: np.ndarray, scores: np.ndarray, k: int, spec: Mapping[str, Any]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Re-rank a user's candidates (``idx`` / ``scores``, e.g. a deeper :meth:`recommend`) to ``k`` by a
        :func:`fusionrec.rerank.from_spec` spec: the catalogue's labels (:meth:`group_column`) are the groups, the
        user's history the calibration target, the model's item vectors (else content, else the labels) MMR's."""
        from fusionrec.rerank import from_spec, groups_from_labels

        with self.lock:
            u = self.require_user(user)
            col = self.group_column()
            groups, names = groups_from_labels(self.item_meta[col]) if col is not None else (None, None)
            seen = self.history_arrays(u)[0]
            history = sp.csr_matrix(
                (np.ones(len(seen)), (np.zeros(len(seen), np.int64), seen)), shape=(1, self.n_items)
            )
            vectors = self._item_vectors() if "diversify" in spec else None
        if vectors is None or len(vectors) != self.n_items:
            vectors = groups
        reranker = from_spec(spec, item_groups=groups, item_vectors=vectors, history=history, group_names=names)
        items, out = reranker.rerank(np.zeros(1, np.int64), np.asarray(idx)[None, :], np.asarray(scores)[None, :], k)
        keep = items[0] >= 0
        return items[0][keep], out[0][keep]

    def _search(self, row: int, k: int, excluded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        users, _ = self.augmented()
        want = min(self.n_items, k + len(excluded))
        ids, vals = self.index.search(users[row][None, :], want)
        ids, vals = ids[0], vals[0]
        keep = (ids >= 0) & np.isfinite(vals) & ~np.isin(ids, excluded)
        return ids[keep][:k], vals[keep][:k]

    def similar(self, item: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Most similar items: cosine of the model's item vectors, else of content, else co-occurrence."""
        with self.lock:
            i = int(self.require_items([item])[0])
            sims = self.item_similarity(i)
        sims[i] = -np.inf
        idx, val = topk(sims, k)
        keep = np.isfinite(val[0])
        return idx[0][keep], val[0][keep]

    def _item_vectors(self) -> np.ndarray | None:
        if self.is_factor:
            item = self.model.factors().item  # type: ignore[attr-defined]
            if item.shape[1] > 0:
                return np.asarray(item)
        try:
            emb = self.model.item_embeddings()
        except NotImplementedError:
            emb = None
        if emb is not None and len(emb) == self.n_items:
            return np.asarray(emb)
        return self.content_matrix()

    def content_matrix(self) -> np.ndarray | None:
        """The fused (L2-normalised per modality) item content aligned with the catalogue, or ``None``."""
        side = self.side
        if side is None or not side.item_features or side.n_items != self.n_items:
            return None
        if self._content is None:
            from fusionrec.data.side import fuse_modalities

            self._content = fuse_modalities(side.item_features, list(side.item_features), present=side.item_present)[0]
        return self._content

    def item_similarity(self, i: int, others: np.ndarray | None = None) -> np.ndarray:
        """Cosine similarity of item ``i`` to ``others`` (all items when None)."""
        vecs = self._item_vectors()
        if vecs is not None:
            rows = vecs if others is None else vecs[others]
            norms = np.linalg.norm(rows, axis=1) * max(float(np.linalg.norm(vecs[i])), 1e-12)
            return (rows @ vecs[i] / np.maximum(norms, 1e-12)).astype(np.float32)
        if self._seen_csc is None:
            binary = self.base_seen.copy()
            binary.data = np.ones_like(binary.data)
            self._seen_csc = binary.tocsc()
        csc = self._seen_csc
        full = np.zeros(self.n_items, np.float32)
        if i < self.n_base_items:
            col = csc[:, i]
            co = np.asarray((csc.T @ col).todense()).ravel()
            counts = np.asarray(csc.sum(axis=0)).ravel()
            full[: self.n_base_items] = co / np.maximum(np.sqrt(counts * max(1.0, float(counts[i]))), 1e-12)
        elif i - self.n_base_items < len(self.proxies):
            n, w = self.proxies[i - self.n_base_items]
            full[n] = w
        return full if others is None else full[others]

    def explain(self, user: Any, item: Any, n: int = 5) -> dict[str, Any]:
        """Why ``item`` for ``user`` (see :func:`fusionrec.serving.explain.explain`)."""
        from fusionrec.serving.explain import explain

        with self.lock:
            return explain(self, self.require_user(user), int(self.require_items([item])[0]), n)

    def train_interactions(self) -> Any:
        """The bundle's training data (its seen matrix over its id maps)."""
        from fusionrec.data.interactions import Interactions

        return Interactions(self.base_seen, self.bundle.user_ids, self.bundle.item_ids, None, self.explicit)


def _rows_of(friends: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    return np.empty(0, np.int64) if friends is None else friends[0]


def _average(vecs: np.ndarray, nbrs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The ``weights``-weighted mean of rows ``nbrs`` of ``vecs`` (all rows' mean without neighbours)."""
    vecs = np.asarray(vecs, np.float64)
    if len(nbrs) == 0:
        return vecs.mean(axis=0).astype(np.float32)
    w = np.asarray(weights, np.float64)
    return (w @ vecs[nbrs] / w.sum()).astype(np.float32)


# ------------------------------------------------------------------------------------------ replay, retrain
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
            after = None if raw is None else latest.get(user_key(str(raw)))
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
    """``social`` (users x users) with the posted ``links`` (:class:`~fusionrec.serving.store.StoredLink`) between
    users of ``user_ids`` added, the largest weight where both hold a pair."""
    index = {str(x): i for i, x in enumerate(user_ids)}
    pairs = [(index[x.user], index[x.friend], x.weight) for x in links if x.user in index and x.friend in index]
    s = sp.csr_matrix(social)
    pairs = [(r, c, w) for r, c, w in pairs if r != c and w > 0]
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
    events = [e for e in store.events_since(state.bundle.store_seq) if e.seq <= upto]
    links = store.links()
    known_items = {str(x): i for i, x in enumerate(item_raw)}
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
    new_users = list(dict.fromkeys(u for u in ev_users if str(u) not in {str(x) for x in base_users}))
    with_events = {e.item for e in events}
    new_items = [x for x in item_raw[len(base.item_ids) :] if str(x) in with_events]
    # one id type per map: ints stay ints until a non-integer id joins them, then every id is its string
    user_ids, as_str_u = _id_map(base_users + new_users)
    item_ids, as_str_i = _id_map(base_items + new_items)
    users = _id_values(frame["user"].tolist() + ev_users, as_str_u)
    items = _id_values(frame["item"].tolist() + ev_items, as_str_i)
    values = np.concatenate([frame["rating"].to_numpy(np.float64), np.array([e.value for e in events], np.float64)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        train = Interactions.from_arrays(
            users,
            items,
            values,
            user_ids=user_ids,
            item_ids=item_ids,
            explicit=base.explicit,
            duplicates="last" if base.explicit else "sum",
        )
    rows = np.asarray([known_items[str(x)] for x in item_ids.ids.tolist()], dtype=np.int64)
    new_side = None if side_rows_src is None else _side_for_retrain(side_rows_src, rows, train.n_users)
    if new_side is not None and new_side.social is not None and links:
        new_side.social = _with_links(new_side.social, links, train.user_ids.ids.tolist())
    estimator = state.model.clone(**dict(params or {}))
    new_meta = {k: [col[r] for r in rows] for k, col in meta.items()}
    extra = state.bundle.extra

    def fit_and_save(path: str | Path) -> Path:
        model = estimator.fit(train, new_side if type(estimator).uses_side_info else None)
        return save_bundle(path, model, train, new_meta, side=new_side, store_seq=upto, extra=extra)

    return fit_and_save


def _id_values(values: list[Any], as_str: bool) -> np.ndarray:
    if as_str:
        return np.asarray([str(v) for v in values], dtype=object)
    return np.asarray(values, dtype=np.int64)


def _id_map(values: list[Any]) -> tuple[Any, bool]:
    """An IdMap of ``values`` (unique, in order) and whether it had to become string-typed."""
    from fusionrec.data.idmap import IdMap

    as_str = not all(isinstance(v, int) and not isinstance(v, bool) for v in values)
    return IdMap(_id_values(values, as_str)), as_str


# ------------------------------------------------------------------------------------------ engine
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
        state = OnlineModel(load_bundle(self.bundle_path), index=index, ann_threshold=ann_threshold)
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
            self.store.add_items([(str(raw), stored, None if features is None else list(features))])
            return state.add_item(raw, meta, features, text, content, rows=rows)

    def post_user(
        self, raw: Any, attributes: Mapping[str, Any], friends: Sequence[tuple[Any, float]] | None = None
    ) -> int:
        """Create a user or update its profile (empty ``attributes`` keep the profile it has); ``friends`` (raw
        ids of known users and weights) replaces its posted links (``[]`` removes them; ``None`` keeps them).

        The profile and links are stored in one transaction before anything changes here; the user is then placed
        through its links when the model uses them (module notes).  Raises :class:`UnknownUserError` naming
        unknown friends and :class:`ConfigError` for bad weights (nothing stored)."""
        with self.write_lock:
            state = self.state
            links = None if friends is None else state.resolve_friends(raw, friends)
            known = state.user_index(raw)
            attrs = dict(attributes) or ({} if known is None else dict(state.user_attrs.get(known, {})))
            stored = None if links is None else {str(raw): [(str(state.user_raw[f]), w) for f, w in links.items()]}
            self.store.add_users([(str(raw), attrs)], links=stored)
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
            key = str(raw)
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
        ``last_error``, and :class:`RetrainError` is raised (also when a waited-for retrain fails).
        """
        with self.write_lock:
            if self._retrain_thread is not None and self._retrain_thread.is_alive():
                return False
            try:
                job = prepare_retrain(self.state, self.store, self.retrain_params)
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
