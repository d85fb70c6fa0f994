"""The hyper-parameter constraint vocabulary, re-exported for the models (it lives in :mod:`fusionrec._params`).

The module sits below every layer so that encoders (:mod:`fusionrec.features`) declare their constraints with the
same :class:`Interval` / :class:`Options` and get the same :func:`validate_params` / :func:`check_names` errors.
"""

from fusionrec._params import (
    BOOL,
    MODALITY_NAMES,
    MODALITY_WEIGHTS,
    NONNEGATIVE,
    NONNEGATIVE_INT,
    POSITIVE,
    POSITIVE_INT,
    SEED,
    Interval,
    Options,
    _accepts,
    _describe,
    check_names,
    upgrade_renamed,
    validate_params,
)

__all__ = [
    "BOOL",
    "MODALITY_NAMES",
    "MODALITY_WEIGHTS",
    "NONNEGATIVE",
    "NONNEGATIVE_INT",
    "POSITIVE",
    "POSITIVE_INT",
    "SEED",
    "Interval",
    "Options",
    "_accepts",
    "_describe",
    "check_names",
    "upgrade_renamed",
    "validate_params",
]
