"""Accuracy versus fairness / beyond-accuracy: fusionrec's re-rankers swept on ml-latest-small, with FA*IR
(fairsearchcore, Zehlike et al. 2017) as the peer for the popularity constraint.

Data: ml-latest-small.random811 (x_label 0 train, 1 valid, 2 test), every rating an implicit 1.  The base model is
EASE or ALS, chosen with its hyper-parameters on valid by NDCG@10 (fitted on train; the same fitted model is used
for valid and test).  Every re-ranker re-orders the base model's top 100 (train masked; valid masked too at test
time) and the same ``evaluate_ranking`` scores the new top 10:

- Calibrated (Steck 2018) on the genres of movies.csv, lam swept;
- MMR on genre vectors (ILD is measured on the same genre vectors), lam swept;
- ExposureCap: at most ``max_share`` short-head items per list (short head: the most popular training items that
  hold 20% of the interactions);
- FairExposure: exposure of short head / long tail proportional to relevance, amortised over users, lam swept;
- peer FA*IR (fairsearchcore 1.0.4, long-tail items protected, minimum proportion p, alpha 0.1) on the same
  candidates; matched against ExposureCap with ``max_share = 1 - p`` (both timed in this run).

Reported on test: NDCG@10, calibration KL (Steck's smoothed KL of the history's genre mix against the list's),
exposure Gini (position-discounted, over items), coverage, ILD (genres), popular-item share (short-head share of
the slots), group NDCG gap (most minus least NDCG@10 among the user activity quartiles of train).  An operating point
per re-ranker is chosen on valid: the strongest setting whose valid NDCG@10 stays >= 95% of the base model's.

fairsearchcore is installed apart (it pins nothing we need but is not a dependency):
``pip install --no-deps --target .bench/fairsearch-lib fairsearchcore==1.0.4`` (scripts/bench_setup.sh); ``--peer-path`` points there, and
the peer rows are left out (said so in the output) when it is absent.

Run: python benchmarks/fairness_curve.py [--data-dir ../shared/data] [--quick | --smoke] [--peer-path .bench/fairsearch-lib]
Writes benchmarks/results/fairness_curve.{md,json,png} (not RESULTS.md); ``--render-only`` rewrites the .md and
.png from that .json.
"""

from __future__ import annotations

import datetime as _dt
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from _common import RESULTS_DIR, SPLIT_SEED, benchmark_split, machine, parse_args, smoke_dataset

from fusionrec.data import Interactions
from fusionrec.evaluation import evaluate_ranking
from fusionrec.evaluation import metrics as M
from fusionrec.models import Recommender
from fusionrec.rerank import MMR, Calibrated, ExposureCap, FairExposure, groups_from_labels

SPLIT = "ml-latest-small.random811"
PEER = "peer FA*IR (fairsearchcore, tail protected)"
K, DEPTH = 10, 100
COLUMNS = [
    ("NDCG@10", "NDCG@10"),
    ("CalibrationKL@10", "calib. KL"),
    ("ExposureGini@10", "exposure Gini"),
    ("Coverage@10", "coverage"),
    ("ILD@10", "ILD"),
    ("PopularShare@10", "popular share"),
    ("NDCGGap@10", "NDCG gap (activity)"),
]


class CachedScores(Recommender):
    """A fitted model's scores for every user, computed once (every setting re-ranks the same base output)."""

    def __init__(self, table: np.ndarray | None = None) -> None:
        self.table = table

    def _fit(self, train: Interactions, side: Any) -> None:
        self.scores_ = np.asarray(self.table, dtype=np.float32)

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        s = self.scores_[np.asarray(users)]
        return s if items is None else s[:, items]


