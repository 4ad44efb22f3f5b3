"""Bintu et al. 2018 tracing CSV (``BogdanBintu/ChromatinImaging``, ``Data/*.csv``).

Layout: line 1 is free text (kept in ``attrs["description"]`` and written back); line 2 the
header ``Chromosome index,Segment index,Z,X,Y`` (note the order Z, X, Y) plus optional extra
columns; then one row per (trace, segment), 1-based indices, every segment listed for every
trace, ``nan`` for an undetected segment. Coordinates are in nm.

Extra columns constant within every trace (e.g. ``Cell cycle``) go to ``meta``, the others to
``layers``. pointae writes ``Chrom,Chrom_Start,Chrom_End`` columns when the loci are known and a
``trace_id`` column when trace ids are not positive integers; both are read back.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from pointae.data.io._common import (
    read_coordinates,
    LongTable,
    assemble,
    check_input_path,
    check_short_rows,
    coord_text,
    find_columns,
    numeric,
    parse_table,
    parse_unit,
    read_text,
    text_ids,
)
from pointae.data.traces import Traces
from pointae.errors import InputError, PointaeError, atomic_path

HEADER_START = "chromosome index,segment index"
_LOCI_COLS = ("chrom", "chrom_start", "chrom_end")
_INT_ID = re.compile(r"^[0-9]+$")


def looks_like(head: str) -> bool:
    """True when the first lines of a file have the Bintu header (on line 1 or 2)."""
    lines = head.split("\n")[:2]
    return any(line.strip().lower().replace(", ", ",").startswith(HEADER_START) for line in lines)


def read_bintu(
    path, unit: str = "nm", _text: str | None = None, _labels: list[str] | None = None
) -> Traces:
    """Read a Bintu tracing CSV.

    Parameters
    ----------
    path
        The ``.csv`` file.
    unit
        Unit of the coordinates (the published files are in nm).

    Returns
    -------
    Traces
        ``coords (N, L, 3)`` in x, y, z order, ``meta`` with ``trace_id`` (the chromosome index)
        and per-trace extra columns, ``layers`` with per-spot extras.
    """
    path = check_input_path(path)
    unit = parse_unit(path, unit)
    encoding: list[str] = []
    text = read_text(path, encoding) if _text is None else _text
    encoding = encoding or ["utf-8"]
    first = text.split("\n", 1)[0]
    if first.strip().lower().replace(", ", ",").startswith(HEADER_START):
        skip, description = 0, None
    else:
        skip, description = 1, first
        second = text.split("\n", 2)[1] if text.count("\n") >= 1 else ""
        if not second.strip().lower().replace(", ", ",").startswith(HEADER_START):
            raise InputError(path, "expected the header 'Chromosome index,Segment index,Z,X,Y'", line=2)
    df, first_line = parse_table(path, text, skiprows=skip, str_columns=("chromosome index", "trace_id"))
    cols = find_columns(
        path,
        df,
        {
            "chromosome index": "Chromosome index",
            "segment index": "Segment index",
            "z": "Z",
            "x": "X",
            "y": "Y",
        },
        line=first_line - 1,
    )
    check_short_rows(path, df, text, first_line)
    lines = first_line + df.index.to_numpy()
    keys = text_ids(path, df, cols["chromosome index"], first_line)
    seg = numeric(path, df, cols["segment index"], first_line, integer=True)
    xyz, text_attrs = read_coordinates(path, df, [cols[a] for a in "xyz"], first_line, text)
    segments = np.unique(seg)
    codes = np.searchsorted(segments, seg)
    extra = df.drop(columns=list(cols.values()))
    lower = {c.lower(): c for c in extra.columns}
    loci = None
    if all(k in lower for k in _LOCI_COLS):
        lc = [lower[k] for k in _LOCI_COLS]
        loci = _loci_from_columns(path, extra[lc], codes, len(segments), lines)
        extra = extra.drop(columns=lc)
    if _labels is None:
        key_cols = _label_key(keys, seg, extra)
    else:  # decided on an earlier chunk of the file (streaming)
        key_cols = [c for c in _labels if c in extra.columns]
    if key_cols:  # the index restarts for each label: a trace is (labels..., index)
        parts = [extra[c].astype(str).str.strip().to_numpy() for c in key_cols] + [keys]
        keys = np.array(["/".join(p) for p in zip(*parts)], dtype=object)
    table = LongTable(
        trace_keys=keys,
        locus_codes=codes,
        n_loci=len(segments),
        xyz=xyz,
        lines=lines,
        extra=extra,
        locus_label=lambda c: int(segments[c]),
    )
    res = assemble(path, table, complete=True, locus_name="segment")
    coords, meta, layers = res
    attrs = {"source": str(path), "format": "bintu", **text_attrs}
    if key_cols:
        attrs["trace_key"] = [*key_cols, cols["chromosome index"]]
        attrs["bintu_label_columns"] = list(key_cols)
    else:
        attrs["trace_key"] = [cols["chromosome index"]]
    if description is not None:
        attrs["description"] = description
    if encoding[0] != "utf-8":
        attrs["encoding"] = encoding[0]
    if not np.array_equal(segments, np.arange(1, len(segments) + 1)):
        attrs["segment_index"] = segments.tolist()
    return Traces(coords, unit=unit, meta=meta, loci=loci, attrs=attrs, layers=layers, coords64=res.coords64)


def _label_key(keys: np.ndarray, seg: np.ndarray, extra: pd.DataFrame) -> list[str]:
    """Extra columns that, with the chromosome index, make (trace, segment) unique.

    Empty when the chromosome index alone is a trace key. When it restarts (a published file
    numbers traces per cell-cycle label), the first columns (in file order) constant over each
    run of rows of one index whose values make every (label..., index, segment) unique are the
    trace key. No such columns: empty, and the duplicated rows are reported by :func:`assemble`.
    """
    base = pd.DataFrame({"k": keys, "s": seg})
    if not base.duplicated().any():
        return []
    run = np.r_[0, np.cumsum(keys[1:] != keys[:-1])]  # (M,) runs of one chromosome index
    chosen: list[str] = []
    for c in extra.columns:
        if str(c).lower() == "trace_id" or extra[c].isna().any():
            continue
        codes = pd.factorize(extra[c])[0]
        if np.any((codes[1:] != codes[:-1]) & (run[1:] == run[:-1])):
            continue  # changes within a trace's rows: per spot, not a label
        chosen.append(c)
        probe = base.assign(**{f"_{i}": extra[c].to_numpy() for i, c in enumerate(chosen)})
        if not probe.duplicated().any():
            return chosen
    return []


def _loci_from_columns(path, df: pd.DataFrame, codes: np.ndarray, n_loci: int, lines: np.ndarray):
    chrom, start, end = (df[c].to_numpy() for c in df.columns)
    first = np.full(n_loci, -1)
    first[codes[::-1]] = np.arange(len(codes))[::-1]
    loci = pd.DataFrame({"chrom": chrom[first], "start": start[first], "end": end[first]})
    for arr, ref in ((chrom, loci["chrom"].to_numpy()), (start, loci["start"].to_numpy())):
        bad = np.flatnonzero(arr != ref[codes])
        if bad.size:
            raise InputError(
                path,
                "inconsistent locus sets: one segment has two genomic positions",
                line=int(lines[bad[0]]),
            )
    if loci[["start", "end"]].isna().any().any():
        raise InputError(path, "missing Chrom_Start/Chrom_End values")
    return loci


def _label_indices(t: Traces, ids: np.ndarray) -> np.ndarray | None:
    """Chromosome indices of a file read with label keys (``attrs["bintu_label_columns"]``).

    Returns the per-trace index when every id is ``label/.../index`` built from its meta labels,
    so the file is written back with its restarting index and no ``trace_id`` column.
    """
    labels = t.attrs.get("bintu_label_columns")
    if not labels or not all(c in t.meta.columns for c in labels):
        return None
    prefix = ["/".join(p) for p in zip(*(t.meta[c].astype(str).to_numpy() for c in labels))]
    idx = []
    for pre, tid in zip(prefix, ids):
        head, _, tail = tid.rpartition("/")
        if head != pre or not _INT_ID.match(tail):
            return None
        idx.append(tail)
    return np.asarray(idx, dtype=object)


def write_bintu(traces: Traces, path, description: str | None = None) -> None:
    """Write a Bintu tracing CSV (coordinates in nm; integers written without decimals).

    Parameters
    ----------
    traces
        Traces in ``nm`` or ``micron`` (converted to nm).
    path
        Output file (written atomically).
    description
        Free-text first line; defaults to ``attrs["description"]`` or a generated one.
    """
    if traces.unit == "bead":
        raise PointaeError("Bintu files hold nm; convert bead units to nm before writing Bintu CSV")
    t = traces.to_unit("nm")
    n, n_loci = len(t), t.n_loci
    desc = description or t.attrs.get("description")
    if not desc:
        desc = f"pointae traces: {n} traces x {n_loci} loci, x/y/z positions in nm"
    desc = str(desc).replace("\n", " ")
    if looks_like(desc):
        raise PointaeError("the Bintu description line must not look like the header")
    ids = t.meta["trace_id"].astype(str).to_numpy()
    index_ids = _label_indices(t, ids)
    int_ids = index_ids is not None or all(_INT_ID.match(s) for s in ids)
    if index_ids is not None:
        ids = index_ids
    seg = np.asarray(t.attrs.get("segment_index") or np.arange(1, n_loci + 1))
    if len(seg) != n_loci:
        seg = np.arange(1, n_loci + 1)
    cols: dict[str, object] = {
        "Chromosome index": np.repeat(ids if int_ids else np.arange(1, n + 1), n_loci),
        "Segment index": np.tile(seg, n),
    }
    xyz = coord_text(t, na_rep="nan")
    for name, axis in (("Z", 2), ("X", 0), ("Y", 1)):
        cols[name] = xyz[axis]
    if not int_ids:
        cols["trace_id"] = np.repeat(ids, n_loci)
    extra: list[tuple[str, object]] = [
        (str(c), np.repeat(t.meta[c].to_numpy(), n_loci)) for c in t.meta.columns if c != "trace_id"
    ]
    if t.loci is not None:
        extra.append(("Chrom", np.tile(t.loci["chrom"].to_numpy(), n)))
        extra.append(("Chrom_Start", np.tile(t.loci["start"].to_numpy(), n)))
        extra.append(("Chrom_End", np.tile(t.loci["end"].to_numpy(), n)))
    extra += [(str(k), np.asarray(v).reshape(-1)) for k, v in t.layers.items()]
    taken = {c.lower() for c in cols}
    for name, v in extra:
        if name.lower() in taken:
            raise PointaeError(f"column {name!r} (meta, loci or layer) collides with another Bintu column")
        taken.add(name.lower())
        cols[name] = v
    df = pd.DataFrame(cols)
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(desc + "\n")
            df.to_csv(fh, index=False, na_rep="nan", lineterminator="\n")


__all__ = ["read_bintu", "write_bintu", "looks_like"]
