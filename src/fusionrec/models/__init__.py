"""Recommender models (imported lazily by name through :mod:`fusionrec.models.registry`)."""

from fusionrec.models.base import Recommender, SideInfo, load_model
from fusionrec.models.baselines import BiasBaseline, MostPopular, Random
from fusionrec.models.coldstart import ItemColdStart, UserColdStart
from fusionrec.models.factors import FactorModel, Factors
from fusionrec.models.registry import available_models, get_model_class, make_model

__all__ = [
    "BiasBaseline",
    "FactorModel",
    "Factors",
    "ItemColdStart",
    "MostPopular",
    "Random",
    "Recommender",
    "SideInfo",
    "UserColdStart",
    "available_models",
    "get_model_class",
    "load_model",
    "make_model",
]
