"""MovieLens loaders on tiny files written here, and on the real data (realdata)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fusionrec.data import Split
from fusionrec.data.datasets import load_ml100k, load_ml100k_fold, load_ml_posters, load_movielens
from fusionrec.errors import (
    ConfigError,
    DataError,
    DatasetNotFoundError,
    DuplicateInteractionError,
    EmptyDataError,
    InvalidValueError,
    MissingColumnError,
)

GENRES = "unknown|0\nAction|1\nComedy|2\n\n"


def write_ml100k(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rows = [(1, 10, 5, 100), (1, 20, 3, 101), (2, 10, 4, 102), (2, 30, 1, 103), (3, 20, 2, 104), (3, 30, 4, 105)]
    (root / "u.data").write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in rows))
    (root / "u.genre").write_text(GENRES)
    (root / "u.item").write_bytes(
        "10|Toy Story (1995)|01-Jan-1995||http://x/1|0|1|1\n"
        '20|Café "Noir" (1996)|15-Mar-1996||http://x/2|0|0|1\n'
        "30|Unknown (?)|||http://x/3|1|0|0\n".encode("latin-1")
    )
    (root / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|94043\n3|23|M|writer|T8H1N\n")
    (root / "u1.base").write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in rows[::2]))
    (root / "u1.test").write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in rows[1::2]))
    return root


def test_ml100k_tiny(tmp_path: Path) -> None:
    ds = load_ml100k(write_ml100k(tmp_path / "ml-100k"))
    x = ds.interactions
    assert x.shape == (3, 3) and x.nnz == 6 and x.explicit and x.timestamps is not None
    assert x.item_ids.ids.tolist() == [10, 20, 30]
    genres, present = ds.item_modalities["genres"].align(x.item_ids)
    assert present.all() and genres == [["Action", "Comedy"], ["Comedy"], ["unknown"]]
    titles, _ = ds.item_modalities["title"].align(x.item_ids)
    assert titles[1] == 'Café "Noir" (1996)'  # latin-1, quotes kept verbatim
    table = ds.item_modalities["release_date"].data
    assert table["release_year"].tolist()[:2] == [1995.0, 1996.0] and np.isnan(table["release_year"].iloc[2])
    prof = ds.user_modalities["profile"]
    assert prof.kind == "tabular" and prof.target == "user"
    assert list(prof.data.columns) == ["age", "gender", "occupation", "zip"]
    assert prof.data["zip"].tolist()[2] == "T8H1N"


def test_ml100k_fold_tiny(tmp_path: Path) -> None:
    root = write_ml100k(tmp_path / "ml-100k")
    split = load_ml100k_fold(root, 1)
    assert isinstance(split, Split) and split.summary() == {"train": 3, "test": 3}
    ds = load_ml100k(root)
    assert split.train.user_ids == ds.user_ids and split.test.item_ids == ds.item_ids
    assert load_ml100k_fold(root, "u1").summary() == split.summary()
    with pytest.raises(ConfigError, match="fold"):
        load_ml100k_fold(root, 7)
    with pytest.raises(DatasetNotFoundError, match=r"u2\.base"):
        load_ml100k_fold(root, 2)


def test_ml100k_bad_input(tmp_path: Path) -> None:
    root = write_ml100k(tmp_path / "a")
    (root / "u.data").write_text("1\t10\t5\t100\n1\t20\tfive\t101\n")
    with pytest.raises(InvalidValueError, match=r"u.data, line 2: 'rating'.*'five'"):
        load_ml100k(root)
    (root / "u.data").write_text("1\t10\t5\t100\n1\t20\n")
    with pytest.raises(DataError, match=r"line 2: the .rating. field is missing"):
        load_ml100k(root)
    (root / "u.data").write_text("1\t10\t5\t100\n1\t20\t3\t4\t99\n")
    with pytest.raises(DataError, match="malformed line"):
        load_ml100k(root)
    (root / "u.data").write_text("1\t10\tnan\t100\n")
    with pytest.raises(DataError, match=r"line 1: the 'rating' field is missing or NaN"):
        load_ml100k(root)
    (root / "u.data").write_text("1\t10\tinf\t100\n")
    with pytest.raises(InvalidValueError, match="finite number"):
        load_ml100k(root)
    (root / "u.data").write_text("")
    with pytest.raises(EmptyDataError, match="empty"):
        load_ml100k(root)
    (root / "u.data").write_text("\n\n")
    with pytest.raises(EmptyDataError, match="no data rows"):
        load_ml100k(root)
    (root / "u.data").write_text("1\t10\t5\t100\n1\t10\t4\t101\n")
    with pytest.raises(DuplicateInteractionError, match=r"u\.data"):
        load_ml100k(root)
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        load_ml100k(tmp_path / "nowhere")


def write_csv_layout(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,2,3.5,964981247\n2,1,5.0,964982224\n2,3,0.5,964983815\n"
    )
    (root / "movies.csv").write_text(
        'movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n2,"American President, The (1995)",'
        "Comedy|Drama|Romance\n3,Nothing (2000),(no genres listed)\n4,Unrated (2001),Drama\n"
    )
    (root / "tags.csv").write_text(
        'userId,movieId,tag,timestamp\n2,1,pixar,1445714994\n1,1,"fun, warm",1445714996\n2,3,weird,1445715000\n'
    )
    (root / "links.csv").write_text("movieId,imdbId,tmdbId\n1,0114709,862\n2,0112346,9087\n3,0000001,\n4,0000002,5\n")
    return root


def test_movielens_csv_layout(tmp_path: Path) -> None:
    root = write_csv_layout(tmp_path / "ml-latest-small")
    posters = tmp_path / "posters"
    posters.mkdir()
    (posters / "1.jpg").write_bytes(b"\xff\xd8")
    (posters / "4.jpg").write_bytes(b"\xff\xd8")
    ds = load_movielens(root, posters_dir=posters, train="all")
    assert ds.name == "ml-latest-small"
    x = ds.interactions
    assert x.shape == (2, 3) and x.matrix.data.tolist() == [4.0, 3.5, 5.0, 0.5]
    mods = ds.item_modalities
    assert len(mods["title"]) == 4  # every movie, rated or not
    titles, _ = mods["title"].align(x.item_ids)
    assert titles[1] == "American President, The (1995)"
    genres, _ = mods["genres"].align(x.item_ids)
    assert genres == [["Adventure", "Animation"], ["Comedy", "Drama", "Romance"], []]
    tags, has_tags = mods["tags"].align(x.item_ids)
    assert has_tags.tolist() == [True, False, True] and tags[0] == "pixar | fun, warm"
    links = mods["links"].data
    assert links["imdbId"].tolist()[0] == "0114709" and np.isnan(links["tmdbId"].iloc[2])
    poster = mods["poster"]
    assert poster.kind == "image" and poster.ids.ids.tolist() == [1, 4]
    assert all(Path(p).is_file() for p in poster.data)


def test_movielens_dat_layout(tmp_path: Path) -> None:
    root = tmp_path / "ml-1m"
    root.mkdir()
    (root / "ratings.dat").write_text("1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n")
    (root / "movies.dat").write_bytes(
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n661::James and the Giant Peach (1996)::"
        "Animation|Children's|Musical\n3::Bizet's Carmen: the opera (1984)::Musical\n".encode("latin-1")
        + "4::Nausicaä (1984)::Animation\n".encode("latin-1")
    )
    (root / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n")
    (root / "tags.dat").write_text("1::661::giant peach::1\n")
    ds = load_movielens(root, train="all")
    assert ds.interactions.shape == (2, 2) and ds.interactions.item_ids.ids.tolist() == [661, 1193]
    assert ds.item_modalities["title"].data[3] == "Nausicaä (1984)"  # latin-1 fallback
    assert ds.item_modalities["title"].data[2] == "Bizet's Carmen: the opera (1984)"
    prof = ds.user_modalities["profile"].data
    assert prof["occupation"].tolist() == ["K-12 student", "self-employed"] and prof["age"].tolist() == [1.0, 56.0]
    assert ds.item_modalities["tags"].data == ["giant peach"]


def test_tags_from_training_pairs_only(tmp_path: Path) -> None:
    """User 1's tag on movie 1 must not reach movie 1's text when (1, 1) is held out; no split, no tags."""
    import pandas as pd

    from fusionrec.data.splits import predefined_split

    root = write_csv_layout(tmp_path / "ml")
    plain = load_movielens(root)
    assert "tags" not in plain.item_modalities and "train=" in plain.meta["tags"]
    frame = pd.read_csv(root / "ratings.csv")
    frame["x_label"] = [2, 0, 0, 1]  # (1, 1) test, (2, 3) valid
    split = predefined_split(frame, user="userId", item="movieId")
    ds = load_movielens(root, train=split)
    tags, has = ds.item_modalities["tags"].align(ds.interactions.item_ids)
    assert tags[0] == "pixar" and "fun" not in " ".join(t or "" for t in tags)
    assert has.tolist() == [True, False, False]  # (2, 3) is a valid pair: its tag is left out too
    assert ds.meta["tags"].startswith("1 of 3 tags")


def test_movielens_bad_input(tmp_path: Path) -> None:
    root = write_csv_layout(tmp_path / "m")
    (root / "ratings.csv").write_text("userId,movieId,stars\n1,1,4\n")
    with pytest.raises(MissingColumnError, match=r"ratings.csv lacks column\(s\) \['rating', 'timestamp'\]"):
        load_movielens(root)
    (root / "ratings.csv").write_text("userId,movieId,rating,timestamp\n")
    with pytest.raises(EmptyDataError, match="no data rows"):
        load_movielens(root)
    (root / "ratings.csv").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"ratings.csv .* or ratings.dat"):
        load_movielens(root)


# ----------------------------------------------------------------------------------------------- real data
@pytest.mark.slow
@pytest.mark.realdata
def test_ml100k_real(data_dir: Path) -> None:
    ds = load_ml100k(data_dir / "ml-100k")
    assert (ds.interactions.nnz, ds.interactions.n_users, ds.interactions.n_items) == (100000, 943, 1682)
    _, present = ds.item_modalities["genres"].align(ds.item_ids)
    assert present.all()
    assert len(ds.user_modalities["profile"]) == 943
    full = ds.interactions.to_frame()
    full_keys = set(zip(full["user"].tolist(), full["item"].tolist()))
    for fold in (1, 2, 3, 4, 5):
        split = load_ml100k_fold(data_dir / "ml-100k", fold)
        assert split.summary() == {"train": 80000, "test": 20000}
        assert split.train.user_ids == ds.user_ids and split.train.item_ids == ds.item_ids
        both = np.concatenate(
            [split.train.to_frame(raw_ids=False).to_numpy(), split.test.to_frame(raw_ids=False).to_numpy()]
        )
        assert len(both) == 100000
        keys = set(
            zip(ds.user_ids.to_id(both[:, 0].astype(int)).tolist(), ds.item_ids.to_id(both[:, 1].astype(int)).tolist())
        )
        assert keys == full_keys
    assert load_ml100k_fold(data_dir / "ml-100k", "a").summary() == {"train": 90570, "test": 9430}


@pytest.mark.slow
@pytest.mark.realdata
def test_ml_latest_small_real(data_dir: Path) -> None:
    ds = load_movielens(data_dir / "ml-latest-small", posters_dir=data_dir / "ml-posters" / "MovieImages")
    x = ds.interactions
    assert (x.nnz, x.n_users, x.n_items) == (100836, 610, 9724)
    assert len(ds.item_modalities["title"]) == 9742
    _, has_poster = ds.item_modalities["poster"].align(x.item_ids)
    assert int(has_poster.sum()) == 2943


@pytest.mark.slow
@pytest.mark.realdata
def test_ml_posters_real(data_dir: Path) -> None:
    ds = load_ml_posters(data_dir)
    x = ds.interactions
    assert (x.nnz, x.n_users, x.n_items) == (58498, 610, 2943)
    poster = ds.item_modalities["poster"]
    assert poster.kind == "image"
    paths, present = poster.align(x.item_ids)
    assert present.all() and all(p.endswith(".jpg") for p in paths)
    assert len(list((data_dir / "ml-posters" / "MovieImages").glob("*.jpg"))) == 3872
    import pandas as pd

    rows = pd.read_csv(data_dir / "splits" / "ml-posters.random811.csv")
    mine = ds.interactions.to_frame()
    assert len(rows) == len(mine)
    a = rows.sort_values(["userId", "movieId"])[["userId", "movieId", "rating", "timestamp"]].to_numpy(float)
    b = mine.sort_values(["user", "item"])[["user", "item", "rating", "timestamp"]].to_numpy(float)
    assert np.array_equal(a, b)
