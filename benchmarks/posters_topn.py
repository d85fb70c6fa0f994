"""Multimodal top-N on ml-posters.random811: does content beat the best pure-CF model (tuned EASE), and for whom?

Data: ml-posters (ml-latest-small users, the 2,943 movies with a poster), split per user 8:1:1 (x_label 0
train, 1 valid, 2 test); ``--seed 2026`` is the committed split file, other seeds regenerate the split by the same
rule (benchmarks/_common.py ``benchmark_split``).  Every rating is an implicit 1.

Features, rebuilt for every split seed (no leakage: user tags come from the training pairs only,
``load_ml_posters(train=split.train)``):

* ``text``: MiniLM (all-MiniLM-L6-v2) of ``"<title (year)>. Genres: ... Tags: ..."``, standardised, ``DIM``
  principal components;
* ``poster``: EfficientNet-Lite0 of the poster, standardised, ``DIM`` principal components;
* ``words`` / ``genres``: TF-IDF of title + training tags (4096 terms) and the genre multi-hot (for CEASE-W).

Models.  Pure CF: fusionrec EASE / ALS / BPR, implicit ALS, cornac EASE (both ``posB`` settings tuned, the one
better on valid reported).  Multimodal single models: CEASE on [poster, text] and on [words, genres, poster]
(CEASE-W), ActivityCEASE on [words, genres, poster] (CEASE-W with a user-degree-weighted Gram and history IDF,
``fusionrec.models.activity``; its optional second solution for sparse users is off in these grids), HybridMF (warp,
identity + poster + text), VBPR (poster + text); peers LightFM (HybridMF's exact rows) and cornac VBPR (fusionrec VBPR's exact
content rows, no min-max rescaling, the same epochs).  ActivityCEASE is also run without content (both side weights
0: a pure-CF row) so that a reader sees how much of its gain is content.  One ensemble: RRF of the tuned CEASE,
HybridMF and ALS.

Protocol: every model's grid is tuned on valid by NDCG@20 (fit on train, train masked); a numeric value chosen
at a grid edge extends the grid (``_common.tune``).  The tuned setting is refitted on train and tested ranking
all items with train and valid masked by ``fusionrec.evaluate_ranking``; peers go through a score adapter.  The
headline model is the multimodal single model with the best VALID NDCG@20 on each seed (never picked on test);
it is compared with tuned fusionrec EASE by a paired t-test / Wilcoxon over the per-user NDCG@20 of the same
users, per seed and pooled over seeds, overall and for users with <= 20 training interactions.  Results by user
activity (training interactions <= 20 / 21-100 / > 100) and item popularity (Recall@20 pooled over the test
pairs whose item has <= 5 / 6-30 / > 30 training interactions).

Run: python benchmarks/posters_topn.py [--data-dir ../shared/data] [--seed 2026,1,2] [--quick | --smoke]
        [--models EASE,CEASE-W,ActivityCEASE] [--results NAME]

``--models`` runs only those grid families (tuned fusionrec EASE, the reference, always runs); the table and notes
go to ``benchmarks/results/<NAME>.md`` (default ``posters_topn`` / ``posters_topn_quick``; the shared
benchmarks/RESULTS.md is merged by the lead) and the records to ``benchmarks/results/<NAME>.json``.
"""

from __future__ import annotations

import itertools
import sys
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common
import numpy as np
import scipy.sparse as sp
from _common import (
    ITEM_BUCKETS,
    USER_BUCKETS,
    PeakRSS,
    Record,
    benchmark_split,
    item_bucket_recall,
    library_version,
    mean_spread,
    paired,
    parse_args,
    posters_dataset,
    release_memory,
    timed,
    tune,
    user_buckets,
    write_results,
)

from fusionrec.data import Interactions
from fusionrec.data.side import fuse_modalities
from fusionrec.evaluation import evaluate_ranking
from fusionrec.models import Recommender, SideInfo
from fusionrec.models.activity import ActivityCEASE
from fusionrec.models.hybrid import HybridMF, _normalise_rows
from fusionrec.models.linear import CEASE, EASE
from fusionrec.models.mf.als import ALS
from fusionrec.models.mf.bpr import BPR
from fusionrec.models.vbpr import VBPR

SPLIT = "ml-posters.random811"
SEED = 0  # model seed (the split seed is --seed)
DIM = 32
MODALITIES = ["poster", "text"]
WORDS = ["words", "genres", "poster"]
VBPR_EPOCHS = 30  # the same for fusionrec and cornac VBPR


def grid(**axes: list[Any]) -> list[dict[str, Any]]:
    keys = list(axes)
    return [dict(zip(keys, vals)) for vals in itertools.product(*axes.values())]


