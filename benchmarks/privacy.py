"""Privacy benchmark: NDCG@20 against epsilon (DP-SGD) and federated against centralised training.

Data: ml-latest-small.random811 (x_label 0 train, 1 valid, 2 test), train binarised (every rating is an implicit 1;
every valid/test interaction is relevant).  Models are fitted on train; settings are chosen on valid by NDCG@20
(train masked) and the chosen setting is refitted on train and tested with train and valid masked, all items
ranked (the README's evaluation convention).

Rows:

- DPMF (fusionrec.models.private): BPR matrix factorisation trained by DP-SGD (record-level (epsilon, delta)-DP,
  Opacus RDP accountant, delta = 1/(10 n)) at epsilon 1, 3, 8 and infinity (``private=False``: the same model,
  sampling, optimiser and epochs without clipping or noise).  Per epsilon the same grid (learning rate x
  clipping norm) is tuned on valid.  The valid-based choice is outside the privacy guarantee (as is usual for
  DP hyper-parameter search; say so when quoting the numbers).
- DeepFusion with ``private=True`` (genres as the one content modality, multi-hot from movies.csv) at the same
  epsilons; infinity twice: the same DP-SGD loop with no noise and no clipping, and DeepFusion's ordinary
  training (same epochs); the same learning-rate grid per row.
- FedMF (fusionrec.models.federated): one client per user (610 clients), FedAvg of item factors, user vectors on
  the clients, against its centralised twin fusionrec BPR (same loss, Adagrad, initialisation, n_factors, learning
  rate and regularisation), accuracy after 5, 10, 20 and 40 rounds / epochs; the server step is chosen on valid at
  20 rounds.  The same with 10 clients of 61 users each (plain FedAvg, server_lr = 1), and one Flower
  simulation row of that setting (Ray) unless ``--no-flower``.
- MostPopular as the non-personalised reference.

Run: python benchmarks/privacy.py [--data-dir ../shared/data] [--quick | --smoke] [--no-flower]
(--smoke: one setting per row, epsilon 3 and infinity, 1 epoch, no Flower row)
"""

from __future__ import annotations

import datetime as dt
import math
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import pandas as pd
from _common import RESULTS_DIR, benchmark_split, parse_args, smoke_dataset

from fusionrec.evaluation import evaluate_ranking
from fusionrec.models.base import Recommender, SideInfo
from fusionrec.models.baselines import MostPopular
from fusionrec.models.federated import FedMF
from fusionrec.models.fusion.model import DeepFusion
from fusionrec.models.mf.bpr import BPR
from fusionrec.models.private import DPMF

SPLIT = "ml-latest-small.random811"
OUT = RESULTS_DIR / "privacy.md"
EPSILONS = [1.0, 3.0, 8.0, math.inf]


def ndcg(model: Recommender, train: Any, test: Any, exclude: list[Any] | None = None) -> float:
    """NDCG@20 of ``test`` with ``train`` and every part of ``exclude`` masked."""
    res = evaluate_ranking(model, train, test, k=[20], metrics=["ndcg"], exclude=[train, *(exclude or [])])
    return float(res.metrics["NDCG@20"])


def genres(data_dir: Path | None, train: Any) -> SideInfo:
    """The genre multi-hot of movies.csv (of the synthetic dataset without ``data_dir``) for the training items."""
    if data_dir is None:
        labels, _ = smoke_dataset().item_modalities["genres"].align(train.item_ids)
        x = pd.Series(["|".join(g or []) for g in labels]).str.get_dummies("|").to_numpy(np.float32)
        return SideInfo(item_features={"genres": x})
    movies = pd.read_csv(data_dir / "ml-latest-small" / "movies.csv")
    onehot = movies.set_index("movieId")["genres"].str.get_dummies("|")
    x = onehot.reindex(train.item_ids.ids.astype(int)).fillna(0).to_numpy(np.float32)
    return SideInfo(item_features={"genres": x})


def tuned(
    make: Any, grid: list[dict[str, Any]], train: Any, valid: Any, test: Any, side: SideInfo | None = None
) -> dict[str, Any]:
    """Fit every grid point on train, keep the best valid NDCG@20, report its test NDCG@20 (train+valid masked)."""
    best: dict[str, Any] | None = None
    for params in grid:
        t = time.perf_counter()
        model = make(**params).fit(train, side)
        secs = time.perf_counter() - t
        score = ndcg(model, train, valid)
        print(f"    {params} valid NDCG@20 {score:.4f} ({secs:.1f} s)", flush=True)
        if best is None or score > best["valid"]:
            best = {"params": params, "valid": score, "model": model, "fit_s": secs}
    assert best is not None
    best["test"] = ndcg(best["model"], train, test, exclude=[valid])
    return best


