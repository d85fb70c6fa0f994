"""Top-N on implicit feedback: fusionrec ALS, BPR, EASE and item kNN vs implicit and cornac.

Data: ml-latest-small.random811 and ml-100k.random811 (x_label 0 train, 1 valid, 2 test).  Every
rating, whatever its value, is an implicit 1 (the train part is binarised; every valid/test
interaction is relevant).  Each library's grid (same grid per family; cornac EASE additionally over
``posB`` True and False) is tuned on valid by NDCG@20 (models fitted on train, train masked; a value chosen at
a grid edge extends the grid, ``_common.tune``); the best setting is refitted on train only (not train+valid, for
every library) and tested with train and valid masked, all items ranked.  Every library is scored by the same
fusionrec.evaluation.evaluate_ranking through a small adapter.  Aligned settings: ALS confidence ``1 + alpha r``
on both sides (implicit is given that matrix with its alpha at 1); BM25 ``k1 = 1.2``, ``b = 0.75`` on both
sides.  ``--seed 2026`` is the committed split files; other seeds regenerate them (``_common.benchmark_split``).

Run: python benchmarks/topn_implicit.py [--data-dir ../shared/data] [--seed 2026] [--quick | --smoke]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import warnings
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import scipy.sparse as sp
from _common import (
    RESULTS_DIR,
    PeakRSS,
    Record,
    benchmark_split,
    have_peer,
    library_version,
    parse_args,
    release_memory,
    timed,
    tune,
    write_results,
)

from fusionrec.data import Interactions
from fusionrec.evaluation import evaluate_ranking
from fusionrec.models import Recommender
from fusionrec.models.mf.als import ALS
from fusionrec.models.mf.bpr import BPR

SPLITS = ["ml-latest-small.random811", "ml-100k.random811"]
METRICS = ["Recall@10", "NDCG@10", "Recall@20", "NDCG@20", "valid NDCG@20"]
SEED = 0
BM25_K1, BM25_B = 1.2, 0.75  # the same constants for fusionrec and implicit


def grid(**axes: list[Any]) -> list[dict[str, Any]]:
    keys = list(axes)
    return [dict(zip(keys, vals)) for vals in itertools.product(*axes.values())]


def grids(quick: bool, smoke: bool = False) -> dict[str, list[dict[str, Any]]]:
    """One grid per family, the same for every library of the family (names mapped per library)."""
    if smoke:  # one setting each, a few epochs: seconds in all
        return {
            "ALS": grid(n_factors=[8], reg=[1.0], alpha=[10.0], epochs=[2]),
            "BPR": grid(n_factors=[8], lr=[0.05], reg=[0.01], epochs=[2]),
            "EASE": grid(lam=[200.0]),
            "ItemKNN": grid(k=[50]),
        }
    if quick:
        return {
            "ALS": grid(n_factors=[32], reg=[1.0], alpha=[1.0, 10.0], epochs=[10]),
            "BPR": grid(n_factors=[32], lr=[0.05], reg=[0.001, 0.01], epochs=[30]),
            "EASE": grid(lam=[200.0, 1000.0]),
            "ItemKNN": grid(k=[50, 200]),
        }
    return {
        "ALS": grid(n_factors=[32, 64], reg=[0.1, 1.0, 10.0], alpha=[1.0, 10.0], epochs=[15]),
        "BPR": grid(n_factors=[32, 64], lr=[0.01, 0.05, 0.1], reg=[0.001, 0.01], epochs=[100]),
        # cornac EASE only: posB True / False x the EASE grid (the better on valid is reported)
        "EASE": grid(lam=[100.0, 300.0, 1000.0, 3000.0]),
        "ItemKNN": grid(k=[20, 50, 100, 200]),
    }


class ScoreAdapter(Recommender):
    """Wraps a peer's scoring function ``users -> float [U, n_items]`` so the one evaluator scores it."""

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray] | None = None, n_items: int = 0) -> None:
        self.fn = fn
        self.n_items = n_items

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        assert self.fn is not None
        s = np.asarray(self.fn(np.asarray(users, dtype=np.int64)), dtype=np.float32)
        return s if items is None else s[:, items]


