"""Model persistence: ``manifest.json`` + ``arrays.npz`` written by :mod:`fusionrec._storage` (no pickle, atomic,
one checksum over the manifest and the arrays)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fusionrec._storage import jsonable, pack_state, read_dir, unpack_state, write_dir
from fusionrec._storage import read_manifest as _read_manifest
from fusionrec.models.registry import get_model_class, registered_name

#: 2: one checksum over manifest and arrays (fusionrec._storage); 1 still loads
FORMAT_VERSION = 2

#: a fitted model (``fusionrec.models.base.Recommender``; this module sits below it and takes any such object)
Recommender = Any

MANIFEST = "manifest.json"
ARRAYS = "arrays.npz"

#: kept for callers of the former private name
_jsonable = jsonable


def model_manifest(
    model: Recommender, scalars: dict[str, Any], sparse_keys: list[str], params: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The manifest fields every model directory has (format, versions, class, hyper-parameters, state layout);
    ``params`` replaces ``model.get_params()`` (ensembles store their members' specs)."""
    from fusionrec._version import __version__

    return {
        "format_version": FORMAT_VERSION,
        "fusionrec_version": __version__,
        "model": registered_name(type(model)),
        "params": jsonable(model.get_params() if params is None else params),
        "scalars": scalars,
        "sparse": sparse_keys,
    }


def write_bundle(
    model: Recommender,
    path: Path,
    extra: dict[str, Any] | None = None,
    *,
    children: dict[str, Callable[[Path], Any]] | None = None,
) -> Path:
    """Write ``model`` into directory ``path`` atomically (see :func:`fusionrec._storage.write_dir`)."""
    model._check_fitted()
    arrays, scalars, sparse_keys = pack_state(model._get_state())
    manifest = {**model_manifest(model, scalars, sparse_keys), **(extra or {})}
    return write_dir(path, manifest, arrays, children=children, manifest_name=MANIFEST, arrays_name=ARRAYS)


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of a model directory; IncompatibleBundleError when a newer fusionrec wrote it."""
    return _read_manifest(
        path, manifest_name=MANIFEST, max_version=FORMAT_VERSION, hint="save one with model.save(path)"
    )


def read_arrays(path: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """The verified arrays of a model directory (checksum over manifest and arrays)."""
    return read_dir(path, manifest, manifest_name=MANIFEST, arrays_name=ARRAYS)


def read_bundle(path: Path) -> Recommender:
    manifest = read_manifest(path)
    cls = get_model_class(manifest["model"])
    from_bundle = getattr(cls, "_from_bundle", None)
    if from_bundle is not None:  # composite models (ensembles) read their own layout
        return from_bundle(Path(path), manifest)  # type: ignore[no-any-return]
    arrays = read_arrays(Path(path), manifest)
    model = _construct(cls, manifest, Path(path))
    model._set_state(unpack_state(arrays, manifest.get("scalars", {}), list(manifest.get("sparse", []))))
    return model


def _construct(cls: Any, manifest: dict[str, Any], path: Path) -> Recommender:
    """The unfitted model of a manifest: its saved hyper-parameters (renamed ones upgraded) checked against the
    class's declared names and constraints before anything uses them (``BundleError`` naming the field)."""
    from fusionrec.errors import BundleError, ConfigError

    params = manifest.get("params", {})
    if not isinstance(params, dict):
        raise BundleError(f"{path / MANIFEST}: 'params' is not an object; the bundle was edited, write it again")
    try:
        model = cls(**cls.upgrade_params(dict(params)))  # bundles from before a parameter rename
        model._validate_params()
    except (ConfigError, TypeError) as exc:
        raise BundleError(
            f"{path / MANIFEST}: the saved hyper-parameters do not fit {cls.__name__} ({exc}); the bundle was edited "
            "or written by an incompatible version, write it again"
        ) from exc
    return model
