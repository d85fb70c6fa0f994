"""Baselines (most popular, random, bias) on ml-latest-small.random811 and ml-100k.random811.

Full ranking over all items, training and validation items masked, every test interaction relevant.
Run: python benchmarks/baselines.py [--data-dir ../shared/data] [--seed 2026] [--smoke]
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PeakRSS, Record, benchmark_split, library_version, parse_args, timed, write_results

from fusionrec.evaluation import evaluate_ranking, evaluate_ratings
from fusionrec.models import make_model

SPLITS = ["ml-latest-small.random811", "ml-100k.random811"]
MODELS = [("MostPopular", {}), ("Random", {"seed": 0}), ("BiasBaseline", {"reg_user": 15.0, "reg_item": 10.0})]
METRICS = ["Recall@10", "NDCG@10", "Recall@20", "NDCG@20", "MAP@20", "MRR@20", "AUC", "Coverage@20", "RMSE"]


def main() -> None:
    args = parse_args(__doc__ or "")
    version = library_version("fusionrec")
    records = []
    for split_name, seed in itertools.product(SPLITS, args.seeds):
        split = benchmark_split(split_name, args.data_dir, seed, smoke=args.smoke)
        dataset = split_name.split(".")[0] if args.data_dir else "synthetic"
        for name, params in MODELS:
            with PeakRSS() as mem:
                model = make_model(name, **params)
                with timed() as t_fit:
                    model.fit(split.train)
                with timed() as t_pred:
                    res = evaluate_ranking(
                        model, split.train, split.test, k=(10, 20), exclude=[split.train, split.valid], compute_auc=True
                    )
                metrics = dict(res.metrics)
                if model.predicts_ratings:
                    metrics.update(evaluate_ratings(model, split.test))
            records.append(
                Record(
                    "fusionrec",
                    version,
                    name,
                    dataset,
                    f"{split_name} seed {seed}",
                    params,
                    metrics,
                    t_fit["seconds"],
                    t_pred["seconds"],
                    mem.delta_mb,
                )
            )
            print(
                f"{split_name:28s} {name:14s} NDCG@20={metrics['NDCG@20']:.4f} fit={t_fit['seconds']:.2f}s "
                f"eval={t_pred['seconds']:.2f}s"
            )
    write_results(
        "baselines",
        records,
        metric_columns=METRICS,
        title="Baselines on the random 8:1:1 splits",
        command=f"python benchmarks/baselines.py --data-dir ../shared/data --seed {args.seed}",
        notes="Full ranking of all items, train+valid masked, every test interaction relevant. "
        "'predict s' is the whole ranking evaluation (all test users, AUC included).",
    )


if __name__ == "__main__":
    main()
