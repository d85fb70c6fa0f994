"""MMRec format: .inter TSV with x_label + *_feat.npy item features, on tiny files written here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fusionrec.data.datasets import load_mmrec
from fusionrec.errors import DataError, DatasetNotFoundError, EmptyDataError, MissingColumnError

INTER = (
    "userID\titemID\trating\ttimestamp\tx_label\n"
    "0\t0\t5\t100\t0\n0\t1\t4\t101\t0\n1\t1\t3\t102\t0\n1\t2\t5\t103\t1\n0\t3\t2\t104\t2\n2\t0\t1\t105\t2\n"
)


def write_mmrec(root: Path, inter: str = INTER, n_items: int = 4) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "baby.inter").write_text(inter)
    rng = np.random.default_rng(0)
    np.save(root / "image_feat.npy", rng.normal(size=(n_items, 6)).astype(np.float32))
    np.save(root / "text_feat.npy", rng.normal(size=(n_items, 3)))
    return root


def test_mmrec_dataset_and_split(tmp_path: Path) -> None:
    ds, split = load_mmrec(write_mmrec(tmp_path / "baby"), "baby")
    assert ds.interactions.shape == (3, 4) and ds.interactions.nnz == 6 and not ds.interactions.explicit
    assert split.summary() == {"train": 3, "valid": 1, "test": 2}
    assert split.train.item_ids == ds.item_ids and split.test.user_ids == ds.user_ids
    img, present = ds.item_features("image")
    assert img.shape == (4, 6) and present.all()
    raw = np.load(tmp_path / "baby" / "image_feat.npy")
    assert np.allclose(img[ds.item_ids.to_index(3)], raw[3])
    assert ds.item_features("text")[0].shape == (4, 3)
    explicit, _ = load_mmrec(tmp_path / "baby", "baby", implicit=False)
    assert explicit.interactions.explicit and sorted(explicit.interactions.matrix.data.tolist()) == [1, 2, 3, 4, 5, 5]


def test_mmrec_bad_input(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"baby\.inter"):
        load_mmrec(tmp_path / "missing", "baby")
    root = write_mmrec(tmp_path / "a", INTER.replace("\t0\n0\t1", "\t7\n0\t1"))
    with pytest.raises(DataError, match=r"line 2: x_label must be 0 \(train\), 1 \(valid\) or 2 \(test\), got 7"):
        load_mmrec(root, "baby")
    root = write_mmrec(tmp_path / "b", INTER.replace("userID", "uid_x"))
    with pytest.raises(MissingColumnError, match="userID"):
        load_mmrec(root, "baby")
    root = write_mmrec(tmp_path / "c", n_items=2)
    with pytest.raises(DataError, match=r"2 rows but itemID goes up to 3"):
        load_mmrec(root, "baby")
    root = write_mmrec(tmp_path / "d")
    bad = np.ones((4, 3))
    bad[2, 1] = np.nan
    np.save(root / "text_feat.npy", bad)
    with pytest.raises(DataError, match="first itemID 2"):
        load_mmrec(root, "baby")
    root = write_mmrec(tmp_path / "e", "userID\titemID\tx_label\n")
    with pytest.raises(EmptyDataError):
        load_mmrec(root, "baby")
    root = write_mmrec(tmp_path / "f", INTER.replace("\t2\n", "\t0\n"))
    with pytest.raises(DataError, match="test"):
        load_mmrec(root, "baby")
    root = write_mmrec(tmp_path / "g")
    (root / "image_feat.npy").write_bytes(b"not numpy")
    with pytest.raises(DataError, match="readable"):
        load_mmrec(root, "baby")
