"""Quality-control summary of a :class:`~pointae.data.traces.Traces` (``pointae info``).

The keys of :func:`summarize` are documented in ``docs/data.md``. :func:`summarize_file`
streams HDF5 files chunk by chunk (two passes), so a 10^6-trace file never has to be in memory;
the result is the same as :func:`summarize` on the whole file.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pointae.baselines import detect_outliers_neighbour
from pointae.data.traces import Traces

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
MAX_LABELS = 50  # a meta column with more distinct values is not treated as a label
STREAM_BYTES = 256 * 1024**2  # text files larger than this are summarised chunk by chunk


def _quantiles(x: np.ndarray) -> dict[str, float] | None:
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return None
    q = np.quantile(x, QUANTILES)
    out = {"min": float(x.min())}
    out.update({f"q{int(round(p * 100)):02d}": float(v) for p, v in zip(QUANTILES, q)})
    out["max"] = float(x.max())
    return out


def _label_kind(s: pd.Series) -> str | None:
    """How a meta column may be a label: 'text', 'int' or None (never)."""
    if s.name == "trace_id":
        return None
    if isinstance(s.dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(s):
        return "always"
    if pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s):
        return "text"
    if pd.api.types.is_integer_dtype(s):
        return "int"
    return None


def _is_label(kind: str | None, k: int, n: int) -> bool:
    if kind is None or n == 0 or k == 0 or k > MAX_LABELS:
        return False
    if kind == "always":
        return True
    if kind == "text":
        return k < n or n == 1
    return k <= min(20, max(1, n // 2))


def observed_gaps(coords: np.ndarray) -> np.ndarray:
    """Distances between consecutive *observed* loci of each trace, float32 ``(M,)``.

    The same values :func:`pointae.baselines.detect_outliers_neighbour` takes its scale from.
    """
    mask = ~np.isnan(coords[..., 0])  # (N, L)
    ti, li = np.nonzero(mask)  # observed loci, ordered by trace then locus
    if ti.size < 2:
        return np.empty(0, np.float32)
    same = ti[1:] == ti[:-1]
    pts = coords[ti, li]  # (M, 3)
    return np.linalg.norm(np.diff(pts, axis=0), axis=-1)[same]


def _summarize_chunks(chunks: Callable[[], Iterable[Traces]], outlier_factor: float) -> dict[str, Any]:
    """Two passes over ``chunks()``: statistics, then outliers with the global scale."""
    first: Traces | None = None
    n = observed = total = 0
    detected = None  # (L,) traces observing each locus
    dups = None
    miss, rgs, bonds, gaps = [], [], [], []
    counts: dict[str, Counter] = {}
    kinds: dict[str, str | None] = {}
    for t in chunks():
        if first is None:
            first = t
            kinds = {str(c): _label_kind(t.meta[c]) for c in t.meta.columns}
            counts = {c: Counter() for c, k in kinds.items() if k is not None}
        d = t.attrs.get("duplicates")  # per chunk when streamed: summed
        if isinstance(d, dict) and "spots" in d:
            dups = dict(d) if dups is None else {**dups, "spots": dups["spots"] + d["spots"],
                                                 "rows_dropped": dups["rows_dropped"] + d["rows_dropped"]}
        m = t.mask  # (B, L)
        detected = m.sum(axis=0) if detected is None else detected + m.sum(axis=0)
        n += len(t)
        observed += int(m.sum())
        total += m.size
        if t.n_loci:
            miss.append(1.0 - m.mean(axis=1))
        with warnings.catch_warnings():  # all-missing traces: mean of an empty slice
            warnings.simplefilter("ignore", RuntimeWarning)
            rgs.append(t.radius_of_gyration())
        d = t.neighbour_distances()
        bonds.append(d[np.isfinite(d)])
        gaps.append(observed_gaps(t.coords))
        for c in list(counts):
            s = t.meta[c]
            counts[c].update(s.astype(object).where(s.notna(), "<missing>").tolist())
            if len(counts[c]) > MAX_LABELS + 1:
                del counts[c]
    if first is None:
        raise ValueError("no traces to summarise")
    n_loci = first.n_loci
    miss_per_trace = np.concatenate(miss) if miss else np.zeros(n)
    bonds = np.concatenate(bonds) if bonds else np.empty(0, np.float32)
    gaps = np.concatenate(gaps) if gaps else np.empty(0, np.float32)
    mnd = float(np.median(bonds)) if bonds.size else float("nan")
    outlier_fraction, outlier_traces = None, 0
    if n and n_loci > 1:
        scale = float(np.median(gaps)) if gaps.size else 1.0
        flagged_total = 0
        for t in chunks():
            flagged = detect_outliers_neighbour(t.coords, factor=outlier_factor, scale=scale)  # (B, L)
            flagged_total += int(flagged.sum())
            outlier_traces += int(flagged.any(axis=1).sum())
        outlier_fraction = float(flagged_total / observed) if observed else None
    span = None
    if first.loci is not None and n_loci:
        lo = first.loci
        chroms = list(pd.unique(lo["chrom"]))
        span = {
            "chrom": ",".join(chroms),
            "start": int(lo["start"].min()),
            "end": int(lo["end"].max()),
            "bp": int(lo["end"].max() - lo["start"].min()) if len(chroms) == 1 else None,
            "median_locus_size": float(np.median(lo["end"] - lo["start"])),
        }
    labels = {}
    for c, cnt in counts.items():
        k = len([v for v in cnt if v != "<missing>"])
        if _is_label(kinds[c], k, n):
            labels[c] = {str(v): int(x) for v, x in cnt.most_common()}
    rg = np.concatenate(rgs) if rgs else np.empty(0)
    det = detected / n if n and detected is not None else np.zeros(n_loci)
    a = first.attrs
    return {
        "n_traces": int(n),
        "n_loci": int(n_loci),
        "unit": first.unit,
        "source": first.attrs.get("source"),
        "format": first.attrs.get("format"),
        "genomic_span": span,
        "missing_fraction": float(1.0 - observed / total) if total else 0.0,
        "missing_per_trace": _quantiles(miss_per_trace),
        "traces_over_half_missing": int((miss_per_trace > 0.5).sum()),
        "empty_traces": int((miss_per_trace == 1.0).sum()) if n_loci else int(n),
        "median_neighbour_distance": mnd if np.isfinite(mnd) else None,
        "radius_of_gyration": _quantiles(rg) if n else None,
        "outlier_factor": float(outlier_factor),
        "outlier_fraction": outlier_fraction,
        "outlier_traces": outlier_traces,
        "meta_columns": [str(c) for c in first.meta.columns],
        "layers": sorted(first.layers),
        "labels": labels,
        "detection_per_locus": [round(float(v), 4) for v in det],
        "locus_names": _locus_names(first),
        "unit_source": a.get("unit_source", "stated by the format" if a.get("format") != "h5" else "file"),
        "trace_key": a.get("trace_key"),
        "columns": a.get("columns"),
        "duplicates": dups,
        "encoding": a.get("encoding"),
    }


def _locus_names(t: Traces) -> list[str]:
    """A short name per locus: ``chrom:start-end``, the locus index or label, else ``0..L-1``."""
    if t.loci is not None:
        return [f"{c}:{s}-{e}" for c, s, e in zip(t.loci["chrom"], t.loci["start"], t.loci["end"])]
    for key in ("locus_labels", "locus_index", "segment_index"):
        v = t.attrs.get(key)
        if isinstance(v, list) and len(v) == t.n_loci:
            return [str(x) for x in v]
    return [str(i) for i in range(t.n_loci)]


def summarize(traces: Traces, outlier_factor: float = 3.0) -> dict[str, Any]:
    """Summarise a trace set for QC.

    Parameters
    ----------
    traces
        ``N`` traces of ``L`` loci.
    outlier_factor
        A locus farther than ``outlier_factor`` x the median distance between consecutive observed
        loci from both chain neighbours counts as an outlier
        (:func:`pointae.baselines.detect_outliers_neighbour`).

    Returns
    -------
    dict
        JSON-serialisable; keys ``n_traces``, ``n_loci``, ``unit``, ``source``, ``format``,
        ``genomic_span``, ``missing_fraction``, ``missing_per_trace``,
        ``traces_over_half_missing``, ``empty_traces``, ``median_neighbour_distance``,
        ``radius_of_gyration``, ``outlier_factor``, ``outlier_fraction``, ``outlier_traces``,
        ``meta_columns``, ``layers``, ``labels``, ``detection_per_locus`` (fraction of traces
        observing each locus), ``locus_names``, ``unit_source`` (how the unit was decided),
        ``trace_key`` (columns that key a trace), ``columns`` (the column mapping of a table),
        ``duplicates`` (policy and counts), ``encoding`` (see docs/data.md).
    """
    return _summarize_chunks(lambda: [traces], outlier_factor)


def summarize_file(
    path, format: str | None = None, chunk_size: int = 65536, outlier_factor: float = 3.0, **read_kw
) -> dict[str, Any]:
    """:func:`summarize` a file; HDF5 files and text files over 256 MB are streamed in chunks of
    ``chunk_size`` traces (two passes).

    ``read_kw`` are reader options (:class:`pointae.data.io.ReadOptions`: ``columns``, ``unit``,
    ``pixel_size``, ``duplicates``).
    """
    from pointae.data.io import detect_format, iter_traces, read_traces
    from pointae.data.io.hdf5 import h5_length

    if read_kw.get("columns") is not None and format is None:
        format = "table"
    fmt = format or detect_format(path)
    if fmt in ("h5", "hdf5") and h5_length(path) > 0 and not read_kw:
        return _summarize_chunks(
            lambda: iter_traces(path, chunk_size=chunk_size, format="h5"), outlier_factor
        )
    if fmt not in ("h5", "hdf5") and Path(path).stat().st_size > STREAM_BYTES:  # big text: stream, 2 passes
        return _summarize_chunks(
            lambda: iter_traces(path, chunk_size=chunk_size, format=fmt, **read_kw), outlier_factor
        )
    return summarize(read_traces(path, format=fmt, **read_kw), outlier_factor=outlier_factor)


__all__ = ["summarize", "summarize_file", "observed_gaps"]
