"""Tune a fusionrec model and a peer with the same Optuna budget (benchmarks only).

:func:`tpe_tune` runs Optuna's TPE (the sampler :mod:`fusionrec.tuning` uses, same seed) over a search space in the
fusionrec format (``{"reg": ["float", 1.0, 1e4, "log"]}``, checked by :func:`fusionrec.tuning.parse_space`) for any
``build(params) -> fitted model`` -- a fusionrec model or a peer wrapped in a scoring adapter -- fitting on train and
scoring NDCG@K on valid (train masked) through the one evaluator.  Both sides of a comparison get the same space,
the same number of trials, the same sampler seed and no pruning (pruning only works for models with the epoch hook,
so it would give fusionrec's side a different budget).  :func:`test_scores` then scores the chosen model on test with
train and valid masked.

    als = tpe_tune("fusionrec ALS", lambda p: ALS(**p).fit(split.train), SPACE, split, n_trials=20)
    peer = tpe_tune("implicit ALS", lambda p: implicit_als(p, split.train), SPACE, split, n_trials=20)
    test_scores(als.model, split)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fusionrec.evaluation import evaluate_ranking
from fusionrec.tuning import parse_space

__all__ = ["TunedSide", "test_scores", "tpe_tune"]


@dataclass
class TunedSide:
    """One side of a tuned comparison: the best parameters on valid and the model refitted with them."""

    label: str
    best_params: dict[str, Any]
    best_valid: float
    trials: list[dict[str, Any]]
    seconds: float
    model: Any = field(repr=False, default=None)

    @property
    def n_failed(self) -> int:
        return sum(t["state"] == "FAIL" for t in self.trials)


def tpe_tune(
    label: str,
    build: Callable[[dict[str, Any]], Any],
    space: Mapping[str, Any],
    split: Any,
    *,
    n_trials: int,
    seed: int = 0,
    metric: str = "ndcg",
    k: int = 20,
    fixed: Mapping[str, Any] | None = None,
    timeout: float | None = None,
) -> TunedSide:
    """TPE over ``space`` for ``build`` (fit on ``split.train``), maximising ``metric@k`` on ``split.valid``.

    ``fixed`` parameters are passed to every trial.  The best configuration is refitted once (``.model``).
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dims = parse_space(label, space)
    fixed = dict(fixed or {})

    def valid_score(model: Any) -> float:
        res = evaluate_ranking(model, split.train, split.valid, k=(k,), metrics=(metric,), exclude=[split.train])
        return float(next(iter(res.metrics.values())))

    def objective(trial: Any) -> float:
        params = {**fixed, **{name: d.suggest(trial) for name, d in dims.items()}}
        return valid_score(build(params))

    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed), pruner=optuna.pruners.NopPruner()
    )
    t0 = time.perf_counter()
    study.optimize(objective, n_trials=n_trials, timeout=timeout, catch=(ValueError, RuntimeError))
    seconds = time.perf_counter() - t0
    trials = [
        {"number": t.number, "state": t.state.name, "value": t.value, "params": dict(t.params)}
        for t in study.get_trials(deepcopy=False)
    ]
    best = {**fixed, **study.best_trial.params}
    return TunedSide(label, best, float(study.best_value), trials, seconds, model=build(best))


def test_scores(
    model: Any, split: Any, ks: Sequence[int] = (10, 20), metrics: Sequence[str] = ("recall", "ndcg")
) -> dict[str, float]:
    """``model`` scored on test, train and valid masked, all items ranked (the benchmark convention)."""
    exclude = [split.train] + ([split.valid] if split.valid is not None else [])
    res = evaluate_ranking(model, split.train, split.test, k=tuple(ks), metrics=tuple(metrics), exclude=exclude)
    return {key: float(v) for key, v in res.metrics.items()}
