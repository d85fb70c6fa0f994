"""What a model class holds and what it can do, stated once as data on the class (as scikit-learn's estimator tags).

Every :class:`~fusionrec.models.base.Recommender` subclass declares, with class attributes merged along its bases:

``user_state`` / ``item_state``
    Its learned per-user / per-item state: ``{attribute: Indexed}`` for each learned attribute (a name saved by
    ``_get_state``, network weights included under their saved names) that has a user (item) axis, and how it is
    indexed: :data:`ROWS` (axis 0), :data:`COLUMNS` (axis 1, stored transposed) or :data:`SQUARE` (users x users /
    items x items: rows and columns).  ``Indexed(fill=...)`` names the value a forgotten user's entries get
    (padding of item sequences).  The contract suite fails a fitted model that holds an array with a user or item
    axis it did not declare; :meth:`~fusionrec.models.base.Recommender.forget_user` blanks exactly the declared
    user state.
``modality_param``
    The hyper-parameter that names the item modalities the model reads (``"modalities"``), or ``None``.
``fit_inputs``
    What ``fit`` takes besides the training interactions: ``"side"`` (:class:`SideInfo`), ``"valid"`` (validation
    interactions, for early stopping or blending), ``"timestamps"`` (the training interactions must carry them),
    ``"texts"`` (raw item texts), ``"images"`` (raw item images: paths or arrays).  ``uses_side_info = True`` adds ``"side"``.
``can_fold_in`` / ``can_batch_fold_in`` / ``can_add_items`` / ``has_factors`` / ``uses_friends``
    Cold start and serving: ``fold_in_user``, ``fold_in_users`` (many at once), ``add_items`` from content,
    ``factors()``/``add_item_vectors`` (:mod:`fusionrec.models.factors`), friends in ``fold_in_user``.
``explanation_hooks``
    The explanation methods the model implements: ``"item_contributions"`` (``(items, weights)`` of a user's
    history items that sum to the score), ``"score_parts"`` (the score split into collaborative and content parts).
``member_state``
    The attribute holding fitted member models (ensembles), or ``None``; forgetting reaches the members.

Code outside ``models/`` reads :func:`declaration` (``type(model).declaration()``) and never guesses attributes.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: a model (``fusionrec.models.base.Recommender``, which sits above this module and reads it)
Recommender = Any

__all__ = [
    "COLUMNS",
    "EXPLANATION_HOOKS",
    "FIT_INPUTS",
    "RAW_CONTENT",
    "ROWS",
    "SQUARE",
    "Declaration",
    "Indexed",
    "copy_user_state",
    "declaration",
]

#: what ``fit`` may take besides the training interactions
FIT_INPUTS = frozenset({"side", "valid", "timestamps", "texts", "images"})
#: the fit inputs that are raw item content (the model encodes it itself)
RAW_CONTENT = frozenset({"texts", "images"})
#: the explanation methods a model may implement
EXPLANATION_HOOKS = frozenset({"item_contributions", "score_parts"})


@dataclass(frozen=True)
class Indexed:
    """How a learned array is indexed by users (or items): along ``rows`` (axis 0) and/or ``columns`` (axis 1).

    ``fill`` is the value a forgotten user's entries are overwritten with (dense arrays; sparse ones lose them).
    """

    rows: bool = True
    columns: bool = False
    fill: float = 0.0

    @property
    def axes(self) -> tuple[int, ...]:
        return tuple(a for a, on in ((0, self.rows), (1, self.columns)) if on)


ROWS = Indexed()
COLUMNS = Indexed(rows=False, columns=True)
SQUARE = Indexed(rows=True, columns=True)


@dataclass(frozen=True)
class Declaration:
    """One model class's declared state and capabilities (module notes)."""

    name: str
    user_state: Mapping[str, Indexed] = field(default_factory=dict)
    item_state: Mapping[str, Indexed] = field(default_factory=dict)
    modality_param: str | None = None
    fit_inputs: frozenset[str] = frozenset()
    can_fold_in: bool = False
    can_batch_fold_in: bool = False
    can_add_items: bool = False
    has_factors: bool = False
    uses_friends: bool = False
    predicts_ratings: bool = False
    explanation_hooks: frozenset[str] = frozenset()
    member_state: str | None = None

    @property
    def uses_side_info(self) -> bool:
        return "side" in self.fit_inputs

    @property
    def raw_content(self) -> frozenset[str]:
        """The raw item content ``fit`` reads (``"texts"`` / ``"images"``): such a model encodes it itself, so
        serving keeps every item's raw content for a retrain."""
        return self.fit_inputs & RAW_CONTENT

    def fit_kwargs(self, **available: Any) -> dict[str, Any]:
        """The keyword arguments of ``available`` (``side=``, ``valid=``, ``texts=``) that this model's ``fit``
        takes; the others are dropped."""
        return {k: v for k, v in available.items() if k in self.fit_inputs and v is not None}


