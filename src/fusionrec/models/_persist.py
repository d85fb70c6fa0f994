"""Model persistence: ``manifest.json`` + ``arrays.npz``, no pickle, atomic, integrity-checked."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from fusionrec.errors import BundleError, IncompatibleBundleError

if TYPE_CHECKING:
    from fusionrec.models.base import Recommender

MANIFEST = "manifest.json"
ARRAYS = "arrays.npz"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float | int | str | bool) or value is None:
        return value
    raise BundleError(f"hyper-parameter value {value!r} cannot be stored in JSON")


def write_bundle(model: Recommender, path: Path, extra: dict[str, Any] | None = None) -> Path:
    """Write ``model`` into directory ``path`` atomically (a temp dir renamed into place)."""
    from fusionrec import __version__
    from fusionrec.models.base import FORMAT_VERSION
    from fusionrec.models.registry import registered_name

    model._check_fitted()
    arrays: dict[str, np.ndarray] = {}
    scalars: dict[str, Any] = {}
    sparse_keys: list[str] = []
    for key, value in model._get_state().items():
        if sp.issparse(value):
            csr = sp.csr_matrix(value)
            arrays[f"{key}.data"] = csr.data
            arrays[f"{key}.indices"] = csr.indices
            arrays[f"{key}.indptr"] = csr.indptr
            arrays[f"{key}.shape"] = np.asarray(csr.shape, dtype=np.int64)
            sparse_keys.append(key)
        elif isinstance(value, np.ndarray):
            if value.dtype == object:
                raise BundleError(f"state {key!r} is an object array; store it as numbers or str")
            arrays[key] = value
        else:
            scalars[key] = _jsonable(value)
    buf = io.BytesIO()
    np.savez(buf, allow_pickle=False, **arrays)  # type: ignore[arg-type]
    blob = buf.getvalue()
    manifest = {
        "format_version": FORMAT_VERSION,
        "fusionrec_version": __version__,
        "model": registered_name(type(model)),
        "params": _jsonable(model.get_params()),
        "scalars": scalars,
        "sparse": sparse_keys,
        "arrays_sha256": hashlib.sha256(blob).hexdigest(),
        **(extra or {}),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    (tmp / ARRAYS).write_bytes(blob)
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    for f in (tmp / ARRAYS, tmp / MANIFEST):
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    if path.exists():
        old = path.with_name(f".{path.name}.old")
        if old.exists():
            _rmtree(old)
        path.rename(old)
        tmp.rename(path)
        _rmtree(old)
    else:
        tmp.rename(path)
    return path


def _rmtree(p: Path) -> None:
    import shutil

    shutil.rmtree(p, ignore_errors=True)


def read_manifest(path: Path) -> dict[str, Any]:
    from fusionrec.models.base import FORMAT_VERSION

    mpath = Path(path) / MANIFEST
    if not mpath.exists():
        raise BundleError(f"{path} is not a fusionrec bundle (no {MANIFEST}); save one with model.save(path)")
    try:
        manifest = json.loads(mpath.read_text())
    except json.JSONDecodeError as exc:
        raise BundleError(f"{mpath} is not valid JSON ({exc}); the bundle is damaged, save it again") from exc
    version = manifest.get("format_version")
    if not isinstance(version, int):
        raise BundleError(f"{mpath} has no format_version; the bundle is damaged")
    if version > FORMAT_VERSION:
        raise IncompatibleBundleError(
            f"bundle format {version} is newer than this fusionrec reads ({FORMAT_VERSION}); "
            "upgrade fusionrec to load it"
        )
    return manifest  # type: ignore[no-any-return]


def read_bundle(path: Path) -> Recommender:
    from fusionrec.models.registry import get_model_class

    manifest = read_manifest(path)
    cls = get_model_class(manifest["model"])
    from_bundle = getattr(cls, "_from_bundle", None)
    if from_bundle is not None:  # composite models (ensembles) read their own layout
        return from_bundle(Path(path), manifest)  # type: ignore[no-any-return]
    apath = Path(path) / ARRAYS
    if not apath.exists():
        raise BundleError(f"{apath} is missing; the bundle is incomplete")
    blob = apath.read_bytes()
    if hashlib.sha256(blob).hexdigest() != manifest.get("arrays_sha256"):
        raise BundleError(f"{apath} does not match the checksum in its manifest (truncated or tampered)")
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise BundleError(f"{apath} cannot be read ({exc})") from exc
    model = cls(**manifest.get("params", {}))
    state: dict[str, Any] = dict(manifest.get("scalars", {}))
    for key in manifest.get("sparse", []):
        shape = tuple(int(x) for x in arrays.pop(f"{key}.shape"))
        state[key] = sp.csr_matrix(
            (arrays.pop(f"{key}.data"), arrays.pop(f"{key}.indices"), arrays.pop(f"{key}.indptr")),
            shape=shape,
        )
    state.update(arrays)
    model._set_state(state)
    return model
