"""File content of new items: paths must resolve under the content root; multipart uploads are stored there."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fusionrec.data import Interactions
from fusionrec.data.side import SideInfo
from tests.serving._models import TinyMF
from tests.serving.conftest import make_client

KEY = {"X-API-Key": "k"}


def _png(colour: tuple[int, int, int]) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "content"
    (r / "img").mkdir(parents=True)
    return r


@pytest.fixture
def image_client(tmp_path: Path, root: Path, implicit_train: Interactions) -> Iterator[Any]:
    from fusionrec.features import ImageDescriptorEncoder
    from fusionrec.serving import save_bundle

    paths = []
    for j, raw in enumerate(implicit_train.item_ids.ids):
        p = root / "img" / f"{raw}.png"
        p.write_bytes(_png((220, 20, 20) if j % 2 == 0 else (20, 20, 220)))
        paths.append(str(p))
    enc = ImageDescriptorEncoder(size=32).fit(paths)
    side = SideInfo(
        item_features={"poster": enc.transform(paths)}, item_encoders={"poster": enc}, item_kinds={"poster": "image"}
    )
    bundle = save_bundle(tmp_path / "img-bundle", TinyMF(n_factors=4).fit(implicit_train), implicit_train, side=side)
    yield from make_client(bundle, api_key="k", content_root=root)


def test_image_paths_must_resolve_under_the_content_root(image_client: Any, root: Path, tmp_path: Path) -> None:
    c = image_client
    (root / "img" / "new.png").write_bytes(_png((230, 10, 10)))
    ok = c.post("/items", json={"item": "red", "content": {"poster": "img/new.png"}}, headers=KEY)
    assert ok.status_code == 201, ok.text
    st = c.app.state.engine.state
    i = st.item_index("red")
    assert st.side.item_present["poster"][i] and st.item_meta["poster"][i] == str((root / "img/new.png").resolve())
    assert c.get("/posters/red").status_code == 200
    outside = tmp_path / "outside.png"
    outside.write_bytes(_png((0, 0, 0)))
    os.symlink(outside, root / "img" / "link.png")
    for bad in (str(outside), "../outside.png", "img/link.png", "img/missing.png", "/etc/passwd"):
        r = c.post("/items", json={"item": "b", "content": {"poster": bad}}, headers=KEY)
        assert r.status_code == 400, (bad, r.text)
    assert st.item_index("b") is None and all(x.item != "b" for x in c.app.state.engine.store.items())


def test_multipart_upload_is_stored_and_placed(image_client: Any, root: Path) -> None:
    c = image_client
    files = {"file": ("cover.png", _png((200, 30, 30)), "image/png")}
    r = c.post("/items/up1/image", files=files, data={"title": "Uploaded"}, headers=KEY)
    assert r.status_code == 201, r.text
    st = c.app.state.engine.state
    i = st.item_index("up1")
    stored = Path(st.item_meta["poster"][i])
    assert stored.parent == (root / "uploads").resolve() and stored.read_bytes() == files["file"][1]
    assert st.item_meta["title"][i] == "Uploaded" and st.side.item_present["poster"][i]
    # placed at its 10 nearest items by image content: red ones (equal look-alikes: the lowest indices)
    item = st.model.factors().item
    red = np.arange(0, st.n_base_items, 2)[:10]
    np.testing.assert_allclose(item[i], item[red].mean(0), rtol=1e-4, atol=1e-5)
    assert c.post("/items/x/image", files={"file": ("a.txt", b"hi", "text/plain")}, headers=KEY).status_code == 400
    assert c.post("/items/x/image", files=files).status_code == 401


def test_file_content_without_a_content_root_is_refused(tiny_bundle: Path) -> None:
    gen = make_client(tiny_bundle, api_key="k")
    c = next(gen)
    try:
        r = c.post("/items/x/image", files={"file": ("a.png", _png((1, 2, 3)), "image/png")}, headers=KEY)
        assert r.status_code == 400 and "content root" in r.json()["detail"]
    finally:
        with pytest.raises(StopIteration):
            next(gen)
