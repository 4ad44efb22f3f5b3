"""Honest baselines that every model is compared against.

- :func:`interpolate_missing`: linear interpolation of missing loci along the chain (what
  biologists do today), constant extrapolation beyond the first/last observed locus.
- :func:`smooth_missing`: a robust local-linear fit along the chain over a few observed neighbours
  on each side (Huber-reweighted), a stronger chain-only baseline when spots carry localisation
  noise: it averages over more than the two adjacent loci and down-weights a scattered neighbour.
- :func:`detect_outliers_neighbour`: the neighbour rule (a locus far from both chain neighbours is
  a mislocalised spot); :func:`clean_neighbour_rule` removes such loci and interpolates them.
"""

from __future__ import annotations

import numpy as np


def interpolate_missing(coords: np.ndarray) -> np.ndarray:
    """Fill missing loci by linear interpolation along the chain index.

    Parameters
    ----------
    coords
        ``(N, L, 3)`` or ``(L, 3)``, NaN where missing.

    Returns
    -------
    numpy.ndarray
        Same shape, float32; observed loci unchanged. A trace with no observed locus stays NaN.
    """

    def fill(trace: np.ndarray, obs: np.ndarray) -> np.ndarray:
        idx = np.arange(trace.shape[0])
        out = trace.copy()
        for a in range(3):
            out[~obs, a] = np.interp(idx[~obs], idx[obs], trace[obs, a])
        return out

    return _fill_each_trace(coords, fill)


def _fill_each_trace(coords: np.ndarray, fill) -> np.ndarray:
    """Apply ``fill(trace (L, 3), observed (L,) bool) -> (L, 3)`` to every trace with a gap.

    ``coords`` is ``(N, L, 3)`` or ``(L, 3)`` with NaN where missing; traces with no missing or no
    observed locus are left as they are. Returns float32 of the same shape.
    """
    coords = np.asarray(coords, dtype=np.float32)
    single = coords.ndim == 2
    c = coords[None] if single else coords
    out = c.copy()
    for s in range(c.shape[0]):
        obs = ~np.isnan(c[s, :, 0])
        if obs.all() or not obs.any():
            continue
        out[s] = fill(c[s], obs)
    return out[0] if single else out


def smooth_missing(
    coords: np.ndarray, half_window: int = 3, bandwidth: float = 1.5, huber: float = 1.345, iters: int = 3
) -> np.ndarray:
    """Fill missing loci by a robust local-linear fit along the chain index.

    For each missing locus ``i``, the observed loci within ``half_window`` positions (at least the
    two nearest observed ones) get Gaussian weights ``exp(-(j - i)^2 / (2 bandwidth^2))``; a line
    in ``j - i`` is fitted to their coordinates by weighted least squares and evaluated at ``i``.
    The fit is repeated ``iters`` times with Huber weights on the 3D residuals (threshold ``huber``
    x their median), so one mislocalised neighbour barely moves it. When all neighbours lie on one
    side (chain ends) or fewer than three are available, a robust weighted mean is used instead
    (constant extrapolation, like :func:`interpolate_missing`).

    Parameters
    ----------
    coords
        ``(N, L, 3)`` or ``(L, 3)``, NaN where missing.
    half_window, bandwidth, huber, iters
        Neighbourhood (loci each side), Gaussian weight width (loci), Huber threshold (in median
        residuals) and reweighting passes.

    Returns
    -------
    numpy.ndarray
        Same shape, float32; observed loci unchanged. A trace with no observed locus stays NaN.
    """

    def fill(trace: np.ndarray, obs: np.ndarray) -> np.ndarray:
        c = trace.astype(np.float64)
        out = c.copy()
        observed = np.flatnonzero(obs)
        for i in np.flatnonzero(~obs):
            j = observed[np.abs(observed - i) <= half_window]
            if j.size < 2:
                j = observed[np.argsort(np.abs(observed - i), kind="stable")[:2]]
            x = (j - i).astype(np.float64)
            w0 = np.exp(-0.5 * (x / bandwidth) ** 2)
            both_sides = x.min() < 0 < x.max()
            design = np.stack([np.ones_like(x), x], 1) if both_sides and j.size > 2 else np.ones((j.size, 1))
            y = c[j]
            w = w0
            for _ in range(max(1, iters)):
                sw = np.sqrt(w)[:, None]
                beta = np.linalg.lstsq(design * sw, y * sw, rcond=None)[0]
                r = np.linalg.norm(y - design @ beta, axis=1)
                u = r / (huber * (np.median(r) + 1e-9))
                w = w0 * np.where(u <= 1.0, 1.0, 1.0 / np.maximum(u, 1e-12))
            out[i] = beta[0]
        return out

    return _fill_each_trace(coords, fill)


def _neighbour_gaps(coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance of each locus to its nearest observed predecessor and successor ``(N, L)``."""
    n, n_loci = coords.shape[:2]
    prev = np.full((n, n_loci), np.nan, np.float32)
    nxt = np.full((n, n_loci), np.nan, np.float32)
    for i in range(n):
        obs = np.flatnonzero(~np.isnan(coords[i, :, 0]))
        if obs.size < 2:
            continue
        d = np.linalg.norm(np.diff(coords[i, obs], axis=0), axis=-1)
        prev[i, obs[1:]] = d
        nxt[i, obs[:-1]] = d
    return prev, nxt


def detect_outliers_neighbour(
    coords: np.ndarray, factor: float = 3.0, scale: float | None = None
) -> np.ndarray:
    """Flag loci farther than ``factor * scale`` from *both* observed chain neighbours.

    End loci (one neighbour) are flagged when their single neighbour is that far.
    ``scale`` defaults to the median neighbour distance of ``coords``. Returns bool ``(N, L)``.
    """
    coords = np.asarray(coords, dtype=np.float32)
    prev, nxt = _neighbour_gaps(coords)
    if scale is None:
        d = np.concatenate([prev[np.isfinite(prev)], nxt[np.isfinite(nxt)]])
        scale = float(np.median(d)) if d.size else 1.0
    thr = factor * scale
    far_prev = np.where(np.isnan(prev), True, prev > thr)
    far_next = np.where(np.isnan(nxt), True, nxt > thr)
    has_any = ~(np.isnan(prev) & np.isnan(nxt))
    return far_prev & far_next & has_any & ~np.isnan(coords[..., 0])


def clean_neighbour_rule(coords: np.ndarray, factor: float = 3.0, scale: float | None = None):
    """Neighbour-rule outlier removal followed by linear interpolation.

    Returns ``(cleaned_coords, flagged)`` with ``flagged`` bool ``(N, L)``; loci that were missing
    on input stay missing only if nothing can be interpolated.
    """
    flagged = detect_outliers_neighbour(coords, factor=factor, scale=scale)
    c = np.array(coords, dtype=np.float32, copy=True)
    c[flagged] = np.nan
    filled = interpolate_missing(c)
    out = np.array(coords, dtype=np.float32, copy=True)
    out[flagged] = filled[flagged]
    return out, flagged
