"""Serving bundles: a fitted model plus what the HTTP edge needs (raw id maps, item metadata, provenance).

Layout of a bundle directory (written atomically: a temp directory renamed into place)::

    bundle.json    format version, training fingerprint, metadata columns, sha256 of serving.npz, store position
    serving.npz    user_ids, item_ids (int64 or unicode, never object), meta.<column> (unicode)
    model/         the model as saved by Recommender.save (manifest.json + arrays.npz, itself checksummed)
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import time
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fusionrec.data.idmap import IdMap
from fusionrec.errors import BundleError, ConfigError, FusionRecError, IncompatibleBundleError

if TYPE_CHECKING:
    from fusionrec.data.dataset import Dataset
    from fusionrec.data.interactions import Interactions
    from fusionrec.models.base import Recommender

__all__ = ["BUNDLE_FORMAT_VERSION", "Bundle", "item_meta_from_dataset", "load_bundle", "save_bundle"]

BUNDLE_FORMAT_VERSION = 1
MANIFEST = "bundle.json"
ARRAYS = "serving.npz"
MODEL_DIR = "model"
#: metadata columns holding several labels per item are stored joined by this separator
MULTI_SEP = "|"


@dataclass(eq=False)
class Bundle:
    """A fitted model with its raw-id maps and display metadata.

    Attributes
    ----------
    model
        The fitted recommender (indices ``0..n_users-1`` / ``0..n_items-1``).
    user_ids, item_ids
        Raw id maps aligned with the model's indices.
    item_meta
        Column -> list aligned with ``item_ids``: ``str`` per item, or ``list[str]`` for multi-label columns
        (``genres``).  ``title`` and ``poster`` (a path or URL) are used by the web page.
    fingerprint
        :meth:`Interactions.fingerprint` of the training data.
    item_features
        Optional dense content features ``float32 [n_items, d]`` (new items posted with a feature vector are
        placed next to their nearest neighbours in this space).
    store_seq
        Position in the event store up to which events were part of the training data (0: none).
    created
        Unix time the bundle was written.
    """

    model: Recommender
    user_ids: IdMap
    item_ids: IdMap
    item_meta: dict[str, list[Any]] = field(default_factory=dict)
    fingerprint: str = ""
    store_seq: int = 0
    created: float = 0.0
    format_version: int = BUNDLE_FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)
    item_features: np.ndarray | None = None

    @property
    def model_name(self) -> str:
        from fusionrec.models.registry import registered_name

        return registered_name(type(self.model))


def _id_array(ids: IdMap) -> np.ndarray:
    arr = ids.ids
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    return np.asarray([str(x) for x in arr.tolist()], dtype=np.str_)


def _check_meta(item_meta: Mapping[str, Sequence[Any]] | None, n_items: int) -> tuple[dict[str, np.ndarray], list[str]]:
    arrays: dict[str, np.ndarray] = {}
    multi: list[str] = []
    for name, values in (item_meta or {}).items():
        if not name.isidentifier():
            raise ConfigError(f"item_meta column {name!r} must be an identifier (letters, digits, _)")
        values = list(values)
        if len(values) != n_items:
            raise ConfigError(
                f"item_meta[{name!r}] has {len(values)} values for {n_items} items; align it with item_ids"
            )
        if any(isinstance(v, list | tuple | set | np.ndarray) for v in values):
            multi.append(name)
            values = [MULTI_SEP.join(str(x) for x in (v or [])) for v in values]
        else:
            values = ["" if v is None or (isinstance(v, float) and v != v) else str(v) for v in values]
        arrays[f"meta.{name}"] = np.asarray(values, dtype=np.str_)
    return arrays, multi


def save_bundle(
    path: str | os.PathLike[str],
    model: Recommender,
    train: Interactions,
    item_meta: Mapping[str, Sequence[Any]] | None = None,
    *,
    store_seq: int = 0,
    item_features: np.ndarray | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a serving bundle for ``model`` fitted on ``train`` into directory ``path`` (atomically).

    Parameters
    ----------
    path
        Target directory; replaced atomically if it exists.
    model
        A fitted, registered recommender.
    train
        The training interactions (their id maps and fingerprint go into the bundle).
    item_meta
        Optional display metadata aligned with ``train.item_ids`` (see :class:`Bundle`).
    store_seq
        Last event-store sequence number included in ``train`` (used when retraining from a store).
    item_features
        Optional content features aligned with ``train.item_ids`` (see :class:`Bundle`).
    """
    from fusionrec.models._persist import write_bundle

    model._check_fitted()
    if (model.n_users_, model.n_items_) != train.shape:
        raise ConfigError(
            f"the model was fitted on {model.n_users_} x {model.n_items_} but train is {train.shape}; "
            "pass the interactions the model was fitted on"
        )
    meta_arrays, multi = _check_meta(item_meta, train.n_items)
    arrays = {"user_ids": _id_array(train.user_ids), "item_ids": _id_array(train.item_ids), **meta_arrays}
    if item_features is not None:
        feats = np.asarray(item_features, dtype=np.float32)
        if feats.ndim != 2 or len(feats) != train.n_items or not np.isfinite(feats).all():
            raise ConfigError(f"item_features must be a finite float array [{train.n_items}, d] aligned with item_ids")
        arrays["item_features"] = feats
    buf = io.BytesIO()
    np.savez(buf, allow_pickle=False, **arrays)  # type: ignore[arg-type]
    blob = buf.getvalue()
    from fusionrec.models.registry import registered_name

    manifest = {
        "format_version": BUNDLE_FORMAT_VERSION,
        "kind": "fusionrec-serving-bundle",
        "model": registered_name(type(model)),
        "fingerprint": train.fingerprint(),
        "n_users": train.n_users,
        "n_items": train.n_items,
        "explicit": bool(train.explicit),
        "meta_columns": sorted(item_meta or {}),
        "multi_columns": multi,
        "store_seq": int(store_seq),
        "created": time.time(),
        "arrays_sha256": hashlib.sha256(blob).hexdigest(),
        "extra": dict(extra or {}),
    }
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        write_bundle(model, tmp / MODEL_DIR)
        (tmp / ARRAYS).write_bytes(blob)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        for f in (tmp / ARRAYS, tmp / MANIFEST):
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        if target.exists():
            old = target.with_name(f".{target.name}.old.{os.getpid()}")
            shutil.rmtree(old, ignore_errors=True)
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def load_bundle(path: str | os.PathLike[str]) -> Bundle:
    """Read a bundle written by :func:`save_bundle`.

    Raises
    ------
    BundleError
        Missing, truncated or tampered files (checksums of both the model and the serving arrays are verified).
    IncompatibleBundleError
        The bundle was written by a newer format version.
    """
    from fusionrec.models._persist import read_bundle

    root = Path(path)
    mpath = root / MANIFEST
    if not mpath.is_file():
        raise BundleError(
            f"{root} is not a serving bundle (no {MANIFEST}); create one with `fusionrec train` or save_bundle()"
        )
    try:
        manifest = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{mpath} is not valid JSON ({exc}); the bundle is damaged, write it again") from exc
    version = manifest.get("format_version")
    if not isinstance(version, int):
        raise BundleError(f"{mpath} has no format_version; the bundle is damaged")
    if version > BUNDLE_FORMAT_VERSION:
        raise IncompatibleBundleError(
            f"serving bundle format {version} is newer than this fusionrec reads ({BUNDLE_FORMAT_VERSION}); "
            "upgrade fusionrec to load it"
        )
    apath = root / ARRAYS
    if not apath.is_file():
        raise BundleError(f"{apath} is missing; the bundle is incomplete")
    blob = apath.read_bytes()
    if hashlib.sha256(blob).hexdigest() != manifest.get("arrays_sha256"):
        raise BundleError(f"{apath} does not match the checksum in {MANIFEST} (truncated or tampered)")
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        user_ids, item_ids = IdMap(arrays["user_ids"]), IdMap(arrays["item_ids"])
    except (zipfile.BadZipFile, ValueError, OSError, KeyError) as exc:
        raise BundleError(f"{apath} cannot be read ({exc})") from exc
    except FusionRecError as exc:
        raise BundleError(f"{apath} holds invalid id maps ({exc})") from exc
    try:
        model = read_bundle(root / MODEL_DIR)
    except IncompatibleBundleError:
        raise
    except BundleError as exc:
        raise BundleError(f"the model inside {root} cannot be read: {exc}") from exc
    if (model.n_users_, model.n_items_) != (len(user_ids), len(item_ids)):
        raise BundleError(
            f"{root}: the model is {model.n_users_} x {model.n_items_} but the id maps are "
            f"{len(user_ids)} x {len(item_ids)} (mixed-up files)"
        )
    multi = set(manifest.get("multi_columns", []))
    item_meta: dict[str, list[Any]] = {}
    for name in manifest.get("meta_columns", []):
        col = arrays.get(f"meta.{name}")
        if col is None or len(col) != len(item_ids):
            raise BundleError(f"{apath} lacks metadata column {name!r} named in {MANIFEST}")
        values = col.tolist()
        item_meta[name] = [v.split(MULTI_SEP) if v else [] for v in values] if name in multi else values
    return Bundle(
        model=model,
        user_ids=user_ids,
        item_ids=item_ids,
        item_meta=item_meta,
        fingerprint=str(manifest.get("fingerprint", "")),
        store_seq=int(manifest.get("store_seq", 0)),
        created=float(manifest.get("created", 0.0)),
        format_version=version,
        extra=dict(manifest.get("extra", {})),
        item_features=arrays.get("item_features"),
    )


def item_meta_from_dataset(dataset: Dataset, item_ids: IdMap | None = None) -> dict[str, list[Any]]:
    """Display metadata from a dataset's item modalities: ``title``, ``genres`` and ``poster`` when present."""
    ids = dataset.item_ids if item_ids is None else item_ids
    out: dict[str, list[Any]] = {}
    for name, kinds in (("title", ("text",)), ("genres", ("categorical",)), ("poster", ("image",))):
        mod = dataset.item_modalities.get(name)
        if mod is None or mod.kind not in kinds:
            continue
        values, present = mod.align(ids)
        if name == "genres":
            out[name] = [list(v) if ok and v is not None else [] for v, ok in zip(values, present)]
        else:
            out[name] = [
                str(v) if ok and v is not None and not isinstance(v, np.ndarray) else ""
                for v, ok in zip(values, present)
            ]
    return out