class Timed:
    """A reranker that adds up the seconds spent in its ``rerank`` (the re-ranking alone, not scoring)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.seconds = inner, 0.0

    def rerank(
        self, users: np.ndarray, candidates: np.ndarray, scores: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        t = time.perf_counter()
        out = self.inner.rerank(users, candidates, scores, k)
        self.seconds += time.perf_counter() - t
        return out  # type: ignore[no-any-return]


class FairPeer:
    """fairsearchcore's FA*IR behind the rerank protocol: long-tail (protected) items at least ``p`` of each
    prefix (binomial test at ``alpha``, adjusted mtable)."""

    def __init__(self, tail: np.ndarray, p: float, alpha: float = 0.1) -> None:
        from fairsearchcore import fail_prob
        from fairsearchcore.fair import Fair
        from fairsearchcore.models import FairScoreDoc

        # fairsearchcore 1.0.4's memo key hashes to a numpy integer, which this Python (3.11) with numpy 2 refuses; an int is the same
        key = fail_prob.LegalAssignmentKey
        if not getattr(key, "_int_hash", False):
            numpy_hash = key.__hash__
            key.__hash__ = lambda self: int(numpy_hash(self))  # type: ignore[method-assign]
            key._int_hash = True  # type: ignore[attr-defined]

        self.tail, self.doc = tail, FairScoreDoc
        self.fair = Fair(K, p, alpha)
        self.fair.create_adjusted_mtable()  # cached once

    def rerank(
        self, users: np.ndarray, candidates: np.ndarray, scores: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        items = np.full((len(candidates), k), -1, dtype=np.int64)
        out = np.full((len(candidates), k), -np.inf)
        for r, (cand, sc) in enumerate(zip(candidates, scores)):
            ok = (cand >= 0) & np.isfinite(sc)
            docs = [self.doc(int(i), float(s), bool(self.tail[i])) for i, s in zip(cand[ok], sc[ok])]
            ranked = self.fair.re_rank(docs)[:k]
            items[r, : len(ranked)] = [d.id for d in ranked]
            out[r, : len(ranked)] = [d.score for d in ranked]
        return items, out


def load_genres(data_dir: Path | None, item_ids: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """The genres of ml-latest-small's movies.csv (of the synthetic dataset without ``data_dir``) for ``item_ids``."""
    import pandas as pd

    if data_dir is None:
        mod = smoke_dataset().item_modalities["genres"]
        rows = mod.ids.to_index(item_ids, missing="ignore").tolist()
        return groups_from_labels([list(mod.data[r]) if r >= 0 else [] for r in rows])
    movies = pd.read_csv(data_dir / "ml-latest-small" / "movies.csv")
    by_id = dict(zip(movies["movieId"].astype(int), movies["genres"].astype(str)))
    labels = [
        [g for g in by_id.get(int(i), "").split("|") if g and g != "(no genres listed)"] for i in item_ids.tolist()
    ]
    return groups_from_labels(labels)


def base_models(train: Interactions, valid: Interactions, quick: bool) -> tuple[str, Recommender, list[dict]]:
    """EASE and ALS grids tuned on valid by NDCG@10; returns the best (label, fitted model) and every trial."""
    from fusionrec.models.linear import EASE
    from fusionrec.models.mf.als import ALS

    grid: list[tuple[str, Callable[[], Recommender]]] = []
    for reg in [1000.0] if quick else [100.0, 300.0, 1000.0, 3000.0]:
        grid.append((f"EASE(reg={reg:g})", lambda reg=reg: EASE(reg=reg)))
    for reg, alpha in [(1.0, 10.0)] if quick else [(0.1, 1.0), (1.0, 10.0), (10.0, 10.0)]:
        grid.append(
            (
                f"ALS(n_factors=64, reg={reg:g}, alpha={alpha:g})",
                lambda reg=reg, alpha=alpha: ALS(n_factors=64, reg=reg, alpha=alpha, epochs=15, seed=0),
            )
        )
    trials, best = [], None
    for label, make in grid:
        t = time.perf_counter()
        model = make().fit(train)
        fit_s = time.perf_counter() - t
        ndcg = evaluate_ranking(model, train, valid, k=K, metrics=["ndcg"]).metrics["NDCG@10"]
        trials.append({"model": label, "valid NDCG@10": ndcg, "fit_s": round(fit_s, 1)})
        print(f"  {label}: valid NDCG@10 {ndcg:.4f} (fit {fit_s:.1f}s)", flush=True)
        if best is None or ndcg > best[0]:
            best = (ndcg, label, model)
    assert best is not None
    # a grid whose optimum sits at its edge is widened (EASE's reg, a factor 3 a step, while valid improves)
    regs = sorted(float(t["model"][9:-1]) for t in trials if t["model"].startswith("EASE("))
    ease = [t for t in trials if t["model"].startswith("EASE(")]
    top = max(ease, key=lambda t: t["valid NDCG@10"])
    reg = float(top["model"][9:-1])
    if not quick and reg in (regs[0], regs[-1]):
        step = 1 / 3 if reg == regs[0] else 3.0
        score = top["valid NDCG@10"]
        while True:
            reg *= step
            label = f"EASE(reg={reg:g})"
            t0 = time.perf_counter()
            model = EASE(reg=reg).fit(train)
            fit_s = time.perf_counter() - t0
            ndcg = evaluate_ranking(model, train, valid, k=K, metrics=["ndcg"]).metrics["NDCG@10"]
            trials.append({"model": label, "valid NDCG@10": ndcg, "fit_s": round(fit_s, 1), "extension": True})
            print(f"  {label} (grid edge extended): valid NDCG@10 {ndcg:.4f} (fit {fit_s:.1f}s)", flush=True)
            if ndcg > best[0]:
                best = (ndcg, label, model)
            if ndcg <= score:
                break
            score = ndcg
    return best[1], best[2], trials


