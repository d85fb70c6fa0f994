"""Typed exceptions raised by fusionrec.

Every error says what is wrong and what to do about it.  All derive from
:class:`FusionRecError`, so ``except fusionrec.FusionRecError`` catches them all.
"""

from __future__ import annotations

__all__ = [
    "BundleError",
    "ChecksumError",
    "CollapseWarning",
    "ConfigError",
    "CorruptArchiveError",
    "DataError",
    "DatasetNotFoundError",
    "DownloadError",
    "DuplicateInteractionError",
    "EmptyDataError",
    "FusionRecError",
    "IncompatibleBundleError",
    "InvalidValueError",
    "MissingColumnError",
    "NotFittedError",
    "UnknownIdError",
]


class FusionRecError(Exception):
    """Base class of every error raised on purpose by fusionrec."""


class DataError(FusionRecError, ValueError):
    """Input data is malformed."""


class MissingColumnError(DataError):
    """A required column is absent from a table."""


class InvalidValueError(DataError):
    """A value is NaN, infinite, non-numeric or out of range."""


class DuplicateInteractionError(DataError):
    """The same (user, item) pair appears more than once."""


class EmptyDataError(DataError):
    """A file or table holds no rows."""


class UnknownIdError(DataError):
    """An id is not known to an :class:`~fusionrec.data.IdMap`."""


class DatasetNotFoundError(FusionRecError, FileNotFoundError):
    """Dataset files are not where they were expected."""


class DownloadError(FusionRecError, ConnectionError):
    """A download failed (network unreachable, HTTP error, timeout)."""


class ChecksumError(FusionRecError):
    """A downloaded file does not match its published sha256."""


class CorruptArchiveError(FusionRecError):
    """An archive cannot be opened or is truncated."""


class NotFittedError(FusionRecError, RuntimeError):
    """A model was used before ``fit``."""


class ConfigError(FusionRecError, ValueError):
    """A configuration or hyper-parameter is invalid."""


class BundleError(FusionRecError):
    """A saved model bundle cannot be read (missing, truncated or tampered)."""


class IncompatibleBundleError(BundleError):
    """A saved model bundle was written by a newer, unknown format version."""


class CollapseWarning(UserWarning):
    """A fitted model recommends nearly the same few items to everyone (it collapsed to popularity)."""
