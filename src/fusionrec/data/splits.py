"""Splitting strategies: random, per-user ratio, leave-last-out, temporal, k-fold, cold items / users.

Every function takes :class:`~fusionrec.data.Interactions` (or a :class:`~fusionrec.data.Dataset`, whose
interactions are used) and returns :class:`~fusionrec.data.Split` objects whose parts share the id maps of
the input, so the union of the parts is exactly the input.  Randomised strategies are seeded and
vectorised: ranks within a user are computed with one ``lexsort`` over all entries, never with a Python
loop over users.

Rounding of counts is *half up* (``floor(x + 0.5)``), so ``0.5`` rounds to ``1``.

:func:`make_split` dispatches by name for configuration files::

    make_split(x, "per_user", ratios=[0.8, 0.1, 0.1], seed=0)
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fusionrec.data.interactions import Interactions
from fusionrec.data.split import Split
from fusionrec.errors import ConfigError, DataError, EmptyDataError, MissingColumnError

if TYPE_CHECKING:
    import pandas as pd

    from fusionrec.data.dataset import Dataset

__all__ = [
    "STRATEGIES",
    "cold_items_split",
    "cold_users_split",
    "kfold",
    "leave_last_out",
    "make_split",
    "per_user_counts",
    "per_user_split",
    "predefined_split",
    "random_split",
    "temporal_split",
]

TRAIN, VALID, TEST = 0, 1, 2
_EPS = 1e-9


# ---------------------------------------------------------------------- private helpers
def _interactions(x: Interactions | Dataset) -> Interactions:
    if isinstance(x, Interactions):
        if x.nnz == 0:
            raise EmptyDataError("cannot split interactions that hold no entries")
        return x
    inner = getattr(x, "interactions", None)
    if isinstance(inner, Interactions):
        return _interactions(inner)
    raise DataError(f"expected Interactions or a Dataset to split, got {type(x).__name__}")


def _round_half_up(values: Any) -> np.ndarray:
    return np.floor(np.asarray(values, dtype=np.float64) + 0.5 + _EPS).astype(np.int64)


def _fraction(name: str, value: Any, *, allow_zero: bool) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number in (0, 1), got {value!r}") from None
    low_ok = f >= 0.0 if allow_zero else f > 0.0
    if not (low_ok and f < 1.0):
        interval = "[0, 1)" if allow_zero else "(0, 1)"
        raise ConfigError(f"{name} must lie in {interval}, got {value!r}")
    return f


def _check_sum(test: float, valid: float) -> None:
    if test + valid >= 1.0 - _EPS:
        raise ConfigError(f"test ({test}) + valid ({valid}) must leave something for training (sum < 1)")


def _seed(seed: Any) -> np.random.Generator:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ConfigError(f"seed must be an integer, got {seed!r}")
    return np.random.default_rng(int(seed))


def _rank_in_user(x: Interactions, order: np.ndarray) -> np.ndarray:
    """Rank ``0..n_u-1`` of every entry within its user, given ``order`` sorted by user first."""
    rows = x.row_indices()
    rank = np.empty(x.nnz, dtype=np.int64)
    rank[order] = np.arange(x.nnz, dtype=np.int64) - x.matrix.indptr[rows[order]]
    return rank


def _time_order_in_user(x: Interactions) -> np.ndarray:
    """Entries sorted by user, then timestamp, then item index (deterministic tie-break)."""
    if x.timestamps is None:
        raise MissingColumnError(
            "this split orders interactions by time but they have no timestamps; "
            "build them with a timestamp column, or use a random strategy (random, per_user)"
        )
    return np.lexsort((x.matrix.indices, x.timestamps, x.row_indices()))


def _build(
    x: Interactions,
    labels: np.ndarray,
    *,
    name: str,
    with_valid: bool,
    cold: str | None = None,
    meta: dict[str, Any] | None = None,
) -> Split:
    n_test = int((labels == TEST).sum())
    n_train = int((labels == TRAIN).sum())
    if n_test == 0:
        raise DataError(f"split {name!r} left no test interactions; the data are too small for these parameters")
    if n_train == 0:
        raise DataError(f"split {name!r} left no training interactions; lower the test / valid shares")
    valid = x.select(labels == VALID) if with_valid else None
    return Split(
        train=x.select(labels == TRAIN),
        test=x.select(labels == TEST),
        valid=valid,
        name=name,
        cold=cold,
        meta=dict(meta or {}),
    )


def _global_counts(n: int, test: float, valid: float) -> tuple[int, int]:
    """Sizes of the test and valid parts of ``n`` entries: rounded half up, at least one when asked."""
    n_test = max(1, int(_round_half_up(test * n)))
    n_valid = max(1, int(_round_half_up(valid * n))) if valid > 0 else 0
    if n_test + n_valid >= n:
        raise DataError(f"{n} entries are too few for test={test} and valid={valid} with at least one training entry")
    return n_test, n_valid


# ---------------------------------------------------------------------- strategies
def random_split(x: Interactions | Dataset, test: float = 0.2, valid: float = 0.0, seed: int = 0) -> Split:
    """Hold out a uniformly random share of all interactions.

    ``round(test * nnz)`` entries (half up, at least one) go to test and ``round(valid * nnz)`` to
    validation (at least one when ``valid > 0``); users and items may end up cold by chance.
    """
    x = _interactions(x)
    test = _fraction("test", test, allow_zero=False)
    valid = _fraction("valid", valid, allow_zero=True)
    _check_sum(test, valid)
    rng = _seed(seed)
    n_test, n_valid = _global_counts(x.nnz, test, valid)
    perm = rng.permutation(x.nnz)
    labels = np.full(x.nnz, TRAIN, dtype=np.int8)
    labels[perm[:n_test]] = TEST
    labels[perm[n_test : n_test + n_valid]] = VALID
    return _build(
        x,
        labels,
        name=f"random(test={test:g}, valid={valid:g}, seed={seed})",
        with_valid=valid > 0,
        meta={"strategy": "random", "test": test, "valid": valid, "seed": int(seed)},
    )


def _parse_ratios(ratios: Any) -> tuple[float, float, float]:
    try:
        r = [float(v) for v in ratios]
    except (TypeError, ValueError):
        raise ConfigError(f"ratios must be numbers (train, [valid,] test), got {ratios!r}") from None
    if len(r) == 2:
        r = [r[0], 0.0, r[1]]
    if len(r) != 3:
        raise ConfigError(f"ratios must have 2 (train, test) or 3 (train, valid, test) values, got {ratios!r}")
    if any(v < 0 or not np.isfinite(v) for v in r) or r[0] <= 0 or r[2] <= 0:
        raise ConfigError(f"ratios must be non-negative with train > 0 and test > 0, got {ratios!r}")
    if abs(sum(r) - 1.0) > 1e-6:
        raise ConfigError(f"ratios must sum to 1, got {ratios!r} (sum {sum(r):g})")
    return r[0], r[1], r[2]


def per_user_counts(n: np.ndarray, valid: float, test: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-user numbers of test and valid entries of :func:`per_user_split` (vectorised).

    For a user with ``n`` interactions: ``t = round(n * test)`` and ``v = round(n * valid)`` (half up);
    ``t >= 1`` when ``n >= 2`` and ``v >= 1`` when ``valid > 0`` and ``n >= 3``; then ``v`` and after it
    ``t`` shrink until at least one interaction is left for training.  So 1 -> 1/0/0 (train/valid/test),
    2 -> 1/0/1, 3 -> 1/1/1, 5 -> 3/1/1, 10 -> 8/1/1, 20 -> 16/2/2 with ratios (0.8, 0.1, 0.1).
    """
    n = np.asarray(n, dtype=np.int64)
    t = _round_half_up(n * test)
    t = np.where((n >= 2) & (t < 1), 1, t)
    v = _round_half_up(n * valid) if valid > 0 else np.zeros_like(n)
    if valid > 0:
        v = np.where((n >= 3) & (v < 1), 1, v)
    excess = np.maximum(t + v - (n - 1), 0)
    cut_v = np.minimum(v, excess)
    v = v - cut_v
    t = np.maximum(t - (excess - cut_v), 0)
    return t, v


