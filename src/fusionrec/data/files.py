"""A user's own files (or DataFrames) in, as a :class:`~fusionrec.data.Dataset`.

``from_files("ratings.csv", items="items.jsonl", users="users.parquet", social="trust.tsv")`` reads the tables
(any :func:`~fusionrec.data.read_table` format), finds the user / item / rating / timestamp columns by their
usual names (or the ones given), and turns every other column of the items and users files into a modality:

==========================================  ==============================================================
column content                              modality
==========================================  ==============================================================
paths of existing image / audio / video     ``image`` / ``audio`` / ``video`` (relative paths are resolved
files                                       against the table file's folder)
``"a|b|c"`` labels, JSON lists of labels,   ``categorical`` (a list of labels per row)
short strings with few distinct values
longer free text                            ``text``
numbers (also numeric strings, ISO dates,   one ``tabular`` modality named ``"numeric"`` holding them all
booleans)
JSON lists of numbers of one length         ``features`` (dense vectors as given)
==========================================  ==============================================================

Columns that carry nothing (all missing, constant, id-like, unreadable paths, remote URLs, nested objects) are
ignored, and so reported: ``dataset.meta["ingest"]`` holds, per file, what each column became (or why it was
ignored), the rows dropped and the cold items / users; one :class:`~fusionrec.data.DataWarning` sums up what was
ignored or dropped.  ``item_types={"col": "text" | "image" | "audio" | "video" | "categorical" | "numeric" |
"features" | "ignore"}`` (``user_types`` likewise) overrides the detection.

Items listed only in the items file are cold items of the catalogue (in the item id map, no interactions);
users only in the users or social file likewise.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import numpy as np

from fusionrec.data.dataset import Dataset
from fusionrec.data.idmap import IdMap
from fusionrec.data.interactions import DataWarning, Duplicates, Interactions
from fusionrec.data.io import TABLE_SUFFIXES, read_table
from fusionrec.data.modalities import Modality
from fusionrec.data.social import build_social
from fusionrec.errors import ConfigError, DataError, DatasetNotFoundError, InvalidValueError, MissingColumnError

if TYPE_CHECKING:
    import pandas as pd

    Source: TypeAlias = "str | os.PathLike[str] | pd.DataFrame"

__all__ = ["COLUMN_TYPES", "find_tables", "from_files", "from_frames"]

PathLike = str | os.PathLike[str]

#: declared column types of ``item_types`` / ``user_types``
COLUMN_TYPES = ("text", "image", "audio", "video", "categorical", "numeric", "tabular", "features", "ignore")

# lower-cased column names that play a role (exact matches)
USER_NAMES = ("user", "user_id", "userid", "uid", "customer_id", "customerid", "reviewerid", "visitorid", "member_id")
ITEM_NAMES = (
    "item", "item_id", "itemid", "iid", "movieid", "movie_id", "product_id", "productid", "asin", "business_id",
    "track_id", "song_id", "book_id", "article_id",
)  # fmt: skip
RATING_NAMES = ("rating", "ratings", "score", "stars", "overall", "value", "weight", "count", "plays", "clicks")
IMPLICIT_NAMES = ("weight", "count", "plays", "clicks")  # values that are weights / counts, not ratings
TIME_NAMES = ("timestamp", "time", "ts", "date", "datetime", "unixreviewtime", "created_at")
SOCIAL_PAIRS = (
    ("truster", "trustee"), ("trustor", "trustee"), ("user", "friend"), ("user_id", "friend_id"),
    ("source", "target"), ("src", "dst"), ("follower", "followee"), ("from", "to"), ("user1", "user2"),
    ("u", "v"),
)  # fmt: skip
SOCIAL_WEIGHTS = ("weight", "trust", "value", "score", "strength", "w")

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff")
AUDIO_SUFFIXES = (".wav", ".mp3", ".flac", ".ogg", ".m4a", ".aac", ".opus")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")
MEDIA = {"image": IMAGE_SUFFIXES, "audio": AUDIO_SUFFIXES, "video": VIDEO_SUFFIXES}
_ISO_DATE = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")
_LIST_SEP = "|"
_MAX_LABEL_WORDS = 5  # a categorical label is a short string
_MAX_CATEGORIES = 1000
_NUMERIC_SHARE = 0.9  # a text column whose values are numbers but for a few placeholders ("N/A") is numeric


@dataclass
class _Table:
    frame: pd.DataFrame
    path: Path | None
    base: Path  # folder that relative media paths are resolved against
    dropped: dict[str, int] = field(default_factory=dict)  # rows dropped, by reason

    @property
    def where(self) -> str:
        return str(self.path) if self.path is not None else "the DataFrame"


# ------------------------------------------------------------------------------------------------ public API
def from_files(
    interactions: Source,
    items: Source | None = None,
    users: Source | None = None,
    social: Source | None = None,
    *,
    user_col: str | None = None,
    item_col: str | None = None,
    rating_col: str | Literal[False] | None = None,
    timestamp_col: str | Literal[False] | None = None,
    item_id_col: str | None = None,
    user_id_col: str | None = None,
    item_types: Mapping[str, str] | None = None,
    user_types: Mapping[str, str] | None = None,
    implicit: bool | None = None,
    name: str | None = None,
    sep: str | None = None,
    duplicates: Duplicates = "raise",
) -> Dataset:
    """Build a :class:`~fusionrec.data.Dataset` from an interactions table and optional items, users and social
    tables (paths in any :func:`~fusionrec.data.read_table` format, or DataFrames).

    Parameters
    ----------
    interactions
        One interaction per row: user id, item id, optional rating / weight and timestamp.  A folder is also
        accepted: it must hold ``interactions.*`` (or ``ratings.*``) and may hold ``items.*``, ``users.*``,
        ``social.*`` (see :func:`find_tables`); files given explicitly take precedence.
    items, users
        One row per item / user: an id column and content columns, each becoming a modality (see the module
        docstring).  Ids absent from the interactions become cold items / users; interactions of ids absent
        from these tables are kept (their content is missing).
    social
        One directed link per row: two user id columns (``truster``/``trustee``, ``user``/``friend``,
        ``source``/``target``, ... else the first two columns) and an optional weight column; self-links and
        repeated links are dropped (reported), users not in the interactions are added.
    user_col, item_col, rating_col, timestamp_col
        Column names in the interactions table (default: found among common spellings, case-insensitively).
        ``rating_col=False`` / ``timestamp_col=False`` ignore such a column.
    item_id_col, user_id_col
        The id column of the items / users table (default: the interactions' column name when present, else a
        common spelling, else ``id``).
    item_types, user_types
        ``{column: type}`` with a type among :data:`COLUMN_TYPES`; overrides the detection.
    implicit
        ``True``: the values are weights / counts (implicit feedback), ``False``: ratings.  Default: implicit
        when there is no rating column or it is named like a count (``weight``, ``count``, ``plays``,
        ``clicks``).  Without a rating column every interaction has value 1.
    name
        Dataset name (default: the interactions file's stem or folder name).
    sep
        Field separator of the delimited text tables (default by suffix; sniffed for ``.txt`` / ``.dat``).
    duplicates
        Repeated (user, item) rows: ``"raise"`` or merged by ``"first"``, ``"last"``, ``"sum"``, ``"mean"``,
        ``"max"`` (see :meth:`Interactions.from_arrays`).

    Returns
    -------
    Dataset
        ``meta["ingest"]`` reports, per table, each column's role or modality kind (or ``"ignored"`` with the
        reason), the rows dropped, and the items / users present only in the side tables.

    Raises
    ------
    DatasetNotFoundError
        A file is missing.
    EmptyDataError
        A table has no rows.
    MissingColumnError
        A role column cannot be found, is ambiguous, or a named column is absent; the message lists the
        columns and the option that names it.
    ConfigError
        An unknown declared column type.
    DataError
        Duplicate ids in the items / users table, ids that only differ by type, an items / users / social
        table that shares no id with the interactions, a declared media column whose files do not exist.
    """
    tables = {"items": items, "users": users, "social": social}
    if isinstance(interactions, str | os.PathLike) and Path(interactions).expanduser().is_dir():
        folder = Path(interactions).expanduser()
        found = find_tables(folder)
        interactions = found["interactions"]
        tables = {k: v if v is not None else found.get(k) for k, v in tables.items()}
        name = name or folder.name
    elif name is None and isinstance(interactions, str | os.PathLike):
        name = _stem(Path(interactions))
    loaded = {k: None if v is None else _load(v, sep) for k, v in tables.items()}
    return _build(
        _load(interactions, sep),
        loaded["items"],
        loaded["users"],
        loaded["social"],
        user_col=user_col,
        item_col=item_col,
        rating_col=rating_col,
        timestamp_col=timestamp_col,
        item_id_col=item_id_col,
        user_id_col=user_id_col,
        item_types=dict(item_types or {}),
        user_types=dict(user_types or {}),
        implicit=implicit,
        name=name or "dataset",
        duplicates=duplicates,
    )


def from_frames(
    interactions: pd.DataFrame,
    items: pd.DataFrame | None = None,
    users: pd.DataFrame | None = None,
    social: pd.DataFrame | None = None,
    **options: Any,
) -> Dataset:
    """:func:`from_files` on DataFrames (relative media paths are resolved against the working directory)."""
    import pandas as pd

    for what, frame in (("interactions", interactions), ("items", items), ("users", users), ("social", social)):
        if frame is not None and not isinstance(frame, pd.DataFrame):
            raise DataError(
                f"{what} must be a pandas DataFrame, got {type(frame).__name__}; use from_files for file paths"
            )
    return from_files(interactions, items, users, social, **options)


def find_tables(folder: PathLike) -> dict[str, Path]:
    """The tables of a dataset folder: ``interactions.*`` (or ``ratings.*``), optional ``items.*``, ``users.*``,
    ``social.*`` with a :data:`~fusionrec.data.io.TABLE_SUFFIXES` suffix (possibly ``.gz``).

    Raises
    ------
    DatasetNotFoundError
        The folder does not exist or holds no interactions table.
    DataError
        More than one file for the same table (``interactions.csv`` and ``interactions.parquet``).
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise DatasetNotFoundError(f"{root} is not a folder")
    out: dict[str, Path] = {}
    for role, stems in (
        ("interactions", ("interactions", "ratings")),
        ("items", ("items",)),
        ("users", ("users",)),
        ("social", ("social",)),
    ):
        hits = sorted(
            p
            for p in root.iterdir()
            if p.is_file() and _stem(p) in stems and any(p.name.lower().endswith(s) for s in _suffixes())
        )
        if len(hits) > 1:
            raise DataError(
                f"{root} holds several {role} tables: {[p.name for p in hits]}; keep one (or pass the files "
                "to from_files explicitly)"
            )
        if hits:
            out[role] = hits[0]
    if "interactions" not in out:
        raise DatasetNotFoundError(
            f"{root} holds no interactions table; name it interactions.csv (or ratings.csv; also .tsv, .parquet, "
            f".jsonl) and optionally add items.*, users.*, social.*; files present: {sorted(os.listdir(root))[:20]}"
        )
    return out


