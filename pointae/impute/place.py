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
    loss: str = "l2",
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
    loss
        ``"l2"`` (stress) or ``"l1"`` (sum of weighted absolute distance errors, robust; matches
        the MAE the protocol scores).

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
    fr_np = free[rows]
    n_free = fr_np.sum(1)
    f_max = int(n_free.max())
    # indices of the free loci of each trace, padded to f_max (padding rows get zero weight)
    order = np.argsort(~fr_np, axis=1, kind="stable")[:, :f_max]  # (n, F)
    valid = np.arange(f_max)[None, :] < n_free[:, None]  # (n, F)
    idx = torch.from_numpy(order)
    x0 = torch.from_numpy(np.nan_to_num(start[rows]) / unit).float()  # (n, L, 3)
    d = torch.from_numpy(
        np.take_along_axis(np.asarray(target[rows], np.float32), order[:, :, None], 1) / unit
    )
    ok = torch.isfinite(d)  # (n, F, L) rows of the free loci
    usable = torch.from_numpy(fixed[rows] | fr_np)[:, None, :]  # columns with a position
    pair = ok & usable & torch.from_numpy(valid)[:, :, None]
    pair &= idx[:, :, None] != torch.arange(n_loci)[None, None, :]
    d = torch.nan_to_num(d, nan=1.0).clamp(min=1e-3)
    if weights is None:
        w = d.pow(-power)
    else:
        wf = np.take_along_axis(np.asarray(weights, np.float32)[rows], order[:, :, None], 1)
        w = torch.nan_to_num(torch.from_numpy(wf), nan=0.0)
    w = w * pair
    w = w / w.sum((1, 2), keepdim=True).clamp(min=1e-12)
    gather = idx[..., None].expand(-1, -1, 3)  # (n, F, 3)
    var = torch.gather(x0, 1, gather).clone().requires_grad_(True)  # (n, F, 3)
    opt = torch.optim.Adam([var], lr=lr)
    with torch_threads(1):
        for _ in range(n_iter):
            x = x0.scatter(1, gather, var)  # (n, L, 3) free loci at their current positions
            dist = torch.sqrt(((var[:, :, None, :] - x[:, None, :, :]) ** 2).sum(-1) + 1e-9)  # (n, F, L)
            resid = dist - d
            obj = (w * (resid**2 if loss == "l2" else torch.sqrt(resid**2 + 1e-4))).sum()
            opt.zero_grad()
            obj.backward()
            opt.step()
    final = x0.scatter(1, gather, var.detach()).numpy()
    placed = (final.astype(np.float64) * unit).astype(np.float32)
    sub = out[rows]
    sub[free[rows]] = placed[free[rows]]
    out[rows] = sub
    return out
