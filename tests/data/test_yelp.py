"""Yelp JSON files (business, review, user with friends as a string or a list) on tiny files written here."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from fusionrec.data import DataWarning
from fusionrec.data.datasets import load_yelp, parse_friends
from fusionrec.errors import DatasetNotFoundError, DuplicateInteractionError, InvalidValueError

BUSINESS = [
    {"business_id": "b1", "name": "Pizza Place", "city": "Phoenix", "state": "AZ", "latitude": 33.4,
     "longitude": -112.0, "stars": 4.5, "review_count": 10, "categories": "Pizza, Restaurants",
     "attributes": {"WiFi": "u'free'", "RestaurantsPriceRange2": "2"}},
    {"business_id": "b2", "name": "Bar", "categories": ["Bars", "Nightlife"], "attributes": None},
    {"business_id": "b3", "name": "Never reviewed", "categories": None},
]  # fmt: skip
REVIEWS = [
    {"review_id": "r1", "user_id": "u1", "business_id": "b1", "stars": 5, "date": "2016-03-09 00:00:00",
     "text": "Best pizza"},
    {"review_id": "r2", "user_id": "u2", "business_id": "b1", "stars": 3, "date": "2017-01-01 12:00:00", "text": "ok"},
    {"review_id": "r3", "user_id": "u2", "business_id": "b2", "stars": 4.0, "date": "2017-02-01 12:00:00",
     "text": "fun"},
]  # fmt: skip
USERS = [
    {"user_id": "u1", "name": "A", "review_count": 3, "average_stars": 4.0, "fans": 1, "friends": "u2, u3, ghost",
     "yelping_since": "2010-01-01"},
    {"user_id": "u2", "name": "B", "review_count": 5, "average_stars": 3.5, "fans": 0, "friends": ["u1"]},
    {"user_id": "u3", "name": "C", "review_count": 0, "average_stars": 0, "fans": 0, "friends": "None"},
]  # fmt: skip


def write_yelp(root: Path, reviews: list[dict] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, rows in (("business", BUSINESS), ("review", reviews or REVIEWS), ("user", USERS)):
        (root / f"{name}.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def test_yelp(tmp_path: Path) -> None:
    ds = load_yelp(write_yelp(tmp_path / "yelp"), train="all")
    x = ds.interactions
    assert x.user_ids.ids.tolist() == ["u1", "u2", "u3"]  # u3 only in user.json
    assert x.item_ids.ids.tolist() == ["b1", "b2"] and x.nnz == 3 and x.timestamps is not None
    s = ds.social
    assert s is not None and s.shape == (3, 3)
    assert s[0, 1] == 1 and s[0, 2] == 1 and s[1, 0] == 1 and s.nnz == 3
    assert ds.meta["dropped_friend_links"] == 1 and ds.meta["profile_only_users"] == 1
    mods = ds.item_modalities
    cats, _ = mods["categories"].align(x.item_ids)
    assert cats == [["Pizza", "Restaurants"], ["Bars", "Nightlife"]]
    assert mods["name"].data[2] == "Never reviewed"
    attrs = mods["attributes"].data
    assert attrs["WiFi"].tolist()[0] == "u'free'" and pd.isna(attrs["WiFi"].iloc[1])
    assert mods["location"].data["stars"].iloc[0] == 4.5
    assert mods["reviews"].data[0] == "Best pizza\nok"
    prof = ds.user_modalities["profile"].data
    assert {"review_count", "average_stars", "fans", "yelping_since"} <= set(prof.columns)


def test_review_content_from_training_reviews_only(tmp_path: Path) -> None:
    """Review text and rating aggregates of a held-out review (u2 on b1, ``x_label`` 2) must not leak."""
    from fusionrec.data.splits import predefined_split

    root = write_yelp(tmp_path / "yelp")
    plain = load_yelp(root)
    assert "reviews" not in plain.item_modalities and "train=" in plain.meta["review_content"]
    assert "stars" not in plain.item_modalities["location"].data.columns
    assert "average_stars" not in plain.user_modalities["profile"].data.columns
    frame = pd.DataFrame({"user": ["u1", "u2", "u2"], "item": ["b1", "b1", "b2"], "rating": [5, 3, 4],
                          "x_label": [0, 2, 0]})  # fmt: skip
    split = predefined_split(frame, user="user", item="item")
    ds = load_yelp(root, train=split.train)
    text, _ = ds.item_modalities["reviews"].align(ds.interactions.item_ids)
    assert text == ["Best pizza", "fun"]  # "ok" was the held-out review
    loc = ds.item_modalities["location"].data
    assert loc["stars"].tolist()[:2] == [5.0, 4.0] and loc["review_count"].tolist() == [1.0, 1.0, 0.0]
    prof = ds.user_modalities["profile"].data
    assert prof["review_count"].tolist() == [1.0, 1.0, 0.0] and prof["average_stars"].tolist()[:2] == [5.0, 4.0]


def test_parse_friends() -> None:
    assert parse_friends("a, b,c") == ["a", "b", "c"]
    assert parse_friends(["a", "b"]) == ["a", "b"]
    assert parse_friends("None") == [] and parse_friends(None) == [] and parse_friends("") == []


def test_yelp_bad_input(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError):
        load_yelp(tmp_path / "none")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetNotFoundError, match=r"review\.json"):
        load_yelp(empty)
    dup = [*REVIEWS, {"review_id": "r4", "user_id": "u1", "business_id": "b1", "stars": 1, "date": "2018-01-01"}]
    root = write_yelp(tmp_path / "dup", dup)
    with pytest.raises(DuplicateInteractionError, match="duplicates="):
        load_yelp(root)
    with pytest.warns(DataWarning, match="merged 1"):
        ds = load_yelp(root, duplicates="last")
    assert ds.interactions.matrix[0, 0] == 1.0  # the later review wins
    bad = [*REVIEWS, {"review_id": "r5", "user_id": "u3", "business_id": "b2", "stars": "NaN"}]
    with pytest.raises(InvalidValueError, match=r"review.json, line 4: 'stars'"):
        load_yelp(write_yelp(tmp_path / "bad", bad))
    bad = [*REVIEWS, {"review_id": "r5", "user_id": "u3", "business_id": "b2", "stars": 2, "date": "yesterday"}]
    with pytest.raises(InvalidValueError, match=r"review.json, line 4: 'date'.*'yesterday'"):
        load_yelp(write_yelp(tmp_path / "bad2", bad))
