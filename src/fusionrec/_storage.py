"""The one on-disk format: a directory with a JSON manifest, one ``.npz`` of arrays and optional child directories.

Models (:mod:`fusionrec.models._persist`), ensembles and serving bundles are all written by :func:`write_dir` and
read by :func:`read_dir`:

* no pickle: arrays are saved with ``allow_pickle=False`` (numbers and unicode only);
* one checksum: ``manifest["sha256"]`` is the sha256 of the manifest's own content (canonical JSON, without that
  key) followed by the bytes of the arrays file, so an edited manifest is refused as surely as truncated arrays;
  each child directory is itself such a directory and its checksum is recorded in the parent's manifest
  (``children``), so mixed-up children are refused too;
* atomic: everything is written into a temporary sibling directory, files and directories are fsynced, then the
  directory is renamed into place.  Replacing an existing directory moves it aside to ``.<name>.old`` first; a
  crash between the two renames leaves that copy, which :func:`recover` (called by every read and write) puts
  back, so there is always either the old or the new directory.  Temporary directories left by a writer killed
  mid-write are removed by a later write once an hour old.

Directories of format 1 (``arrays_sha256`` over the arrays only) are still read.  The checksum field follows the
format version (:func:`read_dir`): a later format carrying ``arrays_sha256`` is a downgrade and refused.  A format-1
manifest itself is not covered by its checksum (that is why format 2 exists): its readers check what they can
(a format-1 serving bundle may only hold a format-1 model; every manifest's fields are validated).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from fusionrec.errors import BundleError, IncompatibleBundleError

__all__ = [
    "CHECKSUM_KEY",
    "jsonable",
    "pack_state",
    "read_dir",
    "read_manifest",
    "recover",
    "unpack_state",
    "write_dir",
]

CHECKSUM_KEY = "sha256"
LEGACY_CHECKSUM_KEY = "arrays_sha256"
CHILDREN_KEY = "children"


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types (numpy scalars unwrapped); raises BundleError for anything else."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float | int | str | bool) or value is None:
        return value
    raise BundleError(f"value {value!r} cannot be stored in JSON; store numbers, strings, lists or dicts")


def pack_state(state: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any], list[str]]:
    """Split learned state into ``(arrays, JSON scalars, sparse keys)``; CSR matrices become four arrays."""
    arrays: dict[str, np.ndarray] = {}
    scalars: dict[str, Any] = {}
    sparse_keys: list[str] = []
    for key, value in state.items():
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
            scalars[key] = jsonable(value)
    return arrays, scalars, sparse_keys


def unpack_state(arrays: Mapping[str, np.ndarray], scalars: Mapping[str, Any], sparse_keys: list[str]) -> dict:
    """Inverse of :func:`pack_state`."""
    rest = dict(arrays)
    state: dict[str, Any] = dict(scalars)
    for key in sparse_keys:
        try:
            shape = tuple(int(x) for x in rest.pop(f"{key}.shape"))
            state[key] = sp.csr_matrix(
                (rest.pop(f"{key}.data"), rest.pop(f"{key}.indices"), rest.pop(f"{key}.indptr")), shape=shape
            )
        except (KeyError, ValueError) as exc:
            raise BundleError(f"sparse state {key!r} is incomplete ({exc}); the bundle is damaged") from exc
    state.update(rest)
    return state


def _canonical(manifest: Mapping[str, Any]) -> bytes:
    body = {k: v for k, v in manifest.items() if k != CHECKSUM_KEY}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _checksum(manifest: Mapping[str, Any], blob: bytes) -> str:
    h = hashlib.sha256(_canonical(manifest))
    h.update(b"\0")
    h.update(blob)
    return h.hexdigest()


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can open a directory
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _aside(path: Path) -> Path:
    return path.with_name(f".{path.name}.old")


#: temporary directories of writers killed mid-write are removed once older than this
STALE_TMP_S = 3600.0


def _remove_stale_temps(target: Path) -> None:
    import time

    now = time.time()
    for p in target.parent.glob(f".{target.name}.*"):
        if p == _aside(target) or not p.is_dir():
            continue
        with contextlib.suppress(OSError):
            if now - p.stat().st_mtime > STALE_TMP_S:
                shutil.rmtree(p, ignore_errors=True)


def recover(path: str | os.PathLike[str]) -> None:
    """Undo a replacement interrupted between its two renames: put ``.<name>.old`` back when ``path`` is gone."""
    path = Path(path)
    old = _aside(path)
    if not path.exists() and old.is_dir():
        with contextlib.suppress(FileNotFoundError, OSError):  # another process may recover at the same time
            old.rename(path)
            _fsync_dir(path.parent)


def write_dir(
    path: str | os.PathLike[str],
    manifest: Mapping[str, Any],
    arrays: Mapping[str, np.ndarray],
    *,
    children: Mapping[str, Callable[[Path], Any]] | None = None,
    manifest_name: str = "manifest.json",
    arrays_name: str = "arrays.npz",
) -> Path:
    """Write directory ``path`` atomically: ``manifest_name`` (JSON), ``arrays_name`` (npz) and child directories.

    Parameters
    ----------
    path
        Target directory; replaced atomically when it exists (see the module notes).
    manifest
        JSON-able content; ``sha256`` (and ``children`` when there are children) are added here.
    arrays
        Arrays to store (no object arrays).
    children
        ``{name: writer}``; each ``writer(child_path)`` must write a directory with :func:`write_dir` (e.g.
        ``model.save``); its checksum is recorded in this manifest.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    recover(target)
    _remove_stale_temps(target)
    for key, value in arrays.items():
        if np.asarray(value).dtype == object:
            raise BundleError(f"array {key!r} holds Python objects; store numbers or str")
    buf = io.BytesIO()
    np.savez(buf, allow_pickle=False, **{k: np.asarray(v) for k, v in arrays.items()})  # type: ignore[arg-type]
    blob = buf.getvalue()
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        body = dict(jsonable(dict(manifest)))
        if children:
            sums = {}
            for name, writer in children.items():
                writer(tmp / name)
                sums[name] = read_manifest(tmp / name, manifest_name=_child_manifest(tmp / name)).get(CHECKSUM_KEY)
            body[CHILDREN_KEY] = sums
        body[CHECKSUM_KEY] = _checksum(body, blob)
        (tmp / arrays_name).write_bytes(blob)
        (tmp / manifest_name).write_text(json.dumps(body, indent=2, sort_keys=True))
        for f in (tmp / arrays_name, tmp / manifest_name):
            _fsync_file(f)
        _fsync_dir(tmp)
        _swap_in(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _child_manifest(child: Path) -> str:
    for name in ("manifest.json", "bundle.json"):
        if (child / name).is_file():
            return name
    raise BundleError(f"{child} was not written as a fusionrec directory (no manifest)")


def _swap_in(tmp: Path, target: Path) -> None:
    old = _aside(target)
    for _ in range(3):
        if old.exists():
            shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            target.rename(old)
            _fsync_dir(target.parent)
        try:
            tmp.rename(target)
        except OSError:  # a reader recovered the old copy in between: move it aside again
            if target.exists():
                continue
            raise
        _fsync_dir(target.parent)
        shutil.rmtree(old, ignore_errors=True)
        return
    raise BundleError(f"could not replace {target}: another process keeps restoring it; stop it and retry")


def read_manifest(
    path: str | os.PathLike[str],
    *,
    manifest_name: str = "manifest.json",
    max_version: int | None = None,
    what: str = "fusionrec bundle",
    hint: str = "save one with model.save(path)",
) -> dict[str, Any]:
    """The parsed manifest of directory ``path`` (recovered first); checks ``format_version <= max_version``."""
    root = Path(path)
    recover(root)
    mpath = root / manifest_name
    if not mpath.is_file():
        raise BundleError(f"{root} is not a {what} (no {manifest_name}); {hint}")
    _check_inside(root, mpath)
    try:
        manifest = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{mpath} is not valid JSON ({exc}); the directory is damaged, write it again") from exc
    if not isinstance(manifest, dict):
        raise BundleError(f"{mpath} does not hold a JSON object; the directory is damaged, write it again")
    if max_version is not None:
        version = manifest.get("format_version")
        if not isinstance(version, int):
            raise BundleError(f"{mpath} has no format_version; the directory is damaged, write it again")
        if version > max_version:
            raise IncompatibleBundleError(
                f"{what} format {version} is newer than this fusionrec reads ({max_version}); "
                "upgrade fusionrec to load it"
            )
    return manifest


def read_dir(
    path: str | os.PathLike[str],
    manifest: Mapping[str, Any],
    *,
    manifest_name: str = "manifest.json",
    arrays_name: str = "arrays.npz",
) -> dict[str, np.ndarray]:
    """Verify directory ``path`` against ``manifest`` (from :func:`read_manifest`) and return its arrays.

    Raises
    ------
    BundleError
        The arrays file is missing, truncated or tampered with, the manifest was edited, or a child directory does
        not match the checksum recorded for it.
    """
    root = Path(path)
    apath = root / arrays_name
    if not apath.is_file():
        raise BundleError(f"{apath} is missing; the directory is incomplete, write it again")
    _check_inside(root, apath)
    blob = apath.read_bytes()
    _check_checksum_field(manifest, root / manifest_name)
    if CHECKSUM_KEY in manifest:
        if _checksum(manifest, blob) != manifest[CHECKSUM_KEY]:
            raise BundleError(
                f"{root}: {manifest_name} and {arrays_name} do not match their checksum (truncated, edited or "
                "tampered); write the directory again"
            )
        for name, digest in dict(manifest.get(CHILDREN_KEY) or {}).items():
            child = root / name
            _check_inside(root, child)
            got = read_manifest(child, manifest_name=_child_manifest(child)).get(CHECKSUM_KEY)
            if got != digest:
                raise BundleError(f"{child} does not match the checksum recorded in {root / manifest_name}")
    elif LEGACY_CHECKSUM_KEY in manifest:  # format 1: the arrays only
        if hashlib.sha256(blob).hexdigest() != manifest[LEGACY_CHECKSUM_KEY]:
            raise BundleError(f"{apath} does not match the checksum in {manifest_name} (truncated or tampered)")
    else:
        raise BundleError(f"{root / manifest_name} has no checksum; the directory is damaged, write it again")
    try:
        _check_npz_sizes(blob, apath)
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise BundleError(f"{apath} cannot be read ({exc}); write the directory again") from exc


def _check_checksum_field(manifest: Mapping[str, Any], mpath: Path) -> None:
    """One integrity rule for every format version: format 1 carries ``arrays_sha256`` (and nothing of format 2),
    every later format ``sha256``; any other combination -- a downgraded field, an unknown one -- is refused."""
    version = manifest.get("format_version")
    if version == 1:
        if LEGACY_CHECKSUM_KEY not in manifest or CHECKSUM_KEY in manifest or CHILDREN_KEY in manifest:
            raise BundleError(
                f"{mpath} says format 1 but does not carry format 1's checksum field alone ({LEGACY_CHECKSUM_KEY!r}); "
                "the directory was edited, write it again"
            )
        return
    if LEGACY_CHECKSUM_KEY in manifest:
        raise BundleError(
            f"{mpath} is format {version} but carries format 1's checksum field {LEGACY_CHECKSUM_KEY!r} (a "
            f"downgraded checksum: format {version} is verified by {CHECKSUM_KEY!r}); the directory was edited, "
            "write it again"
        )
    if CHECKSUM_KEY not in manifest:
        raise BundleError(f"{mpath} has no {CHECKSUM_KEY!r} checksum; the directory is damaged, write it again")


#: arrays files are written uncompressed (np.savez); a file whose members would inflate past this many times its
#: own size (plus 1 MiB) is refused before anything is decompressed (a zip bomb)
MAX_INFLATION = 64


def _check_npz_sizes(blob: bytes, apath: Path) -> None:
    """``BundleError`` when the members of the arrays file would decompress to far more than the file holds, or an
    array header declares more data than its member carries."""
    from math import prod

    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        infos = zf.infolist()
        total = sum(i.file_size for i in infos)
        if total > MAX_INFLATION * len(blob) + (1 << 20):
            raise BundleError(
                f"{apath} would decompress to {total} bytes from {len(blob)} (a zip bomb?); write the directory again"
            )
        for info in infos:
            with zf.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                else:
                    shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            if prod(shape) * dtype.itemsize > info.file_size:
                raise BundleError(
                    f"{apath}: array {info.filename!r} declares {shape} {dtype} but holds {info.file_size} bytes; "
                    "write the directory again"
                )


def _check_inside(root: Path, path: Path) -> None:
    """``BundleError`` when ``path`` is a link leading out of ``root`` (a bundle never refers outside itself)."""
    if not path.resolve().is_relative_to(root.resolve()):
        raise BundleError(f"{path} leads out of {root} (a symbolic link); a bundle only holds its own files")
