"""Multimodal top-N on ml-posters.random811: CEASE / HybridMF / VBPR / rank fusion vs ALS, EASE, cornac VBPR, LightFM.

Data: ml-posters (ml-latest-small users with posters, titles, genres and tags), split random 8:1:1
(x_label 0 train, 1 valid, 2 test).  Every rating is an implicit 1 (train binarised; every valid/test
interaction relevant).

Features (the same matrices for every library): text = title + genres + tags embedded by MiniLM
(all-MiniLM-L6-v2, 384-d), poster = EfficientNet-Lite0 (1280-d); both through the fusionrec feature cache,
standardised per dimension and reduced to ``DIM`` principal components each (unsupervised, over all items).
CEASE gets the same two feature blocks (per-modality L2, poster weight tuned).  The factor models get
``fuse_modalities`` rows (per-modality L2 normalisation) and, for HybridMF / LightFM, the
identity column, every row L2-normalised: LightFM receives exactly ``[diag(w), X]``.

Protocol: each model's grid (equal sizes within a family) is tuned on valid by NDCG@20 (fit on train, train
masked); the best setting is refitted on train and tested ranking all items with train and valid masked, by
the one fusionrec ``evaluate_ranking`` (peers through a score adapter).  The rank-fusion row fuses the tuned
fusionrec ALS and HybridMF (members fitted on train; RRF ``k`` and weights tuned on valid).

Run: python benchmarks/posters_topn.py [--data-dir ../shared/data] [--quick]
"""

from __future__ import annotations

import gc
import itertools
import sys
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import scipy.sparse as sp
from _common import PeakRSS, Record, library_version, parse_args, timed, write_results

from fusionrec.data import Interactions
from fusionrec.data.side import fuse_modalities
from fusionrec.evaluation import evaluate_ranking
from fusionrec.models import Recommender, SideInfo
from fusionrec.models.hybrid import HybridMF, _normalise_rows
from fusionrec.models.linear import CEASE, EASE
from fusionrec.models.mf.als import ALS
from fusionrec.models.mf.bpr import BPR
from fusionrec.models.vbpr import VBPR

SPLIT = "ml-posters.random811"
METRICS = ["Recall@20", "NDCG@20", "Recall@10", "NDCG@10", "valid NDCG@20"]
SEED = 0
DIM = 32
MODALITIES = ["poster", "text"]


def grid(**axes: list[Any]) -> list[dict[str, Any]]:
    keys = list(axes)
    return [dict(zip(keys, vals)) for vals in itertools.product(*axes.values())]


# ---------------------------------------------------------------------------------------- features
def load_features(data_dir: Path, split_name: str, dim: int = DIM) -> tuple[Any, dict[str, np.ndarray], float]:
    """The split and ``{"text", "poster"}`` item features (cached encoders, standardised, PCA to ``dim``)."""
    from sklearn.decomposition import PCA

    from fusionrec.data import Modality
    from fusionrec.data.datasets import load_benchmark_split, load_ml_posters
    from fusionrec.features import EfficientNetEncoder, PostProcess, SentenceEncoder, encode_modality

    start = time.perf_counter()
    split = load_benchmark_split(split_name, data_dir)
    ds = load_ml_posters(data_dir)
    ids = ds.item_ids
    if split.train.item_ids != ids:
        raise SystemExit("split and dataset item maps differ")
    title, _ = ds.item_modalities["title"].align(ids)
    genres, _ = ds.item_modalities["genres"].align(ids)
    tags, _ = ds.item_modalities["tags"].align(ids)
    texts = [
        " ".join([t or "", " ".join(g or []), (tg or "").replace(" | ", " ")]).strip()
        for t, g, tg in zip(title, genres, tags)
    ]
    encoders = {
        "text": (Modality("text", ids, texts), SentenceEncoder(batch_size=64, max_length=128)),
        "poster": (ds.item_modalities["poster"], EfficientNetEncoder(batch_size=32)),
    }
    feats: dict[str, np.ndarray] = {}
    for name, (mod, enc) in encoders.items():
        out, report = encode_modality(mod, enc, cache=True)
        arr, _ = out.align(ids)
        arr = PostProcess("standard").fit_transform(arr)
        feats[name] = PCA(dim, random_state=SEED).fit_transform(arr).astype(np.float32)
        print(f"{name}: {report.summary()} -> {feats[name].shape}", flush=True)
    return split, feats, time.perf_counter() - start


