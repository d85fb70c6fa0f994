from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from fusionrec.data import Interactions
from fusionrec.errors import ConfigError, DataError
from fusionrec.models.baselines import BiasBaseline
from fusionrec.models.knn import ItemKNN, KNNBaseline, UserKNN, bm25_weight, neighbour_matrix, tfidf_weight

from ..conftest import make_interactions
from .contract import RecommenderContract


# ---------------------------------------------------------------------- contract
class TestItemKNN(RecommenderContract):
    seeded = False

    def make_model(self) -> ItemKNN:
        return ItemKNN(k=10, similarity="pearson", shrinkage=10.0)


class TestItemKNNImplicit(RecommenderContract):
    seeded = False
    implicit = True

    def make_model(self) -> ItemKNN:
        return ItemKNN(k=10)


class TestItemKNNImplicitFlag(RecommenderContract):
    seeded = False

    def make_model(self) -> ItemKNN:
        return ItemKNN(k=10, implicit=True, similarity="adjusted_cosine")


class TestItemKNNRated(RecommenderContract):
    seeded = False

    def make_model(self) -> ItemKNN:
        return ItemKNN(k=10, similarity="pearson_baseline", shrinkage=5.0, neighbourhood="rated", max_neighbors=15)


class TestItemKNNBM25(RecommenderContract):
    seeded = False
    implicit = True

    def make_model(self) -> ItemKNN:
        return ItemKNN(k=10, weighting="bm25")


class TestUserKNN(RecommenderContract):
    seeded = False

    def make_model(self) -> UserKNN:
        return UserKNN(k=10, similarity="adjusted_cosine")


class TestUserKNNImplicit(RecommenderContract):
    seeded = False
    implicit = True

    def make_model(self) -> UserKNN:
        return UserKNN(k=10, weighting="tfidf")


class TestKNNBaseline(RecommenderContract):
    seeded = False

    def make_model(self) -> KNNBaseline:
        return KNNBaseline(k=10, shrinkage=5.0)


class TestKNNBaselineUserBased(RecommenderContract):
    seeded = False

    def make_model(self) -> KNNBaseline:
        return KNNBaseline(k=10, shrinkage=5.0, user_based=True, max_neighbors=20)


# ---------------------------------------------------------------------- dense references
def _tiny(seed: int = 0, n_rows: int = 9, n_cols: int = 12, density: float = 0.55) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    mask = rng.random((n_rows, n_cols)) < density
    vals = rng.integers(1, 6, size=(n_rows, n_cols)).astype(float)
    return sp.csr_matrix(np.where(mask, vals, 0.0))


def _reference_similarity(dense: np.ndarray, mask: np.ndarray, name: str, shrinkage: float, min_support: int):
    n = dense.shape[0]
    out = np.zeros((n, n))
    for a in range(n):
        for b in range(n):
            if a == b:
                continue
            c = mask[a] & mask[b]
            nc = int(c.sum())
            if nc < max(min_support, 1):
                continue
            if name == "dot":
                s = dense[a] @ dense[b]
            elif name == "cosine":
                den = np.linalg.norm(dense[a]) * np.linalg.norm(dense[b])
                s = dense[a] @ dense[b] / den if den > 0 else 0.0
            elif name == "pearson":
                x, y = dense[a, c], dense[b, c]
                x, y = x - x.mean(), y - y.mean()
                den = np.sqrt((x * x).sum() * (y * y).sum())
                s = (x * y).sum() / den if den > 0 else 0.0
            else:  # cosine over the common support (adjusted_cosine / pearson_baseline inputs)
                x, y = dense[a, c], dense[b, c]
                den = np.sqrt((x * x).sum() * (y * y).sum())
                s = (x * y).sum() / den if den > 0 else 0.0
            sup = nc - 1 if name == "pearson_baseline" else nc
            if shrinkage > 0:
                s *= sup / (sup + shrinkage)
            out[a, b] = s
    return out


