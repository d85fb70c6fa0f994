"""The items' raw content in a serving bundle (``ItemDocuments``): stored only for a model that reads it and only the
kinds it declares, read back exactly (texts, image bytes, missing values), covered by the bundle's checksum, and a
retrain of a model that reads raw content without it says what to do."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from fusionrec.data.documents import ItemDocuments, image_bytes
from fusionrec.errors import BundleError, ConfigError, DataError


def test_documents_round_trip_through_arrays_and_grow_in_step(tmp_path: Path) -> None:
    png = tmp_path / "a.png"
    png.write_bytes(b"\x89PNG fake")
    docs = ItemDocuments.of(["first é", "  ", None], [str(png), None, tmp_path / "missing.png"])
    assert docs.texts == ["first é", None, None] and docs.images == [b"\x89PNG fake", None, None]
    kinds, arrays = docs.to_arrays("documents.")
    back = ItemDocuments.from_arrays(kinds, arrays, "documents.")
    assert back.texts == docs.texts and back.images == docs.images
    back.append(["new"], None, 1)  # a new item without an image
    assert back.n_items == 4 and back.texts[-1] == "new" and back.images[-1] is None
    assert back.take(np.array([3, 0])).texts == ["new", "first é"]
    with pytest.raises(DataError, match="1 new items"):
        back.append(["x", "y"], None, 1)
    arrays["documents.texts.ends"] = arrays["documents.texts.ends"] + 1  # past the end of the data
    with pytest.raises(ValueError, match="do not cut"):
        ItemDocuments.from_arrays(kinds, arrays, "documents.")


def test_image_arrays_are_kept_as_png_and_other_values_refused() -> None:
    from PIL import Image

    arr = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    data = image_bytes(arr)
    assert data is not None and data[:4] == b"\x89PNG"
    import io

    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data))), arr)
    with pytest.raises(DataError, match="uint8"):
        image_bytes(arr.astype(np.float32))
    with pytest.raises(DataError, match="file path, bytes or an array"):
        image_bytes(3.5)


def _deep_fusion_bundle(path: Path, documents: ItemDocuments) -> Path:
    pytest.importorskip("torch")
    from fusionrec.models.fusion.model import DeepFusion
    from fusionrec.serving.bundle import save_bundle
    from tests.models.recipes import contract_data

    data = contract_data()
    model = DeepFusion(n_factors=4, hidden=8, epochs=1, batch_size=64, text_tower="cnn", text_len=8, seed=0)
    model.fit(data.untimed, data.side, texts=data.texts)
    return save_bundle(path, model, data.untimed, side=data.side, documents=documents)


def test_a_bundle_keeps_the_declared_raw_content_under_its_checksum(tmp_path: Path) -> None:
    from fusionrec.serving.bundle import load_bundle
    from tests.models.recipes import contract_data

    data = contract_data()
    images = [b"img%d" % j for j in range(len(data.texts))]
    path = _deep_fusion_bundle(tmp_path / "b", ItemDocuments(list(data.texts), images))
    bundle = load_bundle(path)
    assert bundle.documents is not None
    assert bundle.documents.texts == data.texts and bundle.documents.images is None  # DeepFusion reads no images

    npz = path / "serving.npz"  # an edited document is refused by the checksum
    with zipfile.ZipFile(npz) as z:
        members = {n: z.read(n) for n in z.namelist()}
    with np.load(npz) as arrays:
        text = arrays["documents.texts.data"].copy()
    text[0] ^= 1
    import io

    buf = io.BytesIO()
    np.save(buf, text)
    members["documents.texts.data.npy"] = buf.getvalue()
    with zipfile.ZipFile(npz, "w") as z:
        for name, blob in members.items():
            z.writestr(name, blob)
    with pytest.raises(BundleError, match="checksum"):
        load_bundle(path)

    with pytest.raises(ConfigError, match="align them"):
        _deep_fusion_bundle(tmp_path / "c", ItemDocuments(list(data.texts)[:-1]))


def test_retrain_without_stored_raw_content_says_what_to_do(tmp_path: Path) -> None:
    from fusionrec.serving.bundle import load_bundle
    from fusionrec.serving.online import OnlineModel
    from fusionrec.serving.retrain import prepare_retrain
    from fusionrec.serving.store import open_store

    path = _deep_fusion_bundle(tmp_path / "b", ItemDocuments())  # nothing kept: a bundle written before this
    bundle = load_bundle(path)
    assert bundle.documents is None
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        with pytest.raises(ConfigError, match="write it again with `fusionrec train`"):
            prepare_retrain(OnlineModel(bundle), store)
    finally:
        store.close()