# ---------------------------------------------------------------------------------------- features
_POSTER_CACHE: dict[str, np.ndarray] = {}


def item_texts(ds: Any, ids: Any) -> tuple[list[str], list[str], list[list[str]]]:
    """Per item: the MiniLM document ``"<title>. Genres: a, b. Tags: x, y"``, the words text, the genre list."""
    title, _ = ds.item_modalities["title"].align(ids)
    genres, _ = ds.item_modalities["genres"].align(ids)
    if "tags" in ds.item_modalities:
        tags, _ = ds.item_modalities["tags"].align(ids)
    else:
        tags = [None] * len(title)
    docs, words = [], []
    for t, g, tg in zip(title, genres, tags):
        tag_list = ", ".join(x.strip() for x in (tg or "").split(" | ") if x.strip())
        parts = [t or ""]
        if g:
            parts.append("Genres: " + ", ".join(g))
        if tag_list:
            parts.append("Tags: " + tag_list)
        docs.append(". ".join(parts))
        words.append(" ".join([t or "", tag_list]))
    return docs, words, [list(g or []) for g in genres]


def load_features(
    data_dir: Path | None, split: Any, dim: int = DIM, smoke: bool = False
) -> tuple[dict[str, np.ndarray], float]:
    """``{"text", "poster", "words", "genres"}`` item features for ``split`` (tags from its training pairs); a smoke
    run encodes only the items of its slice, or without ``data_dir`` the synthetic dataset's titles and images."""
    from sklearn.decomposition import PCA

    from fusionrec.data import Modality
    from fusionrec.features import EfficientNetEncoder, PostProcess, SentenceEncoder, TfidfEncoder, encode_modality

    start = time.perf_counter()
    ds = posters_dataset(data_dir, split, smoke)
    ids = ds.item_ids
    if split.train.item_ids != ids:
        raise SystemExit("split and dataset item maps differ")
    docs, words, genres = item_texts(ds, ids)
    feats: dict[str, np.ndarray] = {}
    encoders: dict[str, tuple[Any, Any]] = {
        "text": (Modality("text", ids, docs), SentenceEncoder(batch_size=64, max_length=128)),
    }
    if "poster" in _POSTER_CACHE:
        feats["poster"] = _POSTER_CACHE["poster"]
    else:
        encoders["poster"] = (ds.item_modalities["poster"], EfficientNetEncoder(batch_size=32))
    for name, (mod, enc) in encoders.items():
        out, report = encode_modality(mod, enc, cache=True)
        arr, _ = out.align(ids)
        arr = PostProcess(method="standard").fit_transform(arr)
        feats[name] = PCA(dim, random_state=SEED).fit_transform(arr).astype(np.float32)
        print(f"{name}: {report.summary()} -> {feats[name].shape}", flush=True)
    _POSTER_CACHE["poster"] = feats["poster"]
    feats["words"] = np.asarray(TfidfEncoder(max_features=4096).fit_transform(words), dtype=np.float32)
    vocab = sorted({g for gs in genres for g in gs})
    onehot = np.zeros((len(genres), len(vocab)), dtype=np.float32)
    for r, gs in enumerate(genres):
        onehot[r, [vocab.index(g) for g in gs]] = 1.0
    feats["genres"] = onehot
    return feats, time.perf_counter() - start


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


def hybrid_feature_matrix(feats: dict[str, np.ndarray], identity: bool) -> sp.csr_matrix:
    """Exactly HybridMF's item feature rows: ``[w_i (identity), X_i]`` L2-normalised (for LightFM)."""
    x, _, _ = fuse_modalities(feats, MODALITIES, impute="mean")
    n = x.shape[0]
    w, csr = _normalise_rows(np.full(n, float(identity)), x, "l2")
    return sp.hstack([sp.diags(w), csr], format="csr") if identity else csr


def _dense(x: Any) -> np.ndarray:
    return np.asarray(x.toarray() if sp.issparse(x) else x, dtype=np.float32)


def _cornac_dataset(train: Interactions) -> Any:
    from cornac.data import Dataset

    # global maps pre-filled with our indices, so cornac's indices are ours
    uid = OrderedDict((u, u) for u in range(train.n_users))
    iid = OrderedDict((i, i) for i in range(train.n_items))
    rows = train.row_indices()
    data = list(zip(rows.tolist(), train.matrix.indices.tolist(), train.matrix.data.tolist()))
    return Dataset.build(data, global_uid_map=uid, global_iid_map=iid, seed=SEED)


# ---------------------------------------------------------------------------------------- builders
# (params, train, feats) -> fitted Recommender


