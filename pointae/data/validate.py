"""Numeric input policy and memory checks, applied in one place for every reader.

Policy (stated in ``docs/data.md``, "Bad input"):

- A spot with a non-finite coordinate (``nan`` aside: ``inf``, ``-inf``, or a value that
  overflows float32 such as ``1e39``) or with ``|coordinate| > COORD_LIMIT`` (``1e9`` in the
  file's unit: 1 m in nm) is **treated as missing and counted**. The limit keeps squared
  distances (<= 1.2e19) and their squares (<= 1.5e38) inside float32, so no later step overflows.
  :func:`pointae.read_traces` warns once per file with the count and the first such spot, and
  records the counts in ``attrs["pointae_invalid_spots"]``.
- Locus indices and genomic positions must satisfy ``|value| <= POSITION_LIMIT`` (``1e12``; no
  genome is that long): anything larger is a one-line error.
- Before a large array is allocated, :func:`check_memory` compares its size with the memory the
  machine has available and refuses with a one-line error instead of swapping or crashing.
"""

from __future__ import annotations

import os

import numpy as np

from pointae.errors import PointaeError

#: largest accepted ``|coordinate|`` in any unit (1 m in nm); larger spots are treated as missing
COORD_LIMIT = 1e9
#: largest accepted ``|locus index|`` or genomic position (bp)
POSITION_LIMIT = 10**12
#: fraction of the available memory one allocation may take
MEMORY_FRACTION = 0.8


def clean_coords(raw) -> tuple[np.ndarray, dict]:
    """float32 coordinates with every invalid spot set to NaN (all three values), and counts.

    Parameters
    ----------
    raw
        ``(N, L, 3)`` numeric array in any float/int dtype.

    Returns
    -------
    (numpy.ndarray, dict)
        The float32 copy, and ``{"nonfinite": n, "out_of_range": m, "first": (i, l, value)}``
        (empty when every spot is valid or missing as NaN).
    """
    raw = np.asarray(raw)
    with np.errstate(over="ignore"):  # values beyond float32 become inf: counted just below
        c = np.array(raw, dtype=np.float32, copy=True)
    # judge the values as written (before rounding to float32, where 1e39 becomes inf)
    src = raw if raw.dtype.kind == "f" and raw.dtype.itemsize > 4 else c
    with np.errstate(invalid="ignore"):
        nan = np.isnan(src).any(-1)  # (N, L) missing as written
        inf = np.isinf(src).any(-1) & ~nan
        big = (np.abs(src) > COORD_LIMIT).any(-1) & ~nan & ~inf
    report: dict = {}
    if inf.any() or big.any():
        i, j = (int(k) for k in np.argwhere(inf | big)[0])
        v = src[i, j].astype(np.float64)
        value = v[np.isinf(v) | (np.abs(v) > COORD_LIMIT)][0]
        report = {"nonfinite": int(inf.sum()), "out_of_range": int(big.sum()), "first": (i, j, float(value))}
    bad = nan | inf | big
    if bad.any():
        c[bad] = np.nan
    return c, report


def describe_invalid(report: dict, trace_ids, where: str = "") -> str:
    """One warning line for :func:`clean_coords`' report."""
    i, j, value = report["first"]
    n = report["nonfinite"] + report["out_of_range"]
    tid = trace_ids[i] if i < len(trace_ids) else i
    return (
        f"{where}{n:,} spot(s) treated as missing: {report['nonfinite']:,} non-finite, "
        f"{report['out_of_range']:,} with |coordinate| > {COORD_LIMIT:g} "
        f"(first: trace {tid}, locus {j + 1}, value {value:g})"
    )


def check_positions(values, what: str, where: str = "") -> None:
    """Refuse locus indices / genomic positions beyond :data:`POSITION_LIMIT` (one line)."""
    v = np.asarray(values)
    if v.size == 0 or v.dtype.kind not in "iuf":
        return
    with np.errstate(invalid="ignore"):
        bad = np.flatnonzero(~(np.abs(v.astype(np.float64)) <= POSITION_LIMIT))
    if bad.size:
        raise PointaeError(
            f"{where}{what} {v[bad[0]].item()!r} (locus {bad[0] + 1}) is out of range "
            f"(|value| > {POSITION_LIMIT:.0e}; no genome is that long)"
        )


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (``MemAvailable`` on Linux), or None."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _gib(n: float) -> str:
    return f"{n / 2**30:,.3g} GiB"


def check_memory(nbytes: float, what: str, where: str = "", hint: str = "") -> None:
    """Refuse (one line) an allocation of ``nbytes`` larger than the available memory allows.

    Parameters
    ----------
    nbytes
        Size of the array about to be allocated.
    what
        What it is, e.g. ``"1,000,000,000 traces x 65 loci"``.
    where
        Prefix of the message (e.g. the file name and ``": "``).
    hint
        What the user can do instead.
    """
    avail = available_memory()
    if avail is None or nbytes <= MEMORY_FRACTION * avail:
        return
    msg = f"{where}{what} need {_gib(nbytes)} of memory, {_gib(avail)} is available"
    raise PointaeError(msg + (f"; {hint}" if hint else ""))


__all__ = [
    "COORD_LIMIT",
    "POSITION_LIMIT",
    "clean_coords",
    "describe_invalid",
    "check_positions",
    "check_memory",
    "available_memory",
]
