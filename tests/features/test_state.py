"""Fitted encoders and side information stored as JSON + arrays (no pickle) and the encoders kept by
``build_side_info`` encoding new items exactly as at fit time."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from fusionrec.data import Interactions
from fusionrec.data.side import SideInfo
from fusionrec.errors import BundleError
from fusionrec.features import (
    ENCODERS,
    AudioStatsEncoder,
    BehaviourStatsEncoder,
    BM25Encoder,
    EfficientNetEncoder,
    Encoder,
    GRUSequenceEncoder,
    HashingEncoder,
    ImageDescriptorEncoder,
    ImageModelEncoder,
    MultiHotEncoder,
    Pipeline,
    PostProcess,
    SentenceEncoder,
    TabularEncoder,
    TfidfEncoder,
    build_side_info,
    encoder_from_state,
    encoder_to_state,
    side_from_state,
    side_to_state,
)
from fusionrec.features.audio import AisfxEncoder

from ..conftest import make_interactions
from .conftest import _gradient, write_wav

TEXTS = ["the red fox jumps", "a blue whale sings", "red and blue paint", "the fox and the whale", "quiet night"]
NEW_TEXTS = ["a red whale", "unknown words only", "fox fox fox night"]


def _disk(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> tuple[dict[str, Any], Any]:
    """Through JSON text and an ``.npz`` written and read with ``allow_pickle=False``, as a bundle stores them."""
    for key, arr in arrays.items():
        assert arr.dtype != object, key
    buf = io.BytesIO()
    np.savez(buf, allow_pickle=False, **arrays)
    buf.seek(0)
    return json.loads(json.dumps(meta, sort_keys=True)), np.load(buf, allow_pickle=False)


def _round_trip(enc: Encoder, **kwargs: Any) -> Encoder:
    meta, arrays = encoder_to_state(enc)
    return encoder_from_state(*_disk(meta, arrays), **kwargs)


def _same(a: Encoder, b: Encoder, raw: Any) -> None:
    assert type(a) is type(b) and repr(a) == repr(b) and a.cache_key() == b.cache_key()
    out = a.transform(raw)
    assert out.any()
    np.testing.assert_array_equal(out, b.transform(raw))


def _sessions() -> Interactions:
    return Interactions.from_arrays(["a", "a", "a", "b", "c"], ["x", "y", "z", "x", "y"], [4, 2, 3, 5, 1],
                                    [0, 600, 100_000, 50_000, 7_000])  # fmt: skip


def _table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "year": [1990.0, 2000.0, np.nan, 2010.0, 1995.0],
            "kind": ["a", "b", "a", None, "b"],
            "studio": [f"s{i}" for i in range(5)],
        }
    )


def _wave(seed: int) -> tuple[np.ndarray, int]:
    t = np.arange(4000) / 8000
    rng = np.random.default_rng(seed)
    return (np.sin(2 * np.pi * (200 + 100 * seed) * t) + 0.1 * rng.standard_normal(4000)).astype(np.float32), 8000


# ------------------------------------------------------------------------------------------ every encoder


def test_tfidf_and_bm25_round_trip_with_and_without_svd() -> None:
    for enc in (
        TfidfEncoder(max_features=50, ngram_range=(1, 2)),
        TfidfEncoder(svd_components=2, sublinear_tf=False),
        BM25Encoder(k1=1.5, b=0.5),
        BM25Encoder(svd_components=3),
    ):
        enc.fit(TEXTS)
        back = _round_trip(enc)
        _same(enc, back, NEW_TEXTS + TEXTS)
        assert back.state_fingerprint() == enc.state_fingerprint()
        assert back.get_params()["ngram_range"] == enc.get_params()["ngram_range"]  # a tuple stays a tuple


def test_categorical_tabular_and_hashing_round_trip() -> None:
    multihot = MultiHotEncoder(normalize=True).fit([["Comedy", "Drama"], ["Drama"], ["War"], []])
    _same(multihot, _round_trip(multihot), [["Drama", "Horror"], None, "Comedy|War", "nothing known"])
    hashing = HashingEncoder(n_features=16)
    _same(hashing, _round_trip(hashing), [["a", "b"], "a|b", []])
    for numeric in ("standard", "minmax"):
        tab = TabularEncoder(numeric=numeric, max_onehot=3, n_hash=8).fit(_table())
        back = _round_trip(tab)
        new = pd.DataFrame({"year": [2020.0, np.nan], "kind": ["b", "zzz"], "studio": ["s1", "new studio"]})
        _same(tab, back, new)
        _same(tab, back, _table())


def test_image_audio_and_postprocess_round_trip(tmp_path: Path) -> None:
    pytest.importorskip("PIL")
    from PIL import Image

    png = tmp_path / "x.png"
    Image.fromarray(_gradient(24, seed=3)).save(png)
    images = [png, str(png), _gradient(30, seed=1)]
    desc = ImageDescriptorEncoder(size=16, hsv_bins=(4, 2, 2), grid=2)
    back = _round_trip(desc)
    _same(desc, back, images)
    assert back.get_params()["hsv_bins"] == (4, 2, 2)

    x = np.random.default_rng(0).normal(size=(20, 6)).astype(np.float32)
    new = np.random.default_rng(1).normal(size=(4, 6)).astype(np.float32)
    for step in (PostProcess(method="standard"), PostProcess(method="pca", n_components=3, whiten=True, then_l2=True),
                 PostProcess(method="l2")):  # fmt: skip
        step.fit(x)
        _same(step, _round_trip(step), new)

    pytest.importorskip("librosa")
    audio = Pipeline(
        encoder=AudioStatsEncoder(n_mfcc=5, n_mels=10, n_fft=256, hop_length=128),
        steps=[PostProcess(method="standard")],
    )
    audio.fit([_wave(0), _wave(1), _wave(2)])
    back = _round_trip(audio)
    assert isinstance(back, Pipeline) and isinstance(back.steps[0], PostProcess)
    _same(audio, back, [_wave(3), _wave(4)])


def test_behaviour_and_gru_round_trip() -> None:
    stats = BehaviourStatsEncoder(session_gap=900).fit(_sessions())
    _same(stats, _round_trip(stats), _sessions())
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    train = make_interactions(n_users=20, n_items=12, seed=2)
    gru = GRUSequenceEncoder(n_factors=4, max_len=5, epochs=1, batch_size=8, seed=1).fit(train)
    back = _round_trip(gru)
    assert back.losses_ == gru.losses_  # type: ignore[attr-defined]
    _same(gru, back, train)


def test_video_round_trip(tmp_path: Path) -> None:
    av = pytest.importorskip("av")
    from fusionrec.features import VideoEncoder

    path = tmp_path / "v.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=12)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for k in range(6):
            img = np.full((32, 32, 3), 40 * k, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    enc = VideoEncoder(image_encoder=ImageDescriptorEncoder(size=16), audio_encoder=None, n_frames=3, with_audio=False)
    back = _round_trip(enc)
    assert isinstance(back.image_encoder, ImageDescriptorEncoder)  # type: ignore[attr-defined]
    _same(enc, back, [str(path)])


def test_pretrained_encoders_are_stored_by_name_and_load_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_weights(self: Any) -> Any:
        raise AssertionError("weights loaded while restoring a state")

    for cls in (SentenceEncoder, EfficientNetEncoder, AisfxEncoder):
        monkeypatch.setattr(cls, "_load", no_weights)
    for enc in (SentenceEncoder(batch_size=8, prefix="query: "), SentenceEncoder(model="multilingual-e5-small"),
                EfficientNetEncoder(resize="squash"), AisfxEncoder(window_seconds=10.0)):  # fmt: skip
        meta, arrays = encoder_to_state(enc)
        assert arrays == {} and meta["packages"] and set(meta["packages"]) == set(enc.required_packages())
        back = encoder_from_state(*_disk(meta, arrays))
        assert type(back) is type(enc) and back.get_params() == enc.get_params()


def test_image_model_callable_is_given_back_when_loading() -> None:
    def fn(batch: np.ndarray) -> np.ndarray:
        return batch.mean(axis=(2, 3))

    enc = ImageModelEncoder(fn=fn, dim=3, key="mean-rgb", image_size=32, batch_size=2)
    images = [_gradient(40, seed=0), _gradient(40, seed=5)]
    _same(enc, _round_trip(enc, callables={"mean-rgb": fn}), images)
    blind = _round_trip(enc)
    with pytest.raises(BundleError, match="callables"):
        blind.transform(images)


def test_every_registered_encoder_is_covered_here() -> None:
    covered = {"tfidf", "bm25", "sentence", "image-descriptors", "efficientnet-lite0", "audio-stats", "aisfx",
               "video", "tabular", "multihot", "hashing", "behaviour-stats", "gru-sequence"}  # fmt: skip
    assert set(ENCODERS) == covered, "add a round-trip test for the new encoder"


# ------------------------------------------------------------------------------------------ dropped state


def test_dropped_or_unstorable_state_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    enc = TfidfEncoder().fit(TEXTS)
    meta, arrays = encoder_to_state(enc)
    assert {"vocabulary", "idf"} <= set(arrays)
    for key in ("vocabulary", "idf"):
        partial = {k: v for k, v in arrays.items() if k != key}
        with pytest.raises(BundleError, match=key):
            encoder_from_state(meta, partial)
    # a get_state that forgets the vocabulary cannot give back a working encoder
    monkeypatch.setattr(TfidfEncoder, "get_state", Encoder.get_state)
    with pytest.raises(BundleError, match="vocabulary"):
        encoder_from_state(*encoder_to_state(enc))
    monkeypatch.undo()

    enc.extra_ = np.zeros(3)  # type: ignore[attr-defined]  # a fitted attribute the class does not declare would be lost
    with pytest.raises(BundleError, match="extra_"):
        encoder_to_state(enc)
    del enc.extra_  # type: ignore[attr-defined]
    enc.idf_ = np.array([object()] * len(enc.idf_), dtype=object)
    with pytest.raises(BundleError, match="dtype object"):
        encoder_to_state(enc)

    class Custom(TfidfEncoder):
        pass

    with pytest.raises(BundleError, match="not a registered encoder"):
        encoder_to_state(Custom().fit(TEXTS))
    odd = ImageDescriptorEncoder()
    odd.hsv_bins = (4, 2, object())  # type: ignore[assignment]  # set after the constructor's check
    with pytest.raises(BundleError, match="cannot be stored"):
        encoder_to_state(odd)


def test_stale_or_foreign_state_is_refused() -> None:
    meta, arrays = encoder_to_state(MultiHotEncoder().fit([["a"], ["b"]]))
    with pytest.raises(BundleError, match="version"):
        encoder_from_state({**meta, "version": "0"}, arrays)
    with pytest.raises(BundleError, match="unknown to this fusionrec"):
        encoder_from_state({**meta, "encoder": "os:system"}, arrays)
    with pytest.raises(BundleError, match="format"):
        encoder_from_state({"encoder": "multihot"}, arrays)
    with pytest.raises(BundleError, match="format"):
        side_from_state(meta, arrays)


# ------------------------------------------------------------------------------------------ side information


@pytest.fixture(scope="module")
def synthetic() -> Any:
    from fusionrec.data.datasets import load_dataset

    return load_dataset("synthetic", n_users=60, n_items=40, seed=0)


@pytest.fixture(scope="module")
def side(synthetic: Any) -> SideInfo:
    pytest.importorskip("librosa")
    side, report = build_side_info(synthetic, cache=False)
    assert report.ok
    return side


def _raw(dataset: Any, name: str, row: int) -> Any:
    """The raw value of item ``row`` (dataset order) in modality ``name``, as a user would post it."""
    mod = dataset.item_modalities[name]
    pos = int(np.flatnonzero(dataset.item_ids.to_index(mod.ids.ids) == row)[0])
    if mod.kind == "tabular":
        return {k: (None if pd.isna(v) else v) for k, v in mod.data.iloc[pos].to_dict().items()}
    return mod.data[pos]


def test_build_side_info_keeps_fitted_encoders_and_kinds(synthetic: Any, side: SideInfo) -> None:
    assert side.item_kinds == {n: m.kind for n, m in synthetic.item_modalities.items()}
    assert side.user_kinds == {n: m.kind for n, m in synthetic.user_modalities.items()}
    assert set(side.item_encoders) == set(side.item_features) and set(side.user_encoders) == {"profile"}
    assert all(enc.is_fitted for enc in side.item_encoders.values())
    # a known item's raw content, posted again, gets exactly its fitted row
    for name in ("title", "text", "image", "audio", "genres", "attributes"):
        rows = [3, 17]
        got = side.encode_items({name: [_raw(synthetic, name, r) for r in rows]})[name]
        np.testing.assert_allclose(got, side.item_features[name][rows], rtol=1e-6, atol=1e-6, err_msg=name)


def test_encode_items_equals_the_encoder_on_new_raw_values(tmp_path: Path, side: SideInfo) -> None:
    from PIL import Image

    png = tmp_path / "new.png"
    Image.fromarray(_gradient(36, seed=9)).save(png)
    wav = write_wav(tmp_path / "new.wav", seconds=0.5, rate=8000, freq=330.0)
    genre = side.item_encoders["genres"].classes_.tolist()  # type: ignore[attr-defined]
    raw: dict[str, list[Any]] = {
        "title": ["a brand new title", "Stodre"],
        "image": [png, str(png)],
        "audio": [str(wav), None],
        "genres": [f"{genre[0]}|not-a-genre", [genre[1], genre[2]]],
        "attributes": [{"brand": "brand_01", "price": 9.5, "year": 2001, "duration": 88.0}, {"price": 3.0}],
    }
    rows = side.encode_items(raw)
    encs = side.item_encoders
    np.testing.assert_array_equal(rows["title"], encs["title"].transform(raw["title"]))
    np.testing.assert_array_equal(rows["image"], encs["image"].transform([png, png]))
    np.testing.assert_array_equal(rows["audio"][0], encs["audio"].transform([str(wav)])[0])
    assert not rows["audio"][1].any()
    hot = rows["genres"]
    assert hot[0].sum() == 1 and hot[0, 0] == 1 and hot[1, [1, 2]].tolist() == [1, 1]
    frame = pd.DataFrame({"brand": ["brand_01"], "price": [9.5], "year": [2001], "duration": [88.0]})
    np.testing.assert_allclose(rows["attributes"][:1], encs["attributes"].transform(frame), rtol=1e-6)
    assert np.isfinite(rows["attributes"]).all()


def test_side_info_round_trip_without_pickle(synthetic: Any, side: SideInfo, tmp_path: Path) -> None:
    meta, arrays = side_to_state(side)
    assert "side.item.title.x" in arrays and "side.item.title.encoder.vocabulary" in arrays
    path = tmp_path / "side.npz"
    np.savez(path, allow_pickle=False, own_array=np.arange(3), **arrays)  # beside a bundle's own arrays
    text = json.dumps(meta, sort_keys=True)
    with np.load(path, allow_pickle=False) as stored:
        back = side_from_state(json.loads(text), stored)
    for a, b in ((side.item_features, back.item_features), (side.user_features, back.user_features),
                 (side.item_present, back.item_present), (side.user_present, back.user_present)):  # fmt: skip
        assert list(a) == list(b)
        for name in a:
            np.testing.assert_array_equal(a[name], b[name])
            assert a[name].dtype == b[name].dtype
    assert back.item_kinds == side.item_kinds and back.user_kinds == side.user_kinds
    assert side.social is not None and back.social is not None
    assert (side.social != back.social).nnz == 0 and back.social.shape == side.social.shape
    for name, enc in side.item_encoders.items():
        assert back.item_encoders[name].cache_key() == enc.cache_key()
    raw = {name: [_raw(synthetic, name, 5), None] for name in side.item_features}
    raw["title"] = ["a brand new title", None]
    got, want = back.encode_items(raw), side.encode_items(raw)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])
    profile = [{"age_bucket": "18-24", "region": "south"}]
    np.testing.assert_array_equal(back.encode_users({"profile": profile})["profile"],
                                  side.encode_users({"profile": profile})["profile"])  # fmt: skip


def test_side_with_dense_features_and_no_social() -> None:
    side = SideInfo(item_features={"emb": np.eye(3, dtype=np.float32)}, item_kinds={"emb": "features"})
    back = side_from_state(*_disk(*side_to_state(side, prefix="bundle.side.")))
    assert back.social is None and back.item_encoders == {} and back.item_kinds == {"emb": "features"}
    np.testing.assert_array_equal(back.item_features["emb"], np.eye(3))
    np.testing.assert_array_equal(back.encode_items({"emb": [[1, 2, 3]]})["emb"], [[1, 2, 3]])
