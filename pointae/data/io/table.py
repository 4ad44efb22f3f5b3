"""Long tables of any layout (CSV, TSV, astropy ECSV): mapped by the user or detected.

One row per spot; which column is what is given by a :class:`ColumnMap`::

    trace=FOV_ID+Trace_ID,locus=start,x=x-nm,y=y-nm,z=z-nm,chrom=chr,end=stop

- ``trace``: one or more columns (``+``) whose values together identify a trace;
- ``x``, ``y``, ``z``: the coordinates;
- ``locus``: an index or barcode column, or the genomic start column;
- ``chrom``, ``start``, ``end``: genomic coordinates of the locus (carried into ``Traces.loci``).

Without a mapping the columns are detected from their names (:func:`detect_columns`): the
Huang et al. 2021 CSV (``Trace_ID, FOV_ID, chr, start, stop, x-nm ...``), SnapFISH / ArcFISH TSV
(``chr cell_id pos x y z``), Hi-M ECSV (``Trace_ID, Barcode #, x, y, z`` with ``xyz_unit`` in the
meta) and the like. When two columns could play one role the reader stops and asks for
``--columns`` rather than guess. A mapping can be saved as YAML and reused (:meth:`ColumnMap.save`,
``--columns mapping.yaml``).

Loci: genomic ``(chrom, start, end)`` when the table has informative genomic columns (sorted by
chromosome in order of appearance, then start, end; the union over all traces), else the sorted
values of the locus column. Missing spots may be empty values, NaN or absent rows. Units come
from ``--unit``, the column names (``x-nm``, ``x_um``, ``x (px)``), the file's header or meta
(``#unit=``, ECSV ``xyz_unit=``), else they are guessed from the median neighbour distance with a
warning; ``attrs["unit_source"]`` records which. Pixel coordinates need ``pixel_size`` (nm per
pixel) and are converted to nm.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pointae.data.io._common import (
    read_coordinates,
    DUPLICATE_POLICIES,
    LongTable,
    assemble,
    check_input_path,
    numeric,
    parse_key_values,
    parse_table,
    read_text,
    split_header,
    text_ids,
)
from pointae.data.traces import Traces, median_neighbour_distance
from pointae.errors import InputError, PointaeError, atomic_path

ROLES = ("trace", "locus", "x", "y", "z", "chrom", "start", "end")
_UNIT_WORDS = {
    "nm": "nm",
    "um": "micron",
    "µm": "micron",
    "μm": "micron",
    "micron": "micron",
    "microns": "micron",
    "px": "pixel",
    "pix": "pixel",
    "pixel": "pixel",
    "pixels": "pixel",
}
_UNIT_RE = r"(nm|um|µm|μm|microns?|px|pix|pixels?)"
# name patterns per role, in tiers: a higher tier wins, two matches in one tier are ambiguous
_TRACE_TIERS = (
    ("trace_id", "traceid", "trace id", "trace", "trace_index", "chromosome index", "chromosome_index"),
    ("cell_id", "cellid", "cell id", "cell", "cell_index"),
)
_FOV = ("fov_id", "fov", "field_of_view", "fov id", "roi #", "roi", "roi_id")
_CHROM = ("chrom", "chr", "chromosome", "chrom_name", "#chrom")
_START = ("start", "chrom_start", "chromstart", "start_bp", "pos", "position", "genomic_position")
_END = ("end", "stop", "chrom_end", "chromend", "end_bp")
_LOCUS = (
    "locus",
    "locus_id",
    "locus_index",
    "segment index",
    "segment_index",
    "segment",
    "barcode #",
    "barcode",
    "barcode_id",
    "region",
    "region_id",
    "hyb",
    "readout",
    "probe",
    "bin",
)
_DROP = ("spot_id", "spotid", "spot id", "unnamed: 0", "")
_ALLELE = re.compile(r"^\d+_([A-Za-z0-9]+)$")


def _norm(name: str) -> str:
    return str(name).strip().strip('"').strip().lower()


def _axis_unit(name: str, axis: str) -> tuple[bool, str | None]:
    """(is a coordinate column of ``axis``, unit stated in its name)."""
    n = _norm(name)
    m = re.fullmatch(rf"{axis}(?:[\s_\-.]*[(\[]?\s*{_UNIT_RE}\s*[)\]]?)?", n)
    if m:
        return True, _UNIT_WORDS[m.group(1)] if m.group(1) else None
    if re.fullmatch(rf"(?:{axis}[_\s]?(?:coord|pos|position)|(?:pos|coord|position)[_\s]?{axis})", n):
        return True, None
    return False, None


@dataclass
class ColumnMap:
    """Which column plays which role (see the module docstring).

    Parameters
    ----------
    trace
        Columns whose values together key a trace.
    x, y, z
        Coordinate columns.
    locus
        Locus index / barcode column, or the genomic start column.
    chrom, start, end
        Genomic columns (optional).
    """

    trace: tuple[str, ...]
    x: str
    y: str
    z: str
    locus: str | None = None
    chrom: str | None = None
    start: str | None = None
    end: str | None = None
    notes: list[str] = field(default_factory=list, compare=False)

    @classmethod
    def parse(cls, spec) -> ColumnMap:
        """From ``"trace=A+B,locus=start,x=..."``, a YAML file (``.yaml``/``.yml``), a dict or a map."""
        if isinstance(spec, ColumnMap):
            return spec
        if isinstance(spec, (str, Path)) and str(spec).lower().endswith((".yaml", ".yml")):
            return cls.load(spec)
        if isinstance(spec, dict):
            d = {str(k): v for k, v in spec.items()}
        else:
            d = {}
            for part in _split_spec(str(spec)):
                key, eq, value = part.partition("=")
                if not eq or not value.strip():
                    raise PointaeError(f"--columns: expected role=column, got {part.strip()!r}")
                d[key.strip().lower()] = value.strip()
        unknown = sorted(set(d) - set(ROLES))
        if unknown:
            raise PointaeError(f"--columns: unknown role(s) {', '.join(unknown)}; roles: {', '.join(ROLES)}")
        missing = [r for r in ("trace", "x", "y", "z") if not d.get(r)]
        if missing:
            raise PointaeError(f"--columns: give {', '.join(missing)} (e.g. trace=Trace_ID,x=x,y=y,z=z)")
        trace = d["trace"]
        trace = (
            tuple(trace)
            if isinstance(trace, (list, tuple))
            else tuple(t.strip() for t in str(trace).split("+"))
        )
        if not all(trace):
            raise PointaeError("--columns: empty column name in trace=")
        opt = {
            r: (str(d[r]) if d.get(r) not in (None, "") else None) for r in ("locus", "chrom", "start", "end")
        }
        return cls(trace=trace, x=str(d["x"]), y=str(d["y"]), z=str(d["z"]), **opt)

    def to_dict(self) -> dict:
        """``{role: column}`` (``trace`` as a list), the YAML written by :meth:`save`."""
        d = {"trace": list(self.trace), "x": self.x, "y": self.y, "z": self.z}
        d.update({r: getattr(self, r) for r in ("locus", "chrom", "start", "end") if getattr(self, r)})
        return d

    def spec(self) -> str:
        """The mapping as a ``--columns`` string."""
        d = self.to_dict()
        d["trace"] = "+".join(d["trace"])
        return ",".join(f"{k}={v}" for k, v in d.items())

    def save(self, path) -> None:
        """Write the mapping as YAML (atomically), reusable with ``--columns PATH``."""
        import yaml

        with atomic_path(path) as tmp:
            tmp.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True))

    @classmethod
    def load(cls, path) -> ColumnMap:
        """Read a mapping saved by :meth:`save`."""
        import yaml

        p = Path(path)
        if not p.is_file():
            raise InputError(p, "no such mapping file")
        try:
            d = yaml.safe_load(p.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise InputError(p, f"not a YAML column mapping ({str(e).splitlines()[0]})") from None
        if not isinstance(d, dict):
            raise InputError(p, "a column mapping is a YAML mapping role: column")
        try:
            return cls.parse(d)
        except InputError:
            raise
        except PointaeError as e:
            raise InputError(p, str(e).removeprefix("--columns: ")) from None

    def columns(self) -> list[str]:
        """Every column the mapping names."""
        cols = [*self.trace, self.x, self.y, self.z, self.locus, self.chrom, self.start, self.end]
        return list(dict.fromkeys(c for c in cols if c))


def _split_spec(spec: str) -> list[str]:
    """Split ``a=b,c=d`` on commas that start a new ``role=``."""
    parts: list[str] = []
    for piece in spec.split(","):
        if parts and not re.match(r"^\s*[A-Za-z_]+\s*=", piece):
            parts[-1] += "," + piece  # a comma inside a column name
        else:
            parts.append(piece)
    return [p for p in parts if p.strip()]


class AmbiguousLayout(InputError):
    """Two columns fit one role: the user must say which (``--columns``)."""


def detect_columns(names: list[str], path=None) -> ColumnMap | None:
    """Guess a :class:`ColumnMap` from column names, or None when no layout fits.

    Raises :class:`AmbiguousLayout` when two columns could play one role. Data-dependent
    refinements (a field-of-view column added to the trace key, uninformative genomic columns)
    happen when the table is read.
    """
    low = {}
    for n in names:
        low.setdefault(_norm(n), n)

    def one(role: str, cands: list[str]) -> str | None:
        cands = list(dict.fromkeys(cands))
        if len(cands) > 1:
            raise AmbiguousLayout(
                path if path is not None else "<header>",
                f"columns {', '.join(map(repr, cands))} could all be the {role}; "
                "say which with --columns (e.g. --columns trace=...,x=...,y=...,z=...)"
            )
        return cands[0] if cands else None

    axes = {}
    for a in "xyz":
        axes[a] = one(f"{a} coordinate", [n for n in names if _axis_unit(n, a)[0]])
    if not all(axes.values()):
        return None
    trace = None
    for tier in _TRACE_TIERS:
        trace = one("trace id", [low[k] for k in tier if k in low])
        if trace:
            break
    if trace is None:
        return None
    chrom = one("chromosome", [low[k] for k in _CHROM if k in low])
    start = one("genomic start", [low[k] for k in _START if k in low])
    end = one("genomic end", [low[k] for k in _END if k in low])
    locus = one("locus", [low[k] for k in _LOCUS if k in low])
    if locus is None and start is None:
        return None
    fov = [low[k] for k in _FOV if k in low]
    notes = [f"fov:{fov[0]}"] if len(fov) == 1 else []
    return ColumnMap(
        trace=(trace,),
        x=axes["x"],
        y=axes["y"],
        z=axes["z"],
        locus=locus,
        chrom=chrom,
        start=start,
        end=end,
        notes=notes,
    )


def looks_like(head: str) -> bool:
    """True for an ECSV file or a table whose header fits a known layout (possibly ambiguously)."""
    if head.startswith("# %ECSV"):
        return True
    names = _header_names(head)
    if not names:
        return False
    try:
        return detect_columns(names) is not None
    except AmbiguousLayout:
        return True  # ours to read: reading says which columns to choose between


def site_table_problem(head: str) -> str | None:
    """A one-line explanation when the header is a genomic site table (no coordinates)."""
    names = _header_names(head)
    low = {_norm(n) for n in names}
    has_xyz = all(any(_axis_unit(n, a)[0] for n in names) for a in "xyz")
    if has_xyz or not (low & set(_CHROM) and low & set(_START) and low & set(_END)):
        return None
    extra = [n for n in names if _norm(n) not in set(_CHROM) | set(_START) | set(_END)]
    return (
        "a genomic site table (chrom, start, end"
        + (", " + ", ".join(extra[:4]) if extra else "")
        + "), not traces: it has no x/y/z columns (e.g. CTCF sites for the loop-extrusion simulator)"
    )


def _sniff_sep(line: str) -> str:
    return "\t" if line.count("\t") > line.count(",") else ","


def _header_names(head: str) -> list[str]:
    for line in head.split("\n"):
        if line.startswith("#") or not line.strip():
            continue
        sep = _sniff_sep(line)
        return [c.strip() for c in next(csv.reader([line], delimiter=sep))]
    return []


# ----------------------------------------------------------------------------- ECSV header
def _ecsv_header(path, header: list[str]) -> tuple[list[dict], dict, str]:
    """``(datatype list, meta dict, delimiter)`` from the ``#`` lines of an ECSV file."""
    import yaml

    body = [h[2:] if h.startswith("# ") else h[1:] for h in header[1:]]
    if body and body[0].strip() == "---":
        body = body[1:]
    try:
        d = yaml.safe_load("\n".join(body)) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 3 if mark is not None else None
        raise InputError(
            path, f"ECSV header is not valid YAML ({' '.join(str(getattr(e, 'problem', e)).split())})", line=line
        ) from None
    if not isinstance(d, dict) or not isinstance(d.get("datatype"), list):
        raise InputError(path, "ECSV header has no 'datatype' list", line=2)
    dts = d["datatype"]
    if not all(isinstance(c, dict) and "name" in c for c in dts):
        raise InputError(path, "ECSV 'datatype' entries need a name", line=2)
    meta = d.get("meta") or {}
    if isinstance(meta, list):  # !!omap -> list of pairs
        meta = {k: v for k, v in (p if isinstance(p, tuple) else (None, None) for p in meta) if k}
    if not isinstance(meta, dict):
        meta = {}
    delim = d.get("delimiter", " ")
    if delim not in (" ", ","):
        raise InputError(path, f"ECSV delimiter {delim!r} is not supported (space or comma)", line=2)
    return dts, meta, delim


