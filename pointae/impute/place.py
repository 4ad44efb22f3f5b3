"""3D placement of imputed loci consistent with a predicted distance map.

:func:`place_loci` moves only the *free* loci (missing or flagged), keeping every observed locus
fixed bit for bit, to minimise the weighted stress::

    sum_{i<j, i or j free} w_ij (|x_i - x_j| - D_ij)^2

to the predicted distances ``D`` (to the fixed loci and among the free ones). It is a thin layer
over :func:`pointae.recon.smacof` with pinned loci (one stress-placement implementation in the
package): it picks the pairs, the weights and the start (linear interpolation unless given) and
writes the placed loci back. The result is a real 3D structure, so its distance map is consistent
by construction. The :class:`~pointae.impute.model.Imputer` places loci directly (weighted
combinations of observed positions); this module refines that placement against the network's
predicted map and turns *map* predictions (population median, kNN) into coordinates.
"""

from __future__ import annotations

import numpy as np

from pointae.baselines import interpolate_missing
from pointae.recon import smacof


def place_loci(
    coords: np.ndarray,
    target: np.ndarray,
    free: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    init: np.ndarray | None = None,
    n_iter: int = 150,
    power: float = 1.0,
    tol: float = 1e-6,
) -> np.ndarray:
    """Place free loci by weighted stress minimisation (SMACOF, fixed loci pinned).

    Parameters
    ----------
    coords
        ``(N, L, 3)`` with NaN at missing loci.
    target
        ``(N, L, L)`` (or ``(L, L)``) target distances in the same unit; pairs that are NaN get no
        weight.
    free
        ``(N, L)`` bool, loci to move; defaults to the missing ones. Free loci that are observed
        (e.g. flagged outliers) are re-placed as well.
    weights
        Optional ``(N, L, L)`` non-negative pair weights; by default ``D_ij ** -power`` (``power
        = 0``: unweighted stress; ``1``: near pairs count more, as in weighted SMACOF).
    init
        ``(N, L, 3)`` starting positions for the free loci; default linear interpolation.
    n_iter, tol
        At most ``n_iter`` Guttman transforms; a trace stops when its relative stress decrease
        falls below ``tol``.
    power
        Exponent of the default distance weighting.

    Returns
    -------
    numpy.ndarray
        ``(N, L, 3)`` float32; non-free loci identical to ``coords`` (bit for bit). Traces without
        a fixed locus are returned unchanged.
    """
    coords = np.asarray(coords, np.float32)
    observed = ~np.isnan(coords[..., 0])
    free = ~observed if free is None else np.asarray(free, bool)
    fixed = observed & ~free
    n, n_loci = observed.shape
    target = np.broadcast_to(np.asarray(target, np.float64), (n, n_loci, n_loci))
    out = coords.copy()
    rows = np.flatnonzero(free.any(1) & fixed.any(1))
    if rows.size == 0:
        return out
    base = coords[rows].copy()
    fr, fx = free[rows], fixed[rows]
    base[fr] = np.nan
    start = interpolate_missing(base) if init is None else np.asarray(init, np.float32)[rows]
    centre = np.nanmean(np.where(fx[..., None], coords[rows], np.nan), 1, keepdims=True)
    start = np.where(np.isnan(start), centre, start).astype(np.float64)
    start[fx] = coords[rows][fx]  # pinned loci start (and stay) exactly where they were observed
    start[~(fx | fr)] = np.nan  # loci neither fixed nor free take no part
    d = target[rows]
    pair = (fr[:, :, None] | fr[:, None, :]) & ((fx | fr)[:, :, None] & (fx | fr)[:, None, :])
    if weights is None:
        with np.errstate(divide="ignore"):
            w = np.where(d > 0, np.abs(d), np.inf) ** -float(power) if power else np.ones_like(d)
    else:
        w = np.asarray(weights, np.float64)[rows]
    w = np.where(pair & np.isfinite(d), np.nan_to_num(w, nan=0.0, posinf=0.0), 0.0)
    placed = smacof(d, weights=w, init=start, fixed=fx, n_iter=n_iter, tol=tol)
    ok = fr & np.isfinite(placed).all(-1)
    sub = out[rows]
    sub[ok] = placed[ok].astype(np.float32)
    out[rows] = sub
    return out
