"""The Recommender contract every model follows.

Shapes: ``U`` users in a batch, ``I`` items in the catalogue (or candidate set), ``K`` list length.
Everything here works on contiguous integer indices; raw ids live at the edges (loaders, CLI, HTTP).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from fusionrec._params import Parameterized
from fusionrec._ranking import mask_rows, topk
from fusionrec._similarity import normalize_rows
from fusionrec.data.idmap import IdMap
from fusionrec.data.interactions import Interactions
from fusionrec.data.side import SideInfo  # the data layer owns it; re-exported here
from fusionrec.errors import BundleError, ConfigError, DataError, NotFittedError, UnknownIdError
from fusionrec.models._persist import FORMAT_VERSION, read_bundle, write_bundle
from fusionrec.models.declaration import COLUMNS, ROWS, Declaration, Indexed, build_declaration

__all__ = ["FORMAT_VERSION", "Recommender", "SideInfo", "epoch_callback", "load_model", "predict_pairs"]


#: ``callback(model, epoch, loss)`` of the innermost :func:`epoch_callback` block (per thread / task)
_EPOCH_CALLBACK: ContextVar[Callable[[Any, int, float | None], None] | None] = ContextVar(
    "fusionrec_epoch_callback", default=None
)


@contextlib.contextmanager
def epoch_callback(callback: Callable[[Any, int, float | None], None]) -> Iterator[None]:
    """Call ``callback(model, epoch, loss)`` after every epoch of the iterative models fitted inside the block.

    The models with the hook (ALS, BPR, VBPR) call :meth:`Recommender._end_epoch`; at that moment the model scores
    with its current parameters, so the callback can evaluate it (``loss`` is ``None`` when the model does not
    compute one that epoch).  An exception raised by the callback stops the fit (``fusionrec.tuning`` raises
    ``optuna.TrialPruned`` this way).  Without a block the hook costs nothing.
    """
    token = _EPOCH_CALLBACK.set(callback)
    try:
        yield
    finally:
        _EPOCH_CALLBACK.reset(token)


class Recommender(Parameterized):
    """Base class of all recommenders.

    Subclasses take keyword-only hyper-parameters in ``__init__`` (``def __init__(self, *, ...)``) and store
    them unchanged, declare their allowed values in ``_param_constraints`` (:mod:`fusionrec.models._params`;
    checked by :meth:`fit` before :meth:`_fit` and by ``make_model``), end learned attributes with ``_``, and
    implement :meth:`_fit` and :meth:`score`.  Unknown parameter names raise :class:`ConfigError` with a
    did-you-mean hint (``ALS(factor=8)``: "did you mean 'n_factors'?").

    Attributes set by :meth:`fit`: ``n_users_``, ``n_items_``, ``seen_`` (the training CSR, used to exclude
    already-seen items) and ``user_id_values_`` / ``item_id_values_`` (the raw ids of the training id maps, int64
    or unicode arrays, used by :meth:`recommend_ids` and :meth:`similar_items_ids`).
    """

    # ------------------------------------------------------------------ declaration (fusionrec.models.declaration)
    #: True when :meth:`predict` returns values on the rating scale (rating-prediction models).
    predicts_ratings: ClassVar[bool] = False
    #: True when :meth:`fit` uses :class:`SideInfo` (declares ``"side"`` in ``fit_inputs``).
    uses_side_info: ClassVar[bool] = False
    #: True when ``fold_in_user`` also takes ``friends=`` / ``friend_weights=`` (links to known users), placing a
    #: user through them (:class:`fusionrec.models.social.SocialFoldIn`); serving passes a user's links only then.
    uses_friends: ClassVar[bool] = False
    #: learned per-user / per-item state and how each is indexed (merged along the bases; module
    #: :mod:`fusionrec.models.declaration`); ``forget_user`` blanks exactly the declared per-user state
    user_state: ClassVar[Mapping[str, Indexed]] = {"seen_": ROWS, "user_id_values_": ROWS}
    item_state: ClassVar[Mapping[str, Indexed]] = {"seen_": COLUMNS, "item_id_values_": ROWS}
    #: the hyper-parameter naming the item modalities the model reads, or ``None``
    modality_param: ClassVar[str | None] = None
    #: what ``fit`` takes besides the training interactions (``"side"``, ``"valid"``, ``"timestamps"``, ``"texts"``)
    fit_inputs: ClassVar[frozenset[str]] = frozenset()
    #: cold start: ``fold_in_user`` / ``fold_in_users`` / ``add_items`` from content; ``factors()``
    can_fold_in: ClassVar[bool] = False
    can_batch_fold_in: ClassVar[bool] = False
    can_add_items: ClassVar[bool] = False
    has_factors: ClassVar[bool] = False
    #: the explanation methods implemented (``"item_contributions"``, ``"score_parts"``)
    explanation_hooks: ClassVar[frozenset[str]] = frozenset()
    #: the attribute holding fitted member models (ensembles), or ``None``
    member_state: ClassVar[str | None] = None
    #: allowed values of each hyper-parameter (:mod:`fusionrec.models._params`)
    _param_constraints: ClassVar[dict[str, list[Any]]] = {}
    #: former parameter names -> current ones (named in the error when an old name is used)
    _renamed_params: ClassVar[dict[str, str]] = {
        "factors": "n_factors",
        "feature_weights": "modality_weights",
        "weights": "modality_weights",
    }

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Parameters are checked by :class:`~fusionrec._params.Parameterized`; ``fold_in_user`` is wrapped so that
        ``friends=`` reaches only the models that declare ``uses_friends``."""
        super().__init_subclass__(**kwargs)
        cls._wrap_friends()

    @classmethod
    def _wrap_friends(cls) -> None:
        """Wrap this class's ``fold_in_user`` so that ``friends=`` given to a model that does not declare
        ``uses_friends`` raises :class:`ConfigError` naming the models that do (instead of a raw ``TypeError``)."""
        fold = getattr(cls, "fold_in_user", None)  # its own, or a mixin's (FactorFoldIn, HistoryFoldIn)
        if fold is None or getattr(fold, "_checks_friends", False):
            return

        @functools.wraps(fold)
        def checked_fold(self: Any, *args: Any, **kw: Any) -> Any:
            given = sorted({"friends", "friend_weights"} & set(kw))
            if given and not type(self).declaration().uses_friends:
                raise ConfigError(
                    f"{type(self).__name__} does not place users through their friends ({', '.join(given)} given); "
                    f"the models that do: {', '.join(friend_models())}. Drop the argument or use one of them"
                )
            return fold(self, *args, **kw)

        checked_fold._checks_friends = True  # type: ignore[attr-defined]
        cls.fold_in_user = checked_fold  # type: ignore[attr-defined]

    @classmethod
    def declaration(cls) -> Declaration:
        """What this class holds and can do (:mod:`fusionrec.models.declaration`), built once per class."""
        found = cls.__dict__.get("_declaration")
        if found is None:
            found = build_declaration(cls)
            cls._declaration = found  # type: ignore[attr-defined]
        return found  # type: ignore[no-any-return]

    def _learned(self, name: str) -> Any:
        """The learned attribute ``name`` as saved by :meth:`_get_state` (``None`` when absent)."""
        return vars(self).get(name)

    def _set_learned(self, name: str, value: Any) -> None:
        """Replace the learned attribute ``name`` (see :meth:`_learned`)."""
        setattr(self, name, value)

    # ------------------------------------------------------------------ parameters (fusionrec._params.Parameterized)
    #: every registered model's ``__init__`` is keyword-only itself (tests/models/test_params.py checks it)
    _refuse_positional: ClassVar[bool] = False

    @classmethod
    def param_defaults(cls) -> dict[str, Any]:
        """The default of each hyper-parameter that has one (required ones, such as an ensemble's ``models``, are
        absent), in :meth:`param_names` order."""
        params = inspect.signature(cls.__init__).parameters
        return {
            name: params[name].default for name in cls.param_names() if params[name].default is not params[name].empty
        }

    @classmethod
    def search_space(cls) -> dict[str, Any]:
        """The declared tuning ranges ``{parameter: spec}`` (the class's ``_search_space``; read by
        :func:`fusionrec.tuning.search_space`), empty when the class declares none."""
        return dict(getattr(cls, "_search_space", {}))

    # ------------------------------------------------------------------ fitting
    def fit(self, train: Interactions, side: SideInfo | None = None) -> Self:
        """Learn from ``train`` (and optional side information); returns ``self``."""
        if not isinstance(train, Interactions):
            raise ConfigError("fit expects an fusionrec.data.Interactions; build one with Interactions.from_frame")
        self._validate_params()
        self.n_users_ = train.n_users
        self.n_items_ = train.n_items
        self.seen_ = train.matrix
        self._store_ids(train)
        self._fit(train, side)
        return self

    def _store_ids(self, train: Interactions) -> None:
        """Keep the training id maps as learned arrays (int64 or unicode, so that bundles hold no objects)."""
        self.user_id_values_ = _id_values(train.user_ids.ids)
        self.item_id_values_ = _id_values(train.item_ids.ids)
        self._id_cache: dict[str, tuple[int, IdMap]] = {}

    def _fit(self, train: Interactions, side: SideInfo | None) -> None:
        raise NotImplementedError

    def _end_epoch(self, epoch: int, loss: float | None = None, **state: Any) -> None:
        """The epoch hook of iterative models: call after each epoch with the learned arrays so far.

        ``state`` holds the attributes :meth:`score` needs (``user_factors_=X, item_factors_=Y``); they are set
        only when an :func:`epoch_callback` is active, which is then called with ``(self, epoch, loss)``.
        """
        callback = _EPOCH_CALLBACK.get()
        if callback is None:
            return
        for key, value in state.items():
            setattr(self, key, value)
        callback(self, epoch, loss)

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_items_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet; call fit(train) first")

    def check_fitted(self) -> None:
        """Raise :class:`~fusionrec.errors.NotFittedError` unless the model was fitted (or loaded fitted)."""
        self._check_fitted()

    def training_curves(self) -> dict[str, np.ndarray]:
        """Per-epoch curves the fitted model kept: ``{"loss": loss_history_, "valid_metric": valid_history_}``,
        each ``float64 [epochs]`` and present only when the model records it."""
        curves = {"loss": self._learned("loss_history_"), "valid_metric": self._learned("valid_history_")}
        return {k: np.asarray(v, np.float64).ravel() for k, v in curves.items() if v is not None}

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
        norm = normalize_rows(emb, emb.dtype.type if emb.dtype.kind == "f" else np.float64)
        sims = norm[items] @ norm.T
        sims[np.arange(len(items)), items] = -np.inf
        return topk(sims, k)

    # ------------------------------------------------------------------ raw ids
    def _id_map(self, what: str) -> IdMap:
        """The :class:`IdMap` of ``"user"`` or ``"item"`` raw ids (rebuilt lazily when ids were registered)."""
        self._check_fitted()
        values = getattr(self, f"{what}_id_values_", None)
        if values is None:
            raise ConfigError(
                f"{type(self).__name__} holds no raw {what} ids (fitted or saved by an older fusionrec); refit it"
            )
        cache = vars(self).setdefault("_id_cache", {})
        hit = cache.get(what)
        if hit is None or hit[0] != len(values):
            hit = (len(values), IdMap(values))
            cache[what] = hit
        return hit[1]

    def _to_indices(self, raw: Any, what: str) -> np.ndarray:
        idmap = self._id_map(what)
        arr = np.atleast_1d(np.asarray(raw))
        idx = idmap.to_index(arr, missing="ignore")
        gone = getattr(self, "forgotten_users_", None) if what == "user" else None
        if gone is not None and len(gone):
            idx = np.where(np.isin(idx, gone), -1, idx)  # a forgotten user's tombstone id finds nothing
        if (idx < 0).any():
            unknown = arr[idx < 0][:5].tolist()
            how = "fold_in_user" if what == "user" else "add_items / add_item_vectors"
            raise UnknownIdError(
                f"unknown {what} id(s) {unknown} ({int((idx < 0).sum())} in all): {type(self).__name__} knows the "
                f"fitted {what}s and those named with register_ids; place new {what}s with {how} and name them with "
                f"register_ids({what}s=[...]) first"
            )
        return idx

    def user_indices(self, user_ids: Any) -> np.ndarray:
        """Indices of raw user ids (``int64 [n]``); unknown or forgotten ids raise :class:`UnknownIdError`."""
        return self._to_indices(user_ids, "user")

    def item_indices(self, item_ids: Any) -> np.ndarray:
        """Indices of raw item ids (``int64 [n]``); unknown ids raise :class:`UnknownIdError`."""
        return self._to_indices(item_ids, "item")

    def _to_raw(self, idx: np.ndarray, what: str) -> np.ndarray:
        values = getattr(self, f"{what}_id_values_")
        pad = "" if values.dtype.kind == "U" else -1
        out = np.full(idx.shape, pad, dtype=values.dtype)
        ok = idx >= 0
        out[ok] = values[idx[ok]]
        return out

    def register_ids(self, *, users: Sequence[Any] | None = None, items: Sequence[Any] | None = None) -> None:
        """Name users / items placed after fitting (``fold_in_user``, ``add_items``) by raw ids.

        The ids are given, in order, to the first indices without one (``len(user_id_values_)`` onwards), which
        must exist already: ``u = model.fold_in_user(history); model.register_ids(users=["alice"])``.  Raw-id
        methods (:meth:`recommend_ids`, :meth:`similar_items_ids`) cover the fitted catalogue plus these ids.
        """
        self._check_fitted()
        for what, raw, n in (("user", users, self.n_users_), ("item", items, self.n_items_)):
            if raw is None:
                continue
            values = getattr(self, f"{what}_id_values_", None)
            if values is None:
                raise ConfigError(f"{type(self).__name__} holds no raw {what} ids; refit it")
            new = _id_values(np.atleast_1d(np.asarray(raw)))
            if len(new) == 0:
                continue
            if (new.dtype.kind == "U") != (values.dtype.kind == "U"):
                kind = "strings" if values.dtype.kind == "U" else "integers"
                raise DataError(f"{what} ids must be {kind}, like the training ids; got {new[:3].tolist()}")
            if len(values) + len(new) > n:
                raise DataError(
                    f"{len(new)} new {what} id(s) but only {n - len(values)} {what}(s) without an id; "
                    f"place them first (fold_in_user / add_items)"
                )
            known = self._id_map(what).to_index(new, missing="ignore")
            if (known >= 0).any() or len(np.unique(new)) != len(new):
                dup = new[known >= 0][:5].tolist() or new[:5].tolist()
                raise DataError(f"{what} ids must be new and distinct; already known or repeated: {dup}")
            setattr(self, f"{what}_id_values_", np.concatenate([values, new]))  # unicode widths promote

    def forget_user(self, user: int) -> None:
        """Erase user ``user`` (an index) from the fitted model, in place: the right to be forgotten.

        Reads the class's declaration (:meth:`declaration`): every declared per-user array (``user_state``) loses
        the user's entries (dense arrays get the declared fill along the declared axes, sparse ones drop the stored
        entries of the user's row and/or column), the members of an ensemble (``member_state``) forget the user
        too, the raw id in ``user_id_values_`` is replaced by a tombstone and the index is recorded in
        ``forgotten_users_`` (saved with the model), so raw-id lookups refuse it.  Other users keep their indices
        and the scores computed from their own rows.  Aggregates learned from the user (item factors, item-item
        weights) keep its contribution until the next ``fit`` on data without the user.  Forgetting a user twice is
        a no-op.
        """
        self._check_fitted()
        n = int(self.n_users_)
        if isinstance(user, bool) or not isinstance(user, int | np.integer) or not 0 <= int(user) < n:
            raise ConfigError(f"user must be a user index in 0..{n - 1}, got {user!r}; map raw ids at the edge")
        u = int(user)
        decl = self.declaration()
        for name, how in decl.user_state.items():
            if name in ("user_id_values_", "forgotten_users_"):
                continue
            value = self._learned(name)
            if value is not None:
                self._set_learned(name, _blank_user(value, u, how))
        if decl.member_state is not None:  # ensembles: every member forgets the user too
            for member in getattr(self, decl.member_state, None) or ():
                member.forget_user(u)
        values = getattr(self, "user_id_values_", None)
        if values is not None and u < len(values):
            values = values.copy()
            if values.dtype.kind == "U":
                mark = f"<forgotten {u}>"
                values = values.astype(f"<U{max(values.dtype.itemsize // 4, len(mark))}")
                values[u] = mark
            else:
                values[u] = np.iinfo(np.int64).min + u
            self.user_id_values_ = values
            vars(self).setdefault("_id_cache", {}).pop("user", None)
        gone = np.asarray(getattr(self, "forgotten_users_", np.empty(0, np.int64)), np.int64)
        self.forgotten_users_ = np.union1d(gone, [u]).astype(np.int64)

    def recommend_ids(
        self,
        user_ids: Any,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        candidates: Any = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`recommend` by raw ids: ``(raw item ids [U, K], scores float32 [U, K])``.

        ``user_ids`` and ``candidates`` are raw ids; unknown ones raise :class:`~fusionrec.errors.UnknownIdError`.
        Only items with a raw id are ranked.  Slots that cannot be filled hold score ``-inf`` and id ``-1`` (int
        ids) or ``""`` (string ids).
        """
        users = self._to_indices(user_ids, "user")
        n_named = len(self.item_id_values_)
        if candidates is not None:
            cand: np.ndarray | None = self._to_indices(candidates, "item")
        else:
            cand = None if n_named == self.n_items_ else np.arange(n_named)
        idx, scores = self.recommend(users, k, exclude_seen=exclude_seen, candidates=cand)
        return self._to_raw(idx, "item"), scores

    def similar_items_ids(self, item_ids: Any, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`similar_items` by raw ids: ``(raw item ids [U, K], scores float32 [U, K])`` (unnamed items skipped)."""
        items = self._to_indices(item_ids, "item")
        n_named = len(self.item_id_values_)
        extra = int(self.n_items_) - n_named
        idx, scores = self.similar_items(items, k + extra)
        if extra:
            keep = idx < n_named
            order = np.argsort(~keep, axis=1, kind="stable")[:, :k]
            idx = np.where(np.take_along_axis(keep, order, 1), np.take_along_axis(idx, order, 1), -1)
            scores = np.where(idx >= 0, np.take_along_axis(scores, order, 1), -np.inf).astype(np.float32)
        return self._to_raw(np.asarray(idx, np.int64), "item"), scores

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
        """Put saved learned state back: only names of learned state (``name_``, not shadowing anything the class
        defines, such as a method) and, for the shape counts, non-negative integers (``BundleError`` otherwise)."""
        cls = type(self)
        for key, value in state.items():
            if not key.endswith("_") or key.startswith("_") or not key.isidentifier() or hasattr(cls, key):
                raise BundleError(
                    f"{cls.__name__}: the saved state holds {key!r}, which is not learned state (learned state is "
                    "named 'name_' and never shadows a method); the bundle was edited, write it again"
                )
            if key in ("n_users_", "n_items_") and (isinstance(value, bool) or not isinstance(value, int | np.integer)
                                                      or value < 0):  # fmt: skip
                raise BundleError(
                    f"{cls.__name__}: the saved {key} is {value!r}; it must be a non-negative integer (the bundle was "
                    "edited), write it again"
                )
        for key, value in state.items():
            setattr(self, key, value)

    def save(self, path: str | Path) -> Path:
        """Save to a directory holding ``manifest.json`` and ``arrays.npz`` (no pickle)."""
        return write_bundle(self, Path(path))

    @classmethod
    def load(cls, path: str | Path) -> Recommender:
        """Load a model saved by :meth:`save` (any registered class)."""
        return load_model(path)


def friend_models() -> list[str]:
    """The registered models that declare ``uses_friends`` (place a user through its social links)."""
    from fusionrec.models.registry import MODELS, get_model_class

    out = []
    for name in MODELS:
        try:
            if get_model_class(name).declaration().uses_friends:
                out.append(name)
        except ImportError:  # pragma: no cover - an optional dependency is absent
            continue
    return out


def _id_values(ids: np.ndarray) -> np.ndarray:
    """Raw ids as an int64 or unicode array (never object)."""
    arr = np.asarray(ids)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    return arr.astype(str)


def _blank_user(value: Any, u: int, how: Indexed) -> Any:
    """``value`` (a dense array or a sparse matrix) with user ``u``'s entries along the declared axes blanked; a
    new object (arrays a reader or a saved bundle's copy may share are never written into)."""
    if isinstance(value, sp.spmatrix | sp.sparray):
        return _drop_user(value, u, row=how.rows, column=how.columns)
    if not isinstance(value, np.ndarray) or value.ndim == 0:
        return value
    out = value.copy()
    for axis in how.axes:
        if axis < out.ndim and u < out.shape[axis]:
            index: list[Any] = [slice(None)] * out.ndim
            index[axis] = u
            out[tuple(index)] = "" if out.dtype.kind == "U" else how.fill
    return out


def _drop_user(matrix: Any, u: int, *, row: bool, column: bool) -> sp.csr_matrix:
    """``matrix`` as CSR without the stored entries of row ``u`` and/or column ``u`` (other entries, explicit
    zeros included, stay as they are)."""
    m = sp.csr_matrix(matrix)
    keep = np.ones(m.nnz, dtype=bool)
    if row:
        keep[m.indptr[u] : m.indptr[u + 1]] = False
    if column:
        keep &= m.indices != u
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows[keep], minlength=m.shape[0]))]).astype(m.indptr.dtype)
    return sp.csr_matrix((m.data[keep], m.indices[keep], indptr), shape=m.shape)


def load_model(path: str | Path) -> Recommender:
    """Load a model saved with :meth:`Recommender.save`."""
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
