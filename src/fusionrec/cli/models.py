"""``fusionrec models list`` and ``fusionrec models info NAME``: the registered models, their family, whether they
use content and support cold start, and their hyper-parameters with defaults and allowed values."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["ModelInfo", "app", "describe_model", "model_family"]

app = typer.Typer(help="List the registered models and show their hyper-parameters.", no_args_is_help=True)

# module of the model class (fusionrec.models.<key>...) -> family shown by `models list`
FAMILIES: dict[str, str] = {
    "fusionrec.models.baselines": "baseline",
    "fusionrec.models.knn": "neighbourhood",
    "fusionrec.models.mf": "matrix factorisation",
    "fusionrec.models.linear": "linear autoencoder",
    "fusionrec.models.content": "content-based",
    "fusionrec.models.hybrid": "multimodal fusion",
    "fusionrec.models.vbpr": "multimodal fusion",
    "fusionrec.models.fusion": "multimodal fusion",
    "fusionrec.models.graph": "multimodal fusion",
    "fusionrec.models.graph_ease": "linear autoencoder",
    "fusionrec.models.lightgcn": "graph",
    "fusionrec.models.activity": "linear autoencoder",
    "fusionrec.models.krr": "content-based",
    "fusionrec.models.social": "social",
    "fusionrec.models.social_graph": "social",
    "fusionrec.models.sequential": "sequential",
    "fusionrec.models.private": "private (differential privacy)",
    "fusionrec.models.federated": "federated",
    "fusionrec.ensemble": "ensemble",
}


@dataclass(frozen=True)
class ModelInfo:
    """What ``models list`` / ``models info`` show of one registered model."""

    name: str
    family: str
    summary: str
    uses_content: bool
    predicts_ratings: bool
    cold_start: str  # "items", "users", "items, users" or "no"
    #: (name, default repr, allowed values) per hyper-parameter, in signature order
    params: tuple[tuple[str, str, str], ...]


def model_family(module: str) -> str:
    """The family of a model class defined in ``module`` (``"fusionrec.models.mf.als"`` -> ``"matrix factorisation"``)."""
    for prefix, family in FAMILIES.items():
        if module == prefix or module.startswith(prefix + "."):
            return family
    return "other"


def describe_model(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of a registered model (its class is imported).

    Raises
    ------
    ConfigError
        Unknown name (the message lists the registered ones).
    ImportError
        The model needs an optional dependency that is not installed.
    """
    from fusionrec._params import _describe
    from fusionrec.models.registry import MODELS, get_model_class

    cls = get_model_class(name)
    decl = cls.declaration()
    constraints = cls.param_constraints()
    defaults = cls.param_defaults()
    params = []
    for pname in cls.param_names():
        default = repr(defaults[pname]) if pname in defaults else "(required)"
        allowed = " or ".join(_describe(c) for c in constraints.get(pname, [])) or "any"
        params.append((pname, default, allowed))
    cold = [what for what, can in (("items", decl.can_add_items), ("users", decl.can_fold_in)) if can]
    doc = inspect.getdoc(cls) or ""
    return ModelInfo(
        name=name,
        family=model_family(MODELS[name].partition(":")[0]),
        summary=doc.split("\n\n")[0].replace("\n", " "),
        uses_content=decl.uses_side_info or bool({"texts", "images"} & decl.fit_inputs),
        predicts_ratings=decl.predicts_ratings,
        cold_start=", ".join(cold) or "no",
        params=tuple(params),
    )


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


@app.command("list")
def models_list() -> None:
    """List every registered model: family, content use, rating prediction and cold-start support."""
    from fusionrec.models.registry import available_models

    table = Table(title="models")
    for col in ("name", "family", "uses content", "predicts ratings", "cold start"):
        table.add_column(col, no_wrap=True)
    missing: list[str] = []
    for name in available_models():
        try:
            info = describe_model(name)
        except ImportError as exc:
            table.add_row(name, "?", "?", "?", "?")
            missing.append(f"{name}: {exc}")
            continue
        table.add_row(info.name, info.family, _yes(info.uses_content), _yes(info.predicts_ratings), info.cold_start)
    console = Console()
    console.print(table)
    for line in missing:
        console.print(f"unavailable (optional dependency missing) {line}", soft_wrap=True, markup=False)
    console.print("`fusionrec models info NAME` shows a model's parameters", markup=False)


@app.command("info")
def models_info(
    name: Annotated[str, typer.Argument(help="a registered model name, e.g. ALS (see `fusionrec models list`)")],
) -> None:
    """Show a model's hyper-parameters with their defaults and allowed values."""
    info = describe_model(name)
    console = Console()
    console.print(f"[bold]{info.name}[/] ({info.family}): {info.summary}", soft_wrap=True)
    facts: dict[str, Any] = {
        "uses content": _yes(info.uses_content),
        "predicts ratings": _yes(info.predicts_ratings),
        "cold start": info.cold_start,
    }
    console.print(", ".join(f"{k}: {v}" for k, v in facts.items()), markup=False)
    table = Table(title=f"{info.name} parameters")
    table.add_column("parameter", style="bold", no_wrap=True)
    table.add_column("default")
    table.add_column("allowed")
    for pname, default, allowed in info.params:
        table.add_row(pname, default, allowed)
    console.print(table)
    console.print(
        f"set them with `fusionrec train ... -m {info.name} -p name=value` or in an experiment config's params",
        markup=False,
    )
