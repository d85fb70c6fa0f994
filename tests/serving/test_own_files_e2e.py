"""The promise end to end: a user's own files (a behaviour log and an item table with text, categories and image
files) -> `fusionrec train` with one command -> the HTTP service -> a new item posted with only its text and image is
placed by its content: next to its look-alikes in /similar and in /recommend for a fitting user, and a retrain keeps
it so."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("fastapi")
pytest.importorskip("torch")

KEY = {"X-API-Key": "k"}
TOPICS = {
    "space": ("rocket orbit planet astronaut galaxy launch", (30, 60, 200)),
    "cooking": ("recipe kitchen bake flavour chef oven", (200, 40, 30)),
    "football": ("goal match striker league stadium referee", (40, 180, 50)),
}
N_PER_TOPIC, N_USERS = 12, 60


def _png(path: Path, rgb: tuple[int, int, int], seed: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(seed)
    arr = np.clip(np.array(rgb)[None, None, :] + rng.normal(0, 12, (24, 24, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(arr, mode="RGB").save(path)


def _write_files(root: Path) -> None:
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    rows, topic_of = [], []
    for t, (topic, (words, rgb)) in enumerate(TOPICS.items()):
        vocab = words.split()
        for j in range(N_PER_TOPIC):
            item = f"{topic[:2]}{j}"
            _png(root / "images" / f"{item}.png", rgb, seed=100 * t + j)
            title = " ".join(rng.choice(vocab, 2, replace=False))
            desc = " ".join(rng.choice(vocab, 6))
            rows.append(f"{item},{title},{desc},{topic}|{'new' if j % 2 else 'classic'},images/{item}.png")
            topic_of.append(t)
    (root / "items.csv").write_text("item,title,description,genres,image\n" + "\n".join(rows) + "\n")
    items = [r.split(",")[0] for r in rows]
    topic_arr = np.array(topic_of)
    log = ["user,item"]
    for u in range(N_USERS):  # user u likes topic u % 3, plus one random item
        pool = np.flatnonzero(topic_arr == u % 3)
        picks = {*rng.choice(pool, 7, replace=False).tolist(), int(rng.integers(len(items)))}
        log += [f"user{u},{items[i]}" for i in sorted(picks)]
    (root / "ratings.csv").write_text("\n".join(log) + "\n")


@pytest.fixture(scope="module")
def own_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("own") / "shop"
    _write_files(root)
    return root


def _train(own_files: Path, out: Path, model: str, *params: str) -> Path:
    from fusionrec.cli.main import app

    args = ["train", "--interactions", str(own_files / "ratings.csv"), "--items", str(own_files / "items.csv")]
    args += ["--model", model, "--out", str(out)]
    for p in params:
        args += ["-p", p]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "bundle written" in res.output
    return out


def _client(bundle: Path, content_root: Path) -> Iterator:
    from fastapi.testclient import TestClient

    from fusionrec.serving import ServingSettings, create_app

    settings = ServingSettings(
        bundle_path=bundle,
        store_url=f"sqlite:///{bundle}.db",
        api_key="k",
        sync_interval_s=0,
        content_root=content_root,
    )
    with TestClient(create_app(settings)) as client:
        yield client


#: a new item posted with raw content (text and a poster under the served content root), for the serving tests
SPACE_ITEM = {
    "item": "space-new",
    "title": "astronaut orbit",
    "content": {
        "title": "astronaut orbit",
        "description": "rocket launch galaxy planet orbit astronaut",
        "image": "poster.png",
    },
}


def _space_content(tmp_path: Path) -> Path:
    """A served content root holding SPACE_ITEM's poster (``poster.png``, the space topic's colour)."""
    content = tmp_path / "uploads"
    content.mkdir()
    _png(content / "poster.png", TOPICS["space"][1], seed=999)
    return content


MODELS = {
    "HybridMF": ("n_factors=16", "epochs=40", "seed=0"),
    "GraphFusion": ("n_factors=16", "epochs=60", "seed=0"),
}


@pytest.mark.parametrize("model", sorted(MODELS))
def test_new_item_from_text_and_image_is_served_by_its_content(model: str, own_files: Path, tmp_path: Path) -> None:
    bundle = _train(own_files, tmp_path / model.lower(), model, *MODELS[model])
    for client in _client(bundle, _space_content(tmp_path)):
        r = client.post("/items", json=SPACE_ITEM, headers=KEY)
        assert r.status_code == 201, r.text

        def look_alikes(client: Any = client) -> list[str]:
            r = client.get("/similar/space-new", params={"k": 5})
            assert r.status_code == 200, r.text
            return [x["item"] for x in r.json()["items"]]

        near = look_alikes()
        assert sum(i.startswith("sp") for i in near) >= 4, near

        # a space fan (user0 likes topic 0): among unseen items, the new one is ranked with the space items
        r = client.get("/recommend", params={"user": "user0", "k": 8}, headers=KEY)
        assert r.status_code == 200, r.text
        recs = [x["item"] for x in r.json()["items"]]
        assert "space-new" in recs, recs
        # and for a cooking fan it ranks below every unseen cooking item
        r = client.get("/recommend", params={"user": "user1", "k": 30}, headers=KEY)
        ranked = [x["item"] for x in r.json()["items"]]
        if "space-new" in ranked:
            cooking = [i for i in ranked if i.startswith("co")]
            assert ranked.index("space-new") > ranked.index(cooking[0]), ranked

        # a retrain from the stored events keeps the new item and its content
        r = client.post("/events", json={"events": [{"user": "user3", "item": "space-new"}]}, headers=KEY)
        assert r.status_code == 200, r.text
        r = client.post("/admin/retrain", params={"wait": True}, headers=KEY)
        assert r.status_code in (200, 202), r.text
        status = client.get("/admin/retrain", headers=KEY).json()
        assert status.get("last_error") in (None, ""), status
        near_after = look_alikes()
        assert sum(i.startswith("sp") for i in near_after) >= 4, near_after


def test_train_from_files_errors_are_one_line(own_files: Path, tmp_path: Path) -> None:
    from fusionrec.cli.main import app

    res = CliRunner().invoke(app, ["train", "--items", str(own_files / "items.csv"), "--out", str(tmp_path / "b")])
    assert res.exit_code == 2 and "--interactions" in res.output
    res = CliRunner().invoke(
        app,
        ["train", "--interactions", str(own_files / "ratings.csv"), "--model", "VBPR", "--out", str(tmp_path / "v")],
    )
    assert res.exit_code == 2 and "--items" in res.output  # a content model without content says what to add