def main() -> None:
    args = parse_args(
        __doc__.splitlines()[0],
        extra=lambda p: p.add_argument("--no-flower", action="store_true", help="skip the Flower simulation row"),
        fixed_splits="uses the committed random811 split",
    )
    quick, smoke = bool(args.quick), bool(args.smoke)
    epsilons = [3.0, math.inf] if smoke else EPSILONS
    args.no_flower = args.no_flower or smoke  # a Ray start alone takes longer than a smoke run
    split = benchmark_split(SPLIT, args.data_dir, smoke=smoke)
    train, valid, test = split.train.binarize(), split.valid, split.test
    side = genres(args.data_dir, train)
    print(f"{SPLIT}: {train.n_users} users, {train.n_items} items, {train.nnz} train interactions", flush=True)
    rows: list[tuple[str, str, str, float, float, str, float]] = []  # family, model, setting, valid, test, chosen, s

    pop = MostPopular().fit(train)
    rows.append(("reference", "MostPopular", "-", ndcg(pop, train, valid), ndcg(pop, train, test, [valid]), "-", 0.0))

    # ---------------------------------------------------------------- DP-SGD: DPMF
    epochs = 1 if smoke else 4 if quick else 10
    mf_grid = [{"lr": lr, "max_grad_norm": c} for lr in (0.001, 0.003, 0.01) for c in (0.2, 1.0)]
    if quick:
        mf_grid = mf_grid[3:4] if smoke else mf_grid[2:4]
    for eps in epsilons:
        print(f"DPMF epsilon={eps}", flush=True)
        private = math.isfinite(eps)

        def make_mf(eps: float = eps, private: bool = private, **p: Any) -> DPMF:
            return DPMF(
                n_factors=32, epochs=epochs, batch_size=1024, private=private,
                target_epsilon=eps if private else None, seed=0, **p,
            )  # fmt: skip

        grid = mf_grid if private else [g for g in mf_grid if g["max_grad_norm"] == 1.0]  # C unused without DP
        best = tuned(make_mf, grid, train, valid, test)
        spent = best["model"].privacy_spent_
        label = f"eps={spent[0]:.2f}, delta={spent[1]:.1e}" if private else "non-private"
        rows.append(("DP-SGD", "DPMF", label, best["valid"], best["test"], str(best["params"]), best["fit_s"]))

    # ---------------------------------------------------------------- DP-SGD: DeepFusion
    df_epochs = 1 if smoke else 2 if quick else 5
    df_grid = [{"lr": 0.02}] if smoke else [{"lr": 0.005}, {"lr": 0.02}]
    # infinity twice: the DP-SGD loop with no noise and no clipping (same sampling, negatives over all items), and
    # DeepFusion's ordinary training (its own minibatches; negatives from warm items only)
    for eps in [*epsilons[:-1], "no-noise", "ordinary"]:
        print(f"DeepFusion epsilon={eps}", flush=True)
        if eps == "ordinary":
            dp: dict[str, Any] = {"private": False}
        elif eps == "no-noise":
            dp = {"private": True, "noise_multiplier": 0.0, "max_grad_norm": 1e6}
        else:
            dp = {"private": True, "target_epsilon": eps}

        def make_df(dp: dict[str, Any] = dp, **p: Any) -> DeepFusion:
            return DeepFusion(n_factors=16, hidden=32, epochs=df_epochs, batch_size=1024, seed=0, **dp, **p)

        best = tuned(make_df, df_grid, train, valid, test, side)
        spent = best["model"].privacy_spent_
        if eps == "ordinary":
            label = "non-private (ordinary training loop)"
        elif eps == "no-noise":
            label = "eps=inf (DP-SGD loop, no noise, no clipping)"
        else:
            label = f"eps={spent[0]:.2f}, delta={spent[1]:.1e}"
        rows.append(("DP-SGD", "DeepFusion", label, best["valid"], best["test"], str(best["params"]), best["fit_s"]))

    # ---------------------------------------------------------------- federated vs centralised
    rounds_list = [2] if smoke else [5, 10] if quick else [5, 10, 20, 40]
    base = {"n_factors": 32, "reg": 0.001, "seed": 0}
    lr = 0.05
    print("FedMF: server step on valid at 20 rounds (10 when quick)", flush=True)
    pick_rounds = 2 if smoke else 10 if quick else 20
    fed_best = tuned(
        lambda **p: FedMF(rounds=pick_rounds, local_lr=lr, **base, **p),
        [{"server_lr": s} for s in ((30.0,) if smoke else (1.0, 30.0) if quick else (10.0, 30.0, 100.0))],
        train,
        valid,
        test,
    )
    server_lr = fed_best["params"]["server_lr"]
    for rounds in rounds_list:
        t = time.perf_counter()
        fed = FedMF(rounds=rounds, local_lr=lr, server_lr=server_lr, **base).fit(train)
        fs = time.perf_counter() - t
        t = time.perf_counter()
        cen = BPR(epochs=rounds, lr=lr, **base).fit(train)
        cs = time.perf_counter() - t
        for name, model, secs in (("FedMF (610 clients, FedAvg)", fed, fs), ("BPR (centralised)", cen, cs)):
            rows.append(
                ("federated", name, f"{rounds} rounds/epochs", ndcg(model, train, valid),
                 ndcg(model, train, test, [valid]), f"server_lr={server_lr}" if "Fed" in name else "-", secs)
            )  # fmt: skip
        print(f"  rounds={rounds}: FedMF {rows[-2][4]:.4f} ({fs:.0f} s), BPR {rows[-1][4]:.4f} ({cs:.0f} s)")
    # clients as shards of users (61 users each): less dilution of each client's item update, plain FedAvg
    for rounds in rounds_list:
        t = time.perf_counter()
        shard = FedMF(rounds=rounds, clients=10, local_lr=lr, server_lr=1.0, **base).fit(train)
        secs = time.perf_counter() - t
        rows.append(
            ("federated", "FedMF (10 clients of 61 users, FedAvg)", f"{rounds} rounds", ndcg(shard, train, valid),
             ndcg(shard, train, test, [valid]), "server_lr=1 (not tuned)", secs)
        )  # fmt: skip
    if not args.no_flower:
        print("FedMF on Flower's simulation (Ray): 10 clients", flush=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = time.perf_counter()
            fl_rounds = 5 if quick else 20
            flower = FedMF(rounds=fl_rounds, clients=10, local_lr=lr, server_lr=1.0, engine="flower", **base)
            flower.fit(train)
            secs = time.perf_counter() - t
        inproc = FedMF(rounds=fl_rounds, clients=10, local_lr=lr, server_lr=1.0, **base).fit(train)
        same = float(np.abs(flower.item_factors_ - inproc.item_factors_).max())
        rows.append(
            ("federated", "FedMF on Flower simulation (10 clients)", f"{fl_rounds} rounds", ndcg(flower, train, valid),
             ndcg(flower, train, test, [valid]), f"server_lr=1; max abs difference from the in-process item factors {same:.1e}", secs)
        )  # fmt: skip

    # ---------------------------------------------------------------- table
    header = "| family | model | setting | valid NDCG@20 | test NDCG@20 | chosen on valid | fit s |"
    lines = [header, "|---|---|---|---|---|---|---|"]
    for fam, model, setting, v, te, chosen, secs in rows:
        lines.append(f"| {fam} | {model} | {setting} | {v:.4f} | {te:.4f} | {chosen} | {secs:.1f} |")
    table = "\n".join(lines)
    print(table)
    command = "python benchmarks/privacy.py --data-dir ../shared/data" + (" --quick" if quick else "")
    command += " --no-flower" if args.no_flower else ""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    notes = NOTES.format(epochs=epochs, df_epochs=df_epochs)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        f"# Privacy: NDCG@20 against epsilon, federated against centralised\n\n`{command}` -- run {now} on "
        f"{platform.machine()} Python {platform.python_version()}, 2 CPU cores shared with other jobs (times are "
        f"indicative only).\n\n{table}\n\n{notes}\n"
    )
    print(f"wrote {OUT}")


