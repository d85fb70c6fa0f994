"""TikTok (DiffMM split): a tiny folder written here, and the real files (realdata, slow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fusionrec.data.datasets import list_datasets, load_benchmark_split, load_dataset
from fusionrec.data.datasets.tiktok import load_tiktok
from fusionrec.errors import DataError, DatasetNotFoundError
from fusionrec.features import build_side_info

ROWS = "userId,itemId,x_label\n0,0,0\n0,1,0\n0,3,1\n1,1,0\n1,2,2\n2,0,0\n2,3,2\n"


def write_tiktok(data_dir: Path, rows: str = ROWS, n_items: int = 4) -> Path:
    root = data_dir / "tiktok"
    root.mkdir(parents=True, exist_ok=True)
    (root / "tiktok.diffmm.csv").write_text(rows)
    rng = np.random.default_rng(0)
    for name in ("image", "audio"):
        np.save(root / f"{name}_feat.npy", rng.normal(size=(n_items, 5)).astype(np.float16))
    return root


def test_tiktok_by_name(tmp_path: Path) -> None:
    root = write_tiktok(tmp_path)
    assert {d.name: d.present for d in list_datasets(tmp_path)}["tiktok"]
    ds = load_dataset("tiktok", tmp_path)
    assert ds.interactions.shape == (3, 4) and ds.interactions.nnz == 7 and not ds.interactions.explicit
    assert ds.item_ids.ids.tolist() == [0, 1, 2, 3]
    split = load_benchmark_split("tiktok.diffmm", tmp_path)
    assert split.summary() == {"train": 4, "valid": 1, "test": 2} and split.name == "tiktok.diffmm"
    assert split.train.item_ids == ds.item_ids and split.test.user_ids == ds.user_ids
    assert split.test.matrix[1, 2] == 1 and split.valid is not None and split.valid.matrix[0, 3] == 1
    side, _ = build_side_info(ds, cache=False)
    assert sorted(side.item_features) == ["audio", "image"]
    img = side.item_features["image"]
    assert img.dtype == np.float32 and img.shape == (4, 5)
    assert np.array_equal(img[2], np.load(root / "image_feat.npy")[2].astype(np.float32))  # row i = item i


def test_tiktok_bad_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="'tiktok'"):
        load_dataset("tiktok", tmp_path)
    write_tiktok(tmp_path / "a", ROWS.replace("1,2,2", "1,2,5"))
    with pytest.raises(DataError, match=r"x_label must be 0 \(train\), 1 \(valid\) or 2 \(test\), got 5"):
        load_tiktok(tmp_path / "a" / "tiktok")
    write_tiktok(tmp_path / "b", n_items=3)
    with pytest.raises(DataError, match=r"float array \[4, d\]"):
        load_tiktok(tmp_path / "b" / "tiktok")
    write_tiktok(tmp_path / "c", ROWS.replace("0,3,1\n", ""))
    with pytest.raises(DataError, match="no rows with x_label 1"):
        load_tiktok(tmp_path / "c" / "tiktok")


@pytest.mark.slow
@pytest.mark.realdata
def test_tiktok_real(data_dir: Path) -> None:
    if not (data_dir / "tiktok").is_dir():
        pytest.skip("no tiktok folder in the data directory")
    ds = load_dataset("tiktok", data_dir)
    split = load_benchmark_split("tiktok.diffmm", data_dir)
    assert ds.interactions.shape == (9308, 6710)
    assert split.summary() == {"train": 59541, "valid": 3051, "test": 6130}
    assert int((split.test.user_counts() > 0).sum()) == 6130  # one test item per test user
    train_counts = split.train.item_counts()
    test_items = np.unique(split.test.matrix.indices)
    assert int((train_counts[test_items] == 0).sum()) == 340  # PROVENANCE.txt: content-only test items
    side, _ = build_side_info(ds, cache=False)
    assert {k: v.shape for k, v in side.item_features.items()} == {"image": (6710, 128), "audio": (6710, 128)}