@pytest.mark.parametrize("name", ["cosine", "pearson", "adjusted_cosine", "pearson_baseline", "dot"])
@pytest.mark.parametrize("shrinkage", [0.0, 3.0])
def test_similarity_matches_dense_reference(name: str, shrinkage: float) -> None:
    m = _tiny(seed=1)
    if name in ("adjusted_cosine", "pearson_baseline"):
        # pre-centred values as the models pass them (explicit zeros kept in the pattern)
        m = m.copy()
        m.data = m.data - 2.9
    dense = m.toarray()
    mask = np.zeros_like(dense, dtype=bool)
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    mask[rows, m.indices] = True
    ref = _reference_similarity(dense, mask, name, shrinkage, min_support=2)
    got = neighbour_matrix(m, name, shrinkage=shrinkage, min_support=2, k=None).toarray()
    np.testing.assert_allclose(got, np.where(ref > 0, ref, 0.0), atol=1e-6)


def test_topk_bound_and_largest() -> None:
    m = _tiny(seed=2, n_rows=30, n_cols=20, density=0.5)
    full = neighbour_matrix(m, "cosine", k=None).toarray()
    top = neighbour_matrix(m, "cosine", k=4)
    assert np.diff(top.indptr).max() <= 4
    dense = top.toarray()
    for a in range(30):
        kept = dense[a][dense[a] > 0]
        expected = np.sort(full[a][full[a] > 0])[::-1][:4]
        np.testing.assert_allclose(np.sort(kept)[::-1], expected, atol=1e-6)


def test_block_processing_equals_single_block(monkeypatch: pytest.MonkeyPatch) -> None:
    import fusionrec.models.knn as knn

    m = _tiny(seed=3, n_rows=25, n_cols=15)
    one = neighbour_matrix(m, "pearson", shrinkage=2.0, k=5).toarray()
    monkeypatch.setattr(knn, "_BLOCK_CELLS", 3 * 5)  # blocks of 3 rows of k = 5
    many = neighbour_matrix(m, "pearson", shrinkage=2.0, k=5).toarray()
    np.testing.assert_array_equal(one, many)


def test_weightings_match_formulas() -> None:
    m = _tiny(seed=4)
    d = m.toarray()
    n = d.shape[0]
    df = (d > 0).sum(0)
    idf = np.log(n) - np.log1p(df)
    np.testing.assert_allclose(tfidf_weight(m).toarray(), np.sqrt(d) * idf * (d > 0), atol=1e-12)
    k1, b = 1.2, 0.75
    length = (1 - b) + b * d.sum(1) / d.sum(1).mean()
    ref = np.where(d > 0, d * (k1 + 1) / (k1 * length[:, None] + d) * idf, 0.0)
    np.testing.assert_allclose(bm25_weight(m, k1, b).toarray(), ref, atol=1e-12)


# ---------------------------------------------------------------------- KNNBaseline reference
def _knnbaseline_reference(train: Interactions, k: int, shrinkage: float, min_k: int, users, items) -> np.ndarray:
    base = BiasBaseline(reg_user=15.0, reg_item=10.0, epochs=10).fit(train)
    r = train.matrix.toarray().astype(np.float64)
    known = np.zeros(r.shape, dtype=bool)
    rows = train.row_indices()
    known[rows, train.matrix.indices] = True
    b = base.global_mean_ + base.user_bias_[:, None].astype(float) + base.item_bias_[None, :].astype(float)
    e = np.where(known, r - b, 0.0)
    n_items = r.shape[1]
    sim = np.zeros((n_items, n_items))
    for i in range(n_items):
        for j in range(n_items):
            c = known[:, i] & known[:, j]
            nc = c.sum()
            if i == j or nc < 1:
                continue
            den = np.sqrt((e[c, i] ** 2).sum() * (e[c, j] ** 2).sum())
            if den > 0:
                sim[i, j] = (e[c, i] * e[c, j]).sum() / den * (nc - 1) / (nc - 1 + shrinkage)
    out = []
    for u, i in zip(users, items, strict=True):
        rated = np.flatnonzero(known[u])
        rated = rated[rated != i]
        cand = sorted(((sim[i, j], j) for j in rated), key=lambda t: (-t[0], t[1]))[:k]
        num = den = 0.0
        used = 0
        for s, j in cand:
            if s > 0:
                num += s * e[u, j]
                den += s
                used += 1
        est = b[u, i] + (num / den if used >= min_k and den > 0 else 0.0)
        out.append(np.clip(est, r[known].min(), r[known].max()))
    return np.asarray(out)


