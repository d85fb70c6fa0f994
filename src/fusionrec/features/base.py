"""The encoder contract, per-item error reports and post-processing steps.

Shapes: ``n`` items in a batch, ``d`` output dimension.  Every encoder maps a list of raw items (texts, image
paths or arrays, audio paths or waveforms, label lists) or a table to ``float32 [n, d]``.

Errors on single items are collected, never fatal: a corrupt image gives a zero row and an entry in the
:class:`FeatureReport` (position, item id when known, and the reason), and the batch goes on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import numpy as np

from fusionrec._params import BOOL, POSITIVE_INT, Options, Parameterized
from fusionrec._similarity import normalize_rows
from fusionrec.errors import BundleError, ConfigError, NotFittedError

__all__ = ["Encoder", "FeatureFailure", "FeatureReport", "ItemError", "Pipeline", "PostProcess"]


class ItemError(Exception):
    """Raised inside an encoder for one bad item (unreadable file, empty waveform); it becomes a report entry."""


@dataclass(frozen=True)
class FeatureFailure:
    """One item that could not be encoded (its row is zero)."""

    position: int
    item_id: Any
    reason: str
    modality: str = ""


@dataclass
class FeatureReport:
    """What happened while encoding: counts, cache hits and the failed items.

    Attributes
    ----------
    n_items
        Items asked for.
    n_cached
        Rows served from the feature cache.
    n_computed
        Rows computed by the encoder (failures included).
    failures
        One :class:`FeatureFailure` per item that got a zero row.
    notes
        Free-form remarks (modalities skipped, encoders chosen).
    """

    n_items: int = 0
    n_cached: int = 0
    n_computed: int = 0
    failures: list[FeatureFailure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no item failed."""
        return not self.failures

    @property
    def failed_ids(self) -> list[Any]:
        return [f.item_id for f in self.failures]

    def add_failure(self, position: int, reason: str, item_id: Any = None, modality: str = "") -> None:
        self.failures.append(FeatureFailure(int(position), item_id, reason, modality))

    def merge(self, other: FeatureReport, modality: str = "") -> FeatureReport:
        """Add ``other``'s counts and failures (tagged with ``modality``) to this report; returns self."""
        self.n_items += other.n_items
        self.n_cached += other.n_cached
        self.n_computed += other.n_computed
        for f in other.failures:
            self.failures.append(FeatureFailure(f.position, f.item_id, f.reason, f.modality or modality))
        self.notes.extend(f"{modality}: {n}" if modality else n for n in other.notes)
        return self

    def with_ids(self, ids: Any) -> FeatureReport:
        """Fill in item ids from the positions (``ids[position]``); returns self."""
        arr = np.asarray(ids)
        self.failures = [
            FeatureFailure(f.position, _scalar(arr[f.position]), f.reason, f.modality) for f in self.failures
        ]
        return self

    def summary(self) -> str:
        text = f"{self.n_items} items: {self.n_cached} cached, {self.n_computed} computed, {len(self.failures)} failed"
        if self.failures:
            first = self.failures[0]
            text += f" (e.g. item {first.item_id!r}: {first.reason})"
        return text


def _fresh(value: Any) -> Any:
    """An unfitted copy of a nested encoder parameter (an encoder, or a list / tuple holding encoders)."""
    if isinstance(value, Encoder):
        return value.clone()
    if isinstance(value, list | tuple) and any(isinstance(v, Encoder) for v in value):
        return type(value)(v.clone() if isinstance(v, Encoder) else v for v in value)
    return value


def _scalar(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float | int | str | bool) or value is None:
        return value
    if isinstance(value, Encoder):
        return {"encoder": value.name, "key": value.cache_key()}
    return repr(value)


