"""Fitted encoders and side information as JSON-able metadata plus numeric / unicode arrays, never pickle.

``encoder_to_state(enc)`` returns ``(meta, arrays)``: ``meta`` names the registered encoder (a key of
:data:`~fusionrec.features.ENCODERS`, or ``"pipeline"`` / ``"postprocess"`` / ``"image-model"``), its version,
its constructor parameters (nested encoders, such as a pipeline's steps, stored recursively) and its scalar state;
``arrays`` holds vocabularies, idf weights, scalers, categories and network weights.  Each encoder class says
what its state is (:meth:`~fusionrec.features.Encoder.get_state` / ``set_state``); a fitted attribute it does
not declare makes saving fail instead of silently dropping it.  Pretrained encoders (sentence embeddings,
EfficientNet, aiSFX) are stored by name, parameters and package versions: their weights load lazily, on the
first ``transform``, from the installed offline packages.

``side_to_state(side)`` / ``side_from_state(meta, arrays)`` do the same for a whole
:class:`~fusionrec.data.side.SideInfo`, with array keys under a prefix (``"side.item.title.x"``,
``"side.item.title.encoder.vocabulary"``, ``"side.social.indptr"``) so that a bundle can store them beside its
own arrays in one ``np.savez(..., allow_pickle=False)`` file.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator, Mapping
from importlib import metadata
from typing import Any

import numpy as np
import scipy.sparse as sp

from fusionrec.data.side import SideInfo
from fusionrec.errors import BundleError
from fusionrec.features.base import Encoder

__all__ = [
    "ENCODER_FORMAT",
    "SIDE_FORMAT",
    "encoder_from_state",
    "encoder_to_state",
    "side_from_state",
    "side_to_state",
]

ENCODER_FORMAT = "fusionrec.encoder/1"
SIDE_FORMAT = "fusionrec.side/1"

#: composition and hook classes that can be stored besides the ENCODERS registry
_BUILTIN = {
    "pipeline": "fusionrec.features.base:Pipeline",
    "postprocess": "fusionrec.features.base:PostProcess",
    "image-model": "fusionrec.features.image:ImageModelEncoder",
}
_ARRAY_KINDS = "biufcU"  # bool, integers, floats, complex, unicode: what np.load reads with allow_pickle=False


def _registry() -> dict[str, str]:
    from fusionrec.features.pipeline import ENCODERS

    return {**_BUILTIN, **ENCODERS}


def _name_of(enc: Encoder) -> str:
    path = f"{type(enc).__module__}:{type(enc).__qualname__}"
    registry = _registry()
    if registry.get(enc.name) == path:
        return enc.name
    for name, target in registry.items():
        if target == path:
            return name
    raise BundleError(
        f"{type(enc).__name__} is not a registered encoder, so it cannot be stored without pickle; register it "
        f"first (fusionrec.features.ENCODERS['<name>'] = {path!r}) and declare its fitted state in "
        "state_attrs (or get_state / set_state)"
    )


def _class_of(name: str) -> type[Encoder]:
    registry = _registry()
    if name not in registry:
        raise BundleError(
            f"the stored encoder {name!r} is unknown to this fusionrec (known: {sorted(registry)}); register it "
            "in fusionrec.features.ENCODERS before loading, or upgrade fusionrec"
        )
    module, _, cls = registry[name].partition(":")
    return getattr(importlib.import_module(module), cls)  # type: ignore[no-any-return]


def _put(arrays: dict[str, np.ndarray], key: str, value: Any) -> None:
    arr = np.asarray(value)
    if arr.dtype.kind not in _ARRAY_KINDS:
        raise BundleError(
            f"state array {key!r} has dtype {arr.dtype}; only numeric, boolean and unicode arrays are stored "
            "(no pickle): convert it (e.g. np.asarray(values, dtype=str)) in the encoder's get_state"
        )
    if key in arrays:
        raise BundleError(f"two state arrays share the key {key!r}; rename the modality or encoder parameter")
    arrays[key] = arr


def _json(value: Any, where: str) -> Any:
    """``value`` as JSON types; tuples become ``{"__tuple__": [...]}`` so that they come back as tuples."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple):
        return {"__tuple__": [_json(v, f"{where}[{j}]") for j, v in enumerate(value)]}
    if isinstance(value, list):
        return [_json(v, f"{where}[{j}]") for j, v in enumerate(value)]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _json(v, f"{where}.{k}") for k, v in value.items()}
    raise BundleError(
        f"{where} is a {type(value).__name__}, which cannot be stored without pickle; use numbers, strings, "
        "lists, tuples or arrays (arrays go to get_state's arrays)"
    )


