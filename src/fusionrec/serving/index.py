"""Top-k retrieval by inner product: exact (batched matrix product) or approximate (faiss HNSW / IVF).

:func:`build_index` picks exact below ``ann_threshold`` items and a faiss ``IndexHNSWFlat`` (inner-product
metric) above; :func:`recall_at_k` measures an approximate index against the exact one.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

import numpy as np

from fusionrec._ranking import topk
from fusionrec.errors import ConfigError

__all__ = ["ExactIndex", "FaissIndex", "TopKIndex", "build_index", "recall_at_k"]


class TopKIndex(Protocol):
    """``search(queries [Q, d], k) -> (ids int64 [Q, k], scores float32 [Q, k])``; ``-1`` pads missing slots."""

    kind: str

    def __len__(self) -> int: ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...

    def add(self, vectors: np.ndarray) -> None: ...


class ExactIndex:
    """Exact maximum-inner-product search: ``scores = Q @ V^T`` in blocks of ``batch_size`` queries."""

    kind = "exact"

    def __init__(self, vectors: np.ndarray, batch_size: int = 256) -> None:
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.batch_size = batch_size

    def __len__(self) -> int:
        return len(self.vectors)

    def add(self, vectors: np.ndarray) -> None:
        self.vectors = np.ascontiguousarray(np.vstack([self.vectors, np.asarray(vectors, dtype=np.float32)]))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        ids, vals = [], []
        for start in range(0, len(q), self.batch_size):
            i, v = topk(q[start : start + self.batch_size] @ self.vectors.T, k)
            ids.append(i)
            vals.append(v.astype(np.float32))
        if not ids:
            return np.empty((0, k), np.int64), np.empty((0, k), np.float32)
        return np.vstack(ids), np.vstack(vals)


class FaissIndex:
    """Approximate inner-product search with faiss (``faiss-cpu``).

    Parameters
    ----------
    vectors
        Item vectors ``[n, d]``.
    method
        ``"hnsw"`` (``IndexHNSWFlat``, M=32, graph search; no training) or ``"ivf"``
        (``IndexIVFFlat`` with ``sqrt(n)`` lists, ``nprobe`` probed).
    ef_search, nprobe
        Search-time accuracy knobs (larger: better recall, slower).
    threads
        OpenMP threads faiss may use per search (1 by default: a server answers one query per request from
        many threads, and OpenMP teams per request oversubscribe the cores; ``None`` leaves faiss's setting).
    """

    def __init__(
        self,
        vectors: np.ndarray,
        method: Literal["hnsw", "ivf"] = "hnsw",
        *,
        m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 128,
        nprobe: int = 16,
        seed: int = 0,
        threads: int | None = 1,
    ) -> None:
        try:
            import faiss
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ConfigError("approximate search needs faiss: pip install faiss-cpu") from exc
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        n, d = x.shape
        self.kind = f"faiss-{method}"
        index: Any
        if method == "hnsw":
            index = faiss.IndexHNSWFlat(d, m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = ef_construction
            index.hnsw.efSearch = ef_search
        elif method == "ivf":
            nlist = max(1, int(np.sqrt(n)))
            quantizer = faiss.IndexFlatIP(d)
            index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
            index.cp.seed = seed
            index.train(x)
            index.nprobe = min(nprobe, nlist)
            self._quantizer = quantizer  # keep alive
        else:
            raise ConfigError(f"unknown ANN method {method!r}; use 'hnsw' or 'ivf'")
        index.add(x)
        self.index = index
        self.threads = threads
        self._faiss = faiss

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def add(self, vectors: np.ndarray) -> None:
        self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = int(min(k, len(self)))
        if self.threads is not None:
            self._faiss.omp_set_num_threads(self.threads)
        scores, ids = self.index.search(q, k)
        ids = ids.astype(np.int64)
        scores = scores.astype(np.float32)
        scores[ids < 0] = -np.inf
        return ids, scores


def build_index(
    vectors: np.ndarray,
    kind: Literal["auto", "exact", "ann"] = "auto",
    *,
    ann_threshold: int = 50_000,
    method: Literal["hnsw", "ivf"] = "hnsw",
) -> ExactIndex | FaissIndex:
    """Exact search for small catalogues (``n < ann_threshold``) and faiss for large ones (``kind="auto"``)."""
    if kind not in ("auto", "exact", "ann"):
        raise ConfigError(f"index kind must be 'auto', 'exact' or 'ann', not {kind!r}")
    n = len(vectors)
    if kind == "exact" or (kind == "auto" and n < ann_threshold):
        return ExactIndex(vectors)
    return FaissIndex(vectors, method=method)


def recall_at_k(approx_ids: np.ndarray, exact_ids: np.ndarray) -> float:
    """Mean over queries of ``|approx ∩ exact| / |exact|`` (``-1`` slots ignored)."""
    hits, total = 0, 0
    for a, e in zip(np.asarray(approx_ids), np.asarray(exact_ids)):
        e_set = {int(x) for x in e if x >= 0}
        hits += len(e_set & {int(x) for x in a if x >= 0})
        total += len(e_set)
    return hits / total if total else 1.0
