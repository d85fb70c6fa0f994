"""``Recommender.forget_user``: a forgotten user's rows are gone from the fitted model, its raw id cannot be looked
up (also after save/load), and the other users keep their indices and scores."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fusionrec.errors import ConfigError, UnknownIdError
from fusionrec.models import load_model, make_model

pytest.importorskip("torch")

BLEND = {"models": [{"name": "ALS", "params": {"iterations": 2}}, {"name": "ContentKNN"}]}
#: one model per kind of per-user state: factors and biases, seen rows, k-NN residuals and means, content
#: profiles, sequences, trust links, ensemble members
MODELS: dict[str, dict[str, Any]] = {
    "ALS": {"iterations": 3, "seed": 0},
    "BPR": {"seed": 0},
    "SVD": {"seed": 0},
    "SVDpp": {"n_epochs": 2, "seed": 0},
    "TimeSVDpp": {"n_epochs": 2, "seed": 0},
    "EASE": {},
    "ItemKNN": {},
    "KNNBaseline": {},
    "UserKNN": {},
    "ContentKNN": {},
    "HybridMF": {"seed": 0},
    "SASRec": {"epochs": 1, "seed": 0},
    "SocialMF": {"seed": 0},
    "TrustSVD": {"seed": 0},
    "MostPopular": {},
    "WeightedBlend": BLEND,
}
#: models whose other users are scored through their user neighbours (the forgotten user stops being one)
THROUGH_USERS = {"UserKNN"}


@pytest.fixture(scope="module")
def data() -> tuple[Any, Any]:
    from fusionrec.data.datasets import load_dataset
    from fusionrec.features import build_side_info

    ds = load_dataset("synthetic", n_users=40, n_items=30, seed=1, with_audio=False)
    side, _ = build_side_info(ds)
    return ds.interactions, side


def _fit(name: str, data: tuple[Any, Any]) -> Any:
    train, side = data
    params = {k: v for k, v in MODELS[name].items() if k in _param_names(name)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make_model(name, **params).fit(train, side)


def _param_names(name: str) -> list[str]:
    from fusionrec.models.registry import get_model_class

    return get_model_class(name)._param_names()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_forgotten_users_are_blank_unknown_and_stay_so(name: str, data: tuple[Any, Any], tmp_path: Path) -> None:
    train, _ = data
    model = _fit(name, data)
    others = np.arange(2, train.n_users)
    before = np.asarray(model.score(others))
    raw0, raw1, raw2 = train.user_ids.ids[:3].tolist()
    assert len(model.recommend_ids([raw0], k=3)[0][0]) == 3

    model.forget_user(0)
    model.forget_user(np.int64(1))
    model.forget_user(0)  # twice: a no-op

    assert model.seen_[0].nnz == 0 and model.seen_[1].nnz == 0
    assert model.n_users_ == train.n_users  # the others keep their indices
    # nothing of their own data is left: the two forgotten users are scored alike
    np.testing.assert_allclose(model.score(np.array([0])), model.score(np.array([1])), rtol=1e-5, atol=1e-5)
    if name not in THROUGH_USERS:
        np.testing.assert_allclose(model.score(others), before, rtol=1e-5, atol=1e-5)
    for raw in (raw0, raw1):
        with pytest.raises(UnknownIdError):
            model.recommend_ids([raw], k=3)
    assert raw0 not in model.user_id_values_.tolist() and raw1 not in model.user_id_values_.tolist()
    model.recommend_ids([raw2], k=3)  # the others are still found by their raw ids

    loaded = load_model(model.save(tmp_path / "m"))
    assert loaded.forgotten_users_.tolist() == [0, 1]
    with pytest.raises(UnknownIdError):
        loaded.recommend_ids([raw0], k=3)
    with np.load(tmp_path / "m" / "arrays.npz", allow_pickle=False) as npz:
        stored = " ".join(str(v) for k in npz.files if "user" in k for v in np.ravel(npz[k]).tolist())
    assert f" {raw0} " not in f" {stored} " and f" {raw1} " not in f" {stored} "


def test_a_forgotten_user_is_no_ones_neighbour(data: tuple[Any, Any]) -> None:
    model = _fit("UserKNN", data)
    model.forget_user(3)
    nb = model.neighbours_.tocsc()
    assert nb[:, 3].nnz == 0 and model.neighbours_[3].nnz == 0


def test_the_forgotten_tombstone_is_no_id(data: tuple[Any, Any]) -> None:
    model = _fit("EASE", data)
    model.forget_user(5)
    tomb = model.user_id_values_[5]
    with pytest.raises(UnknownIdError):
        model.recommend_ids([tomb], k=3)


def test_bad_user_index_is_refused(data: tuple[Any, Any]) -> None:
    model = _fit("EASE", data)
    for bad in (-1, model.n_users_, True, "u1", 1.0):
        with pytest.raises(ConfigError, match="user index"):
            model.forget_user(bad)


def test_item_item_state_is_kept_when_users_and_items_are_as_many() -> None:
    from fusionrec.data import Interactions
    from fusionrec.models.knn import ItemKNN

    n = 20
    pairs = [(u, (u + d) % n) for u in range(n) for d in (0, 1, 3, 7 + u % 5)]
    users = np.array([f"u{u}" for u, _ in pairs])
    items = np.array([f"i{i}" for _, i in pairs])
    train = Interactions.from_arrays(users, items, None, explicit=False)
    assert train.n_users == train.n_items  # a square item-item matrix must not pass for users x users
    model = ItemKNN().fit(train)
    assert model.neighbours_.shape == (n, n)  # sparse, items x items
    others = np.arange(1, train.n_users)
    before = model.score(others)
    model.forget_user(0)
    np.testing.assert_allclose(model.score(others), before, rtol=1e-6)
