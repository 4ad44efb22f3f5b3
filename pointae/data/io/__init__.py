"""Reading and writing trace files.

Formats (``format=`` names):

- ``"bintu"``: Bintu et al. 2018 tracing CSV (:mod:`pointae.data.io.bintu`)
- ``"fofct"``: 4DN FOF-CT core table (:mod:`pointae.data.io.fofct`)
- ``"csv"``: plain long CSV ``trace_id,locus,x,y,z`` (:mod:`pointae.data.io.longcsv`)
- ``"h5"``: native HDF5, chunked and compressed, streamable (:mod:`pointae.data.io.hdf5`)
- ``"pdb"``: write-only, one model per trace (:mod:`pointae.data.io.pdb`)

Reading detects the format from the file's content; writing picks it from the suffix
(``.h5``/``.hdf5`` -> h5, ``.fofct.csv``/``.fofct.tsv``/``.tsv`` -> fofct, ``.bintu.csv`` ->
bintu, ``.csv`` -> csv, ``.pdb`` -> pdb). ``format=`` overrides both. All writes are atomic.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pointae.data.io import bintu, fofct, hdf5, longcsv
from pointae.data.io._common import check_input_path
from pointae.data.traces import Traces
from pointae.errors import InputError, PointaeError, PointaeWarning

READ_FORMATS = ("bintu", "fofct", "csv", "h5")
WRITE_FORMATS = ("bintu", "fofct", "csv", "h5", "pdb")
_ALIASES = {"hdf5": "h5", "fof-ct": "fofct", "long": "csv", "longcsv": "csv"}


def _normalise(fmt: str | None, allowed: tuple[str, ...]) -> str | None:
    if fmt is None:
        return None
    f = _ALIASES.get(str(fmt).lower(), str(fmt).lower())
    if f not in allowed:
        raise PointaeError(f"unknown format {fmt!r}; expected one of {', '.join(allowed)}")
    return f


def detect_format(path) -> str:
    """Detect a trace file's format from its content.

    Returns
    -------
    str
        ``"h5"`` (HDF5 signature), ``"fofct"`` (``##FOF-CT_version`` / ``##Table_namespace``
        header), ``"bintu"`` (header ``Chromosome index,Segment index`` on line 1 or 2) or
        ``"csv"`` (header with trace_id, locus, x, y, z).
    """
    p = check_input_path(path)
    with open(p, "rb") as fh:
        head = fh.read(64 * 1024)
    if hdf5.looks_like(head):
        return "h5"
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 4:  # not just a character cut at the end of the sample
            raise InputError(p, f"not a UTF-8 text file (byte {e.start}) nor HDF5") from None
        text = head[: e.start].decode("utf-8-sig")
    if not text.strip():
        raise InputError(p, "empty file (only whitespace)")
    text = text.replace("\r\n", "\n")
    if fofct.looks_like(text):
        return "fofct"
    if bintu.looks_like(text):
        return "bintu"
    if longcsv.looks_like(text):
        return "csv"
    first = text.split("\n", 1)[0][:60]
    raise InputError(
        p,
        f"cannot detect the format (first line {first!r}); expected a Bintu CSV, a FOF-CT table, "
        "a long CSV with trace_id,locus,x,y,z or a pointae HDF5 file; pass --format/format=",
        line=1,
    )


def read_traces(
    path, format: str | None = None, start: int | None = None, stop: int | None = None, **kw
) -> Traces:
    """Read a trace file into :class:`~pointae.data.traces.Traces`.

    Parameters
    ----------
    path
        The file.
    format
        ``"bintu"``, ``"fofct"``, ``"csv"`` or ``"h5"``; detected from the content when None.
    start, stop
        Read only traces ``[start, stop)``. For HDF5 only that slice is read from disk.
    **kw
        Passed to the format's reader (e.g. ``unit=`` for the text formats).

    Returns
    -------
    Traces
        ``coords (N, L, 3)`` float32; ``attrs["source"]`` and ``attrs["format"]`` are set.
    """
    fmt = _normalise(format, READ_FORMATS) or detect_format(path)
    if fmt == "h5":
        return _numeric_policy(hdf5.read_h5(path, start=start, stop=stop, **kw), path)
    reader = {"bintu": bintu.read_bintu, "fofct": fofct.read_fofct, "csv": longcsv.read_long_csv}[fmt]
    t = _numeric_policy(reader(path, **kw), path)
    if start is not None or stop is not None:
        t = t[slice(start, stop)]
    return t


def _numeric_policy(t: Traces, path) -> Traces:
    """The one place every reader's output passes: see :mod:`pointae.data.validate`.

    Invalid spots (non-finite, or beyond ``COORD_LIMIT``) were made missing when the
    :class:`Traces` was built; here they are announced (one warning line) and counted in
    ``attrs["pointae_invalid_spots"]``. Out-of-range locus indices / positions are an error.
    """
    import warnings

    from pointae.data.validate import COORD_LIMIT, check_positions, describe_invalid

    where = f"{path}: "
    try:
        if t.loci is not None:
            check_positions(t.loci["start"].to_numpy(), "genomic start", where)
            check_positions(t.loci["end"].to_numpy(), "genomic end", where)
        if isinstance(t.attrs.get("locus_index"), list):
            check_positions(t.attrs["locus_index"], "locus index", where)
    except (TypeError, ValueError):
        raise InputError(path, "locus index list is not numeric") from None
    report = getattr(t, "invalid_spots", None)
    if report:
        warnings.warn(describe_invalid(report, t.trace_ids, where), PointaeWarning, stacklevel=3)
        counts = {k: report[k] for k in ("nonfinite", "out_of_range")}
        t.attrs["pointae_invalid_spots"] = dict(counts, limit=COORD_LIMIT, policy="treated as missing")
    return t


def iter_traces(path, chunk_size: int = 65536, format: str | None = None, **kw) -> Iterator[Traces]:
    """Yield :class:`Traces` chunks of at most ``chunk_size`` traces.

    HDF5 files are streamed (only one chunk in memory); text formats are read whole, then chunked.
    """
    if chunk_size < 1:
        raise PointaeError("chunk_size must be >= 1")
    fmt = _normalise(format, READ_FORMATS) or detect_format(path)
    if fmt == "h5":
        for part in hdf5.iter_h5(path, chunk_size=chunk_size, **kw):
            yield _numeric_policy(part, path)
        return
    t = read_traces(path, format=fmt, **kw)
    for s in range(0, len(t), chunk_size):
        yield t[s : s + chunk_size]


def format_from_suffix(path) -> str:
    """Writer format implied by a file name (see the module docstring)."""
    name = Path(path).name.lower()
    if name.endswith((".h5", ".hdf5")):
        return "h5"
    if name.endswith((".fofct.csv", ".fofct.tsv", ".fofct", ".tsv")):
        return "fofct"
    if name.endswith(".bintu.csv"):
        return "bintu"
    if name.endswith(".csv"):
        return "csv"
    if name.endswith(".pdb"):
        return "pdb"
    raise PointaeError(
        f"cannot tell the output format from {Path(path).name!r}; use a .h5/.fofct.csv/.bintu.csv/.csv/.pdb "
        "suffix or pass --to/format="
    )


def write_traces(traces: Traces, path, format: str | None = None, **kw) -> None:
    """Write traces; the format comes from ``format`` or the suffix of ``path``.

    Parameters
    ----------
    traces
        What to write.
    path
        Output file; written to a temporary file and renamed, so a failure leaves nothing behind.
    format
        ``"bintu"``, ``"fofct"``, ``"csv"``, ``"h5"`` or ``"pdb"``.
    **kw
        Passed to the writer (e.g. ``compression=`` for h5, ``description=`` for bintu).
    """
    if not isinstance(traces, Traces):
        raise PointaeError(f"write_traces needs a Traces, got {type(traces).__name__}")
    fmt = _normalise(format, WRITE_FORMATS) or format_from_suffix(path)
    if Path(path).is_dir():
        raise PointaeError(f"{path}: is a directory, expected a file name")
    if fmt == "h5":
        hdf5.write_h5(traces, path, **kw)
    elif fmt == "bintu":
        bintu.write_bintu(traces, path, **kw)
    elif fmt == "fofct":
        if str(path).lower().endswith(".tsv"):
            kw.setdefault("sep", "\t")
        fofct.write_fofct(traces, path, **kw)
    elif fmt == "csv":
        longcsv.write_long_csv(traces, path, **kw)
    else:  # pdb: written by pointae.data.io.pdb (imported lazily)
        try:
            from pointae.data.io.pdb import write_pdb
        except ImportError as e:
            raise PointaeError(f"PDB output is not available ({e})") from None
        write_pdb(traces, path, **kw)


def convert_file(src, dst, to: str | None = None, format: str | None = None) -> tuple[int, int]:
    """Read ``src`` (format detected unless ``format``) and write it to ``dst`` (format ``to`` or
    from the suffix). Trace ids, meta columns, loci, layers and attrs are carried over.

    HDF5 to HDF5 streams chunk by chunk.

    Returns
    -------
    (int, int)
        Number of traces and of loci written.
    """
    fmt_out = _normalise(to, WRITE_FORMATS) or format_from_suffix(dst)
    fmt_in = _normalise(format, READ_FORMATS) or detect_format(src)
    if Path(dst).resolve() == Path(src).resolve():
        raise PointaeError(f"{dst}: output would overwrite the input")
    if fmt_in == "h5" and fmt_out == "h5" and hdf5.h5_length(src) > 0:  # stream, one chunk at a time
        params = {"command": "convert", "input": str(src), "input_format": "h5"}
        with hdf5.H5TraceWriter(dst, parameters=params) as w:
            for part in hdf5.iter_h5(src, chunk_size=65536):
                w.append(part)
        return w.n, w._spec["n_loci"] if w._spec else 0
    t = read_traces(src, format=fmt_in)
    kw = {}
    if fmt_out == "h5":
        kw["parameters"] = {"command": "convert", "input": str(src), "input_format": fmt_in}
    write_traces(t, dst, format=fmt_out, **kw)
    return len(t), t.n_loci


__all__ = [
    "READ_FORMATS",
    "convert_file",
    "WRITE_FORMATS",
    "detect_format",
    "format_from_suffix",
    "iter_traces",
    "read_traces",
    "write_traces",
]
