"""The one place that draws progress bars (rich), off unless asked for.

Turn them on for the whole process with ``fusionrec.set_progress(True)`` (the CLI does), or for one call with
``verbose=True`` (``run_experiment``, ``tune``, ``build_side_info``, ``encode_modality``), which uses
:func:`progress_enabled`.  Only the outermost loop draws a bar: a loop inside a running bar (the batches of one
chunk inside the feature cache's bar over all items) advances silently, so a long job shows one bar with its ETA.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_ENABLED = False
#: bars being drawn now (only the outermost one is shown)
_DEPTH = 0


def set_progress(enabled: bool) -> None:
    """Turn progress bars on or off for the whole process (the CLI turns them on)."""
    global _ENABLED
    _ENABLED = bool(enabled)


def progress_on() -> bool:
    """Whether progress bars are drawn."""
    return _ENABLED


@contextlib.contextmanager
def progress_enabled(verbose: bool | None = True) -> Iterator[None]:
    """Within the block, progress bars are on (``True``), off (``False``) or as set process-wide (``None``)."""
    global _ENABLED
    before = _ENABLED
    if verbose is not None:
        _ENABLED = bool(verbose)
    try:
        yield
    finally:
        _ENABLED = before


def progress(iterable: Iterable[T], total: int | None = None, desc: str = "") -> Iterator[T]:
    """Yield from ``iterable``, drawing a rich progress bar (with ETA) when enabled and no bar is running."""
    global _DEPTH
    if not _ENABLED or _DEPTH:
        yield from iterable
        return
    from rich.progress import track

    _DEPTH += 1
    try:
        yield from track(iterable, total=total, description=desc, transient=True)
    finally:
        _DEPTH -= 1


@contextlib.contextmanager
def overall(total: int, desc: str = "") -> Iterator[Callable[[int], None]]:
    """One bar over a job made of several loops: yields ``advance(n)``; bars of loops inside it are not drawn."""
    global _DEPTH
    if not _ENABLED or _DEPTH:
        yield lambda _n: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    _DEPTH += 1
    try:
        with Progress(*columns, transient=True) as bar:
            task = bar.add_task(desc, total=total)
            yield lambda n: bar.advance(task, n)
    finally:
        _DEPTH -= 1
