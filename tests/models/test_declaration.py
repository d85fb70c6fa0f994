"""The declaration contract, for every registered model (ensembles included): each class states once what it holds
and what it can do (:mod:`fusionrec.models.declaration`), and the fitted model and the class's methods agree.

* a fitted model holding a per-user or per-item array it did not declare fails (``undeclared_state``, on data whose
  61 users and 43 items differ from every other size the models use);
* a declared name that no recipe's fitted model holds fails, and so does a declared axis whose length is not the
  user (item) count;
* capabilities match the methods: ``can_fold_in`` iff ``fold_in_user``, ``can_batch_fold_in`` iff ``fold_in_users``,
  ``can_add_items`` iff ``add_items``, ``has_factors`` iff ``factors``, ``uses_friends`` iff ``fold_in_user`` takes
  ``friends``, each explanation hook iff its method, ``"valid"``/``"texts"`` in ``fit_inputs`` iff ``fit`` takes them,
  ``modality_param`` a real parameter, ``member_state`` the attribute that holds the members;
* every model fits with exactly the inputs it declares (side information only when ``"side"`` is declared,
  timestamps only when ``"timestamps"`` is), as experiments and tuning fit it.

Parametrised over :data:`fusionrec.models.registry.MODELS`: a new registered model is covered at once (and fails
until ``tests/models/recipes.py`` has a recipe for it).
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import scipy.sparse as sp

from fusionrec.errors import ConfigError
from fusionrec.models import Recommender
from fusionrec.models.declaration import COLUMNS, EXPLANATION_HOOKS, ROWS, Declaration, undeclared_state
from fusionrec.models.registry import get_model_class

from . import recipes

pytest.importorskip("torch")

NAMES = recipes.registered()
VARIANTS = recipes.variants()


def _ids(case: tuple[str, int]) -> str:
    return f"{case[0]}-{case[1]}"


def _has(cls: type, method: str) -> bool:
    return callable(getattr(cls, method, None))


def _members(model: Recommender) -> dict[str, list[Recommender]]:
    """Attributes of ``model`` that hold fitted models (one or a list)."""
    out = {}
    for key, value in vars(model).items():
        items = value if isinstance(value, list | tuple) else [value]
        if items and all(isinstance(v, Recommender) for v in items):
            out[key] = list(items)
    return out


# ---------------------------------------------------------------------------------------------- recipes
@pytest.mark.parametrize("name", NAMES)
def test_every_registered_model_has_a_fit_recipe(name: str) -> None:
    recipes.recipe(name)  # raises, telling the author what to add


def test_no_recipe_for_an_unregistered_model() -> None:
    assert not set(recipes.RECIPES) - set(NAMES), "remove recipes of models that are no longer registered"


# ---------------------------------------------------------------------------------------------- fitted state
@pytest.mark.parametrize("case", VARIANTS, ids=_ids)
def test_fitted_state_is_declared(case: tuple[str, int]) -> None:
    """Every learned array with a user (item) axis is declared with that axis (and the model fits with exactly the
    inputs its declaration names: side information only when it declares ``"side"``, timestamps only when it
    declares ``"timestamps"``)."""
    name, variant = case
    model = recipes.fitted(name, variant)
    assert (model.n_users_, model.n_items_) == (recipes.N_USERS, recipes.N_ITEMS)
    problems = undeclared_state(model)
    assert not problems, (
        f"{name} holds per-user / per-item arrays it does not declare: {problems}; add them to the class's "
        f"user_state / item_state (fusionrec.models.declaration) with how each is indexed"
    )


@pytest.mark.parametrize("name", NAMES)
def test_declared_state_exists_with_the_declared_axes(name: str) -> None:
    """A declared name is held by a fitted model of some recipe, and each declared user axis has n_users_ entries
    there, each item axis at most n_items_ (a declaration naming an attribute that does not exist, or the wrong
    axis, forgets nothing)."""
    decl = get_model_class(name).declaration()
    found: set[str] = set()
    wrong = []
    for _, variant in recipes.variants([name]):
        model = recipes.fitted(name, variant)
        state = model._get_state()
        found |= set(state)
        for what, declared, n in (
            ("user", decl.user_state, model.n_users_),
            ("item", decl.item_state, model.n_items_),
        ):
            for key, how in declared.items():
                shape = getattr(state.get(key), "shape", None)
                if shape is None:
                    continue
                for axis in how.axes:
                    # a user axis has every user (forget_user blanks entry u); an item axis may hold a subset
                    # (ContentKRR's warm items), in item order
                    if axis >= len(shape) or shape[axis] > n or (what == "user" and shape[axis] != n):
                        wrong.append(f"{key} (shape {shape}) declared with a {what} axis {axis}")
    missing = sorted((set(decl.user_state) | set(decl.item_state)) - found - {"forgotten_users_"})
    assert not missing, f"{name} declares state that no fitted model holds: {missing} (a typo, or stale)"
    assert not wrong, f"{name}: declared axes that are not user / item axes: {wrong}"


@pytest.mark.parametrize("name", NAMES)
def test_members_are_declared(name: str) -> None:
    """The attribute that holds fitted member models is ``member_state`` (forget_user reaches the members through
    it), and a declared ``member_state`` holds fitted models."""
    model = recipes.fitted(name)
    decl = type(model).declaration()
    held = _members(model)
    assert set(held) == ({decl.member_state} if decl.member_state else set()), (
        f"{name} holds fitted models in {sorted(held)} but declares member_state={decl.member_state!r}"
    )
    for member in held.get(decl.member_state or "", []):
        member.check_fitted()


# ---------------------------------------------------------------------------------------------- capabilities
@pytest.mark.parametrize("name", NAMES)
def test_capabilities_match_the_methods(name: str) -> None:
    cls = get_model_class(name)
    decl: Declaration = cls.declaration()
    fit_params = inspect.signature(cls.fit).parameters
    claims: dict[str, tuple[bool, bool]] = {
        "can_fold_in / fold_in_user": (decl.can_fold_in, _has(cls, "fold_in_user")),
        "can_batch_fold_in / fold_in_users": (decl.can_batch_fold_in, _has(cls, "fold_in_users")),
        "can_add_items / add_items": (decl.can_add_items, _has(cls, "add_items")),
        "has_factors / factors": (decl.has_factors, _has(cls, "factors")),
        "fit_inputs 'valid' / fit(valid=)": ("valid" in decl.fit_inputs, "valid" in fit_params),
        "fit_inputs 'texts' / fit(texts=)": ("texts" in decl.fit_inputs, "texts" in fit_params),
    }
    if _has(cls, "fold_in_user"):
        takes_friends = "friends" in inspect.signature(cls.fold_in_user).parameters
        claims["uses_friends / fold_in_user(friends=)"] = (decl.uses_friends, takes_friends)
    else:
        claims["uses_friends / fold_in_user(friends=)"] = (decl.uses_friends, False)
    wrong = {k: f"declared {d}, method {m}" for k, (d, m) in claims.items() if d != m}
    assert not wrong, f"{name}'s declaration disagrees with its methods: {wrong}"
    assert not decl.can_batch_fold_in or decl.can_fold_in, f"{name}: batch fold-in without fold_in_user"


@pytest.mark.parametrize("name", NAMES)
def test_explanation_hooks_are_the_working_methods(name: str) -> None:
    """A declared explanation hook is a method that answers on the fitted model; an undeclared one is absent or
    refuses (``ConfigError`` / ``NotImplementedError``, as ActivityCEASE's ``score_parts``)."""
    model = recipes.fitted(name)
    decl = type(model).declaration()
    data = recipes.contract_data()
    user, item = 3, int(np.setdiff1d(np.arange(model.n_items_), model.seen_[3].indices)[0])
    for hook in sorted(EXPLANATION_HOOKS):
        method = getattr(model, hook, None)
        if hook in decl.explanation_hooks:
            assert callable(method), f"{name} declares the explanation hook {hook!r} but has no such method"
        if not callable(method):
            continue
        kwargs = {"side": data.side} if "side" in inspect.signature(method).parameters else {}
        if hook in decl.explanation_hooks:
            assert method(user, item, **kwargs) is not None, f"{name}.{hook} returned nothing"
        else:
            with pytest.raises((ConfigError, NotImplementedError)):
                method(user, item, **kwargs)
                pytest.fail(f"{name}.{hook} answers but {hook!r} is not in its explanation_hooks: declare it")


@pytest.mark.parametrize("name", NAMES)
def test_modality_param_is_a_real_parameter(name: str) -> None:
    cls = get_model_class(name)
    decl = cls.declaration()
    params = cls.param_names()
    if decl.modality_param is not None:
        assert decl.modality_param in params, f"{name}.modality_param={decl.modality_param!r} is not a parameter"
    if "modalities" in params:
        assert decl.modality_param == "modalities", f"{name} takes modalities= but declares {decl.modality_param!r}"
    if decl.modality_param is not None:
        assert decl.uses_side_info, f"{name} names its modalities ({decl.modality_param}) but fit takes no side"


# ---------------------------------------------------------------------------------------------- the check itself
def test_an_undeclared_user_or_item_array_is_found() -> None:
    """``undeclared_state`` reports an array with a user or item axis that the class does not declare."""
    model = recipes.fitted("ALS")
    assert undeclared_state(model) == []
    shadow = _Shadow(model)
    shadow.model.shadow_users_ = np.ones((recipes.N_USERS, 3))
    shadow.model.shadow_items_ = sp.csr_matrix((5, recipes.N_ITEMS))
    try:
        assert sorted(undeclared_state(shadow.model)) == [
            "shadow_items_: axis 1 has n_items_ entries",
            "shadow_users_: axis 0 has n_users_ entries",
        ]
    finally:
        shadow.restore()


def test_a_declared_axis_must_be_the_right_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Declaring an array by the wrong axis (ROWS for a users-by-columns array) is reported."""
    import dataclasses

    model = recipes.fitted("MostPopular")
    cls = type(model)
    decl = cls.declaration()
    wrong = dataclasses.replace(decl, user_state={**decl.user_state, "seen_": COLUMNS})
    monkeypatch.setattr(cls, "_declaration", wrong)
    assert "seen_: axis 0 has n_users_ entries" in undeclared_state(model)
    monkeypatch.setattr(cls, "_declaration", dataclasses.replace(decl, user_state={**decl.user_state, "seen_": ROWS}))
    assert undeclared_state(model) == []


class _Shadow:
    """Temporarily extra attributes on a shared fitted model."""

    def __init__(self, model: Recommender) -> None:
        self.model = model
        self._before = set(vars(model))

    def restore(self) -> None:
        for key in set(vars(self.model)) - self._before:
            delattr(self.model, key)
