"""Property-based fuzzing of every endpoint (issue 11): arbitrary Unicode (lone surrogates, control characters),
huge and non-finite numbers and JSON values of every type never give a 5xx, and the service is still retrainable
afterwards (every write it accepted can be trained on)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.serving.conftest import make_client

KEY = {"X-API-Key": "secret"}

# every code point, lone surrogates included (json.dumps escapes them as \udXXX, as a client could send)
TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=12)
URL_TEXT = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=12)
KNOWN = st.sampled_from(["u1", "u2", "i1", "i2", "i3", "1", "01", " 1", "new", "fan"])
NUMBER = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, -1, 5, 1e308, -1e308, 1e40, 2**63, 2**64, 1e30, 0.5]),
)
SCALAR = st.one_of(st.none(), st.booleans(), NUMBER, TEXT, KNOWN)
JSON = st.recursive(
    SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.one_of(TEXT, KNOWN, st.just("title")), inner, max_size=3)
    ),
    max_leaves=8,
)
LEAF = st.one_of(KNOWN, KNOWN, TEXT, NUMBER, st.booleans(), st.none())
ITEMS = st.sampled_from(["i1", "i2", "i3", "i4", "new", "fan"])
EVENT = st.fixed_dictionaries(
    {"user": LEAF, "item": st.one_of(ITEMS, ITEMS, LEAF)},
    optional={"value": st.one_of(NUMBER, NUMBER, JSON), "timestamp": st.one_of(NUMBER, JSON)},
)
EVENTS = st.fixed_dictionaries({"events": st.lists(EVENT, min_size=1, max_size=3)})
KEYS = st.one_of(st.sampled_from(["title", "genres", "poster", "colour", "a b", "_x", "email"]), TEXT)
VALUE = st.one_of(LEAF, st.lists(LEAF, max_size=3), JSON)
ITEM = st.fixed_dictionaries(
    {"item": st.one_of(ITEMS, LEAF)},
    optional={
        "title": st.one_of(TEXT, VALUE),
        "poster": st.one_of(st.sampled_from(["https://x.example/a.png", "/etc/passwd", "../x.png"]), VALUE),
        "meta": st.dictionaries(KEYS, VALUE, max_size=3),
        "text": st.one_of(TEXT, VALUE),
        "features": st.one_of(st.lists(NUMBER, min_size=5, max_size=5), VALUE),
    },
)
USER = st.fixed_dictionaries({"user": LEAF}, optional={"attributes": st.dictionaries(KEYS, VALUE, max_size=3)})
#: (path, body): mostly well-formed bodies with fuzzed values, sometimes any JSON at all
WRITE = st.one_of(
    st.tuples(st.just("/events"), EVENTS),
    st.tuples(st.just("/events"), EVENTS),
    st.tuples(st.just("/items"), ITEM),
    st.tuples(st.just("/users"), USER),
    st.tuples(st.sampled_from(["/events", "/items", "/users", "/admin/retrain"]), JSON),
)
QUERY = st.dictionaries(
    st.sampled_from(["user", "item", "k", "n", "limit", "offset", "exclude_seen", "candidates", "genres", "x"]),
    st.one_of(URL_TEXT, KNOWN, st.integers(-(2**70), 2**70).map(str)),
    max_size=4,
)
GETS = st.sampled_from(
    ["/recommend", "/similar/{}", "/explain", "/users", "/users/{}/history", "/admin/retrain", "/health", "/metrics",
     "/posters/{}", "/docs", "/web/{}", "/openapi.json"]
)  # fmt: skip


@pytest.fixture
def fuzz_client(tiny_bundle: Path) -> Any:
    yield from make_client(tiny_bundle, api_key="secret")


def _no_5xx(r: Any, what: str) -> None:
    assert r.status_code < 500, f"{what}: {r.status_code} {r.text[:300]}"


@settings(
    max_examples=1500,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    kind=st.sampled_from(["write", "write", "write", "get", "get", "raw"]),
    write=WRITE,
    get=GETS,
    segment=st.one_of(KNOWN, URL_TEXT),
    query=QUERY,
    raw=st.binary(max_size=40),
)
def test_no_request_gives_a_server_error(
    fuzz_client: Any, kind: str, write: tuple[str, Any], get: str, segment: str, query: dict[str, str], raw: bytes
) -> None:
    c = fuzz_client
    headers = {**KEY, "content-type": "application/json"}
    if kind == "get":
        path = get.format(quote(segment, safe=""))
        _no_5xx(c.get(path, params=query, headers=KEY), f"GET {path} {query!r}")
    elif kind == "raw":
        _no_5xx(c.post(write[0], content=raw, headers=headers), f"POST {write[0]} {raw!r}")
    else:
        path, body = write
        text = json.dumps(body)  # NaN / Infinity literals and \udXXX escapes included
        _no_5xx(c.post(path, content=text, headers=headers), f"POST {path} {text[:300]}")


def test_the_service_is_retrainable_after_fuzzing(fuzz_client: Any) -> None:
    """The same fuzzing, then a retrain: whatever was accepted can be trained on, and reads still answer."""
    import random

    c = fuzz_client

    accepted = {"n": 0}

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(write=WRITE.filter(lambda w: w[0] != "/admin/retrain"))
    def writes(write: tuple[str, Any]) -> None:
        path, body = write
        r = c.post(path, content=json.dumps(body), headers={**KEY, "content-type": "application/json"})
        _no_5xx(r, f"POST {path} {json.dumps(body)[:300]}")
        accepted["n"] += r.status_code < 300

    writes()
    assert accepted["n"] >= 20  # the fuzzing got through validation often enough to matter
    # some well-formed writes too, so that the retrain has new users, items and attributes to take in
    rnd = random.Random(0)
    for j in range(20):
        c.post("/items", json={"item": f"new{j}", "title": f"T {j}", "meta": {"genres": ["Comedy"]}}, headers=KEY)
        events = [{"user": rnd.choice(["fan", "01", " 1", 7, "u1"]), "item": rnd.choice(["i1", f"new{j}"])}]
        assert c.post("/events", json={"events": events}, headers=KEY).status_code == 200
    r = c.post("/admin/retrain", params={"wait": True}, headers=KEY)
    assert r.status_code == 202, r.text
    assert c.get("/admin/retrain").json()["state"] == "idle"
    assert c.get("/recommend", params={"user": "fan", "k": 5}).status_code == 200
    for user in c.get("/users", params={"limit": 1000}).json()["users"][-30:]:
        _no_5xx(c.get(f"/users/{quote(str(user), safe='')}/history"), f"history of {user!r}")
        _no_5xx(c.get("/recommend", params={"user": str(user), "k": 40}), f"recommend for {user!r}")
