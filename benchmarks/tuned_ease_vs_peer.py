"""fusionrec vs a peer, both tuned by the same Optuna TPE budget (issue 14): ALS vs implicit ALS, EASE vs cornac EASE.

Data: ml-latest-small.random811 (the committed split for ``--seed 2026``; other seeds regenerate it), every rating an
implicit 1 (train binarised, every valid/test interaction relevant).  Each side is tuned by
``benchmarks/_tuning.tpe_tune``: the same search space (fusionrec format), the same number of trials, the same TPE
seed, no pruning, fitted on train and chosen by NDCG@20 on valid (train masked); the best setting is refitted on
train only and tested once with train and valid masked, all items ranked, scored by the one fusionrec evaluator.
Peers are built exactly as in ``topn_implicit.py`` (implicit gets fusionrec's confidence matrix ``1 + alpha r``;
cornac EASE with ``posB=True``).  Tuning seconds cover every trial's fit and valid scoring on this machine (2
shared cores, both sides timed in the same run).

Run: python benchmarks/tuned_ease_vs_peer.py [--data-dir ../shared/data] [--trials 20] [--families als,ease]
     [--quick | --smoke]  (writes benchmarks/results/tuned_als.md; --families als,ease adds EASE vs cornac EASE)
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS_DIR, benchmark_split, have_peer, library_version, machine, parse_args
from _tuning import TunedSide, test_scores, tpe_tune
from topn_implicit import cornac_ease, implicit_als

from fusionrec.data import Split
from fusionrec.models.linear import EASE
from fusionrec.models.mf.als import ALS

SPLIT = "ml-latest-small.random811"
SEED = 0
#: one search space per family, the same for both sides (names as the fusionrec model's; mapped by the builders)
SPACES: dict[str, dict[str, Any]] = {
    "als": {
        "n_factors": ["int", 16, 128, "log"],
        "reg": ["float", 0.01, 100.0, "log"],
        "alpha": ["float", 0.5, 50.0, "log"],
    },
    "ease": {"lam": ["float", 10.0, 10000.0, "log"]},
}
FIXED = {"als": {"epochs": 15}, "ease": {}}


def fusionrec_als(p: dict[str, Any], train: Any) -> Any:
    return ALS(seed=SEED, **p).fit(train)


def fusionrec_ease(p: dict[str, Any], train: Any) -> Any:
    return EASE(reg=p["lam"]).fit(train)


BUILDERS = {
    "als": [("fusionrec", "ALS (cg)", fusionrec_als), ("implicit", "AlternatingLeastSquares (cg)", implicit_als)],
    "ease": [("fusionrec", "EASE", fusionrec_ease), ("cornac", "EASE (posB)", cornac_ease)],
}


def _extra(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trials", type=int, default=20, help="TPE trials per side (default %(default)s)")
    parser.add_argument(
        "--families", default="als", help="comma separated: als, ease (EASE: ~30 s a fit here) (default %(default)s)"
    )


def _fmt_params(p: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in p.items())


def main() -> None:
    args = parse_args(__doc__ or "", _extra)
    warnings.filterwarnings("ignore", module="implicit")
    trials = 2 if args.smoke else 4 if args.quick else int(args.trials)
    families = ["als", "ease"] if args.smoke else [f.strip() for f in args.families.split(",") if f.strip()]
    unknown = set(families) - set(SPACES)
    if unknown:
        raise SystemExit(f"unknown families {sorted(unknown)}; choose from {sorted(SPACES)}")
    versions = {lib: library_version(lib) for lib in ("fusionrec", "implicit", "cornac", "optuna")}
    rows: list[tuple[str, str, TunedSide, dict[str, float], int]] = []
    for seed in args.seeds:
        raw = benchmark_split(SPLIT, args.data_dir, seed, smoke=args.smoke)
        split = Split(raw.train.binarize(), raw.test.binarize(), raw.valid.binarize(), name=raw.name)
        ALS(n_factors=4, epochs=1).fit(split.train)  # warm numba's caches outside the timed trials
        for family in families:
            for lib, label, build in BUILDERS[family]:
                if lib != "fusionrec" and not have_peer(lib, args.smoke):
                    continue
                side = tpe_tune(
                    f"{lib} {label}", lambda p, b=build, t=split.train: b(p, t), SPACES[family], split,
                    n_trials=trials, seed=SEED, fixed=FIXED[family],
                )  # fmt: skip
                test = test_scores(side.model, split)
                rows.append((lib, label, side, test, seed))
                print(
                    f"seed {seed} {lib:9s} {label:30s} valid NDCG@20={side.best_valid:.4f} "
                    f"test NDCG@20={test['NDCG@20']:.4f} R@20={test['Recall@20']:.4f} tuning={side.seconds:.1f}s "
                    f"best={_fmt_params(side.best_params)}",
                    flush=True,
                )
    header = (
        "| seed | library | model | trials | valid NDCG@20 | test Recall@10 | test NDCG@10 | test Recall@20 | "
        "test NDCG@20 | tuning s | best parameters |"
    )
    lines = [header, "|" + "---|" * 11]
    for lib, label, side, test, seed in rows:
        lines.append(
            f"| {seed} | {lib} {versions.get(lib, '')} | {label} | {len(side.trials)} ({side.n_failed} failed) | "
            f"{side.best_valid:.4f} | {test['Recall@10']:.4f} | {test['NDCG@10']:.4f} | {test['Recall@20']:.4f} | "
            f"{test['NDCG@20']:.4f} | {side.seconds:.1f} | {_fmt_params(side.best_params)} |"
        )
    table = "\n".join(lines)
    print("\n" + table)
    m = machine()
    cmd = "python benchmarks/tuned_ease_vs_peer.py " + " ".join(sys.argv[1:])
    text = f"""# Tuned with the same TPE budget: fusionrec vs peer ({SPLIT})

{table}

- Command: `{cmd.strip()}` (data: `--data-dir` / `$FUSIONREC_DATA_DIR`), {dt.date.today().isoformat()}.
- Machine: {m.get("cpu", "?")}, {m.get("cores", "?")} cores shared with other jobs, {m.get("memory_gb", "?")} GB; optuna
  {versions["optuna"]}. Both sides run in the same process, one after the other; "tuning s" is every trial's fit
  plus its valid scoring.
- Protocol: Optuna TPE (seed {SEED}), {trials} trials per side, the same space per family
  (`{ {f: SPACES[f] for f in families} }`, fixed `{ {f: FIXED[f] for f in families} }`), no pruning on either side,
  NDCG@20 on valid (train masked) picks the
  setting; refit on train only; test with train and valid masked, all items ranked, binary relevance.
"""
    out = RESULTS_DIR / ("tuned_als_quick.md" if args.quick else "tuned_als.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"\nwritten {out}")


if __name__ == "__main__":
    main()
