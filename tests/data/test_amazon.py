"""Amazon 2014 / 2018 review + metadata formats (plain and gzip) on tiny files written here."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from fusionrec.data import DataWarning
from fusionrec.data.datasets import load_amazon, read_amazon_meta
from fusionrec.errors import DataError, DuplicateInteractionError, EmptyDataError, InvalidValueError, MissingColumnError

REVIEWS_2014 = [
    {"reviewerID": "A1", "asin": "0000031852", "reviewerName": "x", "helpful": [0, 0], "reviewText": "Great fit.",
     "overall": 5.0, "summary": "Love it", "unixReviewTime": 1252800000, "reviewTime": "09 13, 2009"},
    {"reviewerID": "A2", "asin": "0000031852", "reviewText": "", "overall": 2.0, "summary": "Meh",
     "unixReviewTime": 1252900000},
    {"reviewerID": "A2", "asin": "B00000J0FW", "reviewText": "Broke fast", "overall": 1.0, "summary": "",
     "unixReviewTime": 1253000000},
]  # fmt: skip
META_2014 = [
    "{'asin': '0000031852', 'title': 'Girls Ballet Tutu', 'price': 3.17, 'imUrl': 'http://img/1.jpg', "
    "'categories': [['Clothing', 'Girls', 'Skirts'], ['Clothing', 'Dance']], 'description': 'A tutu.', "
    "'related': {'also_bought': ['B1']}, 'salesRank': {'Toys & Games': 211836}}",
    "{'asin': 'B00000J0FW', 'categories': [['Toys']], 'brand': 'Acme', 'description': \"Kid's toy\"}",
    "{'asin': 'UNRATED', 'title': 'Nobody bought me', 'categories': [[]]}",
]
REVIEWS_2018 = [
    {"overall": 4.0, "verified": True, "reviewTime": "03 3, 2015", "reviewerID": "R1", "asin": "B001",
     "style": {"Format:": " Hardcover"}, "reviewText": "Good", "summary": "Four", "unixReviewTime": 1425340800,
     "vote": "2", "image": ["http://u/1.jpg"]},
    {"overall": 3.0, "reviewerID": "R2", "asin": "B001", "reviewText": "OK", "unixReviewTime": 1425340900},
]  # fmt: skip
META_2018 = [
    {"category": ["Books", "Fiction"], "description": ["A novel.", "Second paragraph."], "title": "The Book",
     "image": ["http://m/1.jpg", "http://m/2.jpg"], "brand": "Press", "price": "$12.99", "asin": "B001"},
]  # fmt: skip


def write_lines(path: Path, lines: list[str]) -> Path:
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def test_amazon_2014_gz(tmp_path: Path) -> None:
    reviews = write_lines(tmp_path / "reviews_Clothing_5.json.gz", [json.dumps(r) for r in REVIEWS_2014])
    meta = write_lines(tmp_path / "meta_Clothing.json.gz", META_2014)
    ds = load_amazon(reviews, meta, name="clothing", train="all")
    x = ds.interactions
    assert x.shape == (2, 2) and x.explicit and x.timestamps is not None
    assert x.item_ids.ids.tolist() == ["0000031852", "B00000J0FW"]  # leading zeros kept: ids are strings
    mods = ds.item_modalities
    reviews_text, _ = mods["reviews"].align(x.item_ids)
    assert reviews_text[0] == "Love it. Great fit.\nMeh" and reviews_text[1] == "Broke fast"
    assert ds.user_modalities["reviews"].target == "user"
    cats, present = mods["categories"].align(x.item_ids)
    assert present.all() and cats[0] == ["Clothing", "Girls", "Skirts", "Dance"] and cats[1] == ["Toys"]
    text, _ = mods["text"].align(x.item_ids)
    assert text == ["Girls Ballet Tutu. A tutu.", "Kid's toy"]
    assert mods["image"].kind == "image" and mods["image"].data == ["http://img/1.jpg"]
    attrs = mods["attributes"].data
    assert attrs["price"].iloc[0] == pytest.approx(3.17) and attrs["brand"].tolist()[1] == "Acme"
    assert len(mods["title"]) == 3  # unrated products keep their content


def test_amazon_2018_plain(tmp_path: Path) -> None:
    reviews = write_lines(tmp_path / "Books_5.json", [json.dumps(r) for r in REVIEWS_2018])
    meta = write_lines(tmp_path / "meta_Books.json", [json.dumps(m) for m in META_2018])
    ds = load_amazon(reviews, meta, review_text=False)
    assert "reviews" not in ds.item_modalities
    mods = ds.item_modalities
    assert mods["text"].data == ["The Book. A novel. Second paragraph."]
    assert mods["categories"].data == [["Books", "Fiction"]]
    assert mods["image_urls"].data == [["http://m/1.jpg", "http://m/2.jpg"]] and mods["image"].data == [
        "http://m/1.jpg"
    ]
    assert mods["attributes"].data["price"].iloc[0] == pytest.approx(12.99)
    assert np.array_equal(ds.interactions.matrix.data, [4.0, 3.0])


def test_review_text_uses_training_reviews_only(tmp_path: Path) -> None:
    """A held-out review must not reach the item's (or the user's) text: built from ``train`` pairs only."""
    from fusionrec.data.splits import predefined_split

    rows = [
        {"reviewerID": "A1", "asin": "P1", "overall": 5.0, "reviewText": "cosy warm wool", "unixReviewTime": 1},
        {"reviewerID": "A2", "asin": "P1", "overall": 4.0, "reviewText": "nice", "unixReviewTime": 2},
        {"reviewerID": "A2", "asin": "P2", "overall": 1.0, "reviewText": "SECRET test words", "unixReviewTime": 3},
        {"reviewerID": "A1", "asin": "P2", "overall": 3.0, "reviewText": "fine", "unixReviewTime": 4},
    ]
    reviews = write_lines(tmp_path / "r.json", [json.dumps(r) for r in rows])
    plain = load_amazon(reviews)  # no split known: interaction-derived text is left out
    assert "reviews" not in plain.item_modalities and "reviews" not in plain.user_modalities
    assert "train=" in plain.meta["review_text"]
    import pandas as pd

    frame = pd.DataFrame(
        {"userId": ["A1", "A2", "A2", "A1"], "itemId": ["P1", "P1", "P2", "P2"], "rating": [5, 4, 1, 3],
         "x_label": [0, 0, 2, 0]}
    )  # fmt: skip
    split = predefined_split(frame, user="userId", item="itemId")
    ds = load_amazon(reviews, train=split)
    text, _ = ds.item_modalities["reviews"].align(ds.interactions.item_ids)
    assert "SECRET" not in " ".join(text) and text[1] == "fine"
    user_text, _ = ds.user_modalities["reviews"].align(ds.interactions.user_ids)
    assert "SECRET" not in " ".join(user_text)
    assert "SECRET" in " ".join(load_amazon(reviews, train="all").item_modalities["reviews"].data)
    with pytest.raises(InvalidValueError, match="train="):
        load_amazon(reviews, train="everything")  # type: ignore[arg-type]


def test_meta_never_evaluates_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    meta = write_lines(
        tmp_path / "meta.json",
        ["{'asin': 'A', 'title': 'ok'}", f"__import__('pathlib').Path({str(marker)!r}).write_text('x')"],
    )
    with pytest.raises(DataError, match=r"meta.json, line 2: not a valid JSON object"):
        read_amazon_meta(meta)
    assert not marker.exists()


def test_amazon_bad_input(tmp_path: Path) -> None:
    good = [json.dumps(r) for r in REVIEWS_2014]
    path = write_lines(tmp_path / "r.json", [good[0], "{not json", good[1]])
    with pytest.raises(DataError, match=r"r.json, line 2: not a valid JSON object"):
        load_amazon(path)
    path = write_lines(tmp_path / "r.json", [good[0], json.dumps({"reviewerID": "A9", "asin": "X", "overall": "five"})])
    with pytest.raises(InvalidValueError, match=r"line 2: 'overall' must be a finite number, got 'five'"):
        load_amazon(path)
    path = write_lines(tmp_path / "r.json", [json.dumps({"reviewerID": "A9", "asin": "X", "overall": None}), good[0]])
    with pytest.raises(DataError, match=r"line 1: key 'overall' is missing or null"):
        load_amazon(path)
    path = write_lines(tmp_path / "r.json", [json.dumps({"user": "A9", "asin": "X", "overall": 1})])
    with pytest.raises(MissingColumnError, match="reviewerID"):
        load_amazon(path)
    path = write_lines(tmp_path / "r.json", ["", ""])
    with pytest.raises(EmptyDataError):
        load_amazon(path)
    path = write_lines(tmp_path / "r.json", [good[0], good[0]])
    with pytest.raises(DuplicateInteractionError, match=r"r\.json"):
        load_amazon(path)
    with pytest.warns(DataWarning):
        assert load_amazon(path, duplicates="last").interactions.nnz == 1
    bad_gz = tmp_path / "r.json.gz"
    bad_gz.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="gzip"):
        load_amazon(bad_gz)
