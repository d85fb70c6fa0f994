"""Settings read from the environment: the data directory and the cache directory.

``FUSIONREC_DATA_DIR``  where real datasets live (CI points it at ``../shared/data``).
``FUSIONREC_CACHE_DIR`` where downloads and feature caches go (default: the user cache dir).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "data_dir", "describe_missing_data_dir", "missing_data_dir"]

DATA_DIR_ENV = "FUSIONREC_DATA_DIR"
CACHE_DIR_ENV = "FUSIONREC_CACHE_DIR"


def data_dir(override: str | os.PathLike[str] | None = None) -> Path | None:
    """Return the configured data directory, or ``None`` when unset or absent."""
    value = override if override is not None else os.environ.get(DATA_DIR_ENV)
    if not value:
        return None
    path = Path(value).expanduser()
    return path if path.is_dir() else None


def missing_data_dir(override: str | os.PathLike[str] | None = None) -> Path | None:
    """The data directory that is set (``override``, else ``FUSIONREC_DATA_DIR``) but is not a folder, else ``None``.

    :func:`data_dir` treats such a setting as unset; errors use this to say that the directory does not exist
    rather than that none is set.
    """
    value = override if override is not None else os.environ.get(DATA_DIR_ENV)
    if not value:
        return None
    path = Path(value).expanduser()
    return None if path.is_dir() else path


def describe_missing_data_dir(override: str | os.PathLike[str] | None = None) -> str | None:
    """``"the data directory X (FUSIONREC_DATA_DIR) does not exist"`` when :func:`missing_data_dir` finds one."""
    path = missing_data_dir(override)
    if path is None:
        return None
    source = "" if override is not None else f" ({DATA_DIR_ENV})"
    what = "is not a folder" if path.exists() else "does not exist"
    return f"the data directory {path}{source} {what}"


def cache_dir(override: str | os.PathLike[str] | None = None, create: bool = True) -> Path:
    """Return the cache directory for downloads and features (created unless ``create=False``)."""
    value = override if override is not None else os.environ.get(CACHE_DIR_ENV)
    if value:
        path = Path(value).expanduser()
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(base) / "fusionrec"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path
