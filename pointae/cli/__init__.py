"""Command-line interface: ``pointae <command>``; a thin layer over the library API."""

from __future__ import annotations

import importlib

from pointae.cli._app import app

# one module per group of commands; each registers its commands on ``app`` when imported
_COMMAND_MODULES = ["data", "sim", "train", "analysis", "impute", "structure"]

for _m in _COMMAND_MODULES:
    importlib.import_module(f"pointae.cli.{_m}")


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
