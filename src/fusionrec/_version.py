"""The package version (a leaf module: code in any layer reads it without importing the package root)."""

__version__ = "0.1.0"
