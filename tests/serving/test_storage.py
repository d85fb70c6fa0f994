"""The one on-disk writer (fusionrec._storage): checksum over manifest and arrays, atomic replace, crash recovery."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from fusionrec._storage import read_dir, read_manifest, write_dir
from fusionrec.data import Interactions
from fusionrec.errors import BundleError
from fusionrec.models import BiasBaseline, load_model
from fusionrec.serving import load_bundle, save_bundle
from tests.conftest import make_interactions
from tests.serving._models import TinyMF


def _write(path: Path, value: float) -> Path:
    return write_dir(path, {"format_version": 2, "value": value}, {"x": np.full(3, value, np.float32)})


def test_roundtrip_and_an_edited_manifest_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "d", 1.0)
    manifest = read_manifest(path, max_version=2)
    np.testing.assert_array_equal(read_dir(path, manifest)["x"], np.ones(3, np.float32))
    edited = dict(manifest, value=2.0)  # the arrays are untouched, the checksum covers the manifest too
    (path / "manifest.json").write_text(json.dumps(edited))
    with pytest.raises(BundleError, match="checksum"):
        read_dir(path, read_manifest(path))


def test_an_edited_serving_manifest_is_refused(tiny_bundle: Path) -> None:
    mpath = tiny_bundle / "bundle.json"
    manifest = json.loads(mpath.read_text())
    manifest["store_seq"] = 99
    mpath.write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="checksum"):
        load_bundle(tiny_bundle)


def test_mixed_up_child_directories_are_refused(tmp_path: Path, implicit_train: Interactions) -> None:
    a = save_bundle(tmp_path / "a", TinyMF(n_factors=2).fit(implicit_train), implicit_train)
    b = save_bundle(tmp_path / "b", TinyMF(n_factors=3).fit(implicit_train), implicit_train)
    (a / "model").rename(tmp_path / "a-model")
    (b / "model").rename(a / "model")
    with pytest.raises(BundleError, match="recorded"):
        load_bundle(a)


def test_crash_between_the_renames_keeps_the_old_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path / "d", 1.0)
    real_rename = Path.rename
    calls = {"n": 0}

    def crashing_rename(self: Path, target: Path) -> Path:
        calls["n"] += 1
        if calls["n"] == 2:  # old moved aside, new not yet in place: the process dies here
            raise KeyboardInterrupt("killed")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", crashing_rename)
    with pytest.raises(KeyboardInterrupt):
        _write(path, 2.0)
    monkeypatch.setattr(Path, "rename", real_rename)
    assert not path.exists() and (tmp_path / ".d.old").is_dir()  # the state a kill leaves
    manifest = read_manifest(path)  # every read recovers first
    assert manifest["value"] == 1.0 and read_dir(path, manifest)["x"][0] == 1.0
    _write(path, 3.0)  # and the next write succeeds, leaving nothing behind
    assert read_manifest(path)["value"] == 3.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_format_1_directories_still_load(tmp_path: Path, implicit_train: Interactions) -> None:
    """Bundles written before the one-checksum format: arrays_sha256 over the arrays only, no child checksums."""
    tr = make_interactions(n_users=30, n_items=20, seed=2)
    model = BiasBaseline().fit(tr)
    path = save_bundle(tmp_path / "old", model, tr, item_features=np.eye(20, 4, dtype=np.float32))
    for mpath, apath in ((path / "model" / "manifest.json", path / "model" / "arrays.npz"),
                         (path / "bundle.json", path / "serving.npz")):  # fmt: skip
        manifest = json.loads(mpath.read_text())
        for key in ("sha256", "children", "side"):
            manifest.pop(key, None)
        manifest["format_version"] = 1
        manifest["arrays_sha256"] = hashlib.sha256(apath.read_bytes()).hexdigest()
        mpath.write_text(json.dumps(manifest))
    # format 1 kept dense features as one array
    with np.load(path / "serving.npz") as npz:
        arrays = {k: npz[k] for k in npz.files if not k.startswith("side.")}
    arrays["item_features"] = np.eye(20, 4, dtype=np.float32)
    np.savez(path / "serving.npz", **arrays)
    manifest = json.loads((path / "bundle.json").read_text())
    manifest["arrays_sha256"] = hashlib.sha256((path / "serving.npz").read_bytes()).hexdigest()
    (path / "bundle.json").write_text(json.dumps(manifest))
    b = load_bundle(path)
    assert b.format_version == 1 and b.item_features is not None and b.item_features.shape == (20, 4)
    np.testing.assert_allclose(b.model.score([0, 1]), model.score([0, 1]))
    np.testing.assert_allclose(load_model(path / "model").score([0]), model.score([0]))


def test_temporary_directories_of_killed_writers_are_cleaned(tmp_path: Path) -> None:
    import os
    import time

    path = _write(tmp_path / "d", 1.0)
    stale, fresh = tmp_path / ".d.abc123", tmp_path / ".d.def456"
    stale.mkdir()
    fresh.mkdir()
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    _write(path, 2.0)
    assert not stale.exists() and fresh.exists()  # a young one may belong to a writer still running
