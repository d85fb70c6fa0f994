"""``python -m fusionrec``: the ``fusionrec`` command (the same Typer app as the console script)."""

from __future__ import annotations

from fusionrec.cli.main import app


def main() -> None:
    """Run the ``fusionrec`` command line with ``fusionrec`` as the program name in help and errors."""
    app(prog_name="fusionrec")


if __name__ == "__main__":  # pragma: no cover - module entry
    main()
