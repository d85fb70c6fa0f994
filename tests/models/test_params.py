"""Hyper-parameters: keyword-only, validated once from the declared constraints, did-you-mean on unknown names."""

from __future__ import annotations

import inspect
from typing import Any

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
    constrained = cls.param_constraints()
    assert not [p.name for p in params if p.name not in constrained], f"{name}: unconstrained parameters"


def test_unknown_name_suggests_the_close_one() -> None:
    with pytest.raises(ConfigError, match=r"ALS has no parameter 'factor'; did you mean 'n_factors'\?"):
        make_model("ALS", factor=8)
    with pytest.raises(ConfigError, match="did you mean 'alpha'"):
        ALS(alpah=0.1)  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="did you mean 'epochs'"):
        SVD().set_params(epoch=3)
    with pytest.raises(ConfigError, match="did you mean 'solver'"):
        ALS().clone(sovler="cg")
    with pytest.raises(ConfigError, match="valid parameters"):
        ALS(regularisation=0.1)  # type: ignore[call-arg]


def test_bad_values_name_parameter_value_and_range() -> None:
    with pytest.raises(
        ConfigError, match=r"ALS: n_factors=0 is not allowed; n_factors must be an integer in \[2, inf\)"
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


# ---------------------------------------------------------------------------------------------- renamed parameters
#: the one vocabulary (issue 19): these names are gone from every model; old configs keep working through renames
FORMER_NAMES = {
    "n_epochs": "epochs",
    "iterations": "epochs",
    "n_iters": "epochs",
    "n_iter": "epochs",
    "lr_all": "lr",
    "learning_rate": "lr",
    "regularization": "reg",
    "reg_all": "reg",
    "weight_decay": "reg",
    "item_alpha": "reg_item",
    "user_alpha": "reg_user",
    "bias_regularization": "reg_bias",
    "content_regularization": "reg_content",
    "rank": "n_factors",
    "dim": "n_factors",
}
#: which models had which former names (before issue 19)
FORMERLY: dict[str, set[str]] = {
    "BiasBaseline": {"n_iters"},
    "UserKNN": {"n_epochs"},
    "ItemKNN": {"n_epochs"},
    "KNNBaseline": {"n_epochs"},
    "SVD": {"n_epochs", "lr_all", "reg_all"},
    "SVDpp": {"n_epochs", "lr_all", "reg_all"},
    "TimeSVDpp": {"n_epochs", "lr_all", "reg_all"},
    "SocialMF": {"n_epochs", "lr_all", "reg_all"},
    "SoRec": {"n_epochs", "lr_all", "reg_all"},
    "TrustSVD": {"n_epochs", "lr_all", "reg_all"},
    "NMF": {"n_epochs"},
    "PMF": {"n_iters"},
    "BayesianFM": {"rank", "n_iter"},
    "ALS": {"regularization", "iterations"},
    "BPR": {"learning_rate", "regularization"},
    "SocialBPR": {"learning_rate", "regularization"},
    "DPMF": {"learning_rate", "regularization"},
    "FedMF": {"regularization"},
    "HybridMF": {"learning_rate", "item_alpha", "user_alpha"},
    "VBPR": {"learning_rate", "regularization", "bias_regularization", "content_regularization"},
    "DeepFusion": {"dim", "weight_decay"},
    "SASRec": {"weight_decay"},
    "GRU4Rec": {"weight_decay"},
    "CNNLSTM": {"weight_decay"},
}


@pytest.mark.parametrize("name", available_models())
def test_one_vocabulary(name: str) -> None:
    """``lr``, ``reg``, ``epochs``, ``n_factors`` wherever the idea is the same; each former name is a rename."""
    cls = get_model_class(name)
    left = sorted(set(cls.param_names()) & set(FORMER_NAMES))
    assert not left, (
        f"{name} still takes {left}; rename them ({ {k: FORMER_NAMES[k] for k in left} }) with _renamed_params"
    )
    renamed = cls._all_renamed()
    missing = {old: FORMER_NAMES[old] for old in FORMERLY.get(name, ()) if renamed.get(old) != FORMER_NAMES[old]}
    assert not missing, f"{name}: configs using the former names {missing} must keep working (add to _renamed_params)"


def _renames() -> list[tuple[str, str, str]]:
    """``(model, old, new)`` of every registered model's renames whose new name is one of its parameters."""
    out = []
    for name in available_models():
        cls = get_model_class(name)
        params = cls.param_names()
        for old, new in sorted(cls._all_renamed().items()):
            if new in params and old not in params:
                out.append((name, old, new))
    return out


def _accepted(constraints: list[Any], value: Any) -> bool:
    try:
        validate_params("M", {"x": value}, {"x": constraints})
    except ConfigError:
        return False
    return True


def _another_valid_value(cls: type, name: str) -> Any:
    """A value of parameter ``name`` that its constraints accept and that is not its default."""
    default = inspect.signature(cls.__init__).parameters[name].default
    constraints = cls.param_constraints()[name]  # type: ignore[attr-defined]
    candidates: list[Any] = [{"text": 1.0}, ["text"], "text", not default if isinstance(default, bool) else None]
    for c in constraints:
        if isinstance(c, Options):
            candidates += list(c.values)
        if isinstance(c, Interval):
            base = default if isinstance(default, int | float) and not isinstance(default, bool) else c.low or 1
            steps = (2, 3, 1) if c.kind is int else (2.0, 0.5, 1.5)
            candidates += [base * s if base else s for s in steps] + [base + 1]
            candidates = [int(v) if c.kind is int else float(v) for v in candidates if isinstance(v, int | float)] + [
                v for v in candidates if not isinstance(v, int | float)
            ]
    for value in candidates:
        if value is not None and value != default and _accepted(constraints, value):
            return value
    raise AssertionError(f"no second valid value found for {cls.__name__}.{name}")  # pragma: no cover


@pytest.mark.parametrize(("name", "old", "new"), _renames(), ids=lambda v: str(v))
def test_a_renamed_parameter_still_works_with_a_future_warning(name: str, old: str, new: str) -> None:
    cls = get_model_class(name)
    value = _another_valid_value(cls, new)
    with pytest.warns(FutureWarning, match=f"{old!r} was renamed {new!r}"):
        model = cls(**{old: value})
    assert model.get_params()[new] == value
    with pytest.warns(FutureWarning, match=f"{old!r} was renamed {new!r}"):
        assert make_model(name, **{old: value}).get_params()[new] == value
    fresh = cls()
    with pytest.warns(FutureWarning, match=f"{old!r} was renamed {new!r}"):
        fresh.set_params(**{old: value})
    assert fresh.get_params()[new] == value
    with pytest.warns(FutureWarning, match=f"{old!r} was renamed {new!r}"):
        assert cls().clone(**{old: value}).get_params()[new] == value
    assert cls.upgrade_params({old: value}) == {new: value}  # bundles and configs, silently
    assert old not in model.get_params()


# ---------------------------------------------------------------------------------------------- clone
@pytest.mark.parametrize("name", available_models())
def test_every_registered_model_clones_cleanly(name: str) -> None:
    from . import recipes

    model = recipes.build(name)
    clone = model.clone()
    assert type(clone) is type(model) and clone is not model
    assert clone.get_params() == model.get_params()
    assert all(clone.get_params()[k] is v for k, v in model.get_params().items())  # stored as given


def test_clone_refuses_a_constructor_that_alters_its_parameters() -> None:
    from fusionrec.models import Recommender

    class Copies(Recommender):
        def __init__(self, *, names: list[str] | None = None) -> None:
            self.names = list(names or [])  # alters: a copy (and [] for None)

    class Converts(Recommender):
        def __init__(self, *, k: float = 1.0) -> None:
            self.k = float(k)  # alters: an int becomes a float

    class Stores(Recommender):
        def __init__(self, *, k: float = 1.0, names: list[str] | None = None) -> None:
            self.k = k
            self.names = names

    with pytest.raises(ConfigError, match=r"Copies.__init__ does not store parameter 'names' unchanged"):
        Copies(names=["a"]).clone()
    with pytest.raises(ConfigError, match="'k' unchanged"):
        Converts().clone(k=2)
    given = ["a"]
    assert Stores(k=3, names=given).clone().names is given


@pytest.mark.parametrize("name", available_models())
def test_every_registered_constructor_is_keyword_only(name: str) -> None:
    cls = get_model_class(name)
    params = [p for p in inspect.signature(cls.__init__).parameters.values() if p.name != "self"]
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    assert not positional, f"{name}.__init__ takes {positional} positionally; make them keyword-only (self, *, ...)"
