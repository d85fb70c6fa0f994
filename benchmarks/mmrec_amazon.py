"""The MMRec protocol on the Amazon datasets (baby, sports, clothing) when their files are in the data directory.

Looks for ``<data-dir>/<name>/<name>.inter`` (or ``<data-dir>/mmrec/<name>/...``) with ``image_feat.npy`` and
``text_feat.npy`` (MMRec's processed files: 4096-d VGG image and 384-d sentence-transformer text features,
x_label 0/1/2 = the 8:1:1 per-user split).  Protocol as MMRec: models fitted on train; hyper-parameters
chosen on valid by Recall@20; test ranks all items with the user's *training* items masked; every test
interaction relevant; Recall / NDCG at 10 and 20.  Published FREEDOM figures (Zhou & Shen, MM 2023) sit
beside the table where the issue quotes them (Baby: Recall@20 .0992, NDCG@20 .0424).

Models: fusionrec GraphFusion (LightGCN on the user-item graph + per-modality item kNN graphs, the FREEDOM /
LATTICE family), VBPR, CEASE (EASE + feature Gram), and the pure-CF ALS and EASE for reference.

When no dataset is present the script says so and writes nothing (the table stays as last measured); ``--smoke``
then writes the smoke-size synthetic dataset in MMRec's format under $FUSIONREC_BENCH_OUT and runs on that.
Run: python benchmarks/mmrec_amazon.py [--data-dir ../shared/data] [--quick | --smoke] [--names baby sports clothing]
"""

from __future__ import annotations

import itertools
import sys
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    RESULTS_DIR,
    PeakRSS,
    Record,
    library_version,
    parse_args,
    random811,
    smoke_dataset,
    timed,
    write_results,
)

from fusionrec.data import Interactions
from fusionrec.evaluation import evaluate_ranking
from fusionrec.models import Recommender, SideInfo

NAMES = ["baby", "sports", "clothing"]
METRICS = ["Recall@10", "Recall@20", "NDCG@10", "NDCG@20", "valid Recall@20"]
#: the figures the issue quotes (FREEDOM, Zhou & Shen 2023, Table 2), by dataset
PUBLISHED = {"baby": {"Recall@20": 0.0992, "NDCG@20": 0.0424}}


def grid(**axes: list[Any]) -> list[dict[str, Any]]:
    keys = list(axes)
    return [dict(zip(keys, vals)) for vals in itertools.product(*axes.values())]


def find(data_dir: Path, name: str) -> Path | None:
    for root in (data_dir / name, data_dir / "mmrec" / name, data_dir / "mmrec" / "data" / name):
        if (root / f"{name}.inter").is_file():
            return root
    return None


def write_smoke_mmrec(root: Path, name: str = "synthetic") -> Path:
    """The smoke-size synthetic dataset in MMRec's format (``<name>.inter`` with x_label from the random811 rule;
    ``image_feat.npy`` / ``text_feat.npy``: noisy views of the planted item factors) in ``root / name``."""
    import numpy as np
    import pandas as pd

    ds = smoke_dataset()
    split = random811(ds.interactions, 0, name)
    rows = []
    for label, part in enumerate((split.train, split.valid, split.test)):
        rows.append(pd.DataFrame({"userID": part.row_indices(), "itemID": part.matrix.indices, "x_label": label}))
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    pd.concat(rows).to_csv(folder / f"{name}.inter", sep="\t", index=False)
    q = ds.meta["truth"].item_factors
    rng = np.random.default_rng(0)
    for kind, width in (("image", 32), ("text", 16)):
        view = q @ rng.standard_normal((q.shape[1], width)) + 0.5 * rng.standard_normal((q.shape[0], width))
        np.save(folder / f"{kind}_feat.npy", view.astype(np.float32))
    return folder


def grids(quick: bool, smoke: bool = False) -> dict[str, list[dict[str, Any]]]:
    if smoke:
        return {
            "ALS": grid(n_factors=[8], reg=[1.0], alpha=[10.0], epochs=[2]),
            "EASE": grid(reg=[300.0]),
            "CEASE": grid(reg=[300.0], side_weight=[50.0]),
            "VBPR": grid(n_factors=[8], content_factors=[8], lr=[0.01], epochs=[1]),
            "GraphFusion": grid(n_factors=[8], knn_k=[10], epochs=[1], lr=[5e-3]),
        }
    if quick:
        return {
            "ALS": grid(n_factors=[64], reg=[1.0], alpha=[10.0]),
            "EASE": grid(reg=[300.0]),
            "CEASE": grid(reg=[300.0], side_weight=[50.0]),
            "VBPR": grid(n_factors=[32], content_factors=[32], lr=[0.01], epochs=[10]),
            "GraphFusion": grid(n_factors=[64], knn_k=[10], epochs=[5], lr=[5e-3]),
        }
    return {
        "ALS": grid(n_factors=[64, 128], reg=[1.0, 10.0], alpha=[10.0]),
        "EASE": grid(reg=[100.0, 300.0, 1000.0]),
        "CEASE": grid(reg=[100.0, 300.0, 1000.0], side_weight=[20.0, 100.0]),
        "VBPR": grid(n_factors=[64], content_factors=[64], lr=[0.005, 0.01], epochs=[40]),
        "GraphFusion": grid(n_factors=[64], knn_k=[10], epochs=[40], lr=[1e-3, 5e-3]),
    }