# ------------------------------------------------------------------------------------------------ reading
def _suffixes() -> tuple[str, ...]:
    return (*TABLE_SUFFIXES, *(s + ".gz" for s in TABLE_SUFFIXES if s not in (".parquet", ".pq")))


def _stem(p: Path) -> str:
    name = p.name
    for s in sorted(_suffixes(), key=len, reverse=True):
        if name.lower().endswith(s):
            return name[: -len(s)]
    return p.stem


def _load(source: Any, sep: str | None) -> _Table:
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        frame = read_table(source)
        path, base = None, Path.cwd()
    else:
        frame = read_table(source, **({"sep": sep} if sep is not None else {}))
        path = Path(source).expanduser()
        base = path.resolve().parent
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c).strip() for c in frame.columns]
    dup = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
    if dup:
        raise DataError(f"{path or 'the DataFrame'} repeats column name(s) {dup}; give every column its own name")
    return _Table(frame, path, base)


def _find_column(
    table: _Table, given: str | None, candidates: tuple[str, ...], role: str, option: str, taken: set[str]
) -> str | None:
    """The column playing ``role``: ``given`` (must exist) or the single case-insensitive match of ``candidates``."""
    cols = list(table.frame.columns)
    if given is not None:
        if given not in cols:
            raise MissingColumnError(
                f"{table.where}: the {role} column {given!r} ({option}=) is not among the columns {cols}"
            )
        return given
    hits = [c for c in cols if c.lower() in candidates and c not in taken]
    if len(hits) > 1:
        raise MissingColumnError(
            f"{table.where}: the {role} column is ambiguous, {hits} all look like one (columns: {cols}); "
            f"pass {option}=<column name>"
        )
    return hits[0] if hits else None


