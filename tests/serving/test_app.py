from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.serving.conftest import make_client

KEY = {"X-API-Key": "secret"}


def test_health_openapi_and_cors_off(client: Any) -> None:
    h = client.get("/health").json()
    assert h["status"] == "ok" and h["model"] == "TinyMF" and h["users"] == 50 and h["index"] == "exact"
    paths = client.get("/openapi.json").json()["paths"]
    for p in ("/recommend", "/similar/{item}", "/explain", "/events", "/items", "/users", "/health", "/metrics"):
        assert p in paths
    r = client.get("/health", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in r.headers


def test_recommend_filters_candidates_and_errors(client: Any) -> None:
    r = client.get("/recommend", params={"user": "u1", "k": 5}).json()
    assert len(r["items"]) == 5 and r["items"][0]["title"].startswith("Movie")
    scores = [x["score"] for x in r["items"]]
    assert scores == sorted(scores, reverse=True)
    horror = client.get("/recommend", params={"user": "u1", "k": 40, "genres": "horror"}).json()["items"]
    state = client.app.state.engine.state
    assert horror and all("Horror" in state.item_meta["genres"][state.item_index(x["item"])] for x in horror)
    cand = client.get("/recommend", params={"user": "u1", "k": 3, "candidates": "i1,i2", "exclude_seen": False})
    assert {x["item"] for x in cand.json()["items"]} <= {"i1", "i2"}
    missing = client.get("/recommend", params={"user": "ghost"})
    assert missing.status_code == 404 and "POST /users" in missing.json()["hint"]
    assert client.get("/recommend", params={"user": "u1", "k": 0}).status_code == 422
    assert client.get("/recommend", params={"user": "u1", "k": 10_000}).status_code == 422
    assert client.get("/recommend", params={"user": "u1", "colour": "red"}).status_code == 422
    assert client.get("/recommend", params={"user": "u1", "candidates": "nope"}).status_code == 404


def test_writes_need_the_api_key(client: Any) -> None:
    body = {"events": [{"user": "u1", "item": "i1"}]}
    assert client.post("/events", json=body).status_code == 401
    assert client.post("/events", json=body, headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.post("/events", json=body, headers=KEY).status_code == 200
    assert client.get("/recommend", params={"user": "u1"}).status_code == 200  # reads stay open


def test_events_fold_in_new_user_and_validation(client: Any) -> None:
    r = client.post(
        "/events",
        json={"events": [{"user": "n1", "item": "i3"}, {"user": "n1", "item": "i4", "value": 2}]},
        headers=KEY,
    )
    assert r.status_code == 200 and r.json()["stored"] == 2
    recs = client.get("/recommend", params={"user": "n1", "k": 10}).json()["items"]
    assert recs and not {"i3", "i4"} & {x["item"] for x in recs}
    hist = client.get("/users/n1/history").json()["items"]
    assert {x["item"] for x in hist} == {"i3", "i4"}
    bad = client.post("/events", json={"events": [{"user": "n1", "item": "unknown-item"}]}, headers=KEY)
    assert bad.status_code == 404 and "POST /items" in bad.json()["hint"]
    assert client.post("/events", json={"events": []}, headers=KEY).status_code == 422
    assert client.post("/events", json={"events": [{"user": "a"}]}, headers=KEY).status_code == 422
    assert client.app.state.engine.store.count() == 2  # the rejected batch stored nothing


def test_request_size_limit(client: Any) -> None:
    huge = {"events": [{"user": "u1", "item": "i1"}] * 40_000}
    assert client.post("/events", json=huge, headers=KEY).status_code == 413


def test_a_posted_title_is_one_short_line(client: Any) -> None:
    """A long title posted with ``POST /items`` is shown as one line of at most MAX_TITLE_CHARS characters."""
    from fusionrec.serving.rules import MAX_TITLE_CHARS

    review = "An utterly wonderful night out,\n" + "with songs and stories and laughter " * 40
    r = client.post("/items", json={"item": "long1", "title": review, "features": [0.1] * 5}, headers=KEY)
    assert r.status_code == 201
    recs = client.get("/recommend", params={"user": "u1", "k": 1, "candidates": "long1"}).json()["items"]
    title = recs[0]["title"]
    assert title.startswith("An utterly wonderful night out, with songs") and title.endswith("…")
    assert len(title) <= MAX_TITLE_CHARS and "\n" not in title


def test_new_items_users_similar_explain(client: Any) -> None:
    r = client.post("/items", json={"item": "new1", "title": "Brand new funny one", "features": [0.1] * 5}, headers=KEY)
    assert r.status_code == 201
    assert client.post("/items", json={"item": "bad", "features": [1.0, 2.0]}, headers=KEY).status_code == 422
    recs = client.get("/recommend", params={"user": "u1", "k": 1, "candidates": "new1"}).json()["items"]
    assert recs[0]["item"] == "new1" and recs[0]["title"] == "Brand new funny one"
    sim = client.get("/similar/i3", params={"k": 4}).json()["items"]
    assert len(sim) == 4 and "i3" not in {x["item"] for x in sim}
    assert client.get("/similar/zzz").status_code == 404
    ex = client.get("/explain", params={"user": "u1", "item": "i3"}).json()
    assert ex["similar_history"] and "title" in ex["similar_history"][0]
    assert "factors" not in ex and ex["content"]["modality"] == "features" and ex["content"]["items"]
    titles = [h["title"] or str(h["item"]) for h in ex["similar_history"]]
    assert ex["sentence"].startswith("Recommended ") and titles[0] in ex["sentence"]  # words, no factor numbers
    assert "factor" not in ex["sentence"].lower() and ex["source"] and ex["modalities"][0] == ex["content"]
    assert (
        client.post("/users", json={"user": "fan", "attributes": {"genres": ["Comedy"]}}, headers=KEY).status_code
        == 201
    )
    fan = client.get("/recommend", params={"user": "fan", "k": 3}).json()["items"]
    why = client.get("/explain", params={"user": "fan", "item": fan[0]["item"]}).json()  # profile only: no history
    assert why["sentence"].startswith("Recommended ") and why["similar_history"] == [] and why["attribution"] is None
    state = client.app.state.engine.state
    assert all("Comedy" in state.item_meta["genres"][state.item_index(x["item"])] for x in fan)


def test_metrics_prometheus_text(client: Any) -> None:
    client.get("/recommend", params={"user": "u1"})
    client.post("/events", json={"events": [{"user": "u1", "item": "i1"}]}, headers=KEY)
    text = client.get("/metrics").text
    assert 'fusionrec_http_requests_total{method="GET",route="/recommend",status="200"} 1.0' in text
    assert 'fusionrec_http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/recommend"} 1.0' in text
    assert "fusionrec_events_stored 1.0" in text
    from prometheus_client.parser import text_string_to_metric_families  # the official parser reads it

    names = {f.name for f in text_string_to_metric_families(text)}
    assert {"fusionrec_http_requests", "fusionrec_http_request_duration_seconds", "fusionrec_users"} <= names


def test_retrain_endpoint_and_popularity_model(client: Any, pop_client: Any) -> None:
    client.post("/events", json={"events": [{"user": "r1", "item": "i2"}]}, headers=KEY)
    r = client.post("/admin/retrain", params={"wait": True}, headers=KEY)
    assert r.status_code == 202 and r.json()["status"]["runs"] == 1
    assert client.get("/health").json()["users"] == 51
    assert pop_client.get("/health").json()["index"] == "model-scores"
    pop_client.post("/events", json={"events": [{"user": "p1", "item": "i0"}]})
    assert "i0" not in {x["item"] for x in pop_client.get("/recommend", params={"user": "p1", "k": 30}).json()["items"]}
    assert pop_client.get("/similar/i0", params={"k": 3}).status_code == 200
    assert pop_client.get("/explain", params={"user": "u1", "item": "i0"}).status_code == 200


def test_web_page_served(client: Any) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "fusionrec" in page.text
    assert client.get("/web/app.js").status_code == 200 and client.get("/web/other.js").status_code == 404
    assert client.get("/users", params={"limit": 3}).json()["total"] == 50


def test_read_key_and_cors_when_configured(tiny_bundle: Path) -> None:
    gen = make_client(tiny_bundle, api_key="k", read_requires_key=True, cors_origins=("http://ok.example",))
    c = next(gen)
    try:
        assert c.get("/recommend", params={"user": "u1"}).status_code == 401
        assert c.get("/recommend", params={"user": "u1"}, headers={"X-API-Key": "k"}).status_code == 200
        r = c.get("/health", headers={"Origin": "http://ok.example"})
        assert r.headers["access-control-allow-origin"] == "http://ok.example"
    finally:
        with pytest.raises(StopIteration):
            next(gen)


def test_settings_from_env(tmp_path: Path) -> None:
    from fusionrec.errors import ConfigError
    from fusionrec.serving import ServingSettings

    s = ServingSettings.from_env(
        {
            "FUSIONREC_SERVE_BUNDLE_PATH": str(tmp_path),
            "FUSIONREC_SERVE_MAX_K": "50",
            "FUSIONREC_SERVE_CORS_ORIGINS": "a,b",
            "FUSIONREC_SERVE_COMPUTE_THREADS": "2",
        }
    )
    assert s.max_k == 50 and s.cors_origins == ("a", "b") and s.resolved_store_url.endswith(".events.sqlite")
    assert s.compute_threads == 2 and ServingSettings(bundle_path=tmp_path).compute_threads == 1
    with pytest.raises(ConfigError, match="compute_threads"):
        ServingSettings(bundle_path=tmp_path, compute_threads=0)
    with pytest.raises(ConfigError, match="integer"):
        ServingSettings.from_env({"FUSIONREC_SERVE_BUNDLE_PATH": "x", "FUSIONREC_SERVE_MAX_K": "many"})
    with pytest.raises(ConfigError, match="BUNDLE_PATH"):
        ServingSettings.from_env({})
    with pytest.raises(ConfigError):
        ServingSettings(bundle_path=tmp_path, index="magic")


def test_compute_threads_are_capped_in_the_process() -> None:
    """The serving lifespan caps BLAS/OpenMP pools (no oversubscription between concurrent requests)."""
    import numpy as np  # noqa: F401  (loads the BLAS the limit applies to)
    from threadpoolctl import threadpool_info, threadpool_limits

    from fusionrec.serving.app import limit_compute_threads

    torch = sys.modules.get("torch")
    torch_threads = torch.get_num_threads() if torch is not None else None
    try:
        with threadpool_limits(limits=None):  # restores the BLAS/OpenMP pools afterwards
            limit_compute_threads(1)
            pools = [p for p in threadpool_info() if p["user_api"] in ("blas", "openmp")]
            assert pools and all(p["num_threads"] == 1 for p in pools)
    finally:
        if torch is not None:
            torch.set_num_threads(torch_threads)


def test_recommend_endpoint_equals_model_recommend(client: Any) -> None:
    """One top-k for the library and the service: same items, scores and tie order, short lists included."""
    from fusionrec.serving import load_bundle

    bundle = load_bundle(client.app.state.settings.bundle_path)
    model, users, items = bundle.model, bundle.user_ids.ids, bundle.item_ids.ids
    for u in (1, 4):
        for k in (7, len(items)):  # every item: the list is shorter than k (seen items left out)
            got = client.get("/recommend", params={"user": users[u], "k": k}).json()["items"]
            idx, val = model.recommend(u, k)
            keep = idx[0] >= 0
            assert [x["item"] for x in got] == [items[j] for j in idx[0][keep]]
            np.testing.assert_allclose([x["score"] for x in got], val[0][keep], rtol=1e-6)
        assert len(got) == len(items) - model.seen_[u].nnz < len(items)
