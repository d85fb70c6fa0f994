"""Hyper-parameters: keyword-only, validated once from the declared constraints, did-you-mean on unknown names."""

from __future__ import annotations

import inspect

import pytest

from fusionrec.errors import ConfigError
from fusionrec.models import available_models, get_model_class, make_model
from fusionrec.models._params import Interval, Options, validate_params
from fusionrec.models.mf.als import ALS
from fusionrec.models.mf.svd import SVD

from ..conftest import make_interactions


@pytest.mark.parametrize("name", available_models())
def test_every_init_is_keyword_only_and_constrained(name: str) -> None:
    cls = get_model_class(name)
    params = [p for p in inspect.signature(cls.__init__).parameters.values() if p.name != "self"]
    assert all(p.kind is p.KEYWORD_ONLY for p in params), name
    constrained = cls._all_constraints()
    assert not [p.name for p in params if p.name not in constrained], f"{name}: unconstrained parameters"


def test_unknown_name_suggests_the_close_one() -> None:
    with pytest.raises(ConfigError, match=r"ALS has no parameter 'factor'; did you mean 'n_factors'\?"):
        make_model("ALS", factor=8)
    with pytest.raises(ConfigError, match="did you mean 'regularization'"):
        ALS(regularisation=0.1)  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="did you mean 'n_epochs'"):
        SVD().set_params(n_epoch=3)
    with pytest.raises(ConfigError, match="did you mean 'iterations'"):
        ALS().clone(iteration=3)


def test_renamed_names_say_so() -> None:
    with pytest.raises(ConfigError, match="'factors'; it was renamed 'n_factors'"):
        ALS(factors=8)  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="it was renamed 'modality_weights'"):
        make_model("ContentKNN", weights={"text": 1.0})
    with pytest.raises(ConfigError, match="it was renamed 'modality_weights'"):
        make_model("VBPR", feature_weights={"text": 1.0})


def test_bad_values_name_parameter_value_and_range() -> None:
    with pytest.raises(
        ConfigError, match=r"ALS: n_factors=0 is not allowed; n_factors must be an integer in \[1, inf\)"
    ):
        make_model("ALS", n_factors=0)
    with pytest.raises(ConfigError, match=r"solver='lu'.*one of 'cg', 'cholesky'"):
        make_model("ALS", solver="lu")
    model = ALS(alpha=-1.0)  # construction stores; fit validates
    with pytest.raises(ConfigError, match=r"alpha=-1.0 .* a number in \[0, inf\)"):
        model.fit(make_interactions(explicit=False))
    with pytest.raises(ConfigError, match=r"n_factors=2\.5"):
        make_model("SVD", n_factors=2.5)
    with pytest.raises(ConfigError, match=r"lr_bu=.x.*or None"):
        make_model("SVD", lr_bu="x")
    with pytest.raises(ConfigError, match="models"):
        make_model("WeightedBlend", models="SVD")


def test_constraint_objects() -> None:
    assert Interval(float, 0, 1, closed="left").accepts(0.0) and not Interval(float, 0, 1, closed="left").accepts(1.0)
    assert not Interval(int, 1, None).accepts(True) and not Interval(float, None, None).accepts(float("nan"))
    assert str(Interval(float, 0, 1, closed="neither")) == "a number in (0, 1)"
    assert Options(("a", "b")).accepts("a") and not Options(("a",)).accepts(["a"])
    validate_params("M", {"x": None}, {"x": [Interval(int, 0, None), None]})
    with pytest.raises(ConfigError, match="x must be an integer in \\[0, inf\\) or None"):
        validate_params("M", {"x": -1}, {"x": [Interval(int, 0, None), None]})


def test_positional_arguments_are_refused() -> None:
    with pytest.raises(TypeError):
        ALS(8)  # type: ignore[misc]


def test_upgrade_params_maps_former_names() -> None:
    assert ALS.upgrade_params({"factors": 8, "alpha": 2.0}) == {"n_factors": 8, "alpha": 2.0}
    assert get_model_class("ContentKNN").upgrade_params({"weights": {"a": 1.0}}) == {"modality_weights": {"a": 1.0}}
    rrf = get_model_class("ReciprocalRankFusion")
    assert rrf.upgrade_params({"weights": [1.0]}) == {"weights": [1.0]}  # a valid name stays
    assert ALS.upgrade_params({"factors": 8, "n_factors": 4}) == {"factors": 8, "n_factors": 4}
