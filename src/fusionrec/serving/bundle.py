"""Serving bundles: a fitted model plus what the HTTP edge needs (raw id maps, item metadata, side information).

Layout of a bundle directory (written by :func:`fusionrec._storage.write_dir`: atomic, one checksum)::

    bundle.json    format version, training fingerprint, metadata columns, side-information layout, store position,
                   sha256 over itself and serving.npz, checksum of model/
    serving.npz    user_ids, item_ids (int64 or unicode, never object), meta.<column> (unicode), side.<array>,
                   timestamps (int64 seconds aligned with the model's training rows ``seen_``, when train had them),
                   documents.<kind>.data / .ends (the items' raw texts and image files, for models that read them)
    model/         the model as saved by Recommender.save (manifest.json + arrays.npz, itself checksummed)

The side information (features by modality, presence, social links, fitted encoders, raw kinds) is stored with
:func:`fusionrec.features.side_to_state`, so that serving can encode a new item's raw content with the encoders
the model was trained with, and a retrain can refit a content-aware model with ``fit(train, side)``.  A model that
encodes raw content itself (``fit_inputs`` with ``"texts"`` / ``"images"``) has the items' documents and images
stored too (:class:`~fusionrec.data.documents.ItemDocuments`: text, and the bytes of each image file), which a
retrain refits it with.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from fusionrec.data.documents import ItemDocuments
from fusionrec.data.idmap import IdMap
from fusionrec.data.side import SideInfo
from fusionrec.errors import BundleError, ConfigError, FusionRecError, IncompatibleBundleError
from fusionrec.serving.rules import shorten_text

if TYPE_CHECKING:
    from fusionrec.data.dataset import Dataset
    from fusionrec.data.interactions import Interactions
    from fusionrec.models.base import Recommender
    from fusionrec.models.factors import FactorModel

__all__ = ["BUNDLE_FORMAT_VERSION", "Bundle", "item_meta_from_dataset", "load_bundle", "save_bundle"]

#: 2: one checksum over bundle.json and serving.npz, side information stored; 1 still loads
BUNDLE_FORMAT_VERSION = 2
MANIFEST = "bundle.json"
ARRAYS = "serving.npz"
MODEL_DIR = "model"
SIDE_PREFIX = "side."
#: the items' raw content in serving.npz (:meth:`ItemDocuments.to_arrays`)
DOCUMENTS_PREFIX = "documents."
#: the training timestamps in serving.npz (aligned with the model's ``seen_``)
TIMESTAMPS = "timestamps"
#: the modality name of dense features given to ``save_bundle(item_features=...)`` (and of format-1 bundles)
DENSE_MODALITY = "features"
#: metadata columns holding several labels per item are stored joined by this separator
MULTI_SEP = "|"


@dataclass(eq=False)
class Bundle:
    """A fitted model with its raw-id maps, display metadata and training side information.

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
    store_seq
        Position in the event store up to which events were part of the training data (0: none).
    created
        Unix time the bundle was written.
    side
        The training :class:`~fusionrec.data.side.SideInfo` aligned with ``item_ids`` / ``user_ids`` (with its
        fitted encoders), or ``None``.
    timestamps
        The training interactions' timestamps (int64 seconds) aligned with ``model.seen_.data``, or ``None`` when
        the training data had none: a retrain of a time-aware model (``fit_inputs`` holds ``"timestamps"``) keeps
        the order of every training history.
    documents
        The items' raw texts and images aligned with ``item_ids`` for a model that reads them (declared
        ``fit_inputs`` with ``"texts"`` / ``"images"``), else ``None``.
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
    side: SideInfo | None = None
    timestamps: np.ndarray | None = None
    documents: ItemDocuments | None = None

    @property
    def model_name(self) -> str:
        from fusionrec.models.registry import registered_name

        return registered_name(type(self.model))

    @property
    def item_features(self) -> np.ndarray | None:
        """Dense features of modality ``"features"`` (``save_bundle(item_features=...)``), else ``None``."""
        if self.side is None:
            return None
        return self.side.item_features.get(DENSE_MODALITY)


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


def _check_side(side: SideInfo, n_users: int, n_items: int) -> None:
    for what, feats, n in (("item", side.item_features, n_items), ("user", side.user_features, n_users)):
        for name, x in feats.items():
            x = np.asarray(x)
            if x.ndim != 2 or x.shape[0] != n:
                raise ConfigError(
                    f"side {what} modality {name!r} has shape {x.shape}; it needs {n} rows aligned with the {what} "
                    "ids of train (build the side information from the same interactions)"
                )
            if not np.isfinite(x).all():
                raise ConfigError(f"side {what} modality {name!r} holds NaN or infinite values; clean them first")
    if side.social is not None and side.social.shape != (n_users, n_users):
        raise ConfigError(f"side.social is {side.social.shape}; it needs {n_users} x {n_users} (the train users)")


