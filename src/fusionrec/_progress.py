"""The one place that draws progress bars (rich), off unless asked for."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_ENABLED = False


def set_progress(enabled: bool) -> None:
    """Turn progress bars on or off for the whole process (the CLI turns them on)."""
    global _ENABLED
    _ENABLED = enabled


def progress(iterable: Iterable[T], total: int | None = None, desc: str = "") -> Iterator[T]:
    """Yield from ``iterable``, drawing a rich progress bar when enabled."""
    if not _ENABLED:
        yield from iterable
        return
    from rich.progress import track

    yield from track(iterable, total=total, description=desc, transient=True)
