"""fusionrec: multimodal recommendation, from raw logs and content to evaluated, served recommendations.

Importing ``fusionrec`` is cheap: submodules (and numpy, pandas, torch ...) load on first use.

Progress bars are off in the Python API unless asked for: ``fusionrec.set_progress(True)`` for the process,
``with fusionrec.progress_enabled():`` for a block, or ``verbose=True`` on ``run_experiment``, ``tune``,
``build_side_info`` and ``encode_modality``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from fusionrec._version import __version__

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # errors
    "FusionRecError": "fusionrec.errors",
    "DataError": "fusionrec.errors",
    "ConfigError": "fusionrec.errors",
    "NotFittedError": "fusionrec.errors",
    # data
    "IdMap": "fusionrec.data",
    "Interactions": "fusionrec.data",
    "Dataset": "fusionrec.data",
    "Modality": "fusionrec.data",
    "Split": "fusionrec.data",
    "from_files": "fusionrec.data",
    "load_dataset": "fusionrec.data.datasets",
    "load_split_file": "fusionrec.data",
    "read_interactions": "fusionrec.data",
    "build_side_info": "fusionrec.features",
    # models
    "Recommender": "fusionrec.models",
    "SideInfo": "fusionrec.data",
    "load_model": "fusionrec.models",
    "make_model": "fusionrec.models",
    # evaluation
    "evaluate_ranking": "fusionrec.evaluation",
    "evaluate_ratings": "fusionrec.evaluation",
    "paired_ttest": "fusionrec.evaluation",
    "wilcoxon_test": "fusionrec.evaluation",
    # progress bars (off unless asked for) and tuning
    "set_progress": "fusionrec._progress",
    "progress_enabled": "fusionrec._progress",
    "tune": "fusionrec.tuning",
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
        from_files,
        load_split_file,
        read_interactions,
    )
    from fusionrec.data.datasets import load_dataset
    from fusionrec.errors import ConfigError, DataError, FusionRecError, NotFittedError
    from fusionrec.evaluation import evaluate_ranking, evaluate_ratings, paired_ttest, wilcoxon_test
    from fusionrec.features import build_side_info
    from fusionrec.models import Recommender, load_model, make_model
    from fusionrec.tuning import tune
