"""Social rating models (issue 12): SocialMF and SoRec, the trust-link rule and the cold-user rule."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from fusionrec.data import Interactions
from fusionrec.data.idmap import IdMap
from fusionrec.errors import ConfigError, DataError
from fusionrec.models import SideInfo, make_model
from fusionrec.models.mf.svd import SVD
from fusionrec.models.social import SocialMF, SoRec, TrustSVD, clean_trust

from ..conftest import make_interactions
from .contract import RecommenderContract


def random_trust(n: int, seed: int = 0, degree: int = 4) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(n), degree)
    cols = rng.integers(0, n, size=len(rows))
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))


class TestSocialMFContract(RecommenderContract):
    def make_model(self) -> SocialMF:
        return SocialMF(n_epochs=10, seed=1)

    def make_side(self, train: Interactions) -> SideInfo:
        return SideInfo(social=random_trust(train.n_users))


class TestSoRecContract(RecommenderContract):
    def make_model(self) -> SoRec:
        return SoRec(n_epochs=10, seed=1)

    def make_side(self, train: Interactions) -> SideInfo:
        return SideInfo(social=random_trust(train.n_users))


class TestTrustSVDContract(RecommenderContract):
    def make_model(self) -> TrustSVD:
        return TrustSVD(n_epochs=10, seed=1)

    def make_side(self, train: Interactions) -> SideInfo:
        return SideInfo(social=random_trust(train.n_users))


@pytest.mark.parametrize("name", ["SocialMF", "SoRec", "TrustSVD"])
def test_registered_rating_models_need_trust(name: str) -> None:
    model = make_model(name, n_epochs=2)
    assert model.predicts_ratings and model.uses_side_info
    train = make_interactions()
    with pytest.raises(ConfigError, match="needs trust links"):
        model.fit(train)
    with pytest.raises(ConfigError, match="needs trust links"):
        model.fit(train, SideInfo())
    with pytest.raises(ConfigError, match="reg_social"):
        make_model(name, reg_social=-1.0)


@pytest.mark.parametrize("cls", [SocialMF, SoRec])
def test_zero_social_weight_is_svd(cls: type[SocialMF]) -> None:
    train = make_interactions()
    side = SideInfo(social=random_trust(train.n_users))
    params = {"n_factors": 5, "n_epochs": 5, "lr_all": 0.01, "reg_all": 0.05, "seed": 3}
    social = cls(reg_social=0.0, **params).fit(train, side)
    svd = SVD(**params).fit(train)
    users = np.arange(train.n_users)
    np.testing.assert_allclose(social.score(users), svd.score(users), rtol=1e-6, atol=1e-6)


def test_trust_rule_self_links_duplicates_zeros_and_errors() -> None:
    rows = np.array([0, 0, 0, 1, 1, 2, 2])
    cols = np.array([0, 1, 1, 2, 2, 0, 1])
    vals = np.array([1.0, 0.5, 2.0, 1.0, 1.0, 0.0, 3.0])
    raw = sp.coo_matrix((vals, (rows, cols)), shape=(3, 3))  # duplicates kept un-summed in COO
    T = clean_trust(raw, 3)
    assert T.toarray().tolist() == [[0, 2, 0], [0, 0, 1], [0, 3, 0]]  # self-link, zero dropped; max of duplicates
    with pytest.raises(DataError, match="3 x 3"):
        clean_trust(sp.csr_matrix((4, 4)), 3)
    with pytest.raises(DataError, match="negative"):
        clean_trust(sp.csr_matrix(np.array([[0, -1.0], [1.0, 0]])), 2)
    with pytest.raises(DataError, match="non-finite"):
        clean_trust(sp.csr_matrix(np.array([[0, np.nan], [1.0, 0]])), 2)
    with pytest.raises(DataError, match="negative"):
        SocialMF(n_epochs=1).fit(
            make_interactions(n_users=2, n_items=5), SideInfo(social=np.array([[0, -1.0], [1, 0]]))
        )


@pytest.mark.parametrize("cls", [SocialMF, SoRec, TrustSVD])
def test_cold_user_with_friends_gets_their_mean_vector(cls: type[SocialMF]) -> None:
    base = make_interactions(n_users=30)
    users = np.array(base.user_ids.ids)
    ids = IdMap([*users.tolist(), "newcomer", "loner"])
    rows = base.row_indices()
    train = Interactions.from_arrays(
        users[rows], np.array(base.item_ids.ids)[base.matrix.indices], base.matrix.data, user_ids=ids,
        item_ids=base.item_ids,
    )  # fmt: skip
    n = train.n_users
    social = random_trust(n).tolil()
    social[n - 2, :] = 0
    social[n - 2, [0, 1, 2]] = [1.0, 1.0, 2.0]
    social[n - 1, :] = 0
    model = cls(n_epochs=5, seed=0).fit(train, SideInfo(social=sp.csr_matrix(social)))
    P = model.user_vectors_
    np.testing.assert_allclose(P[n - 2], (P[0] + P[1] + 2 * P[2]) / 4, rtol=1e-5, atol=1e-6)
    assert model.social_users_[n - 2] and not model.social_users_[n - 1]
    s = model.score(np.array([n - 2, n - 1]))
    expected = np.clip(model.global_mean_ + model.item_bias_ + model.item_factors_ @ P[n - 2], 1, 5)
    np.testing.assert_allclose(s[0], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(s[1], np.clip(model.global_mean_ + model.item_bias_, 1, 5), rtol=1e-5, atol=1e-5)


def test_socialmf_pulls_users_towards_trusted_ones() -> None:
    train = make_interactions()
    side = SideInfo(social=random_trust(train.n_users))
    T = clean_trust(side.social, train.n_users)
    from fusionrec.models.social import row_normalise

    Tn = row_normalise(T)

    def gap(m: SocialMF) -> float:
        P = m.user_vectors_.astype(np.float64)
        return float(np.linalg.norm(P - Tn @ P))

    weak = SocialMF(n_epochs=10, reg_social=0.0, seed=0).fit(train, side)
    strong = SocialMF(n_epochs=10, reg_social=5.0, seed=0).fit(train, side)
    assert gap(strong) < 0.7 * gap(weak)


def test_trustsvd_uses_trusted_users_implicitly() -> None:
    train = make_interactions()
    side = SideInfo(social=random_trust(train.n_users))
    model = TrustSVD(n_epochs=5, seed=0).fit(train, side)
    assert model.trust_factors_.shape == (train.n_users, 10)
    assert model.implicit_item_factors_.shape == (train.n_items, 10)
    other = TrustSVD(n_epochs=5, seed=0).fit(train, SideInfo(social=random_trust(train.n_users, seed=9)))
    assert not np.allclose(model.user_vectors_, other.user_vectors_)  # the links change the user vectors
    longer = TrustSVD(n_epochs=40, seed=0).fit(train, side)
    assert longer.train_rmse_ < 0.9 * model.train_rmse_  # it learns
