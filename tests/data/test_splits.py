"""Splitting strategies: partitions of the input, sizes, seeds, per-user / cold / time guarantees, errors."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fusionrec.data import Dataset, Interactions, Split
from fusionrec.data.splits import (
    cold_items_split,
    cold_users_split,
    kfold,
    leave_last_out,
    make_split,
    per_user_counts,
    per_user_split,
    predefined_split,
    random_split,
    temporal_split,
)
from fusionrec.errors import ConfigError, DataError, MissingColumnError

from ..conftest import make_interactions


def _keys(x: Interactions) -> np.ndarray:
    return x.row_indices() * x.n_items + x.matrix.indices


def _parts(s: Split) -> list[Interactions]:
    return [p for p in (s.train, s.valid, s.test) if p is not None]


def _assert_partition(x: Interactions, s: Split) -> None:
    parts = _parts(s)
    for p in parts:
        assert p.user_ids is x.user_ids and p.item_ids is x.item_ids
        assert p.nnz > 0
    keys = np.concatenate([_keys(p) for p in parts])
    assert len(np.unique(keys)) == len(keys) == x.nnz  # disjoint and nothing lost
    order = np.argsort(keys)
    assert np.array_equal(keys[order], _keys(x))  # x keys are sorted (CSR order)
    values = np.concatenate([p.matrix.data for p in parts])[order]
    assert np.array_equal(values, x.matrix.data)
    if x.timestamps is not None:
        ts = np.concatenate([p.timestamps for p in parts])[order]  # type: ignore[misc]
        assert np.array_equal(ts, x.timestamps)


def _same(a: Split, b: Split) -> bool:
    return all(np.array_equal(_keys(p), _keys(q)) for p, q in zip(_parts(a), _parts(b)))


def _varied() -> Interactions:
    """Users with 1, 2, 3, 4, 5, 10, 20 and 40 interactions (and tied timestamps for user 'tie')."""
    users, items, ts = [], [], []
    for n in (1, 2, 3, 4, 5, 10, 20, 40):
        for j in range(n):
            users.append(f"n{n:02d}")
            items.append(j)
            ts.append(1000 + ((j * 7) % n) * 10)  # distinct, not in item order
    for j in range(4):  # user "tie": items 0..3, items 2 and 3 share the latest time
        users.append("tie")
        items.append(j)
        ts.append([5, 6, 9, 9][j])
    rng = np.random.default_rng(0)
    return Interactions.from_arrays(users, items, rng.integers(1, 6, len(users)), ts)


STRATEGIES: dict[str, Callable[[Interactions], Split]] = {
    "random": lambda x: random_split(x, test=0.2, valid=0.1, seed=3),
    "per_user": lambda x: per_user_split(x, seed=3),
    "per_user_time": lambda x: per_user_split(x, ratios=(0.7, 0.3), by_time=True),
    "leave_last": lambda x: leave_last_out(x, n=2),
    "temporal": lambda x: temporal_split(x, test=0.2, valid=0.1),
    "cold_items": lambda x: cold_items_split(x, seed=3),
    "cold_users": lambda x: cold_users_split(x, test=0.3, valid=0.0, seed=3),
    "kfold": lambda x: kfold(x, k=4, seed=3)[1],
}


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_every_strategy_partitions_the_input(name: str, interactions: Interactions) -> None:
    s = STRATEGIES[name](interactions)
    _assert_partition(interactions, s)
    assert s.name and s.meta["strategy"] in name


@pytest.mark.parametrize("name", ["random", "per_user", "cold_items", "cold_users", "kfold"])
def test_seeded_strategies_are_reproducible(name: str, interactions: Interactions) -> None:
    fn = STRATEGIES[name]
    assert _same(fn(interactions), fn(interactions))
    other = {
        "random": lambda x: random_split(x, test=0.2, valid=0.1, seed=4),
        "per_user": lambda x: per_user_split(x, seed=4),
        "cold_items": lambda x: cold_items_split(x, seed=4),
        "cold_users": lambda x: cold_users_split(x, test=0.3, valid=0.0, seed=4),
        "kfold": lambda x: kfold(x, k=4, seed=4)[1],
    }[name]
    assert not _same(fn(interactions), other(interactions))


def test_random_split_sizes(interactions: Interactions) -> None:
    n = interactions.nnz
    s = random_split(interactions, test=0.2, valid=0.1, seed=0)
    assert s.test.nnz == int(np.floor(0.2 * n + 0.5)) and s.valid is not None
    assert s.valid.nnz == int(np.floor(0.1 * n + 0.5))
    two = random_split(interactions, test=0.25)
    assert two.valid is None and two.test.nnz == int(np.floor(0.25 * n + 0.5))


def test_per_user_counts_rule() -> None:
    n = np.array([0, 1, 2, 3, 4, 5, 10, 20, 100])
    t, v = per_user_counts(n, valid=0.1, test=0.1)
    assert t.tolist() == [0, 0, 1, 1, 1, 1, 1, 2, 10]
    assert v.tolist() == [0, 0, 0, 1, 1, 1, 1, 2, 10]
    assert np.all(n - t - v >= np.minimum(n, 1))  # every user keeps a training interaction
    t2, v2 = per_user_counts(n, valid=0.0, test=0.3)
    assert v2.sum() == 0 and t2.tolist() == [0, 0, 1, 1, 1, 2, 3, 6, 30]


@pytest.mark.parametrize("by_time", [False, True])
def test_per_user_guarantees(by_time: bool) -> None:
    x = _varied()
    s = per_user_split(x, ratios=(0.8, 0.1, 0.1), seed=1, by_time=by_time)
    _assert_partition(x, s)
    assert s.valid is not None
    n = x.user_counts()
    tr, va, te = s.train.user_counts(), s.valid.user_counts(), s.test.user_counts()
    t, v = per_user_counts(n, 0.1, 0.1)
    assert np.array_equal(te, t) and np.array_equal(va, v)
    assert np.all(tr >= 1)  # every user keeps one in train (the brief asks it for users with >= 3)
    assert np.all(te[n >= 2] >= 1) and np.all(va[n >= 3] >= 1)
    big = n >= 20
    assert np.allclose(tr[big] / n[big], 0.8, atol=0.05)


def test_per_user_by_time_holds_out_the_latest() -> None:
    x = make_interactions(n_users=40, n_items=60, density=0.3, seed=2)
    s = per_user_split(x, ratios=(0.6, 0.2, 0.2), by_time=True)
    assert s.valid is not None
    for u in range(x.n_users):
        tr = s.train.timestamps[s.train.matrix.indptr[u] : s.train.matrix.indptr[u + 1]]  # type: ignore[index]
        va = s.valid.timestamps[s.valid.matrix.indptr[u] : s.valid.matrix.indptr[u + 1]]  # type: ignore[index]
        te = s.test.timestamps[s.test.matrix.indptr[u] : s.test.matrix.indptr[u + 1]]  # type: ignore[index]
        if len(te):
            assert te.min() >= max(tr.max(), va.max() if len(va) else tr.max())
        if len(va):
            assert va.min() >= tr.max()


def test_leave_last_out_is_the_latest_with_deterministic_ties() -> None:
    x = _varied()
    s = leave_last_out(x, n=1)
    _assert_partition(x, s)
    assert s.valid is not None
    df, test = x.to_frame(), s.test.to_frame()
    latest = df.sort_values(["user", "timestamp", "item"]).groupby("user").tail(1)
    latest = latest[latest["user"] != "n01"]  # a single interaction stays in train
    merged = test.merge(latest, on=["user", "item"])
    assert len(merged) == len(test) == len(latest)
    assert test[test["user"] == "tie"]["item"].tolist() == [3]  # tie at t=9: the larger item index is later
    assert s.valid.to_frame().query("user == 'tie'")["item"].tolist() == [2]
    assert "n01" not in set(test["user"]) and "n02" not in set(s.valid.to_frame()["user"])
    again = leave_last_out(x, n=1)
    assert _same(s, again)
    two = leave_last_out(x, n=2, valid=False)
    assert two.valid is None
    assert dict(zip(*np.unique(two.test.to_frame()["user"], return_counts=True))) == {
        "n02": 1,
        "n03": 2,
        "n04": 2,
        "n05": 2,
        "n10": 2,
        "n20": 2,
        "n40": 2,
        "tie": 2,
    }


def test_time_strategies_need_timestamps() -> None:
    x = Interactions.from_arrays(["a", "a", "b", "b"], [1, 2, 1, 3], [1, 2, 3, 4])
    with pytest.raises(MissingColumnError, match="timestamps"):
        leave_last_out(x)
    with pytest.raises(DataError, match="timestamps"):
        temporal_split(x)
    with pytest.raises(DataError, match="timestamps"):
        per_user_split(x, by_time=True)


def test_temporal_split_is_a_global_time_cut(interactions: Interactions) -> None:
    s = temporal_split(interactions, test=0.2, valid=0.1)
    assert s.valid is not None
    tr, va, te = s.train.timestamps, s.valid.timestamps, s.test.timestamps
    assert tr.max() <= va.min() and va.max() <= te.min()  # type: ignore[union-attr]
    assert s.meta["test_start"] == te.min() and s.meta["valid_start"] == va.min()  # type: ignore[union-attr]
    assert s.test.nnz == int(np.floor(0.2 * interactions.nnz + 0.5))


def test_kfold_tests_partition_the_data(interactions: Interactions) -> None:
    folds = kfold(interactions, k=5, seed=0)
    assert len(folds) == 5
    tests = np.concatenate([_keys(f.test) for f in folds])
    assert np.array_equal(np.sort(tests), _keys(interactions))
    sizes = [f.test.nnz for f in folds]
    assert max(sizes) - min(sizes) <= 1
    for f in folds:
        _assert_partition(interactions, f)


@pytest.mark.parametrize("axis", ["items", "users"])
def test_cold_splits_hold_out_whole_items_or_users(axis: str, interactions: Interactions) -> None:
    fn = cold_items_split if axis == "items" else cold_users_split
    s = fn(interactions, test=0.2, valid=0.1, seed=5)
    _assert_partition(interactions, s)
    assert s.cold == axis and s.valid is not None
    test_ids, valid_ids = s.meta[f"test_{axis}"], s.meta[f"valid_{axis}"]
    assert len(np.intersect1d(test_ids, valid_ids)) == 0
    counts = {p: (q.item_counts() if axis == "items" else q.user_counts()) for p, q in _parts_named(s)}
    assert np.all(counts["train"][test_ids] == 0) and np.all(counts["train"][valid_ids] == 0)
    assert set(np.flatnonzero(counts["test"])) == set(test_ids.tolist())
    assert set(np.flatnonzero(counts["valid"])) == set(valid_ids.tolist())
    n_active = int(((interactions.item_counts() if axis == "items" else interactions.user_counts()) > 0).sum())
    assert len(test_ids) == int(np.floor(0.2 * n_active + 0.5))


def _parts_named(s: Split) -> list[tuple[str, Interactions]]:
    out = [("train", s.train), ("test", s.test)]
    if s.valid is not None:
        out.append(("valid", s.valid))
    return out


def test_predefined_split_from_frame_and_file(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"user": [1, 1, 1, 2, 2], "item": [1, 2, 3, 1, 4], "rating": [5, 4, 3, 2, 1], "x_label": [0, 1, 2, 0, 2]}
    )
    s = predefined_split(frame)
    assert s.summary() == {"train": 2, "valid": 1, "test": 2}
    p = tmp_path / "toy.csv"
    frame.to_csv(p, index=False)
    assert predefined_split(p).summary() == s.summary() and predefined_split(str(p)).name == "toy"
    with pytest.raises(DataError, match="DataFrame or a path"):
        predefined_split(42)  # type: ignore[arg-type]


def test_make_split_dispatches_by_name(interactions: Interactions) -> None:
    assert _same(make_split(interactions, "random", test=0.3, seed=2), random_split(interactions, test=0.3, seed=2))
    assert _same(make_split(interactions, "per_user", ratios=[0.8, 0.1, 0.1]), per_user_split(interactions))
    assert _same(make_split(interactions, "leave-last-out"), leave_last_out(interactions))
    assert _same(make_split(interactions, "temporal", test=0.1), temporal_split(interactions, test=0.1))
    assert _same(make_split(interactions, "kfold", k=3), kfold(interactions, k=3)[0])
    assert _same(make_split(interactions, "kfold", k=3, fold=2), kfold(interactions, k=3)[2])
    assert make_split(interactions, "cold_items", test=0.2).cold == "items"
    assert make_split(interactions, "cold_users").cold == "users"
    ds = Dataset("d", interactions)
    assert _same(make_split(ds, "random"), random_split(interactions))  # a Dataset is accepted


@pytest.mark.parametrize(
    ("strategy", "params", "match"),
    [
        ("nope", {}, "unknown split strategy"),
        ("random", {"tset": 0.2}, "does not take"),
        ("random", {"test": 1.0}, r"\(0, 1\)"),
        ("random", {"test": 0.0}, r"\(0, 1\)"),
        ("random", {"test": "a"}, "number"),
        ("random", {"test": 0.6, "valid": 0.4}, "sum < 1"),
        ("random", {"seed": 1.5}, "seed"),
        ("per_user", {"ratios": [0.8, 0.1, 0.2]}, "sum to 1"),
        ("per_user", {"ratios": [0.5, 0.2, 0.2, 0.1]}, "2 .* or 3"),
        ("per_user", {"ratios": [1.0, 0.0]}, "test > 0"),
        ("per_user", {"ratios": "0.8,0.2"}, "list of numbers"),
        ("leave_last", {"n": 0}, "positive integer"),
        ("kfold", {"k": 1}, ">= 2"),
        ("kfold", {"k": 3, "fold": 3}, r"\[0, k\)"),
        ("cold_items", {"valid": -0.1}, r"\[0, 1\)"),
    ],
)
def test_make_split_errors(strategy: str, params: dict[str, object], match: str, interactions: Interactions) -> None:
    with pytest.raises(ConfigError, match=match):
        make_split(interactions, strategy, **params)


def test_too_small_data_raise_data_errors() -> None:
    x = Interactions.from_arrays(["a", "b"], [1, 2], [1, 2], [1, 2])
    with pytest.raises(DataError, match="too few"):
        random_split(x, test=0.5, valid=0.4)
    with pytest.raises(DataError, match="no test"):
        per_user_split(x)  # single-interaction users keep everything in train
    with pytest.raises(DataError, match="folds"):
        kfold(x, k=3)
    with pytest.raises(DataError, match="Interactions or a Dataset"):
        random_split([1, 2, 3])  # type: ignore[arg-type]


def test_splits_are_vectorised_on_large_data() -> None:
    rng = np.random.default_rng(0)
    n, n_users, n_items = 400_000, 40_000, 5_000
    users = rng.integers(0, n_users, n)
    items = rng.integers(0, n_items, n)
    key = np.unique(users * n_items + items)
    x = Interactions.from_arrays(key // n_items, key % n_items, None, rng.integers(0, 10**9, len(key)), explicit=False)
    start = time.perf_counter()
    s = per_user_split(x, seed=0)
    leave_last_out(x)
    cold_items_split(x)
    elapsed = time.perf_counter() - start
    assert s.train.nnz + s.test.nnz + s.valid.nnz == x.nnz  # type: ignore[union-attr]
    assert elapsed < 20.0, f"three splits of {x.nnz} interactions took {elapsed:.1f}s"
