from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import pytest

from fusionrec.data import DataWarning, IdMap, Interactions
from fusionrec.errors import (
    DataError,
    DuplicateInteractionError,
    EmptyDataError,
    InvalidValueError,
    MissingColumnError,
    UnknownIdError,
)


def test_idmap_roundtrip_vectorised() -> None:
    m = IdMap(["b", "a", "c"])
    assert m.to_index(["c", "b"]).tolist() == [2, 0]
    assert m.to_id([0, 2]).tolist() == ["b", "c"]
    assert m.to_index("a") == 1
    assert "a" in m and "z" not in m
    with pytest.raises(UnknownIdError, match="unknown"):
        m.to_index(["z"])
    assert m.to_index(["z", "a"], missing="ignore").tolist() == [-1, 1]
    with pytest.raises(UnknownIdError):
        m.to_id([3])


def test_idmap_int_ids_and_extend() -> None:
    m, codes = IdMap.factorize(np.array([30, 10, 30, 20]))
    assert m.ids.tolist() == [10, 20, 30]
    assert codes.tolist() == [2, 0, 2, 1]
    m2 = m.extend([20, 40, 50, 40])
    assert m2.ids.tolist() == [10, 20, 30, 40, 50]
    assert m2.to_index([10, 30]).tolist() == m.to_index([10, 30]).tolist()


def test_idmap_rejects_duplicates_and_missing() -> None:
    with pytest.raises(DataError, match="distinct"):
        IdMap([1, 2, 1])
    with pytest.raises(DataError, match="NaN"):
        IdMap.factorize(np.array([1.0, np.nan]))


def test_from_frame_builds_sorted_csr_with_aligned_timestamps() -> None:
    df = pd.DataFrame(
        {"userId": [2, 1, 1, 2], "movieId": [5, 7, 5, 6], "rating": [4.0, 3.0, 5.0, 1.0], "timestamp": [40, 30, 10, 20]}
    )
    x = Interactions.from_frame(df)
    assert x.shape == (2, 3)
    assert x.explicit
    dense = x.matrix.toarray()
    assert dense.tolist() == [[5.0, 0.0, 3.0], [4.0, 1.0, 0.0]]
    # timestamps follow the CSR order: user 1 -> items 5 (10), 7 (30); user 2 -> 5 (40), 6 (20)
    assert x.timestamps is not None and x.timestamps.tolist() == [10, 30, 40, 20]
    back = x.to_frame().sort_values(["user", "item"]).reset_index(drop=True)
    assert back["rating"].tolist() == [5.0, 3.0, 4.0, 1.0]


def test_implicit_when_no_rating_column() -> None:
    x = Interactions.from_frame(pd.DataFrame({"user": ["a", "b"], "item": ["x", "x"]}))
    assert not x.explicit
    assert x.matrix.data.tolist() == [1.0, 1.0]


def test_iso_dates_parse_to_epoch_seconds() -> None:
    x = Interactions.from_arrays(["a"], ["x"], [1.0], ["1970-01-02T00:00:00Z"])
    assert x.timestamps is not None and x.timestamps.tolist() == [86400]


