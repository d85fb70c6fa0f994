"""The cold-start API (fusionrec.models.coldstart): ContentKNN, HybridMF, VBPR; users of ALS and GraphFusion.

``add_items(features) -> new indices`` (recommendable at once from content), ``fold_in_user(items, values)
-> [index]`` (a new user from their history, no refit) and missing modalities (zero rows, imputed).
The data plants two genres: user ``u`` likes genre ``u % 2``; items 24..29 have no interactions (cold).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from fusionrec.data import IdMap, Interactions
from fusionrec.errors import ConfigError, DataError
from fusionrec.models import Recommender, SideInfo, load_model
from fusionrec.models.activity import ActivityCEASE
from fusionrec.models.baselines import BiasBaseline, MostPopular, Random
from fusionrec.models.coldstart import ItemColdStart, UserColdStart
from fusionrec.models.content import ContentKNN
from fusionrec.models.graph import GraphFusion
from fusionrec.models.hybrid import HybridMF
from fusionrec.models.knn import ItemKNN, KNNBaseline
from fusionrec.models.krr import ContentKRR
from fusionrec.models.linear import EASE
from fusionrec.models.mf.als import ALS
from fusionrec.models.vbpr import VBPR

N_USERS, N_ITEMS, N_WARM = 40, 30, 24


def genre_of(items: np.ndarray) -> np.ndarray:
    return np.asarray(items) % 2


def genre_features(genres: np.ndarray, seed: int, d: int = 6) -> np.ndarray:
    """A genre signal in the first two columns plus small noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=0.15, size=(len(genres), d)).astype(np.float32)
    x[np.arange(len(genres)), genres] += 1.0
    return x


def genre_data(seed: int = 0) -> tuple[Interactions, SideInfo]:
    """Users like genre ``u % 2``; each picks 6 warm items of it; items >= 24 are cold (no interactions)."""
    rng = np.random.default_rng(seed)
    warm = np.arange(N_WARM)
    users, items = [], []
    for u in range(N_USERS):
        liked = warm[genre_of(warm) == u % 2]
        for i in rng.choice(liked, 6, replace=False):
            users.append(u)
            items.append(int(i))
    train = Interactions.from_arrays(
        np.array(users), np.array(items), None, user_ids=IdMap(range(N_USERS)), item_ids=IdMap(range(N_ITEMS))
    )
    genres = genre_of(np.arange(N_ITEMS))
    side = SideInfo(
        item_features={"text": genre_features(genres, seed + 1), "image": genre_features(genres, seed + 2, d=4)},
        user_features={"pref": np.eye(2, dtype=np.float32)[np.arange(N_USERS) % 2]},
    )
    return train, side


def genre_margin(scores: np.ndarray, users: np.ndarray, items: np.ndarray) -> float:
    """Mean over users of (mean score of liked-genre items - mean score of the other genre's items)."""
    g = genre_of(items)
    out = []
    for row, u in zip(scores, users):
        liked = g == u % 2
        out.append(row[liked].mean() - row[~liked].mean())
    return float(np.mean(out))


MODELS: dict[str, Callable[[], Recommender]] = {
    "hybrid-warp": lambda: HybridMF(n_factors=8, epochs=30, lr=0.1, seed=1),
    "hybrid-bpr": lambda: HybridMF(n_factors=8, epochs=30, loss="bpr", lr=0.1, seed=1),
    "vbpr": lambda: VBPR(n_factors=4, content_factors=4, epochs=40, lr=0.05, seed=1),
    "content": lambda: ContentKNN(),
    "krr": lambda: ContentKRR(),
}
#: models that place new users only (no content for new items)
USER_ONLY: dict[str, Callable[[], Recommender]] = {
    "als": lambda: ALS(n_factors=4, reg=0.1, alpha=5.0, epochs=15, seed=1),
    # GraphFusion also adds items, but its add_items needs every fitted modality: only its users are tested here
    "graph": lambda: GraphFusion(n_factors=8, epochs=30, lr=0.05, batch_size=64, seed=1),
}


@pytest.fixture(params=sorted(MODELS))
def fitted(request: pytest.FixtureRequest) -> tuple[Recommender, Interactions, SideInfo]:
    train, side = genre_data()
    return MODELS[request.param]().fit(train, side), train, side


@pytest.fixture(params=sorted(MODELS) + sorted(USER_ONLY))
def user_fitted(request: pytest.FixtureRequest) -> tuple[Recommender, Interactions, SideInfo]:
    train, side = genre_data()
    factory = MODELS.get(request.param) or USER_ONLY[request.param]
    return factory().fit(train, side), train, side


def test_protocols() -> None:
    train, _ = genre_data()
    for name, factory in MODELS.items():
        model = factory()
        assert isinstance(model, ItemColdStart) and isinstance(model, UserColdStart), name
    als = USER_ONLY["als"]()
    assert isinstance(als, UserColdStart) and not isinstance(als, ItemColdStart)
    with pytest.raises(ConfigError, match="user features"):
        als.fit(train).fold_in_user([], user_features={"pref": np.eye(2)[0]})  # type: ignore[attr-defined]


