"""Reading and writing trace files.

Formats (``format=`` names):

- ``"bintu"``: Bintu et al. 2018 tracing CSV (:mod:`pointae.data.io.bintu`)
- ``"fofct"``: 4DN FOF-CT core table (:mod:`pointae.data.io.fofct`)
- ``"csv"``: plain long CSV ``trace_id,locus,x,y,z`` (:mod:`pointae.data.io.longcsv`)
- ``"table"``: read-only, any long table (CSV, TSV, astropy ECSV) by a column mapping given with
  ``columns=`` or detected (Huang CSV, SnapFISH TSV, Hi-M ECSV; :mod:`pointae.data.io.table`);
  written back as FOF-CT
- ``"h5"``: native HDF5, chunked and compressed, streamable (:mod:`pointae.data.io.hdf5`)
- ``"pdb"``: write-only, one model per trace (:mod:`pointae.data.io.pdb`)

Reading detects the format from the file's content; writing picks it from the suffix
(``.h5``/``.hdf5`` -> h5, ``.fofct.csv``/``.fofct.tsv``/``.tsv`` -> fofct, ``.bintu.csv`` ->
bintu, ``.csv`` -> csv, ``.pdb`` -> pdb). ``format=`` overrides both. All writes are atomic.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pointae import registry
from pointae.data.io import bintu, fofct, hdf5, longcsv, table
from pointae.data.io._common import DUPLICATE_POLICIES, check_input_path, decode_bytes
from pointae.data.traces import Traces
from pointae.errors import InputError, PointaeError, PointaeWarning

#: the formats :func:`read_traces` / :func:`write_traces` accept: live views of
#: :data:`pointae.registry.formats` (its ``read``/``write`` flags)
READ_FORMATS = registry.formats.where(read=True)
WRITE_FORMATS = registry.formats.where(write=True)
_ALIASES = {
    "hdf5": "h5",
    "fof-ct": "fofct",
    "long": "csv",
    "longcsv": "csv",
    "ecsv": "table",
    "tsv": "table",
    "mapped": "table",
}


@dataclass
class ReadOptions:
    """How to read a trace file; the CLI's ``--format --columns --unit --pixel-size --duplicates``.

    Parameters
    ----------
    format
        Input format (detected when None).
    columns
        Column mapping for a long table (``"trace=A+B,locus=start,x=..."`` or a YAML file); implies
        ``format="table"``.
    unit
        Coordinate unit (``nm``, ``micron``/``um``, ``pixel``); default from the file.
    pixel_size
        Nanometres per pixel when the unit is ``pixel``.
    duplicates
        Several spots for one (trace, locus): ``error``, ``first``, ``mean`` or ``closest``
        (default: closest to its chain neighbours, counted).
    """

    format: str | None = None
    columns: object = None
    unit: str | None = None
    pixel_size: float | None = None
    duplicates: str | None = None

    def kwargs(self) -> dict:
        """``format=`` and the reader options that were given, for :func:`read_traces`."""
        kw = {k: getattr(self, k) for k in ("columns", "unit", "pixel_size", "duplicates")}
        kw = {k: v for k, v in kw.items() if v is not None}
        fmt = self.format
        if self.columns is not None and fmt is None:
            fmt = "table"
        return {"format": fmt, **kw}


def _reader_kwargs(fmt: str, kw: dict, path) -> dict:
    """Keep the options ``fmt`` understands; an option given for a format without it is an error."""
    kw = {k: v for k, v in kw.items() if v is not None}
    if "duplicates" in kw and kw["duplicates"] not in DUPLICATE_POLICIES:
        raise PointaeError(
            f"unknown duplicates policy {kw['duplicates']!r}; expected one of {', '.join(DUPLICATE_POLICIES)}"
        )
    bad = [k for k in kw if k not in registry.formats.meta(fmt).get("options", ())]
    if bad:
        flags = ", ".join("--" + k.replace("_", "-") for k in bad)
        raise PointaeError(f"{path}: {flags} does not apply to {fmt} files")
    return kw


def default_write_format(traces: Traces) -> str:
    """The format to write traces back in: their input format, FOF-CT for read-only layouts."""
    fmt = traces.attrs.get("format")
    return fmt if fmt in WRITE_FORMATS else "fofct"


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
        text, _ = decode_bytes(p, head, partial=len(head) == 64 * 1024)
    except InputError as e:
        raise InputError(p, e.problem.replace("text file", "text file nor HDF5", 1)) from None
    if not text.strip():
        raise InputError(p, "empty file (only whitespace)")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if fofct.looks_like(text):
        return "fofct"
    if bintu.looks_like(text):
        return "bintu"
    if longcsv.looks_like(text):
        return "csv"
    if table.looks_like(text):
        return "table"
    first = text.split("\n", 1)[0][:60]
    site = table.site_table_problem(text)
    if site:
        raise InputError(p, site, line=1)
    raise InputError(
        p,
        f"cannot detect the format (first line {first!r}); expected a Bintu CSV, a FOF-CT table, "
        "an ECSV or a long table with trace, locus and x/y/z columns, or a pointae HDF5 file; "
        "pass --columns trace=...,locus=...,x=...,y=...,z=... or --format",
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
        ``"bintu"``, ``"fofct"``, ``"csv"``, ``"table"`` or ``"h5"``; detected from the content when
        None (``"table"`` when ``columns=`` is given).
    start, stop
        Read only traces ``[start, stop)``. For HDF5 only that slice is read from disk.
    **kw
        Reader options (see :class:`ReadOptions`): ``unit=`` (text formats), ``duplicates=``
        (FOF-CT, long CSV, tables), ``columns=`` and ``pixel_size=`` (tables). An option the
        format does not take is an error.

    Returns
    -------
    Traces
        ``coords (N, L, 3)`` float32; ``attrs["source"]`` and ``attrs["format"]`` are set.
    """
    if kw.get("columns") is not None and format is None:
        format = "table"
    fmt = _normalise(format, READ_FORMATS) or detect_format(path)
    kw = _reader_kwargs(fmt, kw, path)
    if fmt == "h5":
        return _numeric_policy(hdf5.read_h5(path, start=start, stop=stop, **kw), path)
    t = _numeric_policy(_format_function(fmt, "reader")(path, **kw), path)
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

    Every format streams: HDF5 reads one slice at a time; text formats (Bintu, FOF-CT, long CSV,
    tables) are read in chunks of whole traces aligned on the file's locus set (two passes: the
    locus columns, then the rows; memory bounded by the chunk size; a trace's rows must be
    contiguous). ``**kw`` are reader options (:class:`ReadOptions`).
    """
    if chunk_size < 1:
        raise PointaeError("chunk_size must be >= 1")
    if kw.get("columns") is not None and format is None:
        format = "table"
    fmt = _normalise(format, READ_FORMATS) or detect_format(path)
    if fmt == "h5":
        kw = _reader_kwargs(fmt, kw, path)
        for part in hdf5.iter_h5(path, chunk_size=chunk_size, **kw):
            yield _numeric_policy(part, path)
        return
    from pointae.data.io._stream import iter_text

    for part in iter_text(path, fmt, chunk_size, **_reader_kwargs(fmt, kw, path)):
        yield _numeric_policy(part, path)


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


def read_structures(path, **kw) -> Traces:
    """Read traces from any trace file, a PDB file, or an ``.npy`` of coordinates ``(N, L, 3)``.

    What ``reconstruct``, ``view`` and ``export-pdb`` read. ``.pdb`` and ``.npy`` go through the
    same numeric policy as the trace readers; ``kw`` (reader options such as ``columns``, ``unit``)
    are passed to :func:`read_traces` for trace files.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".pdb", ".npy"):
        if any(v is not None for v in kw.values()):
            raise PointaeError(f"{p}: reader options do not apply to {suffix} files")
        if suffix == ".pdb":
            from pointae.data.io.pdb import read_pdb

            return _numeric_policy(read_pdb(p), p)
        from pointae.data.io.npy import read_npy

        return _numeric_policy(read_npy(p), p)
    return read_traces(p, **kw)


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
    if fmt == "fofct" and str(path).lower().endswith(".tsv"):
        kw.setdefault("sep", "\t")
    _format_function(fmt, "writer")(traces, path, **kw)


