"""Declared ranges are safe: every registered model trains on small data at the edges of each declared parameter
range without diverging or collapsing.

One parameter at a time, from the model's fast recipe (``tests/models/recipes.py``): each numeric parameter at the
ends of its declared :class:`~fusionrec.models._params.Interval` (a closed end itself; an open end 1% of the way
in; an open-ended range at 10x the default), each :class:`~fusionrec.models._params.Options` value and each bool.
A value fails when the fit raises (other than a ``ConfigError`` naming a rule between parameters), when a score is
not finite, or when the model collapses: its scores are constant, or every user gets the same top-10 although the
recipe's fit personalises.  Fix the model, or narrow the declaration.

The cases whose fit is expensive (torch models, long training) are marked ``slow``.
"""

from __future__ import annotations

import inspect
import math
import warnings
from typing import Any

import numpy as np
import pytest

from fusionrec.errors import ConfigError
from fusionrec.models._params import Interval, Options
from fusionrec.models.registry import get_model_class

from . import recipes

pytest.importorskip("torch")

#: parameters whose range is about resources, identity or the execution backend, not training: not swept
#: (FedMF's engine="flower" runs the same rounds as "inprocess", which test_federated checks)
NOT_SWEPT = {"seed", "threads", "device", "max_memory_gb", "batch_size", "valid_k", "patience", "engine"}
#: minimum support / neighbour counts: a large value turns the neighbourhood off by design on data this small
DATA_BOUND = {"min_k", "min_support"}
#: regularisation weights on the whole log (not per rating): their large edge shrinks every factor on a 61-user
#: log by design, so it is checked on ml-100k instead (test_log_weights_hold_their_upper_edge_on_ml100k)
LOG_WEIGHTS = {("ALS", "reg"): 30.0, ("PMF", "reg_user"): 20.0, ("PMF", "reg_item"): 20.0}
#: parameters whose large edge is more work (10x is capped so that the sweep stays small)
WORK = {"epochs", "rounds", "local_epochs", "n_burn_in", "max_kept_samples", "cg_steps", "max_sampled"}
#: size-like parameters whose large edge is capped too
SIZE = {
    "n_factors",
    "hidden",
    "content_factors",
    "text_vocab",
    "text_len",
    "max_len",
    "channels",
    "k",
    "knn_k",
    "image_size",
}
#: models whose fits take seconds: their sweeps are slow
SLOW_MODELS = {
    "DeepFusion",
    "FineTunedTwoTower",
    "GraphFusion",
    "SocialLightGCN",
    "SASRec",
    "GRU4Rec",
    "CNNLSTM",
    "DPMF",
    "BayesianFM",
    "WeightedBlend",
    "Stacking",
    "ReciprocalRankFusion",
    "Switching",
    "FedMF",
}
TOP = 10


def _default(cls: type, name: str) -> Any:
    return inspect.signature(cls.__init__).parameters[name].default


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _interval_edges(c: Interval, default: Any, name: str, reference: float | None) -> list[float]:
    """The ends of ``c`` to try; an open-ended range ends at 10x ``reference`` (the default, or for a ``None``
    per-parameter override such as ``lr_bu`` the default of the general one), and is not swept without one."""
    lo, hi = c.low, c.high
    if lo is None and hi is None:
        return []  # any real number (an offset such as init_mean): no edge to try
    base = _number(default)
    low_edge = high_edge = None
    if lo is not None:
        if c.closed in ("both", "left"):
            low_edge = float(lo)
        else:
            inner = hi if hi is not None else (base if base is not None and base > lo else lo + 1.0)
            low_edge = lo + 0.01 * (inner - lo)
    if hi is not None:
        if c.closed in ("both", "right"):
            high_edge = float(hi)
        else:
            inner = lo if lo is not None else (base if base is not None and base < hi else hi - 1.0)
            high_edge = hi - 0.01 * (hi - inner)
    elif (
        reference is not None and reference > 0 and name not in DATA_BOUND
    ):  # open-ended: 10x the default (capped where it is only work)
        high_edge = 10 * reference
        if name in WORK:
            high_edge = min(high_edge, 40)
        elif name in SIZE:
            high_edge = min(high_edge, 32)
    edges: list[float] = []
    if low_edge is not None:
        edges.append(math.ceil(low_edge) if c.kind is int else low_edge)
    if high_edge is not None:
        edges.append(math.floor(high_edge) if c.kind is int else high_edge)
    return [e for e in edges if c.accepts(e)]


