"""Packaging: one version, ``python -m fusionrec``, the typing marker and data files shipped with the package.

These run against whatever ``fusionrec`` is importable: the editable checkout in the test suite, and the installed
wheel in ``scripts/wheel_test.sh`` (which copies the tests and ``pyproject.toml`` beside it, never ``src/``).
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import fusionrec

ROOT = Path(__file__).resolve().parents[1]


def test_python_dash_m_runs_the_command_line() -> None:
    """``python -m fusionrec`` is the ``fusionrec`` command: same version line, same program name in its help."""
    out = subprocess.run([sys.executable, "-m", "fusionrec", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"fusionrec {fusionrec.__version__}"
    helped = subprocess.run([sys.executable, "-m", "fusionrec", "--help"], capture_output=True, text=True, check=True)
    assert "Usage: fusionrec " in helped.stdout
    assert "quickstart" in helped.stdout


def test_version_lives_in_one_place() -> None:
    """pyproject reads the version from ``fusionrec/_version.py`` (no second copy), and the installed metadata agrees."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    project = pyproject["project"]
    assert "version" not in project, "pyproject.toml states a version of its own: use [tool.setuptools.dynamic]"
    assert "version" in project["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "fusionrec._version.__version__"}
    assert importlib.metadata.version("fusionrec") == fusionrec.__version__


def test_package_ships_typing_marker_and_data_files() -> None:
    """``py.typed`` (PEP 561), the web page and the report template are part of the installed package."""
    root = importlib.resources.files("fusionrec")
    for name in ("py.typed", "serving/web/index.html", "serving/web/app.js", "serving/web/style.css"):
        assert root.joinpath(name).is_file(), name
    assert root.joinpath("evaluation/templates/report.html.j2").is_file()


def test_license_and_changelog() -> None:
    """An MIT LICENSE (as pyproject declares) and a changelog; an installed wheel names its license file."""
    dist = importlib.metadata.distribution("fusionrec")
    if (ROOT / "src" / "fusionrec").is_dir():  # a checkout
        assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
        assert "## [Unreleased]" in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    else:  # the installed wheel
        files = [str(f) for f in dist.files or []]
        assert any(f.endswith("licenses/LICENSE") for f in files), files
    assert dist.metadata["License-Expression"] == "MIT"


@pytest.mark.parametrize("module", ["fusionrec.__main__", "fusionrec.cli.main"])
def test_command_modules_import_without_running(module: str) -> None:
    """Importing the entry modules does not run the command (``python -m`` guards it)."""
    code = f"import {module}; print('imported')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "imported"