def _unjson(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(_unjson(v) for v in value["__tuple__"])
        return {k: _unjson(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unjson(v) for v in value]
    return value


def _dump_param(value: Any, key: str, arrays: dict[str, np.ndarray]) -> Any:
    """A constructor parameter as JSON; nested encoders become ``{"__encoder__": meta}`` with arrays under ``key.``."""
    if isinstance(value, Encoder):
        meta, sub = encoder_to_state(value)
        for k, v in sub.items():
            _put(arrays, f"{key}.{k}", v)
        return {"__encoder__": meta}
    if isinstance(value, list | tuple) and any(isinstance(v, Encoder) for v in value):
        items = [_dump_param(v, f"{key}.{j}", arrays) for j, v in enumerate(value)]
        return items if isinstance(value, list) else {"__tuple__": items}
    return _json(value, f"parameter {key!r}")


def _load_param(value: Any, key: str, arrays: Mapping[str, np.ndarray], context: dict[str, Any]) -> Any:
    if isinstance(value, dict) and set(value) == {"__encoder__"}:
        return encoder_from_state(value["__encoder__"], _Prefixed(arrays, f"{key}."), **context)
    if isinstance(value, dict) and set(value) == {"__tuple__"}:
        return tuple(_load_param(v, f"{key}.{j}", arrays, context) for j, v in enumerate(value["__tuple__"]))
    if isinstance(value, list):
        return [_load_param(v, f"{key}.{j}", arrays, context) for j, v in enumerate(value)]
    return _unjson(value)


class _Prefixed(Mapping[str, np.ndarray]):
    """The arrays whose key starts with ``prefix``, without it (values read only when asked: npz files are lazy)."""

    def __init__(self, base: Mapping[str, np.ndarray], prefix: str) -> None:
        self.base, self.prefix = base, prefix

    def __getitem__(self, key: str) -> np.ndarray:
        return self.base[self.prefix + key]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and (self.prefix + key) in self.base

    def __iter__(self) -> Iterator[str]:
        n = len(self.prefix)
        return (k[n:] for k in self.base if k.startswith(self.prefix))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _package_versions(names: tuple[str, ...]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for dist in names:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def encoder_to_state(enc: Encoder) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """An encoder (fitted or not) as ``(JSON-able meta, {key: numeric or unicode array})``, without pickle.

    Raises
    ------
    BundleError
        The encoder class is not registered, a parameter or state value is not storable, or the encoder has a
        fitted attribute (name ending with ``_``) that its class does not declare (it would be lost).
    """
    if not isinstance(enc, Encoder):
        raise BundleError(f"expected a fusionrec Encoder, got {type(enc).__name__}")
    name = _name_of(enc)
    declared = {*enc.state_attrs, *enc.custom_state_attrs, *enc.transient_attrs}
    undeclared = sorted(a for a in vars(enc) if a.endswith("_") and not a.startswith("_") and a not in declared)
    if undeclared:
        raise BundleError(
            f"{type(enc).__name__} has fitted attributes {undeclared} that its get_state does not save; add them "
            "to the class's state_attrs (arrays or JSON values) or extend get_state / set_state"
        )
    arrays: dict[str, np.ndarray] = {}
    params = {k: _dump_param(v, k, arrays) for k, v in enc.storable_params().items()}
    fitted = bool(enc.is_fitted)
    state: dict[str, Any] = {}
    own: list[str] = []
    if fitted:
        scalars, values = enc.get_state()
        state = {k: _json(v, f"{type(enc).__name__} state {k!r}") for k, v in scalars.items()}
        for k, v in values.items():
            _put(arrays, k, v)
            own.append(k)
    meta: dict[str, Any] = {
        "format": ENCODER_FORMAT,
        "encoder": name,
        "version": enc.version,
        "params": params,
        "fitted": fitted,
        "state": state,
        "arrays": own,
    }
    packages = enc.required_packages()
    if packages:
        meta["packages"] = _package_versions(packages)
    return meta, arrays


def encoder_from_state(
    meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray], *, callables: Mapping[str, Any] | None = None
) -> Encoder:
    """Rebuild an encoder from :func:`encoder_to_state` output; its ``transform`` equals the original's.

    Parameters
    ----------
    meta, arrays
        As returned by :func:`encoder_to_state` (``arrays`` may be an ``np.load`` result opened with
        ``allow_pickle=False``; extra keys are ignored).
    callables
        ``{key: fn}`` for :class:`~fusionrec.features.ImageModelEncoder` callables, which are never stored.

    Raises
    ------
    BundleError
        Unknown format or encoder, another encoder version, or missing / inconsistent state.
    """
    if not isinstance(meta, Mapping) or meta.get("format") != ENCODER_FORMAT:
        found = meta.get("format") if isinstance(meta, Mapping) else type(meta).__name__
        raise BundleError(f"not a stored fusionrec encoder (format {found!r}, expected {ENCODER_FORMAT!r})")
    try:
        name, version, params, fitted = meta["encoder"], meta["version"], meta["params"], bool(meta["fitted"])
        state, own = dict(meta.get("state", {})), list(meta.get("arrays", []))
    except KeyError as exc:
        raise BundleError(f"the stored encoder lacks {exc}; the bundle is corrupt, save it again") from exc
    cls = _class_of(name)
    if str(version) != cls.version:
        raise BundleError(
            f"encoder {name!r} was stored at version {version}, this fusionrec has version {cls.version} (its output "
            "changed); refit it (build_side_info) and save the bundle again"
        )
    for dist, stored in dict(meta.get("packages", {})).items():
        installed = _package_versions((dist,))[dist]
        if stored is not None and installed != stored:
            logging.getLogger(__name__).warning(
                "encoder %r was saved with %s %s, installed: %s; its rows may differ slightly", name, dist, stored,
                installed,
            )  # fmt: skip
    context = {"callables": callables}
    enc = cls.from_params({k: _load_param(v, k, arrays, context) for k, v in params.items()}, **context)
    if fitted:
        missing = [k for k in own if k not in arrays]
        if missing:
            raise BundleError(f"the stored state of encoder {name!r} lacks the arrays {missing}; save it again")
        enc.set_state({k: _unjson(v) for k, v in state.items()}, {k: np.asarray(arrays[k]) for k in own})
    if fitted and not enc.is_fitted:
        raise BundleError(f"encoder {name!r} was stored fitted but its state did not restore it; save it again")
    return enc


def side_to_state(side: SideInfo, *, prefix: str = "side.") -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A :class:`~fusionrec.data.side.SideInfo` as ``(JSON-able meta, arrays)``, without pickle.

    Array keys: ``{prefix}{item|user}.{name}.x`` (features), ``.present`` (presence), ``.encoder.<key>`` (the
    fitted encoder's arrays) and ``{prefix}social.{data,indices,indptr}``.  Modality order, kinds and encoder
    metadata go to ``meta``.
    """
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {"format": SIDE_FORMAT, "prefix": prefix, "social": None}
    for target, feats, present, encs, kinds in (
        ("item", side.item_features, side.item_present, side.item_encoders, side.item_kinds),
        ("user", side.user_features, side.user_present, side.user_encoders, side.user_kinds),
    ):
        entries = []
        for name in dict.fromkeys([*feats, *kinds, *encs]):
            base = f"{prefix}{target}.{name}."
            entry: dict[str, Any] = {"name": str(name), "kind": kinds.get(name)}
            entry["features"] = name in feats
            if name in feats:
                _put(arrays, base + "x", feats[name])
            entry["present"] = name in present
            if name in present:
                _put(arrays, base + "present", np.asarray(present[name], dtype=bool))
            enc = encs.get(name)
            entry["encoder"] = None
            if enc is not None:
                enc_meta, enc_arrays = encoder_to_state(enc)
                entry["encoder"] = enc_meta
                for k, v in enc_arrays.items():
                    _put(arrays, f"{base}encoder.{k}", v)
            entries.append(entry)
        meta[target] = entries
    if side.social is not None:
        social = sp.csr_matrix(side.social)
        for part in ("data", "indices", "indptr"):
            _put(arrays, f"{prefix}social.{part}", getattr(social, part))
        meta["social"] = {"shape": [int(n) for n in social.shape]}
    return meta, arrays


def side_from_state(
    meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray], *, callables: Mapping[str, Any] | None = None
) -> SideInfo:
    """Rebuild the :class:`~fusionrec.data.side.SideInfo` that :func:`side_to_state` stored.

    ``arrays`` may hold other keys (a bundle's own arrays); ``callables`` as in :func:`encoder_from_state`.
    """
    if not isinstance(meta, Mapping) or meta.get("format") != SIDE_FORMAT:
        found = meta.get("format") if isinstance(meta, Mapping) else type(meta).__name__
        raise BundleError(f"not stored side information (format {found!r}, expected {SIDE_FORMAT!r})")
    prefix = str(meta.get("prefix", "side."))

    def array(key: str) -> np.ndarray:
        if prefix + key not in arrays:
            raise BundleError(f"the stored side information lacks the array {prefix + key!r}; save it again")
        return np.asarray(arrays[prefix + key])

    side = SideInfo()
    for target, feats, present, encs, kinds in (
        ("item", side.item_features, side.item_present, side.item_encoders, side.item_kinds),
        ("user", side.user_features, side.user_present, side.user_encoders, side.user_kinds),
    ):
        for entry in meta.get(target, []):
            name = entry["name"]
            base = f"{target}.{name}."
            if entry.get("features"):
                feats[name] = array(base + "x")
            if entry.get("present"):
                present[name] = array(base + "present").astype(bool)
            if entry.get("kind") is not None:
                kinds[name] = entry["kind"]
            if entry.get("encoder") is not None:
                encs[name] = encoder_from_state(
                    entry["encoder"], _Prefixed(arrays, f"{prefix}{base}encoder."), callables=callables
                )
    social = meta.get("social")
    if social is not None:
        shape = tuple(int(n) for n in social["shape"])
        side.social = sp.csr_matrix(
            (array("social.data"), array("social.indices"), array("social.indptr")), shape=shape
        )
    return side
