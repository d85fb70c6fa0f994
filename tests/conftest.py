"""Shared fixtures: small generated interactions and the real-data directory (skips when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# Each xdist worker gets its own numba cache directory: two processes compiling the same cached function (ours or
# librosa's) at once can leave one of them loading a half-written cache entry and crashing.  Set before anything
# imports numba (which reads the setting once).
# (The controller process sets it too, and its workers inherit that, so a worker always picks its own.)
_worker = os.environ.get("PYTEST_XDIST_WORKER")
if _worker or "NUMBA_CACHE_DIR" not in os.environ:
    _root = Path(os.environ.get("FUSIONREC_CACHE_DIR") or Path(__file__).resolve().parents[1] / ".cache")
    os.environ["NUMBA_CACHE_DIR"] = str(_root / "numba" / (_worker or "main"))

from fusionrec.data import Interactions, Split  # noqa: E402


def real_data_dir() -> Path | None:
    value = os.environ.get("FUSIONREC_DATA_DIR")
    if not value:
        return None
    p = Path(value)
    return p if p.is_dir() else None


@pytest.fixture
def data_dir() -> Path:
    """The shared real-data directory; the test is skipped when FUSIONREC_DATA_DIR is unset or absent."""
    p = real_data_dir()
    if p is None:
        pytest.skip("real data absent: set FUSIONREC_DATA_DIR to the shared data directory")
    return p


def make_interactions(
    n_users: int = 60, n_items: int = 40, density: float = 0.15, seed: int = 0, explicit: bool = True
) -> Interactions:
    """Low-rank explicit ratings 1..5 (or implicit ones) with timestamps; every user has >= 3 items."""
    rng = np.random.default_rng(seed)
    pu = rng.normal(size=(n_users, 3))
    qi = rng.normal(size=(n_items, 3))
    pop = rng.power(0.5, size=n_items) + 0.05
    prob = np.clip(density * pop / pop.mean() * np.exp(0.3 * (pu @ qi.T)), 0, 0.9)
    mask = rng.random((n_users, n_items)) < prob
    for u in range(n_users):
        if mask[u].sum() < 3:
            mask[u, rng.choice(n_items, 3, replace=False)] = True
    u, i = np.nonzero(mask)
    raw = pu[u].dot(np.ones(3)) * 0 + (pu[u] * qi[i]).sum(1)
    ratings = np.clip(np.round(3 + raw + rng.normal(scale=0.3, size=len(u))), 1, 5)
    ts = rng.integers(1_000_000_000, 1_100_000_000, size=len(u))
    users = np.array([f"u{x}" for x in u])
    items = np.array([f"i{x}" for x in i])
    return Interactions.from_arrays(users, items, ratings if explicit else None, ts, explicit=explicit)


@pytest.fixture
def interactions() -> Interactions:
    return make_interactions()


@pytest.fixture
def implicit_interactions() -> Interactions:
    return make_interactions(explicit=False)


@pytest.fixture
def small_split(interactions: Interactions) -> Split:
    rng = np.random.default_rng(1)
    test_mask = rng.random(interactions.nnz) < 0.2
    return Split(train=interactions.select(~test_mask), test=interactions.select(test_mask), name="small")
