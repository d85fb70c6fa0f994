"""benchmarks/sequential.py --equal: the summary of a head-to-head (issue 22) picks each library's rate from its
trials, averages the seeds at that rate, pairs users across libraries and reports the fit CPU ratio per seed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import numpy as np

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _load() -> Any:
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("bench_sequential", BENCH / "sequential.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _trial(lib: str, lr: float, seed: int, per_user: list[float], cpu: float, valid: float) -> dict[str, Any]:
    users = list(range(len(per_user)))
    test = {"NDCG@10": float(np.mean(per_user)), "HR@10": 0.5, "users": users, "per_user_NDCG@10": per_user}
    return {"lib": lib, "lr": lr, "seed": seed, "fit_cpu_s": cpu, "valid": {"NDCG@10": valid}, "test": test}


def test_summary_pairs_users_over_seeds_at_the_chosen_rate() -> None:
    seq = _load()
    from _common import mean_spread, paired

    trials = [
        _trial("fusionrec", 0.003, 0, [1.0, 0.0, 0.5, 0.5], 10.0, 0.2),
        _trial("recbole", 0.003, 0, [0.0, 0.0, 0.5, 0.0], 40.0, 0.1),
        _trial("fusionrec", 0.01, 0, [0.0, 0.0, 0.0, 0.0], 10.0, 0.05),  # not chosen: lower valid
        _trial("recbole", 0.01, 0, [0.0, 0.0, 0.0, 0.5], 50.0, 0.3),
        _trial("fusionrec", 0.003, 1, [0.0, 1.0, 0.5, 0.5], 12.0, 0.2),
        _trial("recbole", 0.01, 1, [0.0, 0.0, 0.0, 0.0], 48.0, 0.3),
    ]
    s = seq.summarize(trials, {"fusionrec": 0.003, "recbole": 0.01}, paired, mean_spread)
    assert s["fusionrec"]["seeds"] == [0, 1] and s["recbole"]["seeds"] == [0, 1]
    assert s["fusionrec"]["valid_by_lr"] == {"0.003": 0.2, "0.01": 0.05}
    assert np.isclose(s["fusionrec"]["test_NDCG@10_mean"], 0.5)
    # per user: ours (0.5, 0.5, 0.5, 0.5) seed means against RecBole's (0, 0, 0, 0.25)
    p = s["paired_ours_minus_recbole"]
    assert p["n"] == 4 and np.isclose(p["diff"], np.mean([0.5, 0.5, 0.5, 0.25]))
    assert s["fit_cpu_ratio_ours_over_recbole"] == [0.2, 0.25]
