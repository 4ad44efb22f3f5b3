"""4DN FISH-omics format, chromatin tracing (FOF-CT) core table.

Layout::

    ##FOF-CT_version=v0.1
    ##Table_namespace=4dn_FOF-CT_core
    ##genome_assembly=GRCh38
    ##XYZ_unit=nm
    #free comment lines
    ##columns=(Spot_ID, Trace_ID, X, Y, Z, Chrom, Chrom_Start, Chrom_End[, Cell_ID, ...])
    1,1,117803,58446,1733,chr21,18627714,18657714
    ...

One row per *detected* spot: a missing spot is an absent row. Loci are identified by
``(Chrom, Chrom_Start, Chrom_End)``; traces are aligned onto the sorted union of loci
(chromosomes in order of first appearance, then start, end). Column names are
case-insensitive. ``Cell_ID`` becomes ``meta["cell_id"]``; other extra columns constant within
every trace go to ``meta``, the rest to ``layers``. pointae writes a ``#pointae_layers=(...)``
comment naming its per-spot columns so they read back as layers even when constant per trace, and
a ``#pointae_attrs={json}`` comment with attributes the FOF-CT header has no field for.
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
from pointae.data.io.table import genomic_union
from pointae.data.traces import Traces
from pointae.errors import InputError, PointaeError, atomic_path

_REQUIRED = {
    "trace_id": "Trace_ID",
    "x": "X",
    "y": "Y",
    "z": "Z",
    "chrom": "Chrom",
    "chrom_start": "Chrom_Start",
    "chrom_end": "Chrom_End",
}
WRITE_VERSION = "v1.0"
_STANDARD_KEYS = ("FOF-CT_version", "Table_namespace", "genome_assembly", "XYZ_unit", "columns")
_LAYER_HINT = "#pointae_layers="
_ATTRS = "#pointae_attrs="
# attrs the FOF-CT header holds itself; the rest go to a '#pointae_attrs=' JSON comment
_HEADER_ATTRS = (
    "genome_assembly",
    "fofct_version",
    "fofct_header",
    "comments",
    "source",
    "format",
    "provenance",
)


def looks_like(head: str) -> bool:
    """True when a file starts with FOF-CT ``##`` header lines."""
    for line in head.split("\n")[:50]:
        low = line.lower()
        if low.startswith("##fof-ct_version") or low.startswith("##table_namespace"):
            return True
        if not line.startswith("#"):
            return False
    return False


