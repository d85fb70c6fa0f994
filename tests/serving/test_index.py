from __future__ import annotations

import numpy as np
import pytest

from fusionrec.errors import ConfigError
from fusionrec.serving.index import ExactIndex, FaissIndex, build_index, recall_at_k


def _data(n: int = 4000, d: int = 16, q: int = 50) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, d)).astype(np.float32), rng.normal(size=(q, d)).astype(np.float32)


def test_exact_matches_brute_force_and_adds() -> None:
    items, queries = _data(300, 8, 7)
    index = ExactIndex(items, batch_size=3)
    ids, scores = index.search(queries, 5)
    brute = np.argsort(-(queries @ items.T), axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(ids, brute)
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ items.T, brute, 1), rtol=1e-5)
    index.add(queries[:1] * 100)
    assert index.search(queries[:1], 1)[0][0, 0] == 300 and len(index) == 301


@pytest.mark.parametrize("method", ["hnsw", "ivf"])
def test_faiss_recall_against_exact(method: str) -> None:
    pytest.importorskip("faiss")
    items, queries = _data()
    exact, _ = ExactIndex(items).search(queries, 10)
    approx, _ = FaissIndex(items, method=method).search(queries, 10)  # type: ignore[arg-type]
    recall = recall_at_k(approx, exact)
    assert recall >= 0.9, f"{method} recall@10 {recall:.3f}"


def test_build_index_by_size() -> None:
    pytest.importorskip("faiss")
    items, _ = _data(200, 4, 1)
    assert build_index(items).kind == "exact"
    assert build_index(items, ann_threshold=100).kind == "faiss-hnsw"
    assert build_index(items, "exact", ann_threshold=1).kind == "exact"
    with pytest.raises(ConfigError):
        build_index(items, "fast")  # type: ignore[arg-type]
    assert recall_at_k(np.array([[1, 2]]), np.array([[2, 3]])) == 0.5
