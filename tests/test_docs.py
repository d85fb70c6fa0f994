"""The documentation follows the code: generated pages cover every model, command and public name; the site loads
nothing from other hosts; the public API is documented (docstring coverage at least 95%).

The site itself is built by ``bash scripts/docs.sh`` (strict, tutorials executed) in CI; these tests check the
generators and the checker without building it, in seconds.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import fusionrec

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DOCSTRING_COVERAGE = 0.95


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def hook() -> ModuleType:
    if not DOCS.is_dir():
        pytest.skip("no docs/ beside the tests (an installed wheel)")
    pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install 'fusionrec[docs]')")
    return _load(DOCS / "_hooks" / "fusionrec_docs.py", "fusionrec_docs_hook")


@pytest.fixture(scope="module")
def checker() -> ModuleType:
    path = ROOT / "scripts" / "docs_check.py"
    if not path.is_file():
        pytest.skip("no scripts/ beside the tests (an installed wheel)")
    return _load(path, "fusionrec_docs_check")


# --------------------------------------------------------------------------------------------- docstring coverage
def public_api() -> Iterator[tuple[str, Any]]:
    """Every name of ``fusionrec.__all__`` and the public methods and properties its classes define."""
    for name in sorted(fusionrec.__all__):
        if name == "__version__":
            continue
        obj = getattr(fusionrec, name)
        yield f"fusionrec.{name}", obj
        if not inspect.isclass(obj):
            continue
        for attr, member in vars(obj).items():
            if attr.startswith("_"):
                continue
            if isinstance(member, staticmethod | classmethod):
                member = member.__func__
            if isinstance(member, property):
                member = member.fget
            if inspect.isfunction(member):
                yield f"fusionrec.{name}.{attr}", member


def test_public_api_docstring_coverage() -> None:
    """At least 95% of the public API (``fusionrec.__all__`` and its classes' public methods) has a docstring."""
    items = list(public_api())
    missing = [name for name, obj in items if not (inspect.getdoc(obj) or "").strip()]
    coverage = 1 - len(missing) / len(items)
    assert len(items) > 80, "the public API walk found too little: is fusionrec.__all__ intact?"
    assert coverage >= DOCSTRING_COVERAGE, f"docstring coverage {coverage:.1%} of {len(items)}; missing: {missing}"


def test_every_public_function_and_class_has_a_docstring() -> None:
    """The names in ``fusionrec.__all__`` themselves are all documented (the coverage figure is about methods)."""
    undocumented = [n for n, obj in public_api() if n.count(".") == 1 and not (inspect.getdoc(obj) or "").strip()]
    assert not undocumented


# --------------------------------------------------------------------------------------------------- generators
def test_every_registered_model_gets_a_generated_page(hook: ModuleType) -> None:
    """One page per registered model with its family, every parameter and the paper; the index links each."""
    from fusionrec.models import available_models

    models = hook._models()
    assert [m["name"] for m in models] == available_models()
    index = hook.models_index(models)
    for m in models:
        page = hook.model_page(m)
        assert page.startswith(f"# {m['name']}\n")
        assert m["info"].family in page
        for pname, _default, _allowed in m["info"].params:
            assert f"| `{pname}` |" in page, (m["name"], pname)
        assert f"::: {m['path']}" in page
        assert f"]({m['name']}.md)" in index


def test_a_model_without_a_paper_fails_the_build(hook: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    from mkdocs.exceptions import PluginError

    monkeypatch.delitem(hook.PAPERS, "EASE")
    with pytest.raises(PluginError, match="EASE"):
        hook._models()


def test_api_reference_lists_every_public_name(hook: ModuleType) -> None:
    """Every name of ``fusionrec.__all__`` is on the API page, pointing at the object it resolves to."""
    page = hook.api_page()
    for name in fusionrec.__all__:
        if name == "__version__":
            continue
        assert f"### `{name}`" in page, name
        target = hook._defined_at(name)
        assert f"::: {target}" in page
        module, _, qualname = target.rpartition(".")
        assert getattr(importlib.import_module(module), qualname) is not None


def test_cli_reference_covers_every_command_and_option(hook: ModuleType) -> None:
    """Every command of the ``fusionrec`` click tree and each of its options is on the CLI page."""
    import typer

    from fusionrec.cli.main import app

    page = hook.cli_page()
    seen: list[str] = []

    def walk(cmd: Any, path: list[str]) -> None:  # typer's own copy of click: read by interface
        seen.append(" ".join(path))
        assert f"`{' '.join(path)}`" in page, path
        for p in cmd.params:
            if p.param_type_name == "option" and not p.hidden:
                assert all(re.search(rf"[`, ]{re.escape(o)}\b", page) for o in p.opts), (path, p.opts)
        if hasattr(cmd, "list_commands"):
            ctx = cmd.context_class(cmd, info_name=path[-1])
            for sub in cmd.list_commands(ctx):
                walk(cmd.get_command(ctx, sub), [*path, sub])

    walk(typer.main.get_command(app), ["fusionrec"])
    assert len(seen) > 10, seen
    for command in ("quickstart", "evaluate", "models list", "datasets export"):
        assert f"`fusionrec {command}`" in page


def test_quoted_benchmark_tables_resolve(hook: ModuleType) -> None:
    """Each ``<!-- results: HEADING -->`` in the pages names a section of benchmarks/RESULTS.md with a table."""
    marks = [m for page in DOCS.rglob("*.md") for m in hook._RESULTS_MARK.findall(page.read_text(encoding="utf-8"))]
    assert len(marks) >= 4
    for heading in marks:
        section = hook._results_section(heading)
        assert "\n|---" in section or "\n| ---" in section or "|---|" in section, heading
    with pytest.raises(Exception, match="no section"):
        hook._results_section("A heading that is not there")


def test_nav_and_offline_settings() -> None:
    """Every page of the nav exists, the five tutorials are in it, and the theme loads no remote font."""
    if not (ROOT / "mkdocs.yml").is_file():
        pytest.skip("no mkdocs.yml beside the tests (an installed wheel)")
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = text[text.index("\nnav:") :]
    pages = re.findall(r":\s+([\w/.-]+\.(?:md|py))\s*$", nav, flags=re.M)
    generated = {"changelog.md", "reference/api.md", "reference/cli.md"}
    for page in pages:
        assert page in generated or (DOCS / page).is_file(), page
    assert sum(p.startswith("tutorials/") for p in pages) == 5
    assert re.search(r"^\s+font: false\s*$", text, flags=re.M), "theme.font must be false (no Google Fonts)"
    assert not re.search(r"^\s+- offline\s*$", text, flags=re.M), "the offline plugin loads a shim from unpkg"
    assert "allow_errors: false" in text, "a failing tutorial must break the build"


def test_tutorials_are_python_scripts() -> None:
    """The tutorials are jupytext percent scripts: valid Python with markdown cells."""
    tutorials = sorted((DOCS / "tutorials").glob("*.py")) if DOCS.is_dir() else []
    if not tutorials:
        pytest.skip("no docs/ beside the tests (an installed wheel)")
    assert len(tutorials) == 5
    for path in tutorials:
        source = path.read_text(encoding="utf-8")
        compile(source, str(path), "exec")
        assert source.startswith("# %% [markdown]\n# # "), path.name
        assert "plt.show()" in source or "pd.DataFrame" in source, path.name


# ------------------------------------------------------------------------------------------------------ checker
@pytest.mark.parametrize(
    "html",
    [
        '<script src="https://unpkg.com/iframe-worker/shim"></script>',
        '<link rel="stylesheet" href="//fonts.googleapis.com/css?family=Roboto">',
        '<link rel="preload" as="font" href="https://cdn.example/x.woff2">',
        "<style>@import url(https://fonts.googleapis.com/css2?family=Roboto);</style>",
        '<img src="http://example.com/a.png">',
    ],
)
def test_checker_flags_remote_resources(checker: ModuleType, html: str) -> None:
    assert checker.remote_resources(html)


@pytest.mark.parametrize(
    "html",
    [
        '<a href="https://keepachangelog.com/">changelog format</a>',
        '<link rel="canonical" href="https://example.org/page.html">',
        '<script src="assets/javascripts/bundle.js"></script>',
        '<img src="data:image/png;base64,iVBOR">',
    ],
)
def test_checker_allows_links_and_local_resources(checker: ModuleType, html: str) -> None:
    assert checker.remote_resources(html) == []


def test_checker_fails_a_site_with_a_cdn_script(checker: ModuleType, tmp_path: Path) -> None:
    """The static check of a built site reports a page that loads a CDN script (and a missing search index)."""
    (tmp_path / "index.html").write_text('<html><script src="https://cdn.jsdelivr.net/x.js"></script></html>')
    failures = checker.check_static(tmp_path)
    assert any("cdn.jsdelivr.net" in f for f in failures)
    assert any("search_index.json" in f for f in failures)
