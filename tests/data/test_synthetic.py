"""The synthetic multimodal dataset: shape guarantees, determinism, the image cache, planted signal per modality."""

from __future__ import annotations

import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from PIL import Image

from fusionrec.data import Dataset, Split
from fusionrec.data.datasets import load_dataset
from fusionrec.data.datasets.synthetic import DEFAULT_SIGNAL, SyntheticTruth, make_synthetic, write_audio
from fusionrec.data.splits import cold_items_split, per_user_split
from fusionrec.errors import ConfigError, DataError
from fusionrec.evaluation.protocol import evaluate_ranking
from fusionrec.models.baselines import MostPopular, Random

SMALL = {"n_users": 120, "n_items": 80}


@pytest.fixture(scope="module")
def default_ds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dataset]:
    """The default dataset, images in a private cache directory; also times the generation."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FUSIONREC_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        start = time.perf_counter()
        ds = make_synthetic()
        ds.meta["_seconds"] = time.perf_counter() - start
        yield ds


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FUSIONREC_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _truth(ds: Dataset) -> SyntheticTruth:
    truth = ds.meta["truth"]
    assert isinstance(truth, SyntheticTruth)
    return truth


def test_default_shape_and_guarantees(default_ds: Dataset) -> None:
    ds = default_ds
    x = ds.interactions
    assert ds.name == "synthetic" and x.shape == (500, 300) and x.explicit
    assert ds.meta["_seconds"] < 15.0  # about 1.5 s alone on 2 cores; generous for a shared machine
    assert x.user_counts().min() >= 5
    assert 0.03 < x.nnz / (500 * 300) < 0.08
    assert set(np.unique(x.matrix.data).tolist()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert len(np.unique(x.matrix.data)) >= 4
    assert x.timestamps is not None and x.timestamps.min() >= 1_577_836_800
    counts = np.sort(x.item_counts())[::-1]
    assert counts[:30].sum() > 0.3 * x.nnz  # power-law popularity: the top 10% hold > 30%
    assert list(x.user_ids.ids[:2]) == ["u000", "u001"] and list(x.item_ids.ids[:2]) == ["i000", "i001"]
    truth = _truth(ds)
    assert truth.user_factors.shape == (500, 8) and truth.item_factors.shape == (300, 8)
    assert truth.contributions == DEFAULT_SIGNAL and len(truth.topic_words) == 8
    assert truth.affinity([0, 1], [2]).shape == (2, 1)


def test_modalities_hold_raw_content(default_ds: Dataset) -> None:
    items = default_ds.item_modalities
    assert {k: m.kind for k, m in items.items()} == {
        "title": "text",
        "text": "text",
        "image": "image",
        "audio": "audio",
        "genres": "categorical",
        "attributes": "tabular",
    }
    for mod in items.values():
        assert mod.ids is default_ds.item_ids and len(mod) == 300
    text = items["text"].data[0]
    assert text.startswith(items["title"].data[0] + ". ") and len(text.split()) > 25
    paths = items["image"].data
    assert all(Path(p).is_file() for p in paths[:10]) and Path(paths[0]).name == "i000.png"
    with Image.open(paths[0]) as img:
        assert img.size == (32, 32) and img.mode == "RGB"
    wave_, sr = items["audio"].data[0]
    assert sr == 8000 and wave_.dtype == np.float32 and wave_.shape == (4000,) and np.abs(wave_).max() <= 1.0
    names = set(_truth(default_ds).topic_names)
    assert all(1 <= len(g) <= 3 and set(g) <= names for g in items["genres"].data)
    assert list(items["attributes"].data.columns) == ["brand", "price", "year", "duration"]
    profile = default_ds.user_modalities["profile"]
    assert profile.target == "user" and list(profile.data.columns) == ["age_bucket", "region"]
    assert len(profile) == 500


def test_social_graph_is_homophilous(default_ds: Dataset) -> None:
    a = default_ds.social
    assert a is not None and a.shape == (500, 500) and a.dtype == np.float32
    assert (a != a.T).nnz == 0 and a.diagonal().sum() == 0
    p = _truth(default_ds).user_factors
    unit = p / np.linalg.norm(p, axis=1, keepdims=True)
    r, c = a.nonzero()
    linked = np.einsum("nk,nk->n", unit[r], unit[c]).mean()
    rng = np.random.default_rng(0)
    ra, rb = rng.integers(0, 500, 5000), rng.integers(0, 500, 5000)
    assert linked > np.einsum("nk,nk->n", unit[ra], unit[rb]).mean() + 0.3


def test_ratings_and_time_follow_the_factors(default_ds: Dataset) -> None:
    x, truth = default_ds.interactions, _truth(default_ds)
    u, i = x.row_indices(), x.matrix.indices
    aff = np.einsum("nk,nk->n", truth.user_factors[u], truth.item_factors[i])
    assert np.corrcoef(aff, x.matrix.data)[0, 1] > 0.3
    # drift: within a user, later interactions align more with the drift direction
    align = np.einsum("nk,nk->n", truth.item_factors[i], truth.user_drift[u])
    ts = x.timestamps
    assert ts is not None
    frame_rank = np.lexsort((ts, u))
    rank = np.empty(x.nnz)
    rank[frame_rank] = np.arange(x.nnz) - x.matrix.indptr[u[frame_rank]]
    rel_time = rank / np.maximum(x.user_counts()[u] - 1, 1)
    assert np.corrcoef(rel_time, align)[0, 1] > 0.2


def _profile_auc(split: Split, feats: np.ndarray) -> float:
    """Mean per-user AUC on the cold test items of cosine(mean profile of train items, item)."""
    tr, te = split.train.matrix, split.test.matrix
    cand = split.meta["test_items"]
    f = feats / (np.linalg.norm(feats, axis=1, keepdims=True) + 1e-12)
    n_train = np.asarray(tr.sum(1)).ravel()
    prof = (tr @ f) / np.maximum(n_train, 1)[:, None]
    users = np.flatnonzero((np.diff(te.indptr) > 0) & (n_train > 0))
    scores = prof[users] @ f[cand].T
    rel = te[users][:, cand].toarray() > 0
    aucs = []
    for s, r in zip(scores, rel):
        if r.all():
            continue
        pos, neg = s[r][:, None], s[~r][None, :]
        aucs.append((pos > neg).mean() + 0.5 * (pos == neg).mean())
    return float(np.mean(aucs))


def _tfidf(ds: Dataset) -> np.ndarray:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return np.asarray(TfidfVectorizer().fit_transform(ds.item_modalities["text"].data).toarray())


def _mean_colour(ds: Dataset) -> np.ndarray:
    arrays = []
    for p in ds.item_modalities["image"].data:
        with Image.open(p) as img:
            arrays.append(np.asarray(img, dtype=np.float64).reshape(-1, 3).mean(0))
    col = np.stack(arrays)
    return col - col.mean(0)  # type: ignore[no-any-return]


def _spectrum_bands(ds: Dataset) -> np.ndarray:
    waves = np.stack([w for w, _sr in ds.item_modalities["audio"].data])
    spec = np.abs(np.fft.rfft(waves, axis=1))
    bands = np.log1p(np.stack([b.mean(1) for b in np.array_split(spec, 32, axis=1)], axis=1))
    return bands - bands.mean(0)  # type: ignore[no-any-return]


def test_content_predicts_cold_items(default_ds: Dataset) -> None:
    split = cold_items_split(default_ds.interactions, test=0.2, valid=0.0, seed=0)
    tfidf = _tfidf(default_ds)
    text_auc = _profile_auc(split, tfidf)
    colour_auc = _profile_auc(split, _mean_colour(default_ds))
    audio_auc = _profile_auc(split, _spectrum_bands(default_ds))
    shuffled = _profile_auc(split, np.random.default_rng(0).permutation(tfidf))
    assert text_auc > 0.7, text_auc  # about 0.79
    assert colour_auc > 0.6, colour_auc  # about 0.66
    assert audio_auc > 0.58, audio_auc  # about 0.64
    assert abs(shuffled - 0.5) < 0.06, shuffled


def test_signal_knob_removes_content_signal(cache: Path) -> None:
    ds = make_synthetic(signal={"text": 0.0}, with_images=False, with_audio=False)
    split = cold_items_split(ds.interactions, test=0.2, valid=0.0, seed=0)
    assert abs(_profile_auc(split, _tfidf(ds)) - 0.5) < 0.06
    assert _truth(ds).contributions["text"] == 0.0


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    a = make_synthetic(**SMALL, seed=7, image_dir=tmp_path / "a")
    b = make_synthetic(**SMALL, seed=7, image_dir=tmp_path / "b")
    xa, xb = a.interactions, b.interactions
    for name in ("indptr", "indices", "data"):
        assert np.array_equal(getattr(xa.matrix, name), getattr(xb.matrix, name))
    assert np.array_equal(xa.timestamps, xb.timestamps)  # type: ignore[arg-type]
    assert a.item_modalities["text"].data == b.item_modalities["text"].data
    assert a.item_modalities["genres"].data == b.item_modalities["genres"].data
    assert a.item_modalities["attributes"].data.equals(b.item_modalities["attributes"].data)
    assert a.user_modalities["profile"].data.equals(b.user_modalities["profile"].data)
    for pa, pb in zip(a.item_modalities["image"].data, b.item_modalities["image"].data):
        assert pa != pb and Path(pa).read_bytes() == Path(pb).read_bytes()
    for (wa, _), (wb, _) in zip(a.item_modalities["audio"].data, b.item_modalities["audio"].data):
        assert np.array_equal(wa, wb)
    assert a.social is not None and b.social is not None and (a.social != b.social).nnz == 0
    assert np.array_equal(_truth(a).item_factors, _truth(b).item_factors)
    c = make_synthetic(**SMALL, seed=8, with_images=False)
    assert c.interactions.nnz != xa.nnz or not np.array_equal(c.interactions.matrix.indices, xa.matrix.indices)
    assert c.item_modalities["text"].data != a.item_modalities["text"].data


def test_turning_parts_off_keeps_the_rest(tmp_path: Path) -> None:
    full = make_synthetic(**SMALL, seed=3, image_dir=tmp_path)
    bare = make_synthetic(**SMALL, seed=3, with_images=False, with_audio=False, with_social=False)
    assert "image" not in bare.item_modalities and "audio" not in bare.item_modalities and bare.social is None
    assert bare.meta["image_dir"] is None
    assert np.array_equal(full.interactions.matrix.indices, bare.interactions.matrix.indices)
    assert np.array_equal(full.interactions.timestamps, bare.interactions.timestamps)  # type: ignore[arg-type]
    assert full.item_modalities["text"].data == bare.item_modalities["text"].data
    assert full.item_modalities["attributes"].data.equals(bare.item_modalities["attributes"].data)


def test_default_image_cache_is_reused(cache: Path) -> None:
    first = make_synthetic(**SMALL, with_audio=False)
    root = Path(first.meta["image_dir"])
    assert root.parent == cache / "synthetic" and (root / "_complete.json").is_file()
    stamp = Path(first.item_modalities["image"].data[0]).stat().st_mtime_ns
    second = make_synthetic(**SMALL, with_audio=False)
    assert second.item_modalities["image"].data == first.item_modalities["image"].data
    assert Path(second.item_modalities["image"].data[0]).stat().st_mtime_ns == stamp
    assert [p.name for p in (cache / "synthetic").iterdir()] == [root.name]  # no temporary folders left
    other = make_synthetic(**SMALL, seed=1, with_audio=False)
    assert other.meta["image_dir"] != first.meta["image_dir"]


def test_write_audio_writes_wav_files(tmp_path: Path) -> None:
    ds = make_synthetic(**SMALL, with_images=False, audio_seconds=0.25, sample_rate=16000)
    mod = write_audio(ds, tmp_path / "wav")
    assert mod.kind == "audio" and mod.ids is ds.item_ids and len(mod) == 80
    with wave.open(mod.data[3], "rb") as fh:
        assert fh.getframerate() == 16000 and fh.getnchannels() == 1 and fh.getnframes() == 4000
        pcm = np.frombuffer(fh.readframes(4000), dtype="<i2") / 32767.0
    assert np.allclose(pcm, ds.item_modalities["audio"].data[3][0], atol=1e-4)
    with pytest.raises(DataError, match="no item modality"):
        write_audio(ds, tmp_path, modality="sound")


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"n_items": 4}, "n_items"),
        ({"density": 0.0}, "density"),
        ({"n_users": 2.5}, "integer"),
        ({"signal": {"smell": 1.0}}, "unknown signal"),
        ({"signal": {"text": 2.0}}, "signal"),
        ({"sample_rate": 10}, "sample_rate"),
    ],
)
def test_bad_parameters_raise_config_errors(params: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        make_synthetic(**params)  # type: ignore[arg-type]


def test_registry_loads_synthetic(cache: Path) -> None:
    ds = load_dataset("synthetic", n_users=40, n_items=30, seed=2, with_audio=False)
    assert ds.interactions.shape == (40, 30) and (cache / "synthetic").is_dir()


def test_default_dataset_per_user_split_and_most_popular(default_ds: Dataset) -> None:
    split = per_user_split(default_ds.interactions, ratios=(0.8, 0.1, 0.1), seed=0)
    assert split.valid is not None
    exclude = [split.train, split.valid]
    pop = evaluate_ranking(MostPopular().fit(split.train), split.train, split.test, k=10, exclude=exclude)
    rnd = evaluate_ranking(Random(seed=0).fit(split.train), split.train, split.test, k=10, exclude=exclude)
    assert pop.info["n_users"] == 500
    assert pop.metrics["NDCG@10"] > 2 * rnd.metrics["NDCG@10"] > 0
    assert isinstance(split.train.matrix, sp.csr_matrix)


def test_dataset_repr_is_a_short_summary() -> None:
    from fusionrec.data.datasets import load_dataset

    ds = load_dataset("synthetic", n_users=40, n_items=30)
    text = repr(ds)
    assert text.startswith("Dataset('synthetic', users=40, items=30") and "text:" in text
    assert len(text) < 400  # never the planted ground truth or raw content
