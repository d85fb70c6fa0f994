"""MovieLens loaders: 100K (``u.*`` files and the u1..u5 / ua, ub folds), latest-small / 20M / 25M (CSV),
1M / 10M (``::``-separated ``.dat``) and ML-1M posters joined to ml-latest-small ratings.

Every loader returns a :class:`~fusionrec.data.Dataset` whose interactions index raw MovieLens ids (int) in
sorted order and whose modalities are keyed by the same raw ids:

=====================  ===========  =====================================================================
modality               kind         content
=====================  ===========  =====================================================================
``title``              text         the movie title (with its year)
``genres``             categorical  list of genre names
``tags``               text         the user tags of a movie joined by ``" | "`` (CSV / 10M layouts;
                                    training tags only, see below)
``links``              tabular      ``imdbId``, ``tmdbId`` (CSV layout) or ``imdb_url`` (100K)
``release_date``       tabular      ``release_date`` (datetime) and ``release_year`` (100K)
``poster``             image        ``<posters_dir>/<movieId>.jpg`` for the files that exist
``profile`` (user)     tabular      age, gender, occupation, zip (100K and 1M)
=====================  ===========  =====================================================================

User tags are behaviour: a tag that user ``u`` put on movie ``m`` says that ``u`` watched ``m``, so a tag of a
held-out pair leaks the held-out interaction into the movie's content.  :func:`load_movielens` and
:func:`load_ml_posters` therefore build ``tags`` only from the tags whose (userId, movieId) pair is a training
interaction of ``train=`` (the training :class:`~fusionrec.data.Interactions` or a :class:`Split`); with no
``train`` the ``tags`` modality is left out (``meta["tags"]`` says so), and ``train="all"`` keeps every tag (for
a final model fitted on all the data, never for an evaluation).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from fusionrec.data.dataset import Dataset
from fusionrec.data.datasets._readers import (
    build_interactions,
    id_map_of,
    multi_labels,
    read_delimited,
    train_pairs,
)
from fusionrec.data.idmap import IdMap
from fusionrec.data.interactions import Duplicates, Interactions
from fusionrec.data.modalities import Modality
from fusionrec.data.split import Split
from fusionrec.errors import ConfigError, DatasetNotFoundError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ML100K_FOLDS",
    "load_ml100k",
    "load_ml100k_fold",
    "load_ml_posters",
    "load_movielens",
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


# ---------------------------------------------------------------------------------------------- CSV / .dat
def _read_auto_encoding(path: Path, **kwargs: Any) -> pd.DataFrame:
    """Read as UTF-8, falling back to latin-1 (ML-1M / ML-10M ``.dat`` files are latin-1)."""
    from fusionrec.errors import DataError

    try:
        return read_delimited(path, encoding="utf-8", **kwargs)
    except DataError as exc:
        if "not valid utf-8" not in str(exc):
            raise
        return read_delimited(path, encoding="latin-1", **kwargs)


def _layout(root: Path) -> str:
    if (root / "ratings.csv").is_file():
        return "csv"
    if (root / "ratings.dat").is_file():
        return "dat"
    raise DatasetNotFoundError(
        f"no ratings.csv (latest/20M/25M layout) or ratings.dat (1M/10M layout) in {root}; "
        "point at the unpacked MovieLens folder"
    )


def _read_ratings(root: Path, layout: str) -> pd.DataFrame:
    cols = ("userId", "movieId", "rating", "timestamp")
    if layout == "csv":
        return read_delimited(
            root / "ratings.csv", sep=",", header=True, required=cols, numeric=cols, what="MovieLens ratings"
        )
    return read_delimited(
        root / "ratings.dat", sep="::", names=cols, required=cols, numeric=cols, what="MovieLens ratings"
    )


def _read_movies(root: Path, layout: str) -> pd.DataFrame | None:
    if layout == "csv" and (root / "movies.csv").is_file():
        return read_delimited(
            root / "movies.csv",
            sep=",",
            header=True,
            quoting=True,
            required=("movieId", "title"),
            numeric=("movieId",),
            what="MovieLens movies",
            dtype={"title": str, "genres": str},
        )
    if (root / "movies.dat").is_file():
        return _read_auto_encoding(
            root / "movies.dat",
            sep="::",
            names=("movieId", "title", "genres"),
            required=("movieId", "title"),
            numeric=("movieId",),
            what="MovieLens movies",
            dtype={"title": str, "genres": str},
        )
    return None


def _read_tags(root: Path, layout: str) -> pd.DataFrame | None:
    cols = ("userId", "movieId", "tag", "timestamp")
    if layout == "csv" and (root / "tags.csv").is_file():
        return read_delimited(
            root / "tags.csv",
            sep=",",
            header=True,
            quoting=True,
            required=("movieId", "tag"),
            numeric=("movieId",),
            what="MovieLens tags",
            dtype={"tag": str},
        )
    if (root / "tags.dat").is_file():
        return _read_auto_encoding(
            root / "tags.dat",
            sep="::",
            names=cols,
            required=("movieId", "tag"),
            numeric=("movieId",),
            what="MovieLens tags",
            dtype={"tag": str},
        )
    return None


Train = Interactions | Split | Literal["all"] | None


def _training_tags(tags: pd.DataFrame | None, train: Train, meta: dict[str, Any]) -> pd.DataFrame | None:
    """The tags of training (userId, movieId) pairs (module notes); ``None`` (noted in ``meta``) without ``train``."""
    if tags is None:
        return None
    if "userId" not in tags.columns and not (isinstance(train, str) and train == "all"):
        meta["tags"] = "left out: the tag file has no userId, so held-out pairs cannot be told apart"
        return None
    users = tags["userId"].to_numpy() if "userId" in tags.columns else np.zeros(len(tags), dtype=np.int64)
    keep = train_pairs(users, tags["movieId"].to_numpy(), train, "tags")
    if keep is None:
        meta["tags"] = "left out: pass train= (the training interactions) to build them without leakage"
        return None
    meta["tags"] = f"{int(keep.sum())} of {len(keep)} tags" + (
        " (every tag: train='all')" if isinstance(train, str) else " (training pairs only)"
    )
    return tags[keep]


def _movie_modalities(movies: pd.DataFrame | None, tags: pd.DataFrame | None) -> dict[str, Modality]:
    out: dict[str, Modality] = {}
    if movies is not None:
        movies = movies.drop_duplicates("movieId", keep="first")
        ids = IdMap(movies["movieId"].to_numpy())
        out["title"] = Modality("text", ids, movies["title"].fillna("").astype(str).tolist())
        if "genres" in movies.columns:
            out["genres"] = Modality(
                "categorical", ids, multi_labels(movies["genres"].to_numpy(), "|", drop=("(no genres listed)",))
            )
    if tags is not None:
        tag_text = tags["tag"].fillna("").astype(str).str.strip()
        grouped = tag_text[tag_text != ""].groupby(tags["movieId"][tag_text != ""], sort=True).agg(" | ".join)
        out["tags"] = Modality("text", IdMap(grouped.index.to_numpy()), grouped.tolist())
    return out


def _links_modality(root: Path) -> Modality | None:
    import pandas as pd

    path = root / "links.csv"
    if not path.is_file():
        return None
    frame = read_delimited(
        path,
        sep=",",
        header=True,
        required=("movieId",),
        numeric=("movieId",),
        what="MovieLens links",
        dtype={"imdbId": str},
    )
    table = pd.DataFrame(
        {
            "imdbId": frame["imdbId"].fillna("").astype(str).to_numpy() if "imdbId" in frame else "",
            "tmdbId": pd.to_numeric(frame["tmdbId"], errors="coerce").to_numpy(dtype=np.float64)
            if "tmdbId" in frame
            else np.nan,
        }
    )
    return Modality("tabular", IdMap(frame["movieId"].to_numpy()), table)


def _ml1m_users(path: Path) -> Modality:
    import pandas as pd

    frame = _read_auto_encoding(
        path,
        sep="::",
        names=("userId", "gender", "age", "occupation", "zip"),
        required=("userId", "gender", "age", "occupation"),
        numeric=("userId", "age", "occupation"),
        what="MovieLens users",
        dtype={"gender": str, "zip": str},
    )
    occ = frame["occupation"].to_numpy(dtype=np.int64)
    names = np.array(ML1M_OCCUPATIONS, dtype=object)
    occ_names = np.where((occ >= 0) & (occ < len(names)), names[np.clip(occ, 0, len(names) - 1)], "other")
    table = pd.DataFrame(
        {
            "age": frame["age"].to_numpy(dtype=np.float64),
            "gender": pd.Categorical(frame["gender"].astype(str).to_numpy()),
            "occupation": pd.Categorical(occ_names.astype(str)),
            "zip": frame["zip"].fillna("").astype(str).to_numpy(),
        }
    )
    return Modality("tabular", IdMap(frame["userId"].to_numpy()), table, target="user")


def load_movielens(
    path: PathLike,
    *,
    posters_dir: PathLike | None = None,
    name: str | None = None,
    duplicates: Duplicates = "raise",
    train: Train = None,
) -> Dataset:
    """Load a MovieLens release in the CSV layout (latest-small, latest, 20M, 25M) or the ``::`` layout (1M, 10M).

    Parameters
    ----------
    path
        The unpacked folder.  CSV layout: ``ratings.csv`` (userId,movieId,rating,timestamp) and optional
        ``movies.csv``, ``tags.csv``, ``links.csv``.  ``.dat`` layout: ``ratings.dat``
        (UserID::MovieID::Rating::Timestamp) and optional ``movies.dat``, ``users.dat`` (1M), ``tags.dat`` (10M).
    posters_dir
        Optional folder of ``<movieId>.jpg`` posters: adds an ``image`` item modality ``poster`` for the movies
        whose file exists.
    name
        Dataset name (default: the folder name).
    duplicates
        Passed to :meth:`Interactions.from_arrays` (official releases have none).
    train
        Where the ``tags`` may come from (module notes): the training interactions (or a ``Split``), ``"all"``,
        or ``None`` (default: ``tags`` left out).

    Returns
    -------
    Dataset
        Explicit ratings with timestamps; item modalities ``title`` (text), ``genres`` (categorical,
        ``"(no genres listed)"`` dropped), ``tags`` (text: a movie's training tags joined by ``" | "``), ``links``
        (tabular: imdbId as text, tmdbId), ``poster`` (image); user modality ``profile`` from ``users.dat``
        (tabular: age bucket, gender, occupation name, zip).  Modalities cover every movie of the movie
        file, rated or not.
    """
    root = _dir(path, "MovieLens")
    layout = _layout(root)
    ratings = _read_ratings(root, layout)
    ratings_file = root / f"ratings.{layout}"
    inter = build_interactions(
        ratings_file,
        ratings["userId"].to_numpy(),
        ratings["movieId"].to_numpy(),
        ratings["rating"].to_numpy(),
        ratings["timestamp"].to_numpy(),
        duplicates=duplicates,
    )
    meta: dict[str, Any] = {"path": str(root), "format": f"movielens-{layout}"}
    items = _movie_modalities(_read_movies(root, layout), _training_tags(_read_tags(root, layout), train, meta))
    links = _links_modality(root)
    if links is not None:
        items["links"] = links
    if posters_dir is not None:
        ids = items["title"].ids.ids if "title" in items else inter.item_ids.ids
        items["poster"] = poster_modality(posters_dir, ids)
    users: dict[str, Modality] = {}
    if (root / "users.dat").is_file():
        users["profile"] = _ml1m_users(root / "users.dat")
    return Dataset(
        name=name or root.name,
        interactions=inter,
        item_modalities=items,
        user_modalities=users,
        meta=meta,
    )


def load_ml_posters(
    data_dir: PathLike,
    *,
    ratings_dir: PathLike | None = None,
    posters_dir: PathLike | None = None,
    train: Train = None,
) -> Dataset:
    """ml-latest-small ratings restricted to the movies that have an ML-1M poster, with the poster modality.

    ML-1M MovieIDs coincide with ml-latest-small movieIds, so the posters of ``ml-posters/MovieImages``
    (3872 files) attach to 2943 rated movies, covering 58498 ratings of all 610 users.

    Parameters
    ----------
    data_dir
        The data root holding ``ml-latest-small/`` and ``ml-posters/MovieImages/``.
    ratings_dir, posters_dir
        Override those two locations.
    train
        Where the ``tags`` may come from (module notes): e.g. ``load_benchmark_split(...).train``; ``None``
        (default) leaves them out, ``"all"`` keeps every tag.

    Returns
    -------
    Dataset
        Named ``"ml-posters"``: interactions over the poster movies only (sorted raw ids, the same rows and
        maps as ``splits/ml-posters.*.csv``), item modalities ``title``, ``genres``, ``tags`` (with ``train``),
        ``links``
        (from ml-latest-small) and ``poster`` (image paths).
    """
    root = Path(data_dir)
    rdir = _dir(ratings_dir if ratings_dir is not None else root / "ml-latest-small", "ml-latest-small")
    pdir = _dir(posters_dir if posters_dir is not None else root / "ml-posters" / "MovieImages", "posters")
    ratings = _read_ratings(rdir, "csv")
    movie_ids = np.unique(ratings["movieId"].to_numpy())
    poster = poster_modality(pdir, movie_ids)
    keep = np.isin(ratings["movieId"].to_numpy(), poster.ids.ids)
    sub = ratings[keep]
    inter = build_interactions(
        rdir / "ratings.csv",
        sub["userId"].to_numpy(),
        sub["movieId"].to_numpy(),
        sub["rating"].to_numpy(),
        sub["timestamp"].to_numpy(),
    )
    meta: dict[str, Any] = {
        "path": str(root),
        "format": "movielens-csv+posters",
        "posters_dir": str(pdir),
        "rated_movies": len(movie_ids),
        "rated_movies_with_poster": len(poster),
    }
    items = _movie_modalities(_read_movies(rdir, "csv"), _training_tags(_read_tags(rdir, "csv"), train, meta))
    links = _links_modality(rdir)
    if links is not None:
        items["links"] = links
    items["poster"] = poster
    return Dataset(name="ml-posters", interactions=inter, item_modalities=items, meta=meta)
