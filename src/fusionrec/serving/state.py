"""The state of a serving process: a bundle plus everything learned since (the data, no behaviour beyond reads).

:class:`OnlineState` holds what the serving ideas share: the served model (replaced, never mutated in place, when
users are placed again), the model's declaration (:mod:`fusionrec.models.declaration`: serving reads what the model
can do, never guesses), the catalogue (raw ids, metadata, profiles), the users' histories (the bundle's training
rows plus online events), placements, posted links, popularity and the caches derived from them.  The ideas live in
their own modules and take this state: :mod:`~fusionrec.serving.placement` (users: history, friends, fold-in),
:mod:`~fusionrec.serving.items` (new items: content encoding, ``add_items``, neighbour placement),
:mod:`~fusionrec.serving.ranking` (top-k through the model's ``recommend``, re-rankers, similar items) and
:mod:`~fusionrec.serving.retrain`; :class:`~fusionrec.serving.online.OnlineModel` puts them together.

Inputs reaching this state were checked at the edge (:mod:`fusionrec.serving.schemas`,
:mod:`fusionrec.serving.routes.deps`): ``k`` is within bounds, links hold no self-link, no zero weight and no
duplicate, ids are their canonical strings.  Nothing here checks them again.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import scipy.sparse as sp

from fusionrec.errors import ConfigError
from fusionrec.serving.catalogue import Catalogue
from fusionrec.serving.rules import clean_social

if TYPE_CHECKING:
    from fusionrec.data.documents import ItemDocuments
    from fusionrec.data.side import SideInfo
    from fusionrec.models.declaration import Declaration
    from fusionrec.models.factors import FactorModel
    from fusionrec.serving.bundle import Bundle

__all__ = ["MAX_IMPLICIT_VALUE", "OnlineState"]

#: the largest implicit-feedback weight an event may carry (sums of many stay finite in float32)
MAX_IMPLICIT_VALUE = 1e6


class OnlineState:
    """A bundle plus everything learned since: new users, new items, folded-in events, profiles, links.

    Thread-safe: mutations hold ``lock``; readers take short consistent snapshots under it.
    """

    def __init__(self, bundle: Bundle, *, index: str = "auto", ann_threshold: int = 50_000) -> None:
        self.bundle = bundle
        self.model = bundle.model
        #: what the model declares it holds and can do (read, never guessed)
        self.declared: Declaration = type(self.model).declaration()
        self.side: SideInfo | None = bundle.side
        if self.side is not None and self.side.social is not None:  # the training graph under the links rule
            self.side.social = clean_social(self.side.social)
        #: every item's raw texts / images for a model that encodes them itself (``declared.raw_content``), grown by
        #: each new item (:func:`fusionrec.serving.items.add_item`) so that a retrain refits with them; else ``None``
        self.documents: ItemDocuments | None = None if bundle.documents is None else bundle.documents.copy()
        self.lock = threading.RLock()
        self.catalogue = Catalogue(bundle.user_ids, bundle.item_ids, bundle.item_meta)
        decl = self.declared
        self.explicit = decl.predicts_ratings
        # the training rows, copied: fold-ins replace rows of the model's own seen_
        self.base_seen: sp.csr_matrix = sp.csr_matrix(self.model.seen_, copy=True)
        #: the training timestamps aligned with ``base_seen.data`` (``None``: the bundle has none)
        self.base_ts: np.ndarray | None = None if bundle.timestamps is None else np.array(bundle.timestamps, np.int64)
        self.seen_extra: dict[int, dict[int, float]] = {}
        self.model_rows: dict[int, int] = {}  # online users -> model row (users placed by fold-in)
        self.links: dict[int, dict[int, float]] = {}  # posted social links: user -> {friend: weight} (indices)
        self.pending: set[int] = set()  # users to place again (their links changed): placement.place_pending
        self.popularity = np.bincount(self.base_seen.indices, minlength=self.n_base_items).astype(np.float64)
        self.proxies: list[tuple[np.ndarray, np.ndarray]] = []  # new items of models that cannot add items
        self.applied_seq = int(bundle.store_seq)
        self.forget_seq = 0  # tombstones of forgotten users applied (EventStore.forgotten_since)
        self.n_events = 0
        self.is_factor = decl.has_factors
        self.can_fold = decl.can_fold_in
        #: the model places users through their links (declared: ``uses_friends``)
        self.uses_friends = self.can_fold and decl.uses_friends
        self.can_add_content = decl.can_add_items and self.side is not None and bool(self.side.item_features)
        # caches, dropped by the writes that change what they derive from
        self.aug_cache: tuple[np.ndarray, np.ndarray] | None = None
        self.content_cache: np.ndarray | None = None
        self.text_index: sp.csr_matrix | None = None
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

    @property
    def placement_kind(self) -> str:
        """How a new item is placed: ``content`` (the model's ``add_items``), ``neighbours`` (factor models: the
        mean vector of its content neighbours) or ``proxy`` (the mean score of its content neighbours)."""
        return "content" if self.can_add_content else ("neighbours" if self.is_factor else "proxy")

    def user_index(self, raw: Any) -> int | None:
        return self.catalogue.user_index(raw)

    def item_index(self, raw: Any) -> int | None:
        return self.catalogue.item_index(raw)

    def require_user(self, raw: Any) -> int:
        return self.catalogue.require_user(raw)

    def require_items(self, raws: Sequence[Any]) -> np.ndarray:
        return self.catalogue.require_items(raws)

    # ---------------------------------------------------------------- reads
    def model_row(self, u: int) -> int | None:
        """The model's row of user ``u`` (``None``: the model does not know the user)."""
        return u if u < self.n_base_users else self.model_rows.get(u)

    def has_vector(self, u: int) -> bool:
        """Whether the model scores user ``u`` itself (else: popularity and profile)."""
        return self.model_row(u) is not None

    def augmented(self) -> tuple[np.ndarray, np.ndarray]:
        """``Factors.augmented()`` of the served model (cached until the next fold-in or new item)."""
        if self.aug_cache is None:
            self.aug_cache = cast("FactorModel", self.model).factors().augmented()  # declared has_factors
        return self.aug_cache

    def history_arrays(self, u: int) -> tuple[np.ndarray, np.ndarray]:
        """Item indices and values of user ``u`` (training row then online events, later values win)."""
        merged: dict[int, float] = {}
        if u < self.base_seen.shape[0]:
            lo, hi = self.base_seen.indptr[u], self.base_seen.indptr[u + 1]
            merged.update(zip(self.base_seen.indices[lo:hi].tolist(), self.base_seen.data[lo:hi].tolist()))
        merged.update(self.seen_extra.get(u, {}))
        items = np.fromiter(merged.keys(), dtype=np.int64, count=len(merged))
        return items, np.fromiter(merged.values(), dtype=np.float64, count=len(merged))

    def filter_items(self, filters: dict[str, str]) -> np.ndarray:
        return self.catalogue.filter_items(filters)

    def value_domain(self) -> tuple[float, float]:
        """The event values the model accepts: the training rating range (explicit models), else
        ``[0, MAX_IMPLICIT_VALUE]``."""
        data = self.base_seen.data
        if self.explicit and data.size:
            return float(data.min()), float(data.max())
        return 0.0, MAX_IMPLICIT_VALUE

    def check_values(self, values: Sequence[float]) -> None:
        """``ConfigError`` (HTTP 422) unless every value is finite and within :meth:`value_domain` (the one rule
        of event values that depends on the served bundle; the schema checked the rest)."""
        v = np.asarray(values, np.float64)
        lo, hi = self.value_domain()
        bad = ~(np.isfinite(v) & (v >= lo) & (v <= hi))
        if bad.any():
            what = "ratings" if self.explicit else "implicit-feedback weights"
            raise ConfigError(
                f"{int(bad.sum())} event value(s) out of range, e.g. {float(v[bad][0])!r}: {what} of this model lie "
                f"in [{lo:g}, {hi:g}]"
            )

    def train_interactions(self) -> Any:
        """The bundle's training data (its seen matrix over its id maps, with the training timestamps when the bundle
        has them)."""
        from fusionrec.data.interactions import Interactions

        return Interactions(self.base_seen, self.bundle.user_ids, self.bundle.item_ids, self.base_ts, self.explicit)