def _dense(x: Any) -> np.ndarray:
    return np.asarray(x.toarray() if sp.issparse(x) else x)


# ---------------------------------------------------------------------------------------- builders
# each builder: (params, train Interactions) -> fitted object exposing .score(users)


def fusionrec_als(p: dict[str, Any], train: Interactions) -> Recommender:
    return ALS(seed=SEED, **p).fit(train)


def fusionrec_bpr(p: dict[str, Any], train: Interactions, hogwild: bool = False) -> Recommender:
    return BPR(seed=SEED, hogwild=hogwild, **p).fit(train)


def implicit_als(p: dict[str, Any], train: Interactions) -> Recommender:
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    from fusionrec.models.mf.als import confidence_matrix

    m = AlternatingLeastSquares(
        factors=p["n_factors"],
        regularization=p["reg"],
        alpha=1.0,  # implicit's confidence is alpha * stored value: it gets fusionrec's 1 + alpha * r below
        iterations=p["epochs"],
        use_cg=True,
        random_state=SEED,
    )
    with threadpool_limits(1, "blas"):  # implicit's own advice: it runs its own threads
        m.fit(confidence_matrix(train.matrix, p["alpha"], True), show_progress=False)
    U, V = m.user_factors, m.item_factors
    return ScoreAdapter(lambda u: U[u] @ V.T, train.n_items)


def implicit_bpr(p: dict[str, Any], train: Interactions) -> Recommender:
    from implicit.cpu.bpr import BayesianPersonalizedRanking
    from threadpoolctl import threadpool_limits

    m = BayesianPersonalizedRanking(
        factors=p["n_factors"],
        learning_rate=p["lr"],
        regularization=p["reg"],
        iterations=p["epochs"],
        random_state=SEED,
    )
    with threadpool_limits(1, "blas"):
        m.fit(train.matrix, show_progress=False)
    U, V = m.user_factors, m.item_factors  # the last column holds the item bias (user side is 1)
    return ScoreAdapter(lambda u: U[u] @ V.T, train.n_items)


def _knn_adapter(m: Any, train: Interactions) -> Recommender:
    X, S = train.matrix, m.similarity.tocsr()
    return ScoreAdapter(lambda u: _dense(X[u] @ S), train.n_items)


def implicit_cosine(p: dict[str, Any], train: Interactions) -> Recommender:
    from implicit.nearest_neighbours import CosineRecommender

    m = CosineRecommender(K=p["k"])
    m.fit(train.matrix, show_progress=False)
    return _knn_adapter(m, train)


def implicit_bm25(p: dict[str, Any], train: Interactions) -> Recommender:
    from implicit.nearest_neighbours import BM25Recommender

    m = BM25Recommender(K=p["k"], K1=BM25_K1, B=BM25_B)
    m.fit(train.matrix, show_progress=False)
    return _knn_adapter(m, train)


def cornac_ease(p: dict[str, Any], train: Interactions) -> Recommender:
    from cornac.data import Dataset
    from cornac.models import EASE

    # global maps pre-filled with our indices, so cornac's indices are ours
    uid = OrderedDict((u, u) for u in range(train.n_users))
    iid = OrderedDict((i, i) for i in range(train.n_items))
    rows = train.row_indices()
    data = list(zip(rows.tolist(), train.matrix.indices.tolist(), train.matrix.data.tolist()))
    ds = Dataset.build(data, global_uid_map=uid, global_iid_map=iid, seed=SEED)
    m = EASE(lamb=p["lam"], posB=p.get("posB", True), verbose=False, seed=SEED)
    m.fit(ds)
    X, B = ds.matrix, m.B
    return ScoreAdapter(lambda u: _dense(X[u] @ B), train.n_items)


