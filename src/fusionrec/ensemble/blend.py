"""Model-level fusion: the :class:`Ensemble` base (members + a learned ``combine`` step) and :class:`WeightedBlend`.

An ensemble holds fitted *members* (any :class:`~fusionrec.models.Recommender`) and combines their
outputs.  For ``M`` members, ``member_scores`` is ``float32 [M, *shape]``: ``[M, U, I]`` from
:meth:`Ensemble.member_scores` (full ranking, in batches) or ``[M, n]`` from
:meth:`Ensemble.member_predictions` (pairs).  A subclass learns its combiner from the members'
predictions on validation interactions (:meth:`Ensemble._fit_combiner`) and implements
:meth:`Ensemble.combine`, which maps ``member_scores`` (plus the user and item indices, broadcast to
``shape``) to one score per entry.  :meth:`score` and :meth:`predict` are ``combine`` applied to the
members' scores / pair predictions, so the same classes serve rating blends and, with other
combiners (rank fusion, switching), ranking.

Fitting (two ways):

``fit(train, side=None, valid=None)``
    Builds fresh members from ``models`` (instances are cloned, names / specs are made through the
    registry), fits them on ``train`` and the combiner on their predictions for ``valid``.  Without
    ``valid`` a seeded ``valid_fraction`` of ``train``'s entries is held out: members are fitted on the
    rest, the combiner on the held-out part, and with ``refit=True`` the members are then refitted on
    all of ``train`` (the combiner is kept - the usual "probe blending then retrain" of the Netflix
    prize).  Works inside the experiment loop, which only calls ``fit(train, side)``.
``fit_blend(valid)``
    Uses the instances in ``models`` as they are (already fitted on the same id maps) and learns only
    the combiner.

Persistence: :meth:`Ensemble.save` writes a directory with ``manifest.json`` / ``arrays.npz`` (the
ensemble's own state, same format as every bundle) and ``members/<k>/``, one ordinary bundle per
member.  Load it with ``WeightedBlend.load(path)`` (or :func:`load_ensemble`).  Members are
persisted as ``{"name": <registered name>, "params": {...}}`` specs in the manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from fusionrec.data.interactions import Interactions
from fusionrec.errors import BundleError, ConfigError, DataError, NotFittedError
from fusionrec.models._params import BOOL, NONNEGATIVE, SEED, Interval
from fusionrec.models.base import Recommender, SideInfo, predict_pairs

__all__ = [
    "Ensemble",
    "MemberSpec",
    "WeightedBlend",
    "blend_weights",
    "load_ensemble",
    "member_spec",
    "split_validation",
]

#: a member given as a model instance, a registered name, or ``{"name": ..., "params": {...}}``
MemberSpec = Recommender | str | dict[str, Any]

MEMBERS_DIR = "members"


# ---------------------------------------------------------------------------------------------- helpers
def split_validation(train: Interactions, fraction: float, seed: int = 0) -> tuple[Interactions, Interactions]:
    """Hold out a seeded random ``fraction`` of ``train``'s entries: ``(fit_part, valid)``.

    A user's only rating always stays in ``fit_part`` (so no user is left without training data by
    the carve-out).
    """
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"valid_fraction must be in (0, 1), got {fraction!r}")
    rng = np.random.default_rng(seed)
    hold = rng.random(train.nnz) < fraction
    counts = train.user_counts()
    hold &= np.repeat(counts > 1, counts)
    if not hold.any() or hold.all():
        raise DataError(
            f"holding out {fraction:.0%} of {train.nnz} interactions leaves an empty part; pass valid= explicitly"
        )
    return train.select(~hold), train.select(hold)


def _make_member(spec: MemberSpec) -> Recommender:
    from fusionrec.models.registry import make_model

    if isinstance(spec, Recommender):
        return spec.clone()
    if isinstance(spec, str):
        return make_model(spec)
    if isinstance(spec, dict) and isinstance(spec.get("name"), str):
        extra = set(spec) - {"name", "params"}
        if extra:
            raise ConfigError(f"member spec has unknown keys {sorted(extra)}; use {{'name': ..., 'params': {{...}}}}")
        return make_model(spec["name"], **dict(spec.get("params") or {}))
    raise ConfigError(
        f"ensemble member {spec!r} is not a Recommender, a registered model name or {{'name': ..., 'params': {{...}}}}"
    )


def member_spec(spec: MemberSpec) -> dict[str, Any] | str:
    """The JSON form of a member: names and specs unchanged, instances as ``{"name", "params"}``."""
    from fusionrec.models.registry import registered_name

    if isinstance(spec, Recommender):
        return {"name": registered_name(type(spec)), "params": spec.get_params()}
    return spec


def _fit_member(member: Recommender, train: Interactions, side: SideInfo | None) -> None:
    """Fit one member on ``train`` with the side information when its class declares it takes it."""
    member.fit(train, **type(member).declaration().fit_kwargs(side=side))


def _rating_range(matrix: Any) -> tuple[float, float]:
    data = np.asarray(matrix.data)
    if data.size == 0:
        return 0.0, 0.0
    return float(data.min()), float(data.max())


# ---------------------------------------------------------------------------------------------- base
class Ensemble(Recommender):
    """Base of model-level fusion: fitted ``members_`` and a learned :meth:`combine` (see the module notes).

    Parameters
    ----------
    models
        The members: instances, registered names or ``{"name": ..., "params": {...}}`` specs.
    valid_fraction
        Share of ``train`` held out for the combiner when :meth:`fit` gets no ``valid``.
    refit
        After learning the combiner on a held-out part, refit the members on all of ``train``.
    clip
        Clip combined scores to the members' training value range (rating blends).
    seed
        Seed of the held-out split.
    """

    predicts_ratings = True
    uses_side_info = True
    #: declaration (:mod:`fusionrec.models.declaration`): the fitted members live in ``members_`` (forgetting a
    #: user reaches them); ``fit`` takes ``side`` (passed to the members that take it) and ``valid``
    member_state: ClassVar[str | None] = "members_"
    fit_inputs: ClassVar[frozenset[str]] = frozenset({"side", "valid"})
    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        "models": [list],
        # at least 5% of the training pairs: fewer give the blend weights too few rows to fit (every score alike)
        "valid_fraction": [Interval(float, 0.05, 1.0, closed="left")],
        "refit": [*BOOL],
        "clip": [*BOOL],
        "seed": [*SEED],
    }

    def __init__(
        self,
        *,
        models: list[MemberSpec],
        valid_fraction: float = 0.1,
        refit: bool = True,
        clip: bool = True,
        seed: int = 0,
    ) -> None:
        self.models = models
        self.valid_fraction = valid_fraction
        self.refit = refit
        self.clip = clip
        self.seed = seed

    # ------------------------------------------------------------------ fitting
    def _check_models(self) -> None:
        if not isinstance(self.models, list | tuple) or not self.models:
            raise ConfigError("models must be a non-empty list of members (instances, names or specs)")
        self._validate_params()

    def fit(self, train: Interactions, side: SideInfo | None = None, valid: Interactions | None = None) -> Self:
        """Fit fresh members on ``train`` and the combiner on ``valid`` (held out from ``train`` when absent)."""
        if not isinstance(train, Interactions):
            raise ConfigError("fit expects an fusionrec.data.Interactions; build one with Interactions.from_frame")
        self._check_models()
        self._check_params()
        members = [_make_member(spec) for spec in self.models]
        carved = valid is None
        if valid is None:
            fit_part, valid = split_validation(train, float(self.valid_fraction), int(self.seed))
        else:
            if valid.shape != train.shape:
                raise DataError("valid must use the same id maps as train (same shape)")
            fit_part = train
        for member in members:
            _fit_member(member, fit_part, side)
        self.members_ = members
        self._set_base(fit_part)
        self._fit_combiner(valid)
        if carved and self.refit:
            for member in members:
                _fit_member(member, train, side)
            self._set_base(train)
            self._after_refit()
        return self

    def fit_blend(self, valid: Interactions) -> Self:
        """Learn only the combiner, on ``valid``, using the already fitted instances in ``models``."""
        self._check_models()
        self._check_params()
        members = [m for m in self.models if isinstance(m, Recommender)]
        if len(members) != len(self.models):
            raise ConfigError("fit_blend needs fitted model instances in models; use fit(train) for names / specs")
        for m in members:
            try:
                m.check_fitted()
            except NotFittedError as exc:
                raise NotFittedError(f"fit_blend: member {type(m).__name__} is not fitted; fit it first") from exc
        shapes = {(m.n_users_, m.n_items_) for m in members}
        if len(shapes) != 1:
            raise DataError(f"members were fitted on different shapes {sorted(shapes)}; use the same id maps")
        first = members[0]
        self.members_ = members
        self.n_users_ = first.n_users_
        self.n_items_ = first.n_items_
        self.seen_ = first.seen_
        self.user_id_values_ = first.user_id_values_  # the members' raw ids
        self.item_id_values_ = first.item_id_values_
        self._prepare_features(first.seen_)
        self._fit_combiner(valid)
        return self

    def _set_base(self, train: Interactions) -> None:
        self.n_users_ = train.n_users
        self.n_items_ = train.n_items
        self.seen_ = train.matrix
        self._store_ids(train)
        self._prepare_features(train.matrix)

    def _prepare_features(self, matrix: Any) -> None:
        """Per-user / per-item state derived from the members' training matrix (rating range here)."""
        self.rating_min_, self.rating_max_ = _rating_range(matrix)

    def _after_refit(self) -> None:
        """Hook run after the members were refitted on the full training data."""

    def _check_params(self) -> None:
        """Validate the combiner's hyper-parameters (subclasses)."""

    def _fit_combiner(self, valid: Interactions) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ scoring
    def _check_fitted(self) -> None:
        if not hasattr(self, "members_") or not hasattr(self, "n_items_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet; call fit(train) or fit_blend(valid)")

    def member_scores(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """Every member's :meth:`score`, ``float32 [M, U, I]``."""
        self._check_fitted()
        return np.stack([np.asarray(m.score(users, items), dtype=np.float32) for m in self.members_])

    def member_predictions(
        self, users: np.ndarray, items: np.ndarray, timestamps: np.ndarray | None = None
    ) -> np.ndarray:
        """Every member's :meth:`predict` of the pairs, ``float32 [M, n]`` (``timestamps`` go to time-aware ones)."""
        self._check_fitted()
        return np.stack(
            [np.asarray(predict_pairs(m, users, items, timestamps), dtype=np.float32) for m in self.members_]
        )

    def combine(self, member_scores: np.ndarray, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Fuse ``member_scores [M, *shape]`` into ``float32 [*shape]``.

        ``users`` / ``items`` are index arrays broadcastable to ``shape`` (``users[:, None]`` and
        ``items[None, :]`` for a score grid, aligned 1-D arrays for pairs).
        """
        raise NotImplementedError

    def _finish(self, out: np.ndarray) -> np.ndarray:
        out = np.asarray(out, dtype=np.float32)
        if self.clip:
            np.clip(out, self.rating_min_, self.rating_max_, out=out)
        return out

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        self._check_fitted()
        users = np.atleast_1d(np.asarray(users, dtype=np.int64))
        cols = np.arange(self.n_items_) if items is None else np.asarray(items, dtype=np.int64)
        return self._finish(self.combine(self.member_scores(users, cols), users[:, None], cols[None, :]))

    def predict(self, users: np.ndarray, items: np.ndarray, timestamps: np.ndarray | None = None) -> np.ndarray:
        """Fused rating of each pair; ``timestamps`` (seconds, one per pair) reach time-aware members."""
        self._check_fitted()
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        return self._finish(self.combine(self.member_predictions(users, items, timestamps), users, items))

    # ------------------------------------------------------------------ persistence
    def _set_state(self, state: dict[str, Any]) -> None:
        if not hasattr(self, "members_"):
            raise BundleError(
                f"{type(self).__name__} bundles hold one bundle per member; load them with "
                f"{type(self).__name__}.load(path) or fusionrec.ensemble.load_ensemble(path)"
            )
        super()._set_state(state)

    def save(self, path: str | Path) -> Path:
        """Write ``path/{manifest.json, arrays.npz}`` and ``path/members/<k>/`` (one bundle per member), atomically
        and under one checksum (:func:`fusionrec._storage.write_dir`)."""
        from fusionrec._storage import pack_state, write_dir
        from fusionrec.models._persist import ARRAYS, MANIFEST, model_manifest

        self._check_fitted()
        # seen_ is identical to the members' training matrix; rebuilt on load
        arrays, scalars, sparse_keys = pack_state({k: v for k, v in self._get_state().items() if k != "seen_"})
        names = [f"{k:02d}" for k in range(len(self.members_))]
        children = {f"{MEMBERS_DIR}/{name}": member.save for name, member in zip(names, self.members_)}
        params = self.get_params()
        params["models"] = [member_spec(m) for m in self.models]
        manifest = {**model_manifest(self, scalars, sparse_keys, params), "members": names}
        return write_dir(path, manifest, arrays, children=children, manifest_name=MANIFEST, arrays_name=ARRAYS)

    @classmethod
    def load(cls, path: str | Path) -> Recommender:
        """Load an ensemble saved by :meth:`save` (members included)."""
        from fusionrec.models._persist import read_manifest

        path = Path(path)
        return cls._from_bundle(path, read_manifest(path))

    @classmethod
    def _from_bundle(cls, path: Path, manifest: dict[str, Any]) -> Ensemble:
        from fusionrec._storage import unpack_state
        from fusionrec.models._persist import read_arrays
        from fusionrec.models.base import load_model
        from fusionrec.models.registry import get_model_class

        target = get_model_class(manifest["model"])
        if not (isinstance(target, type) and issubclass(target, Ensemble)):
            raise BundleError(f"{path} holds a {manifest['model']} bundle, not an ensemble; use load_model(path)")
        arrays = read_arrays(path, manifest)
        members_dir = path / MEMBERS_DIR
        names = manifest.get("members")
        if not isinstance(names, list) or not names:
            raise BundleError(f"{path}/manifest.json lists no members; the ensemble bundle is damaged")
        members = [load_model(members_dir / str(name)) for name in names]
        state = unpack_state(arrays, manifest.get("scalars", {}), list(manifest.get("sparse", [])))
        state["seen_"] = members[0].seen_
        return target._assemble(manifest.get("params", {}), members, state)

    @classmethod
    def _assemble(cls, params: dict[str, Any], members: list[Recommender], state: dict[str, Any]) -> Ensemble:
        """An ensemble of this class with its loaded ``members`` and its own learned ``state``."""
        ensemble = cls(**params)
        ensemble.members_ = members
        ensemble._set_state(state)
        return ensemble


def load_ensemble(path: str | Path) -> Recommender:
    """Load any ensemble bundle (the class is read from its manifest)."""
    return Ensemble.load(path)


# ---------------------------------------------------------------------------------------------- blend
def blend_weights(
    P: np.ndarray, y: np.ndarray, *, nonnegative: bool = True, fit_intercept: bool = True, l2: float = 0.0
) -> tuple[np.ndarray, float]:
    """Least-squares weights of member predictions ``P [n, M]`` for targets ``y [n]``.

    Minimises ``|y - b - P w|^2 + l2 |w|^2`` over ``w`` (``w >= 0`` when ``nonnegative``, by NNLS) and
    the free intercept ``b`` (``0`` unless ``fit_intercept``); the intercept is eliminated exactly by
    centring ``P`` and ``y``.
    """
    from scipy.optimize import nnls

    P = np.asarray(P, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if fit_intercept:
        p_mean, y_mean = P.mean(axis=0), float(y.mean())
        A, t = P - p_mean, y - y_mean
    else:
        p_mean, y_mean = np.zeros(P.shape[1]), 0.0
        A, t = P, y
    if l2 > 0:
        A = np.vstack([A, np.sqrt(l2) * np.eye(P.shape[1])])
        t = np.concatenate([t, np.zeros(P.shape[1])])
    if nonnegative:
        w, _ = nnls(A, t)
    else:
        w = np.linalg.lstsq(A, t, rcond=None)[0]
    b = y_mean - float(p_mean @ w) if fit_intercept else 0.0
    return w, b


class WeightedBlend(Ensemble):
    """Linear blend ``score = b + sum_m w_m s_m`` of the members' scores, weights by least squares on validation.

    See :func:`blend_weights` for the estimator and the module notes for fitting and persistence.

    Parameters
    ----------
    models, valid_fraction, refit, clip, seed
        As in :class:`Ensemble`.
    nonnegative
        Constrain ``w >= 0`` (NNLS; robust with correlated members) or leave them free.
    fit_intercept
        Learn ``b`` (else ``b = 0``).
    l2
        Ridge penalty on ``w`` (not on ``b``).

    Attributes
    ----------
    weights_ : ndarray
        ``float64 [M]`` member weights.
    intercept_ : float
        The intercept ``b``.
    valid_rmse_ : float
        RMSE of the blend on the validation interactions (before clipping).
    """

    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        "nonnegative": [*BOOL],
        "fit_intercept": [*BOOL],
        "l2": [*NONNEGATIVE],
    }

    def __init__(
        self,
        *,
        models: list[MemberSpec],
        nonnegative: bool = True,
        fit_intercept: bool = True,
        l2: float = 0.0,
        valid_fraction: float = 0.1,
        refit: bool = True,
        clip: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__(models=models, valid_fraction=valid_fraction, refit=refit, clip=clip, seed=seed)
        self.nonnegative = nonnegative
        self.fit_intercept = fit_intercept
        self.l2 = l2

    def _check_params(self) -> None:
        if self.l2 < 0:
            raise ConfigError("l2 must be >= 0")

    def _fit_combiner(self, valid: Interactions) -> None:
        users, items, y = valid.row_indices(), valid.matrix.indices.astype(np.int64), valid.matrix.data
        P = self.member_predictions(users, items, valid.timestamps).T
        w, b = blend_weights(
            P, y, nonnegative=bool(self.nonnegative), fit_intercept=bool(self.fit_intercept), l2=float(self.l2)
        )
        self.weights_ = w
        self.intercept_ = b
        self.valid_rmse_ = float(np.sqrt(np.mean((b + P @ w - y) ** 2)))

    def combine(self, member_scores: np.ndarray, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        out = np.tensordot(self.weights_.astype(np.float32), member_scores, axes=1)
        out += np.float32(self.intercept_)
        return out