def test_cold_items_scored_from_content(fitted: tuple[Recommender, Interactions, SideInfo]) -> None:
    model, _, _ = fitted
    cold = np.arange(N_WARM, N_ITEMS)
    users = np.arange(N_USERS)
    assert genre_margin(model.score(users, cold), users, cold) > 0.05
    top, _ = model.recommend(users, k=2, candidates=cold)
    assert (genre_of(top) == (users % 2)[:, None]).mean() >= 0.9


def test_add_items_recommendable_at_once(fitted: tuple[Recommender, Interactions, SideInfo]) -> None:
    model, _, _ = fitted
    genres = np.array([0, 1, 0, 1])
    new = model.add_items({"text": genre_features(genres, 7), "image": genre_features(genres, 8, d=4)})  # type: ignore[attr-defined]
    np.testing.assert_array_equal(new, np.arange(N_ITEMS, N_ITEMS + 4))
    assert model.n_items_ == N_ITEMS + 4 and model.seen_.shape == (N_USERS, N_ITEMS + 4)  # type: ignore[attr-defined]
    users = np.arange(N_USERS)
    s = model.score(users, new)
    assert np.isfinite(s).all()
    top, _ = model.recommend(users, k=2, candidates=new)
    assert (genres[top - N_ITEMS] == (users % 2)[:, None]).mean() >= 0.9
    # a whole modality left out counts as missing and is imputed
    more = model.add_items({"text": genre_features(np.array([1]), 9)})  # type: ignore[attr-defined]
    assert np.isfinite(model.score(users, more)).all()


def test_add_items_errors(fitted: tuple[Recommender, Interactions, SideInfo]) -> None:
    model, _, _ = fitted
    with pytest.raises(DataError):
        model.add_items({"audio": np.zeros((1, 3))})  # type: ignore[attr-defined]
    with pytest.raises(DataError):
        model.add_items({"text": np.zeros((2, 5))})  # type: ignore[attr-defined]
    with pytest.raises(DataError):
        model.add_items({"text": np.zeros((2, 6)), "image": np.zeros((3, 4))})  # type: ignore[attr-defined]


def test_fold_in_user_from_history(user_fitted: tuple[Recommender, Interactions, SideInfo]) -> None:
    model, _, _ = user_fitted
    history = np.array([0, 2, 4, 6])  # genre 0
    idx = model.fold_in_user(history)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(idx, [N_USERS])
    assert model.n_users_ == N_USERS + 1  # type: ignore[attr-defined]
    top, _ = model.recommend(idx, k=5)
    assert not set(top[0].tolist()) & set(history.tolist())  # the history counts as seen
    assert (genre_of(top[0]) == 0).mean() >= 0.8
    # re-folding an existing user in place keeps the count
    again = model.fold_in_user(np.array([1, 3, 5]), np.array([1.0, 2.0, 1.0]), user=int(idx[0]))  # type: ignore[attr-defined]
    np.testing.assert_array_equal(again, idx)
    assert model.n_users_ == N_USERS + 1  # type: ignore[attr-defined]
    top, _ = model.recommend(idx, k=5)
    assert (genre_of(top[0]) == 1).mean() >= 0.8
    with pytest.raises(DataError):
        model.fold_in_user(np.array([0, 1]), np.array([1.0]))  # type: ignore[attr-defined]
    with pytest.raises(DataError):
        model.fold_in_user(np.array([N_ITEMS + 10]))  # type: ignore[attr-defined]
    with pytest.raises(DataError):
        model.fold_in_user(np.array([0]), user=N_USERS + 5)  # type: ignore[attr-defined]
    with pytest.raises(DataError):
        model.fold_in_user(np.array([0]), np.array([np.nan]))  # type: ignore[attr-defined]


def test_save_load_after_cold_start(fitted: tuple[Recommender, Interactions, SideInfo], tmp_path: Path) -> None:
    model, _, _ = fitted
    model.add_items({"text": genre_features(np.array([0]), 3), "image": genre_features(np.array([0]), 4, d=4)})  # type: ignore[attr-defined]
    model.fold_in_user(np.array([1, 3]))  # type: ignore[attr-defined]
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    users = np.arange(model.n_users_)  # type: ignore[attr-defined]
    np.testing.assert_allclose(loaded.score(users), model.score(users), rtol=1e-5, atol=1e-6)
    assert loaded.n_items_ == model.n_items_  # type: ignore[attr-defined]


def test_missing_modality_is_imputed(fitted: tuple[Recommender, Interactions, SideInfo]) -> None:
    """Cold items without an image (zero row, present False) are still ranked by their text."""
    model, train, side = fitted
    image = side.item_features["image"].copy()
    present = np.ones(N_ITEMS, dtype=bool)
    present[N_WARM:] = False
    image[N_WARM:] = 0.0
    side2 = SideInfo(
        item_features={"text": side.item_features["text"], "image": image},
        item_present={"image": present},
        user_features=side.user_features,
    )
    refit = model.clone().fit(train, side2)
    cold = np.arange(N_WARM, N_ITEMS)
    users = np.arange(N_USERS)
    s = refit.score(users, cold)
    assert np.isfinite(s).all()
    assert genre_margin(s, users, cold) > 0.02


