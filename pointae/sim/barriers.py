"""CTCF barrier tables, genomic regions and their mapping onto simulation monomers.

A barrier is a site with a genomic position, a direction and an occupancy (the probability that a
LEF leg arriving at it is stopped). Orientation convention (Fudenberg et al. 2016, convergent rule):
a *forward* motif (``+``) stops LEF legs moving leftwards (towards lower coordinates), a *reverse*
motif (``-``) stops legs moving rightwards, so a loop anchored at a forward site on its left and a
reverse site on its right is the stable, "convergent" CTCF loop.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pointae.errors import InputError, PointaeError

_REGION_RE = re.compile(r"^\s*([^:\s]+):([\d,_]+)-([\d,_]+)\s*$")


@dataclass(frozen=True)
class Region:
    """A genomic interval ``chrom:start-end`` (0-based start, end exclusive, bp)."""

    chrom: str
    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start

    def __str__(self) -> str:
        return f"{self.chrom}:{self.start}-{self.end}"


def parse_region(text: str) -> Region:
    """Parse ``"chr21:29,372,390-31,322,258"`` into a :class:`Region`.

    Raises
    ------
    PointaeError
        When the text is not ``chrom:start-end`` with ``start < end``.
    """
    m = _REGION_RE.match(str(text))
    if not m:
        raise PointaeError(f"region {text!r}: expected chrom:start-end, e.g. chr21:29372390-31322258")
    chrom, a, b = m.group(1), int(re.sub(r"[,_]", "", m.group(2))), int(re.sub(r"[,_]", "", m.group(3)))
    if a >= b:
        raise PointaeError(f"region {text!r}: start must be smaller than end")
    return Region(chrom, a, b)


def occupancy_from_strength(strength, mu: float = 3.0, divide: float = 20.0) -> np.ndarray:
    """Barrier occupancy from a site strength (e.g. ChIP fold change) with a logistic.

    ``p = 1 / (1 + exp(-(strength - mu) / divide))``, the reference simulation's mapping with
    ``mu = 3`` and ``divide = 20`` (a fold change of 3 gives 0.5, 25 gives 0.75, 100 gives 0.99).
    """
    s = np.asarray(strength, dtype=np.float64)
    return 1.0 / (1.0 + np.exp(-(s - mu) / divide))


def read_ctcf_table(
    path: str | Path,
    strength_column: str | None = None,
    orientation_column: str | None = None,
    mu: float = 3.0,
    divide: float = 20.0,
) -> pd.DataFrame:
    """Read a tab-separated CTCF site table.

    Required columns: ``chrom``, ``start``, ``end`` and a strength (``fc`` by default, else
    ``strength`` or ``score``). Orientation comes from ``strand`` (``+``/``-``), ``orientation``, or the
    sign of ``summitDist`` (``> 0`` forward, ``< 0`` reverse); rows whose orientation is unknown
    (``NA``, ``.``, ``0``) are dropped, as the reference simulation did. Without any orientation
    column every site blocks both directions.

    Returns
    -------
    DataFrame
        Columns ``chrom, pos`` (site centre, bp), ``strength``, ``direction`` (``+1`` forward, ``-1``
        reverse, ``0`` both) and ``occupancy`` in ``[0, 1]``; attribute ``n_dropped`` in ``.attrs``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(2, "No such file", str(path))
    try:
        df = pd.read_csv(path, sep="\t", comment="#", na_values=["NA", "nan", ".", ""])
    except Exception as e:  # pandas parser errors
        raise InputError(path, f"not a readable tab-separated table ({e.__class__.__name__})") from None
    cols = {c.lower(): c for c in df.columns}
    for c in ("chrom", "start", "end"):
        if c not in cols:
            raise InputError(path, f"missing column {c!r} (need chrom, start, end and a strength)", line=1)
    scol = strength_column or next((cols[c] for c in ("fc", "strength", "score") if c in cols), None)
    if scol is None or scol not in df.columns:
        raise InputError(path, "no strength column (fc, strength or score)", line=1)
    for c in (cols["start"], cols["end"], scol):
        bad = pd.to_numeric(df[c], errors="coerce").isna() & df[c].notna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(path, f"column {c!r} is not numeric: {df[c].iloc[i]!r}", line=i + 2)
    ocol = orientation_column or next(
        (cols[c] for c in ("strand", "orientation", "summitdist") if c in cols), None
    )
    if ocol is None:
        direction = np.zeros(len(df), dtype=np.int64)
        keep = np.ones(len(df), dtype=bool)
    else:
        o = df[ocol]
        if o.dtype == object:
            names = {"+": 1, "-": -1, "forward": 1, "reverse": -1, "1": 1, "-1": -1}
            m = o.astype(str).str.strip().map(names)
            direction = m.fillna(0).to_numpy(dtype=np.int64)
        else:
            direction = np.sign(pd.to_numeric(o, errors="coerce").fillna(0).to_numpy()).astype(np.int64)
        keep = direction != 0
    keep &= df[scol].notna().to_numpy() & df[cols["start"]].notna().to_numpy()
    start = pd.to_numeric(df[cols["start"]]).to_numpy()
    end = pd.to_numeric(df[cols["end"]]).to_numpy()
    strength = pd.to_numeric(df[scol]).to_numpy(dtype=np.float64)
    out = pd.DataFrame(
        {
            "chrom": df[cols["chrom"]].astype(str).to_numpy()[keep],
            "pos": ((start + end) // 2).astype(np.int64)[keep],
            "strength": strength[keep],
            "direction": direction[keep],
            "occupancy": occupancy_from_strength(strength[keep], mu=mu, divide=divide),
        }
    )
    out.attrs["n_dropped"] = int((~keep).sum())
    out.attrs["source"] = str(path)
    return out


@dataclass
class BarrierMap:
    """Barrier occupancies per monomer: ``stall_left[i]`` stops left-moving legs at monomer ``i``.

    Attributes
    ----------
    stall_left, stall_right
        float arrays ``(M,)`` in ``[0, 1]`` (forward and reverse sites; several sites on one monomer
        combine as ``1 - prod(1 - p)``).
    sites
        The sites used, with their monomer index.
    """

    stall_left: np.ndarray
    stall_right: np.ndarray
    sites: pd.DataFrame

    @property
    def n_monomers(self) -> int:
        return len(self.stall_left)


def barriers_to_monomers(
    sites: pd.DataFrame, region: Region, monomer_bp: int, n_monomers: int, offset: int
) -> BarrierMap:
    """Map sites onto monomers; monomer ``offset`` starts at ``region.start``.

    Sites outside the simulated stretch (``offset`` monomers of extension on each side included) are
    ignored.
    """
    sel = sites[sites["chrom"] == region.chrom].copy()
    idx = offset + np.floor((sel["pos"].to_numpy() - region.start) / monomer_bp).astype(np.int64)
    inside = (idx >= 0) & (idx < n_monomers)
    sel = sel[inside].assign(monomer=idx[inside]).reset_index(drop=True)
    keep_l = np.ones(n_monomers)
    keep_r = np.ones(n_monomers)
    for m, d, p in zip(sel["monomer"], sel["direction"], sel["occupancy"]):
        if d >= 0:
            keep_l[m] *= 1.0 - p
        if d <= 0:
            keep_r[m] *= 1.0 - p
    return BarrierMap(1.0 - keep_l, 1.0 - keep_r, sel)


def synthetic_sites(region: Region, n_loci: int, occupancy: float = 0.9, fractions=None) -> pd.DataFrame:
    """Synthetic TAD boundaries: at each boundary a forward and a reverse site (both directions).

    Boundaries sit at the starts of loci ``round(f * n_loci)`` for ``f`` in ``fractions`` (default
    ``0.12, 0.38, 0.6, 0.85``), so the region holds a few domains of unequal size.
    """
    fractions = (0.12, 0.38, 0.6, 0.85) if fractions is None else fractions
    locus_bp = region.length / n_loci
    rows = []
    for f in fractions:
        b = int(round(f * n_loci))
        pos = int(region.start + b * locus_bp + locus_bp / 4)
        for d in (1, -1):
            rows.append((region.chrom, pos, math.nan, d, occupancy))
    return pd.DataFrame(rows, columns=["chrom", "pos", "strength", "direction", "occupancy"])


def synthetic_blocks(n_monomers: int, boundaries: np.ndarray) -> np.ndarray:
    """Block ids ``(M,)`` with a new block starting at each boundary monomer."""
    blocks = np.zeros(n_monomers, dtype=np.int64)
    for b in sorted(int(x) for x in boundaries):
        if 0 < b < n_monomers:
            blocks[b:] += 1
    return blocks
