"""build_side_info with weight-free defaults, PostProcess / Pipeline, encoders by name, and the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fusionrec.data import Dataset, IdMap, Modality
from fusionrec.errors import ConfigError
from fusionrec.features import (
    Pipeline,
    PostProcess,
    TfidfEncoder,
    build_side_info,
    encode_modality,
    make_encoder,
)

from ..conftest import make_interactions


def _dataset(image_files: dict[str, Path]) -> Dataset:
    inter = make_interactions(n_users=12, n_items=6, seed=1)
    items = inter.item_ids.ids.tolist()  # i0..i5 (sorted)
    return Dataset(
        "tiny",
        inter,
        item_modalities={
            "title": Modality("text", IdMap(items[:5]), ["toy story", "toy robots", "heist", "crime heist", "love"]),
            "genres": Modality("categorical", IdMap(items), [["A"], ["A", "B"], ["C"], ["C"], ["D"], []]),
            "poster": Modality(
                "image",
                IdMap(items[:3]),
                [str(image_files["png"]), str(image_files["corrupt"]), str(image_files["grey"])],
            ),
            "year": Modality("tabular", IdMap(items), pd.DataFrame({"year": [1990, 1995, 2000, 2005, 2010, 2015]})),
            "dense": Modality("features", IdMap(items), np.eye(6, 3, dtype=np.float32)),
        },
        user_modalities={
            "age": Modality("tabular", IdMap(inter.user_ids.ids), pd.DataFrame({"age": np.arange(12.0)}), target="user")
        },
    )


def test_build_side_info_defaults(image_files: dict[str, Path]) -> None:
    ds = _dataset(image_files)
    side, report = build_side_info(ds)
    assert set(side.item_features) == {"title", "genres", "poster", "year", "dense"}
    n = ds.interactions.n_items
    for name, arr in side.item_features.items():
        assert arr.shape[0] == n and arr.dtype == np.float32 and np.isfinite(arr).all(), name
    np.testing.assert_array_equal(side.item_present["title"], [True] * 5 + [False])
    assert not side.item_features["title"][5].any()
    assert side.user_features["age"].shape == (12, 1)
    ids = ds.item_ids.ids.tolist()
    assert [(f.modality, f.item_id) for f in report.failures] == [("poster", ids[1])]
    side2, report2 = build_side_info(ds)
    assert report2.n_cached > 0
    np.testing.assert_array_equal(side2.item_features["poster"], side.item_features["poster"])


def test_build_side_info_custom_and_skip(image_files: dict[str, Path]) -> None:
    ds = _dataset(image_files)
    side, report = build_side_info(
        ds,
        {"title": Pipeline(encoder=TfidfEncoder(), steps=[PostProcess(method="pca", n_components=2)]), "poster": None},
        cache=False,
    )
    assert side.item_features["title"].shape == (6, 2) and "poster" not in side.item_features
    assert any("skipped" in n for n in report.notes)


def test_postprocess_methods() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 6)).astype(np.float32) * np.arange(1, 7)
    s = PostProcess(method="standard").fit_transform(x)
    np.testing.assert_allclose(s.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(s.std(0), 1, atol=1e-4)
    p = PostProcess(method="pca", n_components=3, then_l2=True).fit_transform(x)
    assert p.shape == (50, 3)
    np.testing.assert_allclose(np.linalg.norm(p, axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(p, PostProcess(method="pca", n_components=3, then_l2=True).fit_transform(x))
    with pytest.raises(ConfigError):
        PostProcess(method="bogus").fit(x)


def test_make_encoder_and_errors() -> None:
    assert make_encoder("tfidf", max_features=10).max_features == 10
    assert make_encoder("minilm").name == "sentence"
    with pytest.raises(ConfigError, match="available"):
        make_encoder("nope")
    with pytest.raises(ConfigError):
        make_encoder("tfidf", bogus=1)
    with pytest.raises(ConfigError, match="no default encoder"):
        encode_modality(Modality("sequence", IdMap([1]), [[1, 2]]))


def test_cli_extract_files_and_dataset(image_files: dict[str, Path], tmp_path: Path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from fusionrec.cli.features import app

    runner = CliRunner()
    out = tmp_path / "out" / "img.npy"
    files = [str(image_files[k]) for k in ("png", "corrupt", "jpeg")]
    res = runner.invoke(app, ["extract", *files, "--output", str(out)])
    assert res.exit_code == 0, res.output
    arr = np.load(out)
    assert arr.shape[0] == 3 and out.with_suffix(".ids.txt").read_text().split() == ["a", "bad", "b"]
    assert "1 failed" in res.output
    import fusionrec.data.datasets as datasets

    monkeypatch.setattr(datasets, "load_dataset", lambda name, data_dir=None: _dataset(image_files))
    pq = tmp_path / "t.parquet"
    args = ["extract", "tiny", "--modality", "title", "--encoder", "tfidf", "--params", '{"max_features": 4}']
    res = runner.invoke(app, [*args, "--output", str(pq)])
    assert res.exit_code == 0, res.output
    frame = pd.read_parquet(pq)
    assert frame.columns[0] == "id" and frame.shape == (5, 5)
    res = runner.invoke(app, ["extract", "tiny", "--modality", "nope", "--output", str(pq)])
    assert res.exit_code != 0 and "title" in res.output
    res = runner.invoke(app, ["extract", *files, "--output", str(tmp_path / "x.csv")])
    assert res.exit_code != 0


def test_missing_optional_package_skips_a_default_modality(
    image_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A default encoder whose package is absent skips its modality with an install hint; a chosen one raises."""
    import fusionrec.features.pipeline as pipeline

    real = pipeline.encode_modality

    def fake(mod, enc, cache=True):  # type: ignore[no-untyped-def]
        if mod.kind == "text":
            raise ImportError("No module named 'sentence_transformers'")
        return real(mod, enc, cache=cache)

    monkeypatch.setattr(pipeline, "encode_modality", fake)
    ds = _dataset(image_files)
    side, report = build_side_info(ds, cache=False)
    assert "title" not in side.item_features and "genres" in side.item_features
    assert any("pip install 'fusionrec[text]'" in n for n in report.notes)
    with pytest.raises(ImportError):
        build_side_info(ds, {"title": TfidfEncoder()}, cache=False)
