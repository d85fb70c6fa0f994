"""Inputs that were accepted without a word (issue 21): each is now refused with the rows named, or accepted with a
warning that says what was assumed; ``DELETE /users/`` no longer redirects; ``friends=`` given to a model that does
not place users through friends is a typed error naming the models that do."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from fusionrec.data import Interactions
from fusionrec.data.interactions import DataWarning
from fusionrec.errors import ConfigError, InvalidValueError
from tests.conftest import make_interactions


def _ratings(n: int = 40) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(n // 4), 4)
    items = np.tile(np.arange(4), n // 4)
    return users, items, rng.integers(1, 6, n).astype(float)


@pytest.mark.parametrize("bad", [-5.0, 99.0])
def test_a_rating_far_off_the_scale_is_refused_with_its_row(bad: float) -> None:
    users, items, ratings = _ratings()
    ratings[17] = bad
    with pytest.raises(InvalidValueError, match="row 17"):
        Interactions.from_arrays(users, items, ratings)


def test_ratings_on_a_wide_or_negative_scale_are_kept() -> None:
    users, items, ratings = _ratings()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Interactions.from_arrays(users, items, ratings * 4 - 10)  # -6 .. 10 (Jester-like)
        Interactions.from_arrays(users, items, ratings / 2)  # 0.5 .. 2.5 (FilmTrust-like)
        Interactions.from_arrays(users, items, ratings * 1000)  # implicit weights are never checked
        Interactions.from_arrays(users, items, np.r_[ratings[:-1], 1e6], explicit=False)


def test_an_explicit_rating_of_zero_is_kept_with_a_warning() -> None:
    users, items, ratings = _ratings()
    ratings[[3, 8]] = 0
    with pytest.warns(DataWarning, match=r"2 rating\(s\) of 0 at rows 3, 8.*kept as ratings of 0"):
        train = Interactions.from_arrays(users, items, ratings)
    assert train.matrix.nnz == len(users) and (train.matrix.data == 0).sum() == 2


def test_negative_timestamps_are_kept_with_a_warning() -> None:
    users, items, ratings = _ratings()
    ts = np.arange(len(users)) + 1_000_000
    ts[5] = -1
    with pytest.warns(DataWarning, match=r"negative timestamp\(s\) at row 5.*before 1970"):
        train = Interactions.from_arrays(users, items, ratings, ts)
    assert train.timestamps is not None and train.timestamps.min() == -1


def test_from_files_names_the_rows(tmp_path: Path) -> None:
    from fusionrec.data import from_files

    users, items, ratings = _ratings()
    ratings[30] = 99
    path = tmp_path / "ratings.csv"
    rows = "\n".join(f"{u},{i},{r:g}" for u, i, r in zip(users, items, ratings))
    path.write_text("user,item,rating\n" + rows + "\n")
    with pytest.raises(InvalidValueError, match=r"row 30.*99"):
        from_files(path)


@pytest.mark.parametrize("name", ["ALS", "EASE"])
def test_friends_given_to_a_model_without_friends_is_a_config_error(name: str) -> None:
    from fusionrec.models import make_model

    kw = {"n_factors": 3, "epochs": 2} if name == "ALS" else {}
    model = make_model(name, **kw).fit(make_interactions(explicit=False))
    with pytest.raises(ConfigError, match=r"SocialMF.*TrustSVD"):
        model.fold_in_user([], friends=np.array([1]))
    with pytest.raises(ConfigError, match="friend_weights"):
        model.fold_in_user([0], friend_weights=np.array([1.0]))


def test_delete_with_an_empty_user_id_is_not_redirected(client: object) -> None:
    for method in ("DELETE", "GET"):
        r = client.request(method, "/users/", headers={"X-API-Key": "secret"}, follow_redirects=False)  # type: ignore[attr-defined]
        assert r.status_code == 422, (method, r.status_code)
        assert "user id is empty" in r.json()["detail"]
    r = client.post("/events/", json={"events": []}, headers={"X-API-Key": "secret"}, follow_redirects=False)  # type: ignore[attr-defined]
    assert r.status_code == 404  # no 307 to /events
