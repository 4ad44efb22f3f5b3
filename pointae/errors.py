"""Error types and atomic file output.

Every problem a user can cause (bad file, bad option) raises :class:`PointaeError`; the CLI prints
its message as one line on stderr and exits non-zero, never a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


class PointaeError(Exception):
    """A user-facing error; ``str(err)`` is a complete one-line message."""


class PointaeWarning(UserWarning):
    """A user-facing warning; the CLI prints it as one line ``warning: ...`` on stderr."""


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


_TMP_TAG = "pointae"


def _host_tag() -> str:
    import hashlib
    import socket

    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def clean_stale_tmp(path: str | os.PathLike, legacy_age_s: float = 3600.0) -> list[Path]:
    """Remove temporary files that an interrupted :func:`atomic_path` left beside ``path``.

    Only pointae's own names are touched: ``.NAME.pointae-HOST-PID-XXXX.tmp`` whose process (on this
    host) no longer runs, and the older pattern ``.NAME.XXXXXXXX.tmp`` once it is older than
    ``legacy_age_s`` seconds.

    Returns
    -------
    list of Path
        The files removed.
    """
    import re
    import time

    path = Path(path)
    own = re.compile(re.escape(f".{path.name}.{_TMP_TAG}-") + r"([0-9a-f]{6})-(\d+)-[a-z0-9_]{8}\.tmp")
    legacy = re.compile(re.escape(f".{path.name}.") + r"[a-z0-9_]{8}\.tmp")
    removed = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    host = None
    for e in entries:
        if not e.name.startswith(f".{path.name}."):
            continue
        stale = False
        m = own.fullmatch(e.name)
        if m:
            host = host or _host_tag()
            stale = m.group(1) == host and not _pid_alive(int(m.group(2)))
        elif legacy.fullmatch(e.name):
            with contextlib.suppress(OSError):
                stale = time.time() - e.stat(follow_symlinks=False).st_mtime > legacy_age_s
        if stale and e.is_file(follow_symlinks=False):
            with contextlib.suppress(OSError):
                os.unlink(e.path)
                removed.append(Path(e.path))
    return removed


def write_target(path: str | os.PathLike) -> Path:
    """The file a write to ``path`` must replace: ``path`` itself, or a symlink's final target.

    Raises
    ------
    PointaeError
        When the path (or what a symlink points to) exists and is not a regular file, or a parent
        folder is a file.
    """
    path = Path(path)
    target = Path(os.path.realpath(path)) if os.path.islink(path) else path
    if target.exists() and not target.is_file():
        what = "a directory" if target.is_dir() else "not a regular file (device, pipe or socket)"
        via = f" (symlink to {target})" if target != path else ""
        raise PointaeError(f"{path}{via}: is {what}; refusing to write")
    for parent in Path(os.path.abspath(target)).parents:
        if parent.exists():
            if not parent.is_dir():
                raise PointaeError(f"{path}: {parent} is a file, not a folder")
            break
    return target


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    Nothing is left behind when the body raises, so a failed write never leaves a partial file.
    A symlink is written through: its target is replaced, the link stays. Temporary files that a
    killed process left beside ``path`` are removed first (:func:`clean_stale_tmp`). Disk-full and
    similar OS errors become a one-line :class:`PointaeError`.
    """
    path = write_target(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PointaeError(f"{path}: cannot create folder {path.parent} ({e.strerror})") from None
    clean_stale_tmp(path)
    prefix = f".{path.name}.{_TMP_TAG}-{_host_tag()}-{os.getpid()}-"
    try:
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise PointaeError(f"{path}: cannot write ({e.strerror})") from None
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        # mkstemp creates private (0600) files; give the output the usual umask-based mode
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if isinstance(e, OSError) and e.errno in _DISK_ERRORS:
            raise PointaeError(f"{path}: cannot write ({os.strerror(e.errno)})") from None
        raise


_DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EIO}
