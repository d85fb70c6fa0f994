"""The Recommender contract every model follows.

Shapes: ``U`` users in a batch, ``I`` items in the catalogue (or candidate set), ``K`` list length.
Everything here works on contiguous integer indices; raw ids live at the edges (loaders, CLI, HTTP).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from fusionrec._ranking import mask_rows, topk
from fusionrec.data.interactions import Interactions
from fusionrec.data.side import SideInfo  # the data layer owns it; re-exported here
from fusionrec.errors import ConfigError, NotFittedError

__all__ = ["FORMAT_VERSION", "Recommender", "SideInfo", "load_model", "predict_pairs"]

FORMAT_VERSION = 2  # 2: one checksum over manifest and arrays (fusionrec._storage); 1 still loads


class Recommender:
    """Base class of all recommenders.

    Subclasses store hyper-parameters unchanged in ``__init__`` (keyword arguments), check them
    in ``fit``, end learned attributes with ``_``, and implement :meth:`_fit` and :meth:`score`.

    Attributes set by :meth:`fit`: ``n_users_``, ``n_items_`` and ``seen_`` (the training CSR,
    used to exclude already-seen items).
    """

    #: True when :meth:`predict` returns values on the rating scale (rating-prediction models).
    predicts_ratings: ClassVar[bool] = False
    #: True when :meth:`fit` uses :class:`SideInfo` (experiments then build it from the dataset's modalities).
    uses_side_info: ClassVar[bool] = False

    # ------------------------------------------------------------------ parameters
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def get_params(self) -> dict[str, Any]:
        """Hyper-parameters as given to ``__init__``."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Self:
        valid = set(self._param_names())
        for key, value in params.items():
            if key not in valid:
                raise ConfigError(f"{type(self).__name__} has no parameter {key!r}; valid: {sorted(valid)}")
            setattr(self, key, value)
        return self

    def clone(self, **params: Any) -> Self:
        """A fresh, unfitted copy with the same (or overridden) hyper-parameters."""
        return type(self)(**{**self.get_params(), **params})

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------ fitting
    def fit(self, train: Interactions, side: SideInfo | None = None) -> Self:
        """Learn from ``train`` (and optional side information); returns ``self``."""
        if not isinstance(train, Interactions):
            raise ConfigError("fit expects an fusionrec.data.Interactions; build one with Interactions.from_frame")
        self.n_users_ = train.n_users
        self.n_items_ = train.n_items
        self.seen_ = train.matrix
        self._fit(train, side)
        return self

    def _fit(self, train: Interactions, side: SideInfo | None) -> None:
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_items_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet; call fit(train) first")

    # ------------------------------------------------------------------ scoring
    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """Scores ``float32 [U, I]`` of ``items`` (all items when ``None``) for ``users``.

        Higher is better.  Rating models return predicted ratings.
        """
        raise NotImplementedError

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Score of each ``(users[j], items[j])`` pair, ``float32 [n]``.

        The default scores per distinct user; models with a cheaper pairwise form override it.
        """
        self._check_fitted()
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        out = np.empty(len(users), dtype=np.float32)
        uniq, inv = np.unique(users, return_inverse=True)
        for start in range(0, len(uniq), 512):
            block = uniq[start : start + 512]
            sel = (inv >= start) & (inv < start + len(block))
            s = self.score(block)
            out[sel] = s[inv[sel] - start, items[sel]]
        return out

    def recommend(
        self,
        users: np.ndarray | int,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        candidates: np.ndarray | None = None,
        seen: sp.csr_matrix | None = None,
        batch_size: int = 1024,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items for each user: ``(items int64 [U, K], scores float32 [U, K])``.

        ``exclude_seen`` masks the training items (or the rows of ``seen`` when given);
        ``candidates`` restricts the ranking to those item indices.  Slots that cannot be filled
        hold item ``-1`` and score ``-inf``.
        """
        self._check_fitted()
        users = np.atleast_1d(np.asarray(users, dtype=np.int64))
        if k <= 0:
            raise ConfigError("k must be a positive integer")
        if users.size and (users.min() < 0 or users.max() >= self.n_users_):
            raise ConfigError(f"user index out of range (0..{self.n_users_ - 1}); fold in new users first")
        seen_matrix = self.seen_ if seen is None else seen
        cand = None if candidates is None else np.unique(np.asarray(candidates, dtype=np.int64))
        out_items, out_scores = [], []
        for start in range(0, len(users), batch_size):
            batch = users[start : start + batch_size]
            scores = np.array(self.score(batch), dtype=np.float32, copy=True)
            if exclude_seen:
                mask_rows(scores, seen_matrix, batch)
            if cand is not None:
                scores = scores[:, cand]
            idx, val = topk(scores, k)
            if cand is not None:
                idx = cand[idx]
            idx[~np.isfinite(val)] = -1
            out_items.append(idx)
            out_scores.append(val)
        if not out_items:
            return np.empty((0, k), dtype=np.int64), np.empty((0, k), dtype=np.float32)
        return np.vstack(out_items), np.vstack(out_scores)

    def item_embeddings(self) -> np.ndarray | None:
        """Item vectors used by :meth:`similar_items` (None when the model has none)."""
        return None

    def similar_items(self, items: np.ndarray | int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most similar items to each item by cosine of :meth:`item_embeddings`."""
        self._check_fitted()
        emb = self.item_embeddings()
        if emb is None:
            raise NotImplementedError(f"{type(self).__name__} has no item embeddings for similar_items")
        items = np.atleast_1d(np.asarray(items, dtype=np.int64))
        norm = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        sims = norm[items] @ norm.T
        sims[np.arange(len(items)), items] = -np.inf
        return topk(sims, k)

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> dict[str, Any]:
        """Learned state: every attribute ending in ``_`` (arrays, CSR matrices, scalars)."""
        state: dict[str, Any] = {}
        for key, value in vars(self).items():
            if not key.endswith("_") or key.startswith("_"):
                continue
            if isinstance(value, np.ndarray | sp.spmatrix | sp.sparray | int | float | str | bool | np.generic):
                state[key] = value
        return state

    def _set_state(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)

    def save(self, path: str | Path) -> Path:
        """Save to a directory holding ``manifest.json`` and ``arrays.npz`` (no pickle)."""
        from fusionrec.models._persist import write_bundle

        return write_bundle(self, Path(path))

    @classmethod
    def load(cls, path: str | Path) -> Recommender:
        """Load a model saved by :meth:`save` (any registered class)."""
        return load_model(path)


def load_model(path: str | Path) -> Recommender:
    """Load a model saved with :meth:`Recommender.save`."""
    from fusionrec.models._persist import read_bundle

    return read_bundle(Path(path))


def predict_pairs(
    model: Recommender, users: np.ndarray, items: np.ndarray, timestamps: np.ndarray | None = None
) -> np.ndarray:
    """``model.predict(users, items)``, passing each pair's ``timestamps`` to models whose ``predict`` takes them.

    Time-aware models (TimeSVD++) predict a rating *at a time*; evaluation and ensembles call this so that such a
    model sees the test timestamps and every other model is called as usual.
    """
    if timestamps is not None and "timestamps" in inspect.signature(model.predict).parameters:
        return np.asarray(model.predict(users, items, timestamps=timestamps))  # type: ignore[call-arg]
    return np.asarray(model.predict(users, items))
