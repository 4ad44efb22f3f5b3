"""Streaming text readers: a long table read in chunks of whole traces, memory bounded by the chunk.

:func:`iter_text` is what :func:`pointae.data.io.iter_traces` uses for the text formats:

1. The header (everything before the first data row) is read once and a *probe* (the header and
   the first rows) is parsed with the format's reader, which settles the column mapping, the
   unit and the trace key for the whole file.
2. One pass collects the locus set (the union over all rows: only the locus columns, in chunks).
3. A second pass reads the data rows; a chunk ends at a change of the trace key once it holds
   ``chunk_size`` traces, so a trace is never split. Each chunk is parsed by the same reader
   (the header text prepended, line numbers kept) and aligned onto the file's locus set.

A trace's rows must be contiguous (every known layout writes them so); a trace that reappears
after its chunk was yielded is an :class:`~pointae.errors.InputError` naming it and the line.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from pointae.data.io._common import check_input_path, decode_bytes, split_header
from pointae.data.traces import Traces
from pointae.errors import InputError, PointaeError

PROBE_LINES = 5000
BLOCK = 1 << 20


def _encoding(path: Path) -> str:
    """``utf-8-sig`` when the whole file decodes as UTF-8, else ``latin-1`` (checked in blocks)."""
    import codecs

    dec = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as fh:
        try:
            while block := fh.read(BLOCK):
                dec.decode(block)
            dec.decode(b"", final=True)
            return "utf-8-sig"
        except UnicodeDecodeError:
            fh.seek(0)
            decode_bytes(path, fh.read(BLOCK))  # binary content: the usual one-line error
            return "latin-1"


def _lines(path: Path, encoding: str) -> Iterator[str]:
    with open(path, encoding=encoding, newline=None) as fh:  # CRLF, CR, LF alike
        for line in fh:
            yield line.rstrip("\n")


def _header_count(fmt: str, head: str) -> int:
    """Lines before the first data row."""
    lines = head.split("\n")
    if fmt == "bintu":
        from pointae.data.io.bintu import HEADER_START

        first = lines[0].strip().lower().replace(", ", ",")
        return 1 if first.startswith(HEADER_START) else 2
    _, n = split_header(head)
    if fmt == "fofct":
        has_columns = any(h.lower().startswith("##columns=") for h in lines[:n])
        if not has_columns:
            return n + 1
        nxt = lines[n] if n < len(lines) else ""
        return n + 1 if "trace_id" in nxt.lower() else n  # a repeated header row
    return n + 1  # csv, table: the column header row


def _reader(fmt: str):
    from pointae.data.io import bintu, fofct, longcsv, table

    return {
        "bintu": bintu.read_bintu,
        "fofct": fofct.read_fofct,
        "csv": longcsv.read_long_csv,
        "table": table.read_table,
    }[fmt]


def iter_text(path, fmt: str, chunk_size: int, **kw) -> Iterator[Traces]:
    """Yield :class:`Traces` of at most ``chunk_size`` whole traces from a text trace file.

    ``kw`` are the reader options of ``fmt``. Every chunk has the file's full locus set, the
    same unit, meta columns and attrs (those of the first chunk).
    """
    p = check_input_path(path)
    enc = _encoding(p)
    read = _reader(fmt)
    # header and probe
    head_lines: list[str] = []
    for i, line in enumerate(_lines(p, enc)):
        head_lines.append(line)
        if i >= PROBE_LINES + 200:
            break
    n_head = _header_count(fmt, "\n".join(head_lines))
    header = "\n".join(head_lines[:n_head]) + "\n"
    probe_lines = head_lines
    if fmt == "bintu" and len(head_lines) > PROBE_LINES:  # whole traces only (every trace is complete)
        names = [c.strip().lower() for c in _split(head_lines[n_head - 1], ",")]
        k = names.index("chromosome index") if "chromosome index" in names else 0
        last = _key(head_lines[-1], ",", [k])
        cut = len(head_lines)
        while cut > n_head + 1 and _key(head_lines[cut - 1], ",", [k]) == last:
            cut -= 1
        probe_lines = head_lines[:cut] if cut > n_head + 1 else head_lines
    probe_text = "\n".join(probe_lines) + "\n"
    probe = read(p, _text=probe_text, **kw)
    opts = dict(kw)
    plan = None
    if fmt == "table":
        plan = {
            "columns": probe.attrs["columns"],
            "dropped_columns": probe.attrs.get("dropped_columns", []),
        }
        opts.pop("columns", None)
        if kw.get("unit") is None and "guessed" in str(probe.attrs.get("unit_source", "")):
            opts["unit"] = probe.unit  # guessed once, on the probe: the same for every chunk
    if fmt == "bintu":
        opts["_labels"] = list(probe.attrs.get("bintu_label_columns", []))
    first_attrs = dict(probe.attrs)
    body = [h for h in head_lines[n_head:] if h.strip()]
    first_data = body[0] if body else ""
    sep, key_idx, locus_spec = _layout(fmt, probe, header, first_data)
    suffix_col = key_idx[-1] if fmt == "table" else None
    loci_all, suffixes = _locus_union(p, enc, n_head, sep, locus_spec, suffix_col)
    if plan is not None:
        from pointae.data.io.table import allele_suffixes

        plan["allele"] = allele_suffixes(suffixes)
    seen: set[int] = set()
    block: list[str] = []
    block_start = n_head + 1
    n_traces = 0
    last_key = None
    line_no = n_head
    for line in _skip(_lines(p, enc), n_head):
        line_no += 1
        if not line.strip():
            if block:
                block.append(line)
            else:
                block_start = line_no + 1
            continue
        key = _key(line, sep, key_idx)
        if key != last_key:
            if n_traces >= chunk_size and block:
                yield _chunk(p, read, header, block, block_start, n_head, opts, plan, loci_all, first_attrs, seen)
                block, block_start, n_traces = [], line_no, 0
            n_traces += 1
            last_key = key
        block.append(line)
    if block and any(b.strip() for b in block):
        yield _chunk(p, read, header, block, block_start, n_head, opts, plan, loci_all, first_attrs, seen)


def _skip(it, n):
    for i, x in enumerate(it):
        if i >= n:
            yield x


def _split(line: str, sep: str) -> list[str]:
    if '"' not in line:
        return line.split() if sep == " " else line.split(sep)
    row = next(csv.reader([line], delimiter=sep, skipinitialspace=True))
    return [f for f in row if f != ""] if sep == " " else row


def _key(line: str, sep: str, idx: list[int]) -> tuple:
    f = _split(line, sep)
    return tuple(f[i].strip() if i < len(f) else None for i in idx)


def _layout(fmt: str, probe: Traces, header: str, first_data: str):
    """(separator, key column positions, locus columns spec) from the probe and the header."""
    from pointae.data.io._common import parse_key_values, parse_name_list

    hlines = header.rstrip("\n").split("\n")
    if fmt == "fofct":
        kv = {k.lower(): v for k, (v, _) in parse_key_values(hlines, "##").items()}
        sep = "\t" if "\t" in first_data and "," not in first_data else ","
        if "columns" in kv:
            names = parse_name_list(kv["columns"])
        else:
            names = [c.strip() for c in hlines[-1].split(sep)]
        low = [n.lower() for n in names]
        locus = [low.index(c) for c in ("chrom", "chrom_start", "chrom_end")]
        return sep, [low.index("trace_id")], {"cols": locus, "kind": "genomic"}
    if fmt == "table" and probe.attrs.get("layout") == "ecsv":
        sep = " "
    elif fmt == "table":
        sep = "\t" if probe.attrs.get("layout") == "tsv" else ","
    else:
        sep = ","
    names = [c.strip() for c in _split(hlines[-1], sep)]
    low = [n.lower() for n in names]
    if fmt == "bintu":
        return sep, [low.index("chromosome index")], {"cols": [low.index("segment index")], "kind": "index"}
    if fmt == "csv":
        if "chrom" in low and probe.loci is not None:
            return sep, [low.index("trace_id")], {"cols": [low.index(c) for c in ("chrom", "start", "end")], "kind": "csv_genomic"}
        return sep, [low.index("trace_id")], {"cols": [low.index("locus")], "kind": "index"}
    from pointae.data.io.table import ColumnMap

    cmap = ColumnMap.parse(probe.attrs["columns"])
    key = [names.index(c) for c in cmap.trace]
    if cmap.start is not None:
        cols = [names.index(c) if c else None for c in (cmap.chrom, cmap.start, cmap.end)]
        return sep, key, {"cols": cols, "kind": "table_genomic"}
    kind = "labels" if "locus_labels" in probe.attrs else "index"
    return sep, key, {"cols": [names.index(cmap.locus)], "kind": kind}


def _locus_union(p: Path, enc: str, n_head: int, sep, spec: dict, suffix_col: int | None):
    """The file's locus set (a loci DataFrame when genomic, else a sorted array of locus values)
    and the set of trace-id suffixes ``_xxx`` of column ``suffix_col`` (allele detection)."""
    cols = [c for c in spec["cols"] if c is not None]
    read_cols = cols + ([suffix_col] if suffix_col is not None and suffix_col not in cols else [])
    suffixes: set = set()
    parts = []
    reader = pd.read_csv(
        p,
        sep=r"\s+" if sep == " " else sep,
        skiprows=n_head,
        header=None,
        usecols=read_cols,
        dtype=str,
        chunksize=1_000_000,
        encoding=enc,
        skip_blank_lines=True,
        skipinitialspace=True,
        engine="python" if sep == " " else "c",
        comment=None,
    )
    try:
        for chunk in reader:
            if suffix_col is not None:
                suf = chunk[suffix_col].astype(str).str.strip().str.extract(r"^\d+_([A-Za-z0-9]+)$")[0]
                suffixes.update(suf.dropna().unique().tolist() if suf.notna().all() else [None, "", "x", "y", "z"])
            chunk = chunk[cols].dropna(how="any").drop_duplicates()
            parts.append(chunk)
    except (pd.errors.ParserError, ValueError) as e:
        raise InputError(p, f"malformed table: {' '.join(str(e).split())[:200]}") from None
    allv = pd.concat(parts).drop_duplicates() if parts else pd.DataFrame(columns=cols)
    kind = spec["kind"]
    if kind in ("genomic", "csv_genomic", "table_genomic"):
        from pointae.data.io.table import genomic_union

        c, s, e = spec["cols"]
        chrom = allv[c].astype(str).str.strip().to_numpy() if c is not None else np.full(len(allv), "unknown")
        start = pd.to_numeric(allv[s], errors="coerce")
        end = pd.to_numeric(allv[e], errors="coerce") if e is not None else start
        ok = start.notna() & end.notna()
        loci, _ = genomic_union(chrom[ok.to_numpy()], start[ok].astype(np.int64), end[ok].astype(np.int64))
        return loci.drop_duplicates().reset_index(drop=True), suffixes
    v = allv[cols[0]].astype(str).str.strip()
    if kind == "labels":
        from pointae.data.io.table import _natural

        return np.array(sorted(set(v), key=_natural), dtype=object), suffixes
    num = pd.to_numeric(v, errors="coerce").dropna()
    return np.unique(num.to_numpy(np.float64)).astype(np.int64), suffixes


def _chunk(p, read, header, block, block_start, n_head, opts, plan, loci_all, first_attrs, seen) -> Traces:
    text = header + "\n".join(block) + "\n"
    kw = dict(opts)
    if plan is not None:
        kw["_plan"] = plan
    try:
        t = read(p, _text=text, **kw)
    except InputError as e:
        line = e.line
        if line is not None and line > n_head:
            line = line - n_head - 1 + block_start
        raise InputError(p, e.problem, line=line, trace=e.trace) from None
    t = _align(p, t, loci_all)
    h = pd.util.hash_array(t.meta["trace_id"].to_numpy(dtype=object))
    again = [i for i, x in enumerate(h.tolist()) if x in seen]
    if again:
        raise InputError(
            p,
            "this trace's rows are not together in the file (it appears again after other traces); "
            "streaming needs each trace's rows contiguous: read the file whole (read_traces)",
            line=block_start,
            trace=t.trace_ids[again[0]],
        )
    seen.update(h.tolist())
    keys = ("duplicates", "locus_index", "locus_labels", "segment_index")
    attrs = {k: v for k, v in first_attrs.items() if k not in keys}
    attrs.update({k: t.attrs[k] for k in keys if k in t.attrs})
    return t._replace(attrs=attrs)


def _align(p, t: Traces, loci_all) -> Traces:
    """``t`` re-indexed onto the file's locus set (missing where the chunk lacks a locus)."""
    if isinstance(loci_all, pd.DataFrame):
        if t.loci is None:
            raise PointaeError(f"{p}: a chunk has no genomic loci")
        idx = pd.MultiIndex.from_frame(loci_all[["chrom", "start", "end"]].astype({"chrom": str}))
        pos = idx.get_indexer(pd.MultiIndex.from_frame(t.loci[["chrom", "start", "end"]]))
        loci = loci_all
    else:
        key = t.attrs.get("locus_labels") or t.attrs.get("locus_index") or t.attrs.get("segment_index")
        if key is None:  # the reader's default numbering: Bintu segments 1..L, long CSV 0..L-1
            first = 1 if t.attrs.get("format") == "bintu" else 0
            key = list(range(first, first + t.n_loci))
        pos = pd.Index(loci_all).get_indexer(pd.Index(np.asarray(key, dtype=loci_all.dtype)))
        loci = None
    if (pos < 0).any():
        raise PointaeError(f"{p}: a chunk has a locus the locus pass did not see (file changed while reading?)")
    n_all = len(loci_all)
    if n_all == t.n_loci and np.array_equal(pos, np.arange(n_all)):
        return t
    coords = np.full((len(t), n_all, 3), np.nan, np.float32)
    coords[:, pos] = t.coords
    c64 = None
    if t.coords64 is not None:
        c64 = np.full((len(t), n_all, 3), np.nan)
        c64[:, pos] = t.coords64
    layers = {}
    for k, v in t.layers.items():
        if v.dtype.kind in "fc":
            out = np.full((len(t), n_all), np.nan, v.dtype)
        elif v.dtype.kind in "US":
            out = np.full((len(t), n_all), "", v.dtype)
        else:
            out = np.full((len(t), n_all), np.nan)
        out[:, pos] = v
        layers[k] = out
    attrs = {k: v for k, v in t.attrs.items() if k not in ("locus_labels", "locus_index", "segment_index")}
    if loci is None:
        values = [x.item() if hasattr(x, "item") else x for x in loci_all]
        fmt = t.attrs.get("format")
        if "locus_labels" in t.attrs:
            attrs["locus_labels"] = values
        elif fmt == "bintu":
            if values != list(range(1, n_all + 1)):
                attrs["segment_index"] = values
        elif fmt == "table" or values != list(range(n_all)):
            attrs["locus_index"] = values
    return Traces(coords, unit=t.unit, meta=t.meta, loci=loci, attrs=attrs, layers=layers, coords64=c64)


__all__ = ["iter_text"]
