"""Name -> model class registry, imported lazily so that heavy models load only when used.

Configs, bundles and the CLI refer to models by these names.  A new model family adds one line.
"""

from __future__ import annotations

import importlib
from typing import Any

from fusionrec.errors import ConfigError

#: a model class (``fusionrec.models.base.Recommender``; the registry is a name table below the classes it names)
Recommender = Any

__all__ = ["MODELS", "available_models", "get_model_class", "make_model", "registered_name"]

#: name -> "module:Class"
MODELS: dict[str, str] = {
    "MostPopular": "fusionrec.models.baselines:MostPopular",
    "Random": "fusionrec.models.baselines:Random",
    "BiasBaseline": "fusionrec.models.baselines:BiasBaseline",
    # neighbourhood models (knn.py)
    "UserKNN": "fusionrec.models.knn:UserKNN",
    "ItemKNN": "fusionrec.models.knn:ItemKNN",
    "KNNBaseline": "fusionrec.models.knn:KNNBaseline",
    # rating matrix factorisation (mf/)
    "SVD": "fusionrec.models.mf.svd:SVD",
    "SVDpp": "fusionrec.models.mf.svd:SVDpp",
    "TimeSVDpp": "fusionrec.models.mf.svd:TimeSVDpp",
    "NMF": "fusionrec.models.mf.nmf:NMF",
    "PMF": "fusionrec.models.mf.pmf:PMF",
    "BayesianFM": "fusionrec.models.mf.fm:BayesianFM",
    # implicit feedback (mf/, linear.py)
    "ALS": "fusionrec.models.mf.als:ALS",
    "BPR": "fusionrec.models.mf.bpr:BPR",
    "EASE": "fusionrec.models.linear:EASE",
    "CEASE": "fusionrec.models.linear:CEASE",
    "ActivityCEASE": "fusionrec.models.activity:ActivityCEASE",
    # content and multimodal
    "ContentKNN": "fusionrec.models.content:ContentKNN",
    "HybridMF": "fusionrec.models.hybrid:HybridMF",
    "VBPR": "fusionrec.models.vbpr:VBPR",
    "ContentKRR": "fusionrec.models.krr:ContentKRR",
    "DeepFusion": "fusionrec.models.fusion.model:DeepFusion",
    "FineTunedTwoTower": "fusionrec.models.fusion.finetune:FineTunedTwoTower",
    "GraphFusion": "fusionrec.models.graph:GraphFusion",
    "LightGCN": "fusionrec.models.lightgcn:LightGCN",
    "GraphEASE": "fusionrec.models.graph_ease:GraphEASE",
    # sequential next-item models (sequential.py; issue 12)
    "SASRec": "fusionrec.models.sequential:SASRec",
    "BERT4Rec": "fusionrec.models.sequential:BERT4Rec",
    "GRU4Rec": "fusionrec.models.sequential:GRU4Rec",
    "CNNLSTM": "fusionrec.models.sequential:CNNLSTM",
    # social rating models (social.py; trust links from SideInfo.social)
    "SocialMF": "fusionrec.models.social:SocialMF",
    "SoRec": "fusionrec.models.social:SoRec",
    "TrustSVD": "fusionrec.models.social:TrustSVD",
    # social implicit top-N models (social_graph.py)
    "SocialBPR": "fusionrec.models.social_graph:SocialBPR",
    "SocialLightGCN": "fusionrec.models.social_graph:SocialLightGCN",
    # score-level ensembles
    "WeightedBlend": "fusionrec.ensemble.blend:WeightedBlend",
    "Stacking": "fusionrec.ensemble.stacking:Stacking",
    "ReciprocalRankFusion": "fusionrec.ensemble.rankfusion:ReciprocalRankFusion",
    "Switching": "fusionrec.ensemble.switching:Switching",
    # private and federated training (private.py, federated.py; issue 13)
    "DPMF": "fusionrec.models.private:DPMF",
    "FedMF": "fusionrec.models.federated:FedMF",
}


def available_models() -> list[str]:
    """The registered model names, sorted (what :func:`make_model` takes)."""
    return sorted(MODELS)


def get_model_class(name: str) -> Any:
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; available: {available_models()}")
    module, _, cls = MODELS[name].partition(":")
    return getattr(importlib.import_module(module), cls)  # type: ignore[no-any-return]


def registered_name(cls: type) -> str:
    target = f"{cls.__module__}:{cls.__qualname__}"
    for name, path in MODELS.items():
        if path == target:
            return name
    raise ConfigError(f"{cls.__qualname__} is not registered in fusionrec.models.registry.MODELS")


def make_model(name: str, **params: object) -> Recommender:
    """Instantiate a registered model by name with hyper-parameters, checked against its constraints.

    Unknown names raise :class:`~fusionrec.errors.ConfigError` with a did-you-mean hint; invalid values raise it
    naming the parameter, the value and the allowed range.
    """
    cls = get_model_class(name)
    try:
        model = cls(**params)
    except TypeError as exc:
        raise ConfigError(f"bad hyper-parameters for {name}: {exc}") from exc
    model._validate_params()
    return model