def _extra_args(p: Any) -> None:
    p.add_argument("--peer-path", default=str(Path(__file__).resolve().parent.parent / ".bench" / "fairsearch-lib"), help="where fairsearchcore is installed (--target)")
    p.add_argument("--render-only", action="store_true", help="rewrite the .md / .png from the last run's .json")


def main() -> None:
    args = parse_args(
        __doc__.split("\n\n")[0],
        extra=_extra_args,
        fixed_splits="reports one split",
    )
    quick = bool(args.quick)
    if args.render_only:  # re-draw the table and the curve from the JSON of the last run
        stem = "fairness_curve_quick" if quick else "fairness_curve"
        out = json.loads((RESULTS_DIR / f"{stem}.json").read_text())
        have = PEER in out["sweeps"]
        plot(out["sweeps"], out["base_test"], RESULTS_DIR / f"{stem}.png")
        (RESULTS_DIR / f"{stem}.md").write_text(markdown(out, matched(out["sweeps"]), stem, have))
        return
    if args.peer_path and Path(args.peer_path).is_dir():
        sys.path.insert(0, str(args.peer_path))
    try:
        import fairsearchcore  # noqa: F401

        have_peer = True
    except ImportError:
        have_peer = False
        print("fairsearchcore not found: the FA*IR peer rows are left out (see the module docstring)")

    split = benchmark_split(SPLIT, args.data_dir, SPLIT_SEED, smoke=args.smoke)
    train, valid, test = split.train.binarize(), split.valid.binarize(), split.test.binarize()
    genres, genre_names = load_genres(args.data_dir, train.item_ids.ids)
    head = M.popularity_groups(train.item_counts())  # 0 short head, 1 long tail
    activity = M.activity_groups(train.user_counts())
    print(
        f"{SPLIT}: {train.n_users} users, {train.n_items} items, {len(genre_names)} genres, "
        f"{int((head == 0).sum())} short-head items",
        flush=True,
    )

    print("base model, tuned on valid:", flush=True)
    base_label, model, trials = base_models(train, valid, quick)
    table = np.asarray(model.score(np.arange(train.n_users)), dtype=np.float32)
    cached = CachedScores(table).fit(train)

    def evaluate(rerank: Any, part: str) -> tuple[dict[str, float], float]:
        held, exclude = (valid, [train]) if part == "valid" else (test, [train, valid])
        t = time.perf_counter()
        res = evaluate_ranking(
            cached,
            train,
            held,
            k=K,
            metrics=["ndcg"],
            exclude=exclude,
            item_features=genres,
            item_groups=genres,
            user_groups=activity,
            rerank=rerank,
            rerank_depth=DEPTH,
        )
        return res.metrics, time.perf_counter() - t

    sweeps: dict[str, list[tuple[str, float, Callable[[], Any]]]] = {
        "Calibrated (genres)": [
            (f"lam={lam:g}", lam, lambda lam=lam: Calibrated(genres, train.matrix, lam=lam))
            for lam in ([0.0, 0.3, 0.7] if quick else [0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9])
        ],
        "MMR (genre vectors)": [
            (f"lam={lam:g}", lam, lambda lam=lam: MMR(genres, lam=lam))
            for lam in ([0.0, 0.3, 0.7] if quick else [0.0, 0.1, 0.2, 0.3, 0.5, 0.7])
        ],
        "ExposureCap (short-head share)": [
            (f"max_share={s:g}", 1.0 - s, lambda s=s: ExposureCap(head, max_share={0: s}))
            for s in ([1.0, 0.6, 0.2] if quick else [1.0, 0.8, 0.6, 0.4, 0.2, 0.0])
        ],
        "FairExposure (head / tail)": [
            (f"lam={lam:g}", lam, lambda lam=lam: FairExposure(head, lam=lam))
            for lam in ([0.0, 0.5, 1.0] if quick else [0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
        ],
    }
    if have_peer:
        sweeps[PEER] = [
            (f"p={p:g}", p, lambda p=p: FairPeer(head == 1, p))
            for p in ([0.6, 0.9] if quick else [0.4, 0.6, 0.8, 0.9, 0.95])
        ]

    base_valid, _ = evaluate(None, "valid")
    base_test, base_s = evaluate(None, "test")
    results: dict[str, list[dict[str, Any]]] = {}
    for name, settings in sweeps.items():
        print(f"{name}:", flush=True)
        rows = []
        for label, strength, make in settings:
            v, _ = evaluate(make(), "valid")
            rr = Timed(make())
            t, _ = evaluate(rr, "test")
            secs = rr.seconds
            row = {"setting": label, "strength": strength, "valid NDCG@10": v["NDCG@10"], "seconds": secs}
            row.update({key: t.get(key, float("nan")) for key, _ in COLUMNS})
            rows.append(row)
            print("  " + label + "  " + "  ".join(f"{c}={row[k]:.4f}" for k, c in COLUMNS), flush=True)
        # the operating point, chosen on valid: the strongest setting within 5% of the base valid NDCG@10
        ok = [r for r in rows if r["valid NDCG@10"] >= 0.95 * base_valid["NDCG@10"]]
        chosen = max(ok, key=lambda r: r["strength"]) if ok else None
        for r in rows:
            r["chosen on valid"] = r is chosen
        results[name] = rows

    timing = matched(results) if have_peer else []

    out = {
        "benchmark": "fairness_curve",
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {**machine(), "note": "2 CPU cores shared with other jobs"},
        "split": SPLIT,
        "base": base_label,
        "base_trials": trials,
        "base_test": {key: base_test.get(key) for key, _ in COLUMNS},
        "base_valid NDCG@10": base_valid["NDCG@10"],
        "base_eval_s": base_s,
        "sweeps": results,
        "quick": quick,
    }
    stem = "fairness_curve_quick" if quick else "fairness_curve"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"{stem}.json").write_text(json.dumps(out, indent=2, default=float) + "\n")
    plot(results, base_test, RESULTS_DIR / f"{stem}.png")
    md = markdown(out, timing, stem, have_peer)
    (RESULTS_DIR / f"{stem}.md").write_text(md)
    print(md)


def matched(results: dict[str, list[dict[str, Any]]]) -> list[tuple[float, dict, dict]]:
    """ExposureCap and FA*IR settings that give the same popular-item share on test (the same item sets: both take
    each group's best candidates), so NDCG@10 compares their orderings; one pair per share."""
    caps = results.get("ExposureCap (short-head share)", [])
    peers = results.get(PEER, [])
    pairs, seen = [], set()
    for r in peers:
        twin = next((c for c in caps if abs(c["PopularShare@10"] - r["PopularShare@10"]) < 1e-9), None)
        if twin is not None and twin["setting"] not in seen:
            seen.add(twin["setting"])
            pairs.append((r["PopularShare@10"], twin, r))
    return pairs


def _f(v: Any) -> str:
    return "–" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.4f}"


