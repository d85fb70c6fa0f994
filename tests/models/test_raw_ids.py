"""Raw ids on the model: recommend_ids / similar_items_ids, unknown ids, register_ids, persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fusionrec.data import IdMap, Interactions
from fusionrec.errors import DataError, UnknownIdError
from fusionrec.models import load_model
from fusionrec.models.mf.als import ALS

from ..conftest import make_interactions


@pytest.fixture
def fitted() -> tuple[ALS, Interactions]:
    train = make_interactions(seed=4, explicit=False)
    return ALS(n_factors=4, epochs=3, seed=0).fit(train), train


def test_ids_are_stored_as_plain_arrays(fitted: tuple[ALS, Interactions]) -> None:
    model, train = fitted
    assert model.user_id_values_.dtype.kind == "U" and model.item_id_values_.dtype.kind == "U"
    assert model.user_id_values_.tolist() == train.user_ids.ids.tolist()
    ints = Interactions.from_arrays(np.array([10, 20, 20]), np.array([7, 7, 9]), None)
    assert ALS(n_factors=2, epochs=1).fit(ints).item_id_values_.dtype == np.int64


def test_recommend_ids_matches_recommend(fitted: tuple[ALS, Interactions]) -> None:
    model, train = fitted
    raw_users = train.user_ids.ids[[3, 0]]
    ids, scores = model.recommend_ids(raw_users, k=5)
    idx, expected = model.recommend(np.array([3, 0]), k=5)
    assert ids.tolist() == train.item_ids.to_id(idx).tolist()
    np.testing.assert_allclose(scores, expected)
    cand = train.item_ids.ids[[1, 4, 7]]
    ids, _ = model.recommend_ids(raw_users[:1], k=2, candidates=cand, exclude_seen=False)
    assert set(ids[0].tolist()) <= set(cand.tolist())


def test_similar_items_ids(fitted: tuple[ALS, Interactions]) -> None:
    model, train = fitted
    ids, scores = model.similar_items_ids([train.item_ids.ids[2]], k=4)
    idx, expected = model.similar_items(np.array([2]), k=4)
    assert ids.tolist() == train.item_ids.to_id(idx).tolist()
    np.testing.assert_allclose(scores, expected)


def test_unknown_ids_say_what_to_do(fitted: tuple[ALS, Interactions]) -> None:
    model, _ = fitted
    with pytest.raises(UnknownIdError, match=r"'nobody'.*fold_in_user.*register_ids"):
        model.recommend_ids(["nobody"])
    with pytest.raises(UnknownIdError, match="add_items"):
        model.similar_items_ids(["no-such-item"])


def test_registered_ids_cover_placed_entities(fitted: tuple[ALS, Interactions], tmp_path: Path) -> None:
    model, train = fitted
    with pytest.raises(DataError, match="place them first"):
        model.register_ids(users=["alice"])
    model.fold_in_user(train.matrix[2].indices)
    model.add_item_vectors(model.item_factors_[[5]])
    ids, _ = model.recommend_ids([train.user_ids.ids[0]], k=train.n_items + 1, exclude_seen=False)
    assert set(ids[0].tolist()) - {""} == set(train.item_ids.ids.tolist())  # the unnamed new item is not ranked
    model.register_ids(users=["alice"], items=["new-item"])
    model.fold_in_user([1])
    with pytest.raises(DataError, match="new and distinct"):
        model.register_ids(users=["alice"])
    with pytest.raises(DataError, match="strings"):
        model.register_ids(users=[5])
    ids, _ = model.recommend_ids(["alice"], k=train.n_items + 1, exclude_seen=False)
    assert "new-item" in ids[0].tolist()
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert loaded.user_id_values_[-1] == "alice" and loaded.n_users_ == train.n_users + 2
    np.testing.assert_array_equal(loaded.recommend_ids(["alice"], k=3)[0], model.recommend_ids(["alice"], k=3)[0])


def test_int_ids_pad_with_minus_one() -> None:
    ints = Interactions.from_arrays(
        np.array([10, 10, 20]), np.array([7, 9, 7]), None, user_ids=IdMap([10, 20]), item_ids=IdMap([7, 9])
    )
    model = ALS(n_factors=2, epochs=1).fit(ints)
    ids, scores = model.recommend_ids([10], k=2)
    assert ids.dtype == np.int64 and ids[0].tolist() == [-1, -1] and np.isneginf(scores).all()