class ScoreAdapter(Recommender):
    """Wraps a peer's scoring function ``users -> float [U, n_items]`` so the one evaluator scores it."""

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        self.fn = fn

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        assert self.fn is not None
        s = np.asarray(self.fn(np.asarray(users, dtype=np.int64)), dtype=np.float32)
        return s if items is None else s[:, items]


def adapt(fn: Callable[[np.ndarray], np.ndarray], train: Interactions) -> Recommender:
    m = ScoreAdapter(fn)
    m.n_users_, m.n_items_, m.seen_ = train.n_users, train.n_items, train.matrix
    return m


def release_memory() -> None:
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def hybrid_feature_matrix(feats: dict[str, np.ndarray], identity: bool) -> sp.csr_matrix:
    """Exactly HybridMF's item feature rows: ``[w_i (identity), X_i]`` L2-normalised (for LightFM)."""
    x, _, _ = fuse_modalities(feats, MODALITIES, impute="mean")
    n = x.shape[0]
    w, csr = _normalise_rows(np.full(n, float(identity)), x, "l2")
    return sp.hstack([sp.diags(w), csr], format="csr") if identity else csr


# ---------------------------------------------------------------------------------------- builders
# (params, train, feats) -> fitted Recommender


def fr_als(p: dict[str, Any], train: Interactions, feats: dict[str, np.ndarray]) -> Recommender:
    return ALS(seed=SEED, iterations=15, **p).fit(train)


def fr_bpr(p: dict[str, Any], train: Interactions, feats: dict[str, np.ndarray]) -> Recommender:
    return BPR(seed=SEED, **p).fit(train)


def fr_ease(p: dict[str, Any], train: Interactions, feats: dict[str, np.ndarray]) -> Recommender:
    return EASE(reg=p["reg"]).fit(train)


def fr_cease(p: dict[str, Any], train: Interactions, feats: dict[str, np.ndarray]) -> Recommender:
    weights = {"poster": p["poster_weight"], "text": 1.0}
    model = CEASE(reg=p["reg"], side_weight=p["side_weight"], modality_weights=weights)
    return model.fit(train, SideInfo(item_features=feats))


def fr_hybrid(p: dict[str, Any], train: Interactions, feats: dict[str, np.ndarray]) -> Recommender:
    return HybridMF(seed=SEED, item_features=MODALITIES, **p).fit(train, SideInfo(item_features=feats))


def fr_vbpr(p: dict[str, Any], train: Interactions, feats: dict[str, np.ndarray]) -> Recommender:
    return VBPR(seed=SEED, modalities=MODALITIES, **p).fit(train, SideInfo(item_features=feats))


def implicit_als(p: dict[str, Any], train: Interactions, feats: dict[str, np.ndarray]) -> Recommender:
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    p = dict(p)
    m = AlternatingLeastSquares(factors=p.pop("n_factors"), iterations=15, use_cg=True, random_state=SEED, **p)
    with threadpool_limits(1, "blas"):
        m.fit(train.matrix, show_progress=False)
    U, V = m.user_factors, m.item_factors
    return adapt(lambda u: U[u] @ V.T, train)


def lightfm_model(p: dict[str, Any], train: Interactions, feats: dict[str, np.ndarray]) -> Recommender:
    """LightFM with HybridMF's exact feature rows; parameters mapped by name."""
    from lightfm import LightFM

    p = dict(p)
    identity = p.pop("item_identity", True)
    epochs = p.pop("epochs")
    m = LightFM(
        no_components=p.pop("n_factors"),
        loss=p.pop("loss", "warp"),
        learning_rate=p.pop("learning_rate", 0.05),
        item_alpha=p.pop("item_alpha", 0.0),
        user_alpha=p.pop("user_alpha", 0.0),
        max_sampled=p.pop("max_sampled", 10),
        random_state=SEED,
    )
    if p:
        raise SystemExit(f"unmapped LightFM parameters {p}")
    item_x = hybrid_feature_matrix(feats, identity)
    m.fit(train.matrix.tocoo(), item_features=item_x, epochs=epochs, num_threads=2)
    ib, iv = m.get_item_representations(item_x)
    ub, uv = m.get_user_representations()
    return adapt(lambda u: uv[u] @ iv.T + ib[None, :] + ub[u][:, None], train)


