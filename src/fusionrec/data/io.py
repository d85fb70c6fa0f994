"""Reading interactions from CSV / Parquet / DataFrames and predefined split files (x_label)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fusionrec.data.idmap import IdMap
from fusionrec.data.interactions import Interactions
from fusionrec.data.split import Split
from fusionrec.errors import DataError, DatasetNotFoundError, EmptyDataError, MissingColumnError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["load_split_file", "read_interactions", "read_table", "split_from_frame"]

LABELS = {0: "train", 1: "valid", 2: "test"}


def read_table(path: str | os.PathLike[str], **kwargs: Any) -> pd.DataFrame:
    """Read a CSV / TSV / Parquet file into a DataFrame with clear errors."""
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise DatasetNotFoundError(f"{p} does not exist; check the path or the data directory setting")
    if p.stat().st_size == 0:
        raise EmptyDataError(f"{p} is empty; it should hold a header and interaction rows")
    suffix = "".join(p.suffixes[-2:]).lower()
    try:
        if suffix.endswith(".parquet") or suffix.endswith(".pq"):
            frame = pd.read_parquet(p, **kwargs)
        else:
            if "sep" not in kwargs and (suffix.endswith(".tsv") or suffix.endswith(".tsv.gz")):
                kwargs["sep"] = "\t"
            frame = pd.read_csv(p, **kwargs)
    except pd.errors.EmptyDataError as exc:
        raise EmptyDataError(f"{p} holds no data ({exc})") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise DataError(f"{p} could not be parsed ({exc}); check its format and encoding") from exc
    if len(frame) == 0:
        raise EmptyDataError(f"{p} has a header but no rows")
    return frame


def read_interactions(path: str | os.PathLike[str], **kwargs: Any) -> Interactions:
    """Read interactions from a CSV or Parquet file; keyword arguments go to ``from_frame``."""
    read_kwargs = kwargs.pop("read_kwargs", {})
    return Interactions.from_frame(read_table(path, **read_kwargs), **kwargs)


def split_from_frame(
    frame: pd.DataFrame,
    *,
    label: str = "x_label",
    name: str = "",
    user_ids: IdMap | None = None,
    item_ids: IdMap | None = None,
    **kwargs: Any,
) -> Split:
    """Split a table with a label column (0 train, 1 valid, 2 test; also the words) into a :class:`Split`.

    Every part shares the id maps built from the whole table (or the given ones), so cold items
    of the test part exist in the map with no training rows.
    """
    if label not in frame.columns:
        raise MissingColumnError(f"split table has no {label!r} column; columns: {list(frame.columns)}")
    labels = frame[label].to_numpy()
    if labels.dtype.kind not in "iu":
        mapping = {"train": 0, "valid": 1, "validation": 1, "val": 1, "test": 2}
        lower = np.char.lower(labels.astype(str))
        coded = np.array([mapping.get(x, -1) for x in lower.tolist()])
    else:
        coded = labels.astype(np.int64)
    bad = ~np.isin(coded, [0, 1, 2])
    if bad.any():
        raise DataError(
            f"{int(bad.sum())} row(s) have a {label} outside 0/1/2 (train/valid/test), e.g. {labels[bad][:3].tolist()}"
        )
    whole = Interactions.from_frame(frame.drop(columns=[label]), user_ids=user_ids, item_ids=item_ids, **kwargs)
    # rebuild each part on the shared maps, keeping the frame's row order semantics
    parts: dict[int, Interactions] = {}
    for code in (0, 1, 2):
        sub = frame[coded == code]
        if len(sub) == 0:
            continue
        parts[code] = Interactions.from_frame(
            sub.drop(columns=[label]),
            user_ids=whole.user_ids,
            item_ids=whole.item_ids,
            **{k: v for k, v in kwargs.items() if k not in ("user_ids", "item_ids")},
        )
    if 0 not in parts or 2 not in parts:
        raise DataError("a split file needs train (0) and test (2) rows")
    return Split(train=parts[0], valid=parts.get(1), test=parts[2], name=name)


def load_split_file(path: str | os.PathLike[str], **kwargs: Any) -> Split:
    """Load a predefined split file (CSV/Parquet with an ``x_label`` column)."""
    p = Path(path)
    name = p.name.split(".csv")[0].split(".parquet")[0]
    return split_from_frame(read_table(p), name=kwargs.pop("name", name), **kwargs)