@pytest.mark.parametrize("k,min_k", [(5, 1), (40, 1), (3, 3)])
def test_knnbaseline_matches_dense_reference(k: int, min_k: int) -> None:
    train = make_interactions(n_users=30, n_items=15, density=0.3, seed=5)
    rng = np.random.default_rng(0)
    known = train.matrix.toarray() > 0
    uu, ii = np.nonzero(~known)
    pick = rng.choice(len(uu), size=min(60, len(uu)), replace=False)
    users, items = uu[pick], ii[pick]
    model = KNNBaseline(k=k, min_k=min_k, shrinkage=4.0).fit(train)
    ref = _knnbaseline_reference(train, k, 4.0, min_k, users, items)
    np.testing.assert_allclose(model.predict(users, items), ref, atol=1e-4)


def test_knnbaseline_max_neighbors_bounds_storage() -> None:
    train = make_interactions(seed=6)
    model = KNNBaseline(max_neighbors=7, shrinkage=1.0).fit(train)
    assert np.diff(model.neighbours_.indptr).max() <= 7
    assert (model.neighbours_.data > 0).all()


# ---------------------------------------------------------------------- rating-mode ItemKNN reference
def test_itemknn_rating_prediction_matches_reference() -> None:
    train = make_interactions(n_users=30, n_items=15, density=0.35, seed=7)
    model = ItemKNN(k=4, similarity="cosine").fit(train)
    W = model.neighbours_.toarray()
    r = train.matrix.toarray()
    known = r > 0
    mu_i = np.where(known.sum(0) > 0, r.sum(0) / np.maximum(known.sum(0), 1), r[known].mean())
    users, items = np.nonzero(~known)
    got = model.predict(users, items)
    for g, u, i in zip(got, users, items, strict=True):
        nb = np.flatnonzero((W[i] > 0) & known[u])
        est = mu_i[i]
        if len(nb):
            est += (W[i, nb] * (r[u, nb] - mu_i[nb])).sum() / W[i, nb].sum()
        assert g == pytest.approx(np.clip(est, 1, 5), abs=1e-4)


@pytest.mark.parametrize("user_based", [False, True])
def test_rated_neighbourhood_matches_reference(user_based: bool) -> None:
    # KNNWithMeans semantics: the k most similar among the raters / rated items, positive sims
    train = make_interactions(n_users=30, n_items=15, density=0.35, seed=13)
    cls = UserKNN if user_based else ItemKNN
    k = 3
    model = cls(k=k, similarity="pearson", neighbourhood="rated").fit(train)
    r = train.matrix.toarray()
    known = r > 0
    if user_based:
        r, known = r.T, known.T  # rows: the side supplying values; columns: neighbours
    full = neighbour_matrix(sp.csr_matrix(r.T), "pearson", k=None).toarray()
    mu = known.sum(0)
    mu = np.where(mu > 0, r.sum(0) / np.maximum(mu, 1), r[known].mean())
    ys, xs = np.nonzero(~known)
    users, items = (xs, ys) if user_based else (ys, xs)
    got = model.predict(users, items)
    for g, y, x in zip(got, ys, xs, strict=True):
        cand = np.flatnonzero(known[y] & (full[x] > 0))
        cand = cand[np.lexsort((cand, -full[x, cand]))][:k]
        est = mu[x]
        if len(cand):
            est += (full[x, cand] * (r[y, cand] - mu[cand])).sum() / full[x, cand].sum()
        assert g == pytest.approx(np.clip(est, 1, 5), abs=1e-4)


