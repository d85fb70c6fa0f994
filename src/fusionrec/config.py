"""Settings read from the environment: the data directory and the cache directory.

``FUSIONREC_DATA_DIR``  where real datasets live (CI points it at ``../shared/data``).
``FUSIONREC_CACHE_DIR`` where downloads and feature caches go (default: the user cache dir).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "data_dir"]

DATA_DIR_ENV = "FUSIONREC_DATA_DIR"
CACHE_DIR_ENV = "FUSIONREC_CACHE_DIR"


def data_dir(override: str | os.PathLike[str] | None = None) -> Path | None:
    """Return the configured data directory, or ``None`` when unset or absent."""
    value = override if override is not None else os.environ.get(DATA_DIR_ENV)
    if not value:
        return None
    path = Path(value).expanduser()
    return path if path.is_dir() else None


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