def per_user_split(
    x: Interactions | Dataset,
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    by_time: bool = False,
) -> Split:
    """Split every user's interactions by ratio (the MMRec 8:1:1 per-user rule).

    Parameters
    ----------
    ratios
        ``(train, valid, test)`` or ``(train, test)``, summing to 1.
    seed
        Seeds the random order of each user's interactions (ignored when ``by_time``).
    by_time
        Put each user's latest interactions in test and the ones just before in validation
        (ties broken by item index); needs timestamps.

    Notes
    -----
    Counts per user are rounded half up with guarantees (see :func:`per_user_counts`): every user
    keeps at least one training interaction, every user with >= 2 interactions gets a test one and,
    when ``valid > 0``, every user with >= 3 a validation one.  Small users therefore hold out a larger
    share than the ratios say (3 interactions -> 1/1/1).
    """
    x = _interactions(x)
    r_train, r_valid, r_test = _parse_ratios(ratios)
    if by_time:
        order = _time_order_in_user(x)
    else:
        rng = _seed(seed)
        order = np.lexsort((rng.random(x.nnz), x.row_indices()))
    rank = _rank_in_user(x, order)
    counts = x.user_counts()
    t_u, v_u = per_user_counts(counts, r_valid, r_test)
    rows = x.row_indices()
    from_end = counts[rows] - 1 - rank  # 0 = the last entry of the user
    labels = np.full(x.nnz, TRAIN, dtype=np.int8)
    labels[from_end < t_u[rows] + v_u[rows]] = VALID
    labels[from_end < t_u[rows]] = TEST
    mode = "by_time" if by_time else f"seed={seed}"
    return _build(
        x,
        labels,
        name=f"per_user({r_train:g}:{r_valid:g}:{r_test:g}, {mode})",
        with_valid=r_valid > 0,
        meta={"strategy": "per_user", "ratios": (r_train, r_valid, r_test), "seed": int(seed), "by_time": by_time},
    )


