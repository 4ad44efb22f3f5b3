"""3D placement of imputed loci consistent with a predicted distance map.

:func:`place_loci` moves only the *free* loci (missing or flagged), keeping every observed locus
fixed bit for bit, to minimise the weighted stress::

    sum_{i<j, i or j free} w_ij (|x_i - x_j| - D_ij)^2

to the predicted distances ``D`` (to the fixed loci and among the free ones), starting from
linear interpolation. The result is a real 3D structure, so its distance map is consistent by
construction. The :class:`~pointae.impute.model.Imputer` places loci directly (weighted
combinations of observed positions); this module turns *map* predictions (population median,
kNN) into coordinates and can refine any placement against a map.
"""

from __future__ import annotations

import numpy as np
import torch

from pointae.baselines import interpolate_missing
from pointae.impute.model import torch_threads


def place_loci(
    coords: np.ndarray,
    target: np.ndarray,
    free: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    init: np.ndarray | None = None,
    n_iter: int = 150,
    lr: float = 0.05,
    power: float = 1.0,
) -> np.ndarray:
    """Place free loci by weighted stress minimisation against target distances.

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
        Optional ``(N, L, L)`` non-negative pair weights; by default ``D_ij ** -power`` so near
        pairs count more (as in weighted SMACOF).
    init
        ``(N, L, 3)`` starting positions for the free loci; default linear interpolation.
    n_iter, lr
        Adam iterations and step size (in units of the median neighbour distance).
    power
        Exponent of the default distance weighting.

    Returns
    -------
    numpy.ndarray
        ``(N, L, 3)`` float32; non-free loci identical to ``coords``.
    """
    coords = np.asarray(coords, np.float32)
    observed = ~np.isnan(coords[..., 0])
    free = ~observed if free is None else np.asarray(free, bool)
    fixed = observed & ~free
    n, n_loci = observed.shape
    target = np.broadcast_to(np.asarray(target, np.float32), (n, n_loci, n_loci))
    base = coords.copy()
    base[free] = np.nan
    start = interpolate_missing(base) if init is None else np.asarray(init, np.float32)
    start = np.where(
        np.isnan(start), np.nanmean(np.where(fixed[..., None], coords, np.nan), 1, keepdims=True), start
    )
    out = coords.copy()
    rows = np.flatnonzero(free.any(1) & fixed.any(1))
    if rows.size == 0:
        return out
    d_nb = np.linalg.norm(np.diff(coords[rows], axis=1), axis=-1)
    unit = float(np.nanmedian(d_nb)) if np.isfinite(d_nb).any() else 1.0
    unit = unit if unit > 0 else 1.0
    x0 = torch.from_numpy(np.nan_to_num(start[rows]) / unit).double()  # (n, L, 3)
    fr = torch.from_numpy(free[rows])
    d = torch.from_numpy(np.array(target[rows], np.float64) / unit)
    ok = torch.isfinite(d)
    pair = (fr[:, :, None] | fr[:, None, :]) & ok
    pair &= ~torch.eye(n_loci, dtype=torch.bool)[None]
    pair &= (
        (torch.from_numpy(fixed[rows] | free[rows])[:, :, None])
        & (torch.from_numpy(fixed[rows] | free[rows])[:, None, :])
    )
    d = torch.nan_to_num(d, nan=1.0).clamp(min=1e-3)
    if weights is None:
        w = d.pow(-power)
    else:
        w = torch.nan_to_num(torch.from_numpy(np.asarray(weights, np.float64)[rows]), nan=0.0)
    w = w * pair
    w = w / w.sum((1, 2), keepdim=True).clamp(min=1e-12)
    var = x0.clone().requires_grad_(True)
    opt = torch.optim.Adam([var], lr=lr)
    frf = fr[..., None].double()
    with torch_threads(1):
        for _ in range(n_iter):
            x = frf * var + (1 - frf) * x0
            diff = x[:, :, None, :] - x[:, None, :, :]
            dist = torch.sqrt((diff**2).sum(-1) + 1e-9)
            loss = (w * (dist - d) ** 2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    placed = (var.detach().numpy() * unit).astype(np.float32)
    sub = out[rows]
    sub[free[rows]] = placed[free[rows]]
    out[rows] = sub
    return out