def _ecsv_meta_kv(meta: dict) -> dict[str, str]:
    """``key=value`` pairs from ECSV meta (``comments: [xyz_unit=micron, ...]`` and plain keys)."""
    out: dict[str, str] = {}
    comments = meta.get("comments") or []
    if isinstance(comments, str):
        comments = [comments]
    for c in comments if isinstance(comments, list) else []:
        k, eq, v = str(c).partition("=")
        if eq:
            out[k.strip().lower()] = v.strip()
    for k, v in meta.items():
        if isinstance(v, (str, int, float)):
            out.setdefault(str(k).lower(), str(v))
    return out


# ----------------------------------------------------------------------------- reader
def read_table(
    path,
    columns=None,
    unit: str | None = None,
    pixel_size: float | None = None,
    duplicates: str = "closest",
    _text: str | None = None,
    _plan: dict | None = None,
) -> Traces:
    """Read a long table (CSV, TSV or ECSV) with a column mapping, given or detected.

    Parameters
    ----------
    columns
        A :class:`ColumnMap`, a ``"trace=A+B,x=...,y=...,z=...,locus=..."`` string, a YAML path or
        None to detect the layout from the column names.
    unit
        ``nm``, ``micron`` or ``pixel`` (then ``pixel_size`` nm per pixel); default: from the column
        names, the header or meta, else guessed from the median neighbour distance (a warning).
    pixel_size
        Nanometres per pixel, for ``unit="pixel"``; the coordinates are converted to nm.
    duplicates
        Several spots for one (trace, locus): ``"error"``, ``"first"``, ``"mean"`` or
        ``"closest"`` (the spot closest to its chain neighbours; counted in
        ``attrs["duplicates"]``).

    Returns
    -------
    Traces
        ``coords (N, L, 3)``; ``meta`` has ``trace_id`` (key columns joined by ``/``), the key
        columns, ``allele`` when trace ids end in an allele suffix (``3_129``), other per-trace
        columns; ``loci`` when genomic; ``attrs`` records ``columns`` (the mapping),
        ``trace_key``, ``unit_source``, ``duplicates``, ``layout``.
    """
    path = check_input_path(path)
    if duplicates not in DUPLICATE_POLICIES:
        raise PointaeError(
            f"unknown duplicates policy {duplicates!r}; expected one of {', '.join(DUPLICATE_POLICIES)}"
        )
    enc: list[str] = []
    text = read_text(path, enc) if _text is None else _text
    header, n_header = split_header(text)
    attrs: dict = {}
    unit_hint: tuple[str, str] | None = None
    layout = "table"
    if text.startswith("# %ECSV"):
        layout = "ecsv"
        dts, meta, sep = _ecsv_header(path, header)
        kv = _ecsv_meta_kv(meta)
        if "xyz_unit" in kv or "unit" in kv:
            u = kv.get("xyz_unit", kv.get("unit"))
            unit_hint = (u, f"ECSV meta xyz_unit={u}")
        if "genome_assembly" in kv:
            attrs["genome_assembly"] = kv["genome_assembly"]
        str_cols = tuple(c["name"] for c in dts if str(c.get("datatype", "string")) == "string")
    else:
        kv = {k.lower(): v for k, (v, _) in parse_key_values(header, "#").items()}
        if "unit" in kv or "xyz_unit" in kv:
            u = kv.get("unit", kv.get("xyz_unit"))
            unit_hint = (u, f"header line #unit={u}")
        first = text.split("\n", n_header + 1)[n_header] if text.count("\n") >= n_header else ""
        sep = _sniff_sep(first)
        layout = "tsv" if sep == "\t" else "csv"
        str_cols = ()
    rest = text.split("\n", n_header + 1)
    head_line = rest[n_header] if len(rest) > n_header else ""
    if not head_line.strip():
        raise InputError(path, "no column header row after the header lines", line=n_header + 1)
    try:  # as pandas will read it, so the names match the table's columns
        names = [str(c).strip() for c in pd.read_csv(io.StringIO(head_line + "\n"), sep=sep, nrows=0).columns]
    except (ValueError, pd.errors.ParserError) as e:
        raise InputError(path, f"cannot read the column header ({' '.join(str(e).split())})", line=n_header + 1) from None
    mapped = columns is not None and _plan is None
    if _plan is not None:  # decisions taken on an earlier chunk of this file (streaming)
        cmap = ColumnMap.parse(_plan["columns"])
    elif mapped:
        cmap = ColumnMap.parse(columns)
    else:
        cmap = detect_columns(names, path)
        if cmap is None:
            raise InputError(
                path,
                "cannot tell which columns hold the trace, locus and x/y/z (header "
                f"{', '.join(names[:10])}); pass --columns trace=...,locus=...,x=...,y=...,z=...",
                line=n_header + 1,
            )
    missing = [c for c in cmap.columns() if c not in names]
    if missing:
        raise InputError(
            path,
            f"column(s) {', '.join(map(repr, missing))} named in the mapping are not in the header "
            f"({', '.join(names[:20])})",
            line=n_header + 1,
        )
    ids = [*cmap.trace, cmap.chrom] + [c for c in (cmap.locus,) if c and c not in (cmap.start,)]
    fov = next((n.split(":", 1)[1] for n in cmap.notes if n.startswith("fov:")), None)
    df, first_line = parse_table(
        path, text, skiprows=n_header, sep=sep, str_columns=tuple(c for c in (*ids, fov, *str_cols) if c)
    )
    if list(df.columns) != names:
        raise InputError(path, "the column header and the table disagree", line=n_header + 1)
    lines = first_line + df.index.to_numpy()
    used = set(cmap.columns())

    # --- trace key: the mapped/detected columns (+ a field of view when ids repeat across fields)
    key_cols = list(cmap.trace)
    tid = _strings(path, df, key_cols[0], first_line)
    if not mapped and fov and fov not in key_cols:
        # a field-of-view column is part of the key (trace ids often restart per field of view);
        # a region-of-interest column only when some trace id occurs in two regions
        f = _strings(path, df, fov, first_line)
        per = pd.DataFrame({"t": tid, "f": f}).drop_duplicates()
        if _norm(fov).startswith("fov") or per["t"].duplicated().any():
            key_cols = [fov, *key_cols]
            used.add(fov)
    parts = [_strings(path, df, c, first_line) for c in key_cols]

    # --- loci
    loci = None
    locus_label = None
    # genomic columns are the locus unless they are constant (masked) and a locus column exists
    genomic = cmap.start is not None and (
        mapped or cmap.locus is None or _informative(df, [cmap.chrom, cmap.start, cmap.end])
    )
    if genomic:
        chrom = (
            _strings(path, df, cmap.chrom, first_line) if cmap.chrom else np.full(len(df), "unknown", dtype=object)
        )
        start = numeric(path, df, cmap.start, first_line, integer=True)
        end = numeric(path, df, cmap.end, first_line, integer=True) if cmap.end else start.copy()
        bad = np.flatnonzero(end < start)
        if bad.size:
            raise InputError(path, f"{cmap.end!r} is before {cmap.start!r}", line=int(lines[bad[0]]))
        loci, codes = genomic_union(chrom, start, end)
        if not mapped and cmap.locus and cmap.locus != cmap.start:
            used.discard(cmap.locus)  # kept as a per-spot column (e.g. a barcode per locus)
        locus_label = lambda c: f"{loci.chrom[c]}:{loci.start[c]}-{loci.end[c]}"  # noqa: E731
        if not mapped and not cmap.chrom:
            loci["chrom"] = "unknown"
        key_chrom = pd.DataFrame({"t": ["/".join(p) for p in zip(*parts)] if parts else [], "c": chrom})
        multi = key_chrom.drop_duplicates()["t"].duplicated().any()
        if not mapped and cmap.chrom and cmap.chrom not in key_cols and multi:
            key_cols.append(cmap.chrom)  # one trace per chromosome (copy)
            parts.append(chrom.astype(str))
    elif cmap.locus:
        for c in (cmap.chrom, cmap.start, cmap.end):
            if c:
                used.add(c)  # masked / constant genomic columns: dropped
                attrs.setdefault("dropped_columns", []).append(c)
        if not mapped:
            cmap = ColumnMap(trace=cmap.trace, x=cmap.x, y=cmap.y, z=cmap.z, locus=cmap.locus)
        raw = df[cmap.locus]
        num = pd.to_numeric(raw, errors="coerce")
        if raw.isna().any():
            r = int(np.flatnonzero(raw.isna().to_numpy())[0])
            raise InputError(path, f"missing value in column {cmap.locus!r}", line=int(lines[r]))
        if num.notna().all():
            values = numeric(path, df, cmap.locus, first_line, integer=True)
            uniq = np.unique(values)
            codes = np.searchsorted(uniq, values)
            attrs["locus_index"] = uniq.tolist()
            locus_label = lambda c: int(uniq[c])  # noqa: E731
        else:
            labels = raw.astype(str).str.strip().to_numpy()
            uniq = np.array(sorted(set(labels), key=_natural), dtype=object)
            codes = pd.Index(uniq).get_indexer(labels)
            attrs["locus_labels"] = uniq.tolist()
            locus_label = lambda c: uniq[c]  # noqa: E731
        n_loci = len(uniq)
    else:
        raise InputError(path, "the mapping names no locus column (locus= or start=)", line=n_header + 1)
    if loci is not None:
        n_loci = len(loci)
    keys = np.array(["/".join(p) for p in zip(*parts)], dtype=object)

    # --- coordinates and unit
    xyz, text_attrs = read_coordinates(path, df, [getattr(cmap, a) for a in "xyz"], first_line, text, sep)
    attrs.update(text_attrs)
    unit_name, unit_source = _decide_unit(path, unit, unit_hint, cmap, xyz, keys, codes, n_loci)
    if unit_name == "pixel":
        if pixel_size is None or not np.isfinite(pixel_size) or pixel_size <= 0:
            raise PointaeError(f"{path}: coordinates are in pixels; give --pixel-size (nm per pixel)")
        xyz = xyz * float(pixel_size)
        attrs["pixel_size_nm"] = float(pixel_size)
        unit_name, unit_source = "nm", f"{unit_source}; pixels x {pixel_size:g} nm"
    elif pixel_size is not None:
        raise PointaeError("--pixel-size applies only to coordinates in pixels (--unit pixel)")

    # --- extra columns
    if _plan is not None:
        used.update(c for c in _plan.get("dropped_columns", []) if c in df.columns)
    drop = [c for c in df.columns if c in used or _norm(c) in _DROP or c.startswith("Unnamed: ")]
    extra = df.drop(columns=drop)
    table = LongTable(
        trace_keys=keys,
        locus_codes=np.asarray(codes, dtype=np.int64),
        n_loci=n_loci,
        xyz=xyz,
        lines=lines,
        extra=extra,
        locus_label=locus_label,
        duplicates=duplicates,
    )
    res = assemble(path, table)
    meta = res.meta
    if len(key_cols) > 1:  # the key columns themselves, per trace (a 'trace_id' one as 'trace_name')
        first_rows = pd.DataFrame({c: p for c, p in zip(key_cols, parts)}).groupby(keys, sort=False).first()
        for c in key_cols:
            name = "trace_name" if _norm(c) == "trace_id" else c
            if name not in meta.columns:
                meta[name] = first_rows.loc[meta["trace_id"], c].to_numpy()
    last = "trace_name" if _norm(cmap.trace[-1]) == "trace_id" else cmap.trace[-1]
    want = None if _plan is None else bool(_plan.get("allele"))
    allele = _allele(meta["trace_id" if len(key_cols) == 1 else last].to_numpy(), force=want)
    if allele is not None and "allele" not in meta.columns:
        meta["allele"] = allele
    attrs.update(
        {
            "source": str(path),
            "format": "table",
            "layout": layout,
            "columns": ColumnMap(
                trace=tuple(key_cols),
                x=cmap.x,
                y=cmap.y,
                z=cmap.z,
                locus=None if genomic and not mapped and cmap.locus != cmap.start else cmap.locus,
                chrom=cmap.chrom,
                start=cmap.start,
                end=cmap.end,
            ).spec(),
            "columns_source": "--columns" if mapped else "detected from the column names",
            "trace_key": key_cols,
            "unit_source": unit_source,
            "duplicates": res.duplicates,
        }
    )
    if enc and enc[0] != "utf-8":
        attrs["encoding"] = enc[0]
    return Traces(
        res.coords,
        unit=unit_name,
        meta=meta,
        loci=loci,
        attrs=attrs,
        layers=res.layers,
        coords64=res.coords64,
    )


