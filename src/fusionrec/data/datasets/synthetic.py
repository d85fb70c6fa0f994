"""The built-in synthetic multimodal dataset with a planted ground truth.

One set of latent factors generates everything, so content really predicts behaviour:

* user factors ``P [n_users, K]`` and item factors ``Q [n_items, K]``; factor ``k`` is *topic* ``k``;
  each item has a dominant topic (``Q[i, t_i] += 1``) and each user one or two favourite topics;
* interactions: user ``u`` picks ``n_u >= 5`` distinct items without replacement with probability
  proportional to ``exp(affinity * P_u . Q_i + b_i)`` (Gumbel top-k), where ``b_i = -popularity *
  log(rank_i + 1)`` is a power-law popularity bias over a random item ranking;
* timestamps: each user is active over a sub-window of ``n_days``; within it the order of the user's
  interactions follows ``Q_i . D_u`` for a drift direction ``D_u`` (taste drifts towards ``D_u``);
* ratings 1..5: ``round(mu + bu_u + bi_i + 0.9 * z(P_u(t) . Q_i) + noise)`` with ``P_u(t) = P_u + (t - 1/2) D_u``;
* item text, images, audio, genres, attributes, user profiles and the social graph are generated from
  *views* of the factors: ``V_m = c_m * Qn + sqrt(1 - c_m^2) * E`` with ``Qn`` the standardised factors, ``E``
  standard normal noise and ``c_m`` the modality's contribution (``signal[m]``, 0 = pure noise,
  1 = factors only).

Raw content stays raw (texts, PNG paths, waveforms, labels, tables); ``dataset.meta["truth"]`` holds the
:class:`SyntheticTruth` so tests can check signal.  Generation is deterministic for a seed; every part
draws from its own child of ``numpy.random.SeedSequence(seed)``, so turning images or audio off does not
change the interactions.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from fusionrec.data.dataset import Dataset
from fusionrec.data.idmap import IdMap
from fusionrec.data.interactions import Interactions
from fusionrec.data.modalities import Modality
from fusionrec.errors import ConfigError, DataError

__all__ = ["DEFAULT_SIGNAL", "GENERATOR_VERSION", "SyntheticTruth", "make_synthetic", "write_audio"]

#: bump when the generated content changes (it is part of the image cache key)
GENERATOR_VERSION = 1
#: contribution of the factors to each generated modality (see the module docstring)
DEFAULT_SIGNAL: dict[str, float] = {
    "text": 0.9,
    "image": 0.8,
    "audio": 0.8,
    "genres": 0.9,
    "attributes": 0.6,
    "profile": 0.6,
    "social": 0.8,
}
START_TIME = 1_577_836_800  # 2020-01-01T00:00:00Z
GENRE_NAMES = (
    "action", "comedy", "drama", "horror", "romance", "scifi", "documentary", "animation",
    "thriller", "fantasy", "mystery", "western", "musical", "crime", "war", "family",
)  # fmt: skip
FILLER_WORDS = (
    "the", "a", "of", "and", "with", "new", "story", "about", "in", "classic", "edition", "collection",
    "for", "from", "original", "series", "great", "one", "on", "their", "its", "best", "first", "more",
)  # fmt: skip
SYLLABLES = (
    "ka", "lo", "mi", "ru", "ze", "ta", "vi", "no", "sa", "be", "do", "fi", "gu", "ha", "jo", "pe",
    "qua", "ro", "su", "ty", "wa", "xe", "yo", "zu", "bri", "cla", "dre", "fro", "gli", "pra", "sto", "tri",
)  # fmt: skip
AGE_BUCKETS = ("18-24", "25-34", "35-44", "45-54", "55+")
REGIONS = ("north", "south", "east", "west", "central")
SHAPES = ("circle", "square", "diamond", "stripes")


@dataclass(frozen=True, eq=False)
class SyntheticTruth:
    """The planted ground truth of a synthetic dataset (rows aligned with the dataset's id maps).

    Attributes
    ----------
    user_factors, item_factors
        ``P [n_users, K]`` and ``Q [n_items, K]``; the true preference is ``P @ Q.T``.
    user_drift
        ``D [n_users, K]``: user ``u``'s taste at relative time ``t`` in its window is ``P_u + (t - 1/2) D_u``.
    user_bias, item_bias
        Rating biases ``bu``, ``bi`` around ``global_mean``.
    item_popularity
        The power-law popularity logit ``b_i`` used to sample interactions.
    item_topics, user_topics
        Dominant topic (factor) of each item / favourite topic of each user.
    text_topics
        ``[n_items, K]`` topic mixture the item's words were drawn from.
    topic_names, topic_words
        Genre name and vocabulary of every topic.
    contributions
        ``c_m`` per generated modality (0 = noise, 1 = factors only).
    """

    user_factors: np.ndarray
    item_factors: np.ndarray
    user_drift: np.ndarray
    user_bias: np.ndarray
    item_bias: np.ndarray
    item_popularity: np.ndarray
    item_topics: np.ndarray
    user_topics: np.ndarray
    text_topics: np.ndarray
    topic_names: list[str]
    topic_words: list[list[str]]
    contributions: dict[str, float]
    global_mean: float = 3.5
    params: dict[str, Any] = field(default_factory=dict)

    def affinity(self, users: Any = None, items: Any = None) -> np.ndarray:
        """True (time-averaged) preference ``P[users] @ Q[items].T``."""
        p = self.user_factors if users is None else self.user_factors[np.asarray(users, dtype=np.int64)]
        q = self.item_factors if items is None else self.item_factors[np.asarray(items, dtype=np.int64)]
        return p @ q.T  # type: ignore[no-any-return]


# ---------------------------------------------------------------------- checks
def _check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ConfigError(f"{name} must be {bound}, got {value}")
    return int(value)


def _check_float(name: str, value: Any, low: float, high: float, low_open: bool = False) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(f) or f > high or f < low or (low_open and f == low):
        raise ConfigError(f"{name} must lie in {'(' if low_open else '['}{low}, {high}], got {value!r}")
    return f


def _signal(signal: dict[str, float] | None) -> dict[str, float]:
    out = dict(DEFAULT_SIGNAL)
    for key, value in (signal or {}).items():
        if key not in DEFAULT_SIGNAL:
            raise ConfigError(f"unknown signal key {key!r}; known: {sorted(DEFAULT_SIGNAL)}")
        out[key] = _check_float(f"signal[{key!r}]", value, 0.0, 1.0)
    return out


# ---------------------------------------------------------------------- small pure helpers
def _view(rng: np.random.Generator, standardised: np.ndarray, c: float) -> np.ndarray:
    """``c * X + sqrt(1 - c^2) * noise``: a noisy view of standardised factors."""
    noise = rng.standard_normal(standardised.shape)
    return c * standardised + np.sqrt(max(0.0, 1.0 - c * c)) * noise  # type: ignore[no-any-return]


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))  # type: ignore[no-any-return]


def _standardise(x: np.ndarray) -> np.ndarray:
    sd = x.std()
    return (x - x.mean()) / (sd if sd > 0 else 1.0)  # type: ignore[no-any-return]


def _gumbel_topk(
    rng: np.random.Generator, logits: np.ndarray, counts: np.ndarray, batch_rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``counts[r]`` distinct columns per row with probability ~ ``exp(logits)`` (Gumbel top-k).

    ``logits`` is a dense ``[rows, cols]`` matrix, processed ``batch_rows`` rows at a time; returns the
    (row, col) indices of the sampled pairs.  Cells set to ``-inf`` are never drawn.
    """
    n_rows = logits.shape[0]
    rows_out, cols_out = [], []
    for s in range(0, n_rows, batch_rows):
        block = logits[s : s + batch_rows]
        keys = block + rng.gumbel(size=block.shape)
        need = counts[s : s + batch_rows]
        kmax = int(need.max())
        if kmax < block.shape[1]:
            part = np.argpartition(-keys, kmax - 1, axis=1)[:, :kmax]
        else:
            part = np.tile(np.arange(block.shape[1]), (block.shape[0], 1))
        order = np.argsort(-np.take_along_axis(keys, part, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(part, order, axis=1)
        keep = np.arange(top.shape[1])[None, :] < need[:, None]
        r, k = np.nonzero(keep)
        rows_out.append(r + s)
        cols_out.append(top[r, k])
    return np.concatenate(rows_out), np.concatenate(cols_out)


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV (all in [0, 1]) -> RGB in [0, 1], shape ``[n, 3]``."""
    h6 = (h % 1.0) * 6.0
    i = np.floor(h6).astype(np.int64) % 6
    f = h6 - np.floor(h6)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    table = np.stack(
        [np.stack(c, axis=1) for c in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))], axis=0
    )  # [6, n, 3]
    return table[i, np.arange(len(h))]  # type: ignore[no-any-return]


# ---------------------------------------------------------------------- generators (one per part)
def _factors(rng: np.random.Generator, n_users: int, n_items: int, K: int, drift: float) -> dict[str, np.ndarray]:
    share = rng.dirichlet(np.full(K, 5.0))
    item_topics = rng.choice(K, size=n_items, p=share)
    q = 0.35 * rng.standard_normal((n_items, K))
    q[np.arange(n_items), item_topics] += 1.0
    second = rng.choice(K, size=n_items)
    q[np.arange(n_items), second] += 0.5 * (rng.random(n_items) < 0.4) * (second != item_topics)
    user_topics = rng.choice(K, size=n_users, p=share)
    p = 0.35 * rng.standard_normal((n_users, K))
    p[np.arange(n_users), user_topics] += 1.0
    second_u = rng.choice(K, size=n_users)
    p[np.arange(n_users), second_u] += 0.6 * (rng.random(n_users) < 0.5) * (second_u != user_topics)
    d = drift * rng.standard_normal((n_users, K)) / np.sqrt(K)
    return {"P": p, "Q": q, "D": d, "item_topics": item_topics, "user_topics": user_topics}


def _interactions(
    rng: np.random.Generator,
    f: dict[str, np.ndarray],
    density: float,
    popularity: float,
    affinity: float,
    n_days: int,
) -> dict[str, np.ndarray]:
    P, Q, D = f["P"], f["Q"], f["D"]
    n_users, n_items = len(P), len(Q)
    # popularity: power law over a random ranking of the items
    rank = rng.permutation(n_items)
    pop = -popularity * np.log1p(rank)
    pop -= pop.mean()
    # interactions per user: log-normal around density * n_items, at least 5
    mean = density * n_items
    sigma = 0.6
    n_u = np.round(mean * np.exp(sigma * rng.standard_normal(n_users) - sigma**2 / 2)).astype(np.int64)
    n_u = np.clip(n_u, 5, n_items)
    batch = max(1, 4_000_000 // n_items)
    rows, cols = [], []
    for s in range(0, n_users, batch):
        logits = affinity * (P[s : s + batch] @ Q.T) + pop[None, :]
        r, c = _gumbel_topk(rng, logits, n_u[s : s + batch], batch)
        rows.append(r + s)
        cols.append(c)
    u = np.concatenate(rows)
    i = np.concatenate(cols)
    # time: each user active in a window; order within it follows the drift direction
    span = float(n_days) * 86400.0
    start = rng.uniform(0.0, 0.6, n_users) * span
    length = rng.uniform(0.15, 1.0, n_users) * (span - start)
    align = np.einsum("nk,nk->n", Q[i], D[u])
    align = align / (align.std() if align.std() > 0 else 1.0)
    tau = _sigmoid(1.5 * align + rng.logistic(size=len(u)) * 0.7)
    ts = (START_TIME + start[u] + tau * length[u]).astype(np.int64)
    # ratings from the drifting taste
    taste = np.einsum("nk,nk->n", P[u] + (tau - 0.5)[:, None] * D[u], Q[i])
    z = (taste - taste.mean()) / (taste.std() if taste.std() > 0 else 1.0)
    bu = 0.35 * rng.standard_normal(n_users)
    bi = 0.3 * rng.standard_normal(n_items) + 0.15 * _standardise(pop)
    raw = 3.5 + bu[u] + bi[i] + 0.9 * z + 0.5 * rng.standard_normal(len(u))
    ratings = np.clip(np.floor(raw + 0.5), 1, 5)
    return {"u": u, "i": i, "ts": ts, "r": ratings, "pop": pop, "bu": bu, "bi": bi}


def _vocabulary(rng: np.random.Generator, K: int, words_per_topic: int) -> list[list[str]]:
    seen = set(FILLER_WORDS)
    vocab: list[list[str]] = []
    for _ in range(K):
        words: list[str] = []
        while len(words) < words_per_topic:
            n_syl = 2 + int(rng.random() < 0.5)
            w = "".join(SYLLABLES[j] for j in rng.integers(0, len(SYLLABLES), n_syl))
            if w not in seen:
                seen.add(w)
                words.append(w)
        vocab.append(words)
    return vocab


def _texts(
    rng: np.random.Generator, view: np.ndarray, vocab: list[list[str]], n_words: int
) -> tuple[list[str], list[str], np.ndarray]:
    """Titles, descriptions and the topic mixture ``softmax(2 V)`` the words were drawn from."""
    n, K = view.shape
    W = len(vocab[0])
    theta = _softmax(2.0 * view)
    words = np.array([w for topic in vocab for w in topic], dtype=object)  # topic k owns [k*W, (k+1)*W)
    filler = np.array(FILLER_WORDS, dtype=object)
    cum = np.cumsum(theta, axis=1)
    topic = np.minimum((rng.random((n, n_words))[:, :, None] > cum[:, None, :]).sum(-1), K - 1)
    within = np.minimum((W * rng.random((n, n_words)) ** 2).astype(np.int64), W - 1)  # skewed use within a topic
    desc = words[topic * W + within]
    is_filler = rng.random((n, n_words)) < 0.25
    desc[is_filler] = filler[rng.integers(0, len(filler), int(is_filler.sum()))]
    top = theta.argmax(1)
    first = rng.integers(0, W, n)
    second = (first + 1 + rng.integers(0, max(1, W - 1), n)) % W  # a different word when W > 1
    t_words = words[top[:, None] * W + np.stack([first, second], axis=1)]
    titles = [f"{a.capitalize()} {b.capitalize()}" for a, b in t_words.tolist()]
    descriptions = [" ".join(row) for row in desc.tolist()]
    return titles, descriptions, theta


def _image_arrays(rng: np.random.Generator, view: np.ndarray, size: int) -> np.ndarray:
    """``uint8 [n, size, size, 3]``: hue from the topics, shape from the dominant one, noise on top."""
    n, K = view.shape
    weights = _softmax(2.0 * view)
    angles = 2 * np.pi * np.arange(K) / K
    hue = (np.arctan2(weights @ np.sin(angles), weights @ np.cos(angles)) / (2 * np.pi)) % 1.0
    proj = view @ rng.standard_normal((K, 3)) / np.sqrt(K)
    bg = _hsv_to_rgb(hue, 0.35 + 0.3 * _sigmoid(proj[:, 0]), np.full(n, 0.92))
    fg = _hsv_to_rgb(hue + 0.5, np.full(n, 0.85), 0.35 + 0.4 * _sigmoid(proj[:, 1]))
    radius = 0.35 + 0.3 * _sigmoid(proj[:, 2])
    kind = view.argmax(1) % len(SHAPES)
    coords = (np.arange(size) + 0.5) / size * 2 - 1
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    r = radius[:, None, None]
    masks = np.stack(
        [
            xx**2 + yy**2 <= r**2,
            np.maximum(np.abs(xx), np.abs(yy)) <= r * 0.85,
            np.abs(xx) + np.abs(yy) <= r * 1.2,
            (np.sin(xx * np.pi * 3 / r) > 0) & (np.abs(yy) <= 0.9),
        ],
        axis=0,
    )  # [4, n, S, S]
    mask = masks[kind, np.arange(n)]
    img = np.where(mask[..., None], fg[:, None, None, :], bg[:, None, None, :]) * 255.0
    img += rng.normal(0.0, 6.0, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _write_images(images: np.ndarray, ids: np.ndarray, directory: Path) -> list[str]:
    from PIL import Image

    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for arr, raw in zip(images, ids.tolist()):
        p = directory / f"{raw}.png"
        Image.fromarray(arr, mode="RGB").save(p, format="PNG")
        paths.append(str(p))
    return paths


def _cached_images(images: np.ndarray, ids: np.ndarray, root: Path) -> list[str]:
    """Write the PNGs once into ``root`` (atomically, by renaming a finished temporary folder) and reuse them."""
    marker = root / "_complete.json"
    names = [f"{raw}.png" for raw in ids.tolist()]
    if marker.is_file():
        try:
            if json.loads(marker.read_text()).get("n") == len(names):
                return [str(root / nm) for nm in names]
        except (OSError, ValueError):
            pass
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / f"{root.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    _write_images(images, ids, tmp)
    (tmp / "_complete.json").write_text(json.dumps({"n": len(names), "version": GENERATOR_VERSION}))
    try:
        if marker.is_file():  # another process finished meanwhile
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            if root.exists():
                shutil.rmtree(root)  # an incomplete earlier attempt
            os.replace(tmp, root)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # another process finished first
        if not marker.is_file():
            raise
    return [str(root / nm) for nm in names]


def _audio(rng: np.random.Generator, view: np.ndarray, seconds: float, sr: int) -> np.ndarray:
    """``float32 [n, samples]`` sine mixtures: pitch from the topic mix, timbre and decay from projections."""
    n, K = view.shape
    H = 4
    W = rng.standard_normal((K, 2 + H)) / np.sqrt(K)
    proj = view @ W
    notes = 36.0 * rng.permutation(K) / K  # every topic has its own note, in semitones above 110 Hz
    f0 = 110.0 * 2.0 ** ((_softmax(2.0 * view) @ notes) / 12.0)  # 110 .. 880 Hz
    decay = 1.0 + 5.0 * _sigmoid(proj[:, 1])
    amps = _softmax(1.5 * proj[:, 2:])  # [n, H]
    harm = np.arange(1, H + 1)
    amps = amps * (harm[None, :] * f0[:, None] < sr / 2)  # nothing above Nyquist
    phase = rng.uniform(0, 2 * np.pi, (n, H)).astype(np.float32)
    f0, amps = f0.astype(np.float32), amps.astype(np.float32)
    t = (np.arange(max(1, round(seconds * sr))) / sr).astype(np.float32)
    out = np.zeros((n, len(t)), dtype=np.float32)
    for h in range(H):
        cycles = ((h + 1) * f0[:, None] * t[None, :]) % 1.0  # float32 phase stays exact after the modulo
        out += amps[:, h, None] * np.sin(np.float32(2 * np.pi) * cycles + phase[:, h, None])
    env = (1.0 - np.exp(-t / 0.01))[None, :] * np.exp(-decay.astype(np.float32)[:, None] * t[None, :])
    out = out * env + rng.standard_normal(out.shape, dtype=np.float32) * np.float32(0.01)
    peak = np.abs(out).max(axis=1, keepdims=True)
    return (0.8 * out / np.where(peak > 0, peak, 1.0)).astype(np.float32)


def _item_attributes(
    rng: np.random.Generator, view: np.ndarray, pop: np.ndarray, c_attr: float, topic_names: list[str]
) -> tuple[list[list[str]], Any]:
    import pandas as pd

    n, K = view.shape
    # genres: the dominant topic, plus any with softmax weight >= 0.25 (at most 3)
    w = _softmax(2.0 * view)
    order = np.argsort(-w, axis=1, kind="stable")[:, :3]
    top_w = np.take_along_axis(w, order, axis=1)
    keep = np.ones_like(top_w, dtype=bool)
    keep[:, 1:] = top_w[:, 1:] >= 0.25
    names = np.array(topic_names, dtype=object)
    genres = [names[o[k]].tolist() for o, k in zip(order, keep)]
    # brand: with probability c_attr one of the brands of the dominant topic, else any brand
    n_brands = max(K, min(50, n // 15))
    home = np.arange(n_brands) % K
    dominant = view.argmax(1)
    per_topic = np.bincount(home, minlength=K)
    pick_in_topic = (rng.random(n) * per_topic[dominant]).astype(np.int64)  # j-th brand of that topic
    topic_brand = dominant + K * pick_in_topic
    brand = np.where(rng.random(n) < c_attr, topic_brand, rng.integers(0, n_brands, n))
    proj = view @ rng.standard_normal((K, 3)) / np.sqrt(K)
    table = pd.DataFrame(
        {
            "brand": [f"brand_{b:02d}" for b in brand.tolist()],
            "price": np.round(np.exp(2.5 + 0.5 * proj[:, 0] + 0.2 * _standardise(pop)), 2),
            "year": (1990 + np.floor(34 * _sigmoid(proj[:, 1]))).astype(np.int64),
            "duration": np.round(60 + 90 * _sigmoid(proj[:, 2]), 1),
        }
    )
    return genres, table


def _user_profiles(rng: np.random.Generator, view: np.ndarray) -> Any:
    import pandas as pd

    n, K = view.shape
    proj = view @ rng.standard_normal((K, 1 + len(REGIONS))) / np.sqrt(K)
    age_score = proj[:, 0] + 0.3 * rng.standard_normal(n)
    edges = np.quantile(age_score, [0.2, 0.45, 0.7, 0.88])
    age = np.searchsorted(edges, age_score)
    region = (proj[:, 1:] + 0.3 * rng.gumbel(size=(n, len(REGIONS)))).argmax(1)
    return pd.DataFrame(
        {
            "age_bucket": np.array(AGE_BUCKETS, dtype=object)[age],
            "region": np.array(REGIONS, dtype=object)[region],
        }
    )


def _social(rng: np.random.Generator, P: np.ndarray, c: float, degree: float) -> sp.csr_matrix:
    """Undirected homophilous links: each user picks ~degree/2 others with probability ~ exp(6 c cos)."""
    n = len(P)
    if n < 2 or degree <= 0:
        return sp.csr_matrix((n, n), dtype=np.float32)
    unit = P / np.linalg.norm(P, axis=1, keepdims=True)
    picks = np.clip(rng.poisson(degree / 2.0, n), 1, n - 1)
    batch = max(1, 4_000_000 // n)
    rows, cols = [], []
    for s in range(0, n, batch):
        logits = 6.0 * c * (unit[s : s + batch] @ unit.T)
        idx = np.arange(s, min(n, s + batch))
        logits[idx - s, idx] = -np.inf
        r, k = _gumbel_topk(rng, logits, picks[s : s + batch], batch)
        rows.append(r + s)
        cols.append(k)
    r, k = np.concatenate(rows), np.concatenate(cols)
    a = sp.coo_matrix((np.ones(len(r), dtype=np.float32), (r, k)), shape=(n, n)).tocsr()
    a = ((a + a.T) > 0).astype(np.float32).tocsr()
    a.sort_indices()
    return a


def _to_interactions(
    u: np.ndarray, i: np.ndarray, r: np.ndarray, ts: np.ndarray, user_ids: IdMap, item_ids: IdMap
) -> Interactions:
    """CSR straight from distinct index pairs (no raw-id round trip; the sampler never repeats a pair)."""
    n_users, n_items = len(user_ids), len(item_ids)
    order = np.argsort(u * n_items + i, kind="stable")
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(u, minlength=n_users), out=indptr[1:])
    m = sp.csr_matrix((r[order].astype(np.float32), i[order].astype(np.int32), indptr), shape=(n_users, n_items))
    m.has_sorted_indices = True
    return Interactions(m, user_ids, item_ids, ts[order].astype(np.int64), explicit=True)


def _params_hash(params: dict[str, Any]) -> str:
    blob = json.dumps({**params, "version": GENERATOR_VERSION}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------- public API
def make_synthetic(
    n_users: int = 500,
    n_items: int = 300,
    n_factors: int = 8,
    density: float = 0.05,
    seed: int = 0,
    image_dir: str | os.PathLike[str] | None = None,
    image_size: int = 32,
    audio_seconds: float = 0.5,
    sample_rate: int = 8000,
    with_images: bool = True,
    with_audio: bool = True,
    with_social: bool = True,
    *,
    signal: dict[str, float] | None = None,
    popularity: float = 1.0,
    affinity: float = 3.0,
    drift: float = 0.8,
    n_days: int = 730,
    words_per_topic: int = 20,
    description_words: int = 30,
    social_degree: float = 8.0,
) -> Dataset:
    """Generate the synthetic multimodal dataset (see the module docstring for the model).

    Parameters
    ----------
    n_users, n_items, n_factors
        Sizes; ``n_factors`` is also the number of topics / genres.
    density
        Mean interactions per user divided by ``n_items`` (every user gets at least 5).
    seed
        Everything is a deterministic function of the parameters and the seed.
    image_dir
        Where the PNGs go.  Default: ``fusionrec.config.cache_dir()/synthetic/<params-hash>``, written
        once and reused when present.
    image_size
        Square PNG side in pixels.
    audio_seconds, sample_rate
        Length and rate of the waveforms.
    with_images, with_audio, with_social
        Generate those parts (the others do not change when one is off).
    signal
        Contribution ``c_m`` in [0, 1] of the factors to each modality (keys of :data:`DEFAULT_SIGNAL`).
    popularity
        Power-law exponent of the item popularity bias (0 = none).
    affinity
        Weight of ``P_u . Q_i`` in the choice of items (0 = popularity only).
    drift
        Norm scale of the per-user taste drift.
    n_days
        Length of the time window of the interactions.
    words_per_topic, description_words
        Topic vocabulary size and words per description.
    social_degree
        Mean number of social links per user.

    Returns
    -------
    Dataset
        ``name="synthetic"``; explicit ratings 1..5 with timestamps.  Item modalities: ``title`` and
        ``text`` (title + description; text), ``image`` (PNG paths), ``audio`` (``(waveform, sample_rate)``
        tuples, float32 mono), ``genres`` (categorical lists), ``attributes`` (tabular: brand, price,
        year, duration).  User modality ``profile`` (tabular: age_bucket, region).  ``social``: symmetric
        users x users CSR.  ``meta["truth"]`` is the :class:`SyntheticTruth`; ``meta["params"]`` the
        parameters.
    """
    n_users = _check_int("n_users", n_users, 1)
    n_items = _check_int("n_items", n_items, 5)
    K = _check_int("n_factors", n_factors, 1)
    density = _check_float("density", density, 0.0, 1.0, low_open=True)
    seed = _check_int("seed", seed, 0)
    image_size = _check_int("image_size", image_size, 4, 1024)
    audio_seconds = _check_float("audio_seconds", audio_seconds, 0.0, 600.0, low_open=True)
    sample_rate = _check_int("sample_rate", sample_rate, 1000, 192_000)
    popularity = _check_float("popularity", popularity, 0.0, 10.0)
    affinity = _check_float("affinity", affinity, 0.0, 100.0)
    drift = _check_float("drift", drift, 0.0, 100.0)
    n_days = _check_int("n_days", n_days, 1)
    words_per_topic = _check_int("words_per_topic", words_per_topic, 1)
    description_words = _check_int("description_words", description_words, 1)
    social_degree = _check_float("social_degree", social_degree, 0.0, 1e6)
    contributions = _signal(signal)
    params: dict[str, Any] = {
        "n_users": n_users,
        "n_items": n_items,
        "n_factors": K,
        "density": density,
        "seed": seed,
        "image_size": image_size,
        "audio_seconds": audio_seconds,
        "sample_rate": sample_rate,
        "signal": contributions,
        "popularity": popularity,
        "affinity": affinity,
        "drift": drift,
        "n_days": n_days,
        "words_per_topic": words_per_topic,
        "description_words": description_words,
        "social_degree": social_degree,
    }

    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(8)]
    r_fac, r_int, r_text, r_img, r_aud, r_attr, r_user, r_soc = streams
    f = _factors(r_fac, n_users, n_items, K, drift)
    P, Q = f["P"], f["Q"]
    qn, pn = _standardise(Q), _standardise(P)
    inter = _interactions(r_int, f, density, popularity, affinity, n_days)

    user_ids = IdMap([f"u{j:0{len(str(n_users - 1))}d}" for j in range(n_users)])
    item_ids = IdMap([f"i{j:0{len(str(n_items - 1))}d}" for j in range(n_items)])
    x = _to_interactions(inter["u"], inter["i"], inter["r"], inter["ts"], user_ids, item_ids)

    topic_names = [GENRE_NAMES[k] if k < len(GENRE_NAMES) else f"genre_{k}" for k in range(K)]
    vocab = _vocabulary(r_text, K, words_per_topic)
    titles, descriptions, theta = _texts(r_text, _view(r_text, qn, contributions["text"]), vocab, description_words)
    items: dict[str, Modality] = {
        "title": Modality("text", item_ids, titles),
        "text": Modality("text", item_ids, [f"{t}. {d}" for t, d in zip(titles, descriptions)]),
    }
    meta: dict[str, Any] = {"params": params, "image_dir": None}
    # the views are drawn even when a part is off, so each stream stays the same
    img_view = _view(r_img, qn, contributions["image"])
    if with_images:
        arrays = _image_arrays(r_img, img_view, image_size)
        if image_dir is None:
            from fusionrec.config import cache_dir

            root = cache_dir() / "synthetic" / _params_hash(params)
            paths = _cached_images(arrays, item_ids.ids, root)
        else:
            root = Path(image_dir)
            paths = _write_images(arrays, item_ids.ids, root)
        items["image"] = Modality("image", item_ids, paths)
        meta["image_dir"] = str(root)
    aud_view = _view(r_aud, qn, contributions["audio"])
    if with_audio:
        waves = _audio(r_aud, aud_view, audio_seconds, sample_rate)
        items["audio"] = Modality("audio", item_ids, [(w, sample_rate) for w in waves])
    genres_view = _view(r_attr, qn, contributions["genres"])
    genres, table = _item_attributes(r_attr, genres_view, inter["pop"], contributions["attributes"], topic_names)
    items["genres"] = Modality("categorical", item_ids, genres)
    items["attributes"] = Modality("tabular", item_ids, table)
    users = {
        "profile": Modality(
            "tabular", user_ids, _user_profiles(r_user, _view(r_user, pn, contributions["profile"])), target="user"
        )
    }
    social = _social(r_soc, P, contributions["social"], social_degree) if with_social else None

    meta["truth"] = SyntheticTruth(
        user_factors=P,
        item_factors=Q,
        user_drift=f["D"],
        user_bias=inter["bu"],
        item_bias=inter["bi"],
        item_popularity=inter["pop"],
        item_topics=f["item_topics"],
        user_topics=f["user_topics"],
        text_topics=theta,
        topic_names=topic_names,
        topic_words=vocab,
        contributions=contributions,
        params=params,
    )
    return Dataset("synthetic", x, items, users, social, meta)


def write_audio(dataset: Dataset, directory: str | os.PathLike[str], modality: str = "audio") -> Modality:
    """Write an audio modality of waveforms as 16-bit PCM mono ``.wav`` files (stdlib :mod:`wave`).

    Items hold ``(waveform, sample_rate)`` tuples (or bare arrays, then ``dataset.meta["params"]
    ["sample_rate"]`` or 22050 Hz).  Returns an ``audio`` modality of the file paths, for file-based encoders.
    """
    if modality not in dataset.item_modalities:
        raise DataError(f"no item modality {modality!r}; available: {sorted(dataset.item_modalities)}")
    mod = dataset.item_modalities[modality]
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    default_sr = int(dataset.meta.get("params", {}).get("sample_rate", 22050))
    paths = []
    for raw, item in zip(mod.ids.ids.tolist(), mod.data):
        if isinstance(item, tuple) and len(item) == 2:
            y, sr = np.asarray(item[0]), int(item[1])
        elif isinstance(item, np.ndarray):
            y, sr = item, default_sr
        else:
            raise DataError(f"audio of item {raw!r} is a {type(item).__name__}, not a waveform; nothing to write")
        pcm = (np.clip(np.asarray(y, dtype=np.float64).reshape(-1), -1.0, 1.0) * 32767).astype("<i2")
        p = out / f"{raw}.wav"
        with wave.open(str(p), "wb") as fh:
            fh.setnchannels(1)
            fh.setsampwidth(2)
            fh.setframerate(sr)
            fh.writeframes(pcm.tobytes())
        paths.append(str(p))
    return Modality("audio", mod.ids, paths, target=mod.target)


def write_files(dataset: Dataset, directory: str | os.PathLike[str]) -> dict[str, Path]:
    """Write a synthetic dataset as a user's own files would look: the input of :func:`fusionrec.data.from_files`.

    ``interactions.csv`` (user, item, rating, timestamp), ``items.csv`` (item, title, description, genres as
    ``a|b``, image: a PNG path relative to the folder, and the numeric attributes), ``users.csv`` (user and profile
    columns) and ``social.csv`` (user, friend) when the dataset has links.  Returns the paths by role.
    """
    import pandas as pd

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    frame = dataset.interactions.to_frame()
    paths["interactions"] = out / "interactions.csv"
    frame.to_csv(paths["interactions"], index=False)
    mods = dataset.item_modalities
    ids = dataset.item_ids
    items = pd.DataFrame({"item": ids.ids})
    if "title" in mods:
        items["title"] = mods["title"].align(ids)[0]
    if "text" in mods:
        texts = mods["text"].align(ids)[0]
        titles = items["title"].tolist() if "title" in items else [""] * len(ids)
        items["description"] = [str(x).removeprefix(f"{t}. ") for x, t in zip(texts, titles)]
    if "genres" in mods:
        items["genres"] = ["|".join(g or []) for g in mods["genres"].align(ids)[0]]
    if "image" in mods:
        src = mods["image"].align(ids)[0]
        image_dir = out / "images"
        image_dir.mkdir(exist_ok=True)
        rel = []
        for raw, p in zip(ids.ids.tolist(), src):
            if p is None:
                rel.append("")
                continue
            target = image_dir / f"{raw}.png"
            shutil.copyfile(p, target)
            rel.append(f"images/{raw}.png")
        items["image"] = rel
    if "attributes" in mods:
        table, _ = mods["attributes"].align(ids)
        for col in table.columns:
            if col not in items.columns:
                items[col] = table[col].to_numpy()
    paths["items"] = out / "items.csv"
    items.to_csv(paths["items"], index=False)
    if "profile" in dataset.user_modalities:
        table, _ = dataset.user_modalities["profile"].align(dataset.user_ids)
        users = pd.DataFrame({"user": dataset.user_ids.ids})
        for col in table.columns:
            users[col] = table[col].to_numpy()
        paths["users"] = out / "users.csv"
        users.to_csv(paths["users"], index=False)
    if dataset.social is not None and dataset.social.nnz:
        coo = dataset.social.tocoo()
        uids = dataset.user_ids.ids
        links = pd.DataFrame({"user": uids[coo.row], "friend": uids[coo.col]})
        paths["social"] = out / "social.csv"
        links.to_csv(paths["social"], index=False)
    return paths
