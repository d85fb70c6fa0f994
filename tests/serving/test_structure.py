"""The shape of the serving package (issue 19): small modules split by idea, imports one way, the model's declaration
read instead of guessed, and each input rule written once (:mod:`fusionrec.serving.rules`)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import fusionrec.serving

SERVING = Path(fusionrec.serving.__file__).resolve().parent
FILES = sorted(SERVING.rglob("*.py"))
#: the longest a serving module may be
MAX_LINES = 600
#: ``getattr`` calls allowed in serving: none reads a model (lazy exports; Starlette routes' optional attributes)
GETATTR_ALLOWED = {"__init__.py": 1, "http.py": 4}


def _module(path: Path) -> str:
    parts = list(path.relative_to(SERVING.parent.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_serving_modules_are_small() -> None:
    long = {p.name: n for p in FILES if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"serving modules over {MAX_LINES} lines: {long}"


def test_no_import_circle_inside_serving() -> None:
    """Imports between serving modules (inside functions and TYPE_CHECKING blocks too) run one way."""
    modules = {_module(p): p for p in FILES}
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                while name and name not in modules:
                    name = name.rpartition(".")[0]
                if name and name != mod and not (path.name == "__init__.py" or name == "fusionrec.serving"):
                    edges[mod].add(name)

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            m = todo.pop()
            if m == goal:
                return True
            if m not in seen:
                seen.add(m)
                todo.extend(edges[m])
        return False

    circles = sorted((a, b) for a in edges for b in edges[a] if reaches(b, a))
    assert not circles, f"serving modules importing each other: {circles}"


def _calls(path: Path, name: str) -> int:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return sum(
        1
        for n in ast.walk(tree)
        if isinstance(n, ast.Call)
        and (
            (isinstance(n.func, ast.Name) and n.func.id == name)
            or (isinstance(n.func, ast.Attribute) and n.func.attr == name)
        )
    )


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SERVING)))
def test_serving_reads_declarations_never_guesses(path: Path) -> None:
    """No ``hasattr`` / ``vars`` / ``inspect.signature`` in serving, ``getattr`` only where no model is read, and
    no private attribute of a model (``model._x``) is touched: capabilities come from ``declaration()``."""
    assert _calls(path, "hasattr") == 0
    assert _calls(path, "vars") == 0
    assert _calls(path, "signature") == 0
    assert _calls(path, "getattr") <= GETATTR_ALLOWED.get(path.name, 0)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    private = [
        f"{ast.unparse(n)} (line {n.lineno})"
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute)
        and n.attr.startswith("_")
        and not n.attr.startswith("__")
        and "model" in ast.unparse(n.value).lower()
    ]
    assert not private, f"private model attributes read: {private}"


def test_the_links_rule_is_one_function() -> None:
    """Self-links, zero weights and repeats are handled by ``rules.clean_links`` alone."""
    from fusionrec.serving.rules import clean_links, clean_social

    kept = clean_links([("a", "b", 1.0), ("a", "a", 5.0), ("a", "c", 0.0), ("a", "b", 3.0), ("b", "a", 0.5)])
    assert kept == {("a", "b"): 3.0, ("b", "a"): 0.5}
    import numpy as np
    import scipy.sparse as sp

    social = clean_social(sp.csr_matrix(np.array([[2.0, 1.0, 0.0], [0.0, 0.0, 0.5], [1.0, 0.0, 3.0]])))
    np.testing.assert_array_equal(social.toarray(), [[0.0, 1.0, 0.0], [0.0, 0.0, 0.5], [1.0, 0.0, 0.0]])


def test_posted_friends_are_cleaned_at_the_edge() -> None:
    """The schema applies the links rule: the engine gets each friend once, with its largest weight, never the
    user itself and never a zero weight (ids compared as their strings: JSON 7 is "7")."""
    from fusionrec.serving.schemas import UserIn

    body = UserIn.model_validate(
        {
            "user": 7,
            "friends": [
                {"user": "a", "weight": 1.0},
                {"user": "7", "weight": 2.0},
                {"user": "a", "weight": 4.0},
                {"user": "b", "weight": 0},
                {"user": 8},
            ],
        }
    )
    assert body.friends is not None
    assert [(str(f.user), f.weight) for f in body.friends] == [("a", 4.0), ("8", 1.0)]


def test_candidates_are_parsed_once() -> None:
    from fusionrec.serving.rules import parse_candidates

    assert parse_candidates(None) is None
    assert parse_candidates("i1,,i2,i1, i3") == ["i1", "i2", " i3"]