class Encoder(Parameterized):
    """Base class of every feature encoder.

    Subclasses take keyword-only hyper-parameters (``def __init__(self, *, ...)``) and store them unchanged;
    their allowed values are declared as data in ``_param_constraints`` (the vocabulary of
    :mod:`fusionrec._params`: :class:`~fusionrec._params.Interval`, :class:`~fusionrec._params.Options`, types,
    ``None``) and checked once, when the encoder is built; an unknown name is a :class:`ConfigError` with a
    did-you-mean hint and a former name (``_renamed_params``) still works with a ``FutureWarning``.
    Cross-parameter and environment rules (an optional package) go to :meth:`_validate`, run by :meth:`fit`.
    Learned state lives in attributes ending with ``_``; subclasses implement either :meth:`_encode_one`
    (one item -> 1-D vector; failures become zero rows) or :meth:`_encode_batch` (a list of items ->
    ``(rows, {position: reason})``).

    Class attributes
    ----------------
    name
        Short name (also the cache folder prefix).
    version
        Bumped whenever the output of the same parameters changes (invalidates cached features).
    deterministic
        Same input, same output.
    cacheable
        Rows depend only on the item (and the fitted state), so they can be cached by content hash.
    stateless
        :meth:`fit` learns nothing from the data (``transform`` works without ``fit``).
    state_attrs
        Fitted attributes that :meth:`get_state` saves as they are (arrays, or JSON-able scalars and lists).
    custom_state_attrs
        Fitted attributes that an overridden :meth:`get_state` / :meth:`set_state` converts itself (a fitted
        vectorizer, a torch module).  Any other fitted attribute (name ending with ``_``) makes
        :func:`fusionrec.features.encoder_to_state` refuse the encoder, so no state is silently dropped.
    packages
        Distributions a pretrained encoder loads its weights from; their versions are stored with its state.
    """

    name: ClassVar[str] = "encoder"
    version: ClassVar[str] = "1"
    deterministic: ClassVar[bool] = True
    cacheable: ClassVar[bool] = True
    stateless: ClassVar[bool] = True
    state_attrs: ClassVar[tuple[str, ...]] = ()
    custom_state_attrs: ClassVar[tuple[str, ...]] = ()
    transient_attrs: ClassVar[tuple[str, ...]] = ("last_report_",)
    packages: ClassVar[tuple[str, ...]] = ()
    #: allowed values of each hyper-parameter (merged along the bases; see :mod:`fusionrec._params`)
    #: encoders check their parameters once constructed (fusionrec._params.Parameterized holds the machinery)
    _validate_on_init: ClassVar[bool] = True

    # ------------------------------------------------------------------ parameters
    def _clone_param(self, value: Any) -> Any:
        return _fresh(value)

    def storable_params(self) -> dict[str, Any]:
        """:meth:`get_params` as saved states and cache keys hold them (default: the same; a callable -> its key)."""
        return self.get_params()

    @classmethod
    def from_params(cls, params: Mapping[str, Any], **context: Any) -> Self:
        """An unfitted encoder from :meth:`storable_params` output (``context``: extras some encoders need to
        rebuild); former parameter names are upgraded silently."""
        return cls(**cls.upgrade_params(params))

    # ------------------------------------------------------------------ state (no pickle)
    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The fitted state: ``(JSON-able scalars, {key: numeric or unicode array})``.

        Saves :attr:`state_attrs` under their names without the trailing ``_``; encoders with other state
        (:attr:`custom_state_attrs`) extend this.  See :func:`fusionrec.features.encoder_to_state`.
        """
        meta: dict[str, Any] = {}
        arrays: dict[str, np.ndarray] = {}
        for attr in self.state_attrs:
            if hasattr(self, attr):
                value = getattr(self, attr)
                if isinstance(value, np.ndarray):
                    arrays[attr.rstrip("_")] = value
                else:
                    meta[attr.rstrip("_")] = value
        return meta, arrays

    def set_state(self, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        """Restore what :meth:`get_state` returned, on an encoder built with the same parameters."""
        for attr in self.state_attrs:
            key = attr.rstrip("_")
            if key in arrays:
                setattr(self, attr, np.asarray(arrays[key]))
            elif key in meta:
                setattr(self, attr, meta[key])
        missing = [a.rstrip("_") for a in self._required_state() if not hasattr(self, a)]
        if missing:
            raise BundleError(
                f"the stored state of {type(self).__name__} lacks {missing}; the bundle is incomplete or was "
                "written by an incompatible version: refit the encoder (build_side_info) and save it again"
            )

    def _required_state(self) -> tuple[str, ...]:
        """Attributes a fitted encoder must have after :meth:`set_state` (default: all :attr:`state_attrs`)."""
        return self.state_attrs

    def required_packages(self) -> tuple[str, ...]:
        """Distributions this encoder loads weights from (default :attr:`packages`)."""
        return self.packages

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.storable_params().items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------ contract
    @property
    def dim(self) -> int:
        """Output dimension (known after :meth:`fit` for data-dependent encoders)."""
        value = getattr(self, "dim_", None)
        if value is None:
            raise NotFittedError(f"{type(self).__name__}.dim is known after fit; call fit(raw) first")
        return int(value)

    @property
    def is_fitted(self) -> bool:
        return self.stateless or hasattr(self, "dim_")

    def fit(self, raw: Any) -> Self:
        """Learn whatever the encoder needs from ``raw`` (vocabulary, scalers); returns ``self``."""
        self._validate()
        self._fit(raw)
        return self

    def _validate(self) -> None:
        """Rules the declared constraints cannot state (between parameters, optional packages); run by :meth:`fit`."""

    def _fit(self, raw: Any) -> None:
        """Default: nothing to learn."""

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit(raw) first")

    def transform(self, raw: Any) -> np.ndarray:
        """Encode ``raw`` to ``float32 [n, d]``; failed items get zero rows (see :attr:`last_report_`)."""
        out, report = self.transform_report(raw)
        self.last_report_ = report
        return out

    def fit_transform(self, raw: Any) -> np.ndarray:
        return self.fit(raw).transform(raw)

    def transform_report(self, raw: Any, ids: Any = None) -> tuple[np.ndarray, FeatureReport]:
        """Encode ``raw`` and return the rows with a :class:`FeatureReport` (ids filled in when given)."""
        self._check_fitted()
        items = self._as_items(raw)
        rows, errors = self._encode_batch(items)
        report = FeatureReport(n_items=len(items), n_computed=len(items))
        for pos, reason in sorted(errors.items()):
            report.add_failure(pos, reason)
        if ids is not None:
            report.with_ids(ids)
        return rows, report

    def _as_items(self, raw: Any) -> list[Any]:
        if isinstance(raw, str | bytes):
            raise ConfigError(f"{type(self).__name__} expects a list of items, got a single {type(raw).__name__}")
        return list(raw)

    def _encode_batch(self, items: list[Any]) -> tuple[np.ndarray, dict[int, str]]:
        """Encode a list of items; returns ``(float32 [n, d], {position: reason})`` with zero rows for failures."""
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        errors: dict[int, str] = {}
        for j, item in enumerate(items):
            if item is None:
                errors[j] = "missing (no content)"
                continue
            try:
                out[j] = self._encode_one(item)
            except ItemError as exc:
                errors[j] = str(exc)
        return out, errors

    def _encode_one(self, item: Any) -> np.ndarray:
        raise NotImplementedError

    # ------------------------------------------------------------------ caching
    def state_fingerprint(self) -> str:
        """Hash of the fitted state (empty for stateless encoders); part of :meth:`cache_key`."""
        return ""

    def cache_key(self) -> str:
        """Folder name of this encoder's cached rows: name, version, parameters and fitted state."""
        payload = json.dumps(
            {"name": self.name, "version": self.version, "params": _jsonable(self.storable_params())},
            sort_keys=True,
        )
        digest = hashlib.sha256((payload + self.state_fingerprint()).encode()).hexdigest()[:20]
        return f"{self.name}-v{self.version}-{digest}"


