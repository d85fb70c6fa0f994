"""The MMRec benchmark format (Zhou et al., MMRec toolbox): ``<name>.inter`` + ``*_feat.npy`` item features.

A dataset folder holds

``<name>.inter``
    Tab-separated with a header: ``userID``, ``itemID`` (0-based integers), optional ``rating`` and
    ``timestamp``, and ``x_label`` (0 train, 1 valid, 2 test).
``image_feat.npy``, ``text_feat.npy`` (and any other ``<kind>_feat.npy``)
    Float arrays ``[n_items, d]`` whose row ``i`` describes ``itemID == i``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fusionrec.data.dataset import Dataset
from fusionrec.data.datasets._readers import build_interactions, check_file, read_delimited, split_labels
from fusionrec.data.idmap import IdMap
from fusionrec.data.interactions import Duplicates
from fusionrec.data.modalities import Modality
from fusionrec.data.split import Split
from fusionrec.errors import DataError, DatasetNotFoundError

__all__ = ["load_mmrec"]

PathLike = str | os.PathLike[str]
LABELS = {0: "train", 1: "valid", 2: "test"}


def _features(path: Path, max_item: int) -> Modality:
    check_file(path, "MMRec feature file")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise DataError(f"{path} is not a readable .npy array ({exc}); re-create it with numpy.save") from exc
    if arr.ndim != 2 or arr.dtype.kind not in "fiu":
        raise DataError(f"{path} must hold a numeric 2-D array [n_items, d], got shape {arr.shape} ({arr.dtype})")
    if arr.shape[0] <= max_item:
        raise DataError(
            f"{path} has {arr.shape[0]} rows but itemID goes up to {max_item}; row i must describe itemID i "
            "(the features and the .inter file belong to different datasets?)"
        )
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        raise DataError(
            f"{path}: {int(bad.sum())} row(s) hold NaN or infinity, first itemID {int(np.flatnonzero(bad)[0])}; "
            "fill them (e.g. with zeros) before loading"
        )
    return Modality("features", IdMap(np.arange(arr.shape[0], dtype=np.int64)), arr.astype(np.float32, copy=False))


def load_mmrec(
    path: PathLike,
    name: str,
    *,
    implicit: bool = True,
    duplicates: Duplicates = "raise",
) -> tuple[Dataset, Split]:
    """Load an MMRec dataset folder (``baby``, ``sports``, ``clothing``, ... ) and its predefined split.

    Parameters
    ----------
    path
        The folder holding ``<name>.inter`` and the feature files.
    name
        Dataset name, the stem of the ``.inter`` file.
    implicit
        ``True`` (default, as MMRec evaluates) stores every interaction as 1; ``False`` keeps the ``rating``.
    duplicates
        Passed to :meth:`Interactions.from_arrays`.

    Returns
    -------
    (Dataset, Split)
        The dataset (all rows; item modalities ``image`` / ``text`` / ... of kind ``features`` keyed by
        ``itemID``) and the :class:`Split` given by ``x_label`` (train 0, valid 1, test 2) over the same id maps.
    """
    root = Path(path)
    if not root.is_dir():
        raise DatasetNotFoundError(f"MMRec directory {root} does not exist; it must hold {name}.inter and *_feat.npy")
    inter_path = root / f"{name}.inter"
    frame = read_delimited(
        inter_path,
        sep="\t",
        header=True,
        required=("userID", "itemID", "x_label"),
        numeric=("userID", "itemID", "x_label") + (() if implicit else ("rating",)),
        what="MMRec interaction file",
    )
    if not implicit and "rating" not in frame.columns:
        raise DataError(f"{inter_path} has no 'rating' column; load it with implicit=True")
    labels = split_labels(frame, inter_path)
    users = frame["userID"].to_numpy()
    items = frame["itemID"].to_numpy()
    ratings = None if implicit else frame["rating"].to_numpy()
    ts = frame["timestamp"].to_numpy() if "timestamp" in frame.columns else None
    if ts is not None and not np.issubdtype(np.asarray(ts).dtype, np.number):
        ts = None
    whole = build_interactions(inter_path, users, items, ratings, ts, duplicates=duplicates)
    parts = {}
    for code in (0, 1, 2):
        mask = labels == code
        if not mask.any():
            continue
        parts[code] = build_interactions(
            inter_path,
            users[mask],
            items[mask],
            None if ratings is None else ratings[mask],
            None if ts is None else ts[mask],
            user_ids=whole.user_ids,
            item_ids=whole.item_ids,
            duplicates=duplicates,
        )
    if 0 not in parts or 2 not in parts:
        raise DataError(f"{inter_path} needs train (x_label 0) and test (x_label 2) rows")
    max_item = int(items.max())
    modalities = {}
    for feat in sorted(root.glob("*_feat.npy")):
        modalities[feat.name[: -len("_feat.npy")]] = _features(feat, max_item)
    dataset = Dataset(
        name=name,
        interactions=whole,
        item_modalities=modalities,
        meta={"path": str(root), "format": "mmrec"},
    )
    split = Split(train=parts[0], valid=parts.get(1), test=parts[2], name=f"{name}.mmrec")
    return dataset, split
