"""Bayesian FM on the official ML-100K folds u1..u5: fusionrec BayesianFM vs myfm MyFMRegressor, plus a blend on u1.

Both libraries get the same design in the same process: one-hot user and item ids, user side
features (age bucket, gender, occupation one-hot from u.user), item side features (19 genre flags
from u.item), implicit feedback in both directions (the user's training items and the item's
training users, each scaled by 1/sqrt(count)), one hyper-prior group per block, the same rank,
n_iter and burn-in (myfm keeps the last n_iter - burn_in samples).  myfm gets the design as
relation blocks, its fastest form.  Predictions are clipped to 1..5 for both.

On u1 a WeightedBlend (non-negative least squares + intercept) of BayesianFM with fusionrec SVD /
SVD++ (when fusionrec.models.mf.svd exists), two more FM chains (rank 20 without side features, rank 32)
and the bias baseline is learned on a seeded 10% of u1.base; the members are then refitted on all of u1.base.

Run: python benchmarks/ml100k_fm.py [--data-dir ../shared/data] [--quick | --smoke]
"""

from __future__ import annotations

import importlib.util
import os
import sys
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TQDM_DISABLE", "1")  # myfm draws a tqdm bar

import numpy as np
import scipy.sparse as sps
from _common import (
    PeakRSS,
    Record,
    have_peer,
    library_version,
    ml100k_fold,
    parse_args,
    smoke_dataset,
    timed,
    write_results,
)

from fusionrec.data import Interactions
from fusionrec.data.datasets.movielens import load_ml100k
from fusionrec.evaluation import evaluate_ratings
from fusionrec.models import SideInfo

AGE_EDGES = [18, 25, 35, 45, 50, 56]  # the ML-1M age buckets
DATASET = "ml-100k"  #: "synthetic" in a smoke run without the data directory


def side_info(dataset: Any, train: Interactions) -> SideInfo:
    """User demographics (age bucket, gender, occupation one-hot; the synthetic dataset's profile columns one-hot)
    and item genre flags, aligned to the fold."""
    profile, _ = dataset.user_modalities["profile"].align(train.user_ids)
    ml = "age" in profile
    parts = [np.eye(len(AGE_EDGES) + 1)[np.digitize(profile["age"].to_numpy(), AGE_EDGES)]] if ml else []
    for col in ("gender", "occupation") if ml else profile.columns:
        values = profile[col].astype(str).to_numpy()
        parts.append((values[:, None] == np.unique(values)[None, :]).astype(np.float64))
    genres, _ = dataset.item_modalities["genres"].align(train.item_ids)
    names = sorted({g for gl in genres if gl for g in gl})
    flags = np.array([[g in (gl or ()) for g in names] for gl in genres], dtype=np.float32)
    return SideInfo(
        user_features={"demographics": np.hstack(parts).astype(np.float32)}, item_features={"genres": flags}
    )


def _implicit(m: sps.csr_matrix) -> sps.csr_matrix:
    pattern = sps.csr_matrix((np.ones(m.nnz), m.indices, m.indptr), shape=m.shape)
    counts = np.diff(m.indptr)
    return sps.csr_matrix(sps.diags(np.where(counts > 0, 1 / np.sqrt(np.maximum(counts, 1)), 0.0)) @ pattern)


def run_myfm(train: Interactions, test: Interactions, side: SideInfo, rank: int, n_iter: int, burn: int, seed: int):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import myfm
        from myfm import RelationBlock

    n_u, n_i = train.n_users, train.n_items
    ublocks = [sps.identity(n_u, format="csr"), sps.csr_matrix(side.user_features["demographics"])]
    ublocks.append(_implicit(train.matrix))
    iblocks = [sps.identity(n_i, format="csr"), sps.csr_matrix(side.item_features["genres"])]
    iblocks.append(_implicit(sps.csr_matrix(train.matrix.T)))
    groups = [b.shape[1] for b in ublocks + iblocks]
    UB = sps.csr_matrix(sps.hstack(ublocks, format="csr"), dtype=np.float64)
    IB = sps.csr_matrix(sps.hstack(iblocks, format="csr"), dtype=np.float64)

    def rel(inter: Interactions) -> list:
        return [
            RelationBlock(inter.row_indices().astype(np.int64), UB),
            RelationBlock(inter.matrix.indices.astype(np.int64), IB),
        ]

    fm = myfm.MyFMRegressor(rank=rank, random_seed=seed)
    with timed() as t_fit:
        fm.fit(
            sps.csr_matrix((train.nnz, 0)),
            train.matrix.data.astype(np.float64),
            X_rel=rel(train),
            n_iter=n_iter,
            n_kept_samples=n_iter - burn,
            group_shapes=groups,
        )
    with timed() as t_pred:
        pred = np.clip(fm.predict(sps.csr_matrix((test.nnz, 0)), X_rel=rel(test)), 1.0, 5.0)
    truth = test.matrix.data
    metrics = {"RMSE": float(np.sqrt(np.mean((pred - truth) ** 2))), "MAE": float(np.mean(np.abs(pred - truth)))}
    return metrics, t_fit["seconds"], t_pred["seconds"]


