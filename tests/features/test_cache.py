"""Feature cache: second run reads everything, a changed item recomputes alone, failures are not cached."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fusionrec.data import IdMap, Modality
from fusionrec.features import Encoder, FeatureCache, ItemError, content_hash, encode_modality


class CountingEncoder(Encoder):
    """Length and checksum of a text; counts every item it encodes; 'BAD' fails."""

    name = "counting"

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale
        self.calls = 0

    @property
    def dim(self) -> int:
        return 2

    def _encode_one(self, item: Any) -> np.ndarray:
        self.calls += 1
        if item == "BAD":
            raise ItemError("bad item")
        return np.array([len(item), sum(map(ord, item)) % 97], dtype=np.float32) * self.scale


class CountingFileEncoder(CountingEncoder):
    name = "counting-file"
    item_kind = "file"

    def _encode_one(self, item: Any) -> np.ndarray:
        return super()._encode_one(Path(item).read_text())


def test_second_run_hits_and_changed_item_recomputes(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path)
    enc = CountingEncoder()
    texts = ["alpha", "beta", "gamma", "delta"]
    first, r1 = cache.transform(enc, texts)
    assert enc.calls == 4 and r1.n_cached == 0 and r1.n_computed == 4
    second, r2 = cache.transform(enc, texts)
    assert enc.calls == 4 and r2.n_cached == 4
    np.testing.assert_array_equal(first, second)
    changed = ["alpha", "BETA!", "gamma", "delta"]
    third, r3 = cache.transform(enc, changed)
    assert enc.calls == 5 and r3.n_computed == 1
    np.testing.assert_array_equal(third[1], enc.transform(["BETA!"])[0])
    assert (cache.path_for(enc) / "rows.sqlite").is_file()
    assert str(cache.path_for(enc)).startswith(str(tmp_path / "features"))


def test_key_depends_on_params_and_failures_are_retried(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path)
    a, b = CountingEncoder(scale=1.0), CountingEncoder(scale=2.0)
    assert a.cache_key() != b.cache_key()
    cache.transform(a, ["x", "BAD"])
    rows, report = cache.transform(a, ["x", "BAD"], ids=["i1", "i2"])
    assert a.calls == 3  # "x" cached, "BAD" retried
    assert report.failed_ids == ["i2"] and not rows[1].any()
    rows_b, _ = cache.transform(b, ["x"])
    np.testing.assert_allclose(rows_b[0], 2 * rows[0])


def test_file_items_hash_content_not_name(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path / "c")
    enc = CountingFileEncoder()
    f1, f2 = tmp_path / "one.txt", tmp_path / "two.txt"
    f1.write_text("same")
    f2.write_text("same")
    cache.transform(enc, [str(f1)])
    cache.transform(enc, [str(f2)])  # renamed copy: hit
    assert enc.calls == 1
    f2.write_text("different")
    cache.transform(enc, [str(f1), str(f2)])
    assert enc.calls == 2
    assert content_hash(str(tmp_path / "missing.txt"), paths=True) is None


def test_content_hash_kinds() -> None:
    assert content_hash("abc") == content_hash("abc") != content_hash("abd")
    a = np.arange(6, dtype=np.float32)
    assert content_hash(a) != content_hash(a.reshape(2, 3)) != content_hash(a.astype(np.float64))
    assert content_hash((a, 16000)) != content_hash((a, 22050))
    assert content_hash(["x", "y"]) != content_hash(["y", "x"])


def test_encode_modality_uses_default_cache_dir() -> None:
    from fusionrec.config import cache_dir

    enc = CountingEncoder()
    mod = Modality("text", IdMap(["m1", "m2"]), ["one", "BAD"])
    feats, report = encode_modality(mod, enc)
    assert feats.kind == "features" and feats.ids is mod.ids and feats.data.shape == (2, 2)
    assert report.failed_ids == ["m2"]
    assert (cache_dir() / "features" / enc.cache_key()).is_dir()
    encode_modality(mod, enc)
    assert enc.calls == 3  # only the failed item again
    _, r = encode_modality(mod, enc, cache=False)
    assert r.n_cached == 0 and enc.calls == 5


def test_chunked_commits(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path, chunk_size=2)
    enc = CountingEncoder()
    texts = ["a", "bb", "BAD", "dddd", "eeeee"]
    rows, report = cache.transform(enc, texts)
    assert report.n_computed == 5 and [f.position for f in report.failures] == [2]
    again, r2 = FeatureCache(tmp_path).transform(enc, texts)
    assert r2.n_cached == 4 and enc.calls == 6
    np.testing.assert_array_equal(rows, again)
