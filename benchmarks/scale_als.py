"""ALS at scale: fusionrec vs implicit on a synthetic power-law matrix (fit time, peak memory, full ranking).

Full run: 20M interactions, 200k users, 50k items; ``--quick``: 2M / 20k / 5k.  The matrix is
generated vectorised and seeded (user activity and item popularity both power laws, duplicates
dropped, all values 1).  One random interaction per user with at least two is held out as the test
set.  Both libraries fit the same model (factors=64, CG with 3 steps, the same confidence 10 on
observed cells: fusionrec alpha=9 since it uses c = 1 + alpha*r, implicit alpha=10 since it uses
c = alpha*r), in the same process, one after the other; then every test user is ranked over all
items (train masked) by fusionrec.evaluation.evaluate_ranking in bounded batches.

Run: python benchmarks/scale_als.py [--quick | --smoke] [--iterations 15] [--batch-size 256] [--no-eval-peer]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import scipy.sparse as sp
from _common import PeakRSS, Record, have_peer, library_version, parse_args, release_memory, timed, write_results

from fusionrec.data import IdMap, Interactions
from fusionrec.evaluation import evaluate_ranking
from fusionrec.models import Recommender
from fusionrec.models.mf.als import ALS

SEED = 0
FACTORS = 64
CONFIDENCE = 10.0
REG = 0.01


def power_law_csr(n_users: int, n_items: int, nnz: int, seed: int) -> sp.csr_matrix:
    """A binary CSR with exactly ``nnz`` distinct entries, vectorised.

    Users and items are drawn independently with P(user) ~ rank^-0.5 and P(item) ~ rank^-0.8
    (ranks shuffled over the indices); ``oversample x nnz`` draws are deduplicated and ``nnz`` of the
    distinct pairs kept at random (the oversampling grows until enough distinct pairs exist).
    """
    rng = np.random.default_rng(seed)
    cu = np.cumsum(rng.permutation(np.arange(1, n_users + 1, dtype=np.float64)) ** -0.5)
    ci = np.cumsum(rng.permutation(np.arange(1, n_items + 1, dtype=np.float64)) ** -0.8)
    oversample = 1.3
    while True:
        m = int(nnz * oversample)
        u = np.searchsorted(cu, rng.random(m) * cu[-1], side="right").astype(np.int64)
        i = np.searchsorted(ci, rng.random(m) * ci[-1], side="right")
        keys = np.unique(u * n_items + i)
        del u, i
        if len(keys) >= nnz:
            break
        oversample *= 1.3
    keys = keys[np.sort(rng.permutation(len(keys))[:nnz])]
    rows, cols = np.divmod(keys, n_items)
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_users), out=indptr[1:])
    if indptr[-1] < 2**31:
        indptr = indptr.astype(np.int32)
    m = sp.csr_matrix((np.ones(nnz, dtype=np.float32), cols.astype(np.int32), indptr), shape=(n_users, n_items))
    m.has_canonical_format = True
    return m


def leave_one_out(full: Interactions, seed: int) -> tuple[Interactions, Interactions]:
    """Hold out one random interaction of every user with at least two."""
    rng = np.random.default_rng(seed + 1)
    counts = full.user_counts()
    users = np.flatnonzero(counts >= 2)
    pos = full.matrix.indptr[users] + (rng.random(len(users)) * counts[users]).astype(np.int64)
    mask = np.zeros(full.nnz, dtype=bool)
    mask[pos] = True
    return full.select(~mask), full.select(mask)


class FactorAdapter(Recommender):
    """Scores ``U[users] @ V.T`` from a peer's factors, so the one evaluator ranks it too."""

    def __init__(self, U: np.ndarray | None = None, V: np.ndarray | None = None) -> None:
        self.U = U
        self.V = V

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        assert self.U is not None and self.V is not None
        V = self.V if items is None else self.V[items]
        return np.asarray(self.U[users] @ V.T, dtype=np.float32)


def extra(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=256, help="users ranked at once by the evaluator")
    parser.add_argument("--no-eval-peer", action="store_true", help="rank with fusionrec's factors only")
    parser.add_argument(
        "--eval-users", type=int, default=0, help="rank this many random test users (0 = all; time is linear in it)"
    )


