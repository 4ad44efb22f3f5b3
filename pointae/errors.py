"""Error types and atomic file output.

Every problem a user can cause (bad file, bad option) raises :class:`PointaeError`; the CLI prints
its message as one line on stderr and exits non-zero, never a traceback.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


class PointaeError(Exception):
    """A user-facing error; ``str(err)`` is a complete one-line message."""


class InputError(PointaeError):
    """A problem with an input file, located as precisely as possible.

    Parameters
    ----------
    path
        The offending file.
    problem
        What is wrong, one short sentence.
    line
        1-based line number in the file, when known.
    trace
        Trace id, when the problem belongs to one trace.
    """

    def __init__(self, path, problem: str, line: int | None = None, trace=None):
        self.path = str(path)
        self.problem = problem
        self.line = line
        self.trace = trace
        where = self.path
        if line is not None:
            where += f":{line}"
        if trace is not None:
            where += f" (trace {trace})"
        super().__init__(f"{where}: {problem}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    Nothing is left behind when the body raises, so a failed write never leaves a partial file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        # mkstemp creates private (0600) files; give the output the usual umask-based mode
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
