"""Plain long CSV: one row per (trace, locus).

Layout::

    #unit=nm                      (optional '#key=value' lines: unit, pointae_layers, attrs)
    trace_id,locus,x,y,z[,chrom,start,end][,extra columns...]
    t0,0,12.5,3.0,-4.25
    t0,1,,,                        (missing: empty or nan coordinates, or an absent row)

``locus`` is an integer index; loci are the sorted union of the indices seen. Column names are
case-insensitive. Extra columns constant within every trace go to ``meta``, others to ``layers``.
pointae writes every (trace, locus) row, missing ones with empty coordinates.
"""

from __future__ import annotations

import json

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
    jsonable,
    numeric,
    parse_key_values,
    parse_name_list,
    parse_table,
    parse_unit,
    read_text,
    split_header,
    text_ids,
)
from pointae.data.traces import Traces
from pointae.errors import InputError, PointaeError, atomic_path

_REQUIRED = {"trace_id": "trace_id", "locus": "locus", "x": "x", "y": "y", "z": "z"}
_LOCI = ("chrom", "start", "end")


def looks_like(head: str) -> bool:
    """True when the first non-comment line is a header with trace_id and locus (pointae's layout;
    other tables with a trace_id go to :mod:`pointae.data.io.table`)."""
    for line in head.split("\n"):
        if line.startswith("#") or not line.strip():
            continue
        names = {c.strip().strip('"').lower() for c in line.split(",")}
        return "trace_id" in names and "locus" in names
    return False


def read_long_csv(
    path, unit: str | None = None, duplicates: str = "closest", _text: str | None = None
) -> Traces:
    """Read a long CSV (see the module docstring).

    Parameters
    ----------
    unit
        Coordinate unit; default from a ``#unit=`` line, else ``nm``.
    duplicates
        Several rows for one (trace, locus): ``"error"``, ``"first"``, ``"mean"`` or
        ``"closest"`` (to the chain neighbours; counted in ``attrs["duplicates"]``).

    Returns
    -------
    Traces
        ``coords (N, L, 3)`` with ``L`` = number of distinct locus indices.
    """
    path = check_input_path(path)
    text = read_text(path) if _text is None else _text
    header, n_header = split_header(text)
    kv = parse_key_values(header, "#")
    if unit is None:
        unit = parse_unit(path, kv["unit"][0], line=kv["unit"][1]) if "unit" in kv else "nm"
    else:
        unit = parse_unit(path, unit)
    hint = set(parse_name_list(kv["pointae_layers"][0])) if "pointae_layers" in kv else set()
    attrs: dict = {}
    if "attrs" in kv:
        try:
            attrs = json.loads(kv["attrs"][0])
        except json.JSONDecodeError:
            raise InputError(path, "the #attrs= line is not valid JSON", line=kv["attrs"][1]) from None
        if not isinstance(attrs, dict):
            raise InputError(path, "the #attrs= line must hold a JSON object {...}", line=kv["attrs"][1])
    df, first_line = parse_table(path, text, skiprows=n_header, str_columns=("trace_id", "chrom"))
    cols = find_columns(path, df, _REQUIRED, line=first_line - 1)
    check_short_rows(path, df, text, first_line)
    lines = first_line + df.index.to_numpy()
    keys = text_ids(path, df, cols["trace_id"], first_line)
    locus = numeric(path, df, cols["locus"], first_line, integer=True)
    xyz, text_attrs = read_coordinates(path, df, [cols[a] for a in "xyz"], first_line, text)
    values = np.unique(locus)
    codes = np.searchsorted(values, locus)
    lower = {c.lower(): c for c in df.columns}
    extra = df.drop(columns=list(cols.values()))
    loci = None
    present = [k for k in _LOCI if k in lower]
    if present and len(present) < 3:
        raise InputError(path, "give all of chrom, start, end or none of them", line=first_line - 1)
    if present:
        lc = [lower[k] for k in _LOCI]
        loci = _loci(path, df, lc, codes, len(values), lines, first_line)
        extra = extra.drop(columns=lc)
    table = LongTable(
        trace_keys=keys,
        locus_codes=codes,
        n_loci=len(values),
        xyz=xyz,
        lines=lines,
        extra=extra,
        layer_hint={c for c in extra.columns if c in hint},
        locus_label=lambda c: int(values[c]),
        duplicates=duplicates,
    )
    res = assemble(path, table)
    attrs.update({"source": str(path), "format": "csv", **text_attrs})
    if res.duplicates["spots"]:
        attrs["duplicates"] = res.duplicates
    if not np.array_equal(values, np.arange(len(values))):
        attrs["locus_index"] = values.tolist()
    return Traces(
        res.coords, unit=unit, meta=res.meta, loci=loci, attrs=attrs, layers=res.layers, coords64=res.coords64
    )


def _loci(path, df, lc, codes, n_loci, lines, first_line):
    chrom = text_ids(path, df, lc[0], first_line)
    start = numeric(path, df, lc[1], first_line, integer=True)
    end = numeric(path, df, lc[2], first_line, integer=True)
    first = np.full(n_loci, -1)
    first[codes[::-1]] = np.arange(len(codes))[::-1]
    ref = (chrom[first], start[first], end[first])
    for arr, r in zip((chrom, start, end), ref):
        bad = np.flatnonzero(arr != r[codes])
        if bad.size:
            raise InputError(
                path,
                "inconsistent locus sets: this locus index has another chrom/start/end above",
                line=int(lines[bad[0]]),
            )
    return pd.DataFrame({"chrom": ref[0], "start": ref[1], "end": ref[2]})


def write_long_csv(traces: Traces, path) -> None:
    """Write a long CSV with every (trace, locus) row (missing loci with empty coordinates)."""
    t = traces
    n, n_loci = len(t), t.n_loci
    xyz = coord_text(t, na_rep="")
    locus_index = t.attrs.get("locus_index")
    idx = np.asarray(locus_index) if locus_index and len(locus_index) == n_loci else np.arange(n_loci)
    cols: dict[str, object] = {
        "trace_id": np.repeat(t.meta["trace_id"].astype(str).to_numpy(), n_loci),
        "locus": np.tile(idx, n),
        "x": xyz[0],
        "y": xyz[1],
        "z": xyz[2],
    }
    if t.loci is not None:
        for k in _LOCI:
            cols[k] = np.tile(t.loci[k].to_numpy(), n)
    taken = set(cols)
    for c in t.meta.columns:
        if c == "trace_id":
            continue
        if c.lower() in taken:
            raise PointaeError(f"meta column {c!r} collides with a long-CSV column")
        taken.add(c.lower())
        cols[c] = np.repeat(t.meta[c].to_numpy(), n_loci)
    for k, v in t.layers.items():
        if k.lower() in taken:
            raise PointaeError(f"layer {k!r} collides with a long-CSV column")
        taken.add(k.lower())
        cols[k] = np.asarray(v).reshape(-1)
    attrs = {k: v for k, v in t.attrs.items() if k not in ("source", "format", "locus_index")}
    head = [f"#unit={t.unit}"]
    if t.layers:
        head.append("#pointae_layers=(" + ", ".join(t.layers) + ")")
    if attrs:
        head.append("#attrs=" + json.dumps(jsonable(attrs), ensure_ascii=False))
    df = pd.DataFrame(cols)
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            fh.write("\n".join(head) + "\n")
            df.to_csv(fh, index=False, na_rep="", lineterminator="\n")


__all__ = ["read_long_csv", "write_long_csv", "looks_like"]