def main() -> None:
    args = parse_args(__doc__ or "", extra)
    warnings.filterwarnings("ignore", module="implicit")
    if args.smoke:  # tiny, 2 iterations: seconds
        (n_users, n_items, nnz), args.iterations = (2_000, 500, 50_000), 2
    elif args.quick:
        n_users, n_items, nnz = 20_000, 5_000, 2_000_000
    else:
        n_users, n_items, nnz = 200_000, 50_000, 20_000_000
    t0 = time.perf_counter()
    matrix = power_law_csr(n_users, n_items, nnz, SEED)
    full = Interactions(matrix, IdMap(np.arange(n_users)), IdMap(np.arange(n_items)), explicit=False)
    train, test = leave_one_out(full, SEED)
    del full, matrix
    release_memory()
    gen_s = time.perf_counter() - t0
    dataset = f"synthetic power law {n_users // 1000}k x {n_items // 1000}k"
    split = f"{train.nnz / 1e6:.1f}M train, leave-one-out test"
    print(
        f"generated {train.nnz + test.nnz} interactions in {gen_s:.1f}s; train {train.nnz}, test {test.nnz}", flush=True
    )

    iters = args.iterations
    ALS(n_factors=4, epochs=1).fit(train.select(np.arange(min(train.nnz, 1000))))  # numba cache warm-up

    fr = ALS(n_factors=FACTORS, reg=REG, alpha=CONFIDENCE - 1.0, epochs=iters, solver="cg", seed=SEED)
    with PeakRSS() as fr_mem, timed() as fr_t:
        fr.fit(train)
    release_memory()
    imp_s, peer_ran = float("nan"), have_peer("implicit", args.smoke)
    if peer_ran:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        imp = AlternatingLeastSquares(
            factors=FACTORS, regularization=REG, alpha=CONFIDENCE, iterations=iters, use_cg=True, random_state=SEED
        )
        with PeakRSS() as imp_mem, timed() as imp_t, threadpool_limits(1, "blas"):
            imp.fit(train.matrix, show_progress=False)
        release_memory()
        imp_s = imp_t["seconds"]
        print(
            f"fit  fusionrec {fr_t['seconds']:.1f}s peak +{fr_mem.delta_mb}MB | implicit {imp_s:.1f}s "
            f"peak +{imp_mem.delta_mb}MB | ratio fusionrec/implicit {fr_t['seconds'] / imp_s:.2f}",
            flush=True,
        )
    bound_mb = args.batch_size * n_items * 16 / 1e6  # evaluate_ranking's documented bound for float32 scores
    eval_users = np.unique(test.row_indices())
    n_test_users = len(eval_users)
    if 0 < args.eval_users < len(eval_users):
        eval_users = np.sort(np.random.default_rng(SEED + 2).choice(eval_users, args.eval_users, replace=False))
    runs: list[tuple[str, str, Recommender, float, float]] = [
        ("fusionrec", library_version("fusionrec"), fr, fr_t["seconds"], fr_mem.delta_mb)
    ]
    if peer_ran:
        peer = FactorAdapter(np.asarray(imp.user_factors), np.asarray(imp.item_factors))
        runs.append(("implicit", library_version("implicit"), peer, imp_s, imp_mem.delta_mb))
    records = []
    for lib, version, model, fit_s, fit_mb in runs:
        metrics: dict[str, float] = {
            "fit s/iter": fit_s / iters,
            "fit ratio vs implicit": fit_s / imp_s,
            "score bound MB": bound_mb,
        }
        eval_s = None
        if lib == "fusionrec" or not args.no_eval_peer:
            release_memory()
            with PeakRSS() as ev_mem, timed() as ev_t:
                res = evaluate_ranking(
                    model,
                    train,
                    test,
                    k=(10, 20),
                    metrics=("recall", "ndcg"),
                    users=eval_users,
                    batch_size=args.batch_size,
                )
            eval_s = ev_t["seconds"]
            metrics.update({k: res.metrics[k] for k in ("Recall@20", "NDCG@20", "NDCG@10")})
            metrics["eval peak MB"] = ev_mem.delta_mb
            print(
                f"eval {lib}: {res.info['n_users']} users in {eval_s:.1f}s, NDCG@20={res.metrics['NDCG@20']:.4f}, "
                f"peak +{ev_mem.delta_mb}MB (score bound {bound_mb:.0f}MB)",
                flush=True,
            )
        params = {
            "factors": FACTORS,
            "regularization": REG,
            "iterations": iters,
            "cg_steps": 3,
            "confidence": CONFIDENCE,
        }
        records.append(Record(lib, version, "ALS (cg)", dataset, split, params, metrics, fit_s, eval_s, fit_mb))
    write_results(
        "scale_als" + ("_quick" if args.quick else ""),
        records,
        metric_columns=[
            "Recall@20",
            "NDCG@20",
            "fit s/iter",
            "fit ratio vs implicit",
            "eval peak MB",
            "score bound MB",
        ],
        title="ALS at scale on a synthetic power-law matrix" + (" — quick" if args.quick else ""),
        command="python benchmarks/scale_als.py" + (" --quick" if args.quick else "") + f" --iterations {iters} "
        f"--batch-size {args.batch_size}"
        + (f" --eval-users {args.eval_users}" if args.eval_users else "")
        + (" --no-eval-peer" if args.no_eval_peer else ""),
        notes=(
            f"{train.nnz + test.nnz:,} interactions ({n_users:,} users x {n_items:,} items, generated in {gen_s:.0f}s), "
            f"one per user held out. Same model in both libraries: factors={FACTORS}, reg={REG}, CG (3 steps), "
            f"confidence {CONFIDENCE:g} on observed cells, {iters} iterations, fitted one after the other in one "
            "process; fusionrec with 2 numba threads, implicit with its 2 threads and BLAS at 1 thread. 'peak MB' = "
            "RSS growth during fit; 'eval peak MB' = RSS growth while ranking the test users over all items with "
            f"train masked (evaluate_ranking, batch_size={args.batch_size}); the documented bound is batch_size x "
            f"n_items x 16 bytes = {bound_mb:.0f} MB (the model's float32 scores, their masked copy and the int64 "
            "top-k partition), plus the model's own scoring temporaries. "
            f"'predict s' is that whole evaluation, over {len(eval_users):,} test users "
            f"({'all' if len(eval_users) == n_test_users else f'a seeded random subset of {n_test_users:,}'}"
            "; ranking time is linear in the number of users)."
        ),
    )


if __name__ == "__main__":
    main()
