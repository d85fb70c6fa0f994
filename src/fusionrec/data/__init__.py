"""Data model: id maps, interactions, modalities, datasets, splits and readers."""

from fusionrec.data.dataset import Dataset
from fusionrec.data.files import from_files, from_frames
from fusionrec.data.idmap import IdMap
from fusionrec.data.interactions import DataWarning, Interactions
from fusionrec.data.io import load_split_file, read_interactions, read_table, split_from_frame
from fusionrec.data.modalities import Modality
from fusionrec.data.side import SideInfo, fuse_modalities
from fusionrec.data.social import build_social
from fusionrec.data.split import Split
from fusionrec.data.splits import (
    cold_items_split,
    cold_users_split,
    kfold,
    leave_last_out,
    make_split,
    per_user_split,
    predefined_split,
    random_split,
    temporal_split,
)

__all__ = [
    "DataWarning",
    "Dataset",
    "IdMap",
    "Interactions",
    "Modality",
    "SideInfo",
    "Split",
    "build_social",
    "cold_items_split",
    "cold_users_split",
    "from_files",
    "from_frames",
    "fuse_modalities",
    "kfold",
    "leave_last_out",
    "load_split_file",
    "make_split",
    "per_user_split",
    "predefined_split",
    "random_split",
    "read_interactions",
    "read_table",
    "split_from_frame",
    "temporal_split",
]
