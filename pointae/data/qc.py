"""Quality-control summary of a :class:`~pointae.data.traces.Traces` (``pointae info``).

The keys of :func:`summarize` are documented in ``docs/data.md``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from pointae.baselines import detect_outliers_neighbour
from pointae.data.traces import Traces

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
MAX_LABELS = 50  # a meta column with more distinct values is not treated as a label


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


def _is_label_column(s: pd.Series, n: int) -> bool:
    if s.name in ("trace_id",) or n == 0:
        return False
    k = s.nunique(dropna=True)
    if k == 0 or k > MAX_LABELS:
        return False
    if isinstance(s.dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(s):
        return True
    if pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s):
        return k < n or n == 1
    if pd.api.types.is_integer_dtype(s):
        return k <= min(20, max(1, n // 2))
    return False


def summarize(traces: Traces, outlier_factor: float = 3.0) -> dict[str, Any]:
    """Summarise a trace set for QC.

    Parameters
    ----------
    traces
        ``N`` traces of ``L`` loci.
    outlier_factor
        A locus farther than ``outlier_factor`` x the median neighbour distance from both chain
        neighbours counts as an outlier (:func:`pointae.baselines.detect_outliers_neighbour`).

    Returns
    -------
    dict
        JSON-serialisable; keys ``n_traces``, ``n_loci``, ``unit``, ``source``, ``format``,
        ``genomic_span``, ``missing_fraction``, ``missing_per_trace``,
        ``traces_over_half_missing``, ``median_neighbour_distance``, ``radius_of_gyration``,
        ``outlier_fraction``, ``outlier_traces``, ``meta_columns``, ``layers``, ``labels``
        (see docs/data.md).
    """
    n, n_loci = len(traces), traces.n_loci
    mask = traces.mask  # (N, L)
    miss_per_trace = 1.0 - mask.mean(axis=1) if n_loci else np.zeros(n)
    span = None
    if traces.loci is not None and n_loci:
        lo = traces.loci
        chroms = list(pd.unique(lo["chrom"]))
        span = {
            "chrom": ",".join(chroms),
            "start": int(lo["start"].min()),
            "end": int(lo["end"].max()),
            "bp": int(lo["end"].max() - lo["start"].min()) if len(chroms) == 1 else None,
            "median_locus_size": float(np.median(lo["end"] - lo["start"])),
        }
    if n and n_loci > 1:
        flagged = detect_outliers_neighbour(traces.coords, factor=outlier_factor)  # (N, L)
        n_obs = int(mask.sum())
        outlier_fraction = float(flagged.sum() / n_obs) if n_obs else None
        outlier_traces = int(flagged.any(axis=1).sum())
    else:
        outlier_fraction, outlier_traces = None, 0
    mnd = traces.median_neighbour_distance() if n_loci > 1 else float("nan")
    with warnings.catch_warnings():  # all-missing traces: mean of an empty slice
        warnings.simplefilter("ignore", RuntimeWarning)
        rg = traces.radius_of_gyration()
    labels = {}
    for col in traces.meta.columns:
        s = traces.meta[col]
        if _is_label_column(s, n):
            vc = s.astype(object).where(s.notna(), "<missing>").value_counts()
            labels[str(col)] = {str(k): int(v) for k, v in vc.items()}
    return {
        "n_traces": int(n),
        "n_loci": int(n_loci),
        "unit": traces.unit,
        "source": traces.attrs.get("source"),
        "format": traces.attrs.get("format"),
        "genomic_span": span,
        "missing_fraction": float(traces.missing_fraction),
        "missing_per_trace": _quantiles(miss_per_trace),
        "traces_over_half_missing": int((miss_per_trace > 0.5).sum()),
        "empty_traces": int((~mask.any(axis=1)).sum()) if n_loci else int(n),
        "median_neighbour_distance": float(mnd) if np.isfinite(mnd) else None,
        "radius_of_gyration": _quantiles(rg) if n else None,
        "outlier_factor": float(outlier_factor),
        "outlier_fraction": outlier_fraction,
        "outlier_traces": outlier_traces,
        "meta_columns": [str(c) for c in traces.meta.columns],
        "layers": sorted(traces.layers),
        "labels": labels,
    }


def summarize_file(path, format: str | None = None, **kw) -> dict[str, Any]:
    """Read ``path`` (any supported format) and :func:`summarize` it."""
    from pointae.data.io import read_traces

    return summarize(read_traces(path, format=format), **kw)


__all__ = ["summarize", "summarize_file"]
