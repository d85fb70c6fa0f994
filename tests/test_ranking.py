"""The shared top-k and masking kernels."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from fusionrec._ranking import mask_rows, topk


def test_topk_matches_a_stable_sort() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=(50, 40)).astype(np.float32)  # many ties
    for k in (1, 7, 40, 60):
        idx, val = topk(scores, k)
        ref = np.argsort(-scores, axis=1, kind="stable")[:, : min(k, 40)]  # ties -> lower column first
        np.testing.assert_array_equal(idx, ref)
        np.testing.assert_array_equal(val, np.take_along_axis(scores, ref, axis=1))
    assert topk(scores, 3)[1].dtype == np.float32


def test_topk_ranks_nan_and_minus_inf_last() -> None:
    scores = np.array([[0.5, np.nan, -np.inf, 0.1, 0.9]])
    idx, val = topk(scores, 4)
    np.testing.assert_array_equal(idx[0], [4, 0, 3, 1])  # NaN counts as -inf; the tie goes to the lower column
    assert not np.isnan(val).any()
    idx1, _ = topk(np.array([1.0, 2.0]), 1)  # 1-D input is one row
    np.testing.assert_array_equal(idx1, [[1]])


def test_mask_rows_in_place() -> None:
    m = sp.csr_matrix(np.array([[1, 0, 1], [0, 1, 0], [0, 0, 0]], dtype=np.float32))
    s = np.zeros((2, 3), dtype=np.float32)
    mask_rows(s, m, np.array([0, 2]))
    np.testing.assert_array_equal(np.isinf(s), [[True, False, True], [False, False, False]])
