from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fusionrec.data import Interactions
from fusionrec.errors import BundleError, IncompatibleBundleError
from fusionrec.models import BiasBaseline, load_model


def _saved(tmp_path: Path, interactions: Interactions) -> tuple[BiasBaseline, Path]:
    model = BiasBaseline(reg_user=3.0).fit(interactions)
    return model, model.save(tmp_path / "bundle")


def test_roundtrip_without_pickle(tmp_path: Path, interactions: Interactions) -> None:
    model, path = _saved(tmp_path, interactions)
    with np.load(path / "arrays.npz", allow_pickle=False) as npz:
        assert "user_bias_" in npz.files
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["model"] == "BiasBaseline" and manifest["params"]["reg_user"] == 3.0
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.score([0, 1]), model.score([0, 1]))


def test_overwrite_is_atomic_and_leaves_no_temp(tmp_path: Path, interactions: Interactions) -> None:
    _, path = _saved(tmp_path, interactions)
    BiasBaseline(reg_user=9.0).fit(interactions).save(path)
    assert json.loads((path / "manifest.json").read_text())["params"]["reg_user"] == 9.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_tampered_truncated_newer_and_missing(tmp_path: Path, interactions: Interactions) -> None:
    _, path = _saved(tmp_path, interactions)
    blob = (path / "arrays.npz").read_bytes()
    (path / "arrays.npz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(BundleError, match="checksum"):
        load_model(path)
    (path / "arrays.npz").write_bytes(blob)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["format_version"] = 99
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IncompatibleBundleError, match="upgrade"):
        load_model(path)
    with pytest.raises(BundleError, match="not a fusionrec bundle"):
        load_model(tmp_path / "nothing")


def test_a_bundle_saved_before_a_parameter_rename_still_loads(tmp_path: Path, interactions: Interactions) -> None:
    """Format-1 bundles stored ALS's ``factors`` (now ``n_factors``); loading maps the old name."""
    import hashlib

    from fusionrec.models import make_model

    model = make_model("ALS", n_factors=3, epochs=2, seed=0).fit(interactions)
    path = model.save(tmp_path / "als")
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["params"]["factors"] = manifest["params"].pop("n_factors")
    for key in ("sha256", "children"):
        manifest.pop(key, None)
    manifest["format_version"] = 1
    manifest["arrays_sha256"] = hashlib.sha256((path / "arrays.npz").read_bytes()).hexdigest()
    (path / "manifest.json").write_text(json.dumps(manifest))
    loaded = load_model(path)
    assert loaded.get_params()["n_factors"] == 3
    np.testing.assert_allclose(loaded.score([0, 1]), model.score([0, 1]))
