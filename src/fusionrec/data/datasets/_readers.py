"""Private helpers shared by the dataset loaders: reading delimited files with errors that name file and line.

Every loader reads its files through :func:`read_delimited` (one vectorised ``pandas.read_csv`` call) and builds
interactions through :func:`build_interactions`, so bad input always surfaces as a typed
:mod:`fusionrec.errors` exception that says which file, which line and what to do.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fusionrec.data.idmap import IdMap
from fusionrec.data.interactions import Interactions
from fusionrec.errors import (
    DataError,
    DatasetNotFoundError,
    EmptyDataError,
    InvalidValueError,
    MissingColumnError,
)

if TYPE_CHECKING:
    import pandas as pd

PathLike = str | os.PathLike[str]
WHITESPACE = r"\s+"  # any run of spaces / tabs (leading whitespace ignored)


def check_file(path: PathLike, what: str = "file") -> Path:
    """Return ``path`` as a :class:`Path`; raise when it is missing or empty.

    Raises
    ------
    DatasetNotFoundError
        The file does not exist.
    EmptyDataError
        The file has zero bytes.
    """
    p = Path(path)
    if not p.is_file():
        raise DatasetNotFoundError(
            f"{what} {p} does not exist; check the path (or download the dataset with `fusionrec datasets fetch`)"
        )
    if p.stat().st_size == 0:
        raise EmptyDataError(f"{what} {p} is empty (0 bytes); re-download or re-create it")
    return p


def open_bytes(path: Path) -> bytes:
    """The content of ``path``, decompressed when it ends in ``.gz``."""
    if path.suffix == ".gz":
        try:
            with gzip.open(path, "rb") as fh:
                return fh.read()
        except (OSError, EOFError) as exc:
            raise DataError(f"{path} is not a valid gzip file ({exc}); re-download it") from exc
    return path.read_bytes()


def show(value: Any) -> str:
    """``repr`` of a value for error messages, numpy scalars shown as plain Python values."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def line_of(frame: pd.DataFrame, position: int, header: bool) -> int:
    """1-based line number in the file of the row at ``position`` (blank lines counted)."""
    return int(frame.index[position]) + 1 + (1 if header else 0)


def split_labels(frame: pd.DataFrame, path: PathLike) -> np.ndarray:
    """The ``x_label`` column of a published split file (0 train, 1 valid, 2 test); :class:`DataError` naming the
    line of the first other value."""
    labels = frame["x_label"].to_numpy()
    bad = ~np.isin(labels, [0, 1, 2])
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{path}, line {int(frame.index[pos]) + 2}: x_label must be 0 (train), 1 (valid) or 2 (test), "
            f"got {show(labels[pos])}; fix the label column"
        )
    return labels


