"""One-line command-line errors: every failure a command reports is ``error: <what is wrong>; <what to do>`` on
stderr (exit code 2), never a traceback.

:class:`ErrorHandlingGroup` is the ``fusionrec`` command group: whatever a sub-command raises passes through
:func:`report`, so a command needs no ``try`` of its own.  ``FUSIONREC_DEBUG=1`` re-raises unexpected errors with
their traceback (for bug reports).
"""

from __future__ import annotations

import os
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

from fusionrec.errors import FusionRecError

__all__ = ["EXIT_ERROR", "ErrorHandlingGroup", "fail", "one_line", "report"]

EXIT_ERROR = 2
DEBUG_ENV = "FUSIONREC_DEBUG"


def one_line(message: object) -> str:
    """``message`` as a single line (inner line breaks and runs of spaces collapsed)."""
    return " ".join(str(message).split())


def fail(message: object) -> NoReturn:
    """Print ``error: <message>`` on one line on stderr and leave with exit code 2."""
    typer.echo(f"error: {one_line(message)}", err=True)
    raise typer.Exit(code=EXIT_ERROR)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, FusionRecError):
        return str(exc)
    if isinstance(exc, ModuleNotFoundError | ImportError):
        return f"{exc}; install the optional dependency it names (e.g. pip install 'fusionrec[serve]')"
    if isinstance(exc, FileNotFoundError | NotADirectoryError | IsADirectoryError | PermissionError):
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        return f"{exc.strerror or exc}{where}; check the path and its permissions"
    if isinstance(exc, OSError):
        return f"{exc}; check the paths, the disk and the network"
    if isinstance(exc, MemoryError):
        return "out of memory; use a smaller dataset or model, or a machine with more memory"
    return (
        f"unexpected {type(exc).__name__}: {exc}; this is a bug in fusionrec: rerun with {DEBUG_ENV}=1 to see the "
        "traceback and report it"
    )


def report(exc: BaseException) -> NoReturn:
    """End the command with ``exc`` described on one line (re-raised as it is under ``FUSIONREC_DEBUG=1``)."""
    if os.environ.get(DEBUG_ENV, "").strip() not in ("", "0"):
        raise exc
    fail(_describe(exc))


def _passthrough() -> tuple[type[BaseException], ...]:
    """Exceptions the command machinery handles itself: exits, Ctrl+C and usage errors (printed with the usage).

    Typer up to 0.2x raises click's; later versions vendor click (``typer.exceptions.TyperException``)."""
    kinds: list[type[BaseException]] = [typer.Exit, typer.Abort]
    vendored = getattr(getattr(typer, "exceptions", None), "TyperException", None)
    if isinstance(vendored, type):
        kinds.append(vendored)
    try:
        import click
    except ImportError:
        pass
    else:
        kinds += [click.exceptions.Exit, click.exceptions.Abort, click.ClickException]
    return tuple(kinds)


class ErrorHandlingGroup(TyperGroup):
    """The root command group: turns any exception of a sub-command into one ``error:`` line (see the module)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except _passthrough():
            raise
        except Exception as exc:  # every other failure becomes one line
            report(exc)
