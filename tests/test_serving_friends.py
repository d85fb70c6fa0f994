"""Serving places a new user through their friends (issue 12): ``POST /users`` with ``friends``.

A social model (``uses_friends``) recommends a new user with no history through the friends' taste, blends the
friends with the history once it posts events, and keeps doing so across restarts, retrains and forgetting; a model
without the capability stores the links and ignores them; bad links are refused with a clear 4xx and leave no trace.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from fusionrec.data import Interactions
from fusionrec.data.side import SideInfo
from fusionrec.serving.store import EventStore, SQLiteStore
from tests.conftest import make_interactions
from tests.models.test_social import clustered as social_clusters
from tests.serving._stores import temporary_pg_store
from tests.serving.conftest import make_client

KEY = {"X-API-Key": "k"}
N_PER, N_ITEMS = 20, 40
HALF = N_ITEMS // 2
#: group B (users u40..u59) interacts only with items i20..i39; group A (u0..u39, twice as many and as active) with
#: i0..i19, so popularity ranks A's items first
B_FRIENDS = ["u40", "u41", "u42"]


def clustered(seed: int = 0) -> tuple[Interactions, sp.csr_matrix]:
    """Two user groups, each interacting only within its item half; friends link within a group."""
    return social_clusters(N_PER, N_ITEMS, seed, cold_user=False)


def _meta(train: Interactions) -> dict[str, list[Any]]:
    return {"title": [f"Movie {x}" for x in train.item_ids.ids]}


@pytest.fixture(scope="module")
def social_fit() -> tuple[Interactions, sp.csr_matrix, Any]:
    from fusionrec.models.social_graph import SocialBPR

    train, social = clustered()
    return train, social, SocialBPR(n_factors=8, epochs=30, seed=0).fit(train, SideInfo(social=social))


@pytest.fixture
def social_bundle(tmp_path: Path, social_fit: tuple[Interactions, sp.csr_matrix, Any]) -> Path:
    from fusionrec.serving import save_bundle

    train, social, model = social_fit
    path = tmp_path / f"social-{uuid.uuid4().hex[:6]}"
    return save_bundle(path, copy.deepcopy(model), train, _meta(train), side=SideInfo(social=social))


@pytest.fixture
def client(social_bundle: Path) -> Iterator[Any]:
    yield from make_client(social_bundle, api_key="k")


def share_of_b(c: Any, user: str) -> float:
    r = c.get("/recommend", params={"user": user, "k": 10})
    assert r.status_code == 200, r.text
    items = [int(x["item"][1:]) for x in r.json()["items"]]
    assert len(items) == 10
    return float(np.mean([i >= HALF for i in items]))


def _engine(c: Any) -> Any:
    return c.app.state.engine


def _vector(c: Any, user: str) -> np.ndarray:
    st = _engine(c).state
    row = st.model_row(st.user_index(user))
    assert row is not None
    return np.asarray(st.model.user_factors_[row], np.float64)


def _mean_of(c: Any, users: list[str], weights: list[float] | None = None) -> np.ndarray:
    w = np.ones(len(users)) if weights is None else np.asarray(weights, np.float64)
    return np.asarray(w @ np.stack([_vector(c, u) for u in users]) / w.sum())


# --------------------------------------------------------------------------------------------- a social model
def test_new_user_with_friends_gets_their_cluster(client: Any) -> None:
    c = client
    assert c.post("/users", json={"user": "loner"}, headers=KEY).json()["personalised"] is False
    assert share_of_b(c, "loner") == 0.0  # popularity: group A's items
    r = c.post("/users", json={"user": "newbie", "friends": [{"user": u} for u in B_FRIENDS]}, headers=KEY)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["friends"] == 3 and out["friends_used"] is True and out["personalised"] is True
    assert share_of_b(c, "newbie") >= 0.8  # through the friends
    np.testing.assert_allclose(_vector(c, "newbie"), _mean_of(c, B_FRIENDS), atol=1e-5)
    got = c.get("/users/newbie", headers=KEY).json()
    assert got["personalised"] and sorted(f["user"] for f in got["friends"]) == B_FRIENDS
    assert c.get("/health").json()["users"] == 62

    # events later: the fold-in uses the history and the friends, (1 - a) v_h + a m with a = |F| / (|F| + |H|)
    st = _engine(c).state
    alone = copy.deepcopy(st.model)
    history = [25, 31]
    row = int(alone.fold_in_user(np.array(history), np.ones(2))[0])
    v_h = np.asarray(alone.user_factors_[row], np.float64)
    m = _mean_of(c, B_FRIENDS)
    events = [{"user": "newbie", "item": f"i{i}"} for i in history]
    assert c.post("/events", json={"events": events}, headers=KEY).status_code == 200
    a = 3 / (3 + 2)
    np.testing.assert_allclose(_vector(c, "newbie"), (1 - a) * v_h + a * m, atol=1e-4)
    assert share_of_b(c, "newbie") >= 0.8

    # a repeated POST /users with other friends replaces the links; [] removes them (back to the history alone)
    r = c.post(
        "/users", json={"user": "newbie", "friends": [{"user": "u43"}, {"user": "u44", "weight": 3}]}, headers=KEY
    )
    assert r.json()["friends"] == 2
    assert {f["user"]: f["weight"] for f in c.get("/users/newbie", headers=KEY).json()["friends"]} == {
        "u43": 1.0,
        "u44": 3.0,
    }
    assert c.post("/users", json={"user": "newbie", "friends": []}, headers=KEY).json()["friends"] == 0
    np.testing.assert_allclose(_vector(c, "newbie"), v_h, atol=1e-4)
    # a profile update without friends keeps the links it has, and an empty profile keeps the profile
    c.post(
        "/users", json={"user": "fan", "attributes": {"genres": ["Comedy"]}, "friends": [{"user": "u45"}]}, headers=KEY
    )
    c.post("/users", json={"user": "fan"}, headers=KEY)
    got = c.get("/users/fan", headers=KEY).json()
    assert got["friends"] == [{"user": "u45", "weight": 1.0}] and got["attributes"] == {"genres": ["Comedy"]}


def test_friend_rules_weights_self_links_duplicates(client: Any) -> None:
    c = client
    friends = [
        {"user": "u40", "weight": 1.0},
        {"user": "u41", "weight": 0.5},
        {"user": "u41", "weight": 2.0},  # duplicate: the largest weight
        {"user": "u42", "weight": 0},  # zero: dropped
        {"user": "w", "weight": 5.0},  # itself: dropped (and not an unknown user)
    ]
    r = c.post("/users", json={"user": "w", "friends": friends}, headers=KEY)
    assert r.status_code == 201, r.text
    assert r.json()["friends"] == 2
    assert {f["user"]: f["weight"] for f in c.get("/users/w", headers=KEY).json()["friends"]} == {
        "u40": 1.0,
        "u41": 2.0,
    }
    np.testing.assert_allclose(_vector(c, "w"), _mean_of(c, ["u40", "u41"], [1.0, 2.0]), atol=1e-5)
    # a friend that is a user created online (placed once it has events) counts too
    c.post(
        "/events", json={"events": [{"user": "walker", "item": "i30"}, {"user": "walker", "item": "i33"}]}, headers=KEY
    )
    c.post("/users", json={"user": "w2", "friends": [{"user": "walker"}]}, headers=KEY)
    np.testing.assert_allclose(_vector(c, "w2"), _vector(c, "walker"), atol=1e-5)


def test_friend_placed_later_places_the_user(client: Any) -> None:
    """A friend with no events yet (profile only) cannot place anyone; once its events place it, so is the user."""
    c = client
    c.post("/users", json={"user": "quiet", "attributes": {"genres": ["Drama"]}}, headers=KEY)
    r = c.post("/users", json={"user": "follower", "friends": [{"user": "quiet"}]}, headers=KEY).json()
    assert r["friends"] == 1 and r["personalised"] is False  # popularity and profile until then
    events = [{"user": "quiet", "item": f"i{i}"} for i in (21, 22, 27, 35)]
    assert c.post("/events", json={"events": events}, headers=KEY).status_code == 200
    assert c.get("/users/follower", headers=KEY).json()["personalised"] is True
    np.testing.assert_allclose(_vector(c, "follower"), _vector(c, "quiet"), atol=1e-5)


def test_bad_friends_are_refused_and_leave_no_trace(client: Any) -> None:
    c = client
    r = c.post("/users", json={"user": "x", "friends": [{"user": "u40"}, {"user": "ghost"}, {"user": 77}]}, headers=KEY)
    assert r.status_code == 404
    assert "ghost" in r.json()["detail"] and "77" in r.json()["detail"] and "unknown friend" in r.json()["detail"]
    for body in (
        {"user": "x", "friends": [{"user": "u40", "weight": -1}]},  # negative
        {"user": "x", "friends": [{"user": "u40", "weight": "1"}]},  # not a number
        {"user": "x", "friends": [{"user": "u40", "extra": 1}]},  # unknown field
        {"user": "x", "friends": [{"user": "u40"}] * 1001},  # too many
        {"user": "x", "friends": "u40"},
    ):
        r = c.post("/users", json=body, headers=KEY)
        assert r.status_code == 422, (body, r.text)
    r = c.post(
        "/users",
        content='{"user": "x", "friends": [{"user": "u40", "weight": NaN}]}',
        headers={**KEY, "content-type": "application/json"},
    )
    assert r.status_code == 422
    assert c.post("/users", json={"user": "x", "friends": [{"user": "u40"}]}).status_code == 401  # the key
    assert c.get("/users/x", headers=KEY).status_code == 404  # nothing was created or stored
    store = _engine(c).store
    assert store.links() == [] and all(u.user != "x" for u in store.users())


# --------------------------------------------------------------------------------------------- durability, forgetting
def test_links_survive_a_restart(social_bundle: Path) -> None:
    before: dict[str, Any] = {}
    for c in make_client(social_bundle, api_key="k"):
        c.post(
            "/events",
            json={"events": [{"user": "walker", "item": "i30"}, {"user": "walker", "item": "i21"}]},
            headers=KEY,
        )
        c.post(
            "/users",
            json={"user": "newbie", "friends": [{"user": u} for u in B_FRIENDS] + [{"user": "walker", "weight": 2}]},
            headers=KEY,
        )
        before = {u: c.get("/recommend", params={"user": u, "k": 10}).json()["items"] for u in ("newbie", "walker")}
        before["vector"] = _vector(c, "newbie")
    for c in make_client(social_bundle, api_key="k"):  # a new engine replaying the same store
        assert c.get("/users/newbie", headers=KEY).json()["personalised"] is True
        np.testing.assert_allclose(_vector(c, "newbie"), before["vector"], atol=1e-5)
        for u in ("newbie", "walker"):
            got = c.get("/recommend", params={"user": u, "k": 10}).json()["items"]
            assert [x["item"] for x in got] == [x["item"] for x in before[u]]
        assert share_of_b(c, "newbie") >= 0.8


def test_forgetting_drops_links_both_ways(client: Any) -> None:
    c = client
    c.post(
        "/events", json={"events": [{"user": "walker", "item": "i30"}, {"user": "walker", "item": "i21"}]}, headers=KEY
    )
    c.post("/users", json={"user": "newbie", "friends": [{"user": "u40"}, {"user": "walker"}]}, headers=KEY)
    c.post("/users", json={"user": "only-walker", "friends": [{"user": "walker"}]}, headers=KEY)
    c.post("/users", json={"user": "fan-of-newbie", "friends": [{"user": "newbie"}]}, headers=KEY)
    store = _engine(c).store
    assert len(store.links()) == 4
    # forgetting a friend: the links to it go, and the users placed through it are placed again without it
    assert c.delete("/users/walker", headers=KEY).status_code == 204
    assert {(x.user, x.friend) for x in store.links()} == {("newbie", "u40"), ("fan-of-newbie", "newbie")}
    assert [f["user"] for f in c.get("/users/newbie", headers=KEY).json()["friends"]] == ["u40"]
    np.testing.assert_allclose(_vector(c, "newbie"), _vector(c, "u40"), atol=1e-5)
    assert c.get("/users/only-walker", headers=KEY).json() == {
        "user": "only-walker", "attributes": {}, "n_items": 0, "personalised": False, "friends": [],
    }  # fmt: skip
    # forgetting the user: its own links and those pointing to it
    assert c.delete("/users/newbie", headers=KEY).status_code == 204
    assert store.links() == []
    assert c.get("/users/fan-of-newbie", headers=KEY).json()["personalised"] is False
    r = c.post("/users", json={"user": "late", "friends": [{"user": "newbie"}]}, headers=KEY)
    assert r.status_code == 404  # a forgotten user is no friend


def test_retrain_keeps_the_posted_links(client: Any) -> None:
    c = client
    events = [{"user": "newbie", "item": f"i{i}"} for i in (20, 24, 28)]
    c.post("/users", json={"user": "newbie", "friends": [{"user": "u40", "weight": 2}, {"user": "u41"}]}, headers=KEY)
    c.post("/events", json={"events": events}, headers=KEY)
    c.post("/users", json={"user": "no-events", "friends": [{"user": "u42"}]}, headers=KEY)
    r = c.post("/admin/retrain", params={"wait": True}, headers=KEY)
    assert r.status_code == 202, r.text
    st = _engine(c).state
    u, f0, f1 = (int(st.user_index(x)) for x in ("newbie", "u40", "u41"))
    assert u < st.n_base_users  # newbie had events: it joined the training users
    social = sp.csr_matrix(st.side.social)
    assert social[u, f0] == 2.0 and social[u, f1] == 1.0 and social[u].nnz == 2
    # the user without events is not a training user: it is placed through its friends again from the store
    assert c.get("/users/no-events", headers=KEY).json()["personalised"] is True
    np.testing.assert_allclose(_vector(c, "no-events"), _vector(c, "u42"), atol=1e-5)
    assert share_of_b(c, "newbie") >= 0.8


# --------------------------------------------------------------------------------------------- other models
def test_model_without_the_capability_ignores_links(tmp_path: Path) -> None:
    from fusionrec.models.mf.bpr import BPR
    from fusionrec.serving import save_bundle

    train, social = clustered()
    model = BPR(n_factors=8, epochs=10, seed=0).fit(train)
    assert not type(model).uses_friends
    bundle = save_bundle(tmp_path / "bpr", model, train, _meta(train), side=SideInfo(social=social))
    for c in make_client(bundle, api_key="k"):
        r = c.post("/users", json={"user": "newbie", "friends": [{"user": u} for u in B_FRIENDS]}, headers=KEY)
        assert r.status_code == 201
        assert r.json()["friends"] == 3 and r.json()["friends_used"] is False and r.json()["personalised"] is False
        assert share_of_b(c, "newbie") == 0.0  # popular items: the links are stored, not used
        assert len(_engine(c).store.links()) == 3
        # events: the history alone places the user (the model's own fold-in)
        c.post("/events", json={"events": [{"user": "newbie", "item": "i25"}]}, headers=KEY)
        st = _engine(c).state
        alone = copy.deepcopy(model)
        row = int(alone.fold_in_user(np.array([25]), np.ones(1))[0])
        np.testing.assert_allclose(_vector(c, "newbie"), alone.user_factors_[row], atol=1e-5)
        assert st.uses_friends is False


@pytest.mark.parametrize("name", ["SocialMF", "TrustSVD"])
def test_rating_models_place_by_weighted_friends(tmp_path: Path, name: str) -> None:
    from fusionrec.models import make_model
    from fusionrec.serving import save_bundle

    train = make_interactions(n_users=40, n_items=30, seed=2)
    n = train.n_users
    rows = np.repeat(np.arange(n), 3)
    cols = (rows + np.tile([1, 2, 5], n)) % n
    side = SideInfo(social=sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, n)))
    model = make_model(name, epochs=5, seed=0).fit(train, side)
    bundle = save_bundle(tmp_path / name, model, train, _meta(train), side=side)
    for c in make_client(bundle, api_key="k"):
        friends = [{"user": "u0", "weight": 1}, {"user": "u1", "weight": 3}]
        assert c.post("/users", json={"user": "rater", "friends": friends}, headers=KEY).json()["friends_used"]
        st = _engine(c).state
        row = st.model_row(st.user_index("rater"))
        P = st.model.user_vectors_
        np.testing.assert_allclose(P[row], (P[0] + 3 * P[1]) / 4, rtol=1e-5, atol=1e-6)
        items = c.get("/recommend", params={"user": "rater", "k": 5}).json()["items"]
        scores = np.clip(st.model.global_mean_ + st.model.item_bias_ + st.model.item_factors_ @ P[row], 1, 5)
        assert items[0]["score"] == pytest.approx(float(scores.max()), rel=1e-5)


# --------------------------------------------------------------------------------------------- stores
def _exercise_links(store: EventStore) -> None:
    store.add_users([("a", {"x": "1"})], links={"a": [("b", 1.0), ("c", 2.5)]})
    store.add_users([("b", {})], links={"b": [("a", 1.0)]})
    assert [(x.user, x.friend, x.weight) for x in store.links()] == [("a", "b", 1.0), ("a", "c", 2.5), ("b", "a", 1.0)]
    store.add_users([("a", {"x": "2"})], links={"a": [("c", 4.0)]})  # replaces a's links only
    assert [(x.user, x.friend, x.weight) for x in store.links()] == [("a", "c", 4.0), ("b", "a", 1.0)]
    store.add_users([("a", {"x": "3"})])  # no links given: a's links stay
    assert len(store.links()) == 2 and [u.attributes for u in store.users() if u.user == "a"] == [{"x": "3"}]
    assert store.delete_user("a") == 3  # the profile, its link and the link to it
    assert [(x.user, x.friend) for x in store.links()] == []
    store.add_users([("b", {})], links={"b": [("c", 1.0)]})
    store.add_users([("b", {})], links={"b": []})  # [] removes them
    assert store.links() == []


def test_sqlite_store_links(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "e.db") as store:
        _exercise_links(store)
        store.add_users([("p", {})], links={"p": [("q", 1.0)]})
    with SQLiteStore(tmp_path / "e.db") as store:  # durable, and an old database gains the table on open
        assert [(x.user, x.friend) for x in store.links()] == [("p", "q")]


@pytest.fixture
def pg_store() -> Iterator[EventStore]:
    yield from temporary_pg_store()


def test_postgres_store_links(pg_store: EventStore) -> None:
    _exercise_links(pg_store)


@pytest.fixture(params=["sqlite", "postgres"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    if request.param == "postgres":
        yield from temporary_pg_store()
    else:
        with SQLiteStore(tmp_path / "events.db") as store:
            yield store


def test_another_worker_syncs_the_links(social_bundle: Path, any_store: EventStore) -> None:
    """Two serving processes on one store: links posted to one reach the other at its next sync (and a restart)."""
    from fusionrec.serving.engine import ServingEngine

    one, two = ServingEngine(social_bundle, any_store), ServingEngine(social_bundle, any_store)
    one.post_user("newbie", {}, [(u, 1.0) for u in B_FRIENDS])
    assert two.state.user_index("newbie") is None
    two.sync()
    st = two.state
    row = st.model_row(st.user_index("newbie"))
    assert row is not None
    want = np.mean([st.model.user_factors_[st.user_index(u)] for u in B_FRIENDS], axis=0)
    np.testing.assert_allclose(st.model.user_factors_[row], want, atol=1e-5)
    one.post_user("newbie", {}, [])  # removed in one: the other drops them at its next sync
    two.sync()
    assert two.state.links == {} and two.state.model_row(two.state.user_index("newbie")) is None
    one.post_user("newbie", {}, [("u40", 1.0), ("u41", 2.0)])
    one.delete_user("u40")  # its links go in the store: a restarted worker sees the rest
    three = ServingEngine(social_bundle, any_store).state
    assert three.links == {three.user_index("newbie"): {three.user_index("u41"): 2.0}}
    np.testing.assert_allclose(
        three.model.user_factors_[three.model_row(three.user_index("newbie"))],
        three.model.user_factors_[three.user_index("u41")],
        atol=1e-5,
    )


def test_fuzzed_friends_never_give_a_server_error(client: Any) -> None:
    """Arbitrary friends lists (ids of every kind, any numbers, junk JSON) answer 2xx or a declared 4xx, and
    whatever was accepted can be retrained on and recommended from."""
    import json

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    c = client
    ids = st.one_of(
        st.sampled_from(["u40", "u41", "u0", "newbie", "ghost", " u40", "U40", 40, 0, "01", ""]),
        st.text(max_size=5),
        st.integers(-(2**70), 2**70),
        st.booleans(),
        st.none(),
    )
    number = st.one_of(
        st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**70), 2**70), st.sampled_from([0, 1, -1, 1e300])
    )
    friend = st.fixed_dictionaries({"user": ids}, optional={"weight": st.one_of(number, ids)})
    body = st.fixed_dictionaries(
        {"user": st.sampled_from(["newbie", "u40", "fresh", 7])},
        optional={"friends": st.one_of(st.lists(friend, max_size=4), ids, st.lists(ids, max_size=2))},
    )
    codes: list[int] = []

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(body=body)
    def post(body: dict[str, Any]) -> None:
        r = c.post("/users", content=json.dumps(body), headers={**KEY, "content-type": "application/json"})
        assert r.status_code in (201, 404, 422), (body, r.status_code, r.text[:300])
        codes.append(r.status_code)

    post()
    assert codes.count(201) >= 10
    for user in ("newbie", "u40", "fresh", "7"):
        if c.get(f"/users/{user}", headers=KEY).status_code == 200:
            assert c.get("/recommend", params={"user": user, "k": 5}).status_code == 200
    assert c.post("/admin/retrain", params={"wait": True}, headers=KEY).status_code == 202
    for user in ("newbie", "u40", "fresh", "7"):
        if c.get(f"/users/{user}", headers=KEY).status_code == 200:
            assert c.get("/recommend", params={"user": user, "k": 5}).status_code == 200


def test_the_capability_is_declared_by_exactly_the_social_models() -> None:
    """``uses_friends`` is declared, never guessed: every registered model that says so takes ``friends=`` in its
    fold-in, and the five social models say so."""
    import inspect

    from fusionrec.models.base import Recommender
    from fusionrec.models.registry import available_models, get_model_class

    assert Recommender.uses_friends is False
    declared = set()
    for name in available_models():
        try:
            cls = get_model_class(name)
        except ImportError:  # an optional extra is missing
            continue
        if cls.uses_friends:
            declared.add(name)
            params = inspect.signature(cls.fold_in_user).parameters  # type: ignore[attr-defined]
            assert {"friends", "friend_weights"} <= set(params), name
    assert declared == {"SocialMF", "SoRec", "TrustSVD", "SocialBPR", "SocialLightGCN"}