def fusionrec_ease(p: dict[str, Any], train: Interactions) -> Recommender:
    from fusionrec.models.linear import EASE

    return EASE(reg=p["lam"]).fit(train)


def fusionrec_itemknn(p: dict[str, Any], train: Interactions) -> Recommender:
    from fusionrec.models.knn import ItemKNN

    return ItemKNN(k=p["k"], similarity="cosine", implicit=True).fit(train)


def fusionrec_itemknn_bm25(p: dict[str, Any], train: Interactions) -> Recommender:
    # similarity="dot" on BM25-weighted rows is implicit's BM25Recommender
    from fusionrec.models.knn import ItemKNN

    return ItemKNN(k=p["k"], similarity="dot", weighting="bm25", bm25_k1=BM25_K1, bm25_b=BM25_B, implicit=True).fit(
        train
    )


# ---------------------------------------------------------------------------------------- run
def tune_on_valid(
    build: Callable[..., Recommender], space: list[dict[str, Any]], train: Interactions, valid: Interactions
) -> tuple[dict[str, Any], float, list[str]]:
    def score(p: dict[str, Any]) -> float:
        return evaluate_ranking(build(p, train), train, valid, k=20, metrics=("ndcg",)).metrics["NDCG@20"]

    return tune(space, score, log=lambda _: None)


def _extra(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--republish", action="store_true", help="rewrite the RESULTS.md section from the stored JSON (no run)"
    )


def main() -> None:
    args = parse_args(__doc__ or "", _extra)
    warnings.filterwarnings("ignore", module="implicit")  # BLAS-thread advice and CSR-conversion notices
    spaces = grids(args.quick, args.smoke)
    notes: list[str] = []
    if args.republish:
        name = "topn_implicit" + ("_quick" if args.quick else "")
        stored = json.loads((RESULTS_DIR / f"{name}.json").read_text())["records"]
        publish([Record(**r) for r in stored], args.quick, spaces, notes)
        return
    fr_version = library_version("fusionrec")
    versions = {"implicit": library_version("implicit"), "cornac": library_version("cornac")}
    # (library, model label, family, builder)
    entries: list[tuple[str, str, str, Callable[..., Recommender]]] = [
        ("fusionrec", "ALS (cg)", "ALS", fusionrec_als),
        ("implicit", "AlternatingLeastSquares (cg)", "ALS", implicit_als),
        ("fusionrec", "BPR", "BPR", fusionrec_bpr),
        ("implicit", "BayesianPersonalizedRanking", "BPR", implicit_bpr),
    ]
    entries += [
        ("fusionrec", "EASE", "EASE", fusionrec_ease),
        ("cornac", "EASE", "EASE", cornac_ease),
        ("fusionrec", "ItemKNN (cosine)", "ItemKNN", fusionrec_itemknn),
        ("implicit", "CosineRecommender", "ItemKNN", implicit_cosine),
        ("fusionrec", "ItemKNN (bm25)", "ItemKNN", fusionrec_itemknn_bm25),
        ("implicit", "BM25Recommender", "ItemKNN", implicit_bm25),
    ]
    entries = [e for e in entries if e[0] == "fusionrec" or have_peer(e[0], args.smoke)]
    records: list[Record] = []
    for split_name, seed in itertools.product(SPLITS, args.seeds):
        split = benchmark_split(split_name, args.data_dir, seed, smoke=args.smoke)
        train = split.train.binarize()
        valid, test = split.valid.binarize(), split.test.binarize()
        dataset = split_name.split(".")[0] if args.data_dir else "synthetic"
        # warm the numba caches outside the timed runs
        ALS(n_factors=4, epochs=1).fit(train)
        BPR(n_factors=4, epochs=1).fit(train)
        BPR(n_factors=4, epochs=1, hogwild=True).fit(train)
        for lib, label, family, build in entries:
            space = spaces[family]
            if lib == "cornac" and family == "EASE":
                space = [{**p, "posB": b} for b in (True, False) for p in space]
            best, valid_ndcg, ext = tune_on_valid(build, space, train, valid)
            notes += [f"{split_name} seed {seed} {lib} {label}: {n}" for n in ext]
            runs = [(label, build)]
            if lib == "fusionrec" and family == "BPR":
                runs.append(("BPR (hogwild, 2 threads)", lambda p, t: fusionrec_bpr(p, t, hogwild=True)))
            for run_label, run_build in runs:
                release_memory()
                with PeakRSS() as mem:
                    with timed() as t_fit:
                        model = run_build(best, train)
                    with timed() as t_pred:
                        res = evaluate_ranking(
                            model, train, test, k=(10, 20), metrics=("recall", "ndcg"), exclude=[train, valid]
                        )
                metrics = {k: v for k, v in res.metrics.items() if k in METRICS}
                metrics["valid NDCG@20"] = valid_ndcg
                version = fr_version if lib == "fusionrec" else versions[lib]
                records.append(
                    Record(
                        lib,
                        version,
                        run_label,
                        dataset,
                        f"{split_name} seed {seed}",
                        dict(best),
                        metrics,
                        t_fit["seconds"],
                        t_pred["seconds"],
                        mem.delta_mb,
                    )
                )
                print(
                    f"{split_name:28s} {lib:9s} {run_label:30s} NDCG@20={metrics['NDCG@20']:.4f} "
                    f"valid={valid_ndcg:.4f} fit={t_fit['seconds']:.2f}s eval={t_pred['seconds']:.2f}s "
                    f"peak={mem.delta_mb}MB best={best}",
                    flush=True,
                )
    publish(records, args.quick, spaces, notes, args.seed)