def _fingerprint_arrays(*arrays: Any) -> str:
    h = hashlib.sha256()
    for a in arrays:
        arr = np.ascontiguousarray(np.asarray(a))
        h.update(str(arr.dtype).encode() + str(arr.shape).encode())
        h.update(arr.tobytes() if arr.dtype != object else "\x1f".join(map(str, arr.ravel())).encode())
    return h.hexdigest()


class PostProcess(Encoder):
    """Normalise or reduce a dense matrix: ``"l2"`` rows, ``"standard"`` columns, or ``"pca"``.

    ``l2``: ``x / ||x||_2`` (zero rows stay zero).  ``standard``: ``(x - mean) / std`` per column with
    the training statistics (constant columns get std 1).  ``pca``: projection on the top
    ``n_components`` principal axes of the training matrix (scikit-learn PCA, full SVD, deterministic),
    optionally ``whiten``-ed.  ``then_l2`` adds an L2 step afterwards.
    """

    name = "postprocess"
    stateless = False
    cacheable = False
    state_attrs = ("dim_", "mean_", "scale_", "components_")
    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        "method": [Options(("l2", "standard", "pca", "none"))],
        "n_components": [*POSITIVE_INT],
        "whiten": [*BOOL],
        "then_l2": [*BOOL],
    }

    def __init__(
        self, *, method: str = "l2", n_components: int = 64, whiten: bool = False, then_l2: bool = False
    ) -> None:
        self.method = method
        self.n_components = n_components
        self.whiten = whiten
        self.then_l2 = then_l2

    def _required_state(self) -> tuple[str, ...]:
        return {"standard": ("dim_", "mean_", "scale_"), "pca": ("dim_", "mean_", "components_")}.get(
            self.method, ("dim_",)
        )

    def _fit(self, raw: Any) -> None:
        x = np.asarray(raw, dtype=np.float64)
        if x.ndim != 2:
            raise ConfigError("PostProcess works on a 2-D array [n, d]")
        if self.method == "standard":
            self.mean_ = x.mean(0).astype(np.float32)
            std = x.std(0)
            self.scale_ = np.where(std > 1e-12, std, 1.0).astype(np.float32)
            self.dim_ = x.shape[1]
        elif self.method == "pca":
            from sklearn.decomposition import PCA

            k = int(min(self.n_components, x.shape[0], x.shape[1]))
            pca = PCA(n_components=k, svd_solver="full", whiten=self.whiten).fit(x)
            self.mean_ = pca.mean_.astype(np.float32)
            comp = pca.components_
            if self.whiten:
                comp = comp / np.sqrt(np.maximum(pca.explained_variance_, 1e-12))[:, None]
            # fix the sign of each axis (largest |loading| positive) so the result is reproducible
            signs = np.sign(comp[np.arange(k), np.abs(comp).argmax(1)])
            self.components_ = (comp * signs[:, None]).astype(np.float32)
            self.dim_ = k
        else:
            self.dim_ = x.shape[1]

    def transform_report(self, raw: Any, ids: Any = None) -> tuple[np.ndarray, FeatureReport]:
        self._check_fitted()
        x = np.asarray(raw, dtype=np.float32)
        if self.method == "standard":
            x = (x - self.mean_) / self.scale_
        elif self.method == "pca":
            x = (x - self.mean_) @ self.components_.T
        elif self.method == "l2":
            x = normalize_rows(x)
        if self.then_l2:
            x = normalize_rows(x)
        return np.ascontiguousarray(x, dtype=np.float32), FeatureReport(n_items=len(x), n_computed=len(x))


