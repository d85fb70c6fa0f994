"""Social top-N on FilmTrust (issue 12): SocialBPR and SocialLightGCN vs the same models without links, and EASE.

Data: FilmTrust's ratings as implicit feedback (every rating is an interaction, whatever its value), split per
user 80/10/10 at random by the ``random811`` rule of ``../shared/data/README.md`` (``_common.random811``; seed 2026
unless ``--seed``, which takes several seeds, comma separated).  The trust links go to the social models as
``SideInfo.social``.

Models: EASE; BPR and SocialBPR (BPR plus SocialMF's trust pull, the same grid plus ``social_weight``); LightGCN
(``GraphFusion(modalities=[])``) and SocialLightGCN (LightGCN with the user-user trust block, the same grid plus
``social_weight``).  Every grid is tuned on valid NDCG@20 (fit on train, train masked; a numeric value chosen at
a grid edge extends the grid, ``_common.tune``), then the chosen setting is refitted on train and tested ranking
all items with train and valid masked (``fusionrec.evaluate_ranking``): NDCG@10, NDCG@20, Recall@20, and NDCG@20
of the users with fewer than 5 training interactions.  Each social model is compared with its link-free twin by
a paired t-test / Wilcoxon over the per-user test NDCG@20 (per seed and pooled over seeds).

Friends only (the cold-start protocol of a new user with links and no history): every test user who trusts at
least one user with training interactions is placed again as a new user from their links alone
(``fold_in_user([], friends=...)`` for the social models; the same rule, the trusted users' mean vector, computed
by hand for BPR / LightGCN) and ranks all items (their own training items masked) against their valid + test
items; MostPopular (training counts) ranks the same way.  The fit saw these users' training histories (the friends'
and items' vectors were fitted with them), for every row alike; no model is refitted without them.

Run: python benchmarks/social_topn.py [--data-dir ../shared/data] [--seed 2026,1,2] [--quick | --smoke]
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common
import numpy as np
from _common import (
    PeakRSS,
    Record,
    dataset_random811,
    library_version,
    mean_spread,
    paired,
    parse_args,
    tune,
    write_results,
)

from fusionrec.data import Interactions
from fusionrec.evaluation import evaluate_ranking
from fusionrec.models import Recommender, SideInfo

FEW = 5  #: users with fewer training interactions than this form the sparse bucket
SPARSE = f"NDCG@20 <{FEW}"
METRICS = ["NDCG@10", "NDCG@20", "Recall@20", SPARSE, "valid NDCG@20"]
#: (social model, its link-free twin)
PAIRS = [("SocialBPR", "BPR"), ("SocialLightGCN", "LightGCN")]


def grid(**axes: list[Any]) -> list[dict[str, Any]]:
    keys = list(axes)
    return [dict(zip(keys, vals, strict=True)) for vals in itertools.product(*axes.values())]


def spaces(quick: bool, smoke: bool = False) -> dict[str, list[dict[str, Any]]]:
    if smoke:  # one setting each, a few epochs: seconds in all
        bpr = grid(n_factors=[8], lr=[0.05], reg=[0.01], epochs=[2])
        gcn = grid(n_factors=[8], lr=[0.01], reg=[1e-4], layers=[2], epochs=[1])
        return {
            "EASE": grid(reg=[100.0]),
            "BPR": bpr,
            "SocialBPR": [{**p, "social_weight": 0.2} for p in bpr],
            "LightGCN": gcn,
            "SocialLightGCN": [{**p, "social_weight": 1.0} for p in gcn],
        }
    if quick:
        bpr = grid(n_factors=[32], lr=[0.05], reg=[0.001, 0.01], epochs=[20])
        gcn = grid(n_factors=[32], lr=[0.01], reg=[1e-4, 1e-3], layers=[2], epochs=[5])
        return {
            "EASE": grid(reg=[100.0, 300.0]),
            "BPR": bpr,
            "SocialBPR": [{**p, "social_weight": w} for p in bpr for w in (0.05, 0.2)],
            "LightGCN": gcn,
            "SocialLightGCN": [{**p, "social_weight": w} for p in gcn for w in (0.3, 1.0)],
        }
    bpr = grid(n_factors=[64], lr=[0.02, 0.05], reg=[0.001, 0.01], epochs=[60])
    # LightGCN fits take about a minute each on the 2 shared cores: 2 points (plus edge extensions)
    gcn = grid(n_factors=[64], lr=[0.01], reg=[1e-4, 1e-3], layers=[2], epochs=[30])
    return {
        "EASE": grid(reg=[30.0, 100.0, 300.0, 1000.0]),
        "BPR": bpr,
        "SocialBPR": [{**p, "social_weight": w} for p in bpr for w in (0.03, 0.1, 0.3)],
        "LightGCN": gcn,
        "SocialLightGCN": [{**p, "social_weight": w} for p in gcn for w in (0.3, 1.0, 3.0)],
    }


def builder(name: str) -> Callable[[dict[str, Any], Interactions, SideInfo], Recommender]:
    from fusionrec.models.graph import GraphFusion
    from fusionrec.models.linear import EASE
    from fusionrec.models.mf.bpr import BPR
    from fusionrec.models.social_graph import SocialBPR, SocialLightGCN

    def build(p: dict[str, Any], train: Interactions, side: SideInfo) -> Recommender:
        if name == "EASE":
            return EASE(**p).fit(train)
        if name == "BPR":
            return BPR(**p, seed=0).fit(train)
        if name == "SocialBPR":
            return SocialBPR(**p, seed=0).fit(train, side)
        if name == "LightGCN":
            return GraphFusion(modalities=[], **p, seed=0).fit(train)
        return SocialLightGCN(**p, seed=0).fit(train, side)

    return build


def run_seed(args: Any, seed: int) -> dict[str, dict[str, Any]]:
    ds, split = dataset_random811("filmtrust", args.data_dir, seed, smoke=args.smoke)
    train, valid, test = split.train.binarize(), split.valid.binarize(), split.test.binarize()
    side = SideInfo(social=ds.social)
    print(f"seed {seed}: train {train.nnz}, valid {valid.nnz}, test {test.nnz}, links {ds.social.nnz}", flush=True)
    out: dict[str, dict[str, Any]] = {}
    for name, space in spaces(args.quick, args.smoke).items():
        build = builder(name)

        def valid_ndcg(p: dict[str, Any], build: Callable[..., Recommender] = build) -> float:
            model = build(p, train, side)
            return float(evaluate_ranking(model, train, valid, k=20, metrics=("ndcg",)).metrics["NDCG@20"])

        print(f" tuning {name}", flush=True)
        best, best_valid, notes = tune(space, valid_ndcg)
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            model = build(best, train, side)
            fit_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            res = evaluate_ranking(model, train, test, k=(10, 20), metrics=("recall", "ndcg"), exclude=[train, valid])
            pred_s = time.perf_counter() - t0
        per_user = res.per_user["NDCG@20"]
        sparse = np.asarray(train.user_counts())[res.users] < FEW
        metrics = {k: float(res.metrics[k]) for k in ("NDCG@10", "NDCG@20", "Recall@20")}
        metrics[SPARSE] = float(per_user[sparse].mean()) if sparse.any() else float("nan")
        metrics["valid NDCG@20"] = best_valid
        out[name] = {
            "params": best, "metrics": metrics, "per_user": per_user, "sparse": sparse, "fit": fit_s,
            "predict": pred_s, "mem": mem.delta_mb, "notes": notes,
        }  # fmt: skip
        print(f"  {name:15s} {metrics} fit={fit_s:.1f}s {best}", flush=True)
        if name != "EASE":
            out[name]["friends_only"] = friends_only(model, train, valid, test, ds.social)
            print(f"  {name:15s} friends only: {out[name]['friends_only']}", flush=True)
    out["MostPopular"] = {"friends_only": friends_only(None, train, valid, test, ds.social)}
    print(f"  MostPopular     friends only: {out['MostPopular']['friends_only']}", flush=True)
    return out


def friends_only(
    model: Any, train: Interactions, valid: Interactions, test: Interactions, social: Any
) -> dict[str, float]:
    """NDCG@20 / Recall@20 of test users placed from their links alone (module notes); ``None``: popularity."""
    from fusionrec.evaluation.metrics import ndcg_at_k, recall_at_k
    from fusionrec.models.social import SocialFoldIn, clean_trust

    T = clean_trust(social, train.n_users)
    has_history = np.asarray(train.user_counts()) > 0
    held = (valid.matrix + test.matrix).tocsr()
    users = [u for u in range(train.n_users) if held[u].nnz and has_history[T[u].indices].any()]
    k = 20
    pop = np.asarray(train.item_counts(), dtype=np.float64)
    hits = np.zeros((len(users), k), dtype=bool)
    n_rel = np.zeros(len(users), dtype=np.int64)
    for row, u in enumerate(users):
        friends = T[u].indices
        if model is None:
            scores = pop.copy()
        elif isinstance(model, SocialFoldIn):
            placed = model.fold_in_user([], friends=friends)
            scores = model.score(placed)[0].astype(np.float64)
        else:
            f = model.factors()
            known = friends[has_history[friends]]
            vec = np.asarray(f.user, dtype=np.float64)[known].mean(0)
            scores = np.asarray(f.item, dtype=np.float64) @ vec
            if f.item_bias is not None:
                scores += np.asarray(f.item_bias)
        scores[train.matrix[u].indices] = -np.inf
        top = np.argpartition(-scores, k)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        relevant = held[u].indices
        hits[row] = np.isin(top, relevant)
        n_rel[row] = len(relevant)
    return {
        "users": float(len(users)),
        "NDCG@20": float(ndcg_at_k(hits, n_rel, k).mean()),
        "Recall@20": float(recall_at_k(hits, n_rel, k).mean()),
    }


def paired_bucket(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """:func:`_common.paired` of a user bucket, NaN when it holds fewer than two users (a smoke slice may have
    no sparse users)."""
    return paired(a, b) if len(a) >= 2 else {"diff": np.nan, "t_p": np.nan, "wilcoxon_p": np.nan, "n": len(a)}


def summarise(runs: dict[int, dict[str, dict[str, Any]]]) -> list[str]:
    lines = []
    for social, base in PAIRS:
        pooled: dict[str, list[np.ndarray]] = {"a": [], "b": [], "sa": [], "sb": []}
        per_seed = []
        for seed, run in runs.items():
            a, b = run[social], run[base]
            t_all = paired(a["per_user"], b["per_user"])
            t_sp = paired_bucket(a["per_user"][a["sparse"]], b["per_user"][b["sparse"]])
            per_seed.append(
                f"seed {seed}: {t_all['diff']:+.4f} (t p={t_all['t_p']:.3g}), users <{FEW}: {t_sp['diff']:+.4f} "
                f"(t p={t_sp['t_p']:.3g}, n={t_sp['n']})"
            )
            pooled["a"].append(a["per_user"])
            pooled["b"].append(b["per_user"])
            pooled["sa"].append(a["per_user"][a["sparse"]])
            pooled["sb"].append(b["per_user"][b["sparse"]])
        t_all = paired(np.concatenate(pooled["a"]), np.concatenate(pooled["b"]))
        t_sp = paired_bucket(np.concatenate(pooled["sa"]), np.concatenate(pooled["sb"]))
        lines.append(
            f"{social} - {base}, test NDCG@20 per user: " + "; ".join(per_seed)
            + (
                f"; pooled over seeds {t_all['diff']:+.4f} (paired t p={t_all['t_p']:.3g}, Wilcoxon "
                f"p={t_all['wilcoxon_p']:.3g}, n={t_all['n']}), users <{FEW}: {t_sp['diff']:+.4f} "
                f"(t p={t_sp['t_p']:.3g}, n={t_sp['n']})"
                if len(runs) > 1 else ""
            )
            + "."
        )  # fmt: skip
    return lines


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    runs = {seed: run_seed(args, seed) for seed in args.seeds}
    import pickle
    import tempfile

    if not args.smoke:  # a smoke run writes only under $FUSIONREC_BENCH_OUT
        dump = Path(tempfile.gettempdir()) / f"social_topn_{'-'.join(map(str, args.seeds))}.pkl"
        dump.write_bytes(pickle.dumps(runs))  # the per-user results, should the summary need redoing
    version = library_version("fusionrec")
    records = []
    names = [n for n in next(iter(runs.values())) if n != "MostPopular"]
    for name in names:
        first = runs[args.seeds[0]][name]
        if len(runs) == 1:
            metrics: dict[str, Any] = first["metrics"]
        else:
            metrics = {m: mean_spread([r[name]["metrics"][m] for r in runs.values()]) for m in METRICS}
        records.append(
            Record("fusionrec", version, name, "filmtrust (implicit)" if args.data_dir else "synthetic (implicit)",
                   f"random 80/10/10 seeds {','.join(map(str, args.seeds))}", first["params"], metrics,
                   float(np.mean([r[name]["fit"] for r in runs.values()])),
                   float(np.mean([r[name]["predict"] for r in runs.values()])), first["mem"])
        )  # fmt: skip
    extensions = [f"seed {s} {n}: {e}" for s, run in runs.items() for n in names for e in run[n]["notes"]]
    chosen = [f"seed {s} {n}: {run[n]['params']}" for s, run in runs.items() for n in names]
    n_sparse = int(next(iter(runs.values()))["EASE"]["sparse"].sum())
    cold_names = [n for n in next(iter(runs.values())) if "friends_only" in runs[args.seeds[0]][n]]
    cold = [
        f"{n} NDCG@20 {mean_spread([r[n]['friends_only']['NDCG@20'] for r in runs.values()])}, Recall@20 "
        f"{mean_spread([r[n]['friends_only']['Recall@20'] for r in runs.values()])}"
        for n in cold_names
    ]
    n_cold = int(runs[args.seeds[0]]["MostPopular"]["friends_only"]["users"])
    note = "\n\n".join(
        [
            "Machine: 2 CPU cores shared with other jobs. Values are mean ± half-range over the seeds when several; "
            f"fit / predict seconds are means. {n_sparse} test users (first seed) have <{FEW} training "
            "interactions.",
            *summarise(runs),
            f"Friends only (new users placed from their links alone, {n_cold} test users on the first seed; module "
            "docstring): " + "; ".join(cold) + ".",
            "Chosen on valid: " + "; ".join(chosen) + ".",
            ("Grid extensions: " + "; ".join(extensions) + ".") if extensions else "",
        ]
    )
    name = "social_topn" + ("_quick" if args.quick else "")
    if args.seeds != [2026]:
        name += "_seeds" + "-".join(map(str, args.seeds))
    _common.RESULTS_MD = _common.RESULTS_DIR / f"{name}.md"  # the shared RESULTS.md is merged by the lead
    write_results(
        name,
        records,
        metric_columns=METRICS,
        title="FilmTrust social top-N (issue 12)",
        command=" ".join(["python", "benchmarks/social_topn.py", *sys.argv[1:]]),
        notes=note,
    )


if __name__ == "__main__":
    main()
