"""LightGCN under its own name: the contract, equality with GraphFusion without content graphs, no content."""

from __future__ import annotations

import numpy as np
import pytest

from fusionrec.models import make_model
from fusionrec.models.graph import GraphFusion
from fusionrec.models.lightgcn import LightGCN
from fusionrec.models.registry import MODELS, available_models, get_model_class, registered_name

from ..conftest import make_interactions
from .contract import RecommenderContract

pytest.importorskip("torch")


class TestLightGCN(RecommenderContract):
    implicit = True

    def make_model(self) -> LightGCN:
        return LightGCN(n_factors=8, epochs=3, batch_size=256, edge_dropout=0.1)


def test_registry_name() -> None:
    """The package's registry names the class (nothing here registers it)."""
    assert "LightGCN" in available_models() and MODELS["LightGCN"] == "fusionrec.models.lightgcn:LightGCN"
    assert get_model_class("LightGCN") is LightGCN and registered_name(LightGCN) == "LightGCN"
    assert isinstance(make_model("LightGCN", layers=2), LightGCN)


def test_equals_graphfusion_without_content() -> None:
    """One implementation of the graph training: LightGCN is GraphFusion with no item graph, to the bit."""
    train = make_interactions(seed=3, explicit=False)
    kw = {"n_factors": 6, "layers": 2, "epochs": 2, "batch_size": 128, "seed": 4}
    ours = LightGCN(**kw).fit(train)
    ref = GraphFusion(modalities=[], **kw).fit(train)
    users = np.arange(train.n_users)
    np.testing.assert_array_equal(ours.score(users), ref.score(users))


def test_reads_no_content() -> None:
    decl = LightGCN.declaration()
    assert not decl.uses_side_info and decl.modality_param is None and not decl.can_add_items
    assert decl.can_fold_in and decl.has_factors
    assert set(LightGCN.param_names()) == set(LightGCN.param_constraints())  # only its own parameters
    assert "modalities" not in LightGCN.param_names() and "knn_k" not in LightGCN.param_names()