def fr_als(p: dict[str, Any], train: Interactions, feats: dict[str, np.ndarray]) -> Recommender:
    return ALS(seed=SEED, epochs=15, **p).fit(train)


def fr_bpr(p: dict[str, Any], train: Interactions, feats: dict[str, np.ndarray]) -> Recommender:
    return BPR(seed=SEED, **p).fit(train)


def fr_ease(p: dict[str, Any], train: Interactions, feats: dict[str, np.ndarray]) -> Recommender:
    return EASE(reg=p["reg"]).fit(train)


def fr_cease(p: dict[str, Any], train: Interactions, feats: dict[str, np.ndarray]) -> Recommender:
    weights = {"poster": p["poster_weight"], "text": 1.0}
    model = CEASE(reg=p["reg"], side_weight=p["side_weight"], modalities=MODALITIES, modality_weights=weights)
    return model.fit(train, SideInfo(item_features=feats))


def fr_cease_words(p: dict[str, Any], train: Interactions, feats: dict[str, np.ndarray]) -> Recommender:
    weights = {"words": 1.0, "genres": p["genre_weight"], "poster": p["poster_weight"]}
    model = CEASE(reg=p["reg"], side_weight=p["side_weight"], modalities=WORDS, modality_weights=weights)
    return model.fit(train, SideInfo(item_features=feats))


def fr_activity(p: dict[str, Any], train: Interactions, feats: dict[str, np.ndarray]) -> Recommender:
    p = dict(p)
    weights = {"words": 1.0, "genres": p.pop("genre_weight"), "poster": p.pop("poster_weight")}
    model = ActivityCEASE(modalities=WORDS, modality_weights=weights, **p)
    return model.fit(train, SideInfo(item_features=feats))


def fr_activity_cf(p: dict[str, Any], train: Interactions, feats: dict[str, np.ndarray]) -> Recommender:
    """ActivityCEASE without content (both side weights 0, no side information): the pure-CF part of its gain."""
    return ActivityCEASE(side_weight=0.0, sparse_side_weight=0.0, **p).fit(train)


def fr_hybrid(p: dict[str, Any], train: Interactions, feats: dict[str, np.ndarray]) -> Recommender:
    return HybridMF(seed=SEED, item_features=MODALITIES, **p).fit(train, SideInfo(item_features=feats))


def fr_vbpr(p: dict[str, Any], train: Interactions, feats: dict[str, np.ndarray]) -> Recommender:
    p = {"epochs": VBPR_EPOCHS, **p}  # a grid may set epochs (smoke runs)
    return VBPR(seed=SEED, modalities=MODALITIES, **p).fit(train, SideInfo(item_features=feats))