def _strings(path, df, col, first_line) -> np.ndarray:
    return np.asarray([s.strip() for s in text_ids(path, df, col, first_line)], dtype=object)


def _natural(s: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def _informative(df: pd.DataFrame, cols) -> bool:
    """True when the genomic columns vary (masked pipelines write one constant value)."""
    present = [c for c in cols if c]
    return any(df[c].nunique(dropna=True) > 1 for c in present)


def allele_suffixes(kinds) -> bool:
    """True when trace-id suffixes look like alleles: 2 to 4 kinds, one with a letter (129/CAST)."""
    kinds = set(kinds)
    return 2 <= len(kinds) <= 4 and any(re.search(r"[A-Za-z]", str(k)) for k in kinds)


def _allele(ids: np.ndarray, force: bool | None = None) -> np.ndarray | None:
    """Allele from trace ids like ``3_129`` / ``3_CAST`` (see :func:`allele_suffixes`), else None.

    ``force`` (streaming): True/False when the decision was taken on the whole file.
    """
    if len(ids) == 0 or force is False:
        return None
    m = [_ALLELE.match(str(s)) for s in ids]
    if not all(m):
        return None
    suf = np.array([x.group(1) for x in m], dtype=object)
    return suf if force or allele_suffixes(suf) else None


def genomic_union(chrom, start, end) -> tuple[pd.DataFrame, np.ndarray]:
    """Sorted union of ``(chrom, start, end)`` (chromosomes in order of appearance) and each row's code."""
    key = pd.DataFrame({"chrom": np.asarray(chrom, dtype=object).astype(str), "start": start, "end": end})
    order = {c: i for i, c in enumerate(pd.unique(key["chrom"]))}
    loci = key.drop_duplicates().copy()
    loci["_c"] = loci["chrom"].map(order)
    loci = loci.sort_values(["_c", "start", "end"]).drop(columns="_c").reset_index(drop=True)
    codes = pd.MultiIndex.from_frame(loci).get_indexer(pd.MultiIndex.from_frame(key))
    return loci, codes.astype(np.int64)


def _decide_unit(path, unit, hint, cmap, xyz, keys, codes, n_loci) -> tuple[str, str]:
    """``(unit, how it was decided)``: --unit, the column names, the header/meta, else a guess."""
    if unit is not None:
        u = _UNIT_WORDS.get(str(unit).strip().lower(), str(unit).strip().lower())
        if u not in ("nm", "micron", "pixel"):
            raise PointaeError(f"unknown unit {unit!r} (nm, micron/um or pixel)")
        return u, "--unit"
    named = {_axis_unit(getattr(cmap, a), a)[1] for a in "xyz"} - {None}
    if len(named) == 1:
        u = named.pop()
        return u, f"column names ({cmap.x}, {cmap.y}, {cmap.z})"
    if len(named) > 1:
        raise PointaeError(
            f"{path}: the coordinate columns state different units ({cmap.x}, {cmap.y}, {cmap.z})"
        )
    if hint is not None:
        u = _UNIT_WORDS.get(hint[0].strip().lower(), hint[0].strip().lower())
        if u not in ("nm", "micron", "pixel"):
            raise InputError(
                path, f"unknown unit {hint[0]!r} in {hint[1].split(' ')[0]} (nm, micron or pixel)"
            )
        return u, hint[1]
    tcodes = pd.factorize(pd.Series(keys))[0]
    c = np.full((tcodes.max() + 1 if len(tcodes) else 0, n_loci, 3), np.nan)
    c[tcodes, codes] = xyz
    mnd = median_neighbour_distance(c)
    u = "micron" if np.isfinite(mnd) and mnd < 10 else "nm"
    how = (
        f"guessed from the median neighbour distance {mnd:.4g} ({'< 10: micron' if u == 'micron' else '>= 10: nm'})"
        if np.isfinite(mnd)
        else "no neighbour distances to judge from: assumed nm"
    )
    warnings.warn(f"{path}: no unit stated; {how}; pass --unit to set it", UserWarning, stacklevel=3)
    return u, how


__all__ = ["ColumnMap", "AmbiguousLayout", "detect_columns", "read_table", "looks_like", "genomic_union"]