def read_fofct(
    path, unit: str | None = None, duplicates: str = "closest", _text: str | None = None
) -> Traces:
    """Read a FOF-CT core table (comma- or tab-separated).

    Parameters
    ----------
    path
        The table.
    unit
        Override ``##XYZ_unit`` (default: taken from the file; ``nm`` when absent).
    duplicates
        Several spots for one (trace, locus): ``"error"``, ``"first"``, ``"mean"`` or
        ``"closest"`` (to the chain neighbours; counted in ``attrs["duplicates"]``).

    Returns
    -------
    Traces
        ``coords (N, L, 3)`` aligned on the union of loci, ``loci`` (chrom, start, end),
        ``meta`` (``trace_id``, ``cell_id``, ...), ``layers``; the genome assembly, extra ``##``
        header fields and comments go to ``attrs``.
    """
    path = check_input_path(path)
    encoding: list[str] = []
    text = read_text(path, encoding) if _text is None else _text
    encoding = encoding or ["utf-8"]
    header, n_header = split_header(text)
    kv = parse_key_values(header, "##")
    kv_lower = {k.lower(): v for k, v in kv.items()}
    if unit is None:
        if "xyz_unit" in kv_lower:
            unit = parse_unit(path, kv_lower["xyz_unit"][0], line=kv_lower["xyz_unit"][1])
        else:
            unit = "nm"
    else:
        unit = parse_unit(path, unit)
    comments = [
        h[1:].strip()
        for h in header
        if not h.startswith("##") and not h.startswith(_LAYER_HINT) and not h.startswith(_ATTRS)
    ]
    extra_attrs: dict = {}
    for i, h in enumerate(header, start=1):
        if h.startswith(_ATTRS):
            try:
                extra_attrs = json.loads(h[len(_ATTRS) :])
            except json.JSONDecodeError:
                raise InputError(path, "the #pointae_attrs= line is not valid JSON", line=i) from None
            if not isinstance(extra_attrs, dict):
                raise InputError(path, "the #pointae_attrs= line must hold a JSON object {...}", line=i)
    hint = set()
    for h in header:
        if h.startswith(_LAYER_HINT):
            hint = set(parse_name_list(h[len(_LAYER_HINT) :]))
    body_first = text.split("\n", n_header + 1)[n_header] if text.count("\n") >= n_header else ""
    sep = "\t" if "\t" in body_first and "," not in body_first else ","
    if "columns" in kv_lower:
        names = parse_name_list(kv_lower["columns"][0])
        cols_line = kv_lower["columns"][1]
        if not names:
            raise InputError(path, "empty ##columns list", line=cols_line)
        seen = [n.lower() for n in names]
        dup = next((n for i, n in enumerate(names) if n.lower() in seen[:i]), None)
        if dup is not None:
            raise InputError(path, f"column {dup!r} appears twice in ##columns", line=cols_line)
        df, first_line = parse_table(
            path, text, skiprows=n_header, names=names, sep=sep, str_columns=("trace_id", "chrom", "cell_id")
        )
        if str(df.iloc[0, 0]).strip().lower() == names[0].lower():  # a repeated header row
            df = df.iloc[1:]
    else:
        cols_line = n_header + 1
        if "trace_id" not in body_first.lower():
            raise InputError(path, "no ##columns=(...) header line and no column header row", line=cols_line)
        df, first_line = parse_table(
            path, text, skiprows=n_header, sep=sep, str_columns=("trace_id", "chrom", "cell_id")
        )
    if df.empty:
        raise InputError(path, "the table has no rows", line=cols_line)
    cols = find_columns(path, df, _REQUIRED, line=cols_line)
    required_pos = [list(df.columns).index(c) for c in cols.values()]
    check_short_rows(path, df, text, first_line, sep=sep, min_fields=max(required_pos) + 1)
    lines = first_line + df.index.to_numpy()
    keys = text_ids(path, df, cols["trace_id"], first_line)
    xyz, text_attrs = read_coordinates(path, df, [cols[a] for a in "xyz"], first_line, text, sep)
    chrom = text_ids(path, df, cols["chrom"], first_line)
    start = numeric(path, df, cols["chrom_start"], first_line, integer=True)
    end = numeric(path, df, cols["chrom_end"], first_line, integer=True)
    bad = np.flatnonzero(end < start)
    if bad.size:
        raise InputError(path, "Chrom_End is before Chrom_Start", line=int(lines[bad[0]]))
    loci, codes = genomic_union(chrom, start, end)
    _check_chromosome_sets(path, keys, chrom, lines)

    lower = {c.lower(): c for c in df.columns}
    drop = list(cols.values()) + ([lower["spot_id"]] if "spot_id" in lower else [])
    extra = df.drop(columns=drop)
    rename = {c: "cell_id" for c in extra.columns if c.lower() == "cell_id"}
    table = LongTable(
        trace_keys=keys,
        locus_codes=codes,
        n_loci=len(loci),
        xyz=xyz,
        lines=lines,
        extra=extra,
        layer_hint={c for c in extra.columns if c in hint},
        rename=rename,
        locus_label=lambda c: f"{loci.chrom[c]}:{loci.start[c]}-{loci.end[c]}",
        duplicates=duplicates,
    )
    res = assemble(path, table, locus_name="locus")
    attrs: dict = {**extra_attrs, **text_attrs, "source": str(path), "format": "fofct"}
    if "genome_assembly" in kv_lower:
        attrs["genome_assembly"] = kv_lower["genome_assembly"][0]
    other = {k: v for k, (v, _) in kv.items() if k.lower() not in {s.lower() for s in _STANDARD_KEYS}}
    if other:
        attrs["fofct_header"] = other
    if encoding[0] != "utf-8":
        attrs["encoding"] = encoding[0]
    if res.duplicates["spots"]:
        attrs["duplicates"] = res.duplicates
    if comments:
        attrs["comments"] = comments
    return Traces(
        res.coords, unit=unit, meta=res.meta, loci=loci, attrs=attrs, layers=res.layers, coords64=res.coords64
    )