def fusionrec_record(
    name: str, model: Any, train: Interactions, test: Interactions, side: SideInfo, split: str, params
):
    with PeakRSS() as mem:
        with timed() as t_fit:
            model.fit(train, side)
        with timed() as t_pred:
            metrics = evaluate_ratings(model, test)
    metrics.pop("n", None)
    rec = Record(
        "fusionrec", library_version("fusionrec"), name, DATASET, split, params, metrics,
        t_fit["seconds"], t_pred["seconds"], mem.delta_mb,
    )  # fmt: skip
    print(
        f"{split} fusionrec {name:26s} RMSE={metrics['RMSE']:.4f} MAE={metrics['MAE']:.4f} fit={t_fit['seconds']:.1f}s"
    )
    return rec


def main() -> None:
    args = parse_args(__doc__ or "", fixed_splits="uses ML-100K's official u1..u5 folds")
    global DATASET
    folds = [1] if args.quick else [1, 2, 3, 4, 5]
    rank, n_iter, burn = 10, (10 if args.smoke else 120 if args.quick else 300), (5 if args.smoke else 30 if args.quick else 50)
    fm_params = {
        "n_factors": rank, "epochs": n_iter, "n_burn_in": burn, "seed": 0, "implicit_feedback": "both",
        "user_features": "all", "item_features": "all",
    }  # fmt: skip
    dataset = smoke_dataset() if args.data_dir is None else load_ml100k(args.data_dir / "ml-100k")
    DATASET = dataset.name if args.data_dir is None else DATASET
    peer = have_peer("myfm", args.smoke)
    records: list[Record] = []
    ratios: list[float] = []
    from fusionrec.models.mf.fm import BayesianFM

    for fold in folds:
        split = ml100k_fold(args.data_dir, fold, args.smoke)
        name = f"u{fold}"
        side = side_info(dataset, split.train)
        if fold == folds[0]:  # compile the numba kernels outside the timed runs
            BayesianFM(n_factors=2, epochs=3, n_burn_in=1, implicit_feedback="both").fit(split.train, side)
        rec = fusionrec_record("BayesianFM", BayesianFM(**fm_params), split.train, split.test, side, name, fm_params)
        records.append(rec)
        if not peer:
            continue
        with PeakRSS() as mem:
            metrics, fit_s, pred_s = run_myfm(split.train, split.test, side, rank, n_iter, burn, seed=0)
        records.append(
            Record("myfm", library_version("myfm"), "MyFMRegressor", DATASET, name,
                   {"rank": rank, "n_iter": n_iter, "n_kept_samples": n_iter - burn, "relation_blocks": True},
                   metrics, fit_s, pred_s, mem.delta_mb)
        )  # fmt: skip
        ratios.append(fit_s / rec.fit_seconds)  # type: ignore[operator]
        print(f"{name} myfm      MyFMRegressor              RMSE={metrics['RMSE']:.4f} fit={fit_s:.1f}s")

    # ------------------------------------------------------------------ blend on u1
    from fusionrec.ensemble import WeightedBlend

    split = ml100k_fold(args.data_dir, 1, args.smoke)
    side = side_info(dataset, split.train)
    members: list[dict[str, Any]] = [
        {"name": "BayesianFM", "params": fm_params},
        {"name": "BayesianFM", "params": {**fm_params, "n_factors": 20, "seed": 1, "user_features": None,
                                          "item_features": None}},
        {"name": "BayesianFM", "params": {**fm_params, "n_factors": 32, "seed": 2}},
        {"name": "BiasBaseline", "params": {}},
    ]  # fmt: skip
    if importlib.util.find_spec("fusionrec.models.mf.svd") is not None:
        members += [{"name": "SVD", "params": {}}, {"name": "SVDpp", "params": {}}]
    blend_params = {"models": members, "valid_fraction": 0.1, "seed": 0, "refit": True}
    blend = WeightedBlend(**blend_params)  # type: ignore[arg-type]
    rec = fusionrec_record("WeightedBlend", blend, split.train, split.test, side, "u1", blend_params)
    names = [
        m["name"] + (f"(rank {m['params']['n_factors']}{', no side' if m['params'].get('user_features') is None else ''})"
                     if m["name"] == "BayesianFM" else "")
        for m in members
    ]  # fmt: skip
    weights = ", ".join(f"{n}={w:.3f}" for n, w in zip(names, blend.weights_))
    rec.notes = f"weights: {weights}; intercept {blend.intercept_:.3f}; valid RMSE {blend.valid_rmse_:.4f}"
    print(rec.notes)
    records.append(rec)

    fr = [r.metrics["RMSE"] for r in records if r.library == "fusionrec" and r.model == "BayesianFM"]
    mf = [r.metrics["RMSE"] for r in records if r.library == "myfm"]
    cmd = "python benchmarks/ml100k_fm.py --data-dir ../shared/data" + (" --quick" if args.quick else "")
    notes = (
        f"Same design for both (ids + user demographics + item genres + two-way implicit feedback), rank {rank}, "
        f"{n_iter} Gibbs iterations, {burn} burn-in.  Mean RMSE over {len(folds)} fold(s): fusionrec "
        f"{np.mean(fr):.4f}, myfm {np.mean(mf):.4f}.  myfm fit time / fusionrec fit time per fold: "
        + ", ".join(f"{x:.2f}" for x in ratios)
        + f" (mean {np.mean(ratios):.2f}x; numba compiled before timing).  Blend on u1: {rec.notes}."
        + " Blend members are fitted on 90% of u1.base, weights on the other 10%, members then refitted on all of it."
    )
    write_results(
        "ml100k_fm",
        records,
        metric_columns=["RMSE", "MAE"],
        title="Bayesian FM on ML-100K u1..u5 (fusionrec vs myfm) and a blend on u1",
        command=cmd,
        notes=notes,
    )


if __name__ == "__main__":
    main()
