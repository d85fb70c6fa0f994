"""Dataset registry: list/load by name, clear not-found errors, benchmark splits aligned with datasets."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import fusionrec.data.datasets as datasets_pkg
from fusionrec.data.datasets import list_datasets, load_benchmark_split, load_dataset
from fusionrec.errors import ConfigError, DatasetNotFoundError

from .test_movielens import write_ml100k


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUSIONREC_CACHE_DIR", str(tmp_path / "cache"))


def test_list_datasets(tmp_path: Path) -> None:
    write_ml100k(tmp_path / "ml-100k")
    infos = {d.name: d for d in list_datasets(tmp_path)}
    assert {"synthetic", "ml-100k", "ml-latest-small", "ml-posters", "filmtrust"} <= set(infos)
    assert infos["ml-100k"].present and infos["ml-100k"].path == str(tmp_path / "ml-100k")
    assert not infos["filmtrust"].present and infos["synthetic"].present
    for d in infos.values():
        assert d.description and d.format and d.source


def test_load_by_name_and_not_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_ml100k(tmp_path / "ml-100k")
    assert load_dataset("ml-100k", tmp_path).interactions.nnz == 6
    monkeypatch.setenv("FUSIONREC_DATA_DIR", str(tmp_path))
    assert load_dataset("ml-100k").name == "ml-100k"  # default from the environment
    with pytest.raises(
        DatasetNotFoundError, match=r"has no 'ml-latest-small' folder.*fusionrec datasets fetch ml-latest"
    ):
        load_dataset("ml-latest-small", tmp_path)
    with pytest.raises(DatasetNotFoundError, match="cannot be downloaded automatically"):
        load_dataset("filmtrust", tmp_path)
    monkeypatch.delenv("FUSIONREC_DATA_DIR")
    with pytest.raises(DatasetNotFoundError, match="FUSIONREC_DATA_DIR"):
        load_dataset("ml-100k")
    with pytest.raises(ConfigError, match="unknown dataset"):
        load_dataset("netflix", tmp_path)


def test_synthetic_is_lazy(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}

    def make_synthetic(**kw: object) -> str:
        seen.update(kw)
        return "made"

    fake = types.ModuleType("fusionrec.data.datasets.synthetic")
    fake.make_synthetic = make_synthetic  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fusionrec.data.datasets.synthetic", fake)
    monkeypatch.setattr(datasets_pkg, "synthetic", fake, raising=False)
    assert load_dataset("synthetic", n_users=5, seed=1) == "made"
    assert seen == {"n_users": 5, "seed": 1}


def test_benchmark_split_tiny(tmp_path: Path) -> None:
    write_ml100k(tmp_path / "ml-100k")
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "ml-100k.random811.csv").write_text(
        "userId,movieId,rating,timestamp,x_label\n1,10,5,100,0\n1,20,3,101,2\n2,10,4,102,0\n2,30,1,103,1\n"
        "3,20,2,104,0\n3,30,4,105,0\n"
    )
    split = load_benchmark_split("ml-100k.random811", tmp_path)
    ds = load_dataset("ml-100k", tmp_path)
    assert split.train.item_ids == ds.item_ids and split.train.user_ids == ds.user_ids
    assert split.summary() == {"train": 4, "valid": 1, "test": 1}
    assert load_benchmark_split("ml-100k.u1", tmp_path).summary() == {"train": 3, "test": 3}
    write_ml100k(tmp_path / "other" / "ml-100k")
    with pytest.raises(DatasetNotFoundError, match=r"splits/ml-100k\.random811"):
        load_benchmark_split("ml-100k.random811", tmp_path / "other")
    with pytest.raises(ConfigError, match="unknown benchmark split"):
        load_benchmark_split("ml-100k.random999", tmp_path)


@pytest.mark.slow
@pytest.mark.realdata
def test_benchmark_splits_real(data_dir: Path) -> None:
    split = load_benchmark_split("ml-latest-small.random811", data_dir)
    assert split.summary() == {"train": 80650, "valid": 10093, "test": 10093}
    ds = load_dataset("ml-latest-small", data_dir)
    assert split.train.item_ids == ds.item_ids and split.train.user_ids == ds.user_ids
    posters = load_dataset("ml-posters", data_dir)
    for name in ("ml-posters.random811", "ml-posters.coldstart-items"):
        s = load_benchmark_split(name, data_dir)
        assert s.train.item_ids == posters.item_ids
        assert sum(s.summary().values()) == 58498
    cold = load_benchmark_split("ml-posters.coldstart-items", data_dir)
    assert cold.cold == "items"
    test_items = np.unique(cold.test.matrix.indices)
    assert (cold.train.item_counts()[test_items] == 0).all()
    _, has_poster = posters.item_modalities["poster"].align(cold.test.item_ids)
    assert has_poster[test_items].all()
    ml100k = load_benchmark_split("ml-100k.random811", data_dir)
    assert sum(ml100k.summary().values()) == 100000


@pytest.mark.slow
@pytest.mark.realdata
def test_list_datasets_real(data_dir: Path) -> None:
    present = {d.name for d in list_datasets(data_dir) if d.present}
    assert {"ml-100k", "ml-latest-small", "ml-posters", "filmtrust"} <= present


def test_load_dataset_path_in_data_dir(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "ratings.csv").write_text("user,item,rating\n1,10,5\n2,10,3\n")
    (mine / "items.csv").write_text("item,title\n10,A long story about a cat\n11,Another tale of two dogs\n")
    ds = load_dataset("mine", tmp_path)  # relative to data_dir, not the working directory
    assert ds.name == "mine" and ds.item_ids.ids.tolist() == [10, 11] and ds.interactions.explicit
    with pytest.raises(ConfigError, match=r"neither a known name \(\['synthetic', 'ml-100k'.*or to a folder"):
        load_dataset("yours", tmp_path)


def test_a_configured_data_directory_that_does_not_exist_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FUSIONREC_DATA_DIR pointing nowhere: the error says so, not "no data directory is set" (issue 11)."""
    missing = tmp_path / "gone"
    monkeypatch.setenv("FUSIONREC_DATA_DIR", str(missing))
    monkeypatch.setenv("FUSIONREC_CACHE_DIR", str(tmp_path / "cache"))
    expected = f"the data directory {missing} (FUSIONREC_DATA_DIR) does not exist"
    for load in (lambda: load_dataset("ml-100k"), lambda: load_benchmark_split("ml-100k.random811")):
        with pytest.raises(DatasetNotFoundError, match=re.escape(expected)):
            load()
    with pytest.raises(DatasetNotFoundError, match=re.escape(f"the data directory {tmp_path / 'x'} does not exist")):
        load_dataset("filmtrust", data_dir=tmp_path / "x")
    monkeypatch.delenv("FUSIONREC_DATA_DIR")
    with pytest.raises(DatasetNotFoundError, match="no data directory is set"):
        load_dataset("filmtrust")
