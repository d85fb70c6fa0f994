"""The online model of a serving process: :class:`~fusionrec.serving.state.OnlineState` with the serving ideas as
methods, each a thin call into its own module.

Serving never inspects model attributes: it reads the model's declaration (:mod:`fusionrec.models.declaration`)
and calls the methods the declaration promises.  It holds an in-memory copy of the bundle's model (mutating it is
fine; the bundle on disk is never touched).

======================  ===============================================================================
users (placement)       :mod:`fusionrec.serving.placement`: histories, friends, fold-in, forgetting
items                   :mod:`fusionrec.serving.items`: content encoding, ``add_items``, neighbour placement
ranking                 :mod:`fusionrec.serving.ranking`: ``model.recommend``, re-rankers, similar items
retrain                 :mod:`fusionrec.serving.retrain`: replay of the store, refit on everything stored
======================  ===============================================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fusionrec.serving import items, placement, ranking
from fusionrec.serving.state import OnlineState

if TYPE_CHECKING:
    from fusionrec.serving.store import Event

__all__ = ["OnlineModel"]


class OnlineModel(OnlineState):
    """A bundle plus everything learned since: new users, new items, folded-in events, profiles, links.

    Thread-safe: mutations hold ``lock``; readers take short consistent snapshots under it.  Inputs were checked
    at the edge (:mod:`fusionrec.serving.rules`) and are trusted.
    """

    # ---------------------------------------------------------------- users
    def add_user(self, raw: Any, attributes: Mapping[str, Any] | None = None) -> int:
        """Create (or update the profile of) a user; returns its index."""
        return placement.add_user(self, raw, attributes)

    def forget_user(self, u: int) -> None:
        """Forget user ``u`` (an index) in this process (:func:`fusionrec.serving.placement.forget_user`)."""
        placement.forget_user(self, u)

    def apply_events(self, events: Sequence[Event]) -> None:
        """Fold stored events in (:func:`fusionrec.serving.placement.apply_events`)."""
        placement.apply_events(self, events)

    def resolve_friends(self, friends: Sequence[tuple[Any, float]]) -> dict[int, float]:
        """Cleaned links as ``{friend index: weight}``; unknown friends raise ``UnknownUserError``."""
        return placement.resolve_friends(self, friends)

    def set_links(self, u: int, links: Mapping[int, float]) -> bool:
        """Replace user ``u``'s posted links; whether they changed."""
        return placement.set_links(self, u, links)

    def friends_of(self, u: int) -> dict[int, float]:
        """User ``u``'s training and posted links as ``{friend index: weight}``."""
        return placement.friends_of(self, u)

    def place_pending(self) -> None:
        """Place again the users whose links changed."""
        placement.place_pending(self)

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
        """Make a new item recommendable at once (:func:`fusionrec.serving.items.add_item`); returns its index."""
        return items.add_item(self, raw, meta, features, text, content, rows=rows)

    def encode_content(
        self, content: Mapping[str, Any] | None, features: Sequence[float] | None = None
    ) -> dict[str, np.ndarray]:
        """One new item's raw content encoded with the bundle's encoders."""
        return items.encode_content(self, content, features)

    def content_matrix(self) -> np.ndarray | None:
        """The fused item content aligned with the catalogue, or ``None``."""
        return items.content_matrix(self)

    def item_similarity(self, i: int, others: np.ndarray | None = None) -> np.ndarray:
        """Cosine similarity of item ``i`` to ``others`` (all items when None)."""
        return items.item_similarity(self, i, others)

    # ---------------------------------------------------------------- ranking
    def scores(self, u: int, items: np.ndarray | None = None) -> np.ndarray:
        """Scores of ``items`` (all when None) for user ``u`` under the current state."""
        return ranking.scores(self, u, items)

    def recommend(
        self,
        user: Any,
        k: int,
        *,
        exclude_seen: bool = True,
        candidates: Sequence[Any] | None = None,
        filters: Mapping[str, str] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item indices and scores for a raw user id (:func:`fusionrec.serving.ranking.recommend`)."""
        return ranking.recommend(self, user, k, exclude_seen=exclude_seen, candidates=candidates, filters=filters)

    def rerank(
        self, user: Any, idx: np.ndarray, scores: np.ndarray, k: int, spec: Mapping[str, Any]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Re-rank a user's candidates to ``k`` (:func:`fusionrec.serving.ranking.rerank`)."""
        return ranking.rerank(self, user, idx, scores, k, spec)

    def group_column(self) -> str | None:
        """The item labels re-ranking uses as groups."""
        return ranking.group_column(self)

    def similar(self, item: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Most similar items (:func:`fusionrec.serving.ranking.similar`)."""
        return ranking.similar(self, item, k)