@dataclass(frozen=True)
class _AllOf:
    """A constraint: a list or tuple whose every element is a ``kind``."""

    kind: type

    def accepts(self, value: Any) -> bool:
        return isinstance(value, list | tuple) and all(isinstance(v, self.kind) for v in value)

    def __str__(self) -> str:
        return f"a list of {self.kind.__name__}"


class Pipeline(Encoder):
    """An encoder followed by post-processing steps
    (``Pipeline(encoder=TfidfEncoder(), steps=[PostProcess(method="pca")])``).

    Only the first encoder's rows are cached; the steps are cheap and refitted on the data.
    """

    name = "pipeline"
    stateless = False
    cacheable = False
    _param_constraints: ClassVar[dict[str, list[Any]]] = {"encoder": [Encoder], "steps": [_AllOf(PostProcess)]}

    def __init__(self, *, encoder: Encoder, steps: Sequence[PostProcess] = ()) -> None:
        self.encoder = encoder
        self.steps = steps

    @property
    def dim(self) -> int:
        return self.steps[-1].dim if self.steps else self.encoder.dim

    @property
    def is_fitted(self) -> bool:
        return self.encoder.is_fitted and all(s.is_fitted for s in self.steps)

    def fit(self, raw: Any, cache: Any = None) -> Self:
        self.encoder.fit(raw)
        x = self._base(raw, cache)[0]
        for step in self.steps:
            x = step.fit_transform(x)
        return self

    def _base(self, raw: Any, cache: Any, ids: Any = None) -> tuple[np.ndarray, FeatureReport]:
        if cache is not None:
            return cache.transform(self.encoder, raw, ids=ids)
        return self.encoder.transform_report(raw, ids=ids)

    def transform_report(self, raw: Any, ids: Any = None, cache: Any = None) -> tuple[np.ndarray, FeatureReport]:
        self._check_fitted()
        x, report = self._base(raw, cache, ids)
        for step in self.steps:
            x = step.transform(x)
        return x, report