def markdown(out: dict[str, Any], timing: list[tuple[float, dict, dict]], stem: str, have_peer: bool) -> str:
    lines = [
        "# Accuracy versus fairness: re-ranking on ml-latest-small",
        "",
        f"Command: `FUSIONREC_DATA_DIR=../shared/data .venv/bin/python benchmarks/fairness_curve.py"
        f"{' --quick' if out['quick'] else ''}` (peer: `pip install --no-deps --target .bench/fairsearch-lib "
        "fairsearchcore==1.0.4`).",
        f"Machine: {out['machine']['cpu']}, {out['machine']['note']}; {out['date']}.",
        "",
        f"Split {out['split']} (implicit). Base model chosen on valid NDCG@10: **{out['base']}** "
        f"(valid NDCG@10 {out['base_valid NDCG@10']:.4f}); trials: "
        + "; ".join(f"{t['model']} {t['valid NDCG@10']:.4f}" for t in out["base_trials"])
        + ".",
        f"Every re-ranker re-orders the base model's top {DEPTH} per user; figures are on test (train and valid "
        "masked), scored by the same `evaluate_ranking`. Lower is fairer / better calibrated for calibration KL, "
        "exposure Gini, popular share and NDCG gap; higher is more diverse for coverage and ILD. "
        "**bold** = the operating point chosen on valid (strongest setting with valid NDCG@10 >= 95% of the base).",
        "",
    ]
    header = "| setting | " + " | ".join(c for _, c in COLUMNS) + " | valid NDCG@10 | re-rank s |"
    sep = "|" + "---|" * (len(COLUMNS) + 3)
    base = out["base_test"]
    for name, rows in out["sweeps"].items():
        lines += [f"## {name}", "", header, sep]
        lines.append("| no re-ranking | " + " | ".join(_f(base[k]) for k, _ in COLUMNS) + " | | |")
        for r in rows:
            s = f"**{r['setting']}**" if r["chosen on valid"] else r["setting"]
            cells = " | ".join(_f(r[k]) for k, _ in COLUMNS)
            lines.append(f"| {s} | {cells} | {_f(r['valid NDCG@10'])} | {r['seconds']:.2f} |")
        lines.append("")
    if timing:
        lines += [
            "## ExposureCap against the peer FA*IR at the same popular-item share",
            "",
            "Settings of the two that give the same short-head share on test (the same items per list: each takes the "
            "best candidates of each group), so NDCG@10 compares where they put them. FA*IR also guarantees the "
            "share in every prefix (its binomial test), the cap only in the whole list. Both re-rank the same top-100 "
            "candidates in this run; `re-rank s` is the time inside re-ranking for the 610 test users.",
            "",
            "| popular share | ours | NDCG@10 ours | FA*IR | NDCG@10 FA*IR | re-rank s ours | re-rank s FA*IR |",
            "|---|---|---|---|---|---|---|",
        ]
        for share, ours, peer in timing:
            lines.append(
                f"| {share:.4f} | {ours['setting']} | {_f(ours['NDCG@10'])} | {peer['setting']} | {_f(peer['NDCG@10'])}"
                f" | {ours['seconds']:.2f} | {peer['seconds']:.2f} |"
            )
        lines.append("")
    elif not have_peer:
        lines += ["fairsearchcore was not installed: no peer rows in this run.", ""]
    lines += [f"Curve: `benchmarks/results/{stem}.png` (NDCG@10 against each metric, one line per re-ranker).", ""]
    lines += ["## Notes", ""]
    b = out["base_test"]
    for name, rows in out["sweeps"].items():
        chosen = next((r for r in rows if r["chosen on valid"]), None)
        if chosen is None or name == PEER:
            continue
        moved = {
            "calib. KL": chosen["CalibrationKL@10"] - b["CalibrationKL@10"],
            "ILD": chosen["ILD@10"] - b["ILD@10"],
            "popular share": chosen["PopularShare@10"] - b["PopularShare@10"],
            "NDCG gap": chosen["NDCGGap@10"] - b["NDCGGap@10"],
        }
        lines.append(
            f"- {name}, operating point {chosen['setting']} (chosen on valid): NDCG@10 "
            f"{100 * (chosen['NDCG@10'] / b['NDCG@10'] - 1):+.1f}% on test; "
            + ", ".join(f"{k} {v:+.3f}" for k, v in moved.items())
            + "."
        )
    lines += [
        "- Exposure Gini over items hardly moves (0.98-0.99) for every re-ranker: re-ranking inside each user's top "
        f"{DEPTH} cannot reach most of the catalogue (coverage stays under 7% of the items). Moving it needs the "
        "base model to propose tail items (deeper candidates, or a popularity-debiased model).",
        "- Strong calibration (lam >= 0.5) also lowers the popular share and the activity NDCG gap (weak settings "
        "raise the gap slightly); MMR on genres also calibrates (its KL falls), since diverse lists spread over "
        "the history's genres. The popularity re-rankers barely change calibration or ILD.",
        "- Valid NDCG@10 rises at small calibration strengths (lam 0.1-0.2) while test NDCG@10 falls slightly: "
        "within noise (610 users); the operating point rule keeps the strongest setting within 5% on valid.",
        "- The base model grid was EASE reg 100 / 300 / 1000 / 3000 and three ALS settings; an EASE optimum at the "
        "grid's edge extends it by a factor 3 while valid improves (the extended trials are in the JSON).",
        "- fairsearchcore 1.0.4 fails here (Python 3.11, numpy 2) when it builds the adjusted table (its memo key hashes to a "
        "numpy integer); the benchmark wraps that hash in `int()` and otherwise runs it unchanged.",
        "",
    ]
    return "\n".join(lines)


def plot(results: dict[str, list[dict[str, Any]]], base: dict[str, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [(k, c) for k, c in COLUMNS if k != "NDCG@10"]
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    for ax, (key, label) in zip(axes.ravel(), metrics):
        for name, rows in results.items():
            xs = [r[key] for r in rows]
            ys = [r["NDCG@10"] for r in rows]
            style = "s--" if name.startswith("peer") else "o-"
            ax.plot(xs, ys, style, label=name, ms=4)
        ax.plot([base[key]], [base["NDCG@10"]], "k*", ms=12, label="no re-ranking")
        ax.set_xlabel(label + " (test)")
        ax.set_ylabel("NDCG@10 (test)")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"Accuracy vs fairness / beyond-accuracy, {SPLIT}, top-{K} re-ranked from top-{DEPTH}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    main()
