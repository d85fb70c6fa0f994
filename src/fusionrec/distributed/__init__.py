"""Distributed work over Ray (optional extra ``pip install 'fusionrec[distributed]'``).

* :func:`init_ray` / :func:`connect`: connect this process to a Ray cluster (or start a local one); every other
  function here (and :mod:`fusionrec.tuning`'s parallel trials) connects through it.
* :func:`extract_features_ray` / :func:`encode_modality_ray`: feature extraction over Ray Data (items sharded,
  fitted encoder broadcast, content-hash cache shared), same rows as in one process.
* :func:`batch_recommend_ray`: top-K of every user to Parquet, users sharded over workers, model broadcast once.
* :func:`evaluate_ranking_ray`: :func:`fusionrec.evaluation.evaluate_ranking` sharded by user, same figures.

Ray itself is imported only inside these functions, so importing this package is cheap and works without Ray.
"""

from __future__ import annotations

from fusionrec.distributed._cluster import connect, init_ray, shutdown_ray
from fusionrec.distributed.features import ExtractionStats, encode_modality_ray, extract_features_ray
from fusionrec.distributed.scoring import ScoringStats, batch_recommend_ray, evaluate_ranking_ray, model_payload

__all__ = [
    "ExtractionStats",
    "ScoringStats",
    "batch_recommend_ray",
    "connect",
    "encode_modality_ray",
    "evaluate_ranking_ray",
    "extract_features_ray",
    "init_ray",
    "model_payload",
    "shutdown_ray",
]