def _require(found: str | None, table: _Table, role: str, option: str, candidates: tuple[str, ...]) -> str:
    if found is None:
        cols = list(table.frame.columns)
        headerless = all(re.fullmatch(r"-?\d+(\.\d+)?", c) for c in cols)
        hint = "; the file seems to lack a header line: add one (e.g. user,item,rating)" if headerless else ""
        raise MissingColumnError(
            f"{table.where}: no {role} column found among {cols}; name it one of "
            f"{list(candidates)} (any case) or pass {option}=<column name>{hint}"
        )
    return found


# ------------------------------------------------------------------------------------------------ ids
def _clean_ids(values: Any, where: str) -> np.ndarray:
    """Non-missing raw ids as int64 or str (object); DataError for ids that differ only by type (``1`` / ``"1"``)."""
    arr = np.asarray(values)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    if arr.dtype.kind == "b":
        raise DataError(f"{where}: boolean ids are not supported; use integer or text ids")
    if arr.dtype.kind == "f":
        if np.all(arr == np.round(arr)):
            return arr.astype(np.int64)
        raise DataError(f"{where}: ids must be integers or text, got fractional numbers such as {arr[:3].tolist()}")
    import pandas as pd

    inferred = pd.api.types.infer_dtype(arr, skipna=False)
    if inferred == "string":
        return arr.astype(object)
    if inferred == "integer":
        return arr.astype(np.int64)
    objs = arr.tolist()
    canon: list[str] = []
    for v in objs:
        if isinstance(v, float | np.floating) and float(v).is_integer():
            v = int(v)
        canon.append(str(v))
    kinds: dict[str, set[str]] = {}
    for v, c in zip(objs, canon, strict=True):
        kinds.setdefault(c, set()).add("number" if isinstance(v, int | float | np.number) else type(v).__name__)
    clash = [c for c, k in kinds.items() if len(k) > 1]
    if clash:
        raise DataError(
            f"{where}: {len(clash)} id(s) appear both as a number and as text, e.g. {clash[:3]}; they only differ "
            "by type -- make the id column one type (all numbers or all strings) in every file"
        )
    return np.asarray(canon, dtype=object)


def _present_rows(frame: pd.DataFrame, cols: list[str]) -> np.ndarray:
    return ~frame[cols].isna().any(axis=1).to_numpy()


# ------------------------------------------------------------------------------------------------ columns
def _resolve(value: str, base: Path) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p


def _media_kind(strings: list[str]) -> str | None:
    if not strings:
        return None
    for kind, suffixes in MEDIA.items():
        if all(s.lower().endswith(suffixes) for s in strings):
            return kind
    return None


def _numeric_values(values: list[Any], share: float = 1.0) -> np.ndarray | None:
    """Floats (NaN where not a number) when at least ``share`` of the values are finite numbers or numeric
    strings, else None."""
    import pandas as pd

    if any(isinstance(v, list | tuple | dict | np.ndarray) for v in values):
        return None
    conv = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(dtype=np.float64)
    ok = np.isfinite(conv)
    return conv if ok.all() or (ok.mean() >= share and ok.any()) else None


