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


def _overflow_as_error():
    """Turn numpy's floating-point overflow warnings into exceptions for one command.

    A command must never end with exit 0 after a numeric overflow (its output would be garbage);
    code that expects overflow silences it locally with ``np.errstate(over="ignore")``. Overflow
    in a cast to float32 is left alone: the inf it gives is an invalid spot (pointae.data.validate).
    """
    import warnings

    from pointae.errors import PointaeWarning

    ctx = warnings.catch_warnings()
    ctx.__enter__()
    # a cast to float32 that overflows gives inf, which the readers' policy counts as missing;
    # any other overflow (in multiply, power, a reduction, ...) makes the output garbage
    warnings.filterwarnings("error", message=r"overflow encountered in (?!cast)", category=RuntimeWarning)
    warnings.filterwarnings("ignore", message=r"overflow encountered in cast", category=RuntimeWarning)
    warnings.filterwarnings("always", category=PointaeWarning)
    show = warnings.showwarning

    def one_line(message, category, *args, **kwargs):
        if issubclass(category, PointaeWarning):
            err_console.print(
                f"warning: {message}", style="yellow", markup=False, highlight=False, soft_wrap=True
            )
        else:
            show(message, category, *args, **kwargs)

    warnings.showwarning = one_line
    return ctx


def command(*args, **kwargs):
    """Like ``app.command`` but turns user errors into one clear line and exit code 1."""

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*a, **k):
            ctx = _overflow_as_error()
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
            except OSError as e:  # disk full, a parent that is a file, read-only file system, ...
                where = f"{e.filename}: " if e.filename else ""
                fail(f"{where}{e.strerror or e}")
            except RuntimeWarning as e:
                fail(
                    f"numeric overflow ({e}); the coordinates are probably out of range "
                    "(check the unit and the largest values with 'pointae info')"
                )
            except MemoryError:
                fail("out of memory; use a smaller input or fewer traces at a time")
            except KeyboardInterrupt:
                fail("interrupted")
            finally:
                ctx.__exit__(None, None, None)

        return app.command(*args, **kwargs)(wrapper)

    return decorate


@app.command()
def version() -> None:
    """Print the pointae version."""
    from pointae._version import __version__

    console.print(__version__)


#: the one ``--overwrite`` flag of every command that writes files (see :mod:`pointae.outputs`)
OVERWRITE = typer.Option("--overwrite", help="Replace existing output files (never an input).")