def _format_function(fmt: str, role: str):
    """The ``reader``/``writer`` function of format ``fmt`` (its module imported on first use)."""
    try:
        module = registry.formats.get(fmt)
    except ImportError as e:  # e.g. pdb output needs an optional dependency
        raise PointaeError(
            f"{fmt} {'input' if role == 'reader' else 'output'} is not available ({e})"
        ) from None
    name = registry.formats.meta(fmt).get(role)
    if name is None:
        raise PointaeError(f"format {fmt!r} cannot be {'read' if role == 'reader' else 'written'}")
    return getattr(module, name)


def convert_file(src, dst, to: str | None = None, format: str | None = None, **kw) -> tuple[int, int]:
    """Read ``src`` (format detected unless ``format``) and write it to ``dst`` (format ``to`` or
    from the suffix). Trace ids, meta columns, loci, layers and attrs are carried over; ``**kw``
    are reader options (:class:`ReadOptions`).

    Conversion to HDF5 streams chunk by chunk (:func:`iter_traces`), from any input format.

    Returns
    -------
    (int, int)
        Number of traces and of loci written.
    """
    fmt_out = _normalise(to, WRITE_FORMATS) or format_from_suffix(dst)
    if kw.get("columns") is not None and format is None:
        format = "table"
    fmt_in = _normalise(format, READ_FORMATS) or detect_format(src)
    kw = _reader_kwargs(fmt_in, kw, src)
    from pointae.outputs import check_outputs

    check_outputs([dst], inputs=[src], overwrite=True)  # never the input (also via links); see outputs
    if fmt_in == "h5" and fmt_out == "h5" and hdf5.h5_length(src) > 0:  # stream, one chunk at a time
        params = {"command": "convert", "input": str(src), "input_format": "h5"}
        with hdf5.H5TraceWriter(dst, parameters=params) as w:
            for part in hdf5.iter_h5(src, chunk_size=65536):
                w.append(part)
        return w.n, w._spec["n_loci"] if w._spec else 0
    if fmt_out == "h5":  # stream, chunk by chunk: the input is never held whole
        params = {"command": "convert", "input": str(src), "input_format": fmt_in}
        with hdf5.H5TraceWriter(dst, parameters=params) as w:
            for part in iter_traces(src, chunk_size=65536, format=fmt_in, **kw):
                w.append(part)
        return w.n, w._spec["n_loci"] if w._spec else 0
    t = read_traces(src, format=fmt_in, **kw)
    wkw = {}
    if fmt_out == "h5":
        wkw["parameters"] = {"command": "convert", "input": str(src), "input_format": fmt_in}
    write_traces(t, dst, format=fmt_out, **wkw)
    return len(t), t.n_loci


__all__ = [
    "READ_FORMATS",
    "ReadOptions",
    "default_write_format",
    "convert_file",
    "WRITE_FORMATS",
    "detect_format",
    "format_from_suffix",
    "iter_traces",
    "read_traces",
    "write_traces",
]