def leave_last_out(x: Interactions | Dataset, n: int = 1, valid: bool = True) -> Split:
    """Hold out each user's ``n`` latest interactions for test (and the ``n`` before them for validation).

    Time ties are broken by item index (the larger index counts as later), so the result is
    deterministic.  Users keep at least one training interaction: a user with ``c`` interactions
    gives ``min(n, c - 1)`` to test and then ``min(n, c - 1 - test)`` to validation.  Needs timestamps
    (:class:`~fusionrec.errors.MissingColumnError` otherwise).
    """
    x = _interactions(x)
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ConfigError(f"n must be a positive integer (interactions held out per user), got {n!r}")
    order = _time_order_in_user(x)
    rank = _rank_in_user(x, order)
    counts = x.user_counts()
    t_u = np.minimum(n, np.maximum(counts - 1, 0))
    v_u = np.minimum(n, np.maximum(counts - 1 - t_u, 0)) if valid else np.zeros_like(t_u)
    rows = x.row_indices()
    from_end = counts[rows] - 1 - rank
    labels = np.full(x.nnz, TRAIN, dtype=np.int8)
    labels[from_end < t_u[rows] + v_u[rows]] = VALID
    labels[from_end < t_u[rows]] = TEST
    return _build(
        x,
        labels,
        name=f"leave_last_out(n={n}{', valid' if valid else ''})",
        with_valid=bool(valid),
        meta={"strategy": "leave_last", "n": int(n), "valid": bool(valid)},
    )