def build(family: str, p: dict[str, Any], train: Interactions, side: SideInfo) -> Recommender:
    from fusionrec.models import make_model

    if family in ("ALS", "EASE"):
        return make_model(family, **p).fit(train)
    return make_model(family, **p).fit(train, side)


def main() -> None:
    def extra(p: Any) -> None:
        p.add_argument("--names", nargs="+", default=NAMES, help="MMRec dataset names to look for")

    args = parse_args(__doc__ or "", extra, fixed_splits="uses the MMRec processed split (x_label) of each dataset")
    warnings.filterwarnings("ignore", category=UserWarning)
    from fusionrec.data.datasets.mmrec import load_mmrec

    found = {n: find(args.data_dir, n) if args.data_dir else None for n in args.names}
    present = {n: p for n, p in found.items() if p is not None}
    if not present and args.smoke:
        print("smoke: no MMRec dataset, the synthetic one written in MMRec's format", flush=True)
        present = {"synthetic": write_smoke_mmrec(RESULTS_DIR / "mmrec_smoke")}
    if not present:
        print(
            f"no MMRec dataset ({', '.join(args.names)}) under {args.data_dir}: put <name>/<name>.inter with "
            "image_feat.npy and text_feat.npy there (MMRec's processed Amazon files); nothing measured"
        )
        return
    spaces = grids(args.quick, args.smoke)
    version = library_version("fusionrec")
    records: list[Record] = []
    for name, root in present.items():
        ds, split = load_mmrec(root, name)
        train, valid, test = split.train, split.valid, split.test
        if valid is None:
            raise SystemExit(f"{root}/{name}.inter has no valid rows (x_label 1); MMRec tunes on them")
        feats = {m: ds.item_features(m)[0] for m in ds.item_modalities}
        side = SideInfo(item_features=feats)
        print(f"{name}: {train.n_users} users, {train.n_items} items, modalities {sorted(feats)}", flush=True)
        for family, space in spaces.items():
            best, best_valid = space[0], -1.0
            for p in space:
                model = build(family, p, train, side)
                r20 = evaluate_ranking(model, train, valid, k=20, metrics=("recall",)).metrics["Recall@20"]
                print(f"    {family} {p} valid Recall@20={r20:.4f}", flush=True)
                if r20 > best_valid:
                    best, best_valid = p, r20
            with PeakRSS() as mem:
                with timed() as t_fit:
                    model = build(family, best, train, side)
                with timed() as t_pred:
                    res = evaluate_ranking(model, train, test, k=(10, 20), metrics=("recall", "ndcg"))
            metrics = {k: v for k, v in res.metrics.items() if k in METRICS}
            metrics["valid Recall@20"] = best_valid
            label = family + (" (pure CF)" if family in ("ALS", "EASE") else " [image+text]")
            records.append(
                Record("fusionrec", version, label, name, f"{name}.mmrec", best, metrics,
                       t_fit["seconds"], t_pred["seconds"], mem.delta_mb)
            )  # fmt: skip
            print(f"{name} {label:28s} R@20={metrics['Recall@20']:.4f} N@20={metrics['NDCG@20']:.4f}", flush=True)
        for key, published in PUBLISHED.items():
            if key == name:
                records.append(
                    Record("FREEDOM (published)", "paper", "FREEDOM", name, f"{name}.mmrec", {}, dict(published))
                )
    write_results(
        "mmrec_amazon" + ("_quick" if args.quick else ""),
        records,
        metric_columns=METRICS,
        title="MMRec protocol on the Amazon datasets" + (" — quick grid" if args.quick else ""),
        command="python benchmarks/mmrec_amazon.py --data-dir ../shared/data" + (" --quick" if args.quick else ""),
        notes=(
            "MMRec's processed files and split (x_label); tuned on valid Recall@20, tested with the training items "
            "masked, all items ranked. 'FREEDOM (published)' rows are the paper's figures, not a run here. Grids: "
            + "; ".join(f"{f} ({len(s)})" for f, s in spaces.items())
        ),
    )


if __name__ == "__main__":
    main()
