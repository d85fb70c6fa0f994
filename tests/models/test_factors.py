"""The factor contract (fusionrec.models.factors): which models are factor / cold-start models, the fold-in maths."""

from __future__ import annotations

import numpy as np
import pytest

from fusionrec.errors import ConfigError, DataError
from fusionrec.models import available_models, get_model_class
from fusionrec.models.coldstart import UserColdStart
from fusionrec.models.factors import FactorModel, Factors, confidence_fold_in, ridge_fold_in
from fusionrec.models.mf.als import ALS
from fusionrec.models.mf.nmf import NMF
from fusionrec.models.mf.svd import SVD

from ..conftest import make_interactions

ENSEMBLES = {"WeightedBlend", "Stacking", "ReciprocalRankFusion", "Switching"}
FACTOR_MODELS = {
    "ALS", "BPR", "SVD", "SVDpp", "NMF", "PMF", "BayesianFM", "BiasBaseline", "VBPR", "HybridMF", "GraphFusion",
    "DeepFusion", "SocialMF", "SoRec", "TrustSVD", "SocialBPR", "SocialLightGCN", "DPMF", "FedMF",
}  # fmt: skip
#: TimeSVD++ scores at a time, DeepFusion's users are an embedding table, UserKNN scores from fitted neighbour lists
NO_USER_COLD_START = {"TimeSVDpp", "DeepFusion", "UserKNN"}


@pytest.mark.parametrize("name", sorted(set(available_models()) - ENSEMBLES))
def test_every_model_declares_its_contracts(name: str) -> None:
    model = get_model_class(name)()
    assert isinstance(model, FactorModel) == (name in FACTOR_MODELS)
    assert isinstance(model, UserColdStart) == (name not in NO_USER_COLD_START)


def test_augmented_columns_only_when_present() -> None:
    user = np.arange(6, dtype=np.float32).reshape(3, 2)
    item = np.ones((4, 2), np.float32)
    assert Factors(user, item).augmented()[0].shape == (3, 2)
    f = Factors(user, item, global_bias=2.5)
    U, V = f.augmented()
    assert U.shape == (3, 3) and V.shape == (4, 3)
    np.testing.assert_allclose(U @ V.T, user @ item.T + 2.5)
    f = Factors(user, item, np.array([1, 2, 3], np.float32), np.array([0, 1, 0, 1], np.float32), 0.5)
    U, V = f.augmented()
    assert U.shape == (3, 4)
    np.testing.assert_allclose(U @ V.T, f.scores(np.arange(3)), rtol=1e-6)


def test_confidence_fold_in_is_als_exact_solve() -> None:
    train = make_interactions(seed=2, explicit=False)
    model = ALS(n_factors=4, iterations=3, alpha=3.0, regularization=0.2, seed=0).fit(train)
    row = train.matrix[5]
    expected = model.fold_in(row)[0]
    got = confidence_fold_in(model.item_factors_, row.indices, row.data, reg=0.2, alpha=3.0)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_ridge_fold_in_solves_the_normal_equations() -> None:
    rng = np.random.default_rng(0)
    item = rng.normal(size=(10, 3)).astype(np.float32)
    ib = rng.normal(size=10).astype(np.float32)
    f = Factors(np.zeros((1, 3), np.float32), item, np.zeros(1, np.float32), ib, 3.0)
    items = np.array([1, 4, 6, 8, 9])
    r = np.array([4.0, 2.0, 5.0, 3.0, 1.0])
    vec, bias = ridge_fold_in(f, items, r, reg=0.5)
    X = np.hstack([item[items], np.ones((5, 1))]).astype(np.float64)
    w = np.linalg.solve(X.T @ X + 0.5 * np.eye(4), X.T @ (r - 3.0 - ib[items]))
    np.testing.assert_allclose(np.append(vec, bias), w, rtol=1e-4, atol=1e-5)
    vec, bias = ridge_fold_in(f, items, r, reg=0.5, fit_user_bias=False, nonnegative=True)
    assert bias == 0.0 and (vec >= 0).all()
    assert ridge_fold_in(f, items[:0], r[:0], reg=0.5)[0].tolist() == [0.0, 0.0, 0.0]


def test_nmf_fold_in_stays_non_negative() -> None:
    train = make_interactions(seed=1)
    model = NMF(n_factors=4, n_epochs=10).fit(train)
    u = model.fold_in_user([0, 1, 2, 3], np.array([5.0, 1.0, 4.0, 2.0]))[0]
    assert (model.user_vectors_[u] >= 0).all()


def test_add_item_vectors_checks_shapes_and_biases() -> None:
    train = make_interactions(seed=1, explicit=False)
    als = ALS(n_factors=3, iterations=2).fit(train)
    with pytest.raises(DataError, match=r"\[m, 3\]"):
        als.add_item_vectors(np.zeros((1, 4)))
    with pytest.raises(ConfigError, match="no item biases"):
        als.add_item_vectors(np.zeros((1, 3)), np.ones(1))
    svd = SVD(n_factors=3, n_epochs=2).fit(make_interactions(seed=1))
    new = svd.add_item_vectors(svd.item_factors_[:2], svd.item_bias_[:2])
    np.testing.assert_allclose(svd.predict(np.array([0, 0]), new), svd.predict(np.array([0, 0]), np.array([0, 1])))


def test_time_svdpp_is_not_a_factor_model() -> None:
    model = get_model_class("TimeSVDpp")()
    assert not isinstance(model, FactorModel) and not isinstance(model, UserColdStart)