def temporal_split(x: Interactions | Dataset, test: float = 0.2, valid: float = 0.0) -> Split:
    """Global time cut: the latest ``test`` share of all interactions is test, the share before it valid.

    Entries are ordered by (timestamp, user, item), so every test timestamp is >= every validation
    timestamp >= every training timestamp.  ``split.meta["test_start"]`` (``"valid_start"``) holds the
    first held-out timestamp.  Needs timestamps.
    """
    x = _interactions(x)
    test = _fraction("test", test, allow_zero=False)
    valid = _fraction("valid", valid, allow_zero=True)
    _check_sum(test, valid)
    if x.timestamps is None:
        _time_order_in_user(x)  # raises the typed error
    ts = np.asarray(x.timestamps)
    order = np.lexsort((x.matrix.indices, x.row_indices(), ts))
    n_test, n_valid = _global_counts(x.nnz, test, valid)
    labels = np.full(x.nnz, TRAIN, dtype=np.int8)
    test_pos = order[x.nnz - n_test :]
    valid_pos = order[x.nnz - n_test - n_valid : x.nnz - n_test]
    labels[test_pos] = TEST
    labels[valid_pos] = VALID
    meta: dict[str, Any] = {"strategy": "temporal", "test": test, "valid": valid, "test_start": int(ts[test_pos[0]])}
    if n_valid:
        meta["valid_start"] = int(ts[valid_pos[0]])
    return _build(x, labels, name=f"temporal(test={test:g}, valid={valid:g})", with_valid=valid > 0, meta=meta)


def kfold(x: Interactions | Dataset, k: int = 5, seed: int = 0) -> list[Split]:
    """``k`` random folds of the interactions; fold ``f``'s test part is the ``f``-th block.

    The test parts partition the input (sizes differ by at most one); each train part is the rest.
    """
    x = _interactions(x)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 2:
        raise ConfigError(f"k must be an integer >= 2, got {k!r}")
    if k > x.nnz:
        raise DataError(f"cannot make {k} folds of {x.nnz} interactions; lower k")
    rng = _seed(seed)
    fold = np.empty(x.nnz, dtype=np.int64)
    fold[rng.permutation(x.nnz)] = np.arange(x.nnz) % k
    out = []
    for f in range(k):
        labels = np.where(fold == f, TEST, TRAIN).astype(np.int8)
        out.append(
            _build(
                x,
                labels,
                name=f"kfold({f + 1}/{k}, seed={seed})",
                with_valid=False,
                meta={"strategy": "kfold", "k": int(k), "fold": f, "seed": int(seed)},
            )
        )
    return out


def _cold_split(x: Interactions, axis: str, test: float, valid: float, seed: int) -> Split:
    test = _fraction("test", test, allow_zero=False)
    valid = _fraction("valid", valid, allow_zero=True)
    _check_sum(test, valid)
    rng = _seed(seed)
    counts = x.item_counts() if axis == "items" else x.user_counts()
    active = np.flatnonzero(counts > 0)
    n_test, n_valid = _global_counts(len(active), test, valid)
    chosen = active[rng.permutation(len(active))]
    group = np.full(len(counts), TRAIN, dtype=np.int8)
    test_ids = np.sort(chosen[:n_test])
    valid_ids = np.sort(chosen[n_test : n_test + n_valid])
    group[test_ids] = TEST
    group[valid_ids] = VALID
    keys = x.matrix.indices if axis == "items" else x.row_indices()
    what = axis[:-1]
    meta: dict[str, Any] = {
        "strategy": f"cold_{axis}",
        "test": test,
        "valid": valid,
        "seed": int(seed),
        f"test_{axis}": test_ids.astype(np.int64),
        f"valid_{axis}": valid_ids.astype(np.int64),
    }
    return _build(
        x,
        group[keys],
        name=f"cold_{axis}(test={test:g}, valid={valid:g}, seed={seed})",
        with_valid=valid > 0,
        cold=axis,
        meta={**meta, "note": f"every interaction of a test / valid {what} is held out; they have no train rows"},
    )