def _edges(cls: type, name: str) -> list[Any]:
    """The values of ``name`` to try: its declared range's edges, options and bools (module notes)."""
    default = _default(cls, name)
    reference = _number(default)
    general = name.split("_")[0]  # lr_bu -> lr, reg_pu -> reg
    if default is None and general in ("lr", "reg") and general in cls.param_names():  # type: ignore[attr-defined]
        reference = _number(_default(cls, general))
    out: list[Any] = []
    for c in cls.param_constraints()[name]:  # type: ignore[attr-defined]
        if isinstance(c, Interval):
            out += _interval_edges(c, default, name, reference)
        elif isinstance(c, Options):
            out += list(c.values)
        elif c is bool:
            out += [True, False]
    seen: list[Any] = []
    for v in out:
        if not any(type(v) is type(s) and v == s for s in seen):
            seen.append(v)
    return seen


def _cases() -> list[Any]:
    cases = []
    for name in recipes.registered():
        if name not in recipes.RECIPES:
            continue  # test_declaration fails it
        cls = get_model_class(name)
        base = recipes.recipe(name)
        for param in cls.param_names():
            if param in NOT_SWEPT or param not in cls.param_constraints():
                continue
            for value in _edges(cls, param):
                if param in base and type(base[param]) is type(value) and base[param] == value:
                    continue
                if LOG_WEIGHTS.get((name, param)) == value:
                    continue
                slow = name in SLOW_MODELS or (param in WORK and isinstance(value, int) and value > 10)
                marks = [pytest.mark.slow] if slow else []
                cases.append(pytest.param(name, param, value, marks=marks, id=f"{name}-{param}={value!r}"))
    return cases


def _personalises(scores: np.ndarray) -> bool:
    top = np.argsort(-scores, axis=1, kind="stable")[:, :TOP]
    return len({tuple(row) for row in top.tolist()}) > 1


@pytest.fixture(scope="module")
def baseline() -> dict[str, bool]:
    """Whether each model's recipe fit personalises (a model that never does cannot collapse)."""
    return {}


def _scores(model: Any) -> np.ndarray:
    return np.asarray(model.score(np.arange(model.n_users_)), dtype=np.float64)


def _problem(name: str, param: str, value: Any, baseline: dict[str, bool], **work: Any) -> str | None:
    """What goes wrong when ``name`` is fitted at ``param=value`` (``None``: nothing)."""
    model = recipes.build(name, **{**work, param: value})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # overflow on the way to a non-finite score
            recipes.fit_model(model)
    except ConfigError as exc:
        others = [p for p in model.param_names() if p != param and p in str(exc)]
        if others:
            pytest.skip(f"a rule between parameters: {exc}")
        return f"fit refuses it: {exc}"
    except Exception as exc:
        return f"fit raised {exc!r}"
    scores = _scores(model)
    if not np.isfinite(scores).all():
        return "diverged: non-finite scores"
    if np.ptp(scores) <= 1e-9:
        return f"collapsed: every score is {scores.flat[0]}"
    if name not in baseline:
        baseline[name] = _personalises(_scores(recipes.fitted(name)))
    if baseline[name] and not _personalises(scores):
        return f"collapsed: every user gets the same top-{TOP}"
    return None


@pytest.mark.parametrize(("name", "param", "value"), _cases())
def test_a_declared_edge_neither_diverges_nor_collapses(
    name: str, param: str, value: Any, baseline: dict[str, bool]
) -> None:
    problem = _problem(name, param, value, baseline)
    if problem is None:
        return
    # confirmed with the default amount of training (the recipe trains briefly): a slow start is no collapse
    cls = get_model_class(name)
    work = {p: _default(cls, p) for p in recipes.recipe(name) if p in WORK and p != param}
    if work:
        problem = _problem(name, param, value, baseline, **work)
    assert problem is None, f"{name}({param}={value!r}) is inside the declared range but {problem}"


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.parametrize(("name", "param"), sorted(LOG_WEIGHTS))
def test_log_weights_hold_their_upper_edge_on_ml100k(name: str, param: str, data_dir: Any) -> None:
    """The declared upper edge of a whole-log regularisation weight still personalises on ml-100k (943 users)."""
    from fusionrec.data.datasets import load_dataset

    train = load_dataset("ml-100k", data_dir=data_dir).interactions
    model = get_model_class(name)(**{**recipes.recipe(name), param: LOG_WEIGHTS[(name, param)], "epochs": 5})
    model.fit(train)
    scores = np.asarray(model.score(np.arange(200)), np.float64)
    assert np.isfinite(scores).all() and np.ptp(scores) > 1e-6
    assert _personalises(scores), f"{name}({param}={LOG_WEIGHTS[(name, param)]}) ranks alike for every user"
