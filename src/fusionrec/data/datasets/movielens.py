"""MovieLens loaders: 100K (``u.*`` files and the u1..u5 / ua, ub folds), latest-small / 20M / 25M (CSV),
1M / 10M (``::``-separated ``.dat``) and ML-1M posters joined to ml-latest-small ratings.

Every loader returns a :class:`~fusionrec.data.Dataset` whose interactions index raw MovieLens ids (int) in
sorted order and whose modalities are keyed by the same raw ids:

=====================  ===========  =====================================================================
modality               kind         content
=====================  ===========  =====================================================================
``title``              text         the movie title (with its year)
``genres``             categorical  list of genre names
``tags``               text         the user tags of a movie joined by ``" | "`` (CSV / 10M layouts)
``links``              tabular      ``imdbId``, ``tmdbId`` (CSV layout) or ``imdb_url`` (100K)
``release_date``       tabular      ``release_date`` (datetime) and ``release_year`` (100K)
``poster``             image        ``<posters_dir>/<movieId>.jpg`` for the files that exist
``profile`` (user)     tabular      age, gender, occupation, zip (100K and 1M)
=====================  ===========  =====================================================================
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fusionrec.data.dataset import Dataset
from fusionrec.data.datasets._readers import (
    build_interactions,
    id_map_of,
    read_delimited,
)
from fusionrec.data.idmap import IdMap
from fusionrec.data.interactions import Duplicates
from fusionrec.data.modalities import Modality
from fusionrec.data.split import Split
from fusionrec.errors import ConfigError, DatasetNotFoundError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ML100K_FOLDS",
    "load_ml100k",
    "load_ml100k_fold",
    "poster_modality",
]

PathLike = str | os.PathLike[str]

ML100K_FOLDS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
RATING_COLUMNS = ("user", "item", "rating", "timestamp")
# ML-1M users.dat codes (README): age bucket lower bounds and occupation names
ML1M_OCCUPATIONS = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student", "customer service",
    "doctor/health care", "executive/managerial", "farmer", "homemaker", "K-12 student", "lawyer", "programmer",
    "retired", "sales/marketing", "scientist", "self-employed", "technician/engineer", "tradesman/craftsman",
    "unemployed", "writer",
)  # fmt: skip


def _dir(path: PathLike, what: str) -> Path:
    p = Path(path)
    if not p.is_dir():
        raise DatasetNotFoundError(
            f"{what} directory {p} does not exist; point at the unpacked dataset folder "
            "(or download it with `fusionrec datasets fetch <name>`)"
        )
    return p


# ---------------------------------------------------------------------------------------------- 100K
def _read_ml100k_ratings(path: Path, what: str) -> pd.DataFrame:
    return read_delimited(
        path, sep="\t", names=RATING_COLUMNS, required=RATING_COLUMNS, numeric=RATING_COLUMNS, what=what
    )


def _ml100k_id_maps(root: Path) -> tuple[IdMap, IdMap, pd.DataFrame]:
    frame = _read_ml100k_ratings(root / "u.data", "ML-100K ratings")
    return id_map_of(frame["user"].to_numpy()), id_map_of(frame["item"].to_numpy()), frame


def _ml100k_genre_names(root: Path) -> list[str]:
    path = root / "u.genre"
    if not path.is_file():
        return list(ML100K_GENRES)
    frame = read_delimited(path, sep="|", names=("name", "index"), numeric=("index",), what="ML-100K genre list")
    return frame.sort_values("index")["name"].astype(str).tolist()


def _ml100k_items(root: Path) -> dict[str, Modality]:
    import pandas as pd

    genres = _ml100k_genre_names(root)
    names = ["item", "title", "release_date", "video_release_date", "imdb_url", *genres]
    frame = read_delimited(
        root / "u.item",
        sep="|",
        names=names,
        required=("item",),
        numeric=("item", *genres),
        encoding="latin-1",
        what="ML-100K item file",
        dtype={"title": str, "release_date": str, "imdb_url": str, "video_release_date": str},
    )
    ids = IdMap(frame["item"].to_numpy())
    flags = frame[genres].to_numpy(dtype=np.int64) > 0
    names_arr = np.array(genres, dtype=object)
    genre_lists = [names_arr[row].tolist() for row in flags]  # one list per item, not per interaction
    release = pd.to_datetime(frame["release_date"], format="%d-%b-%Y", errors="coerce")
    table = pd.DataFrame(
        {
            "release_date": release.to_numpy(),
            "release_year": release.dt.year.astype("float64").to_numpy(),
        }
    )
    links = pd.DataFrame({"imdb_url": frame["imdb_url"].fillna("").astype(str).to_numpy()})
    return {
        "title": Modality("text", ids, frame["title"].fillna("").astype(str).tolist()),
        "genres": Modality("categorical", ids, genre_lists),
        "release_date": Modality("tabular", ids, table),
        "links": Modality("tabular", ids, links),
    }


def _ml100k_users(root: Path) -> dict[str, Modality]:
    import pandas as pd

    frame = read_delimited(
        root / "u.user",
        sep="|",
        names=("user", "age", "gender", "occupation", "zip"),
        required=("user", "age", "gender", "occupation"),
        numeric=("user", "age"),
        what="ML-100K user file",
        dtype={"gender": str, "occupation": str, "zip": str},
    )
    table = pd.DataFrame(
        {
            "age": frame["age"].to_numpy(dtype=np.float64),
            "gender": pd.Categorical(frame["gender"].astype(str).to_numpy()),
            "occupation": pd.Categorical(frame["occupation"].astype(str).to_numpy()),
            "zip": frame["zip"].fillna("").astype(str).to_numpy(),
        }
    )
    return {"profile": Modality("tabular", IdMap(frame["user"].to_numpy()), table, target="user")}


def load_ml100k(path: PathLike, *, duplicates: Duplicates = "raise") -> Dataset:
    """Load MovieLens 100K from its unpacked folder (``u.data``, ``u.item``, ``u.user``, ``u.genre``).

    Parameters
    ----------
    path
        The ``ml-100k`` folder.
    duplicates
        Passed to :meth:`Interactions.from_arrays` (the official file has none).

    Returns
    -------
    Dataset
        ``interactions``: 100000 explicit ratings 1..5 of 943 users on 1682 items, with timestamps.
        Item modalities ``title`` (text), ``genres`` (categorical, names from ``u.genre``),
        ``release_date`` (tabular: ``release_date``, ``release_year``), ``links`` (tabular: ``imdb_url``);
        user modality ``profile`` (tabular: age, gender, occupation, zip).  ``u.item`` / ``u.user`` are
        optional: without them the dataset simply has fewer modalities.
    """
    root = _dir(path, "ML-100K")
    frame = _read_ml100k_ratings(root / "u.data", "ML-100K ratings")
    inter = build_interactions(
        root / "u.data",
        frame["user"].to_numpy(),
        frame["item"].to_numpy(),
        frame["rating"].to_numpy(),
        frame["timestamp"].to_numpy(),
        duplicates=duplicates,
    )
    items = _ml100k_items(root) if (root / "u.item").is_file() else {}
    users = _ml100k_users(root) if (root / "u.user").is_file() else {}
    return Dataset(
        name="ml-100k",
        interactions=inter,
        item_modalities=items,
        user_modalities=users,
        meta={"path": str(root), "format": "movielens-100k"},
    )


def _fold_name(fold: int | str) -> str:
    name = str(fold).strip().lower()
    if not name.startswith("u"):
        name = "u" + name
    if name not in ML100K_FOLDS:
        raise ConfigError(f"unknown ML-100K fold {fold!r}; use 1..5 (u1..u5) or 'a' / 'b' (ua, ub)")
    return name


def load_ml100k_fold(path: PathLike, fold: int | str) -> Split:
    """One of the official ML-100K folds as a :class:`Split`: train = ``uN.base``, test = ``uN.test``.

    Both parts index the id maps of the full ``u.data`` (943 users, 1682 items, sorted raw ids), i.e. the
    maps of :func:`load_ml100k`, so item content aligns.  ``fold`` is ``1``..``5`` / ``"u1"``..``"u5"``
    (5-fold cross-validation, 80000 / 20000 ratings) or ``"a"`` / ``"b"`` (``ua`` / ``ub``: exactly 10
    test ratings per user, 90570 / 9430).
    """
    root = _dir(path, "ML-100K")
    name = _fold_name(fold)
    users, items, _ = _ml100k_id_maps(root)
    parts = []
    for suffix in ("base", "test"):
        file = root / f"{name}.{suffix}"
        frame = _read_ml100k_ratings(file, "ML-100K fold file")
        parts.append(
            build_interactions(
                file,
                frame["user"].to_numpy(),
                frame["item"].to_numpy(),
                frame["rating"].to_numpy(),
                frame["timestamp"].to_numpy(),
                user_ids=users,
                item_ids=items,
            )
        )
    return Split(train=parts[0], test=parts[1], name=f"ml-100k.{name}", meta={"path": str(root)})


# ---------------------------------------------------------------------------------------------- posters
def poster_modality(posters_dir: PathLike, ids: Any, suffix: str = ".jpg") -> Modality:
    """An ``image`` modality of ``<posters_dir>/<id><suffix>`` for the ids whose file exists.

    One directory listing (no per-id ``stat``); ids without a poster are simply absent, which
    :meth:`Modality.align` reports as missing.
    """
    root = _dir(posters_dir, "posters")
    present = {e.name for e in os.scandir(root) if e.is_file()}
    ids_arr = np.asarray(ids)
    names = np.array([f"{x}{suffix}" for x in ids_arr.tolist()], dtype=object)
    has = np.fromiter((n in present for n in names.tolist()), dtype=bool, count=len(names))
    paths = [str(root / n) for n in names[has].tolist()]
    return Modality("image", IdMap(ids_arr[has]), paths)