def cold_items_split(x: Interactions | Dataset, test: float = 0.2, valid: float = 0.1, seed: int = 0) -> Split:
    """Hold out whole items: test / valid items have no training interaction (``Split.cold == "items"``).

    ``test`` and ``valid`` are shares of the items that have at least one interaction (rounded half up,
    at least one each when positive).  The held-out item indices are in ``split.meta["test_items"]`` and
    ``split.meta["valid_items"]`` (sorted int64), to be used as ranking candidates.
    """
    return _cold_split(_interactions(x), "items", test, valid, seed)


def cold_users_split(x: Interactions | Dataset, test: float = 0.2, valid: float = 0.1, seed: int = 0) -> Split:
    """Hold out whole users: test / valid users have no training interaction (``Split.cold == "users"``).

    ``test`` and ``valid`` are shares of the users with at least one interaction; the held-out user
    indices are in ``split.meta["test_users"]`` and ``split.meta["valid_users"]``.
    """
    return _cold_split(_interactions(x), "users", test, valid, seed)


def predefined_split(frame_or_path: pd.DataFrame | str | os.PathLike[str], **kwargs: Any) -> Split:
    """A split given by a table or a file with an ``x_label`` column (0 train, 1 valid, 2 test).

    Delegates to :func:`fusionrec.data.io.split_from_frame` / :func:`~fusionrec.data.io.load_split_file`;
    keyword arguments go to them (``user_ids=``, ``item_ids=``, ``label=``, ...).
    """
    from fusionrec.data.io import load_split_file, split_from_frame

    if isinstance(frame_or_path, str | os.PathLike):
        return load_split_file(frame_or_path, **kwargs)
    if hasattr(frame_or_path, "columns"):
        return split_from_frame(frame_or_path, **kwargs)
    raise DataError(f"predefined_split needs a DataFrame or a path, got {type(frame_or_path).__name__}")


def _kfold_one(x: Interactions | Dataset, k: int = 5, seed: int = 0, fold: int = 0) -> Split:
    if isinstance(fold, bool) or not isinstance(fold, int | np.integer) or not 0 <= fold < int(k):
        raise ConfigError(f"fold must be an integer in [0, k) = [0, {k}), got {fold!r}")
    return kfold(x, k=k, seed=seed)[int(fold)]


#: strategy name -> function (``make_split`` adds the ``fold`` parameter to ``kfold``)
STRATEGIES: dict[str, Callable[..., Any]] = {
    "random": random_split,
    "per_user": per_user_split,
    "leave_last": leave_last_out,
    "temporal": temporal_split,
    "kfold": _kfold_one,
    "cold_items": cold_items_split,
    "cold_users": cold_users_split,
}
_ALIASES = {"leave_last_out": "leave_last", "loo": "leave_last", "ratio": "per_user", "time": "temporal"}


def make_split(x: Interactions | Dataset, strategy: str, **params: Any) -> Split:
    """Split by strategy name (for configuration files).

    ``strategy`` is one of ``random``, ``per_user``, ``leave_last``, ``temporal``, ``kfold`` (the fold
    ``fold=i``, default 0, of ``k``), ``cold_items``, ``cold_users``; ``params`` are the keyword
    arguments of the matching function.  Unknown names and bad parameters raise
    :class:`~fusionrec.errors.ConfigError`.
    """
    key = str(strategy).strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in STRATEGIES:
        raise ConfigError(f"unknown split strategy {strategy!r}; choose one of {sorted(STRATEGIES)}")
    fn = STRATEGIES[key]
    sig = inspect.signature(fn)
    accepted = [p for p in sig.parameters if p != "x"]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ConfigError(f"split strategy {key!r} does not take {unknown}; its parameters are {accepted}")
    if "ratios" in params and isinstance(params["ratios"], str):
        raise ConfigError(f"ratios must be a list of numbers such as [0.8, 0.1, 0.1], got {params['ratios']!r}")
    return fn(x, **params)  # type: ignore[no-any-return]