def read_delimited(
    path: PathLike,
    *,
    sep: str,
    names: Sequence[str] | None = None,
    header: bool = False,
    required: Sequence[str] = (),
    numeric: Sequence[str] = (),
    encoding: str = "utf-8",
    quoting: bool = False,
    what: str = "file",
    dtype: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Read a delimited text file into a DataFrame, checking structure and numeric columns.

    Parameters
    ----------
    path
        The file (``.gz`` is decompressed).
    sep
        Field separator; ``r"\\s+"`` for runs of whitespace; other multi-character separators such as
        ``"::"`` are supported without the slow python engine (they are replaced by a tab first).
    names
        Column names when the file has no header.
    header
        ``True`` when the first line holds the column names.
    required
        Columns that must be present (with a header) and non-empty on every line.
    numeric
        Columns that must hold finite numbers on every line.
    encoding
        Text encoding (MovieLens 100K/1M files are latin-1).
    quoting
        Honour CSV double quotes (``movies.csv``); off for the ``|``/``::``/tab formats whose titles hold quotes.
    what
        A short description used in error messages.
    dtype
        Optional per-column dtypes (e.g. ``{"zip": str}``).

    Returns
    -------
    pandas.DataFrame
        One row per non-blank line; ``frame.index`` is the 0-based row position in the file (header excluded),
        so :func:`line_of` recovers line numbers.

    Raises
    ------
    DatasetNotFoundError, EmptyDataError, MissingColumnError, InvalidValueError, DataError
        With the file, the line and what to do.
    """
    import pandas as pd

    p = check_file(path, what)
    raw: Any = p
    use_sep = sep
    literal_multi = len(sep) > 1 and sep != WHITESPACE
    if literal_multi or p.suffix == ".gz":
        data = open_bytes(p)
        if literal_multi:
            data = data.replace(sep.encode(), b"\t")
            use_sep = "\t"
        raw = io.BytesIO(data)
    kwargs: dict[str, Any] = {
        "sep": use_sep,
        "header": 0 if header else None,
        "encoding": encoding,
        "skip_blank_lines": False,
        "engine": "c",
        "dtype": dtype,
    }
    if not header:
        kwargs["names"] = list(names or [])
        kwargs["index_col"] = False
    if not quoting:
        kwargs["quoting"] = csv.QUOTE_NONE
    try:
        frame = pd.read_csv(raw, **kwargs)
    except pd.errors.EmptyDataError as exc:
        raise EmptyDataError(f"{what} {p} holds no data; it should hold one record per line") from exc
    except pd.errors.ParserError as exc:
        raise DataError(
            f"{what} {p} has a malformed line ({exc}); every line must hold "
            f"{len(names) if names else 'the header'}'s fields separated by {sep!r}; fix or remove that line"
        ) from exc
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{what} {p} is not valid {encoding} text ({exc}); pass the right encoding= or re-download the file"
        ) from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise MissingColumnError(
            f"{what} {p} lacks column(s) {missing}; columns present: {list(frame.columns)}; "
            "check that this is the right file (the header line must name them)"
        )
    blank = frame.isna().all(axis=1).to_numpy()
    if blank.any():
        frame = frame[~blank]
    if len(frame) == 0:
        raise EmptyDataError(f"{what} {p} has no data rows; it should hold one record per line")
    for col in required:
        col_na = frame[col].isna().to_numpy()
        if col_na.any():
            pos = int(np.flatnonzero(col_na)[0])
            raise DataError(
                f"{what} {p}, line {line_of(frame, pos, header)}: the {col!r} field is missing or NaN "
                f"({int(col_na.sum())} line(s) in all); each line needs every field separated by {sep!r}"
            )
    for col in numeric:
        frame[col] = numeric_column(frame, col, p, header, what)
    return frame


def numeric_column(frame: pd.DataFrame, col: str, path: Path, header: bool, what: str = "file") -> np.ndarray:
    """The column as finite float64/int64 numbers, or :class:`InvalidValueError` naming file, line and value."""
    import pandas as pd

    series = frame[col]
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        arr = series.to_numpy()
        if arr.dtype.kind in "iu":
            return arr.astype(np.int64, copy=False)
        bad = ~np.isfinite(arr.astype(np.float64))
        values = arr
    else:
        conv = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(conv)
        values = series.to_numpy()
        arr = conv
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise InvalidValueError(
            f"{what} {path}, line {line_of(frame, pos, header)}: {col!r} must be a finite number, got "
            f"{show(values[pos])} ({int(bad.sum())} such line(s)); fix or remove those lines"
        )
    if np.all(arr == np.round(arr)) and np.abs(arr).max(initial=0) < 2**62:
        return arr.astype(np.int64)
    return arr.astype(np.float64, copy=False)


def build_interactions(path: PathLike, *args: Any, **kwargs: Any) -> Interactions:
    """:meth:`Interactions.from_arrays`, with the file name prefixed to any :class:`DataError`."""
    try:
        return Interactions.from_arrays(*args, **kwargs)
    except DataError as exc:
        raise type(exc)(f"{path}: {exc}") from exc


def multi_labels(values: Any, sep: str, drop: Sequence[str] = ()) -> list[list[str]]:
    """Split ``"a|b|c"`` strings into label lists (empty / NaN -> ``[]``); ``drop`` removes placeholder labels."""
    import pandas as pd

    series = pd.Series(values, dtype=object).fillna("").astype(str)
    parts = series.str.split(sep, regex=False).tolist()
    dropset = set(drop) | {""}
    return [[s.strip() for s in row if s.strip() not in dropset] for row in parts]


def id_map_of(values: Any) -> IdMap:
    """An :class:`IdMap` of the distinct values, sorted (the order ``Interactions.from_arrays`` uses)."""
    return IdMap.factorize(values)[0]


def _parse_line(text: str, literal: bool) -> Any:
    import ast
    import json

    try:
        return json.loads(text)
    except ValueError:
        if not literal:
            raise
    # the 2014 Amazon metadata is written with Python's repr (single quotes, True/None): a literal, never code
    return ast.literal_eval(text)


def read_json_lines(
    path: PathLike,
    *,
    required: Sequence[str] = (),
    literal: bool = False,
    what: str = "JSON-lines file",
) -> pd.DataFrame:
    """Read one JSON object per line (plain or ``.gz``) into a DataFrame of raw values (no type inference).

    Parameters
    ----------
    path
        The file.
    required
        Keys that every object must hold (non-null).
    literal
        Also accept Python-literal lines (``{'asin': '...'}``, the 2014 Amazon metadata), parsed with
        :func:`ast.literal_eval` -- never ``eval``.
    what
        A short description used in error messages.

    Returns
    -------
    pandas.DataFrame
        One row per non-blank line; ``frame.index`` is the 0-based line number.

    Raises
    ------
    DatasetNotFoundError, EmptyDataError, DataError, MissingColumnError
        Naming the file and the first bad line.
    """
    import pandas as pd

    p = check_file(path, what)
    data = open_bytes(p)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{what} {p} is not valid UTF-8 ({exc}); re-download it") from exc
    lines = text.splitlines()
    keep = [i for i, line in enumerate(lines) if line.strip()]
    if not keep:
        raise EmptyDataError(f"{what} {p} holds no records; it should hold one JSON object per line")
    frame = None
    if not literal:
        try:  # fast path: one C-level parse of the whole file
            frame = pd.read_json(io.StringIO(text), lines=True, dtype=False)
        except ValueError:
            frame = None
        if frame is not None and len(frame) != len(keep):
            frame = None
        elif frame is not None:
            frame.index = pd.Index(keep)
    if frame is None:
        records = []
        for i in keep:
            try:
                obj = _parse_line(lines[i], literal)
            except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
                raise DataError(
                    f"{what} {p}, line {i + 1}: not a valid JSON object ({type(exc).__name__}: {exc}); "
                    "every line must hold one complete object; fix or remove that line"
                ) from exc
            if not isinstance(obj, dict):
                raise DataError(f"{what} {p}, line {i + 1}: expected an object {{...}}, got {type(obj).__name__}")
            records.append(obj)
        frame = pd.DataFrame.from_records(records, index=pd.Index(keep))
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise MissingColumnError(
            f"{what} {p} lacks key(s) {missing} (keys present: {sorted(map(str, frame.columns))[:20]}); "
            "check that this is the right file"
        )
    for col in required:
        na = frame[col].isna().to_numpy()
        if na.any():
            pos = int(np.flatnonzero(na)[0])
            raise DataError(
                f"{what} {p}, line {int(frame.index[pos]) + 1}: key {col!r} is missing or null "
                f"({int(na.sum())} line(s) in all); every record needs it"
            )
    return frame


def json_numeric(frame: pd.DataFrame, col: str, path: PathLike, what: str = "file") -> np.ndarray:
    """A JSON column as finite numbers, or :class:`InvalidValueError` naming the file and line."""
    import pandas as pd

    values = frame[col].to_numpy()
    conv = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(conv)
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise InvalidValueError(
            f"{what} {path}, line {int(frame.index[pos]) + 1}: {col!r} must be a finite number, got "
            f"{show(values[pos])} ({int(bad.sum())} such line(s)); fix or remove those records"
        )
    return conv


def join_texts(keys: Any, texts: Any, sep: str = "\n") -> tuple[np.ndarray, list[str]]:
    """Concatenate the non-empty ``texts`` per key (groupby, sorted keys): ``(keys, joined texts)``."""
    import pandas as pd

    s = pd.Series(texts, dtype=object).fillna("").astype(str).str.strip()
    k = pd.Series(keys)
    nonempty = (s != "").to_numpy()
    grouped = s[nonempty].groupby(k[nonempty].to_numpy(), sort=True).agg(sep.join)
    return grouped.index.to_numpy(), grouped.tolist()


def train_pairs(users: Any, items: Any, train: Any, what: str = "content") -> np.ndarray | None:
    """Boolean mask of the ``(users[k], items[k])`` raw-id pairs allowed into interaction-derived content.

    ``train`` is an :class:`Interactions` or a :class:`~fusionrec.data.Split` (its ``train``): a pair is kept
    when it is a stored training interaction (raw ids matched through the training id maps).  ``"all"`` keeps
    every pair; ``None`` returns ``None`` (the caller leaves the content out).
    """
    from fusionrec.data.split import Split

    n = len(users)
    if train is None:
        return None
    if isinstance(train, str) and train == "all":
        return np.ones(n, dtype=bool)
    if isinstance(train, Split):
        train = train.train
    if not isinstance(train, Interactions):
        raise InvalidValueError(
            f"train= must be the training Interactions (or a Split), 'all' or None to build the {what}, "
            f"got {type(train).__name__}"
        )
    u = train.user_ids.to_index(np.asarray(users), missing="ignore")
    i = train.item_ids.to_index(np.asarray(items), missing="ignore")
    ok = (u >= 0) & (i >= 0)
    m = train.matrix.tocsr(copy=True)
    rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
    stored = np.sort(rows * m.shape[1] + m.indices.astype(np.int64))
    key = u * m.shape[1] + i
    at = np.minimum(np.searchsorted(stored, key), max(len(stored) - 1, 0))
    out = np.zeros(n, dtype=bool)
    if len(stored):
        out = ok & (stored[at] == key)
    return out
