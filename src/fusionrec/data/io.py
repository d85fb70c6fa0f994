"""Reading tables (CSV, TSV, JSON lines, Parquet; gzip), interactions from them or from DataFrames, and predefined
split files (x_label)."""

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

__all__ = ["TABLE_SUFFIXES", "load_split_file", "read_interactions", "read_table", "split_from_frame", "table_format"]

LABELS = {0: "train", 1: "valid", 2: "test"}


TEXT_SUFFIXES = (".csv", ".tsv", ".tab", ".txt", ".dat", ".jsonl", ".ndjson", ".json")
TABLE_SUFFIXES = (*TEXT_SUFFIXES, ".parquet", ".pq")


def table_format(path: str | os.PathLike[str]) -> str:
    """The format of a table file from its name: ``csv``, ``tsv``, ``delimited`` (``.txt`` / ``.dat``, separator
    sniffed), ``jsonl``, ``json`` or ``parquet``; text formats may end in ``.gz``.

    Raises
    ------
    DataError
        The suffix is none of those.
    """
    name = Path(path).name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    for suffix, fmt in (
        (".csv", "csv"), (".tsv", "tsv"), (".tab", "tsv"), (".txt", "delimited"), (".dat", "delimited"),
        (".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "json"), (".parquet", "parquet"), (".pq", "parquet"),
    ):  # fmt: skip
        if name.endswith(suffix):
            return fmt
    raise DataError(
        f"{path}: unknown table format; use one of {', '.join(TABLE_SUFFIXES)} "
        "(the text formats may be gzipped: .csv.gz, .jsonl.gz, ...)"
    )


def read_table(path: str | os.PathLike[str] | pd.DataFrame, **kwargs: Any) -> pd.DataFrame:
    """Read a table file into a DataFrame with clear errors.

    Formats by suffix (see :func:`table_format`): CSV, TSV, ``.txt`` / ``.dat`` (separator sniffed), JSON lines
    (``.jsonl`` / ``.ndjson``), a JSON array of records (``.json``), Parquet; the text formats may be gzipped.
    A DataFrame is returned as it is (after the empty check).  Keyword arguments go to the pandas reader
    (``sep=`` overrides the separator of the delimited formats).

    Raises
    ------
    DatasetNotFoundError
        The file does not exist.
    EmptyDataError
        The file or table holds no rows.
    DataError
        Unknown suffix, a folder instead of a file, or content that cannot be parsed.
    """
    import pandas as pd

    if isinstance(path, pd.DataFrame):
        if len(path) == 0:
            raise EmptyDataError("the table has no rows; pass a DataFrame with a header and rows")
        return path
    if not isinstance(path, str | os.PathLike):
        raise DataError(f"expected a file path or a pandas DataFrame, got {type(path).__name__}")
    p = Path(path).expanduser()
    if not p.exists():
        raise DatasetNotFoundError(f"{p} does not exist; check the path or the data directory setting")
    if p.is_dir():
        raise DataError(f"{p} is a folder; pass the table file inside it (.csv, .tsv, .parquet, .jsonl)")
    if p.stat().st_size == 0:
        raise EmptyDataError(f"{p} is empty; it should hold a header and rows")
    fmt = table_format(p)
    try:
        if fmt == "parquet":
            frame = pd.read_parquet(p, **kwargs)
        elif fmt in ("jsonl", "json"):
            kwargs.pop("sep", None)
            kwargs.setdefault("dtype", False)  # values as written: "0012" stays text, epoch numbers stay numbers
            frame = pd.read_json(p, lines=fmt == "jsonl", compression="infer", **kwargs)
        else:
            if kwargs.get("sep") is None:
                kwargs.pop("sep", None)
                if fmt == "tsv":
                    kwargs["sep"] = "\t"
                elif fmt == "delimited":
                    kwargs["sep"], kwargs["engine"] = None, "python"  # sniffed: comma, tab, |, ;, space
            if kwargs.get("engine") != "python":
                kwargs.setdefault("low_memory", False)
            frame = pd.read_csv(p, **kwargs)
    except pd.errors.EmptyDataError as exc:
        raise EmptyDataError(f"{p} holds no data ({exc})") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError, ImportError) as exc:
        raise DataError(f"{p} could not be parsed as {fmt} ({exc}); check its format and encoding") from exc
    if len(frame) == 0:
        raise EmptyDataError(f"{p} has a header but no rows")
    return frame


def read_interactions(path: str | os.PathLike[str] | pd.DataFrame, **kwargs: Any) -> Interactions:
    """Read interactions from a table file (any :func:`read_table` format) or a DataFrame.

    Keyword arguments go to :meth:`Interactions.from_frame` (``read_kwargs=`` to the reader).
    """
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
    coded = _split_codes(frame[label].to_numpy(), label)
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


def _split_codes(labels: np.ndarray, label: str) -> np.ndarray:
    """The 0 / 1 / 2 code of each row's label: integers, whole floats (``0.0``, as a column with a missing value or
    a float writer leaves them) or the words train / valid / validation / val / test (any case)."""
    words = {"train": 0, "valid": 1, "validation": 1, "val": 1, "test": 2}
    if labels.dtype.kind in "iu":
        coded = labels.astype(np.int64)
    elif labels.dtype.kind == "f":
        whole = np.isfinite(labels) & (labels == np.round(labels))
        if not whole.all():
            pos = np.flatnonzero(~whole)
            raise DataError(
                f"{len(pos)} row(s) have a {label} that is missing or not a whole number, e.g. row {int(pos[0])}: "
                f"{labels[pos[0]].item()!r}; {label} must be 0 (train), 1 (valid) or 2 (test) (0.0 / 1.0 / 2.0 are fine)"
            )
        coded = labels.astype(np.int64)
    else:
        text = [str(x).strip().lower() for x in labels.tolist()]
        coded = np.array([words.get(x, _whole(x)) for x in text], dtype=np.int64)
    bad = ~np.isin(coded, [0, 1, 2])
    if bad.any():
        pos = np.flatnonzero(bad)
        raise DataError(
            f"{len(pos)} row(s) have a {label} outside 0/1/2 (train/valid/test), e.g. row {int(pos[0])}: "
            f"{labels[pos[:1]].tolist()[0]!r}; use 0 / 1 / 2 or the words train / valid / test"
        )
    return coded


def _whole(text: str) -> int:
    """``"2"`` / ``"2.0"`` -> 2; anything else -> -1 (not a label)."""
    try:
        value = float(text)
    except ValueError:
        return -1
    return int(value) if np.isfinite(value) and value == int(value) else -1


def load_split_file(path: str | os.PathLike[str], **kwargs: Any) -> Split:
    """Load a predefined split file (CSV/Parquet with an ``x_label`` column)."""
    p = Path(path)
    name = p.name.split(".csv")[0].split(".parquet")[0]
    return split_from_frame(read_table(p), name=kwargs.pop("name", name), **kwargs)