def _dates(strings: list[str]) -> np.ndarray | None:
    """Unix seconds when every value is an ISO date (``2020-01-31``, ``2020-01-31T10:00:00``), else None."""
    import pandas as pd

    if not strings or not all(_ISO_DATE.match(s.strip()) for s in strings):
        return None
    parsed = pd.to_datetime(pd.Series(strings), utc=True, errors="coerce", format="ISO8601")
    if parsed.isna().any():
        return None
    return ((parsed - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy().astype(np.float64)


def _labels(v: Any) -> list[str]:
    """Labels of one value: a list as it is, ``"a|b"`` split, a number as text (``1995.0`` -> ``"1995"``)."""
    if isinstance(v, list | tuple | np.ndarray):
        return [t for x in v if x is not None for t in _labels(x)]
    if isinstance(v, str):
        return [s.strip() for s in v.split(_LIST_SEP) if s.strip()]
    if isinstance(v, float | np.floating) and float(v).is_integer():
        return [str(int(v))]
    return [str(v)]


def _filled(series: pd.Series) -> np.ndarray:
    """Rows holding a value (not NaN / None, not a blank string)."""
    blank = series.map(lambda v: isinstance(v, str) and not v.strip()).to_numpy(dtype=bool)
    return np.asarray(series.notna().to_numpy(), dtype=bool) & ~blank


def _id_like_name(col: str) -> bool:
    low = col.lower()
    return low == "id" or low.endswith("_id") or col.endswith(("Id", "ID")) or low.startswith("unnamed:")


@dataclass
class _Column:
    kind: str  # text / image / audio / video / categorical / numeric / features / ignored
    values: list[Any] | np.ndarray | None = None  # one per row (None = missing); numeric: float array with NaN
    reason: str = ""
    extra: dict[str, Any] | None = None


def _detect(col: str, series: pd.Series, base: Path) -> _Column:
    """What a content column is, from its values."""
    import pandas as pd

    n = len(series)
    notna = _filled(series)
    if not notna.any():
        return _Column("ignored", reason="all values are missing")
    complete = bool(notna.all())
    if pd.api.types.is_datetime64_any_dtype(series):
        secs = pd.to_datetime(series, utc=True)
        values = ((secs - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(
            dtype=np.float64, na_value=np.nan
        )
        return _numeric_column(col, values, complete, from_what="dates")
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return _numeric_column(col, series.to_numpy(dtype=np.float64, na_value=np.nan), complete)
    present = series[notna]
    vals = present.tolist()
    if any(isinstance(v, dict) for v in vals):
        return _Column("ignored", reason="nested objects (JSON); flatten them into columns")
    if all(isinstance(v, list | tuple | np.ndarray) for v in vals):
        return _list_column(series, notna, vals)
    if any(isinstance(v, list | tuple | np.ndarray) for v in vals):
        return _Column("ignored", reason="mixes lists and single values; make every value a list or a string")
    if all(isinstance(v, bool | np.bool_) for v in vals):
        return _numeric_column(col, series.map(lambda v: np.nan if v is None else float(v)).to_numpy(float), complete)
    num = _numeric_values(vals, share=_NUMERIC_SHARE)
    if num is not None:
        values = np.full(n, np.nan)
        values[notna] = num
        out = _numeric_column(col, values, complete and bool(np.isfinite(num).all()))
        bad = [v for v, x in zip(vals, num, strict=True) if not np.isfinite(x)]
        if bad and out.kind == "numeric":
            out.extra = {"non_numeric_as_missing": len(bad), "examples": [str(v) for v in bad[:3]]}
        return out
    strings = [str(v).strip() for v in vals]
    dates = _dates(strings)
    if dates is not None:
        values = np.full(n, np.nan)
        values[notna] = dates
        return _numeric_column(col, values, complete, from_what="dates")
    if (
        sum(s.lower().startswith(("http://", "https://", "ftp://", "s3://", "gs://")) for s in strings)
        > len(strings) / 2
    ):
        return _Column("ignored", reason="remote URLs are not downloaded; download the files and give local paths")
    media = _media_kind(strings)
    if media is not None:
        return _media_column(media, series, notna, strings, base, declared=False)
    uniq = set(strings)
    if len(uniq) == 1 and complete:
        return _Column("ignored", reason=f"constant ({strings[0][:40]!r} everywhere)")
    words = [len(s.split()) for s in strings]
    if any(_LIST_SEP in s for s in strings):
        labels = [_labels(s) for s in strings]
        if all(len(lab.split()) <= _MAX_LABEL_WORDS for row in labels for lab in row):
            return _rows("categorical", n, notna, labels)
    distinct = len(uniq) == len(strings) > 1
    if distinct and max(words) == 1 and all(any(ch.isdigit() for ch in s) or "/" in s for s in strings):
        return _Column("ignored", reason="id-like (every value distinct, a single code or path token)")
    if max(words) <= _MAX_LABEL_WORDS and len(uniq) <= min(_MAX_CATEGORIES, len(strings) / 2):
        return _rows("categorical", n, notna, [[s] for s in strings])
    return _rows("text", n, notna, strings)


def _rows(kind: str, n: int, notna: np.ndarray, present_values: list[Any], **extra: Any) -> _Column:
    out: list[Any] = [None] * n
    for j, v in zip(np.flatnonzero(notna).tolist(), present_values, strict=True):
        out[j] = v
    return _Column(kind, out, extra=extra or None)


def _numeric_column(col: str, values: np.ndarray, complete: bool, from_what: str = "") -> _Column:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return _Column("ignored", reason="no finite number")
    uniq = np.unique(finite)
    if uniq.size == 1 and complete:
        return _Column("ignored", reason=f"constant ({uniq[0]:g} everywhere)")
    whole = bool(np.all(finite == np.round(finite)))
    if not from_what and whole and uniq.size == finite.size and finite.size > 1:
        if _id_like_name(col):
            return _Column("ignored", reason="id-like (distinct integers in a column named like an id)")
        if complete and uniq[0] in (0, 1) and uniq[-1] - uniq[0] + 1 == uniq.size and uniq.size >= 3:
            return _Column("ignored", reason="a row number (the distinct integers 0/1..n)")
    return _Column("numeric", values, extra={"from": from_what} if from_what else None)


def _list_column(series: pd.Series, notna: np.ndarray, vals: list[Any]) -> _Column:
    n = len(series)
    flat = [x for v in vals for x in v]
    if flat and all(isinstance(x, int | float | np.number) and not isinstance(x, bool) for x in flat):
        lengths = {len(v) for v in vals}
        if len(lengths) == 1:
            arr = np.asarray(vals, dtype=np.float32)
            if np.isfinite(arr).all():
                return _rows("features", n, notna, list(arr))
        return _Column("ignored", reason=f"number lists of different lengths {sorted(lengths)[:5]}")
    labels = [_labels(v) for v in vals]
    return _rows("categorical", n, notna, labels)


def _media_column(
    kind: str, series: pd.Series, notna: np.ndarray, strings: list[str], base: Path, declared: bool
) -> _Column:
    paths = [_resolve(s, base) for s in strings]
    exists = [p.is_file() for p in paths]
    n_missing = len(paths) - sum(exists)
    if not any(exists):
        msg = (
            f"none of the {len(paths)} {kind} paths exists (relative paths are resolved against {base}), "
            f"e.g. {str(paths[0])!r}"
        )
        if declared:
            raise DataError(f"{msg}; fix the paths or declare another type")
        return _Column("ignored", reason=f"unreadable paths: {msg}")
    mask = notna.copy()
    mask[np.flatnonzero(notna)[~np.asarray(exists)]] = False
    kept = [str(p) for p, ok in zip(paths, exists, strict=True) if ok]
    return _rows(kind, len(series), mask, kept, missing_files=n_missing)


def _declared(col: str, kind: str, series: pd.Series, base: Path, where: str) -> _Column:
    import pandas as pd

    n = len(series)
    notna = _filled(series)
    vals = series[notna].tolist()
    if kind == "ignore":
        return _Column("ignored", reason="declared 'ignore'", extra={"declared": True})
    if kind in ("numeric", "tabular"):
        if pd.api.types.is_datetime64_any_dtype(series):
            return _detect(col, series, base)
        conv = pd.to_numeric(pd.Series(vals, dtype=object), errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(conv)
        if bad.any():
            raise InvalidValueError(
                f"{where}: column {col!r} is declared numeric but holds {int(bad.sum())} non-numeric value(s), "
                f"e.g. {[vals[j] for j in np.flatnonzero(bad)[:3]]}; clean them or declare another type"
            )
        values = np.full(n, np.nan)
        values[notna] = conv
        return _Column("numeric", values)
    if kind == "text":
        return _rows("text", n, notna, [" ".join(_labels(v)) if not isinstance(v, str) else v for v in vals])
    if kind == "categorical":
        return _rows("categorical", n, notna, [_labels(v) for v in vals])
    if kind == "features":
        try:
            arr = np.asarray(vals, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise DataError(
                f"{where}: column {col!r} is declared features but its values are not number lists of one length"
            ) from exc
        if arr.ndim != 2 or not np.isfinite(arr).all():
            raise DataError(f"{where}: column {col!r} (features) needs finite number lists of one length")
        return _rows("features", n, notna, list(arr))
    return _media_column(kind, series, notna, [str(v).strip() for v in vals], base, declared=True)


def _content(
    table: _Table, id_col: str, ids: np.ndarray, types: dict[str, str], target: Literal["item", "user"]
) -> tuple[dict[str, Modality], dict[str, Any]]:
    """The modalities of an items / users table (rows aligned with ``ids``) and the per-column report."""
    import pandas as pd

    frame = table.frame
    unknown = {c: t for c, t in types.items() if t not in COLUMN_TYPES}
    if unknown:
        raise ConfigError(f"unknown column type(s) {unknown} for the {target}s table; use one of {COLUMN_TYPES}")
    absent = sorted(set(types) - set(frame.columns))
    if absent:
        raise MissingColumnError(
            f"{table.where}: {target}_types names column(s) {absent} that it lacks; columns: {list(frame.columns)}"
        )
    report: dict[str, Any] = {id_col: {"kind": "id"}}
    mods: dict[str, Modality] = {}
    numeric: dict[str, np.ndarray] = {}
    for col in frame.columns:
        if col == id_col:
            continue
        if col in types:
            info = _declared(col, types[col], frame[col], table.base, table.where)
        else:
            info = _detect(col, frame[col], table.base)
        entry: dict[str, Any] = {"kind": info.kind}
        if info.reason:
            entry["reason"] = info.reason
        if info.extra:
            entry.update(info.extra)
        if col in types:
            entry["declared"] = True
        report[col] = entry
        if info.kind == "numeric":
            numeric[col] = np.asarray(info.values, dtype=np.float64)
            entry["modality"] = "numeric"
        elif info.kind != "ignored":
            assert info.values is not None
            keep = np.array([v is not None and not (isinstance(v, list) and not v) for v in info.values], dtype=bool)
            data: Any = [v for v, k in zip(info.values, keep, strict=True) if k]
            if info.kind == "features":
                data = np.stack(data).astype(np.float32)
            mods[col] = Modality(info.kind, IdMap(ids[keep]), data, target=target)  # type: ignore[arg-type]
            entry["rows"] = int(keep.sum())
    if numeric:
        name = "numeric" if "numeric" not in mods else "numeric_columns"
        table_ = pd.DataFrame(numeric)
        keep = table_.notna().any(axis=1).to_numpy()
        mods[name] = Modality("tabular", IdMap(ids[keep]), table_[keep].reset_index(drop=True), target=target)
        for col in numeric:
            report[col]["modality"] = name
    return mods, report


# ------------------------------------------------------------------------------------------------ building
def _side_ids(table: _Table, given: str | None, log_col: str, target: str, option: str) -> tuple[str, np.ndarray]:
    """The id column of an items / users table and its cleaned ids (rows without an id are dropped, reported)."""
    import pandas as pd

    frame = table.frame
    cols = list(frame.columns)
    names = USER_NAMES if target == "user" else ITEM_NAMES
    col: str | None
    if given is not None:
        col = _find_column(table, given, (), f"{target} id", option, set())
    elif log_col in cols:
        col = log_col
    else:
        col = _find_column(table, None, names, f"{target} id", option, set())
        if col is None and "id" in [c.lower() for c in cols]:
            col = next(c for c in cols if c.lower() == "id")
    col = _require(col, table, f"{target} id", option, (log_col, *names, "id"))
    keep = frame[col].notna().to_numpy()
    if not keep.all():
        table.frame = frame = frame[keep].reset_index(drop=True)
        table.dropped["missing id"] = int((~keep).sum())
    ids = _clean_ids(frame[col].to_numpy(), f"{table.where}, column {col!r}")
    dup = pd.Index(ids).duplicated()
    if dup.any():
        raise DataError(
            f"{table.where}: {int(dup.sum())} {target} id(s) appear on more than one row, e.g. "
            f"{pd.unique(ids[dup])[:5].tolist()}; keep one row per {target} (merge or drop the repeats)"
        )
    return col, ids


def _unify(*arrays: np.ndarray | None) -> list[np.ndarray | None]:
    """Give id arrays from different files one type: text ids that are all plain integers become ints when
    another file has integer ids; otherwise integer ids become text."""
    given = [a for a in arrays if a is not None]
    if all(a.dtype != object for a in given) or all(a.dtype == object for a in given):
        return list(arrays)
    import pandas as pd

    texts = [a for a in given if a.dtype == object]
    if all(pd.Series(a, dtype=object).str.fullmatch(r"-?(0|[1-9]\d*)").all() for a in texts):
        return [None if a is None else a.astype(np.int64) for a in arrays]
    return [None if a is None else (a if a.dtype == object else a.astype(str).astype(object)) for a in arrays]


def _no_overlap(table: _Table, col: str, ids: np.ndarray, log_ids: np.ndarray, target: str, option: str) -> None:
    if len(ids) and not np.isin(ids, log_ids).any():
        raise DataError(
            f"{table.where}: none of its {target} ids (column {col!r}, e.g. {ids[:3].tolist()}) occurs in the "
            f"interactions (e.g. {log_ids[:3].tolist()}); check {option}= and that the ids have the same type "
            "and format in every file"
        )


def _social_columns(table: _Table) -> tuple[str, str, str | None]:
    cols = list(table.frame.columns)
    low = {c.lower(): c for c in cols}
    for a, b in SOCIAL_PAIRS:
        if a in low and b in low:
            src, dst = low[a], low[b]
            break
    else:
        if len(cols) < 2:
            raise MissingColumnError(
                f"{table.where}: a social table needs two user id columns (truster/trustee, user/friend, "
                f"source/target); columns: {cols}"
            )
        src, dst = cols[0], cols[1]
    rest = [c for c in cols if c not in (src, dst)]
    weight = next((c for c in rest if c.lower() in SOCIAL_WEIGHTS), None)
    if weight is None and len(rest) == 1 and _numeric_values(table.frame[rest[0]].dropna().tolist()) is not None:
        weight = rest[0]
    return src, dst, weight


def _headerless(table: _Table) -> _Table:
    """A social file without a header line (``1 2 1``): the names pandas took from the first line are a link."""
    import pandas as pd

    cols = list(table.frame.columns)
    # pandas renames a repeated name "1" to "1.1": strip that suffix back when the plain name came earlier
    raw = [re.sub(r"\.\d+$", "", c) if re.sub(r"\.\d+$", "", c) in cols[:j] else c for j, c in enumerate(cols)]
    if table.path is None or not all(re.fullmatch(r"-?\d+(\.\d+)?", c) for c in raw):
        return table
    names = [f"column_{j}" for j in range(len(cols))]
    first = pd.DataFrame([[pd.to_numeric(c) for c in raw]], columns=names)
    rest = table.frame.set_axis(names, axis=1)
    return _Table(pd.concat([first, rest], ignore_index=True), table.path, table.base, table.dropped)


def _build(
    log: _Table,
    items: _Table | None,
    users: _Table | None,
    social: _Table | None,
    *,
    user_col: str | None,
    item_col: str | None,
    rating_col: str | Literal[False] | None,
    timestamp_col: str | Literal[False] | None,
    item_id_col: str | None,
    user_id_col: str | None,
    item_types: dict[str, str],
    user_types: dict[str, str],
    implicit: bool | None,
    name: str,
    duplicates: Duplicates,
) -> Dataset:
    from fusionrec.data.interactions import _to_epoch_seconds

    ingest: dict[str, Any] = {}
    notes: list[str] = []
    # ---- interactions: roles
    ucol, icol, rcol, tcol = _roles(log, user_col, item_col, rating_col, timestamp_col)
    frame = log.frame
    roles = [c for c in (ucol, icol, rcol, tcol) if c]
    keep = _present_rows(frame, roles)
    dropped = int((~keep).sum())
    if dropped:
        frame = frame[keep].reset_index(drop=True)
        notes.append(f"{dropped} interaction row(s) lacking {'/'.join(roles)} dropped")
    if len(frame) == 0:
        raise DataError(f"{log.where}: every row lacks a value in {roles}; nothing is left")
    where = log.where
    u_raw = _clean_ids(frame[ucol].to_numpy(), f"{where}, column {ucol!r}")
    i_raw = _clean_ids(frame[icol].to_numpy(), f"{where}, column {icol!r}")
    explicit = (rcol is not None and rcol.lower() not in IMPLICIT_NAMES) if implicit is None else not implicit
    extra_cols = [c for c in frame.columns if c not in roles]
    ingest["interactions"] = {
        "path": str(log.path) if log.path else None,
        "rows": len(log.frame),
        "columns": {
            ucol: {"kind": "user"},
            icol: {"kind": "item"},
            **({rcol: {"kind": "rating" if explicit else "weight"}} if rcol else {}),
            **({tcol: {"kind": "timestamp"}} if tcol else {}),
            **{c: _unused(c, rating_col, timestamp_col) for c in extra_cols},
        },
        "explicit": explicit,
        "rows_dropped": {"missing value in a role column": dropped} if dropped else {},
    }
    ratings = frame[rcol].to_numpy() if rcol else None
    times = None
    if tcol:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # pandas' "could not infer format" on odd dates
                times = _to_epoch_seconds(frame[tcol].to_numpy())
        except DataError as exc:
            raise InvalidValueError(f"{where}, timestamp column {tcol!r}: {exc}") from exc

    # ---- side tables: ids, one id type per kind across the files
    items_ids = users_ids = s_src = s_dst = weights = None
    iid_col = uid_col = src = dst = ""
    if items is not None:
        iid_col, items_ids = _side_ids(items, item_id_col, icol, "item", "item_id_col")
    if users is not None:
        uid_col, users_ids = _side_ids(users, user_id_col, ucol, "user", "user_id_col")
    if social is not None:
        social = _headerless(social)
        src, dst, wcol = _social_columns(social)
        ok = _present_rows(social.frame, [src, dst])
        if not ok.all():
            social.dropped["missing id"] = int((~ok).sum())
            social.frame = social.frame[ok].reset_index(drop=True)
        if len(social.frame) == 0:
            raise DataError(f"{social.where}: no link has both user ids ({src!r}, {dst!r})")
        s_src = _clean_ids(social.frame[src].to_numpy(), f"{social.where}, column {src!r}")
        s_dst = _clean_ids(social.frame[dst].to_numpy(), f"{social.where}, column {dst!r}")
        if wcol is not None:
            weights = _weights(social.frame[wcol], f"{social.where}, weight column {wcol!r}")
        ingest["social"] = {
            "path": str(social.path) if social.path else None,
            "rows": len(social.frame) + sum(social.dropped.values()),
            "columns": {
                src: {"kind": "source"},
                dst: {"kind": "target"},
                **({wcol: {"kind": "weight"}} if wcol else {}),
            },
            "rows_dropped": dict(social.dropped),
        }
    i_raw, items_ids = _unify(i_raw, items_ids)  # type: ignore[assignment]
    u_raw, users_ids, s_src, s_dst = _unify(u_raw, users_ids, s_src, s_dst)  # type: ignore[assignment]
    item_extra = np.zeros(0, dtype=i_raw.dtype)
    user_extra: list[np.ndarray] = []
    if items is not None and items_ids is not None:
        _no_overlap(items, iid_col, items_ids, i_raw, "item", "item_id_col")
        item_extra = items_ids[~np.isin(items_ids, i_raw)]
        ingest["items"] = {
            "path": str(items.path) if items.path else None,
            "rows": len(items.frame) + sum(items.dropped.values()),
            "id_column": iid_col,
            "rows_dropped": dict(items.dropped),
        }
    if users is not None and users_ids is not None:
        _no_overlap(users, uid_col, users_ids, u_raw, "user", "user_id_col")
        user_extra.append(users_ids[~np.isin(users_ids, u_raw)])
        ingest["users"] = {
            "path": str(users.path) if users.path else None,
            "rows": len(users.frame) + sum(users.dropped.values()),
            "id_column": uid_col,
            "rows_dropped": dict(users.dropped),
        }
    links = None
    if social is not None and s_src is not None and s_dst is not None:
        both = np.concatenate([s_src, s_dst])
        known = u_raw if users_ids is None else np.concatenate([u_raw, users_ids])
        _no_overlap(social, f"{src}, {dst}", both, known, "user", "the social file")
        user_extra.append(both[~np.isin(both, u_raw)])
        links = (s_src, s_dst, weights)

    # ---- id maps: interaction ids (sorted), then ids only in the side tables (sorted)
    user_ids, _ = IdMap.factorize(u_raw)
    item_ids, _ = IdMap.factorize(i_raw)
    extra_u = np.concatenate(user_extra) if user_extra else np.zeros(0, dtype=u_raw.dtype)
    if len(extra_u):
        user_ids = user_ids.extend(np.unique(extra_u))
    if len(item_extra):
        item_ids = item_ids.extend(np.unique(item_extra))
    inter = Interactions.from_arrays(
        u_raw, i_raw, ratings, times, user_ids=user_ids, item_ids=item_ids, explicit=explicit, duplicates=duplicates
    )

    # ---- content
    item_mods: dict[str, Modality] = {}
    user_mods: dict[str, Modality] = {}
    if items is not None and items_ids is not None:
        item_mods, cols = _content(items, iid_col, items_ids, item_types, "item")
        ingest["items"].update(
            columns=cols,
            modalities={k: m.kind for k, m in item_mods.items()},
            only_in_file=len(item_extra),
            without_row=int((~np.isin(item_ids.ids, items_ids)).sum()),
        )
    if users is not None and users_ids is not None:
        user_mods, cols = _content(users, uid_col, users_ids, user_types, "user")
        ingest["users"].update(
            columns=cols,
            modalities={k: m.kind for k, m in user_mods.items()},
            only_in_file=int((~np.isin(users_ids, u_raw)).sum()),
            without_row=int((~np.isin(user_ids.ids, users_ids)).sum()),
        )

    # ---- social graph
    matrix = None
    if links is not None:
        matrix, sreport = _social_matrix(*links, user_ids, u_raw)
        ingest["social"].update(sreport)
        if sreport["self_links_dropped"] or sreport["duplicates_dropped"]:
            notes.append(
                f"social: {sreport['self_links_dropped']} self-link(s) and {sreport['duplicates_dropped']} repeated "
                "link(s) dropped"
            )

    _summarise(ingest, notes, name)
    meta = {"source": ingest["interactions"]["path"] or "DataFrame", "ingest": ingest}
    return Dataset(name, inter, item_mods, user_mods, matrix, meta)


def _roles(
    log: _Table, user_col: str | None, item_col: str | None, rating_col: Any, timestamp_col: Any
) -> tuple[str, str, str | None, str | None]:
    """The user, item, rating and timestamp columns of the interactions table (rating / timestamp optional)."""
    taken: set[str] = set()
    ucol = _require(
        _find_column(log, user_col, USER_NAMES, "user", "user_col", taken), log, "user", "user_col", USER_NAMES
    )
    taken.add(ucol)
    icol = _require(
        _find_column(log, item_col, ITEM_NAMES, "item", "item_col", taken), log, "item", "item_col", ITEM_NAMES
    )
    taken.add(icol)
    rcol = None
    if rating_col is not False:
        rcol = _find_column(log, rating_col, RATING_NAMES, "rating", "rating_col", taken)
        taken.add(rcol or "")
    tcol = None
    if timestamp_col is not False:
        tcol = _find_column(log, timestamp_col, TIME_NAMES, "timestamp", "timestamp_col", taken)
    return ucol, icol, rcol, tcol


def _summarise(ingest: dict[str, Any], notes: list[str], name: str) -> None:
    """Add the ignored columns and notes to the report, and warn once (``DataWarning``) when there are any."""
    ignored = [
        f"{table}.{col} ({info['reason']})"
        for table in ("interactions", "items", "users")
        for col, info in ingest.get(table, {}).get("columns", {}).items()
        if info["kind"] == "ignored" and not info.get("declared")
    ]
    for table in ("items", "users", "social"):
        for what, count in ingest.get(table, {}).get("rows_dropped", {}).items():
            notes.append(f"{table}: {count} row(s) dropped ({what})")
        for col, info in ingest.get(table, {}).get("columns", {}).items():
            if info.get("missing_files"):
                notes.append(f"{table}.{col}: {info['missing_files']} file(s) not found (treated as missing)")
    ingest["ignored_columns"] = ignored
    ingest["notes"] = notes
    order = ("interactions", "items", "users", "social", "ignored_columns", "notes")
    ordered = {k: ingest.pop(k) for k in order if k in ingest}
    ingest.update(ordered)
    if ignored or notes:
        parts = [f"ignored {len(ignored)} column(s): {'; '.join(ignored)}"] if ignored else []
        warnings.warn(
            f"{name}: {'; '.join([*parts, *notes])}. Declare a column's type with item_types= / user_types= to "
            "use it (details in dataset.meta['ingest'])",
            DataWarning,
            stacklevel=4,
        )


def _unused(col: str, rating_col: Any, timestamp_col: Any) -> dict[str, Any]:
    """Report entry of an interactions column without a role (declared when the caller switched its role off)."""
    low = col.lower()
    for flag, option, names in ((rating_col, "rating_col", RATING_NAMES), (timestamp_col, "timestamp_col", TIME_NAMES)):
        if flag is False and low in names:
            return {"kind": "ignored", "reason": f"{option}=False", "declared": True}
    return {"kind": "ignored", "reason": "not a user / item / rating / timestamp column"}


def _weights(series: pd.Series, where: str) -> np.ndarray:
    values = _numeric_values(series.tolist())
    if values is None:
        raise InvalidValueError(f"{where}: holds non-numeric or missing values; clean it or drop the column")
    return values


def _social_matrix(
    src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None, user_ids: IdMap, log_users: np.ndarray
) -> tuple[Any, dict[str, Any]]:
    a, b = user_ids.to_index(src), user_ids.to_index(dst)
    self_link = a == b
    key = a * len(user_ids) + b
    first = np.zeros(len(key), dtype=bool)
    first[np.unique(key, return_index=True)[1]] = True
    keep = ~self_link & first
    n_dup = int((~first & ~self_link).sum())
    w = None if weights is None else weights[keep]
    matrix = build_social(src[keep], dst[keep], user_ids, w)
    both = np.concatenate([src, dst])
    return matrix, {
        "links": int(matrix.nnz),
        "self_links_dropped": int(self_link.sum()),
        "duplicates_dropped": n_dup,
        "users_added": len(np.unique(both[~np.isin(both, log_users)])),
    }
