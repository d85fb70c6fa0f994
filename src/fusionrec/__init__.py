"""fusionrec: multimodal recommendation, from raw logs and content to evaluated, served recommendations.

One obvious way per job, all importable from ``fusionrec``: load (``from_files``, ``load_dataset``,
``load_benchmark_split``), split (``per_user_split``, ``leave_last_out`` ...), encode content (``build_side_info`` ->
``SideInfo``), build and fit a model (``make_model``; ``model.save`` / ``load_model``), evaluate
(``evaluate_ranking``, ``evaluate_ratings``, ``run_experiment``, ``tune``), explain (``explain``), re-rank
(``Calibrated``, ``ExposureCap``, ``FairExposure``, ``MMR``, ``Chain``) and serve (``save_bundle``, ``create_app``).
The subpackages hold the rest (every encoder, model class, metric and Ray stage).

Importing ``fusionrec`` is cheap: submodules (and numpy, pandas, torch ...) load on first use.

Progress bars are off in the Python API unless asked for: ``fusionrec.set_progress(True)`` for the process,
``with fusionrec.progress_enabled():`` for a block, or ``verbose=True`` on ``run_experiment``, ``tune``,
``build_side_info`` and ``encode_modality``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from fusionrec._version import __version__

# public name -> module that defines it: one obvious way per job
_EXPORTS: dict[str, str] = {
    # errors
    "FusionRecError": "fusionrec.errors",
    "DataError": "fusionrec.errors",
    "ConfigError": "fusionrec.errors",
    "NotFittedError": "fusionrec.errors",
    "UnknownIdError": "fusionrec.errors",
    # loading: your own files, registered datasets, predefined splits
    "IdMap": "fusionrec.data",
    "Interactions": "fusionrec.data",
    "Dataset": "fusionrec.data",
    "Modality": "fusionrec.data",
    "from_files": "fusionrec.data",
    "read_interactions": "fusionrec.data",
    "load_dataset": "fusionrec.data.datasets",
    "list_datasets": "fusionrec.data.datasets",
    "load_benchmark_split": "fusionrec.data.datasets",
    "load_split_file": "fusionrec.data",
    # splits
    "Split": "fusionrec.data",
    "random_split": "fusionrec.data",
    "per_user_split": "fusionrec.data",
    "leave_last_out": "fusionrec.data",
    "temporal_split": "fusionrec.data",
    "cold_items_split": "fusionrec.data",
    "cold_users_split": "fusionrec.data",
    # features
    "SideInfo": "fusionrec.data",
    "build_side_info": "fusionrec.features",
    # models, save (model.save) and load
    "Recommender": "fusionrec.models",
    "make_model": "fusionrec.models",
    "available_models": "fusionrec.models",
    "load_model": "fusionrec.models",
    # evaluation and experiments
    "evaluate_ranking": "fusionrec.evaluation",
    "evaluate_ratings": "fusionrec.evaluation",
    "paired_ttest": "fusionrec.evaluation",
    "wilcoxon_test": "fusionrec.evaluation",
    "load_config": "fusionrec.evaluation.experiment",
    "run_experiment": "fusionrec.evaluation.experiment",
    "tune": "fusionrec.tuning",
    # explanations and re-rankers
    "explain": "fusionrec.explain",
    "explain_ids": "fusionrec.explain",
    "Calibrated": "fusionrec.rerank",
    "ExposureCap": "fusionrec.rerank",
    "FairExposure": "fusionrec.rerank",
    "MMR": "fusionrec.rerank",
    "Chain": "fusionrec.rerank",
    # serving
    "save_bundle": "fusionrec.serving",
    "load_bundle": "fusionrec.serving",
    "create_app": "fusionrec.serving",
    # progress bars (off unless asked for)
    "set_progress": "fusionrec._progress",
    "progress_enabled": "fusionrec._progress",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fusionrec' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # pragma: no cover
    from fusionrec._progress import progress_enabled, set_progress
    from fusionrec.data import (
        Dataset,
        IdMap,
        Interactions,
        Modality,
        SideInfo,
        Split,
        cold_items_split,
        cold_users_split,
        from_files,
        leave_last_out,
        load_split_file,
        per_user_split,
        random_split,
        read_interactions,
        temporal_split,
    )
    from fusionrec.data.datasets import list_datasets, load_benchmark_split, load_dataset
    from fusionrec.errors import ConfigError, DataError, FusionRecError, NotFittedError, UnknownIdError
    from fusionrec.evaluation import evaluate_ranking, evaluate_ratings, paired_ttest, wilcoxon_test
    from fusionrec.evaluation.experiment import load_config, run_experiment
    from fusionrec.explain import explain, explain_ids
    from fusionrec.features import build_side_info
    from fusionrec.models import Recommender, available_models, load_model, make_model
    from fusionrec.rerank import MMR, Calibrated, Chain, ExposureCap, FairExposure
    from fusionrec.serving import create_app, load_bundle, save_bundle
    from fusionrec.tuning import tune