def cornac_vbpr(p: dict[str, Any], train: Interactions, feats: dict[str, np.ndarray]) -> Recommender:
    """cornac VBPR (torch) on VBPR's exact content rows."""
    import torch
    from cornac.data import Dataset, ImageModality
    from cornac.models import vbpr as cornac_vbpr_module

    torch.set_num_threads(2)
    uid = OrderedDict((u, u) for u in range(train.n_users))
    iid = OrderedDict((i, i) for i in range(train.n_items))
    rows = train.row_indices()
    data = list(zip(rows.tolist(), train.matrix.indices.tolist(), train.matrix.data.tolist()))
    ds = Dataset.build(data, global_uid_map=uid, global_iid_map=iid, seed=SEED)
    content, _, _ = fuse_modalities(feats, MODALITIES, impute="mean")
    image = ImageModality(features=content, ids=list(range(train.n_items)), normalized=True)
    image.build(id_map=ds.iid_map)
    ds.add_modalities(item_image=image)
    m = cornac_vbpr_module.VBPR(verbose=False, seed=SEED, use_gpu=False, **p)
    m.fit(ds)
    return adapt(lambda u: np.vstack([m.score(int(x)) for x in u]), train)


# ---------------------------------------------------------------------------------------- run
def ndcg(model: Recommender, train: Interactions, valid: Interactions) -> float:
    return evaluate_ranking(model, train, valid, k=20, metrics=("ndcg",)).metrics["NDCG@20"]


def tune(
    build: Callable[..., Recommender],
    space: list[dict[str, Any]],
    train: Interactions,
    valid: Interactions,
    feats: dict[str, np.ndarray],
) -> tuple[dict[str, Any], float, Recommender]:
    best, best_ndcg, best_model = space[0], -1.0, None
    for p in space:
        model = build(p, train, feats)
        score = ndcg(model, train, valid)
        print(f"    {p} valid NDCG@20={score:.4f}", flush=True)
        if score > best_ndcg:
            best, best_ndcg, best_model = p, score, model
    assert best_model is not None
    return best, best_ndcg, best_model


def grids(quick: bool) -> dict[str, list[dict[str, Any]]]:
    if quick:
        return {
            "ALS": grid(n_factors=[32], regularization=[10.0], alpha=[5.0]),
            "BPR": grid(n_factors=[32], learning_rate=[0.05], regularization=[0.01], epochs=[30]),
            "HybridMF": grid(n_factors=[32], learning_rate=[0.05], item_alpha=[1e-5], user_alpha=[1e-5], epochs=[5]),
            "VBPR": grid(n_factors=[16], content_factors=[16], learning_rate=[0.05], epochs=[10]),
            "cornacVBPR": grid(k=[16], k2=[16], learning_rate=[0.01], lambda_w=[0.01], n_epochs=[5]),
            "RRF": grid(k=[60.0], weights=[[1.0, 1.0]]),
            "RRF3": grid(k=[10.0], weights=[[2.0, 1.0, 1.0]]),
            "EASE": grid(reg=[300.0]),
            "CEASE": grid(reg=[300.0], side_weight=[50.0], poster_weight=[1.0]),
        }
    return {
        "ALS": grid(n_factors=[32, 64], regularization=[10.0], alpha=[5.0, 10.0]),
        "BPR": grid(n_factors=[64], learning_rate=[0.05], regularization=[0.001, 0.01], epochs=[50, 100]),
        "HybridMF": grid(n_factors=[64], learning_rate=[0.05], item_alpha=[0.0, 1e-5], user_alpha=[1e-5], epochs=[20]),
        "VBPR": grid(n_factors=[32], content_factors=[32], learning_rate=[0.01, 0.05], epochs=[40]),
        "cornacVBPR": grid(k=[32], k2=[32], learning_rate=[0.005, 0.01], lambda_w=[0.01], n_epochs=[20]),
        "RRF": grid(k=[10.0, 60.0], weights=[[1.0, 1.0], [1.0, 2.0]]),
        "RRF3": grid(k=[10.0, 60.0], weights=[[1.0, 1.0, 1.0], [2.0, 1.0, 1.0]]),
        "EASE": grid(reg=[30.0, 100.0, 300.0, 1000.0]),
        "CEASE": grid(reg=[30.0, 100.0, 300.0], side_weight=[10.0, 50.0, 200.0], poster_weight=[0.25, 1.0]),
    }


