"""A dataset: interactions plus side information by modality and an optional social graph."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from fusionrec.data.interactions import Interactions
from fusionrec.data.modalities import Modality
from fusionrec.errors import DataError

__all__ = ["Dataset"]


@dataclass(eq=False)
class Dataset:
    """Everything known about users and items.

    Built by the readers: :func:`fusionrec.data.from_files` (your tables), :func:`fusionrec.data.from_frames`
    (DataFrames) and :func:`fusionrec.data.datasets.load_dataset` (registered datasets).

    Attributes
    ----------
    name
        Short name (``"ml-100k"``).
    interactions
        All interactions; splits index into the same id maps.
    item_modalities, user_modalities
        Content keyed by raw item / user id (``{"title": Modality("text", ...), ...}``).
    social
        Optional user x user CSR (trust / friendship), aligned with ``interactions.user_ids``;
        row ``u`` holds the users that ``u`` trusts.
    meta
        Free-form provenance (paths, counts, notes).
    """

    name: str
    interactions: Interactions
    item_modalities: dict[str, Modality] = field(default_factory=dict)
    user_modalities: dict[str, Modality] = field(default_factory=dict)
    social: sp.csr_matrix | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, mod in self.item_modalities.items():
            if mod.target != "item":
                raise DataError(f"item modality {name!r} is declared for {mod.target}s")
        for name, mod in self.user_modalities.items():
            if mod.target != "user":
                raise DataError(f"user modality {name!r} is declared for {mod.target}s")
        if self.social is not None:
            n = self.interactions.n_users
            if self.social.shape != (n, n):
                raise DataError(f"social matrix must be {n} x {n} (users x users), got {self.social.shape}")

    @property
    def user_ids(self):
        """The user id map of the interactions (raw id <-> row index)."""
        return self.interactions.user_ids

    @property
    def item_ids(self):
        """The item id map of the interactions (raw id <-> column index)."""
        return self.interactions.item_ids

    def item_features(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Dense item features of a ``features`` modality aligned with the item ids, and presence."""
        mod = self._get(self.item_modalities, name, "item")
        if mod.kind != "features":
            raise DataError(
                f"item modality {name!r} holds raw {mod.kind}; encode it first "
                "(fusionrec.features) to get dense features"
            )
        arr, present = mod.align(self.item_ids)
        return arr, present

    def user_features(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Dense user features of a ``features`` modality aligned with the user ids, and presence."""
        mod = self._get(self.user_modalities, name, "user")
        if mod.kind != "features":
            raise DataError(f"user modality {name!r} holds raw {mod.kind}; encode it first")
        return mod.align(self.user_ids)

    @staticmethod
    def _get(store: dict[str, Modality], name: str, what: str) -> Modality:
        if name not in store:
            raise DataError(f"no {what} modality {name!r}; available: {sorted(store)}")
        return store[name]

    def summary(self) -> dict[str, Any]:
        """Counts for display (users, items, interactions, density, modalities)."""
        x = self.interactions
        return {
            "name": self.name,
            "users": x.n_users,
            "items": x.n_items,
            "interactions": x.nnz,
            "density": x.nnz / max(1, x.n_users * x.n_items),
            "explicit": x.explicit,
            "timestamps": x.timestamps is not None,
            "item_modalities": {k: m.kind for k, m in self.item_modalities.items()},
            "user_modalities": {k: m.kind for k, m in self.user_modalities.items()},
            "social_links": 0 if self.social is None else int(self.social.nnz),
        }

    def __repr__(self) -> str:
        s = self.summary()
        mods = ", ".join(
            [f"{k}:{v}" for k, v in s["item_modalities"].items()]
            + [f"user.{k}:{v}" for k, v in s["user_modalities"].items()]
        )
        social = f", social links={s['social_links']}" if self.social is not None else ""
        return (
            f"Dataset({s['name']!r}, users={s['users']}, items={s['items']}, interactions={s['interactions']}, "
            f"modalities=[{mods}]{social})"
        )
