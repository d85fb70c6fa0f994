"""Are the cited items really why? Removing an explanation's cited history items must lower the item's score more
than removing as many random history items (issue 13).

Data: ml-latest-small.random811, the TRAIN part only (valid and test are never read: no setting is chosen here,
every model uses fixed settings, the quickstart's), every rating an implicit 1.  CEASE gets the genre multi-hot as
its one content modality.

Protocol, for each model with ``fold_in_user`` (EASE, CEASE, ItemKNN, ALS by default; VBPR on request, its
L-BFGS fold-in is slow) and ``--users`` users drawn at random
(seed 0) among those with at least ``--min-history`` training items:

1. ``i`` = the user's top-1 recommendation (training items masked);
2. ``C`` = the history items cited by ``fusionrec.explain.explain(model, u, i, n=--n)`` (``k = |C|``);
3. the user's history is folded in again three ways, each as a new user (the model is not refitted): the full
   history (reference score ``s``), the history without ``C`` (``s_cited``) and the history without ``k`` random
   history items (``s_random``, the mean over ``--draws`` draws);
4. drops ``s - s_cited`` and ``s - s_random``: the mean of each, the fraction of users whose cited drop is larger,
   and a paired Wilcoxon signed-rank test (and t-test) over the users.

The evidence source differs by model: EASE / CEASE cite their exact per-item contributions (the
``item_contributions`` hook), ALS / VBPR the cosine of their item vectors, ItemKNN (no hook, no item vectors) co-occurrence
cosine, the explainer's fallback.

Run: python benchmarks/explain_faithfulness.py [--data-dir ../shared/data] [--users 300] [--n 5] [--models ...]
[--out FILE] [--quick | --smoke]
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from _common import RESULTS_DIR, benchmark_split, machine, paired, parse_args, smoke_dataset

from fusionrec.explain import explain
from fusionrec.models import SideInfo, make_model

SPLIT = "ml-latest-small.random811"
#: fixed settings (the quickstart's; nothing is tuned here, so valid and test stay unread)
MODELS: list[tuple[str, dict[str, Any], bool]] = [
    ("EASE", {"reg": 200.0}, False),
    ("CEASE", {"reg": 200.0, "side_weight": 5.0}, True),
    ("ItemKNN", {"k": 100, "implicit": True}, False),
    ("ALS", {"n_factors": 16, "epochs": 15, "reg": 10.0, "binarize": True, "seed": 0}, False),
    ("VBPR", {"n_factors": 16, "content_factors": 16, "epochs": 40, "seed": 0}, True),
]


def genre_side(data_dir: Path | None, train: Any) -> SideInfo:
    """The genre multi-hot of ml-latest-small (of the synthetic dataset without ``data_dir``) aligned with the
    training item ids."""
    from fusionrec.data.datasets import load_dataset
    from fusionrec.features.tabular import MultiHotEncoder

    ds = smoke_dataset() if data_dir is None else load_dataset("ml-latest-small", data_dir)
    mod = ds.item_modalities["genres"]
    where = mod.ids.to_index(np.asarray(train.item_ids.ids), missing="ignore")
    labels = [list(mod.data[j]) if j >= 0 else [] for j in where.tolist()]
    enc = MultiHotEncoder().fit(labels)
    x = enc.transform(labels).astype(np.float32)
    return SideInfo(
        item_features={"genres": x},
        item_present={"genres": x.sum(axis=1) > 0},
        item_encoders={"genres": enc},
        item_kinds={"genres": "categorical"},
    )


def fold_score(model: Any, items: np.ndarray, item: int) -> float:
    u = int(model.fold_in_user(np.asarray(items, np.int64))[0])
    return float(model.score(np.array([u]), np.array([item]))[0, 0])


def run_model(model: Any, train: Any, users: np.ndarray, n: int, draws: int, side: SideInfo | None) -> dict[str, Any]:
    seen = train.matrix.tocsr()
    rng = np.random.default_rng(0)
    rows: list[tuple[float, float, float, int]] = []
    sources: dict[str, int] = {}
    n_users = int(model.n_users_)
    for u in users.tolist():
        hist = seen.indices[seen.indptr[u] : seen.indptr[u + 1]].astype(np.int64)
        item = int(model.recommend(np.array([u]), 1)[0][0, 0])
        if item < 0:
            continue
        ex = explain(model, u, item, n=n, side=side)
        sources[ex.source] = sources.get(ex.source, 0) + 1
        cited = np.array([e.index for e in ex.because], np.int64)
        k = len(cited)
        if k == 0 or k >= len(hist):
            continue
        full = fold_score(model, hist, item)
        s_cited = fold_score(model, np.setdiff1d(hist, cited), item)
        s_random = float(
            np.mean([fold_score(model, np.setdiff1d(hist, rng.choice(hist, k, replace=False)), item) for _ in range(draws)])
        )
        rows.append((full, full - s_cited, full - s_random, k))
    assert int(model.n_users_) > n_users  # the folds were new users, the fitted ones untouched
    arr = np.array(rows, np.float64)
    cited_drop, random_drop = arr[:, 1], arr[:, 2]
    test = paired(cited_drop, random_drop)
    scale = np.abs(arr[:, 0]).mean()
    return {
        "users": len(rows),
        "k": float(arr[:, 3].mean()),
        "source": ", ".join(f"{s} {c}" for s, c in sorted(sources.items())),
        "score": float(arr[:, 0].mean()),
        "cited": float(cited_drop.mean()),
        "random": float(random_drop.mean()),
        "cited_rel": float(cited_drop.mean() / scale),
        "random_rel": float(random_drop.mean() / scale),
        "frac": float((cited_drop > random_drop).mean()),
        "wilcoxon_p": float(test["wilcoxon_p"]),
        "t_p": float(test["t_p"]),
    }


def main() -> None:
    args = parse_args(
        __doc__.splitlines()[0],
        extra=lambda p: (
            p.add_argument("--users", type=int, default=300, help="users measured per model"),
            p.add_argument("--n", type=int, default=5, help="history items cited (and removed) at most"),
            p.add_argument("--draws", type=int, default=3, help="random removals averaged per user"),
            p.add_argument("--min-history", type=int, default=10, help="smallest training history of a user"),
            p.add_argument(
                "--models", default="EASE,CEASE,ItemKNN,ALS", help=f"comma-separated subset of {[m for m, _, _ in MODELS]}"
            ),
            p.add_argument("--out", default=str(RESULTS_DIR / "explain_faithfulness.md"), help="where the note goes"),
        ),
        fixed_splits="uses the committed split's train part only",
    )
    n_users = 10 if args.smoke else 40 if args.quick else int(args.users)
    min_history = min(int(args.min_history), 5) if args.smoke else int(args.min_history)
    split = benchmark_split(SPLIT, args.data_dir, smoke=args.smoke)
    train = split.train.binarize()
    counts = np.diff(train.matrix.tocsr().indptr)
    eligible = np.flatnonzero(counts >= min_history)
    users = np.sort(np.random.default_rng(0).choice(eligible, min(n_users, len(eligible)), replace=False))
    side = genre_side(args.data_dir, train)
    chosen = [m for m in MODELS if m[0] in set(args.models.split(","))]
    results = []
    for name, params, uses_side in chosen:
        t0 = time.perf_counter()
        model = make_model(name, **params).fit(train, side if uses_side else None)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = run_model(model, train, users, int(args.n), int(args.draws), side if uses_side else None)
        res.update(model=name, params=params, fit_s=fit_s, explain_s=time.perf_counter() - t0)
        results.append(res)
        print(f"{name}: {res}", flush=True)
        del model

    lines = [
        "| model | evidence source (users) | users | cited k | mean score | mean drop, cited removed | mean drop, "
        "random removed | drop / mean score (cited vs random) | users cited > random | Wilcoxon p | t-test p |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['model']} | {r['source']} | {r['users']} | {r['k']:.2f} | {r['score']:.4f} | {r['cited']:.4f} | "
            f"{r['random']:.4f} | {r['cited_rel']:.3f} vs {r['random_rel']:.3f} | {100 * r['frac']:.1f}% | "
            f"{r['wilcoxon_p']:.2g} | {r['t_p']:.2g} |"
        )
    table = "\n".join(lines)
    print(table)
    mach = machine()
    cmd = "FUSIONREC_DATA_DIR=../shared/data python benchmarks/explain_faithfulness.py " + " ".join(sys.argv[1:])
    settings = "; ".join(f"{r['model']} {r['params']} (fit {r['fit_s']:.0f} s, measure {r['explain_s']:.0f} s)" for r in results)
    note = f"""# Explanation faithfulness (issue 13)

