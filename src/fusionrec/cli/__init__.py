"""Command-line interface (typer + rich): ``fusionrec --help``."""