def test_implicit_itemknn_scores_are_user_row_times_neighbours() -> None:
    train = make_interactions(seed=8, explicit=False)
    model = ItemKNN(k=5).fit(train)
    W = model.neighbours_.toarray()
    X = train.matrix.toarray()
    np.testing.assert_allclose(model.score(np.arange(4)), X[:4] @ W, rtol=1e-5, atol=1e-6)
    user = UserKNN(k=5).fit(train)
    Wu = user.neighbours_.toarray()
    np.testing.assert_allclose(user.score(np.arange(4)), Wu[:4] @ X, rtol=1e-5, atol=1e-6)


def test_implicit_flag_on_explicit_data() -> None:
    train = make_interactions(seed=9)
    model = ItemKNN(k=5, implicit=True).fit(train)
    assert model.implicit_mode_
    assert not ItemKNN(k=5).fit(train).implicit_mode_


def test_similar_items_from_neighbours() -> None:
    train = make_interactions(seed=10)
    model = ItemKNN(k=3).fit(train)
    items, sims = model.similar_items(np.array([0, 1]), k=5)
    assert items.shape == (2, 5)
    W = model.neighbours_.toarray()
    for row, i in enumerate([0, 1]):
        valid = items[row] >= 0
        assert valid.sum() <= 3
        np.testing.assert_allclose(sims[row][valid], W[i, items[row][valid]], rtol=1e-6)
    with pytest.raises(NotImplementedError):
        UserKNN(k=3).fit(train).similar_items(0)


def test_determinism() -> None:
    train = make_interactions(seed=11)
    for make in (lambda: ItemKNN(similarity="pearson"), lambda: KNNBaseline(), lambda: UserKNN(implicit=True)):
        a, b = make().fit(train), make().fit(train)
        assert (a.neighbours_ != b.neighbours_).nnz == 0
        np.testing.assert_array_equal(a.score(np.arange(6)), b.score(np.arange(6)))


@pytest.mark.parametrize(
    "model",
    [
        ItemKNN(similarity="jaccard"),
        ItemKNN(k=0),
        ItemKNN(shrinkage=-1.0),
        ItemKNN(weighting="bm"),
        ItemKNN(neighbourhood="all"),
        ItemKNN(neighbourhood="rated", max_neighbors=0),
        UserKNN(min_support=-1),
        KNNBaseline(max_neighbors=0),
        KNNBaseline(reg_user=-1.0),
    ],
)
def test_bad_params_raise_config_error(model) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError):
        model.fit(make_interactions(seed=12))


def test_score_chunking_matches_single_call(monkeypatch: pytest.MonkeyPatch) -> None:
    import fusionrec.models.knn as knn

    model = KNNBaseline(k=5).fit(make_interactions(seed=15))
    whole = model.score(np.arange(7))
    monkeypatch.setattr(knn, "_SCORE_PAIRS", 50)  # one user per kernel call
    np.testing.assert_array_equal(model.score(np.arange(7)), whole)


def test_predict_checks_indices() -> None:
    model = KNNBaseline(k=5).fit(make_interactions(seed=14))
    with pytest.raises(ConfigError, match="out of range"):
        model.predict(np.array([0, model.n_users_]), np.array([0, 1]))
    with pytest.raises(ConfigError, match="out of range"):
        model.predict(np.array([0]), np.array([-1]))


