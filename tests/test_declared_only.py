"""Above the models layer, code reads a model's declaration and public API, never guesses at it (issue 19).

Models state what they hold and can do once, as data on the class (:mod:`fusionrec.models.declaration`:
``type(model).declaration()``), and expose public methods (``check_fitted``, ``user_indices``, ``param_names``,
``param_defaults``, ``search_space``, ``training_curves`` ...).  Every module outside ``src/fusionrec/models/`` that
can hold a model - ensemble, rerank, explain, evaluation, tuning, tracking, distributed, serving, cli (data/,
features/ and the helpers sit below models and cannot import them: the import contracts) - reads those.  The rule,
checked on their source (AST):

1. no ``getattr`` / ``hasattr`` / ``vars`` call whose first argument is a model expression (or ``type(<model>)``);
2. no ``inspect.signature`` (nor ``getfullargspec``) of anything built from a model expression or of a ``fit`` /
   ``__init__`` attribute;
3. no read of a model's private attribute: ``<model>._name`` or ``<model>.__dict__``.

A *model expression* is a name that holds a model by convention (:data:`MODEL_NAMES`: ``model``, ``fitted``,
``work``, ``member``, ``first``, ``est`` ...), a name annotated with a model class (``Recommender``, ``Ensemble``,
any registered model class), a loop variable over models (``for m in members``), an attribute with such a name
(``bundle.model``, ``self.model``, ``state.work``, an ensemble's ``members_``), or an item of one (``members[0]``).
``self`` and ``cls`` are not model expressions (an ensemble's own methods may use its own state), nor is a name the
function built with ``cls(...)`` (a class assembling an instance of itself).  Name new variables that hold models by
these conventions; the test then holds them to the rule.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "fusionrec"

#: names that hold a model object wherever they appear outside models/
MODEL_NAMES = frozenset(
    {
        "model",
        "models",
        "fitted",
        "work",
        "member",
        "members",
        "first",
        "est",
        "estimator",
        "rec",
        "recommender",
        "inner",
        "ensemble",
        "trained",
        "fresh",
        "loaded",
        "base_model",
        "new_model",
    }
)
#: annotations that make a name a model
MODEL_TYPES = frozenset({"Recommender", "Ensemble", "RankingEnsemble"})
INTROSPECTION = frozenset({"getattr", "hasattr", "vars"})
SIGNATURES = frozenset({"signature", "getfullargspec", "getargspec"})


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def _annotation_names(node: ast.expr | None) -> set[str]:
    if node is None:
        return set()
    if isinstance(node, ast.Constant) and isinstance(node.value, str):  # "Recommender | None"
        try:
            node = ast.parse(node.value, mode="eval").body
        except SyntaxError:
            return set()
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)
    }


class _Checker(ast.NodeVisitor):
    def __init__(self, path: str, model_types: frozenset[str]) -> None:
        self.path = path
        self.model_types = model_types
        self.found: list[Finding] = []
        self.scopes: list[tuple[set[str], set[str]]] = [(set(MODEL_NAMES), set())]  # (model names, own instances)

    # -------------------------------------------------------------- scopes
    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        names, own = set(self.scopes[-1][0]), set()
        args = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
        for a in [*args, node.args.vararg, node.args.kwarg]:
            if a is not None and _annotation_names(a.annotation) & self.model_types:
                names.add(a.arg)
        for sub in ast.walk(node):
            typed = isinstance(sub, ast.AnnAssign) and isinstance(sub.target, ast.Name)
            if typed and _annotation_names(sub.annotation) & self.model_types:  # type: ignore[union-attr]
                names.add(sub.target.id)  # type: ignore[union-attr]
            if isinstance(sub, ast.Assign) and isinstance(sub.value, ast.Call):
                func = sub.value.func
                if isinstance(func, ast.Name) and func.id == "cls":
                    own |= {t.id for t in sub.targets if isinstance(t, ast.Name)}
        self.scopes.append((names, own))
        for _ in range(2):  # loop variables over models are models (``for m in members``), nested loops too
            for sub in ast.walk(node):
                loop = isinstance(sub, ast.For | ast.comprehension) and isinstance(sub.target, ast.Name)
                if loop and self._is_model(sub.iter):  # type: ignore[union-attr]
                    names.add(sub.target.id)  # type: ignore[union-attr]
        self.generic_visit(node)
        self.scopes.pop()

    visit_FunctionDef = _function  # noqa: N815 (ast.NodeVisitor's names)
    visit_AsyncFunctionDef = _function  # noqa: N815

    # -------------------------------------------------------------- what a model is
    def _is_model(self, node: ast.expr) -> bool:
        names, own = self.scopes[-1]
        if isinstance(node, ast.Name):
            return node.id in names and node.id not in own and node.id not in ("self", "cls")
        if isinstance(node, ast.Attribute):
            return node.attr in MODEL_NAMES or node.attr == "members_"
        if isinstance(node, ast.Subscript):
            return self._is_model(node.value)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "type" and node.args:
            return self._is_model(node.args[0])
        return False

    def _mentions_model(self, node: ast.expr) -> bool:
        return any(isinstance(n, ast.expr) and self._is_model(n) for n in ast.walk(node))

    def _flag(self, node: ast.AST, what: str) -> None:
        self.found.append(Finding(self.path, getattr(node, "lineno", 0), what))

    # -------------------------------------------------------------- the rule
    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        if name in INTROSPECTION and isinstance(func, ast.Name) and node.args and self._is_model(node.args[0]):
            self._flag(node, f"{name}() on a model: read type(model).declaration() or a public method")
        if name in SIGNATURES and node.args:
            arg = node.args[0]
            fit_like = isinstance(arg, ast.Attribute) and arg.attr in ("fit", "__init__")
            if fit_like or self._mentions_model(arg):
                self._flag(node, f"{name}() of a model: read declaration().fit_inputs or cls.param_names()")
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        private = node.attr.startswith("_") and not (node.attr.startswith("__") and node.attr != "__dict__")
        if private and self._is_model(node.value):
            self._flag(node, f"private attribute {node.attr!r} of a model: use its declaration or public API")
        self.generic_visit(node)


def _model_types() -> frozenset[str]:
    from fusionrec.models.registry import MODELS

    return MODEL_TYPES | {target.partition(":")[2] for target in MODELS.values()}


def check_source(source: str, path: str = "<string>") -> list[Finding]:
    """The findings of the rule in ``source`` (module notes)."""
    checker = _Checker(path, _model_types())
    checker.visit(ast.parse(source, path))
    return checker.found


#: the areas above the models layer (the import contracts keep data/, features/ and the helpers below it from
#: holding a model at all; there "model" names a text encoder's network)
ABOVE_MODELS = ("ensemble", "rerank", "explain", "evaluation", "tuning", "tracking", "distributed", "serving", "cli")


def _area(path: Path) -> str:
    return path.relative_to(SRC).parts[0].removesuffix(".py")


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if _area(p) in ABOVE_MODELS)


@pytest.mark.parametrize("area", ABOVE_MODELS)
def test_code_outside_models_reads_only_declarations_and_public_api(area: str) -> None:
    found = []
    for path in _modules():
        if _area(path) == area:
            found += check_source(path.read_text(encoding="utf-8"), str(path.relative_to(SRC.parent.parent)))
    assert not found, "model introspection outside models/:\n" + "\n".join(map(str, found))


@pytest.mark.parametrize(
    "snippet",
    [
        "def f(model):\n    return getattr(model, 'fold_in_users', None)",
        "def f(model):\n    return hasattr(type(model), 'score_parts')",
        "def f(work):\n    return dict(vars(work))",
        "import inspect\ndef f(model):\n    return 'valid' in inspect.signature(model.fit).parameters",
        "import inspect\ndef f(cls):\n    return inspect.signature(cls.__init__)",
        "def f(model):\n    model._check_fitted()",
        "def f(model):\n    return model.__dict__",
        "def f(x: Recommender):\n    return x._to_indices([1], 'user')",
        "def f(bundle):\n    return getattr(bundle.model, 'item_factors_', None)",
        "def f(self):\n    return [m._x for m in self.members_]",
        "def f(self):\n    return self.members_[0]._x",
        "def f(members):\n    return members[0]._learned('x')",
    ],
)
def test_the_rule_catches_each_kind_of_guessing(snippet: str) -> None:
    """Each guess the issue names, put back in a snippet, is found (so the test above can fail)."""
    assert check_source(snippet), snippet


@pytest.mark.parametrize(
    "snippet",
    [
        "def f(model):\n    return type(model).declaration().can_batch_fold_in",
        "def f(self):\n    return hasattr(self, 'members_')",
        "def f(cls, p):\n    ensemble = cls(**p)\n    ensemble._set_state({})\n    return ensemble",
        "def f(encoder):\n    return getattr(encoder, 'vectorizer_', None)",
        "def f(model):\n    return model.user_id_values_, model.check_fitted()",
    ],
)
def test_the_rule_allows_declarations_public_api_and_non_models(snippet: str) -> None:
    assert not check_source(snippet), snippet
