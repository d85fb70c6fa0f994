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


def test_root_exports_one_way_per_job_and_each_name_imports() -> None:
    """``fusionrec.__all__`` is the lazy export table (plus the version), every name imports, and the typing block
    names the same objects (so type checkers see what the lazy loader returns)."""
    import ast
    import inspect

    table = dict(fusionrec._EXPORTS)
    assert sorted(fusionrec.__all__) == sorted([*table, "__version__"])
    for name, module in table.items():
        value, defined = getattr(fusionrec, name), getattr(importlib.import_module(module), name)
        assert value is defined or (name == "explain" and value is importlib.import_module("fusionrec.explain")), name

    typed = {
        alias.asname or alias.name
        for node in ast.walk(ast.parse(inspect.getsource(fusionrec)))
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
        for imp in node.body
        if isinstance(imp, ast.ImportFrom)
        for alias in imp.names
    }
    assert typed == set(table)
    jobs = {  # the list: loading, splits, features, make_model, evaluation, experiments, save/load, serving,
        # explain and the re-rankers
        "from_files", "load_dataset", "per_user_split", "leave_last_out", "build_side_info", "make_model",
        "evaluate_ranking", "run_experiment", "load_model", "save_bundle", "create_app", "explain", "Calibrated",
        "MMR", "ExposureCap", "FairExposure",
    }  # fmt: skip
    assert jobs <= set(fusionrec.__all__)


def test_from_fusionrec_import_explain_is_callable_whatever_was_imported_first() -> None:
    """Importing the submodule ``fusionrec.explain`` rebinds the package attribute to the module: calling it is
    still :func:`fusionrec.explain.explain`."""
    code = (
        "import fusionrec.explain as m, numpy as np, warnings; warnings.simplefilter('error')\n"
        "from fusionrec import explain, make_model, Interactions\n"
        "from fusionrec.data import IdMap\n"
        "import scipy.sparse as sp\n"
        "x = sp.csr_matrix(np.eye(4, dtype=np.float32) + np.eye(4, k=1, dtype=np.float32))\n"
        "train = Interactions(x, IdMap(np.arange(4)), IdMap(np.arange(4)))\n"
        "model = make_model('MostPopular').fit(train)\n"
        "print(explain(model, 0, 3).sentence == m.explain(model, 0, 3).sentence)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_readme_uses_the_root_exports() -> None:
    """The README's Python examples import every public name from ``fusionrec``, not from where it is defined."""
    import ast
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert blocks
    deep = []
    for block in blocks:
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fusionrec."):
                deep += [f"from {node.module} import {a.name}" for a in node.names if a.name in fusionrec.__all__]
    assert not deep, f"use `from fusionrec import ...` for: {deep}"
