from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fusionrec.data import Interactions
from fusionrec.data.idmap import IdMap
from fusionrec.errors import BundleError, ConfigError, IncompatibleBundleError
from fusionrec.models import BiasBaseline
from fusionrec.serving import load_bundle, save_bundle
from tests.conftest import make_interactions
from tests.serving._models import TinyMF


def test_roundtrip_str_ids_meta_features_no_pickle(tiny_bundle: Path, implicit_train: Interactions) -> None:
    b = load_bundle(tiny_bundle)
    assert b.user_ids == implicit_train.user_ids and b.item_ids == implicit_train.item_ids
    assert b.fingerprint == implicit_train.fingerprint()
    assert b.model_name == "TinyMF" and b.format_version == 2
    assert b.item_meta["genres"][0] == ["Comedy"] and b.item_meta["title"][0].startswith("Movie")
    assert b.item_features is not None and b.item_features.shape == (implicit_train.n_items, 5)
    with np.load(tiny_bundle / "serving.npz", allow_pickle=False) as npz:
        assert all(npz[k].dtype != object for k in npz.files)
    np.testing.assert_allclose(b.model.score([0, 1]), TinyMF(n_factors=6).fit(implicit_train).score([0, 1]), atol=1e-5)


def test_int_ids_roundtrip(tmp_path: Path) -> None:
    tr = Interactions.from_arrays([1, 1, 2, 3], [10, 20, 20, 30], [4.0, 3.0, 5.0, 1.0])
    b = load_bundle(save_bundle(tmp_path / "b", BiasBaseline().fit(tr), tr))
    assert b.user_ids.ids.dtype == np.int64 and b.item_ids.ids.tolist() == [10, 20, 30]
    assert b.item_meta == {}


def test_tampered_truncated_newer_and_mismatch(tiny_bundle: Path, implicit_train: Interactions) -> None:
    arrays = tiny_bundle / "serving.npz"
    blob = arrays.read_bytes()
    arrays.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(BundleError, match="checksum"):
        load_bundle(tiny_bundle)
    arrays.write_bytes(blob)
    model_arrays = tiny_bundle / "model" / "arrays.npz"
    mblob = model_arrays.read_bytes()
    model_arrays.write_bytes(mblob[:-10] + b"0123456789")
    with pytest.raises(BundleError, match="model inside"):
        load_bundle(tiny_bundle)
    model_arrays.write_bytes(mblob)
    manifest = json.loads((tiny_bundle / "bundle.json").read_text())
    manifest["format_version"] = 99
    (tiny_bundle / "bundle.json").write_text(json.dumps(manifest))
    with pytest.raises(IncompatibleBundleError, match="upgrade"):
        load_bundle(tiny_bundle)
    with pytest.raises(BundleError, match="not a serving bundle"):
        load_bundle(tiny_bundle.parent / "absent")
    other = make_interactions(n_users=20, n_items=10, seed=1, explicit=False)
    with pytest.raises(ConfigError, match="fitted on"):
        save_bundle(tiny_bundle.parent / "x", TinyMF().fit(other), implicit_train)
    with pytest.raises(ConfigError, match="values for"):
        save_bundle(tiny_bundle.parent / "y", TinyMF().fit(other), other, {"title": ["a"]})


def test_overwrite_is_atomic(tiny_bundle: Path, implicit_train: Interactions) -> None:
    save_bundle(tiny_bundle, TinyMF(n_factors=3).fit(implicit_train), implicit_train)
    assert load_bundle(tiny_bundle).model.n_factors == 3
    assert sorted(p.name for p in tiny_bundle.parent.iterdir() if p.name.startswith(".")) == []


def test_item_meta_from_a_users_own_columns() -> None:
    """Datasets from users' files name columns freely: first text = title, categorical = genres, image = poster."""
    from fusionrec.data.dataset import Dataset
    from fusionrec.data.modalities import Modality
    from fusionrec.serving import item_meta_from_dataset

    inter = make_interactions(n_users=12, n_items=4, seed=1)
    items = inter.item_ids.ids.tolist()
    ds = Dataset(
        "own",
        inter,
        item_modalities={
            "name": Modality("text", IdMap(items[:3]), ["Alpha", "Beta", "Gamma"]),
            "blurb": Modality("text", IdMap(items), ["a", "b", "c", "d"]),
            "tags": Modality("categorical", IdMap(items), [["x"], ["x", "y"], [], ["z"]]),
            "cover": Modality("image", IdMap(items[:1]), ["/img/a.jpg"]),
        },
    )
    meta = item_meta_from_dataset(ds)
    assert meta["title"] == ["Alpha", "Beta", "Gamma", ""]
    assert meta["genres"] == [["x"], ["x", "y"], [], ["z"]]
    assert meta["poster"] == ["/img/a.jpg", "", "", ""]


def test_side_information_with_social_roundtrips(tmp_path: Path, implicit_train: Interactions) -> None:
    import scipy.sparse as sp

    from fusionrec.data.side import SideInfo

    n_u, n_i = implicit_train.n_users, implicit_train.n_items
    rng = np.random.default_rng(0)
    side = SideInfo(
        item_features={"dense": rng.random((n_i, 3)).astype(np.float32)},
        user_features={"age": rng.random((n_u, 1)).astype(np.float32)},
        social=sp.csr_matrix(sp.random(n_u, n_u, density=0.1, random_state=0, format="csr", dtype=np.float32)),
        item_kinds={"dense": "features"},
    )
    b = load_bundle(save_bundle(tmp_path / "s", TinyMF().fit(implicit_train), implicit_train, side=side))
    assert b.side is not None and b.side.social is not None
    np.testing.assert_array_equal(b.side.item_features["dense"], side.item_features["dense"])
    np.testing.assert_array_equal(b.side.user_features["age"], side.user_features["age"])
    assert (b.side.social != side.social).nnz == 0
    with pytest.raises(ConfigError, match="rows"):
        save_bundle(tmp_path / "bad", TinyMF().fit(implicit_train), implicit_train,
                    side=SideInfo(item_features={"dense": np.ones((3, 2), np.float32)}))  # fmt: skip