def _check_chromosome_sets(path, keys, chrom, lines):
    """Every trace must cover the same chromosome(s)."""
    if len(pd.unique(chrom)) < 2:
        return
    pairs = pd.DataFrame({"t": keys, "c": chrom}).drop_duplicates()
    sets = pairs.groupby("t", sort=False)["c"].agg(lambda s: tuple(sorted(s)))
    ref = sets.iloc[0]
    bad = sets[sets != ref]
    if len(bad):
        tid = bad.index[0]
        raise InputError(
            path,
            f"inconsistent locus sets: this trace covers {', '.join(bad.iloc[0])} but trace "
            f"{sets.index[0]} covers {', '.join(ref)} (one file must hold one locus set)",
            trace=tid,
        )


def write_fofct(traces: Traces, path, genome_assembly: str | None = None, sep: str = ",") -> None:
    """Write a FOF-CT core table that :func:`read_fofct` reads back identically.

    A v1.0 header; only observed spots, with the digits they were read with
    (:func:`~pointae.data.io._common.coord_text`: float64 when read so, integers without decimals,
    new values as float32 shortest text). Loci are required for FOF-CT; when ``traces.loci`` is
    None, placeholder loci ``unknown:i-(i+1)`` (the locus index, or the barcode from
    ``attrs["locus_index"]``) are written and a comment says so.
    """
    t = traces
    n, n_loci = len(t), t.n_loci
    attrs = t.attrs
    comments = list(attrs.get("comments", []))
    rest = {k: v for k, v in attrs.items() if k not in _HEADER_ATTRS}
    if t.loci is None:
        idx = t.attrs.get("locus_index")
        if isinstance(idx, list) and len(idx) == n_loci and all(isinstance(i, int) for i in idx):
            start = np.asarray(idx, dtype=np.int64)  # e.g. barcode numbers
            comments.append("loci unknown: Chrom_Start is the locus index or barcode of the source file")
        else:
            start = np.arange(n_loci)
            comments.append("loci unknown: Chrom_Start is the locus index (0-based)")
        loci = pd.DataFrame({"chrom": "unknown", "start": start, "end": start + 1})
    else:
        loci = t.loci
    mask = t.mask.reshape(-1)
    ti = np.repeat(np.arange(n), n_loci)[mask]
    li = np.tile(np.arange(n_loci), n)[mask]
    xyz = coord_text(t, rows=mask)
    cols: dict[str, object] = {
        "Spot_ID": np.arange(1, len(ti) + 1),
        "Trace_ID": t.meta["trace_id"].astype(str).to_numpy()[ti],
        "X": xyz[0],
        "Y": xyz[1],
        "Z": xyz[2],
        "Chrom": loci["chrom"].to_numpy()[li],
        "Chrom_Start": loci["start"].to_numpy()[li],
        "Chrom_End": loci["end"].to_numpy()[li],
    }
    taken = {c.lower() for c in cols}
    for c in t.meta.columns:
        if c == "trace_id":
            continue
        name = "Cell_ID" if c == "cell_id" else c
        if name.lower() in taken:
            raise PointaeError(f"meta column {c!r} collides with a FOF-CT core column")
        taken.add(name.lower())
        cols[name] = t.meta[c].to_numpy()[ti]
    for k, v in t.layers.items():
        if k.lower() in taken:
            raise PointaeError(f"layer {k!r} collides with a FOF-CT column")
        taken.add(k.lower())
        cols[k] = np.asarray(v).reshape(-1)[mask]
    df = pd.DataFrame(cols)
    assembly = genome_assembly or attrs.get("genome_assembly", "unknown")
    head = [
        f"##FOF-CT_Version={WRITE_VERSION}",
        "##Table_Namespace=4dn_FOF-CT_core",
        f"##Genome_Assembly={assembly}",
        f"##XYZ_Unit={t.unit}",
    ]
    head += [f"##{k}={v}" for k, v in attrs.get("fofct_header", {}).items()]
    head += ["#" + c for c in comments]
    if rest:
        head.append(_ATTRS + json.dumps(jsonable(rest), ensure_ascii=False))
    if t.layers:
        head.append(_LAYER_HINT + "(" + ", ".join(t.layers) + ")")
    head.append("##Columns=(" + ", ".join(df.columns) + ")")
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            fh.write("\n".join(head) + "\n")
            df.to_csv(fh, index=False, header=False, sep=sep, na_rep="nan", lineterminator="\n")


__all__ = ["read_fofct", "write_fofct", "looks_like"]
