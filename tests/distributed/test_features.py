"""Feature extraction over Ray Data gives the single-process rows, order, report and cache behaviour."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from fusionrec.errors import ConfigError
from fusionrec.features import FeatureCache
from fusionrec.features.base import Pipeline, PostProcess
from fusionrec.features.text import TfidfEncoder

TEXTS = [f"item {i} alpha beta {'gamma ' * (i % 4)} delta{i % 7} eps{i % 11}" for i in range(300)]
TEXTS[17] = None  # type: ignore[call-overload]
TEXTS[123] = TEXTS[5]  # a duplicate content: same row, one cache entry


def _fitted() -> TfidfEncoder:
    return TfidfEncoder(max_features=64).fit([t for t in TEXTS if t])


def test_rows_order_and_report_equal_single_process(ray_cluster: str, tmp_path: Path) -> None:
    from fusionrec.distributed import ExtractionStats, extract_features_ray

    enc = _fitted()
    ids = np.array([f"t{i}" for i in range(len(TEXTS))])
    ref, ref_report = FeatureCache(tmp_path / "one").transform(enc, TEXTS, ids=ids)
    stats = ExtractionStats()
    cache = FeatureCache(tmp_path / "ray")
    rows, report = extract_features_ray(
        enc, TEXTS, address=ray_cluster, batch_size=32, concurrency=2, cache=cache, ids=ids, stats=stats
    )
    assert rows.dtype == np.float32 and rows.shape == ref.shape
    np.testing.assert_array_equal(rows, ref)
    assert (
        [(f.position, f.item_id, f.reason) for f in report.failures]
        == [(f.position, f.item_id, f.reason) for f in ref_report.failures]
        == [(17, "t17", ref_report.failures[0].reason)]
    )
    # the duplicate content may be computed by one worker and read from the cache by another
    assert report.n_items == 300 and report.n_cached + report.n_computed == 300 and report.n_cached <= 1
    assert stats.workers == 2 and stats.batches == 10 and stats.state_bytes > 0
    with sqlite3.connect(cache.path_for(enc) / "rows.sqlite") as con:  # the workers wrote the cache
        assert con.execute("SELECT COUNT(*) FROM rows").fetchone()[0] == len({t for t in TEXTS if t is not None})


def test_workers_read_the_shared_cache(ray_cluster: str, tmp_path: Path) -> None:
    """Rows in the cache are read, not recomputed: a planted row comes back as it was stored."""
    from fusionrec.distributed import extract_features_ray
    from fusionrec.features.cache import content_hash

    enc = _fitted()
    cache = FeatureCache(tmp_path)
    first, _ = cache.transform(enc, TEXTS)  # filled in this process
    planted = np.full(enc.dim, 7.0, dtype=np.float32)
    with sqlite3.connect(cache.path_for(enc) / "rows.sqlite") as con:
        con.execute("UPDATE rows SET vec = ? WHERE hash = ?", (planted.tobytes(), content_hash(TEXTS[3])))
    again, report = extract_features_ray(enc, TEXTS, address=ray_cluster, batch_size=64, cache=cache)
    assert report.n_cached == len(TEXTS) - 1 and report.n_computed == 1  # only the missing item is retried
    np.testing.assert_array_equal(again[3], planted)
    np.testing.assert_array_equal(np.delete(again, 3, 0), np.delete(first, 3, 0))


def test_pipeline_and_modality_match_encode_modality(ray_cluster: str, tmp_path: Path) -> None:
    from fusionrec.data import IdMap, Modality
    from fusionrec.distributed import encode_modality_ray
    from fusionrec.features import encode_modality

    texts = [t or "" for t in TEXTS]
    mod = Modality("text", IdMap([f"t{i}" for i in range(len(texts))]), texts)
    make = lambda: Pipeline(encoder=TfidfEncoder(max_features=64), steps=[PostProcess(method="pca", n_components=8)])
    ref, _ = encode_modality(mod, make(), cache=False)
    got, report = encode_modality_ray(mod, make(), cache=False, address=ray_cluster, batch_size=50)
    assert got.kind == "features" and got.ids.ids.tolist() == ref.ids.ids.tolist()
    np.testing.assert_allclose(got.data, ref.data, rtol=0, atol=1e-6)
    assert report.n_items == len(texts)


def test_file_encoder_over_ray(ray_cluster: str, tmp_path: Path) -> None:
    from PIL import Image

    from fusionrec.distributed import extract_features_ray
    from fusionrec.features.image import ImageDescriptorEncoder

    rng = np.random.default_rng(0)
    paths: list[object] = []
    for j in range(6):
        p = tmp_path / f"{j}.png"
        Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(p)
        paths.append(p)  # Path objects are accepted for file encoders
    (tmp_path / "bad.png").write_bytes(b"not an image")
    paths.append(tmp_path / "bad.png")
    enc = ImageDescriptorEncoder()
    ref, ref_report = enc.transform_report([str(p) for p in paths])
    rows, report = extract_features_ray(enc, paths, address=ray_cluster, batch_size=3, cache=False)
    np.testing.assert_array_equal(rows, ref)
    assert [f.position for f in report.failures] == [f.position for f in ref_report.failures] == [6]


def test_bad_inputs_raise_typed_errors() -> None:
    from fusionrec.distributed import extract_features_ray

    enc = _fitted()
    with pytest.raises(ConfigError, match="texts or file paths"):
        extract_features_ray(enc, ["ok", np.zeros(3)], address=None)
    with pytest.raises(ConfigError, match="batch_size"):
        extract_features_ray(enc, ["ok"], batch_size=0)
    with pytest.raises(ConfigError, match="concurrency"):
        extract_features_ray(enc, ["ok"], concurrency=-2)
    rows, report = extract_features_ray(enc, [], address=None)
    assert rows.shape == (0, enc.dim) and report.n_items == 0
