"""Every registered model trains from a user's own files through `fusionrec train` and its bundle loads, content
models included (they get the encoded item/user content; the bundle keeps it with the fitted encoders)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from fusionrec.models.registry import available_models, get_model_class

pytest.importorskip("torch")

ENSEMBLE_MEMBERS = {"models": [{"name": "ALS", "params": {"epochs": 2}}, {"name": "ContentKNN"}]}
FAST = {
    "SVDpp": {"epochs": 2},
    "TimeSVDpp": {"epochs": 2},
    "NMF": {"epochs": 5},
    "DeepFusion": {"epochs": 2},
    "FineTunedTwoTower": {"epochs": 1, "image_size": 64, "n_factors": 8},
}


@pytest.fixture(scope="module")
def own_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from fusionrec.data.datasets import load_dataset
    from fusionrec.data.datasets.synthetic import write_files

    ds = load_dataset("synthetic", n_users=40, n_items=30, seed=1, with_audio=False)
    return write_files(ds, tmp_path_factory.mktemp("own"))


@pytest.mark.parametrize("name", available_models())
def test_every_model_trains_from_files(name: str, own_files: dict[str, Path], tmp_path: Path) -> None:
    from fusionrec.serving.bundle import load_bundle
    from fusionrec.serving.cli import train_bundle

    params = ENSEMBLE_MEMBERS if "models" in get_model_class(name).param_names() else FAST.get(name, {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = train_bundle(None, name, tmp_path / name, params=dict(params), files=dict(own_files))
    bundle = load_bundle(path)
    assert bundle.side is not None and bundle.side.item_encoders  # the content and its fitted encoders are kept
    items, _ = bundle.model.recommend(0, k=5)
    assert (items >= 0).all()
