"""Seeded, pure corruptions of coordinates, applied *before* any representation transform.

Each function takes coordinates ``(N, L, 3)`` (NaN = missing) and a ``numpy.random.Generator``
and returns a :class:`Corruption`: the corrupted copy plus exactly which loci were changed, so
losses and metrics can score only those. Inputs are never modified.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pointae.data.traces import median_neighbour_distance
from pointae.errors import PointaeError


@dataclass
class Corruption:
    """Result of a corruption.

    Attributes
    ----------
    coords
        ``(N, L, 3)`` float32, the corrupted coordinates.
    changed
        ``(N, L)`` bool, True for loci the corruption displaced or hid.
    """

    coords: np.ndarray
    changed: np.ndarray


def _median_bond(coords: np.ndarray) -> float:
    s = median_neighbour_distance(coords)
    return s if np.isfinite(s) else 1.0


def add_outliers(
    coords: np.ndarray,
    fraction: float,
    rng: np.random.Generator,
    magnitude: tuple[float, float] = (2.0, 5.0),
    scale: float | None = None,
) -> Corruption:
    """Displace a fraction of the *observed* loci by random vectors (mis-hybridised probes).

    Parameters
    ----------
    coords
        ``(N, L, 3)``.
    fraction
        Expected fraction of observed loci to displace (each chosen independently).
    rng
        Source of randomness.
    magnitude
        Displacement length range, as multiples of ``scale``; drawn uniformly.
    scale
        Reference length; defaults to the median neighbour distance of ``coords``.

    Returns
    -------
    Corruption
        ``changed`` marks the displaced loci.
    """
    if not 0 <= fraction <= 1:
        raise PointaeError(f"outlier fraction must be in [0, 1], got {fraction}")
    coords = np.asarray(coords, dtype=np.float32)
    observed = ~np.isnan(coords[..., 0])
    scale = _median_bond(coords) if scale is None else float(scale)
    changed = (rng.random(observed.shape) < fraction) & observed
    direction = rng.normal(size=coords.shape)
    direction /= np.linalg.norm(direction, axis=-1, keepdims=True) + 1e-12
    length = rng.uniform(magnitude[0], magnitude[1], size=observed.shape) * scale
    out = coords.copy()
    out[changed] += (direction * length[..., None])[changed].astype(np.float32)
    return Corruption(out, changed)


def hide_loci(
    coords: np.ndarray,
    fraction: float,
    rng: np.random.Generator,
    run_fraction: float = 0.5,
    max_run: int = 4,
) -> Corruption:
    """Hide a fraction of the *observed* loci: isolated loci and contiguous runs.

    Parameters
    ----------
    coords
        ``(N, L, 3)``.
    fraction
        Target fraction of each trace's observed loci to hide (rounded per trace, at least one
        when ``fraction > 0`` and the trace has more than two observed loci).
    rng
        Source of randomness.
    run_fraction
        Share of the hidden loci that come in contiguous runs of length 2..``max_run``.
    max_run
        Longest run.

    Returns
    -------
    Corruption
        ``coords`` has NaN at the hidden loci (on top of those already missing); ``changed``
        marks exactly the newly hidden loci. At least two observed loci are always kept.
    """
    if not 0 <= fraction < 1:
        raise PointaeError(f"hide fraction must be in [0, 1), got {fraction}")
    coords = np.asarray(coords, dtype=np.float32)
    observed = ~np.isnan(coords[..., 0])
    n, n_loci = observed.shape
    changed = np.zeros_like(observed)
    if fraction > 0:
        for i in range(n):
            obs = np.flatnonzero(observed[i])
            k = min(max(1, int(round(fraction * obs.size))), obs.size - 2)
            if k <= 0:
                continue
            hidden = changed[i]
            n_runs_target = int(round(k * run_fraction))
            tries = 0
            while n_runs_target > 1 and tries < 20 and hidden.sum() < n_runs_target:
                tries += 1
                length = int(rng.integers(2, max_run + 1))
                length = min(length, n_runs_target - int(hidden.sum()))
                if length < 2:
                    break
                start = int(rng.integers(0, n_loci - length + 1))
                run = np.arange(start, start + length)
                run = run[observed[i, run]]
                hidden[run] = True
            rest = k - int(hidden.sum())
            if rest > 0:
                free = obs[~hidden[obs]]
                m = min(rest, free.size - 2)
                if m > 0:
                    hidden[rng.choice(free, size=m, replace=False)] = True
    out = coords.copy()
    out[changed] = np.nan
    return Corruption(out, changed)
