"""Social models (issue 12): SocialMF, SoRec, TrustSVD, SocialBPR, SocialLightGCN; the link, cold-user and fold-in rules."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from fusionrec.data import Interactions
from fusionrec.data.idmap import IdMap
from fusionrec.errors import ConfigError, DataError
from fusionrec.models import SideInfo, make_model
from fusionrec.models.baselines import MostPopular
from fusionrec.models.coldstart import check_friends
from fusionrec.models.graph import GraphFusion
from fusionrec.models.mf.bpr import BPR
from fusionrec.models.mf.svd import SVD
from fusionrec.models.social import SocialMF, SoRec, TrustSVD, clean_trust
from fusionrec.models.social_graph import SocialBPR, SocialLightGCN, social_pull_matrix

from ..conftest import make_interactions
from .contract import RecommenderContract


def random_trust(n: int, seed: int = 0, degree: int = 4) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(n), degree)
    cols = rng.integers(0, n, size=len(rows))
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))


class TestSocialMFContract(RecommenderContract):
    def make_model(self) -> SocialMF:
        return SocialMF(epochs=10, seed=1)

    def make_side(self, train: Interactions) -> SideInfo:
        return SideInfo(social=random_trust(train.n_users))


class TestSoRecContract(RecommenderContract):
    def make_model(self) -> SoRec:
        return SoRec(epochs=10, seed=1)

    def make_side(self, train: Interactions) -> SideInfo:
        return SideInfo(social=random_trust(train.n_users))


class TestTrustSVDContract(RecommenderContract):
    def make_model(self) -> TrustSVD:
        return TrustSVD(epochs=10, seed=1)

    def make_side(self, train: Interactions) -> SideInfo:
        return SideInfo(social=random_trust(train.n_users))


@pytest.mark.parametrize("name", ["SocialMF", "SoRec", "TrustSVD"])
def test_registered_rating_models_need_trust(name: str) -> None:
    model = make_model(name, epochs=2)
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
    params = {"n_factors": 5, "epochs": 5, "lr": 0.01, "reg": 0.05, "seed": 3}
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
        SocialMF(epochs=1).fit(make_interactions(n_users=2, n_items=5), SideInfo(social=np.array([[0, -1.0], [1, 0]])))


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
    model = cls(epochs=5, seed=0).fit(train, SideInfo(social=sp.csr_matrix(social)))
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

    weak = SocialMF(epochs=10, reg_social=0.0, seed=0).fit(train, side)
    strong = SocialMF(epochs=10, reg_social=5.0, seed=0).fit(train, side)
    assert gap(strong) < 0.7 * gap(weak)


def test_trustsvd_uses_trusted_users_implicitly() -> None:
    train = make_interactions()
    side = SideInfo(social=random_trust(train.n_users))
    model = TrustSVD(epochs=5, seed=0).fit(train, side)
    assert model.trust_factors_.shape == (train.n_users, 10)
    assert model.implicit_item_factors_.shape == (train.n_items, 10)
    other = TrustSVD(epochs=5, seed=0).fit(train, SideInfo(social=random_trust(train.n_users, seed=9)))
    assert not np.allclose(model.user_vectors_, other.user_vectors_)  # the links change the user vectors
    longer = TrustSVD(epochs=40, seed=0).fit(train, side)
    assert longer.train_rmse_ < 0.9 * model.train_rmse_  # it learns


# ---------------------------------------------------------------------------------------------------- implicit top-N
class TestSocialBPRContract(RecommenderContract):
    implicit = True

    def make_model(self) -> SocialBPR:
        return SocialBPR(n_factors=16, epochs=20, social_weight=0.1, seed=1)  # random links: a strong pull moves the
        # fitted vector away from what its history alone gives (0.3 top-10 overlap at 0.2)

    def make_side(self, train: Interactions) -> SideInfo:
        return SideInfo(social=random_trust(train.n_users))


class TestSocialLightGCNContract(RecommenderContract):
    implicit = True

    def make_model(self) -> SocialLightGCN:
        return SocialLightGCN(n_factors=16, epochs=8, batch_size=256, lr=0.01, seed=1)

    def make_side(self, train: Interactions) -> SideInfo:
        return SideInfo(social=random_trust(train.n_users))


@pytest.mark.parametrize("name", ["SocialBPR", "SocialLightGCN"])
def test_registered_implicit_models_need_trust(name: str) -> None:
    model = make_model(name, epochs=2)
    assert model.uses_side_info and not model.predicts_ratings
    train = make_interactions(explicit=False)
    with pytest.raises(ConfigError, match="needs trust links"):
        model.fit(train, SideInfo())
    with pytest.raises(ConfigError, match="social_weight"):
        make_model(name, social_weight=-0.1)
    with pytest.raises(DataError, match="negative"):
        model.fit(train, SideInfo(social=-random_trust(train.n_users)))


def test_zero_social_weight_is_the_base_model() -> None:
    train = make_interactions(explicit=False)
    side = SideInfo(social=random_trust(train.n_users))
    users = np.arange(train.n_users)
    bpr = BPR(n_factors=8, epochs=5, seed=2).fit(train)
    sbpr = SocialBPR(n_factors=8, epochs=5, seed=2, social_weight=0.0).fit(train, side)
    np.testing.assert_allclose(sbpr.score(users), bpr.score(users), rtol=1e-6, atol=1e-6)
    params = {"n_factors": 8, "epochs": 2, "batch_size": 256, "seed": 2}
    gcn = GraphFusion(modalities=[], **params).fit(train)
    sgcn = SocialLightGCN(social_weight=0.0, **params).fit(train, side)
    np.testing.assert_allclose(sgcn.score(users), gcn.score(users), rtol=1e-5, atol=1e-6)
    linked = SocialLightGCN(social_weight=1.0, **params).fit(train, side)
    assert not np.allclose(linked.score(users), gcn.score(users), atol=1e-4)  # the social edges take part


def test_social_bpr_pulls_users_towards_trusted_ones() -> None:
    train = make_interactions(explicit=False)
    side = SideInfo(social=random_trust(train.n_users))
    M = social_pull_matrix(clean_trust(side.social, train.n_users))

    def gap(weight: float) -> float:
        U = SocialBPR(n_factors=8, epochs=10, social_weight=weight, seed=0).fit(train, side).user_factors_
        return float(np.linalg.norm(M @ U.astype(np.float64)))

    assert gap(0.4) < 0.5 * gap(0.0)


def clustered(
    n_per: int = 30, n_items: int = 40, seed: int = 0, cold_user: bool = True
) -> tuple[Interactions, sp.csr_matrix]:
    """Two user groups, each interacting only within its item half; group A is twice as large and active (so
    popularity ranks A's items first); friends link within a group.  With ``cold_user``, a last user has links to
    group B and no interaction (also used by tests/test_serving_friends.py)."""
    rng = np.random.default_rng(seed)
    half = n_items // 2
    users, items = [], []
    groups = [(0, 2 * n_per, 0, 8), (2 * n_per, 3 * n_per, half, 4)]  # (first user, end, first item, per user)
    for lo, hi, first, per in groups:
        for u in range(lo, hi):
            for i in rng.choice(half, per, replace=False):
                users.append(f"u{u}")
                items.append(f"i{first + i}")
    n = 3 * n_per + int(cold_user)
    ids = IdMap([f"u{u}" for u in range(n)])
    train = Interactions.from_arrays(
        np.array(users), np.array(items), None, user_ids=ids, item_ids=IdMap([f"i{i}" for i in range(n_items)]),
        explicit=False,
    )  # fmt: skip
    rows, cols = [], []
    for lo, hi, _, _ in groups:
        for u in range(lo, hi):
            rows += [u, u]
            cols += rng.choice(np.arange(lo, hi), 2, replace=False).tolist()
    if cold_user:
        rows += [n - 1] * 3
        cols += [2 * n_per, 2 * n_per + 1, 2 * n_per + 2]
    return train, sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))


def share_of_b(model: Any, user: int, n_items: int = 40) -> float:
    items, _ = model.recommend(np.array([user]), k=10)
    return float(np.mean(items[0] >= n_items // 2))


@pytest.mark.parametrize(
    "model",
    [
        SocialBPR(n_factors=8, epochs=30, seed=0),
        SocialLightGCN(n_factors=8, epochs=20, batch_size=256, lr=0.02, seed=0),
    ],
    ids=["SocialBPR", "SocialLightGCN"],
)
def test_new_user_with_friends_gets_their_cluster(model: Any) -> None:
    train, social = clustered()
    n = train.n_users
    model.fit(train, SideInfo(social=social))
    pop = MostPopular().fit(train)
    assert share_of_b(pop, n - 1) == 0.0  # popularity recommends group A's items
    # at fit time: the user with links and no interaction is placed through the friends
    assert model.social_users_[n - 1]
    assert share_of_b(model, n - 1) >= 0.8
    # after the fit: a new user with the same friends and no history
    placed = model.fold_in_user([], friends=[n - 4, n - 3, n - 2])
    assert placed.tolist() == [n] and model.n_users_ == n + 1
    assert share_of_b(model, n) >= 0.8
    np.testing.assert_allclose(model.user_factors_[n], model.user_factors_[[n - 4, n - 3, n - 2]].mean(0), atol=1e-5)
    # friends with no placement (none) give the base placement; a history plus friends blends the two
    other = model.fold_in_user([0, 1], friends=[n - 4, n - 3])
    assert other.tolist() == [n + 1]
    np.testing.assert_array_equal(model.seen_[n + 1].indices, [0, 1])


@pytest.mark.parametrize("cls", [SocialMF, SoRec, TrustSVD])
def test_rating_models_fold_in_friends(cls: type[SocialMF]) -> None:
    train = make_interactions()
    model = cls(epochs=5, seed=0).fit(train, SideInfo(social=random_trust(train.n_users)))
    n = train.n_users
    placed = model.fold_in_user([], friends=[0, 1, 1, 2], friend_weights=[1.0, 0.5, 1.0, 2.0])
    assert placed.tolist() == [n]
    P = model.user_vectors_
    np.testing.assert_allclose(P[n], (P[0] + P[1] + 2 * P[2]) / 4, rtol=1e-5, atol=1e-6)  # duplicates: max
    assert model.user_known_[n] and model.user_bias_[n] == 0
    s = model.score(np.array([n]))[0]
    np.testing.assert_allclose(
        s, np.clip(model.global_mean_ + model.item_bias_ + model.item_factors_ @ P[n], 1, 5), rtol=1e-5, atol=1e-5
    )
    # a history with friends: between the history's own fold-in and the friends' mean
    row = train.matrix[5]
    alone = model.fold_in_user(row.indices, row.data)[0]
    both = model.fold_in_user(row.indices, row.data, friends=[0, 1, 2])[0]
    a = 3 / (3 + len(row.indices))
    mean = P[[0, 1, 2]].mean(0)
    np.testing.assert_allclose(model.user_vectors_[both], (1 - a) * model.user_vectors_[alone] + a * mean, atol=1e-5)


def test_friend_links_bad_input() -> None:
    assert [x.tolist() for x in check_friends([3, 1, 3, 2], [1.0, 2.0, 4.0, 0.0], 5)] == [[1, 3], [2.0, 4.0]]
    assert check_friends([0, 1], None, 5, user=1)[0].tolist() == [0]  # self-link dropped
    with pytest.raises(DataError, match="known users"):
        check_friends([7], None, 5)
    with pytest.raises(DataError, match="known users"):
        check_friends([-1], None, 5)
    with pytest.raises(DataError, match="non-negative"):
        check_friends([1], [-1.0], 5)
    with pytest.raises(DataError, match="non-negative"):
        check_friends([1], [np.nan], 5)
    with pytest.raises(DataError, match="one entry per friend"):
        check_friends([1, 2], [1.0], 5)
    train = make_interactions(explicit=False)
    model = SocialBPR(n_factors=4, epochs=2).fit(train, SideInfo(social=random_trust(train.n_users)))
    with pytest.raises(DataError, match="known users"):
        model.fold_in_user([], friends=[train.n_users])
    with pytest.raises(ConfigError, match="no user features"):
        model.fold_in_user([], friends=[0], user_features={"age": np.ones(1)})
    with pytest.raises(DataError, match="aligned"):
        model.fit(train, SideInfo(social=sp.csr_matrix((3, 3))))


def test_trustsvd_weighted_regularisation_and_trust_values() -> None:
    train = make_interactions()
    side = SideInfo(social=random_trust(train.n_users))
    params = {"epochs": 20, "reg": 0.5, "seed": 0}
    weighted = TrustSVD(**params).fit(train, side)
    plain = TrustSVD(weighted_reg=False, **params).fit(train, side)
    # per-entity weights |I_u|^-1/2 etc. are below 1: the same reg shrinks less than plain L2
    assert np.linalg.norm(weighted.item_factors_) > np.linalg.norm(plain.item_factors_)
    assert weighted.train_rmse_ < plain.train_rmse_
    scaled = TrustSVD(degree_scaled_trust=True, **params).fit(train, side)
    assert not np.allclose(scaled.trust_factors_, weighted.trust_factors_)
    with pytest.raises(ConfigError, match="weighted_reg"):
        make_model("TrustSVD", weighted_reg="yes")


@pytest.mark.parametrize("cls", [SocialMF, SoRec, TrustSVD])
def test_old_parameter_names_still_work_with_a_future_warning(cls: type) -> None:
    with pytest.warns(FutureWarning, match="renamed"):
        model = cls(n_epochs=3, lr_all=0.01, reg_all=0.1)
    assert (model.epochs, model.lr, model.reg) == (3, 0.01, 0.1)
