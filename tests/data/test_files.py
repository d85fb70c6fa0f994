"""A user's own files in, as a Dataset: formats, column roles, modality detection, cold ids, social, errors."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fusionrec.data import Dataset, DataWarning, from_files, from_frames, read_interactions
from fusionrec.errors import (
    ConfigError,
    DataError,
    DatasetNotFoundError,
    EmptyDataError,
    InvalidValueError,
    MissingColumnError,
)

LOG = pd.DataFrame(
    {
        "userId": [1, 1, 2, 2, 3, 3],
        "movieId": [10, 11, 10, 12, 11, 13],
        "rating": [4.0, 3.0, 5.0, 2.0, 4.0, 1.0],
        "timestamp": ["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-04", "2020-01-05", "2020-01-06"],
    }
)
TEXTS = [
    "A toy cowboy and a space ranger become friends",
    "A boy and his dog travel across the ocean",
    "Robots fall in love on an abandoned planet",
    "A chef rat cooks in a famous Paris restaurant",
    "An old man ties balloons to his house and flies away",
]


def _png(path: Path, colour: tuple[int, int, int]) -> None:
    from PIL import Image

    Image.new("RGB", (8, 8), colour).save(path)


def _items(tmp_path: Path) -> pd.DataFrame:
    (tmp_path / "img").mkdir(exist_ok=True)
    _png(tmp_path / "img" / "10.png", (255, 0, 0))
    _png(tmp_path / "img" / "11.png", (0, 255, 0))
    return pd.DataFrame(
        {
            "movieId": [10, 11, 12, 13, 14],  # 14: only here -> a cold item
            "overview": TEXTS,
            "genres": ["Comedy|Animation", "Drama", "Sci-Fi|Romance", "Comedy", "Drama|Comedy"],
            "kind": ["film", "film", "series", "film", "series"],
            "poster": ["img/10.png", "img/11.png", None, None, None],
            "year": [1995, 2001, 2008, 2007, 2009],
            "price": [1.5, np.nan, 3.0, 2.5, 4.0],
            "constant": ["x"] * 5,
            "empty": [np.nan] * 5,
            "imdbId": [114709, 113497, 910970, 382932, 1049413],
        }
    )


def _write(tmp_path: Path) -> dict[str, Path]:
    paths = {
        "interactions": tmp_path / "ratings.csv",
        "items": tmp_path / "items.csv",
        "users": tmp_path / "users.csv",
        "social": tmp_path / "trust.csv",
    }
    LOG.to_csv(paths["interactions"], index=False)
    _items(tmp_path).to_csv(paths["items"], index=False)
    pd.DataFrame({"userId": [1, 2, 3, 4], "age": [20, 35, 41, 29], "city": ["Oslo", "Rome", "Oslo", "Rome"]}).to_csv(
        paths["users"], index=False
    )
    # 3 -> 3 is a self-link, 1 -> 2 repeated, 5 is a user only known from the social file
    pd.DataFrame({"truster": [1, 1, 2, 3, 5], "trustee": [2, 2, 3, 3, 1]}).to_csv(paths["social"], index=False)
    return paths


def _load(paths: dict[str, Path], **kw: object) -> Dataset:
    with pytest.warns(DataWarning) as rec:
        ds = from_files(paths["interactions"], paths["items"], paths["users"], paths["social"], **kw)  # type: ignore[arg-type]
    assert len([w for w in rec if issubclass(w.category, DataWarning)]) == 1
    return ds


def test_roles_kinds_cold_items_and_report(tmp_path: Path) -> None:
    ds = _load(_write(tmp_path))
    x = ds.interactions
    assert x.explicit and x.nnz == 6 and x.timestamps is not None
    assert int(x.timestamps.min()) == 1577836800  # 2020-01-01 as unix seconds
    # item 14 (items file only) is a cold item; users 4 (users file) and 5 (social file) are cold users
    assert ds.item_ids.ids.tolist() == [10, 11, 12, 13, 14]
    assert x.item_counts()[ds.item_ids.to_index(14)] == 0
    assert ds.user_ids.ids.tolist() == [1, 2, 3, 4, 5]
    kinds = {k: m.kind for k, m in ds.item_modalities.items()}
    assert kinds == {
        "overview": "text",
        "genres": "categorical",
        "kind": "categorical",
        "poster": "image",
        "numeric": "tabular",
    }
    assert ds.item_modalities["genres"].data[0] == ["Comedy", "Animation"]
    assert ds.item_modalities["kind"].data[0] == ["film"]
    assert len(ds.item_modalities["poster"]) == 2 and Path(ds.item_modalities["poster"].data[0]).is_file()
    assert list(ds.item_modalities["numeric"].data.columns) == ["year", "price"]
    assert {k: m.kind for k, m in ds.user_modalities.items()} == {"city": "categorical", "numeric": "tabular"}
    report = ds.meta["ingest"]
    cols = report["items"]["columns"]
    assert cols["constant"]["kind"] == "ignored" and "constant" in cols["constant"]["reason"]
    assert cols["empty"]["kind"] == "ignored" and "missing" in cols["empty"]["reason"]
    assert cols["imdbId"]["kind"] == "ignored" and "id-like" in cols["imdbId"]["reason"]
    assert cols["year"] == {"kind": "numeric", "modality": "numeric"}
    assert report["items"]["only_in_file"] == 1 and report["items"]["without_row"] == 0
    assert report["users"]["only_in_file"] == 1 and report["users"]["without_row"] == 1  # user 5
    assert report["interactions"]["columns"]["timestamp"] == {"kind": "timestamp"}
    assert sorted(report["ignored_columns"])[0].startswith("items.constant")
    # social: aligned with the user ids, self-link and repeat dropped and reported
    s = report["social"]
    assert (s["links"], s["self_links_dropped"], s["duplicates_dropped"], s["users_added"]) == (3, 1, 1, 1)
    assert ds.social is not None and ds.social.shape == (5, 5)
    u = ds.user_ids.to_index
    assert ds.social[u(1), u(2)] == 1 and ds.social[u(5), u(1)] == 1 and ds.social[u(3), u(3)] == 0


def test_warning_summarises_ignored_columns(tmp_path: Path) -> None:
    paths = _write(tmp_path)
    with pytest.warns(DataWarning, match=r"ignored 3 column\(s\).*items\.constant.*items\.empty.*items\.imdbId"):
        from_files(paths["interactions"], paths["items"])


def test_build_side_info_encodes_the_result(tmp_path: Path) -> None:
    from fusionrec.features import build_side_info

    ds = _load(_write(tmp_path))
    side, _ = build_side_info(ds, cache=False)
    assert set(side.item_features) == {"overview", "genres", "kind", "poster", "numeric"}
    for name, feats in side.item_features.items():
        assert feats.shape[0] == 5 and np.isfinite(feats).all(), name
    assert side.item_present["poster"].tolist() == [True, True, False, False, False]
    assert side.item_kinds == {} or side.item_kinds["poster"] == "image"
    assert side.user_features["numeric"].shape[0] == 5 and side.social is ds.social


def test_formats_jsonl_tsv_parquet_gzip(tmp_path: Path) -> None:
    frame = LOG.rename(columns={"userId": "user", "movieId": "item"})
    frame.to_csv(tmp_path / "log.tsv", sep="\t", index=False)
    frame.to_parquet(tmp_path / "log.parquet")
    with gzip.open(tmp_path / "log.csv.gz", "wt") as fh:
        frame.to_csv(fh, index=False)
    rows = [
        {"item": 10, "title": TEXTS[0], "tags": ["a", "b"], "vec": [0.1, 0.2]},
        {"item": 11, "title": TEXTS[1], "tags": ["b"], "vec": [0.3, 0.4]},
        {"item": 12, "title": TEXTS[2], "tags": [], "vec": [0.5, 0.6]},
    ]
    (tmp_path / "items.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    frame.to_json(tmp_path / "log.ndjson", orient="records", lines=True)
    for name in ("log.tsv", "log.parquet", "log.csv.gz", "log.ndjson"):
        ds = from_files(tmp_path / name, tmp_path / "items.jsonl")
        assert ds.interactions.nnz == 6 and ds.name == "log", name
        kinds = {k: m.kind for k, m in ds.item_modalities.items()}
        assert kinds == {"title": "text", "tags": "categorical", "vec": "features"}
        assert len(ds.item_modalities["tags"]) == 2  # the empty list is missing content
        assert ds.meta["ingest"]["items"]["without_row"] == 1  # item 13 has no row: kept, content missing
    assert read_interactions(frame).nnz == 6  # a DataFrame works too


def test_declared_types_override_detection(tmp_path: Path) -> None:
    paths = _write(tmp_path)
    ds = _load(
        paths,
        item_types={"kind": "text", "year": "categorical", "imdbId": "numeric", "genres": "ignore"},
        user_types={"city": "ignore"},
    )
    mods = ds.item_modalities
    assert mods["kind"].kind == "text" and mods["year"].kind == "categorical" and mods["year"].data[0] == ["1995"]
    assert "genres" not in mods and list(mods["numeric"].data.columns) == ["price", "imdbId"]
    assert ds.meta["ingest"]["items"]["columns"]["genres"] == {
        "kind": "ignored",
        "reason": "declared 'ignore'",
        "declared": True,
    }
    assert "city" not in ds.user_modalities


def test_from_frames_implicit_and_named_columns() -> None:
    log = pd.DataFrame({"Customer_ID": ["a", "b", "a"], "SKU": ["x", "y", "y"], "Plays": [3, 1, 2]})
    with pytest.raises(
        MissingColumnError, match=r"no item column found among \['Customer_ID', 'SKU', 'Plays'\].*item_col="
    ):
        from_frames(log)
    ds = from_frames(log, item_col="SKU", name="shop")
    assert not ds.interactions.explicit and ds.interactions.matrix.sum() == 6  # counts are implicit weights
    assert ds.name == "shop" and ds.item_ids.ids.tolist() == ["x", "y"]
    ones = from_frames(log, item_col="SKU", rating_col=False)
    assert ones.interactions.matrix.data.tolist() == [1.0, 1.0, 1.0]
    items = pd.DataFrame({"sku": ["x", "y", "z"], "brand": ["acme corp", "acme corp", "globex"]})
    ds = from_frames(log, items, item_col="SKU", item_id_col="sku")
    assert ds.item_ids.ids.tolist() == ["x", "y", "z"]
    with pytest.raises(DataError, match="must be a pandas DataFrame"):
        from_frames("ratings.csv")  # type: ignore[arg-type]


def test_ambiguous_roles_and_missing_named_column() -> None:
    log = pd.DataFrame({"user": [1], "user_id": [1], "item": [2]})
    with pytest.raises(MissingColumnError, match=r"ambiguous.*\['user', 'user_id'\].*user_col="):
        from_frames(log)
    with pytest.raises(MissingColumnError, match=r"'who'.*user_col="):
        from_frames(log, user_col="who")


def test_rows_without_ids_are_dropped_and_reported() -> None:
    log = pd.DataFrame({"user": [1, 2, None], "item": [5, 6, 7]})
    with pytest.warns(DataWarning, match="1 interaction row"):
        ds = from_frames(log)
    assert ds.interactions.nnz == 2 and ds.meta["ingest"]["interactions"]["rows_dropped"]


def test_directory_and_load_dataset_path(tmp_path: Path) -> None:
    from fusionrec.data.datasets import load_dataset

    LOG.to_csv(tmp_path / "interactions.csv", index=False)
    pd.DataFrame({"movieId": [10, 11], "overview": TEXTS[:2]}).to_parquet(tmp_path / "items.parquet")
    pd.DataFrame({"src": [1, 2], "dst": [2, 3]}).to_csv(tmp_path / "social.tsv", sep="\t", index=False)
    ds = load_dataset(str(tmp_path))
    assert ds.name == tmp_path.name and set(ds.item_modalities) == {"overview"} and ds.social is not None
    assert load_dataset(tmp_path / "interactions.csv").item_modalities == {}
    (tmp_path / "interactions.tsv").write_text("user\titem\n1\t2\n")
    with pytest.raises(DataError, match="several interactions tables"):
        load_dataset(tmp_path)
    with pytest.raises(DatasetNotFoundError, match="no interactions table"):
        from_files(_empty_dir(tmp_path))
    with pytest.raises(ConfigError, match=r"unknown dataset 'netflix'.*ml-100k.*a path"):
        load_dataset("netflix")
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        load_dataset(str(tmp_path / "nope.csv"))


def _empty_dir(tmp_path: Path) -> Path:
    d = tmp_path / "empty_dir"
    d.mkdir()
    return d


def test_headerless_social_file(tmp_path: Path) -> None:
    LOG.to_csv(tmp_path / "r.csv", index=False)
    (tmp_path / "trust.txt").write_text("1 2 1\n2 3 1\n3 1 0.5\n")
    ds = from_files(tmp_path / "r.csv", social=tmp_path / "trust.txt")
    assert ds.social is not None and ds.social.nnz == 3
    u = ds.user_ids.to_index
    assert ds.social[u(3), u(1)] == pytest.approx(0.5)


def test_typed_errors(tmp_path: Path) -> None:
    paths = _write(tmp_path)
    log = paths["interactions"]
    with pytest.raises(DatasetNotFoundError):
        from_files(tmp_path / "missing.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(EmptyDataError):
        from_files(tmp_path / "empty.csv")
    with pytest.raises(EmptyDataError):
        from_files(log, tmp_path / "empty.csv")
    with pytest.raises(DataError, match="unknown table format"):
        from_files(_touch(tmp_path / "ratings.xlsx"))
    with pytest.raises(ConfigError, match=r"unknown column type.*'colour'"):
        from_files(log, paths["items"], item_types={"overview": "colour"})
    with pytest.raises(MissingColumnError, match=r"names column.*'nope'"):
        from_files(log, paths["items"], item_types={"nope": "text"})
    dup = pd.DataFrame({"movieId": [10, 10, 11], "overview": TEXTS[:3]})
    with pytest.raises(DataError, match=r"appear on more than one row, e.g. \[10\]"):
        from_frames(LOG, dup)
    mixed = pd.DataFrame({"movieId": [10, "10", 11], "overview": TEXTS[:3]})
    with pytest.raises(DataError, match="only differ by type"):
        from_frames(LOG, mixed)
    other = pd.DataFrame({"movieId": ["a", "b"], "overview": TEXTS[:2]})
    with pytest.raises(DataError, match="none of its item ids"):
        from_frames(LOG, other)
    no_id = pd.DataFrame({"name": ["a"], "overview": TEXTS[:1]})
    with pytest.raises(MissingColumnError, match="item_id_col="):
        from_frames(LOG, no_id)
    with pytest.raises(DataError, match="none of the 1 image paths exists"):
        from_frames(LOG, pd.DataFrame({"movieId": [10], "pic": ["gone.png"]}), item_types={"pic": "image"})
    with pytest.raises(InvalidValueError, match="declared numeric"):
        from_frames(LOG, _items(tmp_path), item_types={"overview": "numeric"})


def test_text_ids_matching_integer_ids_and_undetected_paths(tmp_path: Path) -> None:
    items = pd.DataFrame({"movieId": ["10", "11"], "cover": ["a.png", "b.png"], "note": TEXTS[:2]})
    with pytest.warns(DataWarning, match="unreadable paths"):
        ds = from_frames(LOG, items)
    assert ds.item_ids.ids.dtype == np.int64 and len(ds.item_modalities["note"]) == 2


def _touch(p: Path) -> Path:
    p.write_text("a,b\n1,2\n")
    return p


def test_audio_paths_placeholders_and_headerless_hint(tmp_path: Path) -> None:
    import wave

    (tmp_path / "a").mkdir()
    for name in ("10.wav", "11.wav"):
        with wave.open(str(tmp_path / "a" / name), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(np.zeros(800, np.int16).tobytes())
    LOG.to_csv(tmp_path / "r.csv", index=False)
    items = pd.DataFrame(
        {
            "movieId": list(range(10, 20)),
            "clip": ["a/10.wav", str(tmp_path / "a" / "11.wav"), "a/missing.wav", *[None] * 7],
            "budget": ["1.5", "unknown", *map(str, range(8))],  # numbers but for a placeholder: numeric, kept
        }
    )
    items.to_csv(tmp_path / "items.tsv", sep="\t", index=False)
    with pytest.warns(DataWarning, match=r"items\.clip: 1 file\(s\) not found"):
        ds = from_files(tmp_path / "r.csv", tmp_path / "items.tsv")
    assert ds.item_modalities["clip"].kind == "audio" and len(ds.item_modalities["clip"]) == 2
    numeric = ds.item_modalities["numeric"]
    assert len(numeric) == 9 and 11 not in numeric.ids  # "unknown" is a missing value
    cols = ds.meta["ingest"]["items"]["columns"]
    assert cols["budget"]["non_numeric_as_missing"] == 1 and cols["clip"]["missing_files"] == 1
    (tmp_path / "noheader.csv").write_text("1,10,5\n2,11,3\n")
    with pytest.raises(MissingColumnError, match="lack a header line"):
        from_files(tmp_path / "noheader.csv")
