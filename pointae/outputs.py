"""The output-path guard every writing command goes through.

Rules (checked *before* any work is done or any file is written):

- an output never resolves to one of the command's inputs (also through ``..``, symlinks and
  hard links), nor to a file inside an input folder (a run directory the command reads);
- an existing output file is replaced only with ``overwrite=True`` (``--overwrite``);
- an output that is not a regular file (a folder, device, pipe or socket) is refused; a symlink is
  written *through* (its target is replaced atomically, the link itself stays), see
  :func:`pointae.errors.atomic_path`;
- a path whose parent is a file, and two outputs of one command that are the same file, are
  refused;
- per-trace file names (:func:`trace_file_names`) are escaped so that two trace ids never map to
  the same file, and hashed when too long for the file system.

Each violation is a :class:`~pointae.errors.PointaeError` with a one-line message.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from pointae.errors import PointaeError

#: longest per-trace file name component pointae writes (most file systems allow 255 bytes)
MAX_NAME_BYTES = 200


def _real(path) -> Path:
    """Absolute path with every symlink resolved (also when the path does not exist yet)."""
    return Path(os.path.realpath(os.path.abspath(os.fspath(path))))


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _check_parents(out: Path) -> None:
    for parent in Path(os.path.abspath(out)).parents:
        if parent.exists():
            if not parent.is_dir():
                raise PointaeError(f"{out}: {parent} is a file, not a folder")
            return


def check_outputs(
    outputs: Iterable[str | os.PathLike],
    inputs: Iterable[str | os.PathLike | None] = (),
    overwrite: bool = False,
    folders: Iterable[str | os.PathLike | None] = (),
) -> list[Path]:
    """Check output files before a command writes them; see the module docstring.

    Parameters
    ----------
    outputs
        The files the command will write.
    inputs
        Files the command reads (``None`` entries are ignored); no output may be one of them.
    folders
        Run directories (or model files) the command reads: no output may be one of them or lie
        inside one.
    overwrite
        Allow replacing existing output files (never inputs).

    Returns
    -------
    list of Path
        The outputs, as given.

    Raises
    ------
    PointaeError
        One line naming the output and the problem.
    """
    outs = [Path(o) for o in outputs]
    real_ins = [(Path(i), _real(i), False) for i in inputs if i is not None]
    real_ins += [(Path(i), _real(i), True) for i in folders if i is not None]
    seen: dict[Path, Path] = {}
    for out in outs:
        _check_parents(out)
        real = _real(out)
        if real in seen:
            raise PointaeError(f"{out}: the same file is given twice as an output (also {seen[real]})")
        seen[real] = out
        for given, ri, folder in real_ins:
            if real == ri or _same_file(real, ri):
                raise PointaeError(f"{out}: output would overwrite the input {given}")
            if folder and ri.is_dir() and ri in real.parents:
                raise PointaeError(
                    f"{out}: output is inside the input folder {given}, which this command reads"
                )
        if os.path.lexists(real) or real.exists():
            if real.is_dir():
                raise PointaeError(f"{out}: is a directory, expected a file name")
            if not real.is_file():
                raise PointaeError(
                    f"{out}: is not a regular file (device, pipe or socket); refusing to write"
                )
            if not overwrite:
                raise PointaeError(f"{out}: already exists; pass --overwrite to replace it")
    return outs


def check_output_dir(folder: str | os.PathLike, inputs: Iterable[str | os.PathLike | None] = ()) -> Path:
    """Check a folder a command writes several files into (it may already exist).

    The folder must not be a file, must not be (or lie inside) an input folder, and must not be
    an input file's path.
    """
    folder = Path(folder)
    _check_parents(folder)
    real = _real(folder)
    if real.exists() and not real.is_dir():
        raise PointaeError(f"{folder}: is a file, expected a folder")
    for i in inputs:
        if i is None:
            continue
        ri = _real(i)
        if real == ri or (ri.is_dir() and ri in real.parents):
            raise PointaeError(f"{folder}: output folder is the input {i}, which this command reads")
    return folder


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def escape_name(text: str) -> str:
    """Escape ``text`` into a file-name component, injectively (percent-encoding).

    Letters, digits, ``.``, ``_`` and ``-`` are kept; every other character (``%`` included)
    becomes ``%XX`` per UTF-8 byte, so two different ids never give the same name. A leading
    ``.`` is escaped too (no hidden files, no ``..``).

    Examples
    --------
    >>> escape_name("a/b"), escape_name("a_b"), escape_name("..")
    ('a%2Fb', 'a_b', '%2E.')
    """
    out = _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode("utf-8")), str(text))
    if out.startswith("."):
        out = "%2E" + out[1:]
    return out


def trace_file_names(stem: str, ids: Sequence, suffix: str) -> list[str]:
    """One file name per trace id, ``<stem>_<escaped id><suffix>``, all distinct.

    Names longer than :data:`MAX_NAME_BYTES` are shortened to a prefix plus ``~`` and a SHA-256
    digest of the id; so is a name that differs from an earlier one only in letter case (a
    case-insensitive file system would merge them). Checked before anything is written.

    Raises
    ------
    PointaeError
        When two trace ids are equal.
    """
    names: list[str] = []
    seen: dict[str, str] = {}
    folded: set[str] = set()
    for tid in ids:
        tid = str(tid)
        if tid in seen:
            raise PointaeError(f"trace id {tid!r} is not unique: per-trace files need one id per trace")
        esc = escape_name(tid)
        name = f"{stem}_{esc}{suffix}"
        if len(name.encode("utf-8")) > MAX_NAME_BYTES or name.casefold() in folded:
            digest = hashlib.sha256(tid.encode("utf-8")).hexdigest()[:16]
            keep = MAX_NAME_BYTES - len(suffix.encode()) - len(digest) - 2 - len(stem.encode("utf-8"))
            if keep < 8:
                raise PointaeError(f"{stem}: file stem too long for per-trace names")
            name = f"{stem}_{esc[:keep]}~{digest}{suffix}"
        seen[tid] = name
        folded.add(name.casefold())
        names.append(name)
    return names


__all__ = ["check_outputs", "check_output_dir", "escape_name", "trace_file_names", "MAX_NAME_BYTES"]
