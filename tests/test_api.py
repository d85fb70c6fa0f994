from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import fusionrec

PUBLIC_MODULES = [
    "fusionrec",
    "fusionrec.data",
    "fusionrec.models",
    "fusionrec.evaluation",
    "fusionrec.errors",
    "fusionrec.ensemble",
]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_matches_public_names(name: str) -> None:
    module = importlib.import_module(name)
    exported = set(module.__all__)
    for attr in exported:
        assert getattr(module, attr) is not None, f"{name}.{attr} in __all__ but missing"
    if name != "fusionrec":  # the root module is lazy: its __all__ is the whole public surface
        public = {
            k
            for k, v in vars(module).items()
            if not k.startswith("_")
            and getattr(v, "__module__", "").startswith("fusionrec")
            and not isinstance(v, type(sys))
        }
        assert public <= exported | {"annotations"}, f"public but not in __all__: {public - exported}"
    assert sorted(exported) == sorted(set(module.__all__)), "duplicates in __all__"


def test_import_is_light() -> None:
    code = (
        "import sys, fusionrec; heavy = [m for m in ('numpy', 'pandas', 'scipy', 'torch', 'sklearn', 'numba') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_version() -> None:
    assert fusionrec.__version__.count(".") == 2


def test_every_registered_model_imports() -> None:
    """Each registry name resolves to a Recommender class (a renamed module or class fails here, not at runtime)."""
    from fusionrec.models import Recommender, available_models, get_model_class

    names = available_models()
    assert len(names) >= 20
    for name in names:
        cls = get_model_class(name)
        assert isinstance(cls, type) and issubclass(cls, Recommender), name