def _merged(cls: type, name: str) -> dict[str, Indexed]:
    """``name`` (``user_state`` / ``item_state``) merged along the bases; a factor model's ``factor_spec`` (its own
    declaration of where its factors and biases live, :mod:`fusionrec.models.factors`) adds those arrays as rows."""
    out: dict[str, Indexed] = {}
    spec = getattr(cls, "factor_spec", None)
    if spec is not None:
        names = (spec.user, spec.user_bias) if name == "user_state" else (spec.item, spec.item_bias)
        out.update({n: ROWS for n in names if n is not None})
    for klass in reversed(cls.__mro__):
        out.update(vars(klass).get(name, {}))
    return out


def build_declaration(cls: type) -> Declaration:
    """The :class:`Declaration` of ``cls`` from its (inherited) class attributes; checked for unknown values."""
    fit_inputs = frozenset(getattr(cls, "fit_inputs", frozenset()))
    if getattr(cls, "uses_side_info", False):
        fit_inputs |= {"side"}
    hooks = frozenset(getattr(cls, "explanation_hooks", frozenset()))
    bad = (fit_inputs - FIT_INPUTS) | (hooks - EXPLANATION_HOOKS)
    if bad:  # pragma: no cover - a declaration error
        raise TypeError(f"{cls.__name__} declares unknown fit inputs or explanation hooks: {sorted(bad)}")
    return Declaration(
        name=cls.__name__,
        user_state=_merged(cls, "user_state"),
        item_state=_merged(cls, "item_state"),
        modality_param=getattr(cls, "modality_param", None),
        fit_inputs=fit_inputs,
        can_fold_in=bool(getattr(cls, "can_fold_in", False)),
        can_batch_fold_in=bool(getattr(cls, "can_batch_fold_in", False)),
        can_add_items=bool(getattr(cls, "can_add_items", False)),
        has_factors=bool(getattr(cls, "has_factors", False)),
        uses_friends=bool(getattr(cls, "uses_friends", False)),
        predicts_ratings=bool(getattr(cls, "predicts_ratings", False)),
        explanation_hooks=hooks,
        member_state=getattr(cls, "member_state", None),
    )


def declaration(model: Any) -> Declaration:
    """The declaration of a model or model class."""
    cls: Any = model if isinstance(model, type) else type(model)
    return cls.declaration()  # type: ignore[no-any-return]


def copy_user_state(model: Recommender) -> Recommender:
    """A shallow copy of ``model`` whose declared dense per-user arrays are copies (writes to a user's row, as
    ``fold_in_user(user=u)`` makes, then leave ``model`` untouched; everything else is shared)."""
    work = copy.copy(model)
    for name in type(model).declaration().user_state:
        value = work._learned(name)
        if isinstance(value, np.ndarray):
            work._set_learned(name, value.copy())
    return work


def undeclared_state(model: Recommender) -> list[str]:
    """The learned arrays of a fitted ``model`` with a user (item) axis that its class does not declare with that
    axis in ``user_state`` (``item_state``), as ``"name: axis A has n_users_ (n_items_) entries"``.

    An axis is taken as a user (item) axis when its length is ``n_users_`` (``n_items_``), so the check is exact on
    data whose user and item counts differ from every other size the model uses (the contract suite's data).
    """
    decl = type(model).declaration()
    n_users, n_items = int(model.n_users_), int(model.n_items_)
    problems = []
    for name, value in model._get_state().items():
        shape = getattr(value, "shape", ())
        for axis, size in enumerate(shape[:2]):
            for what, n, declared in (("n_users_", n_users, decl.user_state), ("n_items_", n_items, decl.item_state)):
                how = declared.get(name)
                if size == n and (how is None or axis not in how.axes):
                    problems.append(f"{name}: axis {axis} has {what} entries")
    return problems
