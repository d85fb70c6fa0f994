"""Tabular / categorical encoders and user-behaviour encoders."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fusionrec.data import Interactions
from fusionrec.errors import DataError
from fusionrec.features import (
    BehaviourStatsEncoder,
    GRUSequenceEncoder,
    HashingEncoder,
    MultiHotEncoder,
    TabularEncoder,
    behaviour_stats,
)

from ..conftest import make_interactions


def test_multihot_and_unknown_labels() -> None:
    enc = MultiHotEncoder().fit([["Comedy", "Drama"], ["Drama"], []])
    assert enc.classes_.tolist() == ["Comedy", "Drama"]
    x = enc.transform([["Drama", "Horror"], None, "Comedy"])
    np.testing.assert_array_equal(x, [[0, 1], [0, 0], [1, 0]])


def test_hashing_fixed_width() -> None:
    x = HashingEncoder(n_features=16).transform([["a", "b"], ["a", "b"], ["zzz"], []])
    assert x.shape == (4, 16)
    np.testing.assert_array_equal(x[0], x[1])
    assert not x[3].any()


def test_tabular_scaling_onehot_hashing_and_missing() -> None:
    frame = pd.DataFrame(
        {
            "year": [1990.0, 2000.0, np.nan, 2010.0],
            "kind": ["a", "b", "a", None],
            "studio": [f"s{i}" for i in range(4)],
        }
    )
    enc = TabularEncoder(max_onehot=3, n_hash=8).fit(frame)
    x = enc.transform(frame)
    assert x.shape == (4, 1 + 2 + 8) == (4, enc.dim)
    np.testing.assert_allclose(x[2, 0], 0.0, atol=1e-6)  # missing -> mean -> 0 after standardising
    np.testing.assert_array_equal(x[:, 1:3], [[1, 0], [0, 1], [1, 0], [0, 0]])
    with pytest.raises(DataError):
        enc.transform(frame.drop(columns="year"))
    with pytest.raises(DataError):
        TabularEncoder().fit([1, 2, 3])


def _sessions() -> Interactions:
    # user a: two sessions; user b: one event
    users = ["a", "a", "a", "b"]
    items = ["x", "y", "z", "x"]
    ts = [0, 600, 100_000, 50_000]
    return Interactions.from_arrays(users, items, [4, 2, 3, 5], ts)


def test_behaviour_stats_values() -> None:
    s = behaviour_stats(_sessions(), session_gap=1800)
    a, b = s[0], s[1]
    assert a[0] == pytest.approx(np.log1p(3)) and a[1] == pytest.approx(3.0)
    assert a[6] == pytest.approx(np.log1p(2)) and a[7] == pytest.approx(1.5)  # 2 sessions, 1.5 events each
    assert a[3] == pytest.approx(0.0) and b[3] == pytest.approx(np.log1p(50_000 / 86400))
    x = BehaviourStatsEncoder().fit_transform(_sessions())
    assert x.shape == (2, 10) and np.isfinite(x).all()


def test_gru_sequence_encoder_learns_and_is_deterministic() -> None:
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    train = make_interactions(n_users=30, n_items=20, seed=2)
    enc = GRUSequenceEncoder(n_factors=8, max_len=10, epochs=3, batch_size=16, seed=1)
    a = enc.fit_transform(train)
    b = GRUSequenceEncoder(n_factors=8, max_len=10, epochs=3, batch_size=16, seed=1).fit_transform(train)
    assert a.shape == (30, 8) and enc.dim == 8
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert enc.losses_[-1] < enc.losses_[0]