def implicit_als(p: dict[str, Any], train: Interactions, feats: dict[str, np.ndarray]) -> Recommender:
    """implicit ALS with fusionrec's confidence: implicit weighs an observed entry by its stored value times
    ``alpha`` (``c = alpha * r``), so it is given fusionrec's confidence matrix ``1 + alpha * r`` and alpha 1."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    from fusionrec.models.mf.als import confidence_matrix

    p = dict(p)
    conf = confidence_matrix(train.matrix, p.pop("alpha"), True)
    m = AlternatingLeastSquares(
        factors=p.pop("n_factors"), iterations=15, use_cg=True, random_state=SEED, alpha=1.0, **p
    )
    with threadpool_limits(1, "blas"):
        m.fit(conf, show_progress=False)
    U, V = m.user_factors, m.item_factors
    return adapt(lambda u: U[u] @ V.T, train)


def cornac_ease(p: dict[str, Any], train: Interactions, feats: dict[str, np.ndarray]) -> Recommender:
    from cornac import models as cornac_models

    ds = _cornac_dataset(train)
    m = cornac_models.EASE(lamb=p["reg"], posB=p["posB"], verbose=False, seed=SEED)
    m.fit(ds)
    X, B = ds.matrix, m.B
    return adapt(lambda u: _dense(X[u] @ B), train)


def lightfm_model(p: dict[str, Any], train: Interactions, feats: dict[str, np.ndarray]) -> Recommender:
    """LightFM with HybridMF's exact feature rows; parameters mapped by name."""
    from lightfm import LightFM

    p = dict(p)
    identity = p.pop("item_identity", True)
    epochs = p.pop("epochs")
    m = LightFM(
        no_components=p.pop("n_factors"),
        loss=p.pop("loss", "warp"),
        learning_rate=p.pop("lr", 0.05),
        item_alpha=p.pop("reg_item", 0.0),
        user_alpha=p.pop("reg_user", 0.0),
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
    """cornac VBPR (torch) on fusionrec VBPR's exact content rows (``normalized=False``: no min-max rescaling)."""
    import torch
    from cornac.data import ImageModality
    from cornac.models import vbpr as cornac_vbpr_module

    torch.set_num_threads(2)
    ds = _cornac_dataset(train)
    content, _, _ = fuse_modalities(feats, MODALITIES, impute="mean")
    image = ImageModality(features=content, ids=list(range(train.n_items)), normalized=False)
    image.build(id_map=ds.iid_map)
    ds.add_modalities(item_image=image)
    p = {"n_epochs": VBPR_EPOCHS, **p}  # a grid may set n_epochs (smoke runs)
    m = cornac_vbpr_module.VBPR(verbose=False, seed=SEED, use_gpu=False, **p)
    m.fit(ds)
    return adapt(lambda u: np.vstack([m.score(int(x)) for x in u]), train)


# ---------------------------------------------------------------------------------------- grids
def grids(quick: bool, smoke: bool = False) -> dict[str, list[dict[str, Any]]]:
    if smoke:  # one setting per family, a few epochs: seconds
        return {
            "ALS": grid(n_factors=[8], reg=[10.0], alpha=[5.0]),
            "iALS": grid(n_factors=[8], regularization=[10.0], alpha=[5.0]),
            "BPR": grid(n_factors=[8], lr=[0.05], reg=[0.001], epochs=[2]),
            "EASE": grid(reg=[300.0]),
            "cornacEASE": grid(reg=[300.0], posB=[True]),
            "CEASE": grid(reg=[300.0], side_weight=[50.0], poster_weight=[0.25]),
            "CEASE-W": grid(reg=[300.0], side_weight=[50.0], genre_weight=[0.5], poster_weight=[0.25]),
            "ActivityCEASE": grid(reg=[300.0], side_weight=[50.0], genre_weight=[0.5], poster_weight=[0.25],
                                  user_power=[0.5], history_idf=[0.1], sparse_max=[0]),
            "ActivityEASE": grid(reg=[300.0], user_power=[0.5], history_idf=[0.1], sparse_max=[0]),
            "HybridMF": grid(n_factors=[8], lr=[0.05], reg_item=[0.0], reg_user=[1e-5], epochs=[2]),
            "VBPR": grid(n_factors=[8], content_factors=[8], lr=[0.05], epochs=[2]),
            "cornacVBPR": grid(k=[8], k2=[8], learning_rate=[0.005], lambda_w=[0.01], n_epochs=[2], batch_size=[2000]),
            "RRF3": grid(k=[60.0], weights=[[2.0, 1.0, 1.0]]),
        }  # fmt: skip
    if quick:
        return {
            "ALS": grid(n_factors=[64], reg=[10.0], alpha=[5.0]),
            "iALS": grid(n_factors=[64], regularization=[10.0], alpha=[5.0]),
            "BPR": grid(n_factors=[64], lr=[0.05], reg=[0.001], epochs=[50]),
            "EASE": grid(reg=[100.0, 300.0, 1000.0]),
            "cornacEASE": grid(reg=[100.0, 300.0, 1000.0], posB=[True, False]),
            "CEASE": grid(reg=[100.0, 300.0], side_weight=[50.0, 200.0], poster_weight=[0.25]),
            "CEASE-W": grid(reg=[100.0, 300.0], side_weight=[50.0, 200.0], genre_weight=[0.5], poster_weight=[0.25]),
            "ActivityCEASE": grid(
                reg=[100.0, 300.0, 1000.0],
                side_weight=[12.5, 50.0],
                genre_weight=[0.5],
                poster_weight=[0.25],
                user_power=[0.5, 0.75],
                history_idf=[0.0, 0.1],
                sparse_max=[0],
            ),
            "ActivityEASE": grid(reg=[100.0, 300.0, 1000.0], user_power=[0.5, 0.75], history_idf=[0.0, 0.1], sparse_max=[0]),
            "HybridMF": grid(n_factors=[64], lr=[0.05], reg_item=[0.0], reg_user=[1e-5], epochs=[20]),
            "VBPR": grid(n_factors=[32], content_factors=[32], lr=[0.05]),
            "cornacVBPR": grid(k=[32], k2=[32], learning_rate=[0.005], lambda_w=[0.01]),
            "RRF3": grid(k=[10.0, 60.0], weights=[[2.0, 1.0, 1.0]]),
        }
    return {
        "ALS": grid(n_factors=[32, 64], reg=[10.0], alpha=[5.0, 10.0]),
        "iALS": grid(n_factors=[32, 64], regularization=[10.0], alpha=[5.0, 10.0]),
        "BPR": grid(n_factors=[64], optimizer=["adagrad", "sgd"], lr=[0.02, 0.05, 0.1], reg=[0.001, 0.01],
                    epochs=[100]),
        "EASE": grid(reg=[30.0, 100.0, 300.0, 1000.0]),
        "cornacEASE": grid(reg=[30.0, 100.0, 300.0, 1000.0], posB=[True, False]),
        "CEASE": grid(reg=[100.0, 300.0, 1000.0], side_weight=[20.0, 100.0, 500.0], poster_weight=[0.25, 1.0]),
        "CEASE-W": grid(reg=[100.0, 300.0, 1000.0], side_weight=[20.0, 100.0, 500.0], genre_weight=[0.5],
                        poster_weight=[0.0, 0.25]),
        "ActivityCEASE": grid(reg=[100.0, 300.0, 1000.0], side_weight=[12.5, 50.0, 200.0], genre_weight=[0.5],
                              poster_weight=[0.25], user_power=[0.25, 0.5, 0.75, 1.0], history_idf=[0.0, 0.1, 0.25],
                              sparse_max=[0]),
        "ActivityEASE": grid(reg=[100.0, 300.0, 1000.0], user_power=[0.25, 0.5, 0.75, 1.0],
                             history_idf=[0.0, 0.1, 0.25], sparse_max=[0]),
        "HybridMF": grid(n_factors=[64], lr=[0.05], reg_item=[0.0, 1e-5], reg_user=[1e-5], epochs=[20]),
        "VBPR": grid(n_factors=[32], content_factors=[32], lr=[0.02, 0.05]),
        "cornacVBPR": grid(k=[32], k2=[32], learning_rate=[0.005, 0.01], lambda_w=[0.01]),
        "RRF3": grid(k=[10.0, 60.0], weights=[[1.0, 1.0, 1.0], [2.0, 1.0, 1.0]]),
    }  # fmt: skip


#: (library, label, family, builder, multimodal single model?)
ENTRIES: list[tuple[str, str, str, Callable[..., Recommender], bool]] = [
    ("fusionrec", "EASE (pure CF)", "EASE", fr_ease, False),
    ("cornac", "EASE (pure CF, posB tuned)", "cornacEASE", cornac_ease, False),
    ("fusionrec", "ALS (pure CF)", "ALS", fr_als, False),
    ("implicit", "AlternatingLeastSquares (pure CF)", "iALS", implicit_als, False),
    ("fusionrec", "BPR (pure CF)", "BPR", fr_bpr, False),
    ("fusionrec", "CEASE [poster+text]", "CEASE", fr_cease, True),
    ("fusionrec", "CEASE-W [tfidf words+genres+poster]", "CEASE-W", fr_cease_words, True),
    ("fusionrec", "ActivityCEASE [tfidf words+genres+poster]", "ActivityCEASE", fr_activity, True),
    ("fusionrec", "ActivityCEASE without content (pure CF)", "ActivityEASE", fr_activity_cf, False),
    ("fusionrec", "HybridMF warp [id+poster+text]", "HybridMF", fr_hybrid, True),
    ("lightfm", "LightFM warp [id+poster+text]", "HybridMF", lightfm_model, True),
    ("fusionrec", "VBPR [poster+text]", "VBPR", fr_vbpr, True),
    ("cornac", "VBPR (cornac) [poster+text]", "cornacVBPR", cornac_vbpr, True),  # labels key the results: unique
]
RRF_LABEL = "RRF(CEASE, HybridMF, ALS) (ensemble)"


# ---------------------------------------------------------------------------------------- run
def ndcg(model: Recommender, train: Interactions, valid: Interactions) -> float:
    return evaluate_ranking(model, train, valid, k=20, metrics=("ndcg",)).metrics["NDCG@20"]


def run_seed(
    args: Any, seed: int, spaces: dict[str, list[dict[str, Any]]], entries: list[Any]
) -> dict[str, dict[str, Any]]:
    """Tune, refit and test every entry on one split seed; returns ``{label: result}``."""
    split = benchmark_split(SPLIT, args.data_dir, seed, smoke=args.smoke)
    feats, feat_s = load_features(args.data_dir, split, smoke=args.smoke)
    train, valid, test = split.train.binarize(), split.valid.binarize(), split.test.binarize()
    print(f"seed {seed}: {split.summary()} (features {feat_s:.0f}s)", flush=True)
    out: dict[str, dict[str, Any]] = {}
    fitted: dict[str, tuple[dict[str, Any], Callable[..., Recommender]]] = {}

    def record(label: str, lib: str, params: dict[str, Any], valid_ndcg: float, fit: Callable[[], Recommender],
               notes: list[str], multimodal: bool) -> None:  # fmt: skip
        release_memory()
        with PeakRSS() as mem:
            with timed() as t_fit:
                model = fit()
            with timed() as t_pred:
                res = evaluate_ranking(
                    model, train, test, k=(10, 20), metrics=("recall", "ndcg"), exclude=[train, valid]
                )
        buckets = user_buckets(train, res.users)
        per_user = res.per_user["NDCG@20"]
        out[label] = {
            "lib": lib,
            "params": params,
            "valid": valid_ndcg,
            "metrics": {
                k: v for k, v in res.metrics.items() if k in ("NDCG@20", "Recall@20", "NDCG@10", "Coverage@20")
            },
            "users": res.users,
            "per_user": per_user,
            "buckets": {b: float(per_user[m].mean()) for b, m in buckets.items()},
            "bucket_masks": buckets,
            "items": item_bucket_recall(train, test, res.users, res.recommendations, 20),
            "fit": t_fit["seconds"],
            "predict": t_pred["seconds"],
            "mem": mem.delta_mb,
            "notes": notes,
            "multimodal": multimodal,
        }
        print(
            f"  {lib:9s} {label:40s} NDCG@20={res.metrics['NDCG@20']:.4f} valid={valid_ndcg:.4f} "
            f"<=20: {out[label]['buckets']['<=20']:.4f} fit={t_fit['seconds']:.1f}s {params}",
            flush=True,
        )

    for lib, label, family, build, multimodal in entries:
        print(f" tuning {lib} {label}", flush=True)
        best, valid_ndcg, notes = tune(spaces[family], lambda p, b=build: ndcg(b(p, train, feats), train, valid))
        if lib == "fusionrec":
            fitted[family] = (best, build)
        record(label, lib, best, valid_ndcg, lambda b=build, p=best: b(p, train, feats), notes, multimodal)  # type: ignore[misc]

    from fusionrec.ensemble.rankfusion import ReciprocalRankFusion

    fams = ["CEASE", "HybridMF", "ALS"]
    if all(f in fitted for f in fams):

        def fuse(p: dict[str, Any]) -> Recommender:
            members = [fitted[f][1](fitted[f][0], train, feats) for f in fams]
            return ReciprocalRankFusion(models=members, **p).fit_blend()

        members = [fitted[f][1](fitted[f][0], train, feats) for f in fams]
        best_p, best_v, notes = tune(
            spaces["RRF3"], lambda p: ndcg(ReciprocalRankFusion(models=members, **p).fit_blend(), train, valid)
        )
        record(RRF_LABEL, "fusionrec", {**best_p, "members": {f: fitted[f][0] for f in fams}}, best_v,
               lambda: fuse(best_p), notes, False)  # fmt: skip
    return out


def _pct(a: float, b: float) -> str:
    return f"{a / b - 1:+.1%}" if b else "n/a"


def summarise(runs: dict[int, dict[str, dict[str, Any]]]) -> tuple[list[str], dict[str, Any]]:
    """Headline lines: the valid-selected multimodal model vs tuned EASE, per seed and pooled."""
    lines: list[str] = []
    pooled_a, pooled_b, pooled_sa, pooled_sb = [], [], [], []
    gains, sparse_gains = [], []
    chosen: dict[int, str] = {}
    for seed, res in runs.items():
        mm = {k: v for k, v in res.items() if v["multimodal"]}
        pick = max(mm, key=lambda k: mm[k]["valid"])
        chosen[seed] = pick
        a, b = res[pick], res["EASE (pure CF)"]
        assert np.array_equal(a["users"], b["users"])
        sparse = a["bucket_masks"]["<=20"]
        t_all = paired(a["per_user"], b["per_user"])
        t_sparse = paired(a["per_user"][sparse], b["per_user"][sparse])
        gains.append(a["metrics"]["NDCG@20"] / b["metrics"]["NDCG@20"] - 1)
        sparse_gains.append(a["buckets"]["<=20"] / b["buckets"]["<=20"] - 1)
        pooled_a.append(a["per_user"])
        pooled_b.append(b["per_user"])
        pooled_sa.append(a["per_user"][sparse])
        pooled_sb.append(b["per_user"][sparse])
        lines.append(
            f"seed {seed}: valid-selected {pick} NDCG@20 {a['metrics']['NDCG@20']:.4f} vs EASE "
            f"{b['metrics']['NDCG@20']:.4f} ({gains[-1]:+.1%}, paired t p={t_all['t_p']:.3g}, Wilcoxon "
            f"p={t_all['wilcoxon_p']:.3g}, {t_all['n']} users); users <= 20 training interactions "
            f"{a['buckets']['<=20']:.4f} vs {b['buckets']['<=20']:.4f} ({sparse_gains[-1]:+.1%}, t p={t_sparse['t_p']:.3g}, "
            f"{t_sparse['n']} users)."
        )
    t_all = paired(np.concatenate(pooled_a), np.concatenate(pooled_b))
    t_sparse = paired(np.concatenate(pooled_sa), np.concatenate(pooled_sb))
    head = (
        f"Headline over {len(runs)} seed(s): the multimodal single model chosen on VALID beats tuned EASE by "
        f"{np.mean(gains):+.1%} NDCG@20 on test (per seed {', '.join(f'{g:+.1%}' for g in gains)}; pooled paired t "
        f"p={t_all['t_p']:.3g}, Wilcoxon p={t_all['wilcoxon_p']:.3g}) and by {np.mean(sparse_gains):+.1%} for users with "
        f"<= 20 training interactions (per seed {', '.join(f'{g:+.1%}' for g in sparse_gains)}; pooled t "
        f"p={t_sparse['t_p']:.3g}). Targets: +5% overall with p < 0.05 -> "
        f"{'met' if np.mean(gains) >= 0.05 and t_all['t_p'] < 0.05 else 'NOT met'}; +10% for users <= 20 -> "
        f"{'met' if np.mean(sparse_gains) >= 0.10 and t_sparse['t_p'] < 0.05 else 'NOT met'}."
    )
    return [head, *lines], {"gains": gains, "sparse_gains": sparse_gains, "chosen": chosen}


def _options(parser: Any) -> None:
    parser.add_argument(
        "--models",
        default="",
        help="comma-separated grid families to run (e.g. EASE,CEASE-W,ActivityCEASE); EASE always runs (default: all)",
    )
    parser.add_argument(
        "--results",
        default="",
        help="results name: benchmarks/results/<NAME>.md and .json (default posters_topn[_quick])",
    )


def select_entries(names: str, entries: list[Any]) -> list[Any]:
    """The ENTRIES whose family is in ``names`` (comma separated), tuned EASE always included."""
    if not names.strip():
        return entries
    wanted = {x.strip() for x in names.split(",") if x.strip()} | {"EASE"}
    known = {e[2] for e in ENTRIES}
    unknown = sorted(wanted - known)
    if unknown:
        raise SystemExit(f"--models: unknown families {unknown}; known: {sorted(known)}")
    return [e for e in entries if e[2] in wanted]


def versus_table(runs: dict[int, dict[str, dict[str, Any]]]) -> str:
    """Every row against tuned EASE on the same users: mean gain over seeds and the pooled paired t-test."""
    base = "EASE (pure CF)"
    seeds = list(runs)
    lines = [
        "| model vs tuned EASE | NDCG@20 gain (per seed) | pooled t p | users <=20 gain (per seed) | pooled t p (<=20) |",
        "|---|---|---|---|---|",
    ]
    for label in runs[seeds[0]]:
        if label == base:
            continue
        gains, sparse_gains, pa, pb, sa, sb = [], [], [], [], [], []
        for seed in seeds:
            a, b = runs[seed][label], runs[seed][base]
            sparse = b["bucket_masks"]["<=20"]
            gains.append(a["metrics"]["NDCG@20"] / b["metrics"]["NDCG@20"] - 1)
            sparse_gains.append(a["buckets"]["<=20"] / b["buckets"]["<=20"] - 1)
            pa.append(a["per_user"])
            pb.append(b["per_user"])
            sa.append(a["per_user"][sparse])
            sb.append(b["per_user"][sparse])
        t_all = paired(np.concatenate(pa), np.concatenate(pb))
        t_sparse = paired(np.concatenate(sa), np.concatenate(sb))
        lines.append(
            f"| {label} | {np.mean(gains):+.1%} ({', '.join(f'{g:+.1%}' for g in gains)}) | {t_all['t_p']:.3g} | "
            f"{np.mean(sparse_gains):+.1%} ({', '.join(f'{g:+.1%}' for g in sparse_gains)}) | {t_sparse['t_p']:.3g} |"
        )
    return "\n".join(lines)


def main() -> None:
    args = parse_args(__doc__ or "", extra=_options)
    warnings.filterwarnings("ignore", module="implicit")
    warnings.filterwarnings("ignore", module="lightfm")
    spaces = grids(args.quick, args.smoke)
    versions = {
        "fusionrec": library_version("fusionrec"),
        "implicit": library_version("implicit"),
        "cornac": library_version("cornac"),
        "lightfm": library_version("lightfm"),
    }
    entries = select_entries(args.models, [e for e in ENTRIES if versions[e[0]] != "not installed"])
    runs: dict[int, dict[str, dict[str, Any]]] = {}
    t0 = time.perf_counter()
    for seed in args.seeds:
        runs[seed] = run_seed(args, seed, spaces, entries)
    head, _ = summarise(runs)
    for line in head:
        print(line, flush=True)
    labels = list(runs[args.seeds[0]])
    records = []
    for label in labels:
        rs = [runs[s][label] for s in args.seeds]
        metrics: dict[str, Any] = {
            "NDCG@20": float(np.mean([r["metrics"]["NDCG@20"] for r in rs])),
            "± NDCG@20": mean_spread([r["metrics"]["NDCG@20"] for r in rs]).split("± ")[-1],
            "Recall@20": float(np.mean([r["metrics"]["Recall@20"] for r in rs])),
            "Coverage@20": float(np.mean([r["metrics"]["Coverage@20"] for r in rs])),
            "valid NDCG@20": float(np.mean([r["valid"] for r in rs])),
        }
        for _, _, b in USER_BUCKETS:
            metrics[f"users {b}"] = float(np.mean([r["buckets"][b] for r in rs]))
        for _, _, b in ITEM_BUCKETS:
            metrics[f"R@20 {b}"] = float(np.nanmean([r["items"][b] for r in rs]))
        params = {str(s): runs[s][label]["params"] for s in args.seeds}
        records.append(
            Record(rs[0]["lib"], versions[rs[0]["lib"]], label, "ml-posters" if args.data_dir else "synthetic", f"{SPLIT} seeds {args.seed}", params,
                   metrics, float(np.mean([r["fit"] for r in rs])), float(np.mean([r["predict"] for r in rs])),
                   max(r["mem"] for r in rs))
        )  # fmt: skip
    ext = sorted({f"{label}: {n}" for s in args.seeds for label in labels for n in runs[s][label]["notes"]})
    first = runs[args.seeds[0]]
    u_sizes = {b: int(m.sum()) for b, m in first["EASE (pure CF)"]["bucket_masks"].items()}
    run_fams = {e[2] for e in entries} | ({"RRF3"} if RRF_LABEL in labels else set())
    grid_lines = [f"{fam} ({len(space)} settings): {space}" for fam, space in spaces.items() if fam in run_fams]
    quick = " --quick" if args.quick else ""
    quick += f" --models {args.models}" if args.models else ""
    quick += f" --results {args.results}" if args.results else ""
    name = args.results or "posters_topn" + ("_quick" if args.quick else "")
    _common.RESULTS_MD = _common.RESULTS_DIR / f"{name}.md"  # the shared RESULTS.md is merged by the lead
    columns = ["NDCG@20", "± NDCG@20", "Recall@20", "Coverage@20", "valid NDCG@20"]
    columns += [f"users {b}" for _, _, b in USER_BUCKETS] + [f"R@20 {b}" for _, _, b in ITEM_BUCKETS]
    write_results(
        name,
        records,
        metric_columns=columns,
        title="Multimodal top-N on ml-posters.random811: content vs tuned EASE, by user activity and item popularity"
        + (" — quick grid" if args.quick else ""),
        command=f"python benchmarks/posters_topn.py --data-dir ../shared/data --seed {args.seed}{quick}",
        notes="\n\n".join(
            [
                *head,
                versus_table(runs),
                f"Metrics are means over the split seeds {args.seed} (± = half the range over seeds); every "
                "rating an implicit 1; test ranks all 2,943 items with train and valid masked. 'users <=20' etc. = "
                f"NDCG@20 of the users with that many training interactions (seed {args.seeds[0]}: {u_sizes}); "
                "'R@20 items <=5' etc. = Recall@20 pooled over the test pairs whose item has that many training "
                "interactions. Every model tuned on valid by NDCG@20 (fit on train), refitted on train, tested "
                "once; the headline model is picked per seed by valid NDCG@20 among the multimodal single models "
                f"run ({', '.join(sorted({e[2] for e in entries if e[4]}))}); the RRF ensemble and 'ActivityCEASE "
                "without content' (pure CF) are reported but not eligible. Peers: cornac EASE tuned over posB True and False (the better on valid is reported); "
                f"fusionrec and cornac VBPR both {VBPR_EPOCHS} epochs on the identical fused content rows (cornac "
                "normalized=False, no min-max rescaling); LightFM gets HybridMF's exact rows; implicit ALS and "
                "fusionrec ALS the same grid and the same confidence c = 1 + alpha*r (implicit's own is alpha*r: "
                "it is given the matrix 1 + alpha*r with alpha 1). Text features use the training tags only (no "
                f"leakage). Whole run {time.perf_counter() - t0:.0f}s. Grid extensions (a value chosen at the "
                f"edge): {'; '.join(ext) if ext else 'none'}. Grids: " + "; ".join(grid_lines),
            ]
        ),
    )


if __name__ == "__main__":
    main()