@pytest.mark.parametrize(
    "make",
    [
        lambda: ItemKNN(k=10, similarity="pearson"),
        lambda: ItemKNN(k=10, implicit=True),
        lambda: KNNBaseline(k=10),
        lambda: EASE(reg=10.0),
        lambda: MostPopular(),
        lambda: BiasBaseline(),
    ],
    ids=["itemknn-rating", "itemknn-implicit", "knnbaseline", "ease", "mostpopular", "biasbaseline"],
)
def test_history_fold_in_scores_exactly_like_the_copied_user(make: Callable[[], Recommender]) -> None:
    """Models that score a user from their ratings alone give a folded-in copy the very same scores."""
    from ..conftest import make_interactions

    train = make_interactions(seed=6)
    model = make().fit(train)
    for u in (0, 7):
        row = train.matrix[u]
        new = model.fold_in_user(row.indices, row.data)  # type: ignore[attr-defined]
        np.testing.assert_allclose(model.score(new), model.score(np.array([u])), rtol=1e-5, atol=1e-5)


def test_user_based_knnbaseline_refuses_fold_in() -> None:
    from ..conftest import make_interactions

    model = KNNBaseline(k=5, user_based=True).fit(make_interactions(seed=6))
    with pytest.raises(ConfigError, match="item-based"):
        model.fold_in_user([1, 2])


@pytest.mark.parametrize(
    "make",
    [
        lambda: ItemKNN(k=10, similarity="pearson"),
        lambda: ItemKNN(k=10, implicit=True),
        lambda: KNNBaseline(k=10),
        lambda: EASE(reg=10.0),
        lambda: ActivityCEASE(reg=10.0, side_weight=0.0, sparse_max=4, sparse_user_power=1.0),
        lambda: ContentKRR(),
        lambda: ContentKNN(weighting="centered"),
        lambda: MostPopular(),
        lambda: Random(seed=3),
    ],
    ids=["itemknn-rating", "itemknn-implicit", "knnbaseline", "ease", "activity", "krr", "content", "pop", "random"],
)
def test_batch_fold_in_is_fold_in_of_each_in_turn(make: Callable[[], Recommender]) -> None:
    """``fold_in_users`` (declared ``can_batch_fold_in``) leaves the state ``fold_in_user`` of each leaves."""
    from ..conftest import make_interactions

    train = make_interactions(seed=6)  # ratings: the rating-mode k-NN models learn from their deviations
    side = SideInfo(item_features={"text": genre_features(genre_of(np.arange(train.n_items)), 3)})
    one, many = make().fit(train, side), make().fit(train, side)
    assert type(one).declaration().can_batch_fold_in
    histories = [
        (np.array([3, 1, 3]), np.array([4.0, 2.0, 1.0])),
        (np.array([], np.int64), None),
        (np.array([5]), None),
    ]
    placed = [int(one.fold_in_user(i, v)[0]) for i, v in histories]  # type: ignore[attr-defined]
    np.testing.assert_array_equal(many.fold_in_users(histories), placed)  # type: ignore[attr-defined]
    a, b = one._get_state(), many._get_state()
    assert sorted(a) == sorted(b)
    for key in a:
        if sp.issparse(a[key]):
            assert (sp.csr_matrix(a[key]) != sp.csr_matrix(b[key])).nnz == 0, key
        else:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    np.testing.assert_array_equal(many.score(np.array(placed)), one.score(np.array(placed)))
    assert len(many.fold_in_users([])) == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("row", [None, 0, 3, 6])
def test_append_seen_row_matches_stacking(row):
    """The one-pass row replacement equals slicing and stacking, for the first, a middle, the last and a new row,
    with duplicate and unsorted items in the new row, and leaves the input matrix untouched."""
    from fusionrec.models.coldstart import append_seen_row

    seen = sp.random(7, 20, density=0.3, format="csr", dtype=np.float32, random_state=4)
    before = seen.copy()
    items, values = np.array([9, 2, 9, 15]), np.array([1.0, 2.0, 0.5, 3.0])
    new = sp.csr_matrix((values.astype(np.float32), items, [0, 4]), shape=(1, 20))
    new.sum_duplicates()
    expect = sp.vstack([seen, new] if row is None else [seen[:row], new, seen[row + 1 :]], format="csr")
    got = append_seen_row(seen, items, values, row)
    assert got.shape == expect.shape
    np.testing.assert_array_equal(got.toarray(), expect.toarray())
    got.has_sorted_indices = False  # recompute: the flag must hold for real
    assert got.indices.tolist() == sp.csr_matrix(got.toarray()).indices.tolist()
    np.testing.assert_array_equal(seen.toarray(), before.toarray())