def publish(
    records: list[Record], quick: bool, spaces: dict[str, list[dict[str, Any]]], notes: list[str], seed: str = "2026"
) -> None:
    """Write the JSON records and this benchmark's RESULTS.md section."""
    grid_lines = [
        f"{fam} ({len(space)}): " + " x ".join(f"{k} {sorted({p[k] for p in space})}" for k in space[0])
        for fam, space in spaces.items()
    ]
    write_results(
        "topn_implicit" + ("_quick" if quick else ""),
        records,
        metric_columns=METRICS,
        title="Top-N on implicit feedback (ALS, BPR, EASE, item kNN)" + (" — quick grid" if quick else ""),
        command=f"python benchmarks/topn_implicit.py --data-dir ../shared/data --seed {seed}"
        + (" --quick" if quick else ""),
        notes=(
            "Every rating is an implicit 1 (train binarised; every valid/test interaction relevant). "
            "Each library's grid (same size within a family) was tuned on valid by NDCG@20 (fit on train, train "
            "masked); the best setting was refitted on train only (not train+valid, for every library) and tested "
            "ranking all items with train and valid masked, by the same fusionrec evaluate_ranking for every "
            "library (peers wrapped in a score adapter). Confidence c = 1 + alpha*r on both sides (implicit's own is "
            "alpha*r: it is given the matrix 1 + alpha*r with alpha 1); BM25 k1 = 1.2 and b = 0.75 on both sides; "
            "cornac EASE tuned over posB True and False as well (the better on valid reported). A value chosen at a "
            "grid edge extends the grid (listed below). implicit fits with BLAS at 1 thread (its advice) "
            "and its own 2 threads; fusionrec ALS uses 2 numba threads; fusionrec BPR is single-threaded and "
            "deterministic by default (the hogwild row uses 2 threads, like implicit's BPR). 'fit s' is the refit, "
            "'predict s' the whole test evaluation, 'peak MB' the RSS growth over fit+evaluation (0 means the "
            "allocator reused memory the process already held). "
            "Grids: " + "; ".join(grid_lines) + ". " + " ".join(notes)
        ),
    )


if __name__ == "__main__":
    main()
