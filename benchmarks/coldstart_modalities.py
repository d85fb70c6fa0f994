"""Which ``build_side_info`` modality carries HybridMF on the cold items of ml-posters, and does any of it leak?

Issue 10 probe: HybridMF with the weight-free default features (title and tag TF-IDF, genres, link ids, each its
own modality) scored far above the MiniLM + EfficientNet text/poster features on the cold items.  Two suspects:
user tags are behaviour (a cold test item's tags were written by the very users whose held-out interactions are
the test) and link ids (imdbId / tmdbId) grow with an item's age.  This fits HybridMF (64 factors, 20 epochs,
warp, identity on) on train + valid and ranks the cold test items, for modality subsets, with the tags built
from the training pairs only (``tags``, the library default) or from every tag (``tags_all``, the former leak).

Run: python benchmarks/coldstart_modalities.py [--data-dir ../shared/data] [--seed 2026] [--smoke]
(prints its table; ``--smoke``: 2 epochs on the smoke slice, or on the synthetic dataset's modalities without data,
and the table also goes to $FUSIONREC_BENCH_OUT/results/coldstart_modalities_smoke.md)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from _common import RESULTS_DIR, benchmark_split, parse_args, shrink_dataset, smoke_dataset

from fusionrec.data import Interactions
from fusionrec.data.datasets import load_ml_posters
from fusionrec.evaluation import evaluate_ranking
from fusionrec.features import build_side_info
from fusionrec.models import SideInfo
from fusionrec.models.hybrid import HybridMF

SUBSETS = (
    ["title", "genres", "links", "tags_all"],
    ["title", "genres", "links", "tags"],
    ["title", "genres", "tags"],
    ["links"],
    ["tags_all"],
)


def main() -> None:
    args = parse_args(__doc__ or "")
    split = benchmark_split("ml-posters.coldstart-items", args.data_dir, args.seeds[0], smoke=args.smoke)
    train, valid, test = split.train.binarize(), split.valid.binarize(), split.test.binarize()
    train_valid = Interactions.concat([train, valid])
    test_items = np.flatnonzero(test.item_counts() > 0)
    subsets: list[list[str]] = list(SUBSETS)
    if args.data_dir is None:  # a smoke run without data: the synthetic dataset's item modalities, one by one
        feats = build_side_info(smoke_dataset(), cache=True)[0].item_features
        subsets = [[name] for name in feats] + [list(feats)]
    else:
        built = {}
        for tags in ("train", "all"):
            ds = load_ml_posters(args.data_dir, train=split.train if tags == "train" else "all")
            if args.smoke:
                ds = shrink_dataset(ds, split.train.user_ids, split.train.item_ids)
            built[tags] = build_side_info(ds, encoders={"poster": None}, cache=True)[0].item_features
        feats = {**built["train"], "tags_all": built["all"]["tags"]}
    rows = []
    for names in subsets:
        model = HybridMF(n_factors=64, epochs=2 if args.smoke else 20, item_features=names, seed=0)
        model.fit(train_valid, SideInfo(item_features=feats))
        res = evaluate_ranking(
            model, train_valid, test, k=20, metrics=("ndcg",), candidates=test_items, exclude=[train_valid]
        )
        rows.append(f"| {'+'.join(names)} | {res.metrics['NDCG@20']:.4f} |")
        print(f"{'+'.join(names):32s} NDCG@20 {res.metrics['NDCG@20']:.4f}", flush=True)
    if args.smoke:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        table = "\n".join(["| modalities | NDCG@20 |", "|---|---|", *rows])
        (RESULTS_DIR / "coldstart_modalities_smoke.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