Removing the history items an explanation cites lowers the recommended item's score more than removing as many
random history items, for every model measured: the cited items carry the score.

{table}

- Data: `{SPLIT}`, train part only (valid and test unread), ratings as implicit 1; {len(users)} users drawn at
  random (seed 0) among those with >= {min_history} training items; top-1 recommendation each.
- Cited: at most {args.n} history items from `fusionrec.explain.explain` (EASE/CEASE: exact per-item
  contributions; ALS: cosine of item factors; ItemKNN: co-occurrence cosine, the explainer's fallback).
  Random: the same number of random history items, {args.draws} draws averaged. Scores after folding the reduced
  history in as a new user (`fold_in_user`, no refit), compared with the full history folded in the same way.
- Paired tests over users: Wilcoxon signed-rank and t-test of (cited drop) vs (random drop).
- Settings fixed (the quickstart's), nothing tuned: {settings}.
- Command: `{cmd}`
- Machine: {mach['cpu']}, {mach['cores']} cores shared with other jobs, {mach['memory_gb']} GB; Python
  {mach['python']}; {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}.
"""
    # the committed note is written by full runs only (a smoke run's goes to its scratch folder)
    if args.quick and not args.smoke:
        return
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(note)
    print(f"written {out}")


if __name__ == "__main__":
    main()
