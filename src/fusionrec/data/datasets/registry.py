"""Datasets by name: what exists, where it comes from, whether it is present, and loading it.

``load_dataset("ml-100k")`` looks for the dataset folder in the data directory (argument, else
``$FUSIONREC_DATA_DIR``), then in the download cache (``fusionrec datasets fetch ml-100k``), and raises
:class:`~fusionrec.errors.DatasetNotFoundError` naming both places and the command when it is in neither.
``load_benchmark_split("ml-100k.random811")`` reads ``<data_dir>/splits/<name>.csv`` over the id maps of the
dataset it belongs to, so its item indices match the dataset's content modalities.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fusionrec.data.dataset import Dataset
from fusionrec.data.split import Split
from fusionrec.errors import ConfigError, DatasetNotFoundError

__all__ = ["BENCHMARK_SPLITS", "DatasetInfo", "list_datasets", "load_benchmark_split", "load_dataset"]

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class DatasetInfo:
    """One row of :func:`list_datasets`."""

    name: str
    description: str
    format: str
    source: str
    present: bool
    path: str | None = None
    fetchable: bool = False


@dataclass(frozen=True)
class _Entry:
    name: str
    description: str
    format: str
    source: str
    folders: tuple[str, ...]  # relative to the data dir; all must exist
    loader: Callable[..., Dataset]
    fetchable: bool = False


def _ml100k(root: Path, data_dir: Path | None, **kw: Any) -> Dataset:
    from fusionrec.data.datasets.movielens import load_ml100k

    return load_ml100k(root, **kw)


def _movielens(name: str) -> Callable[..., Dataset]:
    def load(root: Path, data_dir: Path | None, **kw: Any) -> Dataset:
        from fusionrec.data.datasets.movielens import load_movielens

        return load_movielens(root, name=kw.pop("name", name), **kw)

    return load


def _posters(root: Path, data_dir: Path | None, **kw: Any) -> Dataset:
    from fusionrec.data.datasets.movielens import load_ml_posters

    return load_ml_posters(root.parent, **kw)


def _filmtrust(root: Path, data_dir: Path | None, **kw: Any) -> Dataset:
    from fusionrec.data.datasets.social import load_filmtrust

    return load_filmtrust(root, **kw)


def _tiktok(root: Path, data_dir: Path | None, **kw: Any) -> Dataset:
    from fusionrec.data.datasets.tiktok import load_tiktok

    return load_tiktok(root, **kw)


def _synthetic(root: Path | None, data_dir: Path | None, **kw: Any) -> Dataset:
    from fusionrec.data.datasets.synthetic import make_synthetic

    return make_synthetic(**kw)


_GL = "GroupLens (files.grouplens.org/datasets/movielens)"
ENTRIES: dict[str, _Entry] = {
    e.name: e
    for e in (
        _Entry(
            "ml-100k",
            "MovieLens 100K: 100000 ratings 1-5, 943 users, 1682 movies; titles, genres, demographics, folds",
            "movielens-100k",
            _GL + " ml-100k.zip",
            ("ml-100k",),
            _ml100k,
            True,
        ),
        _Entry(
            "ml-latest-small",
            "MovieLens latest-small: 100836 ratings 0.5-5, 610 users, 9742 movies; titles, genres, tags, links",
            "movielens-csv",
            _GL + " ml-latest-small.zip",
            ("ml-latest-small",),
            _movielens("ml-latest-small"),
            True,
        ),
        _Entry(
            "ml-posters",
            "ml-latest-small ratings of the 2943 movies with an ML-1M poster (58498 ratings, 610 users) + poster images",
            "movielens-csv+posters",
            "ml-latest-small + ML-1M posters (STAT 542 course site, research use only; not downloadable here)",
            ("ml-posters", "ml-latest-small", "ml-posters/MovieImages"),
            _posters,
        ),
        _Entry(
            "filmtrust",
            "FilmTrust: 35497 ratings 0.5-4 (3 repeated pairs), 1508 users, 2071 items, 1806 directed trust links",
            "trust-text",
            "Guo, Zhang & Yorke-Smith, IJCAI 2013 (librec.net/datasets); pass duplicates='last' or 'mean'",
            ("filmtrust",),
            _filmtrust,
        ),
        _Entry(
            "ml-1m",
            "MovieLens 1M: 1000209 ratings, 6040 users, 3706 movies; titles, genres, demographics",
            "movielens-dat",
            _GL + " ml-1m.zip",
            ("ml-1m",),
            _movielens("ml-1m"),
            True,
        ),
        _Entry(
            "ml-20m",
            "MovieLens 20M: 20000263 ratings, 138493 users, 27278 movies; tags, links",
            "movielens-csv",
            _GL + " ml-20m.zip",
            ("ml-20m",),
            _movielens("ml-20m"),
            True,
        ),
        _Entry(
            "ml-25m",
            "MovieLens 25M: 25000095 ratings, 162541 users, 62423 movies; tags, links",
            "movielens-csv",
            _GL + " ml-25m.zip",
            ("ml-25m",),
            _movielens("ml-25m"),
            True,
        ),
        _Entry(
            "tiktok",
            "TikTok micro-videos (DiffMM split): 68722 implicit interactions, 9308 users, 6710 items; "
            "128-d image and audio features",
            "tiktok-diffmm",
            "Wei et al., MMGCN (MM 2019) as split by DiffMM (github.com/HKUDS/DiffMM); research data, no license file",
            ("tiktok",),
            _tiktok,
        ),
    )
}
SYNTHETIC_DESCRIPTION = "built-in synthetic users/items with text, image, tabular and social side information"

# split name -> (dataset name, how the split is read)
BENCHMARK_SPLITS: dict[str, str] = {
    "ml-100k.random811": "ml-100k",
    "ml-latest-small.random811": "ml-latest-small",
    "ml-posters.random811": "ml-posters",
    "ml-posters.coldstart-items": "ml-posters",
    "tiktok.diffmm": "tiktok",
    **{f"ml-100k.{fold}": "ml-100k" for fold in ("u1", "u2", "u3", "u4", "u5", "ua", "ub")},
}


def _data_dir(data_dir: PathLike | None) -> Path | None:
    from fusionrec.config import data_dir as configured

    if data_dir is not None:
        p = Path(data_dir).expanduser()
        return p if p.is_dir() else None
    return configured()


def _locate(entry: _Entry, data_dir: Path | None) -> Path | None:
    """The dataset folder (first of ``entry.folders``) in the data dir, else in the download cache."""
    if data_dir is not None and all((data_dir / f).is_dir() for f in entry.folders):
        return data_dir / entry.folders[0]
    if entry.fetchable:
        from fusionrec.data.datasets.download import cached_path

        return cached_path(entry.name)
    return None


def list_datasets(data_dir: PathLike | None = None) -> list[DatasetInfo]:
    """Every dataset :func:`load_dataset` knows, with whether it is present in ``data_dir`` or the cache."""
    root = _data_dir(data_dir)
    out = [DatasetInfo("synthetic", SYNTHETIC_DESCRIPTION, "generated", "fusionrec.data.datasets.synthetic", True)]
    for e in ENTRIES.values():
        where = _locate(e, root)
        out.append(
            DatasetInfo(
                e.name, e.description, e.format, e.source, where is not None, str(where) if where else None, e.fetchable
            )
        )
    return out


def _not_found(entry: _Entry, data_dir: PathLike | None, root: Path | None) -> DatasetNotFoundError:
    from fusionrec.config import describe_missing_data_dir

    if root is None:
        where = (
            describe_missing_data_dir(data_dir)
            or "no data directory is set (pass data_dir= or --data-dir, or set FUSIONREC_DATA_DIR)"
        )
    else:
        where = f"{root} has no {' and '.join(repr(f) for f in entry.folders)} folder"
    hint = (
        f"; run `fusionrec datasets fetch {entry.name}` to download it into the cache"
        if entry.fetchable
        else f"; it cannot be downloaded automatically (source: {entry.source}) -- put it under the data directory"
    )
    return DatasetNotFoundError(f"dataset {entry.name!r} not found: {where}{hint}")


def load_dataset(name: PathLike, data_dir: PathLike | None = None, **kwargs: Any) -> Dataset:
    """Load a dataset by name, or your own files by path.

    Parameters
    ----------
    name
        A registry name: ``"ml-100k"``, ``"ml-latest-small"``, ``"ml-posters"``, ``"filmtrust"``, ``"ml-1m"``,
        ``"ml-20m"``, ``"ml-25m"``, ``"tiktok"`` or ``"synthetic"`` (see :func:`list_datasets`); or a path (absolute, relative
        to the working directory, or to ``data_dir``): a table file of interactions, or a folder holding
        ``interactions.*`` (or ``ratings.*``) and optional ``items.*``, ``users.*``, ``social.*`` (CSV, TSV,
        Parquet, JSON lines), read by :func:`fusionrec.data.from_files`.
    data_dir
        Folder holding the dataset folders (default ``$FUSIONREC_DATA_DIR``); the download cache is searched next.
    **kwargs
        Passed to the loader (e.g. ``duplicates="mean"`` for FilmTrust, ``posters_dir=`` for MovieLens,
        ``n_users=`` / ``seed=`` for synthetic, ``item_types=`` / ``user_col=`` ... for a path).

    Raises
    ------
    ConfigError
        Neither a known name nor an existing path; the message lists the names and the path option.
    DatasetNotFoundError
        The files are neither in the data directory nor in the cache; the message names the directory and the
        ``fusionrec datasets fetch`` command.  Also a path that looks like a file (``.csv``, ...) but is absent.
    """
    key = os.fspath(name)
    if key == "synthetic":
        return _synthetic(None, None, **kwargs)
    entry = ENTRIES.get(key)
    if entry is None:
        return _load_path(key, data_dir, **kwargs)
    root = _data_dir(data_dir)
    where = _locate(entry, root)
    if where is None:
        raise _not_found(entry, data_dir, root)
    return entry.loader(where, root, **kwargs)


def _load_path(name: str, data_dir: PathLike | None, **kwargs: Any) -> Dataset:
    """``load_dataset`` of a file or folder path (see there)."""
    from fusionrec.data.files import from_files
    from fusionrec.data.io import TABLE_SUFFIXES

    path = Path(name).expanduser()
    candidates = [path]
    root = _data_dir(data_dir)
    if not path.is_absolute() and root is not None:
        candidates.append(root / path)
    for p in candidates:
        if p.exists():
            return from_files(p, **kwargs)
    if any(path.name.lower().endswith((s, s + ".gz")) for s in TABLE_SUFFIXES):
        from fusionrec.config import describe_missing_data_dir

        missing = None if path.is_absolute() else describe_missing_data_dir(data_dir)
        raise DatasetNotFoundError(
            f"{path} does not exist{f' (nor in {root})' if root is not None and len(candidates) > 1 else ''}"
            f"{f'; {missing} either' if missing else ''}; check the path"
        )
    raise ConfigError(
        f"unknown dataset {name!r}: neither a known name ({['synthetic', *ENTRIES]}) nor an existing path; "
        "pass a name, or a path to an interactions file or to a folder holding interactions.csv (or ratings.*; "
        ".tsv, .parquet, .jsonl too) and optional items.*, users.*, social.* tables"
    )


def load_benchmark_split(name: str, data_dir: PathLike | None = None) -> Split:
    """A predefined benchmark split over the id maps of its dataset.

    ``<data_dir>/splits/<name>.csv`` (``x_label`` 0 train / 1 valid / 2 test) for ``ml-100k.random811``,
    ``ml-latest-small.random811``, ``ml-posters.random811`` and ``ml-posters.coldstart-items`` (``cold="items"``);
    the official ML-100K folds ``ml-100k.u1`` .. ``ml-100k.u5``, ``ml-100k.ua``, ``ml-100k.ub``; DiffMM's fixed
    TikTok split ``tiktok.diffmm`` (read from the ``tiktok`` folder itself).  The split's
    ``user_ids`` / ``item_ids`` equal those of ``load_dataset(<dataset>)``, so content modalities align with the
    split's indices.
    """
    from fusionrec.data.io import load_split_file

    dataset_name = BENCHMARK_SPLITS.get(name)
    if dataset_name is None:
        raise ConfigError(f"unknown benchmark split {name!r}; known: {sorted(BENCHMARK_SPLITS)}")
    entry = ENTRIES[dataset_name]
    root = _data_dir(data_dir)
    where = _locate(entry, root)
    if where is None:
        raise _not_found(entry, data_dir, root)
    fold = name.split(".", 1)[1]
    if dataset_name == "ml-100k" and fold in ("u1", "u2", "u3", "u4", "u5", "ua", "ub"):
        from fusionrec.data.datasets.movielens import load_ml100k_fold

        return load_ml100k_fold(where, fold)
    if name == "tiktok.diffmm":
        from fusionrec.data.datasets.tiktok import load_tiktok_split

        return load_tiktok_split(where)
    path = None if root is None else root / "splits" / f"{name}.csv"
    if path is None or not path.is_file():
        from fusionrec.config import describe_missing_data_dir

        missing = describe_missing_data_dir(data_dir)
        raise DatasetNotFoundError(
            f"split file {path if path is not None else f'splits/{name}.csv'} not found"
            + (f" ({missing})" if missing else "")
            + "; benchmark split files live in <data_dir>/splits/ (set FUSIONREC_DATA_DIR or pass data_dir=)"
        )
    inter = entry.loader(where, root).interactions
    split = load_split_file(path, user_ids=inter.user_ids, item_ids=inter.item_ids, name=name)
    if name.endswith("coldstart-items"):
        split = dataclasses.replace(split, cold="items")
    return split