def save_bundle(
    path: str | os.PathLike[str],
    model: Recommender,
    train: Interactions,
    item_meta: Mapping[str, Sequence[Any]] | None = None,
    *,
    side: SideInfo | None = None,
    store_seq: int = 0,
    item_features: np.ndarray | None = None,
    extra: Mapping[str, Any] | None = None,
    documents: ItemDocuments | None = None,
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
    side
        The side information the model was fitted with (aligned with ``train``), fitted encoders included; stored
        so that serving encodes new items' raw content and retrains refit with it.
    store_seq
        Last event-store sequence number included in ``train`` (used when retraining from a store).
    item_features
        Shorthand for ``side`` with one dense item modality named ``"features"`` (ignored when ``side`` is given).
    documents
        The items' raw texts / images the model was fitted with (aligned with ``train``), for a model that reads
        them: a retrain refits it with them.  Only the kinds the model declares in ``fit_inputs`` are stored.
    """
    from fusionrec._storage import write_dir
    from fusionrec.features import side_to_state
    from fusionrec.models.registry import registered_name

    model.check_fitted()
    if (model.n_users_, model.n_items_) != train.shape:
        raise ConfigError(
            f"the model was fitted on {model.n_users_} x {model.n_items_} but train is {train.shape}; "
            "pass the interactions the model was fitted on"
        )
    meta_arrays, multi = _check_meta(item_meta, train.n_items)
    if side is None and item_features is not None:
        feats = np.asarray(item_features, dtype=np.float32)
        if feats.ndim != 2 or len(feats) != train.n_items or not np.isfinite(feats).all():
            raise ConfigError(f"item_features must be a finite float array [{train.n_items}, d] aligned with item_ids")
        side = SideInfo(item_features={DENSE_MODALITY: feats}, item_kinds={DENSE_MODALITY: "features"})
    arrays = {"user_ids": _id_array(train.user_ids), "item_ids": _id_array(train.item_ids), **meta_arrays}
    ts = _aligned_timestamps(model, train)
    if ts is not None:
        arrays[TIMESTAMPS] = ts
    side_meta = None
    if side is not None:
        _check_side(side, train.n_users, train.n_items)
        side_meta, side_arrays = side_to_state(side, prefix=SIDE_PREFIX)
        arrays.update(side_arrays)
    doc_kinds = None
    if documents is not None:
        documents = _declared_documents(model, documents, train.n_items)
        doc_kinds, doc_arrays = documents.to_arrays(DOCUMENTS_PREFIX)
        arrays.update(doc_arrays)
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
        "side": side_meta,
        "store_seq": int(store_seq),
        "created": time.time(),
        "extra": dict(extra or {}),
    }
    if doc_kinds:
        manifest["documents"] = doc_kinds
    return write_dir(
        path, manifest, arrays, children={MODEL_DIR: model.save}, manifest_name=MANIFEST, arrays_name=ARRAYS
    )


def load_bundle(path: str | os.PathLike[str]) -> Bundle:
    """Read a bundle written by :func:`save_bundle` (format 1 bundles too).

    Raises
    ------
    BundleError
        Missing, truncated, edited or tampered files (the checksums of the bundle and of its model are verified).
    IncompatibleBundleError
        The bundle was written by a newer format version.
    """
    from fusionrec._storage import read_dir, read_manifest
    from fusionrec.models._persist import read_bundle

    root = Path(path)
    manifest = read_manifest(
        root,
        manifest_name=MANIFEST,
        max_version=BUNDLE_FORMAT_VERSION,
        what="serving bundle",
        hint="create one with `fusionrec train` or save_bundle()",
    )
    _check_manifest(manifest, root)
    arrays = read_dir(root, manifest, manifest_name=MANIFEST, arrays_name=ARRAYS)
    apath = root / ARRAYS
    try:
        user_ids, item_ids = IdMap(arrays["user_ids"]), IdMap(arrays["item_ids"])
    except KeyError as exc:
        raise BundleError(f"{apath} lacks {exc}; the bundle is damaged, write it again") from exc
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
    for name, n in (("n_users", len(user_ids)), ("n_items", len(item_ids))):
        if name in manifest and manifest[name] != n:
            raise BundleError(f"{root / MANIFEST}: {name}={manifest[name]} but the id maps hold {n}; write it again")
    _check_finite_model(model, root)
    timestamps = _read_timestamps(arrays, model, apath)
    multi = set(manifest.get("multi_columns", []))
    item_meta: dict[str, list[Any]] = {}
    for name in manifest.get("meta_columns", []):
        col = arrays.get(f"meta.{name}")
        if col is None or len(col) != len(item_ids):
            raise BundleError(f"{apath} lacks metadata column {name!r} named in {MANIFEST}")
        values = col.tolist()
        item_meta[name] = [v.split(MULTI_SEP) if v else [] for v in values] if name in multi else values
    documents = _read_documents(manifest, arrays, root, len(item_ids))
    side = _read_side(manifest, arrays, root)
    if side is not None:
        try:
            _check_side(side, len(user_ids), len(item_ids))
        except ConfigError as exc:
            raise BundleError(f"{root}: {exc}; write the bundle again") from exc
    return Bundle(
        model=model,
        user_ids=user_ids,
        item_ids=item_ids,
        item_meta=item_meta,
        fingerprint=str(manifest.get("fingerprint", "")),
        store_seq=int(manifest.get("store_seq", 0)),
        created=float(manifest.get("created", 0.0)),
        format_version=int(manifest["format_version"]),
        extra=dict(manifest.get("extra", {})),
        side=side,
        timestamps=timestamps,
        documents=documents,
    )


#: the type of each bundle.json field a reader uses (format 1 lacks some; absent ones take their defaults)
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "kind": (str,),
    "model": (str,),
    "fingerprint": (str,),
    "n_users": (int,),
    "n_items": (int,),
    "explicit": (bool,),
    "meta_columns": (list,),
    "multi_columns": (list,),
    "side": (dict, type(None)),
    "store_seq": (int,),
    "created": (int, float),
    "extra": (dict,),
    "documents": (list, type(None)),
}


def _check_manifest(manifest: Mapping[str, Any], root: Path) -> None:
    """``BundleError`` naming the first ``bundle.json`` field of the wrong type or value, before anything uses it;
    and the one integrity rule's bundle part: a format-1 bundle (whose manifest no checksum covers) holds a format-1
    model, so a format-2 model inside one means the bundle was downgraded to skip its checks."""
    mpath = root / MANIFEST
    for name, types in _FIELD_TYPES.items():
        if name not in manifest:
            continue
        value = manifest[name]
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if ok and name in ("n_users", "n_items", "store_seq"):
            ok = value >= 0
        if ok and name in ("meta_columns", "multi_columns", "documents") and value is not None:
            ok = all(isinstance(v, str) for v in value)
        if not ok:
            want = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise BundleError(
                f"{mpath}: {name}={value!r} is not a valid value ({want}"
                f"{', >= 0' if name in ('n_users', 'n_items', 'store_seq') else ''}); the bundle was edited or "
                "damaged, write it again"
            )
    if manifest.get("format_version") == 1:
        from fusionrec._storage import read_manifest

        model_version = read_manifest(root / MODEL_DIR).get("format_version")
        if model_version != 1:
            raise BundleError(
                f"{mpath} says format 1 but its model is format {model_version!r}: a format-1 bundle never held a "
                "later model (the bundle was downgraded to skip its checksum); write it again"
            )


def _aligned_timestamps(model: Recommender, train: Interactions) -> np.ndarray | None:
    """``train.timestamps`` when they align with the model's training rows (``seen_``: the same entries in the same
    order, as ``fit`` leaves them), else ``None``."""
    if train.timestamps is None:
        return None
    seen, m = model.seen_, train.matrix
    if seen.nnz != m.nnz or not (np.array_equal(seen.indptr, m.indptr) and np.array_equal(seen.indices, m.indices)):
        return None
    return np.asarray(train.timestamps, dtype=np.int64)


def _read_timestamps(arrays: Mapping[str, np.ndarray], model: Recommender, apath: Path) -> np.ndarray | None:
    ts = arrays.get(TIMESTAMPS)
    if ts is None:
        return None
    if ts.dtype != np.int64 or ts.ndim != 1 or len(ts) != model.seen_.nnz:
        raise BundleError(
            f"{apath}: the training timestamps ({ts.dtype}, shape {ts.shape}) do not align with the model's "
            f"{model.seen_.nnz} training interactions; write the bundle again"
        )
    return ts


def _check_finite_model(model: Recommender, root: Path) -> None:
    """``BundleError`` when the model's factors hold NaN or infinite values (every score would be NaN and every
    list silently empty)."""
    if not type(model).declaration().has_factors:
        return
    f = cast("FactorModel", model).factors()
    for name, x in (("user", f.user), ("item", f.item), ("user bias", f.user_bias), ("item bias", f.item_bias)):
        if x is not None and not np.isfinite(np.asarray(x)).all():
            raise BundleError(
                f"{root}: the model's {name} factors hold NaN or infinite values (a diverged fit); train it again "
                "(e.g. with a smaller learning rate or more regularization)"
            )


def _declared_documents(model: Recommender, documents: ItemDocuments, n_items: int) -> ItemDocuments:
    """``documents`` with only the kinds ``model`` declares in ``fit_inputs``; ``ConfigError`` unless aligned with
    the ``n_items`` training items."""
    if documents.n_items != n_items and not documents.empty:
        raise ConfigError(
            f"documents hold {documents.n_items} items' content for {n_items} items; align them with train.item_ids"
        )
    reads = type(model).declaration().fit_inputs
    return ItemDocuments(documents.texts if "texts" in reads else None, documents.images if "images" in reads else None)


def _read_documents(
    manifest: Mapping[str, Any], arrays: Mapping[str, np.ndarray], root: Path, n_items: int
) -> ItemDocuments | None:
    kinds = manifest.get("documents")
    if not kinds:
        return None
    try:
        documents = ItemDocuments.from_arrays(kinds, arrays, DOCUMENTS_PREFIX)
    except (KeyError, ValueError) as exc:
        raise BundleError(f"the items' raw content in {root} cannot be read ({exc}); write the bundle again") from exc
    if documents.n_items != n_items:
        raise BundleError(
            f"{root}: the items' raw content covers {documents.n_items} items but the id map holds {n_items}; "
            "write the bundle again"
        )
    return documents


def _read_side(manifest: Mapping[str, Any], arrays: Mapping[str, np.ndarray], root: Path) -> SideInfo | None:
    meta = manifest.get("side")
    if meta is None:
        legacy = arrays.get("item_features")  # format 1: one dense matrix
        if legacy is None:
            return None
        feats = np.asarray(legacy, np.float32)
        return SideInfo(item_features={DENSE_MODALITY: feats}, item_kinds={DENSE_MODALITY: "features"})
    from fusionrec.features import side_from_state

    try:
        return side_from_state(meta, arrays)  # type: ignore[no-any-return]
    except (KeyError, ValueError, TypeError) as exc:
        raise BundleError(f"the side information in {root} cannot be read ({exc}); write the bundle again") from exc


def _title_modality(mods: Mapping[str, Any], ids: IdMap, title_column: str | None) -> Any:
    """The text modality that names items: ``title_column`` when given, else one called ``title`` or ``name``, else
    the text modality with the shortest median length (a name, not a description or review), else ``None``."""
    texts = {name: m for name, m in mods.items() if m.kind == "text"}
    if title_column is not None:
        if title_column not in texts:
            raise ConfigError(
                f"no text column {title_column!r} to use as the display title; text columns: {sorted(texts)}"
            )
        return texts[title_column]
    for name in ("title", "name"):
        if name in texts:
            return texts[name]
    if not texts:
        return None

    def median_length(mod: Any) -> float:
        values, present = mod.align(ids)
        lengths = [len(str(v)) for v, ok in zip(values, present) if ok and v is not None]
        return float(np.median(lengths)) if lengths else float("inf")

    return min(texts.values(), key=median_length)


def item_meta_from_dataset(
    dataset: Dataset, item_ids: IdMap | None = None, *, title_column: str | None = None
) -> dict[str, list[Any]]:
    """Display metadata from a dataset's item modalities: ``title``, ``genres`` and ``poster``.

    The title is the text column ``title_column`` when given, else one named ``title`` or ``name``, else the text
    column with the shortest median length (so a review or description never becomes the title); titles are cut to
    :data:`~fusionrec.serving.rules.MAX_TITLE_CHARS` characters.  Genres are the ``genres`` categorical modality, else the first categorical
    one; the poster the ``poster`` image modality, else the first image one (datasets loaded from users' own files
    name their columns freely).

    Raises
    ------
    ConfigError
        ``title_column`` is not a text column of the dataset.
    """
    ids = dataset.item_ids if item_ids is None else item_ids
    mods = dataset.item_modalities
    out: dict[str, list[Any]] = {}
    for column, kind in (("title", "text"), ("genres", "categorical"), ("poster", "image")):
        if column == "title":
            mod = _title_modality(mods, ids, title_column)
        else:
            mod = mods.get(column)
            if mod is None or mod.kind != kind:
                mod = next((m for m in mods.values() if m.kind == kind), None)
        if mod is None:
            continue
        values, present = mod.align(ids)
        if column == "genres":
            out[column] = [
                ([str(x) for x in v] if isinstance(v, list | tuple | np.ndarray) else [str(v)]) if ok and v is not None
                else []
                for v, ok in zip(values, present)
            ]  # fmt: skip
        else:
            out[column] = [
                (shorten_text(str(v)) if column == "title" else str(v))
                if ok and v is not None and not isinstance(v, np.ndarray)
                else ""
                for v, ok in zip(values, present)
            ]
    return out
