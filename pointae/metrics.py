"""Map-quality metrics: errors on a pair mask, correlations, and Euclidean-ness of maps.

All pair metrics use the upper triangle (``i < j``) of the given pair mask, pooled over traces,
and skip pairs where prediction or target is not finite.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import stats


def _upper(n: int) -> np.ndarray:
    return np.triu(np.ones((n, n), dtype=bool), 1)


def map_metrics(
    pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None, scale: float = 1.0
) -> dict:
    """Errors and correlations of predicted vs true distances on a set of pairs.

    Parameters
    ----------
    pred, target
        ``(N, L, L)`` maps in normalised (scaled) units.
    mask
        ``(N, L, L)`` bool pairs to score (None: all pairs); intersected with ``i < j`` and with
        finite ``pred`` and ``target``.
    scale
        The dataset scale (data units per normalised unit) for the ``*_data`` errors.

    Returns
    -------
    dict
        ``n_pairs``, ``mae``, ``rmse`` (normalised units), ``mae_data``, ``rmse_data`` (data units),
        ``pearson``, ``spearman``; values are ``None`` when fewer than 2 pairs are selected.
    """
    pred = np.asarray(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    m = np.broadcast_to(_upper(pred.shape[-1]), pred.shape).copy()
    if mask is not None:
        m &= np.asarray(mask, dtype=bool)
    m &= np.isfinite(pred) & np.isfinite(target)
    p, t = pred[m], target[m]
    out: dict = {"n_pairs": int(p.size)}
    if p.size < 2:
        out.update(mae=None, rmse=None, mae_data=None, rmse_data=None, pearson=None, spearman=None)
        return out
    err = p - t
    mae, rmse = float(np.abs(err).mean()), float(np.sqrt((err**2).mean()))
    out.update(mae=mae, rmse=rmse, mae_data=mae * scale, rmse_data=rmse * scale)
    const = np.ptp(p) == 0 or np.ptp(t) == 0
    out["pearson"] = None if const else float(np.corrcoef(p, t)[0, 1])
    out["spearman"] = None if const else float(stats.spearmanr(p, t).statistic)
    return out


def triangle_violations(maps: np.ndarray, rtol: float = 1e-4, max_maps: int = 128, chunk: int = 8) -> float:
    """Fraction of triplets violating the triangle inequality ``d_ij <= d_ik + d_kj``.

    Counts triplets with ``i < j`` and ``k`` distinct from both, over finite entries; a violation
    is ``d_ij > d_ik + d_kj + rtol * mean(d)``. Euclidean maps give 0. At most ``max_maps`` maps
    (evenly spaced) are checked: the count is ``O(L^3)`` per map.

    Parameters
    ----------
    maps
        ``(N, L, L)``.
    """
    maps = np.asarray(maps, dtype=np.float32)
    if maps.shape[0] > max_maps:
        maps = maps[np.linspace(0, maps.shape[0] - 1, max_maps).round().astype(int)]
    n = maps.shape[-1]
    if maps.shape[0] == 0 or n < 3:
        return 0.0
    t = torch.from_numpy(maps)
    eye = torch.eye(n, dtype=torch.bool)
    valid = torch.ones(n, n, dtype=torch.bool).triu(1)[:, :, None] & ~eye[:, None, :] & ~eye[None, :, :]
    bad = total = 0
    with torch.no_grad():
        for s in range(0, t.shape[0], chunk):
            d = t[s : s + chunk]  # (b, L, L)
            finite = torch.isfinite(d)
            tol = rtol * torch.nanmean(torch.where(finite, d, torch.nan).flatten(1), 1)  # (b,)
            # via[b, i, j, k] = d[i, k] + d[k, j]; NaN compares False
            via = d[:, :, None, :] + d.transpose(1, 2)[:, None, :, :]  # (b, i, j, k)
            viol = (d[:, :, :, None] > via + tol[:, None, None, None]) & valid
            bad += int(viol.sum())
            if bool(finite.all()):
                total += int(valid.sum()) * d.shape[0]
            else:
                total += int((valid & torch.isfinite(d[:, :, :, None] + via)).sum())
    return bad / total if total else 0.0


def mds_coords(maps: torch.Tensor, dim: int = 3) -> torch.Tensor:
    """Classical MDS: ``(B, L, L)`` distance maps -> ``(B, L, dim)`` coordinates (float64)."""
    d2 = maps.to(torch.float64) ** 2
    n = d2.shape[-1]
    j = torch.eye(n, dtype=d2.dtype) - 1.0 / n
    g = -0.5 * j @ d2 @ j
    g = 0.5 * (g + g.transpose(-1, -2))
    lam, vec = torch.linalg.eigh(g)  # ascending
    lam, vec = lam[..., -dim:], vec[..., -dim:]  # (B, dim), (B, L, dim)
    return vec * lam.clamp(min=0).sqrt()[:, None, :]


def mds_error(maps: np.ndarray, dim: int = 3, chunk: int = 256) -> float:
    """MDS embedding error: embed each map in 3D by classical MDS, re-measure its distances and
    report the mean relative Frobenius error ``||D_mds - D|| / ||D||`` (upper triangle).

    Maps with non-finite entries are skipped. Euclidean maps of 3D points give ~0.
    """
    maps = np.asarray(maps, dtype=np.float64)
    keep = np.isfinite(maps).all(axis=(1, 2))
    maps = maps[keep]
    if maps.shape[0] == 0:
        return float("nan")
    errs = []
    iu = _upper(maps.shape[-1])
    for s in range(0, maps.shape[0], chunk):
        d = torch.from_numpy(maps[s : s + chunk])
        x = mds_coords(d, dim)
        dm = torch.cdist(x, x)
        num = ((dm - d) ** 2)[:, iu].sum(-1).sqrt()
        den = (d**2)[:, iu].sum(-1).sqrt().clamp(min=1e-12)
        errs.append((num / den).numpy())
    return float(np.concatenate(errs).mean())


def euclidean_metrics(maps: np.ndarray) -> dict:
    """``{"triangle_violation_fraction", "mds_error"}`` of a set of maps ``(N, L, L)``."""
    mds = mds_error(maps)
    return {
        "triangle_violation_fraction": triangle_violations(maps),
        "mds_error": None if math.isnan(mds) else mds,
    }


__all__ = ["map_metrics", "triangle_violations", "mds_error", "mds_coords", "euclidean_metrics"]
