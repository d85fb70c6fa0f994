"""Fast fit recipes for every registered model, for the registry-wide contract suites (declaration, forgetting,
declared parameter ranges, clone).

All of them fit on one small dataset whose sizes differ from every other size the models use (61 users, 43 items;
feature widths 8..209, factors 3..6), so that an axis of length 61 (43) is a user (item) axis.  The data are the
synthetic dataset with its side information (item features, a user profile, trust links, item texts) and
timestamps; user :data:`FORGET_USER` is replaced by one with a distinctive raw id and a distinctive, non-monotone
history of six items (what the forgetting suite searches the saved files for).

A model added to :data:`fusionrec.models.registry.MODELS` without a recipe here fails those suites: add one (small,
fast parameters; more than one variant when another configuration holds other learned state).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from fusionrec.data import IdMap, Interactions
from fusionrec.models import Recommender, SideInfo
from fusionrec.models.registry import MODELS, get_model_class

N_USERS, N_ITEMS = 61, 43
#: the user the forgetting suite forgets: its raw id and its history (item indices in time order) are distinctive
FORGET_USER = 17
FORGET_RAW = "forget-me-7f3a"
FORGET_HISTORY = (30, 2, 25, 11, 38, 7)
FORGET_RATINGS = (5.0, 1.0, 4.0, 2.0, 5.0, 3.0)

# ALS's reg weighs the whole log (Hu et al.): its default (10, chosen on ml-100k) shrinks every factor on these 61
# users, so the recipe uses a weight in proportion to this log's size (as PMF's below)
_ALS = {"name": "ALS", "params": {"n_factors": 4, "epochs": 2, "reg": 0.5, "seed": 0}}
_BPR = {"name": "BPR", "params": {"n_factors": 4, "epochs": 3, "seed": 1}}
_SEQ = {"name": "GRU4Rec", "params": {"n_factors": 6, "epochs": 1, "max_len": 5, "seed": 0}}
_TORCH = {"n_factors": 6, "epochs": 2, "batch_size": 64, "seed": 0}

#: name -> parameter sets (the first is the main recipe; the others cover configurations holding other state),
#: in the one vocabulary (``epochs``, ``lr``, ``reg``, ``n_factors``)
RECIPES: dict[str, list[dict[str, Any]]] = {
    "MostPopular": [{}],
    "Random": [{"seed": 0}],
    "BiasBaseline": [{"epochs": 3}],
    "UserKNN": [{}],
    "ItemKNN": [{}],
    "KNNBaseline": [{"epochs": 2}, {"epochs": 2, "user_based": True}],
    "SVD": [{"n_factors": 4, "epochs": 3, "seed": 0}],
    "SVDpp": [{"n_factors": 4, "epochs": 2, "seed": 0}, {"n_factors": 4, "epochs": 2, "implicit": "both", "seed": 0}],
    "TimeSVDpp": [
        {"n_factors": 4, "epochs": 2, "n_bins": 3, "seed": 0},
        {"n_factors": 4, "epochs": 2, "n_bins": 3, "implicit": "both", "seed": 0},
    ],
    "NMF": [{"n_factors": 4, "epochs": 3, "seed": 0}, {"n_factors": 4, "epochs": 3, "biased": True, "seed": 0}],
    # PMF's reg_user/reg_item weigh the whole log (not each rating): the defaults (10) suit ml-100k, but on these
    # 61 users they shrink every factor to zero within 40 epochs (every score the global mean), so the recipe
    # uses a weight in proportion to this log's size
    "PMF": [{"n_factors": 4, "epochs": 3, "reg_user": 1.0, "reg_item": 1.0, "seed": 0}],
    "BayesianFM": [
        {"n_factors": 3, "epochs": 12, "n_burn_in": 4, "seed": 0},
        {
            "n_factors": 3,
            "epochs": 12,
            "n_burn_in": 4,
            "seed": 0,
            "implicit_feedback": "both",
            "user_features": "all",
            "item_features": "all",
        },
    ],
    "ALS": [{"n_factors": 4, "epochs": 2, "reg": 0.5, "seed": 0}],  # reg: see _ALS above
    "BPR": [{"n_factors": 4, "epochs": 3, "seed": 0}],
    "EASE": [{"reg": 20.0}],
    "CEASE": [{"reg": 20.0, "side_weight": 2.0}],
    "ActivityCEASE": [{"reg": 20.0, "side_weight": 2.0, "sparse_max": 5, "sparse_reg": 10.0}],
    "ContentKNN": [{}],
    "HybridMF": [
        {"n_factors": 4, "epochs": 2, "seed": 0},
        {"n_factors": 4, "epochs": 2, "user_features": ["profile"], "seed": 0},
    ],
    "VBPR": [{"n_factors": 4, "content_factors": 3, "epochs": 2, "seed": 0}],
    "ContentKRR": [{"gamma": 2.0, "reg": 0.5, "ease_weight": 1.0, "ease_reg": 20.0}],
    "GraphEASE": [{"reg": 20.0, "graph_weight": 2.0, "propagation": 1.0, "knn_k": 3}],
    "DeepFusion": [
        {"n_factors": 6, "hidden": 12, "epochs": 2, "batch_size": 64, "seed": 0},
        {"n_factors": 6, "hidden": 12, "epochs": 1, "batch_size": 64, "seed": 0, "fusion": "gated", "loss": "mse"},
    ],
    # the real MiniLM / EfficientNet-Lite0 packages, on the synthetic 32x32 images at a small input side
    "FineTunedTwoTower": [
        {"tune": "last", "tune_layers": 2, "n_factors": 6, "epochs": 2, "batch_size": 16, "image_size": 64, "seed": 0},
        {"tune": "lora", "lora_rank": 2, "n_factors": 6, "epochs": 1, "batch_size": 16, "image_size": 64, "seed": 0},
    ],
    "GraphFusion": [{**_TORCH, "knn_k": 3}],
    "LightGCN": [{**_TORCH}],
    "SASRec": [
        {"n_factors": 6, "epochs": 1, "max_len": 5, "seed": 0},
        {"n_factors": 6, "epochs": 1, "max_len": 5, "seed": 0, "use_content": True},
    ],
    "BERT4Rec": [{"n_factors": 6, "epochs": 1, "max_len": 5, "seed": 0}],
    "GRU4Rec": [{"n_factors": 6, "epochs": 1, "max_len": 5, "seed": 0}],
    "CNNLSTM": [{"n_factors": 6, "epochs": 1, "max_len": 5, "seed": 0}],
    "SocialMF": [{"n_factors": 4, "epochs": 3, "seed": 0}],
    "SoRec": [{"n_factors": 4, "epochs": 3, "seed": 0}],
    "TrustSVD": [{"n_factors": 4, "epochs": 3, "seed": 0}],
    "SocialBPR": [{"n_factors": 4, "epochs": 3, "social_weight": 0.1, "seed": 0}],
    "SocialLightGCN": [{**_TORCH}],
    "DPMF": [{"n_factors": 4, "epochs": 2, "batch_size": 32, "target_epsilon": 8.0, "seed": 0}],
    "FedMF": [{"n_factors": 4, "rounds": 2, "seed": 0}],
    "WeightedBlend": [{"models": [_ALS, "ContentKNN", _SEQ], "seed": 0}],
    "Stacking": [{"models": [_ALS, "ItemKNN"], "meta": "ridge", "seed": 0}],
    "ReciprocalRankFusion": [{"models": ["MostPopular", _BPR, _SEQ], "k": 10}],
    "Switching": [{"models": [_BPR, "ContentKNN"], "min_user_interactions": 6}],
}

TORCH_MODELS = {
    "DeepFusion",
    "FineTunedTwoTower",
    "GraphFusion",
    "LightGCN",
    "SASRec",
    "BERT4Rec",
    "GRU4Rec",
    "CNNLSTM",
    "SocialLightGCN",
    "DPMF",
    "WeightedBlend",
    "ReciprocalRankFusion",
}


def registered() -> list[str]:
    return sorted(MODELS)


def recipe(name: str, variant: int = 0) -> dict[str, Any]:
    """The fit recipe of ``name`` (fails with what to do when the model has none)."""
    if name not in RECIPES:
        raise AssertionError(
            f"registered model {name!r} has no fit recipe in tests/models/recipes.py: add small, fast parameters "
            f"for it to RECIPES so that the declaration, forgetting and parameter-range suites cover it"
        )
    return dict(RECIPES[name][variant])


def variants(names: list[str] | None = None) -> list[tuple[str, int]]:
    """``(name, variant)`` of every registered model (a model without a recipe yields ``(name, 0)``, which fails)."""
    return [(n, v) for n in names or registered() for v in range(len(RECIPES.get(n, [{}])))]


@dataclass(frozen=True)
class ContractData:
    train: Interactions  # explicit ratings 1..5 with timestamps
    untimed: Interactions  # the same without timestamps
    side: SideInfo
    texts: list[str]
    images: list[str | None]


@functools.cache
def contract_data() -> ContractData:
    from fusionrec.data.datasets import load_dataset
    from fusionrec.features import build_side_info

    ds = load_dataset("synthetic", n_users=N_USERS, n_items=N_ITEMS, seed=1, with_audio=False)
    side, _ = build_side_info(ds)
    base = ds.interactions
    m = base.matrix.tocoo()  # CSR order: timestamps are aligned with it
    rows, cols, vals, ts = m.row, m.col, m.data, np.asarray(base.timestamps)
    keep = rows != FORGET_USER
    t0 = int(ts.min())
    rows = np.concatenate([rows[keep], np.full(len(FORGET_HISTORY), FORGET_USER)])
    cols = np.concatenate([cols[keep], FORGET_HISTORY])
    vals = np.concatenate([vals[keep], FORGET_RATINGS])
    ts = np.concatenate([ts[keep], t0 + 86_400 * np.arange(1, len(FORGET_HISTORY) + 1)])
    user_ids = base.user_ids.ids.copy().astype(object)
    user_ids[FORGET_USER] = FORGET_RAW
    user_ids = user_ids.astype(str)
    item_ids = base.item_ids.ids
    users, items = IdMap(user_ids), IdMap(item_ids)
    train = Interactions.from_arrays(
        user_ids[rows], item_ids[cols], vals, ts, user_ids=users, item_ids=items, explicit=True
    )
    untimed = Interactions.from_arrays(
        user_ids[rows], item_ids[cols], vals, user_ids=users, item_ids=items, explicit=True
    )
    assert train.user_ids.ids[FORGET_USER] == FORGET_RAW and train.shape == (N_USERS, N_ITEMS)
    texts = [str(t) for t in ds.item_modalities["text"].data]
    images, _ = ds.item_modalities["image"].align(items)
    return ContractData(train=train, untimed=untimed, side=side, texts=texts, images=list(images))


def build(name: str, variant: int = 0, **override: Any) -> Recommender:
    """An unfitted ``name`` from its recipe (``override`` replaces parameters)."""
    params = {**recipe(name, variant), **override}
    return get_model_class(name)(**params)


def fit_model(model: Recommender, *, timed: bool = True) -> Recommender:
    """Fit ``model`` on the contract data with the inputs its declaration says ``fit`` takes (as experiments do);
    ``timed=False`` drops the timestamps unless the model declares that it needs them."""
    data = contract_data()
    decl = type(model).declaration()
    # an ensemble needs what its members need (a sequential member: timestamps), which its class cannot declare
    needs_times = "timestamps" in decl.fit_inputs or "models" in model.get_params()
    train = data.train if timed or needs_times else data.untimed
    return model.fit(train, **decl.fit_kwargs(side=data.side, texts=data.texts, images=data.images))


def fit(name: str, variant: int = 0, *, timed: bool = True) -> Recommender:
    """A fresh fitted ``name`` (its recipe on the contract data)."""
    return fit_model(build(name, variant), timed=timed)


@functools.cache
def fitted(name: str, variant: int = 0) -> Recommender:
    """A shared fitted ``name`` on the data without timestamps (read only: use :func:`fit` to change it)."""
    return fit(name, variant, timed=False)
