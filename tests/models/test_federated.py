"""Federated matrix factorisation (fusionrec.models.federated.FedMF).

Checked: the model contract; federated training roughly matches its centralised twin (BPR) on a planted dataset;
the server receives item-sized arrays only (never a user vector); the Flower simulation gives the in-process
model (slow: it starts Ray); bad settings raise typed errors.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from fusionrec.data import Interactions
from fusionrec.errors import ConfigError
from fusionrec.evaluation import evaluate_ranking
from fusionrec.models import make_model
from fusionrec.models.baselines import MostPopular
from fusionrec.models.federated import FedMF, FedMFClient, fedavg
from fusionrec.models.mf.bpr import BPR

from ..conftest import make_interactions
from .contract import RecommenderContract
from .test_bpr import assert_declared_and_forgotten, odd_interactions


def planted(n_groups: int = 4, users_per: int = 60, items_per: int = 15, per_user: int = 10, seed: int = 0):
    """Users in ``n_groups`` groups, each interacting only with its group's items (flat popularity), 2 held out."""
    rng = np.random.default_rng(seed)
    us, its = [], []
    for g in range(n_groups):
        for k in range(users_per):
            us += [g * users_per + k] * per_user
            its += (g * items_per + rng.choice(items_per, per_user, replace=False)).tolist()
    users, items = np.array(us), np.array(its)
    test = np.zeros(len(users), dtype=bool)
    for u in np.unique(users):
        test[rng.choice(np.flatnonzero(users == u), 2, replace=False)] = True
    full = Interactions.from_arrays(
        np.array([f"u{x}" for x in users]), np.array([f"i{x}" for x in items]), None, None, explicit=False
    )
    return full.select(~test), full.select(test)


def ndcg(model, train, test) -> float:
    return float(evaluate_ranking(model, train, test, k=[10]).metrics["NDCG@10"])


class TestFedMFPerUser(RecommenderContract):
    implicit = True

    def make_model(self) -> FedMF:
        return FedMF(n_factors=4, rounds=5, seed=1)


class TestFedMFShards(RecommenderContract):
    implicit = True

    def make_model(self) -> FedMF:
        return FedMF(n_factors=4, rounds=5, clients=6, fraction_fit=0.5, server_lr=2.0, seed=1)


def test_federated_roughly_matches_centralised() -> None:
    train, test = planted()
    central = ndcg(BPR(n_factors=8, epochs=20, seed=0).fit(train), train, test)
    fed = ndcg(FedMF(n_factors=8, rounds=20, server_lr=10.0, seed=0).fit(train), train, test)
    shards = ndcg(FedMF(n_factors=8, rounds=20, clients=12, server_lr=4.0, seed=0).fit(train), train, test)
    pop = ndcg(MostPopular().fit(train), train, test)
    assert central > 0.5
    for got in (fed, shards):
        assert got > 0.8 * central and got > 3 * pop, (got, central, pop)


def test_server_receives_item_factors_only(monkeypatch: pytest.MonkeyPatch) -> None:
    train = make_interactions(n_users=40, n_items=25, seed=2, explicit=False)
    sent: list[list[np.ndarray]] = []
    users_seen: dict[int, np.ndarray] = {}
    original = FedMFClient.fit

    def spy(self: FedMFClient, parameters, config):  # type: ignore[no-untyped-def]
        out = original(self, parameters, config)
        sent.append(out[0])
        users_seen[self.cid] = self.user_factors.copy()
        return out

    monkeypatch.setattr(FedMFClient, "fit", spy)
    model = FedMF(n_factors=3, rounds=2, seed=0).fit(train)
    assert len(sent) == 2 * train.n_users  # one client per user, every round
    assert model.received_shapes_.tolist() == sorted([[train.n_items, 1], [train.n_items, 3]])
    for arrays in sent:
        assert [a.shape for a in arrays] == [(train.n_items, 3), (train.n_items, 1)]
    # no message carries a user vector: none of the sent rows equals any client's vector
    vectors = np.vstack(list(users_seen.values()))
    for arrays in sent:
        rows = arrays[0]
        assert not (np.abs(rows[:, None, :] - vectors[None, :, :]).max(-1) < 1e-7).any()
    # the clients' vectors are the model's user factors (kept on the clients, gathered only by the simulation)
    for cid, vec in users_seen.items():
        np.testing.assert_allclose(model.user_factors_[cid], vec[0])


def test_fedavg_is_the_example_weighted_mean() -> None:
    a = [np.ones((2, 2)), np.zeros(2)]
    b = [np.full((2, 2), 4.0), np.ones(2)]
    out = fedavg([(a, 1), (b, 2)])
    np.testing.assert_allclose(out[0], np.full((2, 2), 3.0))
    np.testing.assert_allclose(out[1], np.full(2, 2 / 3))


def test_server_lr_one_is_plain_fedavg_and_sampling_changes_rounds() -> None:
    train = make_interactions(n_users=30, n_items=20, seed=4, explicit=False)
    full = FedMF(n_factors=3, rounds=3, clients=5, seed=0).fit(train)
    assert full.round_history_.tolist() == [train.nnz] * 3
    half = FedMF(n_factors=3, rounds=3, clients=5, fraction_fit=0.4, seed=0).fit(train)
    assert (half.round_history_ < train.nnz).all() and (half.round_history_ > 0).all()


def test_bad_settings_raise_typed_errors() -> None:
    train = make_interactions(n_users=20, n_items=10, seed=1, explicit=False)
    with pytest.raises(ConfigError, match="clients=50 exceeds"):
        FedMF(clients=50, rounds=1).fit(train)
    with pytest.raises(ConfigError, match="engine"):
        make_model("FedMF", engine="grpc")
    with pytest.raises(ConfigError, match="fraction_fit"):
        make_model("FedMF", fraction_fit=0.0)


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("flwr") is None or importlib.util.find_spec("ray") is None,
    reason="the Flower simulation needs flwr and ray (pip install 'fusionrec[federated]')",
)
@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning", "ignore::FutureWarning")
def test_flower_simulation_equals_inprocess() -> None:
    train = make_interactions(n_users=24, n_items=15, seed=3, explicit=False)
    kw = dict(n_factors=3, rounds=2, clients=3, fraction_fit=0.67, server_lr=2.0, seed=0)
    a = FedMF(**kw).fit(train)
    b = FedMF(engine="flower", **kw).fit(train)
    np.testing.assert_allclose(b.item_factors_, a.item_factors_, atol=1e-5)
    np.testing.assert_allclose(b.user_factors_, a.user_factors_, atol=1e-5)
    assert b.round_history_.tolist() == a.round_history_.tolist()
    assert b.received_shapes_.tolist() == a.received_shapes_.tolist()


def test_declared_state_and_forget(tmp_path: Path) -> None:
    """The gathered client vectors are per-user state; received_shapes_ and round_history_ are not."""
    model = FedMF(n_factors=6, rounds=2, seed=0).fit(odd_interactions())
    assert_declared_and_forgotten(model, tmp_path)


def test_former_parameter_names_still_work() -> None:
    """FedMF's ``regularization`` -> ``reg``, with a FutureWarning."""
    with pytest.warns(FutureWarning, match="'regularization' was renamed 'reg'"):
        model = FedMF(regularization=0.01)
    assert model.reg == 0.01
