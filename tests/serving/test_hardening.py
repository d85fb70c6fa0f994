"""Regression tests of issue 11 (the service half): every bad input is refused with 4xx, no accepted write poisons a
later read or retrain, errors are declared in the OpenAPI schema, /docs works offline, posters stay under the
content root, a failed retrain is reported as failed."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.serving._models import TinyMF
from tests.serving.conftest import make_client

KEY = {"X-API-Key": "secret"}


def _post(client: Any, path: str, body: Any) -> Any:
    """POST ``body`` as JSON text written by the json module (lone surrogates escaped, as a client could send)."""
    return client.post(path, content=json.dumps(body), headers={**KEY, "content-type": "application/json"})


def _ok_after(client: Any) -> None:
    """Reads listing every item still answer, and a retrain still succeeds."""
    assert client.get("/recommend", params={"user": "u1", "k": 40, "exclude_seen": False}).status_code == 200
    assert client.get("/similar/i1", params={"k": 40}).status_code == 200
    r = client.post("/admin/retrain", params={"wait": True}, headers=KEY)
    assert r.status_code == 202, r.text
    assert client.get("/admin/retrain").json()["state"] == "idle"
    assert client.get("/recommend", params={"user": "u1", "k": 40, "exclude_seen": False}).status_code == 200


@pytest.mark.parametrize(
    "event",
    [
        {"user": "u1", "item": "i1", "value": -1},  # implicit weights are >= 0
        {"user": "u1", "item": "i1", "value": 1e308},
        {"user": "u1", "item": "i1", "value": 1e40},
        {"user": "u1", "item": "i1", "timestamp": 2**63},
        {"user": "u1", "item": "i1", "timestamp": 1e30},
        {"user": True, "item": "i1"},  # JSON true is no id (it used to become user 1)
        {"user": 1.5, "item": "i1"},
        {"user": "", "item": "i1"},
        {"user": "x" * 257, "item": "i1"},
        {"user": "\ud800", "item": "i1"},  # a lone surrogate cannot be stored as UTF-8
        {"user": "a\x00b", "item": "i1"},
        {"user": 10**300, "item": "i1"},
    ],
)
def test_bad_events_are_refused_with_422_and_nothing_is_stored(client: Any, event: dict[str, Any]) -> None:
    r = _post(client, "/events", {"events": [event]})
    assert r.status_code == 422, r.text
    assert client.app.state.engine.store.count() == 0
    _ok_after(client)


def test_nan_literal_and_lone_surrogate_json_answer_422_not_500(client: Any) -> None:
    body = b'{"events": [{"user": "u1", "item": "i1", "value": NaN}]}'
    r = client.post("/events", content=body, headers={**KEY, "content-type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"]
    body = b'{"events": [{"user": "\\ud800", "item": "i1"}]}'
    r = client.post("/events", content=body, headers={**KEY, "content-type": "application/json"})
    assert r.status_code == 422
    r = client.post("/users", content=b'{"user": "u9", "attributes": {"a": "\\udfff"}}', headers=KEY)
    assert r.status_code == 422
    r = client.post("/items", content=b'{"item": "n1", "text": "\\ud83d"}', headers=KEY)
    assert r.status_code == 422
    r = client.post("/users", content=b'{"user": "u9", "attributes": {"a": NaN}}', headers=KEY)
    assert r.status_code == 422


def test_explicit_values_lie_in_the_training_rating_range(tmp_path: Path) -> None:
    from fusionrec.models import BiasBaseline
    from fusionrec.serving import save_bundle
    from tests.conftest import make_interactions

    train = make_interactions(n_users=30, n_items=20, seed=1, explicit=True)
    lo, hi = float(train.matrix.data.min()), float(train.matrix.data.max())
    bundle = save_bundle(tmp_path / "b", BiasBaseline().fit(train), train)
    gen = make_client(bundle)
    c = next(gen)
    item = str(train.item_ids.ids[0])
    assert c.post("/events", json={"events": [{"user": "n", "item": item, "value": hi + 1}]}).status_code == 422
    assert c.post("/events", json={"events": [{"user": "n", "item": item, "value": lo - 1}]}).status_code == 422
    assert c.post("/events", json={"events": [{"user": "n", "item": item, "value": hi}]}).status_code == 200
    assert c.post("/admin/retrain", params={"wait": True}).status_code == 202
    with pytest.raises(StopIteration):
        next(gen)


@pytest.mark.parametrize(
    "item",
    [
        {"item": "n1", "meta": {"genres x": "a"}},  # meta keys with a space made every later retrain fail
        {"item": "n1", "meta": {"_content": "a"}},
        {"item": "n1", "meta": {"title": ["a", "b"]}},  # list titles made every read listing the item 500
        {"item": "i1", "meta": {"title": ["a", "b"]}},  # on an existing item too
        {"item": "i1", "meta": {"genres": "Comedy"}},  # a label column gets labels
        {"item": "i1", "title": "\ud800"},
        {"item": "n1", "title": 5},
        {"item": "n1", "features": [1e308, 0, 0, 0, 0]},
        {"item": "n1", "poster": "/etc/passwd.png"},  # posters are URLs; files go through content or uploads
        {"item": "n1", "poster": "javascript:alert(1)"},
        {"item": "n1", "meta": {"email": "x"}, "content": {"a b": "x"}},
        {"item": "n1", "meta": {"x": True}},
    ],
)
def test_bad_items_are_refused_and_reads_and_retrain_still_work(client: Any, item: dict[str, Any]) -> None:
    r = _post(client, "/items", item)
    assert 400 <= r.status_code < 500, r.text
    titles = client.app.state.engine.state.item_meta["title"]
    assert all(isinstance(t, str) for t in titles)
    client.post("/events", json={"events": [{"user": "u1", "item": "i2"}]}, headers=KEY)
    _ok_after(client)


#: ids that differ as text: each names its own user, never merged with another (before or after a retrain)
DISTINCT_IDS = ("01", " 1", "1_0", "1", "+1", "1.0", "1e0", str(2**64), 2**64 + 1)


def _histories(client: Any, users: Any) -> dict[str, list[str]]:
    out = {}
    for user in users:
        r = client.get(f"/users/{user}/history")
        assert r.status_code == 200, (user, r.text)
        out[str(user)] = sorted(str(x["item"]) for x in r.json()["items"])
    return out


@pytest.mark.parametrize("int_ids", [False, True], ids=["string-bundle", "integer-bundle"])
def test_ids_are_strings_never_merged(tmp_path: Path, int_ids: bool) -> None:
    """Ids that differ as text stay apart, in a bundle of string ids and in one of integer ids (where "01", "+1"
    or "1.0" could be read as the bundle's user 1): each id has exactly its own history, before and after a
    retrain."""
    from fusionrec.data import Interactions
    from fusionrec.serving import save_bundle
    from tests.conftest import make_interactions

    base = make_interactions(n_users=30, n_items=20, seed=4, explicit=False)
    if int_ids:  # the same data with integer ids 1..30 / 1001..1020
        frame = base.to_frame()
        users = frame["user"].map({u: j + 1 for j, u in enumerate(base.user_ids.ids)}).to_numpy(np.int64)
        items = frame["item"].map({i: 1001 + j for j, i in enumerate(base.item_ids.ids)}).to_numpy(np.int64)
        base = Interactions.from_arrays(users, items, frame["rating"].to_numpy(), explicit=False)
    item_raw = [str(x) for x in base.item_ids.ids]
    bundle = save_bundle(tmp_path / "b", TinyMF(n_factors=4).fit(base), base)
    gen = make_client(bundle)
    c = next(gen)
    before = _histories(c, ["1"]) if int_ids else {}
    owned = {str(user): [item_raw[j]] for j, user in enumerate(DISTINCT_IDS)}
    for user in DISTINCT_IDS:
        r = c.post("/events", json={"events": [{"user": user, "item": owned[str(user)][0]}]})
        assert r.status_code == 200, r.text
    if int_ids:  # the bundle's user 1 also got the event of "1", and nothing of the others
        owned["1"] = sorted(set(before["1"]) | set(owned["1"]))
    assert _histories(c, DISTINCT_IDS) == {k: sorted(v) for k, v in owned.items()}
    known = 30 + len(DISTINCT_IDS) - (1 if int_ids else 0)
    assert c.get("/health").json()["users"] == known
    assert c.post("/admin/retrain", params={"wait": True}).status_code == 202
    assert c.get("/health").json()["users"] == known
    assert _histories(c, DISTINCT_IDS) == {k: sorted(v) for k, v in owned.items()}
    with pytest.raises(StopIteration):
        next(gen)


def test_a_json_integer_id_is_its_decimal_string(client: Any) -> None:
    """A JSON integer id names the user of its decimal string (schemas: ids are compared as their string): ``1``,
    ``1.0`` (JSON Schema's integer) and ``"1"`` are one user, not three."""
    for user in (1, 1.0, "1"):
        assert client.post("/events", json={"events": [{"user": user, "item": "i1"}]}, headers=KEY).status_code == 200
    users = client.get("/users", params={"limit": 1000}).json()["users"]
    assert [str(u) for u in users].count("1") == 1
    assert client.get("/health").json()["users"] == 51


def test_failed_retrain_is_reported_as_failed_with_its_reason(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from fusionrec.errors import DataError
    from fusionrec.serving import engine as engine_mod

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise DataError("the stored data cannot be trained on (for the test)")

    monkeypatch.setattr(engine_mod, "prepare_retrain", broken)
    r = client.post("/admin/retrain", headers=KEY)
    assert r.status_code == 400 and r.json()["started"] is False
    status = client.get("/admin/retrain").json()
    assert status["state"] == "failed" and "for the test" in status["last_error"]
    assert client.get("/health").json()["retrain"]["state"] == "failed"


def test_a_fit_that_fails_while_waited_for_answers_400(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from fusionrec.errors import DataError
    from fusionrec.serving import engine as engine_mod

    real = engine_mod.prepare_retrain

    def prepare(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)

        def job(path: Any) -> Any:
            raise DataError("fit diverged (for the test)")

        return job

    monkeypatch.setattr(engine_mod, "prepare_retrain", prepare)
    r = client.post("/admin/retrain", params={"wait": True}, headers=KEY)
    assert r.status_code == 400 and "diverged" in r.json()["status"]["last_error"]


def test_chunked_body_over_the_limit_gets_413(client: Any) -> None:
    limit = client.app.state.settings.max_body_bytes

    def chunks() -> Iterator[bytes]:
        yield b'{"events": ['
        for _ in range(limit // 40 + 10):
            yield b'{"user": "u1", "item": "i1", "value": 1},'
        yield b'{"user": "u1", "item": "i1"}]}'

    r = client.post("/events", content=chunks(), headers={**KEY, "content-type": "application/json"})
    assert r.status_code == 413
    assert client.app.state.engine.store.count() == 0
    # a chunked body under the limit is read as usual
    small = iter([b'{"events": [', b'{"user": "u1", "item": "i1"}]}'])
    assert client.post("/events", content=small, headers={**KEY, "content-type": "application/json"}).status_code == 200


def test_openapi_declares_the_error_answers(client: Any) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path, method in (("/events", "post"), ("/items", "post"), ("/users", "post")):
        assert {"400", "401", "404", "413", "422"} <= set(paths[path][method]["responses"]), path
    for path in ("/recommend", "/similar/{item}", "/explain", "/users/{user}/history"):
        assert {"401", "404", "422"} <= set(paths[path]["get"]["responses"]), path
    assert {"202", "400", "409", "422"} <= set(paths["/admin/retrain"]["post"]["responses"])
    assert "/items/{item}/image" not in paths  # no content root: no uploads


def test_docs_are_served_offline(client: Any) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "cdn" not in page.text.lower() and "/docs-assets/swagger-ui-bundle.js" in page.text
    js = client.get("/docs-assets/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000
    assert client.get("/docs-assets/swagger-ui.css").status_code == 200
    assert client.get("/docs-assets/../../app.py").status_code == 404


def test_posters_stay_under_the_content_root(tiny_bundle: Path, tmp_path: Path) -> None:
    root = tmp_path / "content"
    (root / "img").mkdir(parents=True)
    (root / "img" / "ok.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 32)
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"secret")
    os.symlink(secret, root / "img" / "link.png")
    gen = make_client(tiny_bundle, api_key="secret", content_root=root)
    c = next(gen)
    try:
        # file posters come from the bundle or from image content (resolved under the root when posted)
        st = c.app.state.engine.state
        assert c.post("/items", json={"item": "p1", "title": "P"}, headers=KEY).status_code == 201
        st.catalogue.set_meta(st.item_index("p1"), {"poster": "img/ok.png"})
        assert c.get("/posters/p1").status_code == 200
        # a file outside the root, a symlink out of it, a path climbing out: never served
        for bad in (str(secret), str(root / "img" / "link.png"), "../secret.png", "img/../../secret.png"):
            st.catalogue.set_meta(st.item_index("p1"), {"poster": bad})
            assert c.get("/posters/p1").status_code == 404, bad
        # a URL poster is handed to clients as is, never redirected to
        url = {"item": "p3", "poster": "https://x.example/a.png"}
        assert c.post("/items", json=url, headers=KEY).status_code == 201
        assert c.get("/posters/p3", follow_redirects=False).status_code == 404
        assert c.get("/recommend", params={"user": "u1", "k": 1000}).status_code == 200
        assert "/items/{item}/image" in c.get("/openapi.json").json()["paths"]
    finally:
        with pytest.raises(StopIteration):
            next(gen)


def test_posters_without_a_content_root_are_not_served(client: Any, tmp_path: Path) -> None:
    image = tmp_path / "any.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 32)
    client.app.state.engine.state.catalogue.set_meta(1, {"poster": str(image)})
    assert client.get("/posters/i1").status_code == 404


def test_private_reads_need_the_key_and_logs_carry_no_attributes(
    tiny_bundle: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    gen = make_client(tiny_bundle, api_key="secret", read_requires_key=True)
    c = next(gen)
    try:
        with caplog.at_level(logging.DEBUG):
            email = "someone@example.org"
            assert c.post("/users", json={"user": "p1", "attributes": {"email": email}}, headers=KEY).status_code == 201
            assert c.post("/events", json={"events": [{"user": "p1", "item": "i1"}]}, headers=KEY).status_code == 200
            assert c.post("/events", json={"events": [{"user": "p1", "item": "nope"}]}, headers=KEY).status_code == 404
            reads = [
                ("/users", {}),
                ("/users/p1/history", {}),
                ("/explain", {"user": "p1", "item": "i2"}),
                ("/recommend", {"user": "p1"}),
                ("/similar/i1", {}),
                ("/admin/retrain", {}),
            ]
            for path, params in reads:
                assert c.get(path, params=params).status_code == 401, path
                assert c.get(path, params=params, headers={"X-API-Key": "wrong"}).status_code == 401, path
                assert c.get(path, params=params, headers=KEY).status_code == 200, path
            assert c.get("/users/p1/history", headers=KEY).json()["attributes"] == {"email": email}
            assert c.post("/admin/retrain", params={"wait": True}, headers=KEY).status_code == 202
        assert email not in caplog.text
    finally:
        with pytest.raises(StopIteration):
            next(gen)


def _rewrite_arrays(bundle: Path, arrays: dict[str, Any], compressed: bool = False) -> None:
    """Replace ``serving.npz`` and re-sign the manifest (an attacker can compute a sha256 too)."""
    import io

    import numpy as np

    from fusionrec import _storage

    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    blob = buf.getvalue()
    (bundle / "serving.npz").write_bytes(blob)
    manifest = json.loads((bundle / "bundle.json").read_text())
    manifest[_storage.CHECKSUM_KEY] = _storage._checksum(manifest, blob)
    (bundle / "bundle.json").write_text(json.dumps(manifest))


def _arrays(bundle: Path) -> dict[str, Any]:
    import numpy as np

    with np.load(bundle / "serving.npz") as npz:
        return {k: npz[k] for k in npz.files}


def test_zip_bomb_arrays_are_refused_before_decompressing(tiny_bundle: Path) -> None:
    import numpy as np

    from fusionrec.errors import BundleError
    from fusionrec.serving import load_bundle

    arrays = _arrays(tiny_bundle)
    _rewrite_arrays(tiny_bundle, {**arrays, "pad": np.zeros(40_000_000, np.uint8)}, compressed=True)
    assert (tiny_bundle / "serving.npz").stat().st_size < 1_000_000
    with pytest.raises(BundleError, match="zip bomb"):
        load_bundle(tiny_bundle)


def test_an_array_header_larger_than_its_data_is_refused(tiny_bundle: Path) -> None:
    import io
    import zipfile

    import numpy as np

    from fusionrec import _storage
    from fusionrec.errors import BundleError
    from fusionrec.serving import load_bundle

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10**9,)})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("pad.npy", header.getvalue() + b"\0" * 64)
        for k, v in _arrays(tiny_bundle).items():
            one = io.BytesIO()
            np.save(one, v)
            zf.writestr(f"{k}.npy", one.getvalue())
    blob = buf.getvalue()
    (tiny_bundle / "serving.npz").write_bytes(blob)
    manifest = json.loads((tiny_bundle / "bundle.json").read_text())
    manifest[_storage.CHECKSUM_KEY] = _storage._checksum(manifest, blob)
    (tiny_bundle / "bundle.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="declares"):
        load_bundle(tiny_bundle)


def test_links_out_of_the_bundle_are_not_followed(tiny_bundle: Path, tmp_path: Path) -> None:
    import shutil

    from fusionrec.errors import BundleError
    from fusionrec.serving import load_bundle

    outside = tmp_path / "elsewhere.npz"
    shutil.move(tiny_bundle / "serving.npz", outside)
    os.symlink(outside, tiny_bundle / "serving.npz")
    with pytest.raises(BundleError, match="leads out of"):
        load_bundle(tiny_bundle)


def test_non_finite_side_features_are_refused_at_load(tiny_bundle: Path) -> None:
    import numpy as np

    from fusionrec.errors import BundleError
    from fusionrec.serving import load_bundle

    arrays = _arrays(tiny_bundle)
    key = next(k for k in arrays if k.startswith("side.") and arrays[k].dtype.kind == "f" and arrays[k].ndim == 2)
    bad = arrays[key].copy()
    bad[0, 0] = np.nan
    _rewrite_arrays(tiny_bundle, {**arrays, key: bad})
    with pytest.raises(BundleError, match="NaN"):
        load_bundle(tiny_bundle)


def test_non_finite_factors_are_refused_at_load(tmp_path: Path, implicit_train: Any) -> None:
    import numpy as np

    from fusionrec.errors import BundleError
    from fusionrec.serving import load_bundle, save_bundle
    from tests.serving._models import TinyMF

    model = TinyMF(n_factors=4).fit(implicit_train)
    model.item_factors_[3, 0] = np.inf
    path = save_bundle(tmp_path / "nan", model, implicit_train)
    with pytest.raises(BundleError, match="NaN or infinite"):
        load_bundle(path)