@pytest.mark.parametrize(
    ("frame", "error", "match"),
    [
        (pd.DataFrame({"user": [1], "rating": [1.0]}), MissingColumnError, "item"),
        (pd.DataFrame({"user": [1, 2], "item": [1, 2], "rating": ["5", "good"]}), InvalidValueError, "non-numeric"),
        (pd.DataFrame({"user": [1, 2], "item": [1, 2], "rating": [5.0, np.nan]}), InvalidValueError, "NaN"),
        (
            pd.DataFrame({"user": [1, 1], "item": [2, 2], "rating": [5.0, 4.0]}),
            DuplicateInteractionError,
            "duplicates=",
        ),
        (pd.DataFrame({"user": [], "item": [], "rating": []}), EmptyDataError, "no rows"),
    ],
)
def test_bad_input_raises_typed_errors(frame: pd.DataFrame, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        Interactions.from_frame(frame)


def test_explicit_column_name_missing_is_reported() -> None:
    with pytest.raises(MissingColumnError, match="'stars'"):
        Interactions.from_frame(pd.DataFrame({"user": [1], "item": [1]}), rating="stars")


@pytest.mark.parametrize(
    ("policy", "expected"), [("first", 5.0), ("last", 3.0), ("sum", 12.0), ("mean", 4.0), ("max", 5.0)]
)
def test_duplicates_policies_report_the_count(policy: str, expected: float) -> None:
    df = pd.DataFrame({"user": [1, 1, 1, 2], "item": [9, 9, 9, 9], "rating": [5.0, 4.0, 3.0, 1.0], "ts": [1, 2, 3, 4]})
    with pytest.warns(DataWarning, match="merged 2 duplicate"):
        x = Interactions.from_frame(df, timestamp="ts", duplicates=policy)  # type: ignore[arg-type]
    assert x.nnz == 2
    assert x.matrix[0, 0] == pytest.approx(expected)


def test_unknown_ids_raise_or_drop_with_report() -> None:
    users, items = IdMap([1, 2]), IdMap(["a"])
    with pytest.raises(UnknownIdError):
        Interactions.from_arrays([1, 3], ["a", "a"], user_ids=users, item_ids=items)
    with pytest.warns(DataWarning, match="dropped 1 of 2"):
        x = Interactions.from_arrays([1, 3], ["a", "a"], user_ids=users, item_ids=items, unknown="drop")
    assert x.nnz == 1 and x.shape == (2, 1)


def test_select_binarize_concat_reindex() -> None:
    x = Interactions.from_arrays([1, 1, 2, 3], ["a", "b", "a", "c"], [5.0, 2.0, 4.0, 1.0], [1, 2, 3, 4])
    part = x.select(x.matrix.data >= 4)
    assert part.nnz == 2 and part.shape == x.shape
    assert part.timestamps is not None and part.timestamps.tolist() == [1, 3]
    b = x.binarize(3.0)
    assert not b.explicit and b.nnz == 2
    rest = x.select(x.matrix.data < 4)
    whole = Interactions.concat([part, rest])
    assert (whole.matrix != x.matrix).nnz == 0
    bigger = x.reindex(x.user_ids.extend([9]), x.item_ids.extend(["z"]))
    assert bigger.shape == (4, 4) and bigger.nnz == 4
    assert x.fingerprint() == Interactions.concat([rest, part]).fingerprint()


def test_build_one_million_rows_is_vectorised() -> None:
    rng = np.random.default_rng(0)
    n = 1_000_000
    key = rng.choice(200_000 * 5_000, size=n, replace=False)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = Interactions.from_arrays(key // 5_000, key % 5_000, rng.integers(1, 6, n), rng.integers(0, 10**9, n))
    elapsed = time.perf_counter() - t0
    assert x.nnz == n
    # generous bound: the build is a handful of vectorised passes (about 0.3 s here); a per-row loop takes minutes
    assert elapsed < 10


@pytest.mark.parametrize(
    ("column", "values", "match"),
    [
        ("rating", [4.0, 1e40, 3.0, -1e39], r"2 rating value\(s\) beyond .* at rows 1, 3"),
        ("timestamp", [1.0, 2.0, 1e30, 4.0], r"1 timestamp\(s\) beyond .* at row 2"),
        ("timestamp", np.array([1, 2, 3, 2**64 - 1], dtype=np.uint64), r"1 timestamp\(s\) beyond .* at row 3"),
        ("timestamp", [1.0, float("nan"), 3.0, float("inf")], r"2 NaN or infinite timestamp\(s\) at rows 1, 3"),
    ],
)
def test_out_of_range_values_are_refused_naming_the_rows(column: str, values: object, match: str) -> None:
    """A rating of 1e40 would become inf in float32 and a timestamp of 1e30 garbage in int64: typed errors naming
    the rows, not a numpy warning (issue 11)."""
    frame = pd.DataFrame({"user": [1, 2, 3, 4], "item": [1, 2, 3, 4], "rating": [1.0, 2.0, 3.0, 4.0]})
    frame["timestamp"] = [1, 2, 3, 4]
    frame[column] = values
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy overflow warning on the way
        with pytest.raises(InvalidValueError, match=match):
            Interactions.from_frame(frame)
