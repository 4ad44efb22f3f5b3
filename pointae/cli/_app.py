"""The typer application and the error wrapper every command uses.

Command modules import heavy libraries *inside* their functions so ``pointae --help`` is instant.
"""

from __future__ import annotations

import functools

import typer
from rich.console import Console

from pointae.errors import PointaeError

app = typer.Typer(
    name="pointae",
    help="Deep learning on single-cell chromatin 3D structures (chromatin tracing data).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)


def fail(message: str) -> None:
    """Print one error line on stderr and exit with code 1."""
    err_console.print(f"error: {message}", style="red", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code=1)


def command(*args, **kwargs):
    """Like ``app.command`` but turns user errors into one clear line and exit code 1."""

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*a, **k):
            try:
                return fn(*a, **k)
            except PointaeError as e:
                fail(str(e))
            except IsADirectoryError as e:
                fail(f"{e.filename}: is a directory, expected a file")
            except FileNotFoundError as e:
                fail(f"{e.filename}: no such file")
            except PermissionError as e:
                fail(f"{e.filename}: permission denied")
            except KeyboardInterrupt:
                fail("interrupted")

        return app.command(*args, **kwargs)(wrapper)

    return decorate


@app.command()
def version() -> None:
    """Print the pointae version."""
    from pointae._version import __version__

    console.print(__version__)
