"""TikTok micro-videos in DiffMM's published split (Jiang et al., MM 2024; data of Wei et al., MMGCN, MM 2019).

A ``tiktok`` folder in the data directory holds

``tiktok.diffmm.csv``
    ``userId,itemId,x_label``: DiffMM's train (0), valid (1) and test (2) matrices written as rows; ids are the
    matrices' row / column indices (9,308 users x 6,710 micro-videos), every entry implicit (1).
``image_feat.npy``, ``audio_feat.npy``
    float16 ``[6710, 128]`` visual and acoustic features, row ``i`` = item ``i``; loaded as float32 item
    modalities ``image`` and ``audio`` of kind ``features`` (so :func:`fusionrec.build_side_info` passes them
    through unchanged).

``load_dataset("tiktok")`` gives the :class:`~fusionrec.data.Dataset` (all rows), and
``load_benchmark_split("tiktok.diffmm")`` the fixed :class:`~fusionrec.data.Split` over the same id maps.  The
published protocol (DiffMM's ``Main.py``) masks the training items only; the validation part is neither trained on
nor masked there, and the published figures are the best test epoch (chosen on test).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fusionrec.data.dataset import Dataset
from fusionrec.data.datasets._readers import build_interactions, check_file, read_delimited, split_labels
from fusionrec.data.idmap import IdMap
from fusionrec.data.modalities import Modality
from fusionrec.data.split import Split
from fusionrec.errors import DataError, DatasetNotFoundError

__all__ = ["FEATURES", "SPLIT_FILE", "load_tiktok", "load_tiktok_split"]

PathLike = str | os.PathLike[str]
SPLIT_FILE = "tiktok.diffmm.csv"
FEATURES = ("image", "audio")


def _features(path: Path, n_items: int) -> Modality:
    check_file(path, "TikTok feature file")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise DataError(
            f"{path} is not a readable .npy array ({exc}); copy it again from DiffMM's Datasets/tiktok"
        ) from exc
    if arr.ndim != 2 or arr.dtype.kind != "f" or arr.shape[0] != n_items:
        raise DataError(
            f"{path} must hold a float array [{n_items}, d] (one row per item), got shape {arr.shape} ({arr.dtype}); "
            "the features and the interactions belong to different copies of the dataset?"
        )
    feats = arr.astype(np.float32)
    if not np.isfinite(feats).all():
        bad = int(np.flatnonzero(~np.isfinite(feats).all(axis=1))[0])
        raise DataError(f"{path}: row {bad} holds NaN or infinity; fill it before loading")
    return Modality("features", IdMap(np.arange(n_items, dtype=np.int64)), feats)


def _read(root: Path) -> tuple[Dataset, Split]:
    if not root.is_dir():
        raise DatasetNotFoundError(f"TikTok directory {root} does not exist; it must hold {SPLIT_FILE} and *_feat.npy")
    path = root / SPLIT_FILE
    frame = read_delimited(
        path,
        sep=",",
        header=True,
        required=("userId", "itemId", "x_label"),
        numeric=("userId", "itemId", "x_label"),
        what="TikTok split file",
    )
    users = frame["userId"].to_numpy().astype(np.int64)
    items = frame["itemId"].to_numpy().astype(np.int64)
    labels = split_labels(frame, path)
    if users.min() < 0 or items.min() < 0:
        raise DataError(f"{path}: userId and itemId are matrix indices and must be >= 0")
    # ids are the published matrices' indices: keep every index in order, so item i is feature row i
    user_ids = IdMap(np.arange(int(users.max()) + 1, dtype=np.int64))
    item_ids = IdMap(np.arange(int(items.max()) + 1, dtype=np.int64))
    feats = {name: _features(root / f"{name}_feat.npy", len(item_ids)) for name in FEATURES}
    whole = build_interactions(path, users, items, user_ids=user_ids, item_ids=item_ids)
    parts = {}
    for code in (0, 1, 2):
        mask = labels == code
        if not mask.any():
            raise DataError(f"{path} has no rows with x_label {code}; DiffMM's split has train, valid and test")
        parts[code] = build_interactions(path, users[mask], items[mask], user_ids=user_ids, item_ids=item_ids)
    dataset = Dataset(
        name="tiktok",
        interactions=whole,
        item_modalities=feats,
        meta={"path": str(root), "format": "tiktok-diffmm", "split": "tiktok.diffmm"},
    )
    split = Split(train=parts[0], valid=parts[1], test=parts[2], name="tiktok.diffmm")
    return dataset, split


def load_tiktok(path: PathLike) -> Dataset:
    """The TikTok dataset from its folder: every interaction (train, valid and test) and the two item modalities.

    Parameters
    ----------
    path
        The ``tiktok`` folder holding ``tiktok.diffmm.csv``, ``image_feat.npy`` and ``audio_feat.npy``.

    Raises
    ------
    DatasetNotFoundError
        The folder or a file is missing.
    DataError
        A label other than 0/1/2, a part without rows, or feature rows that do not match the items.
    """
    return _read(Path(path))[0]


def load_tiktok_split(path: PathLike) -> Split:
    """DiffMM's fixed train / valid / test split of TikTok (``x_label`` 0 / 1 / 2) over :func:`load_tiktok`'s ids."""
    return _read(Path(path))[1]
