"""Declarative hyper-parameter constraints, checked in one place (in the spirit of scikit-learn's).

Each model class (and each encoder class, :class:`fusionrec.features.Encoder`) declares
``_param_constraints = {"name": [constraint, ...]}``; a value is valid when it meets *any* of its constraints.
:meth:`fusionrec.models.base.Recommender.fit` and :func:`~fusionrec.models.make_model` (encoders: their
constructor) call :func:`validate_params`, which raises :class:`~fusionrec.errors.ConfigError` naming the parameter,
the value and what is allowed.  :func:`check_names` turns an unknown parameter name into a ConfigError with a
did-you-mean hint; :func:`upgrade_renamed` maps former names (``_renamed_params``) onto the current ones with a
``FutureWarning``.  Cross-parameter rules (``n_burn_in < n_iter``) stay in the models' ``_fit``.

This module sits below every layer (it imports only :mod:`fusionrec.errors`); :mod:`fusionrec.models._params`
re-exports it.

Constraints: :class:`Interval` (``Interval(int, 1, None)`` = integers >= 1), :class:`Options` (a closed set),
the types ``bool``, ``str``, ``dict``, ``list`` (lists and tuples), and ``None``.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, ClassVar, Self

import numpy as np

from fusionrec.errors import ConfigError

__all__ = [
    "BOOL",
    "MODALITY_NAMES",
    "MODALITY_WEIGHTS",
    "NONNEGATIVE",
    "NONNEGATIVE_INT",
    "POSITIVE",
    "POSITIVE_INT",
    "SEED",
    "Interval",
    "Options",
    "Parameterized",
    "check_names",
    "upgrade_renamed",
    "validate_params",
]


@dataclass(frozen=True)
class Interval:
    """Numbers of ``kind`` (``int`` or ``float``) between ``low`` and ``high`` (``None``: unbounded).

    ``closed`` says which ends are included: ``"both"`` (default), ``"left"``, ``"right"`` or ``"neither"``.
    ``float`` accepts integers too; neither accepts booleans, NaN or infinities.
    """

    kind: type
    low: float | None
    high: float | None
    closed: str = "both"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool | np.bool_):
            return False
        if self.kind is int:
            if not isinstance(value, Integral):
                return False
        elif not isinstance(value, Real) or not math.isfinite(float(value)):
            return False
        v = float(value)
        if self.low is not None and (v < self.low or (v == self.low and self.closed in ("right", "neither"))):
            return False
        return not (
            self.high is not None and (v > self.high or (v == self.high and self.closed in ("left", "neither")))
        )

    def __str__(self) -> str:
        what = "an integer" if self.kind is int else "a number"
        left = "(" if self.low is None or self.closed in ("right", "neither") else "["
        right = ")" if self.high is None or self.closed in ("left", "neither") else "]"
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        return f"{what} in {left}{lo}, {hi}{right}"


@dataclass(frozen=True)
class Options:
    """One of a closed set of values."""

    values: tuple[Any, ...]

    def accepts(self, value: Any) -> bool:
        try:
            return value in self.values
        except TypeError:  # unhashable / incomparable
            return False

    def __str__(self) -> str:
        return f"one of {', '.join(repr(v) for v in self.values)}"


_TYPE_NAMES = {bool: "a bool", str: "a string", dict: "a dict", list: "a list"}


def _accepts(constraint: Any, value: Any) -> bool:
    if constraint is None:
        return value is None
    if constraint is bool:
        return isinstance(value, bool | np.bool_)
    if constraint is list:
        return isinstance(value, list | tuple)
    if isinstance(constraint, type):
        return isinstance(value, constraint) and not (constraint is not bool and isinstance(value, bool))
    return bool(constraint.accepts(value))


def _describe(constraint: Any) -> str:
    if constraint is None:
        return "None"
    if isinstance(constraint, type):
        return _TYPE_NAMES.get(constraint, f"a {constraint.__name__}")
    return str(constraint)


def validate_params(owner: str, params: Mapping[str, Any], constraints: Mapping[str, Iterable[Any]]) -> None:
    """Raise :class:`ConfigError` for the first parameter of ``params`` that meets none of its constraints."""
    for name, allowed in constraints.items():
        if name not in params:
            continue
        allowed = list(allowed)
        value = params[name]
        if not any(_accepts(c, value) for c in allowed):
            options = " or ".join(_describe(c) for c in allowed)
            raise ConfigError(f"{owner}: {name}={value!r} is not allowed; {name} must be {options}")


def check_names(
    owner: str, given: Iterable[str], valid: Iterable[str], renamed: Mapping[str, str] | None = None
) -> None:
    """Raise :class:`ConfigError` for a name of ``given`` that is not in ``valid``, with a did-you-mean hint.

    ``renamed`` maps former parameter names to their new names (``"factors" -> "n_factors"``).
    """
    valid = list(valid)
    for name in given:
        if name in valid:
            continue
        new = (renamed or {}).get(name)
        if new is not None and new in valid:
            hint = f"; it was renamed {new!r}"
        else:
            close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else f"; valid parameters: {sorted(valid)}"
        raise ConfigError(f"{owner} has no parameter {name!r}{hint}")


def upgrade_renamed(
    owner: str,
    params: Mapping[str, Any],
    renamed: Mapping[str, str],
    valid: Iterable[str],
    *,
    warn: bool,
    stacklevel: int = 3,
) -> dict[str, Any]:
    """``params`` with former names (``renamed``: old -> new) replaced by the current ones.

    A name is replaced when it is not a current parameter, its new name is one and the new name is not given too
    (then both reach :func:`check_names`, which names the clash).  ``warn`` emits a ``FutureWarning`` per replaced
    name (at ``stacklevel``, the caller's caller by default); configs and saved states are upgraded silently.
    """
    out = dict(params)
    if not renamed or not out.keys() & renamed.keys():
        return out
    valid = set(valid)
    upgraded: dict[str, Any] = {}
    for key, value in out.items():
        new = renamed.get(key)
        if key not in valid and new is not None and new in valid and new not in out:
            if warn:
                warnings.warn(
                    f"{owner}: parameter {key!r} was renamed {new!r} (one name per idea across the library); "
                    f"the old name will stop working in a later release",
                    FutureWarning,
                    stacklevel=stacklevel,
                )
            key = new
        upgraded[key] = value
    return upgraded


#: common constraint lists
POSITIVE_INT = (Interval(int, 1, None),)
NONNEGATIVE_INT = (Interval(int, 0, None),)
POSITIVE = (Interval(float, 0, None, closed="neither"),)
NONNEGATIVE = (Interval(float, 0, None),)
SEED = (Interval(int, 0, None), None)
BOOL = (bool,)
MODALITY_NAMES = (list, None)
MODALITY_WEIGHTS = (dict, None)


class Parameterized:
    """Hyper-parameters as data, written once for models and encoders (scikit-learn's ``BaseEstimator``).

    Subclasses take keyword-only hyper-parameters in ``__init__`` and store them unchanged, declare their allowed
    values in ``_param_constraints`` and former names in ``_renamed_params`` (both merged along the bases, the
    subclass winning).  Each subclass's ``__init__`` is wrapped so that positional arguments and unknown names raise
    :class:`ConfigError` (with a did-you-mean hint) and former names are upgraded with a ``FutureWarning``; with
    ``_validate_on_init`` the values are checked once the outermost constructor has stored them (encoders), else
    by the subclass at fit time (models).
    """

    _param_constraints: ClassVar[dict[str, list[Any]]] = {}
    _renamed_params: ClassVar[dict[str, str]] = {}
    #: check the constraints when the outermost constructor returns (models check them in ``fit``)
    _validate_on_init: ClassVar[bool] = False
    #: refuse positional arguments with a ConfigError naming the parameters (else they reach ``__init__``, whose
    #: own keyword-only signature refuses them: the library's models; helper subclasses in tests and benchmarks)
    _refuse_positional: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None or getattr(init, "_checks_params", False):
            return
        owner = cls

        @functools.wraps(init)
        def checked_init(self: Any, *args: Any, **params: Any) -> None:
            name = type(self).__name__
            if args and owner._refuse_positional:
                raise ConfigError(
                    f"{name} takes keyword arguments only, got {len(args)} positional; name them: "
                    f"{name}({', '.join(f'{p}=...' for p in owner.param_names()[: max(1, len(args))])})"
                )
            renamed = owner._all_renamed()
            params = upgrade_renamed(name, params, renamed, owner.param_names(), warn=True)
            check_names(name, params, owner.param_names(), renamed)
            init(self, *args, **params)
            if owner._validate_on_init and type(self).__init__ is checked_init:  # every parameter is stored now
                self._validate_params()

        checked_init._checks_params = True  # type: ignore[attr-defined]
        cls.__init__ = checked_init  # type: ignore[method-assign]

    @classmethod
    def param_names(cls) -> list[str]:
        """The hyper-parameter names ``__init__`` takes, in order (what :meth:`get_params` returns)."""
        sig = inspect.signature(cls.__init__)
        return [
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    @classmethod
    def param_constraints(cls) -> dict[str, list[Any]]:
        """The declared allowed values of each hyper-parameter, merged along the bases (the subclass wins)."""
        return _merged_along_bases(cls, "_param_constraints")

    @classmethod
    def _all_renamed(cls) -> dict[str, str]:
        """Former parameter names -> current ones, merged along the bases (the subclass wins)."""
        return _merged_along_bases(cls, "_renamed_params")

    @classmethod
    def upgrade_params(cls, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` with former names replaced by the current ones, silently (configs and saved states written
        before a rename: ``{"factors": 64}`` -> ``{"n_factors": 64}``)."""
        return upgrade_renamed(cls.__name__, params, cls._all_renamed(), cls.param_names(), warn=False)

    def get_params(self) -> dict[str, Any]:
        """Hyper-parameters as given to ``__init__`` (the same objects)."""
        return {name: getattr(self, name) for name in self.param_names()}

    def set_params(self, **params: Any) -> Self:
        """Set hyper-parameters (former names upgraded with a ``FutureWarning``; unknown names raise
        :class:`ConfigError`); the values are checked as the constructor's are."""
        name = type(self).__name__
        renamed = self._all_renamed()
        params = upgrade_renamed(name, params, renamed, self.param_names(), warn=True)
        check_names(name, params, self.param_names(), renamed)
        for key, value in params.items():
            setattr(self, key, value)
        if self._validate_on_init:
            self._validate_params()
        return self

    def _validate_params(self) -> None:
        """Check every hyper-parameter against the declared constraints; raises :class:`ConfigError`."""
        validate_params(type(self).__name__, self.get_params(), self.param_constraints())

    def _clone_param(self, value: Any) -> Any:
        """The value a clone gets for one parameter (default: the same object; nested estimators are cloned)."""
        return value

    def clone(self, **params: Any) -> Self:
        """A fresh, unfitted copy with the same (or overridden) hyper-parameters.

        As scikit-learn's ``clone``, it checks that the new object stores every parameter unchanged (the same
        object), so that a constructor that alters its arguments is caught (:class:`ConfigError`).
        """
        new_params = upgrade_renamed(type(self).__name__, params, self._all_renamed(), self.param_names(), warn=True)
        given = {**{k: self._clone_param(v) for k, v in self.get_params().items()}, **new_params}
        new = type(self)(**given)
        stored = new.get_params()
        for name, value in given.items():
            if stored.get(name) is not value:
                raise ConfigError(
                    f"{type(self).__name__}.__init__ does not store parameter {name!r} unchanged (given {value!r}, "
                    f"stored {stored.get(name)!r}); store hyper-parameters as given and check or convert them in fit"
                )
        return new

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def _merged_along_bases(cls: type, attr: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        out.update(vars(klass).get(attr, {}))
    return out