@pytest.mark.slow
@pytest.mark.realdata
def test_knnbaseline_ml100k_u1_rmse(data_dir) -> None:  # type: ignore[no-untyped-def]
    from fusionrec.data.datasets.movielens import load_ml100k_fold

    split = load_ml100k_fold(data_dir / "ml-100k", 1)
    te = split.test
    users = te.row_indices()
    model = KNNBaseline().fit(split.train)
    pred = model.predict(users, te.matrix.indices)
    rmse = float(np.sqrt(np.mean((pred - te.matrix.data) ** 2)))
    # Surprise KNNBaseline(pearson_baseline, item-based) on u1: 0.9359
    assert abs(rmse - 0.9359) < 0.003


# ---------------------------------------------------------------------- declared state, renamed parameters
@pytest.mark.parametrize("user_based", [False, True])
def test_state_is_named_by_orientation_and_old_bundles_load(user_based: bool) -> None:
    train = make_interactions(seed=16)
    model = KNNBaseline(k=5, user_based=user_based).fit(train)
    side, other = ("user", "item") if user_based else ("item", "user")
    state = model._get_state()
    assert f"{side}_neighbours_" in state and f"{other}_residuals_" in state
    assert f"{other}_neighbours_" not in state and f"{side}_residuals_" not in state
    assert model.neighbours_ is state[f"{side}_neighbours_"]
    # a bundle written before the split held neighbours_ / residuals_
    old = {k: v for k, v in state.items() if not k.endswith(("_neighbours_", "_residuals_"))}
    old.update(neighbours_=model.neighbours_, residuals_=model.residuals_)
    loaded = KNNBaseline(k=5, user_based=user_based)
    loaded._set_state(old)
    np.testing.assert_array_equal(loaded.score(np.arange(6)), model.score(np.arange(6)))
    # a refit on the other side leaves no matrix of the first
    model.set_params(user_based=not user_based).fit(train)
    assert f"{side}_neighbours_" not in model._get_state() and f"{other}_neighbours_" in model._get_state()


def test_implicit_mode_keeps_no_residuals() -> None:
    model = ItemKNN(k=5).fit(make_interactions(seed=16, explicit=False))
    assert not any(k.endswith("_residuals_") for k in model._get_state())
    placed = model.fold_in_user([0, 3])
    assert model.seen_[placed[0]].nnz == 2


@pytest.mark.parametrize("cls", [ItemKNN, UserKNN, KNNBaseline])
def test_n_epochs_is_renamed_epochs(cls) -> None:  # type: ignore[no-untyped-def]
    with pytest.warns(FutureWarning, match="'n_epochs' was renamed 'epochs'"):
        model = cls(n_epochs=3, similarity="pearson_baseline")
    assert model.epochs == 3 and "n_epochs" not in model.get_params()
    with pytest.warns(FutureWarning):
        assert model.clone(n_epochs=4).epochs == 4


@pytest.mark.parametrize("similarity", ["pearson", "adjusted_cosine", "pearson_baseline"])
def test_centred_similarities_refuse_all_equal_values(similarity: str) -> None:
    """On implicit data (every value 1) a centred similarity is 0 for every pair, so every score would collapse:
    refused with what to use instead; BM25/TF-IDF weights make the values differ, so pearson then works."""
    train = make_interactions(seed=17, explicit=False)
    for cls in (ItemKNN, UserKNN):
        with pytest.raises(ConfigError, match="similarity='cosine'"):
            cls(similarity=similarity).fit(train)
    scores = ItemKNN(similarity="pearson", weighting="bm25").fit(train).score(np.arange(5))
    assert np.std(scores) > 0
    assert np.std(ItemKNN(similarity=similarity).fit(make_interactions(seed=17)).score(np.arange(5))) > 0


def test_knnbaseline_refuses_implicit_data_and_takes_zero_penalties() -> None:
    with pytest.raises(DataError, match="implicit"):
        KNNBaseline().fit(make_interactions(seed=17, explicit=False))
    model = KNNBaseline(reg_user=0.0, reg_item=0.0).fit(make_interactions(seed=17))
    assert np.isfinite(model.score(model.fold_in_user([]))).all()
