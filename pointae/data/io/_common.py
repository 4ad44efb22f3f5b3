"""Shared machinery of the text readers: path checks, CSV parsing with line numbers, and the
assembly of a long table (one row per spot) into a :class:`~pointae.data.traces.Traces`.

Every problem is reported as :class:`~pointae.errors.InputError` naming the file and the
1-based line (or the trace) and what is wrong.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pointae import registry
from pointae.errors import InputError, PointaeError

# unit spellings accepted in files -> Traces.unit
UNIT_ALIASES = {
    "nm": "nm",
    "nanometer": "nm",
    "nanometers": "nm",
    "nanometre": "nm",
    "micron": "micron",
    "microns": "micron",
    "um": "micron",
    "µm": "micron",
    "μm": "micron",
    "micrometer": "micron",
    "micrometers": "micron",
    "micrometre": "micron",
    "bead": "bead",
    "beads": "bead",
}


def parse_unit(path, value: str, line: int | None = None) -> str:
    """Map a unit spelling (``nm``, ``um``, ``micron``, ...) to a :class:`Traces` unit."""
    unit = UNIT_ALIASES.get(str(value).strip().lower())
    if unit is None:
        raise InputError(path, f"unknown unit {value!r} (expected nm, micron or bead)", line=line)
    return unit


def check_input_path(path) -> Path:
    """Return ``path`` as a :class:`Path` after checking it is an existing, non-empty file."""
    p = Path(path)
    if not p.exists():
        raise InputError(p, "no such file")
    if p.is_dir():
        raise InputError(p, "is a directory, expected a file")
    if p.stat().st_size == 0:
        raise InputError(p, "empty file")
    return p


def decode_bytes(path, data: bytes, *, partial: bool = False) -> tuple[str, str]:
    """Decode a text file: UTF-8 (BOM tolerated), else latin-1 when the bytes are text.

    Returns ``(text, encoding)``; binary content (NUL or other control bytes) is an
    :class:`InputError`. With ``partial`` a character cut at the end of ``data`` is tolerated.
    """
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError as e:
        if partial and e.start >= len(data) - 4:
            return data[: e.start].decode("utf-8-sig"), "utf-8"
        start = e.start
    if _BINARY.search(data) is not None:
        raise InputError(path, f"not a UTF-8 text file (byte {start}) nor latin-1 text (control bytes)")
    return data.decode("latin-1"), "latin-1"


_BINARY = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")


def read_text(path: Path, encoding: list | None = None) -> str:
    """Read a whole text file (UTF-8, BOM tolerated, else latin-1) with ``\\n`` line ends.

    Binary content is an :class:`InputError`. When ``encoding`` is a list, the encoding used is
    appended to it (readers record ``latin-1`` in ``attrs["encoding"]``).
    """
    text, enc = decode_bytes(path, path.read_bytes())
    if encoding is not None:
        encoding.append(enc)
    if not text.strip():
        raise InputError(path, "empty file (only whitespace)")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def split_header(text: str, prefix: str = "#") -> tuple[list[str], int]:
    """Leading lines starting with ``prefix`` and the number of such lines."""
    header: list[str] = []
    pos = 0
    while pos < len(text):
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end
        line = text[pos:end]
        if not line.startswith(prefix):
            break
        header.append(line)
        pos = end + 1
    return header, len(header)


_LINE_RE = re.compile(r"line (\d+)")


def parse_table(
    path: Path,
    text: str,
    *,
    skiprows: int,
    names: list[str] | None = None,
    str_columns: tuple[str, ...] = (),
    sep: str = ",",
) -> tuple[pd.DataFrame, int]:
    """Parse a delimited table with pandas, keeping file line numbers.

    Parameters
    ----------
    skiprows
        Lines before the table (its header row when ``names`` is None, else its first row).
    names
        Column names when the table has no header row.
    str_columns
        Columns read as text (identifiers), matched case-insensitively.

    Returns
    -------
    (DataFrame, int)
        The table (blank lines dropped; the index is the row position) and the 1-based file
        line of row position 0.
    """
    header = 0 if names is None else None
    first_line = skiprows + (2 if names is None else 1)
    lower = {c.lower() for c in str_columns}
    data = text.encode("utf-8")  # bytes: io.StringIO would hold 4 bytes per character
    try:
        cols = names
        if cols is None:
            head = pd.read_csv(io.BytesIO(data), sep=sep, skiprows=skiprows, nrows=0, encoding="utf-8")
            cols = list(head.columns)
        _check_first_row_width(path, text, first_line, len(cols), sep)
        dtype = {c: str for c in cols if str(c).lower() in lower}
        df = pd.read_csv(
            io.BytesIO(data),
            encoding="utf-8",
            sep=sep,
            skiprows=skiprows,
            header=header,
            names=names,
            dtype=dtype,
            skip_blank_lines=False,
            skipinitialspace=True,
            low_memory=False,
            float_precision="round_trip",  # the float64 nearest to the text, as Python parses it
            index_col=False,
        )
    except pd.errors.EmptyDataError:
        raise InputError(path, "no table found (file has only header lines?)", line=skiprows + 1) from None
    except pd.errors.ParserError as e:
        msg = str(e).strip().splitlines()[-1]
        m = _LINE_RE.search(msg)
        line = int(m.group(1)) if m else None
        problem = msg.split("C error: ")[-1]
        if line is not None:
            problem = _LINE_RE.sub("this line", problem)
        raise InputError(path, f"malformed table: {problem}", line=line) from None
    except ValueError as e:  # e.g. duplicated names given to pandas
        raise InputError(path, f"malformed table: {' '.join(str(e).split())}", line=first_line - 1) from None
    df.columns = [str(c).strip() for c in df.columns]
    if df.columns.duplicated().any():
        dup = df.columns[df.columns.duplicated()][0]
        raise InputError(path, f"column {dup!r} appears twice in the header", line=first_line - 1)
    df = df.dropna(how="all")
    if df.empty:
        raise InputError(path, "the table has a header but no rows", line=first_line - 1)
    return df, first_line


def _check_first_row_width(path, text: str, first_line: int, n_cols: int, sep: str) -> None:
    """pandas silently shifts or drops data when *every* row has more fields than the header."""
    lines = text.split("\n", first_line + 200)
    for ln in range(first_line, min(len(lines), first_line + 200) + 1):
        raw = lines[ln - 1] if ln - 1 < len(lines) else ""
        if raw.strip():
            k = len(next(csv.reader([raw], delimiter=sep)))
            if k > n_cols:
                raise InputError(
                    path, f"this row has {k} fields but the header names {n_cols} columns", line=ln
                )
            return


def find_columns(path, df: pd.DataFrame, required: dict[str, str], line: int | None) -> dict[str, str]:
    """Map canonical lower-case names to the table's actual column names (case-insensitive).

    ``required`` maps a canonical name to how it is shown in messages. Raises when any is absent.
    """
    lookup = {c.lower(): c for c in df.columns}
    missing = [shown for key, shown in required.items() if key not in lookup]
    if missing:
        raise InputError(
            path,
            f"missing column(s) {', '.join(missing)}; found {', '.join(map(str, df.columns))}",
            line=line,
        )
    return {key: lookup[key] for key in required}


def check_short_rows(
    path, df: pd.DataFrame, text: str, first_line: int, sep: str = ",", min_fields: int | None = None
) -> None:
    """Raise for rows with fewer fields than the header (a truncated or cut line).

    pandas pads short rows with NaN; rows whose last field is NaN are checked against the raw text.
    With ``min_fields`` a row needs only that many fields (trailing optional columns may be absent
    and read as missing values).
    """
    last = df.columns[-1]
    cand = df.index[df[last].isna().to_numpy()]
    if len(cand) == 0:
        return
    lines = text.split("\n")
    n_fields = len(df.columns) if min_fields is None else min_fields
    for r in cand:
        ln = first_line + int(r)
        raw = lines[ln - 1] if ln - 1 < len(lines) else ""
        k = raw.count(sep) + 1
        if k < n_fields:
            what = "the file is truncated" if ln >= len(lines) - 1 else "a line is cut short"
            raise InputError(path, f"expected {n_fields} fields, found {k} ({what}?)", line=ln)


def numeric(path, df: pd.DataFrame, col: str, first_line: int, integer: bool = False) -> np.ndarray:
    """Column as float64 (or int64 with ``integer``); non-numeric text is an :class:`InputError`."""
    s = df[col]
    if not pd.api.types.is_numeric_dtype(s):
        try:  # Python's float(): the float64 nearest to the text (pd.to_numeric may be off by an ulp)
            v = s.astype(object).where(s.notna(), np.nan).to_numpy().astype(np.float64)
        except (ValueError, TypeError):
            v = None
        if v is not None:
            s = pd.Series(v, index=s.index)
    if not pd.api.types.is_numeric_dtype(s):
        conv = pd.to_numeric(s, errors="coerce")
        bad = conv.isna() & s.notna()
        if bad.any():
            r = bad.to_numpy().nonzero()[0][0]
            raise InputError(
                path,
                f"non-numeric value {s.iloc[r]!r} in column {col!r}",
                line=first_line + int(s.index[r]),
            )
        s = conv
    v = s.to_numpy(dtype=np.float64, na_value=np.nan)
    if integer:
        bad = ~np.isfinite(v) | (v != np.round(v))
        if bad.any():
            r = bad.nonzero()[0][0]
            what = "missing" if np.isnan(v[r]) else f"non-integer value {s.iloc[r]!r}"
            raise InputError(path, f"{what} in column {col!r}", line=first_line + int(s.index[r]))
        return v.astype(np.int64)
    return v


def text_ids(path, df: pd.DataFrame, col: str, first_line: int) -> np.ndarray:
    """Identifier column as stripped strings; empty values are an :class:`InputError`."""
    s = df[col]
    bad = s.isna().to_numpy()
    if bad.any():
        r = bad.nonzero()[0][0]
        raise InputError(path, f"missing value in column {col!r}", line=first_line + int(s.index[r]))
    return s.astype(str).to_numpy()


@dataclass
class LongTable:
    """A long table, one row per spot, ready to be assembled into Traces.

    Attributes
    ----------
    trace_keys
        ``(M,)`` trace identifier per row (str).
    locus_codes
        ``(M,)`` int locus index in ``[0, n_loci)`` per row.
    n_loci
        Number of loci ``L``.
    xyz
        ``(M, 3)`` float64 x, y, z per row (NaN = missing spot).
    lines
        ``(M,)`` 1-based file line of each row.
    extra
        Extra columns (per-trace ones go to ``meta``, per-spot ones to ``layers``).
    layer_hint
        Extra columns that are per-spot even when constant within every trace.
    rename
        Extra column -> name in ``meta``/``layers``.
    locus_label
        Locus index -> text for messages.
    duplicates
        Policy for several rows of one (trace, locus): ``"error"``, ``"first"``, ``"mean"`` or
        ``"closest"`` (the spot closest to its chain neighbours); see :func:`resolve_duplicates`.
    """

    trace_keys: np.ndarray
    locus_codes: np.ndarray
    n_loci: int
    xyz: np.ndarray
    lines: np.ndarray
    extra: pd.DataFrame
    layer_hint: set[str] = field(default_factory=set)
    rename: dict[str, str] = field(default_factory=dict)
    locus_label: object = None
    duplicates: str = "error"


DUPLICATE_POLICIES = registry.duplicates.where()  # live view of pointae.registry.duplicates


def resolve_duplicates(path, table: LongTable, tcodes: np.ndarray, flat: np.ndarray, locus_name: str):
    """Apply ``table.duplicates`` to rows sharing one (trace, locus).

    Parameters
    ----------
    tcodes, flat
        ``(M,)`` trace code and ``trace * L + locus`` of every row.

    Returns
    -------
    (keep, xyz, stats)
        Row indices kept (one per (trace, locus)), their ``(K, 3)`` float64 coordinates
        (``mean`` averages the group) and ``{"policy", "spots", "rows_dropped"}`` (``spots``:
        (trace, locus) pairs that had more than one row).
    """
    order = np.argsort(flat, kind="stable")
    fs = flat[order]
    starts = np.r_[0, np.flatnonzero(fs[1:] != fs[:-1]) + 1]
    sizes = np.diff(np.r_[starts, len(fs)])
    policy = table.duplicates
    stats = {"policy": policy, "spots": int((sizes > 1).sum()), "rows_dropped": int(len(fs) - len(starts))}
    keep = order[starts]  # first row (in file order) of each group
    xyz = table.xyz[keep].copy()
    if stats["spots"] == 0:
        return keep, xyz, stats
    if policy not in DUPLICATE_POLICIES:
        raise PointaeError(
            f"unknown duplicates policy {policy!r}; expected one of {', '.join(DUPLICATE_POLICIES)}"
        )
    if policy == "error":
        g = np.flatnonzero(sizes > 1)
        rows = [order[starts[i] : starts[i] + sizes[i]] for i in g]
        r = min(rows, key=lambda rr: table.lines[rr[1]])
        label = table.locus_label(table.locus_codes[r[1]]) if table.locus_label else table.locus_codes[r[1]]
        raise InputError(
            path,
            f"duplicated row for {locus_name} {label} (also on line {table.lines[r[0]]}); "
            "choose a policy with --duplicates first|mean|closest",
            line=int(table.lines[r[1]]),
            trace=table.trace_keys[r[1]],
        )
    if policy == "first":
        return keep, xyz, stats
    dup_groups = np.flatnonzero(sizes > 1)
    if policy == "mean":
        for i in dup_groups:
            rows = order[starts[i] : starts[i] + sizes[i]]
            with np.errstate(invalid="ignore"):
                xyz[i] = (
                    np.nanmean(table.xyz[rows], axis=0)
                    if np.isfinite(table.xyz[rows]).all(1).any()
                    else np.nan
                )
        return keep, xyz, stats
    # closest: the candidate nearest to the mean of the unique observed spots next to it
    n_loci = table.n_loci
    uniq = sizes == 1
    ref_flat = fs[starts]  # (K,) trace * L + locus of each group
    single = dict(zip(ref_flat[uniq].tolist(), np.flatnonzero(uniq).tolist()))
    for i in dup_groups:
        rows = order[starts[i] : starts[i] + sizes[i]]
        cand = table.xyz[rows]  # (k, 3)
        ok = np.isfinite(cand).all(1)
        if ok.sum() <= 1:
            xyz[i] = cand[ok][0] if ok.any() else np.nan
            keep[i] = rows[np.argmax(ok)] if ok.any() else rows[0]
            continue
        f = int(ref_flat[i])
        t0, loc = divmod(f, n_loci)
        nb = []
        for step in (-1, 1):  # nearest observed unique spot on each side
            j = loc + step
            while 0 <= j < n_loci:
                k = single.get(t0 * n_loci + j)
                if k is not None and np.isfinite(xyz[k]).all():
                    nb.append(xyz[k])
                    break
                j += step
        if not nb:
            continue  # no neighbour to compare with: the first row
        d = np.linalg.norm(cand[ok] - np.mean(nb, axis=0), axis=1)
        best = np.flatnonzero(ok)[int(np.argmin(d))]
        keep[i] = rows[best]
        xyz[i] = cand[best]
    return keep, xyz, stats


def more_precise_than_float32(xyz: np.ndarray) -> bool:
    """True when some finite float64 value does not survive a round trip through float32."""
    fin = np.isfinite(xyz)
    return bool(np.any(xyz[fin].astype(np.float32).astype(np.float64) != xyz[fin]))


def _constant_within(codes_sorted_trace: np.ndarray, values: pd.Series, order: np.ndarray) -> bool:
    vcodes, _ = pd.factorize(values, use_na_sentinel=True)
    v = vcodes[order]
    same_trace = codes_sorted_trace[1:] == codes_sorted_trace[:-1]
    return bool(np.all(v[1:][same_trace] == v[:-1][same_trace]))


def assemble(path, table: LongTable, *, complete: bool = False, locus_name: str = "locus"):
    """Build ``coords (N, L, 3)``, ``meta`` and ``layers`` from a :class:`LongTable`.

    Traces keep their order of first appearance. Duplicated (trace, locus) rows follow
    ``table.duplicates`` (:func:`resolve_duplicates`); with ``complete`` every trace must list
    every locus (the Bintu layout), otherwise absent rows are missing spots.

    Returns
    -------
    AssembledTable
        ``coords`` float32 ``(N, L, 3)``, ``meta`` (``trace_id`` first), ``layers`` (``(N, L)``
        arrays), ``coords64`` (float64 values as read when they are more precise than float32,
        else None) and ``duplicates`` (counts); unpacks as ``coords, meta, layers``.
    """
    n_loci = table.n_loci
    tcodes, tuniq = pd.factorize(pd.Series(table.trace_keys), sort=False)
    n = len(tuniq)
    flat = tcodes.astype(np.int64) * n_loci + table.locus_codes
    keep, xyz, dup_stats = resolve_duplicates(path, table, tcodes, flat, locus_name)
    if dup_stats["rows_dropped"]:
        order = np.sort(keep)  # kept rows in file order
        xyz = xyz[np.argsort(keep)]
        table = LongTable(
            trace_keys=table.trace_keys[order],
            locus_codes=table.locus_codes[order],
            n_loci=n_loci,
            xyz=xyz,
            lines=table.lines[order],
            extra=table.extra.iloc[order],
            layer_hint=table.layer_hint,
            rename=table.rename,
            locus_label=table.locus_label,
        )
        tcodes, flat = tcodes[order], flat[order]
    if complete:
        counts = np.bincount(tcodes, minlength=n)
        bad = np.flatnonzero(counts != n_loci)
        if bad.size:
            i = bad[0]
            raise InputError(
                path,
                f"inconsistent locus sets: this trace has {counts[i]} {locus_name}s, others have "
                f"{n_loci} (truncated file or mixed datasets?)",
                trace=tuniq[i],
            )
    coords = np.full((n * n_loci, 3), np.nan, np.float32)
    coords[flat] = table.xyz.astype(np.float32)
    coords = coords.reshape(n, n_loci, 3)
    coords64 = None
    if more_precise_than_float32(table.xyz):
        coords64 = np.full((n * n_loci, 3), np.nan)
        coords64[flat] = table.xyz
        coords64 = coords64.reshape(n, n_loci, 3)

    meta = pd.DataFrame({"trace_id": np.asarray(tuniq, dtype=object).astype(str)})
    layers: dict[str, np.ndarray] = {}
    torder = np.argsort(tcodes, kind="stable")
    ts = tcodes[torder]
    first_row = torder[np.r_[0, np.flatnonzero(ts[1:] != ts[:-1]) + 1]] if len(ts) else torder
    for col in table.extra.columns:
        name = table.rename.get(col, col)
        vals = table.extra[col].reset_index(drop=True)
        per_trace = col not in table.layer_hint and _constant_within(ts, vals, torder)
        if per_trace:
            meta[name] = vals.iloc[first_row].to_numpy()
            continue
        if pd.api.types.is_numeric_dtype(vals) or pd.api.types.is_bool_dtype(vals):
            v = vals.to_numpy()
            if len(vals) == n * n_loci and not np.issubdtype(v.dtype, np.floating):
                layer = np.empty(n * n_loci, dtype=v.dtype)
            else:
                v = v.astype(np.float64)
                layer = np.full(n * n_loci, np.nan)
        else:
            v = vals.fillna("").astype(str).to_numpy().astype(str)
            layer = np.full(n * n_loci, "", dtype=v.dtype if v.size else "<U1")
        layer[flat] = v
        layers[name] = layer.reshape(n, n_loci)
    return AssembledTable(coords, meta, layers, coords64, dup_stats)


@dataclass
class AssembledTable:
    """What :func:`assemble` returns (unpacks as ``coords, meta, layers``)."""

    coords: np.ndarray
    meta: pd.DataFrame
    layers: dict
    coords64: np.ndarray | None
    duplicates: dict

    def __iter__(self):
        return iter((self.coords, self.meta, self.layers))


def parse_key_values(lines: list[str], prefix: str) -> dict[str, tuple[str, int]]:
    """``{key: (value, line)}`` from header lines ``<prefix>key=value`` (1-based lines)."""
    out: dict[str, tuple[str, int]] = {}
    for i, line in enumerate(lines, start=1):
        if line.startswith(prefix) and "=" in line:
            key, _, value = line[len(prefix) :].partition("=")
            out[key.strip()] = (value.strip(), i)
    return out


def parse_name_list(value: str) -> list[str]:
    """``"(a, b, c)"`` -> ``["a", "b", "c"]``."""
    v = value.strip()
    if v.startswith("(") and v.endswith(")"):
        v = v[1:-1]
    return [c.strip() for c in v.split(",") if c.strip()]


def format_coords(values: np.ndarray) -> pd.Series | np.ndarray:
    """Values to write: integers when every finite value is integral, else float32 (pandas writes
    the shortest repr that reads back to the same float32)."""
    v = np.asarray(values, dtype=np.float32)
    fin = np.isfinite(v)
    if fin.all() and np.all(v == np.round(v)) and np.all(np.abs(v) < 2**31):
        return v.astype(np.int64)
    if np.all(v[fin] == np.round(v[fin])) and np.all(np.abs(v[fin]) < 2**31):
        out = pd.array(np.where(fin, v, 0).astype(np.int64), dtype="Int64")
        out[~fin] = pd.NA
        return out
    return v


def read_coordinates(
    path, df: pd.DataFrame, cols: list[str], first_line: int, text: str, sep: str = ","
) -> tuple[np.ndarray, dict]:
    """``(M, 3)`` float64 coordinates exactly as written, and attrs about their text.

    Returns ``{"integral_text": ".0"}`` when the first rows write integral coordinates with a
    decimal point (``8.0``), so writers write them back that way (:func:`coord_text`); else ``{}``.
    """
    xyz = np.stack([numeric(path, df, c, first_line) for c in cols], axis=1)
    idx = [list(df.columns).index(c) for c in cols]
    sample = text.split("\n", first_line + 2000)[first_line - 1 : first_line + 1999]
    for row in csv.reader(sample, delimiter=sep, skipinitialspace=True):
        if sep == " ":
            row = [f for f in row if f != ""]
        for k in idx:
            if k < len(row) and "." in row[k]:
                try:
                    v = float(row[k])
                except ValueError:
                    continue
                if v == int(v) if np.isfinite(v) else False:
                    return xyz, {"integral_text": ".0"}
    return xyz, {}


def coord_text(traces, na_rep: str = "nan", rows: np.ndarray | None = None) -> list[np.ndarray]:
    """x, y, z of every spot as text, observed values with the digits they were read with.

    Values from ``traces.coords64`` (still agreeing with ``coords``) are written as the shortest
    float64 text, other values as the shortest float32 text, integral values without decimals
    (``8``), or as ``8.0`` when ``attrs["integral_text"] == ".0"`` (the file read wrote them so).

    Parameters
    ----------
    rows
        Optional bool ``(N * L,)``: only these spots (in trace-major order).

    Returns
    -------
    list of three ``(M,)`` str arrays (``M`` = N * L, or the selected spots).
    """
    c32 = traces.coords.reshape(-1, 3)
    exact = None if traces.coords64 is None else traces.coords64.reshape(-1, 3)
    if rows is not None:
        c32 = c32[rows]
        exact = None if exact is None else exact[rows]
    dot = traces.attrs.get("integral_text") == ".0"
    out = []
    for a in range(3):
        v32 = c32[:, a]
        v = v32.astype(np.float64)
        s = v32.astype(str).astype(object)
        if exact is not None:
            same = exact[:, a].astype(np.float32) == v32
            v[same] = exact[same, a]
            s[same] = exact[same, a].astype(str)
        fin = np.isfinite(v)
        integral = fin & (v == np.round(v)) & (np.abs(v) < 1e15) & ~((v == 0) & np.signbit(v))
        ints = v[integral].astype(np.int64).astype(str)
        s[integral] = np.char.add(ints, ".0") if dot else ints
        s[~fin] = na_rep
        out.append(s)
    return out


def jsonable(obj):
    """Recursively convert numpy scalars/arrays so ``json.dumps`` accepts them."""
    try:
        return json.loads(json.dumps(obj, default=_default))
    except (TypeError, ValueError) as e:
        raise PointaeError(f"attrs are not JSON-serialisable: {e}") from None


def _default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON-serialisable")