NOTES = """Notes
- Split ml-latest-small.random811 (committed), train binarised; settings chosen on valid NDCG@20 (fit on
  train), test NDCG@20 of that setting (fit on train, train and valid masked, all items ranked).
- DP rows: record-level (epsilon, delta)-DP of the learned parameters with respect to one interaction; delta =
  1/(10 n) with n = 80,650 train interactions; noise calibrated and epsilon computed by Opacus's RDP accountant;
  Poisson sampling (expected batch 1024), DPMF {epochs} epochs, DeepFusion {df_epochs} epochs at every epsilon.
  The infinity rows are the same models without clipping or noise (DPMF: identical sampling and optimiser;
  DeepFusion: the same DP-SGD loop with noise 0 and clipping norm 1e6, and its ordinary training loop, whose
  negatives come from warm items only, so items without training interactions are never pushed down).
  Choosing the setting on valid is outside the guarantee.
- Federated rows: FedMF with one client per user; each round every client runs one local BPR (Adagrad) epoch
  over its own interactions and returns its item factors; the server takes the interaction-weighted FedAvg
  mean and steps server_lr towards it; user vectors never leave the clients.  The centralised twin is
  fusionrec BPR with the same loss, optimiser, initialisation and hyper-parameters, epochs = rounds.
- The Flower row runs the same protocol through flwr.simulation.run_simulation (Ray backend, 10 clients of
  61 users, all sampled); its difference from the in-process engine is shown (float rounding).
"""


if __name__ == "__main__":
    main()
