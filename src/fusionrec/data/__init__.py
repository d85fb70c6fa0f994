"""Data model: id maps, interactions, modalities, datasets, splits and readers."""

from fusionrec.data.dataset import Dataset
from fusionrec.data.idmap import IdMap
from fusionrec.data.interactions import DataWarning, Interactions
from fusionrec.data.io import load_split_file, read_interactions, read_table, split_from_frame
from fusionrec.data.modalities import Modality
from fusionrec.data.split import Split

__all__ = [
    "DataWarning",
    "Dataset",
    "IdMap",
    "Interactions",
    "Modality",
    "Split",
    "load_split_file",
    "read_interactions",
    "read_table",
    "split_from_frame",
]
