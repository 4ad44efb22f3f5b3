"""The typer application and the error wrapper every command uses.

Command modules import heavy libraries *inside* their functions so ``pointae --help`` is instant.
"""

from __future__ import annotations

import functools
from typing import Any

import typer
from rich.console import Console
from typer.models import OptionInfo

from pointae import registry
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
            except RuntimeError as e:  # torch's allocator reports running out of memory this way
                text = str(e)
                if "allocate" not in text and "out of memory" not in text:
                    raise
                fail(f"out of memory ({text.splitlines()[-1][:160]}); use a smaller input or fewer loci")
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


# ----------------------------------------------------------------------------- registry choices
class _RegistryOption(OptionInfo):
    """An option whose metavar lists a registry's names when the command is built (at each run)."""

    _names: Any = None

    @property
    def metavar(self) -> str:
        return "<" + "|".join(self._names()) + ">"

    @metavar.setter
    def metavar(self, value) -> None:  # typer's __init__ assigns it; the names decide
        pass


class _RegistryParser:
    """Accept a name of the registry (read when the value is parsed), else a usage error."""

    def __init__(self, names):
        self._names = names

    def __call__(self, value):
        if value is None or not isinstance(value, str):
            return value
        names = self._names()
        if value not in names:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(map(repr, names))}.")
        return value


def choice(
    kind: str, *param_decls: str, where: dict | None = None, extra: tuple[str, ...] = (), **kwargs
) -> OptionInfo:
    """A ``typer.Option`` whose choices are the names of ``pointae.registry.<kind>``.

    The names are read when the command runs (so an encoder, preset, ... registered by a plugin
    or a test after import is accepted) and shown in ``--help`` as ``<a|b|c>``; ``where`` keeps the
    names whose registry meta matches (``where={"write": True}`` for output formats); ``extra``
    names come first (``train --model autoencoder`` beside the registered whole models). The value
    reaching the command is the plain name (a ``str``). Listing the names imports nothing heavy.
    """
    reg: registry.Registry = getattr(registry, kind)
    meta = dict(where or {})

    def names() -> tuple[str, ...]:
        return tuple(extra) + reg.names(**meta)

    info = typer.Option(*param_decls, parser=_RegistryParser(names), **kwargs)
    out = _RegistryOption.__new__(_RegistryOption)
    out.__dict__.update(info.__dict__)
    out.__dict__.pop("metavar", None)
    out._names = names
    return out