def main() -> None:
    args = parse_args(__doc__ or "")
    warnings.filterwarnings("ignore", module="implicit")
    warnings.filterwarnings("ignore", module="lightfm")
    spaces = grids(args.quick)
    split, feats, feat_s = load_features(args.data_dir, SPLIT)
    train, valid, test = split.train.binarize(), split.valid.binarize(), split.test.binarize()
    fr = library_version("fusionrec")
    versions = {"implicit": library_version("implicit"), "cornac": library_version("cornac")}
    notes: list[str] = []
    try:
        import lightfm  # noqa: F401

        versions["lightfm"] = library_version("lightfm")
        has_lightfm = True
    except ImportError:
        has_lightfm = False
        notes.append("LightFM is not installed (its sdist fails to build here): no LightFM row.")
    # warm the numba caches outside the timed runs
    ALS(n_factors=4, iterations=1).fit(train)
    BPR(n_factors=4, epochs=1).fit(train)
    HybridMF(n_factors=4, epochs=1).fit(train, SideInfo(item_features=feats))
    VBPR(n_factors=4, content_factors=4, epochs=1).fit(train, SideInfo(item_features=feats))
    entries: list[tuple[str, str, str, Callable[..., Recommender]]] = [
        ("fusionrec", "ALS (pure CF)", "ALS", fr_als),
        ("implicit", "AlternatingLeastSquares (pure CF)", "ALS", implicit_als),
        ("fusionrec", "BPR (pure CF)", "BPR", fr_bpr),
        ("fusionrec", "EASE (pure CF)", "EASE", fr_ease),
        ("fusionrec", "CEASE [poster+text]", "CEASE", fr_cease),
        ("fusionrec", "HybridMF warp [id+poster+text]", "HybridMF", fr_hybrid),
    ]
    if has_lightfm:
        entries.append(("lightfm", "LightFM warp [id+poster+text]", "HybridMF", lightfm_model))
    entries += [
        ("fusionrec", "VBPR [poster+text]", "VBPR", fr_vbpr),
        ("cornac", "VBPR [poster+text]", "cornacVBPR", cornac_vbpr),
    ]
    records: list[Record] = []
    tuned: dict[str, tuple[dict[str, Any], Recommender, float]] = {}

    def run(lib: str, label: str, params: dict[str, Any], valid_ndcg: float, fit: Callable[[], Recommender]) -> None:
        release_memory()
        with PeakRSS() as mem:
            with timed() as t_fit:
                model = fit()
            with timed() as t_pred:
                res = evaluate_ranking(
                    model, train, test, k=(10, 20), metrics=("recall", "ndcg"), exclude=[train, valid]
                )
        metrics = {k: v for k, v in res.metrics.items() if k in METRICS}
        metrics["valid NDCG@20"] = valid_ndcg
        version = fr if lib == "fusionrec" else versions[lib]
        records.append(
            Record(lib, version, label, "ml-posters", SPLIT, params, metrics, t_fit["seconds"], t_pred["seconds"], mem.delta_mb)
        )  # fmt: skip
        print(
            f"{lib:9s} {label:38s} NDCG@20={metrics['NDCG@20']:.4f} R@20={metrics['Recall@20']:.4f} "
            f"valid={valid_ndcg:.4f} fit={t_fit['seconds']:.1f}s peak={mem.delta_mb}MB {params}",
            flush=True,
        )

    for lib, label, family, build in entries:
        print(f"tuning {lib} {label}", flush=True)
        best, valid_ndcg, model = tune(build, spaces[family], train, valid, feats)
        if lib == "fusionrec":
            tuned[family] = (best, model, valid_ndcg)
        run(lib, label, best, valid_ndcg, lambda b=build, p=best: b(p, train, feats))  # type: ignore[misc]

    # rank fusions of tuned fusionrec models (members fitted on train; k and weights tuned on valid)
    from fusionrec.ensemble.rankfusion import ReciprocalRankFusion

    builders = {"ALS": fr_als, "HybridMF": fr_hybrid, "CEASE": fr_cease}

    def rank_fusion(label: str, space: str, families: list[str]) -> None:
        members = [tuned[f][1] for f in families]
        best_p, best_score = spaces[space][0], -1.0
        for p in spaces[space]:
            score = ndcg(ReciprocalRankFusion(models=members, **p).fit_blend(), train, valid)
            print(f"    {space} {p} valid NDCG@20={score:.4f}", flush=True)
            if score > best_score:
                best_p, best_score = p, score
        params = {f: tuned[f][0] for f in families}

        def fit() -> Recommender:
            fresh = [builders[f](params[f], train, feats) for f in families]
            return ReciprocalRankFusion(models=fresh, **best_p).fit_blend()

        run("fusionrec", label, {**best_p, "members": params}, best_score, fit)

    rank_fusion("RRF(ALS, HybridMF)", "RRF", ["ALS", "HybridMF"])
    # CEASE brings behaviour + content in one closed form
    rank_fusion("RRF(CEASE, HybridMF, ALS)", "RRF3", ["CEASE", "HybridMF", "ALS"])

    cf = max(r.metrics["NDCG@20"] for r in records if "pure CF" in r.model)
    best_fr = max(
        (r for r in records if r.library == "fusionrec" and "pure CF" not in r.model),
        key=lambda r: r.metrics["NDCG@20"],
    )
    peers = max((r.metrics["NDCG@20"] for r in records if r.library != "fusionrec"), default=float("nan"))
    summary = (
        f"Best fusionrec multimodal model: {best_fr.model}, NDCG@20 {best_fr.metrics['NDCG@20']:.4f} = "
        f"{best_fr.metrics['NDCG@20'] / cf - 1:+.1%} vs the best pure-CF model ({cf:.4f}) and "
        f"{best_fr.metrics['NDCG@20'] / peers - 1:+.1%} vs the best peer ({peers:.4f})."
    )
    print(summary, flush=True)
    grid_lines = [
        f"{fam} ({len(space)}): " + " x ".join(f"{k} {[p[k] for p in space][:4]}" for k in space[0])
        for fam, space in spaces.items()
    ]
    write_results(
        "posters_topn" + ("_quick" if args.quick else ""),
        records,
        metric_columns=METRICS,
        title="Multimodal top-N on ml-posters.random811 (posters + titles/genres/tags + behaviour)"
        + (" — quick grid" if args.quick else ""),
        command="python benchmarks/posters_topn.py --data-dir ../shared/data" + (" --quick" if args.quick else ""),
        notes=(
            summary + " Every rating is an implicit 1. Features: text = MiniLM of title + genres + tags, poster = "
            f"EfficientNet-Lite0, each standardised and reduced to {DIM} principal components (feature cache; "
            f"loading took {feat_s:.0f}s); HybridMF and LightFM get the identical rows [identity, poster, text] "
            "(per-modality L2, row L2), fusionrec and cornac VBPR the identical content rows. Each grid tuned on "
            "valid by NDCG@20 (fit on train), best refitted on train and tested with train+valid masked by the one "
            "fusionrec evaluator. LightFM 1.17 was built from its sdist with its setup.py patched "
            "(`__builtins__.__LIGHTFM_SETUP__` fails under modern setuptools) and runs 2 OpenMP threads; fusionrec "
            "HybridMF/VBPR run 1 thread (deterministic). RRF = ReciprocalRankFusion of the tuned fusionrec ALS and "
            "HybridMF (k and weights tuned on valid); its fit time is both members'; RRF3 likewise fuses the tuned "
            "CEASE, HybridMF and ALS. CEASE = EASE whose Gram matrix "
            "adds side_weight x the content-similarity Gram of the same text and poster rows (collective EASE). Grids: "
            + "; ".join(grid_lines)
            + ". "
            + " ".join(notes)
        ),
    )


if __name__ == "__main__":
    main()
