"""Population baselines for imputation (linear interpolation is
:func:`pointae.baselines.interpolate_missing`).

- :func:`population_median_map`: the median distance of every locus pair over a pool of traces;
  predicts every missing pair by that median (ignores the trace's own structure).
- :func:`knn_maps`: k nearest traces of the pool, compared on the pairs both observe; a missing
  pair is predicted by the median of the neighbours' distances for it.

Both predict distance maps; :func:`pointae.impute.place.place_loci` turns a map into coordinates.
"""

from __future__ import annotations

import warnings

import numpy as np

from pointae.data.transforms import distance_maps
from pointae.errors import PointaeError


def population_median_map(pool: np.ndarray) -> np.ndarray:
    """Median distance map of a pool of traces.

    Parameters
    ----------
    pool
        ``(P, L, 3)`` coordinates, NaN where missing.

    Returns
    -------
    numpy.ndarray
        ``(L, L)`` float32: symmetric, zero diagonal; NaN for pairs no pool trace observes.
    """
    maps = distance_maps(pool)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(maps, axis=0)
    med = 0.5 * (med + med.T)
    np.fill_diagonal(med, 0.0)
    return med.astype(np.float32)


def fill_maps(coords: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Observed distances of ``coords`` ``(N, L, 3)``, with missing pairs taken from ``predicted``.

    ``predicted`` is ``(L, L)`` (one map for all) or ``(N, L, L)``. Returns ``(N, L, L)`` float32.
    """
    maps = distance_maps(coords)
    pred = np.broadcast_to(predicted, maps.shape)
    return np.where(np.isnan(maps), pred, maps).astype(np.float32)


def knn_maps(
    coords: np.ndarray,
    pool: np.ndarray,
    k: int = 20,
    exclude_self: bool = False,
    chunk: int = 256,
) -> np.ndarray:
    """k-nearest-neighbour imputation of distance maps across traces.

    The dissimilarity of a query and a pool trace is the root-mean-square difference of their
    log distances over the pairs both observe (computed with three matrix products). A pair the
    query misses is predicted by the median of its ``k`` nearest pool traces that observe it
    (falling back to the pool median when none of them does).

    Parameters
    ----------
    coords
        ``(N, L, 3)`` query traces, NaN where missing.
    pool
        ``(P, L, 3)`` reference traces.
    k
        Number of neighbours.
    exclude_self
        When the query set *is* the pool, skip each trace's own row.
    chunk
        Queries processed at once (bounds memory).

    Returns
    -------
    numpy.ndarray
        ``(N, L, L)`` float32 maps: observed pairs kept, missing ones predicted.
    """
    q_maps = distance_maps(coords)
    p_maps = distance_maps(pool)
    n, n_loci = q_maps.shape[:2]
    if p_maps.shape[1] != n_loci:
        raise PointaeError(f"kNN pool has {p_maps.shape[1]} loci, queries have {n_loci}")
    iu = np.triu_indices(n_loci, 1)
    qv = np.log1p(q_maps[:, iu[0], iu[1]].astype(np.float64))  # (N, P) upper triangle
    pv = np.log1p(p_maps[:, iu[0], iu[1]].astype(np.float64))
    qm, pm = np.isfinite(qv), np.isfinite(pv)
    q0, p0 = np.where(qm, qv, 0.0), np.where(pm, pv, 0.0)
    qmf, pmf = qm.astype(np.float64), pm.astype(np.float64)
    fallback = population_median_map(pool)
    out = fill_maps(coords, fallback)
    k = max(1, min(k, p_maps.shape[0] - int(exclude_self)))
    for s in range(0, n, chunk):
        sl = slice(s, min(n, s + chunk))
        cnt = qmf[sl] @ pmf.T  # (c, P) shared pairs
        ss = (q0[sl] ** 2) @ pmf.T - 2.0 * q0[sl] @ p0.T + qmf[sl] @ (p0**2).T
        dis = np.sqrt(np.maximum(ss, 0.0) / np.maximum(cnt, 1.0))
        dis[cnt < 3] = np.inf
        if exclude_self:
            rows = np.arange(sl.start, sl.stop)
            dis[np.arange(len(rows)), rows] = np.inf
        nb = np.argpartition(dis, k - 1, axis=1)[:, :k]  # (c, k)
        for j, i in enumerate(range(sl.start, sl.stop)):
            miss = np.isnan(q_maps[i])
            if not miss.any():
                continue
            neigh = p_maps[nb[j]][:, miss]  # (k, M)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                med = np.nanmedian(neigh, axis=0)
            out[i][miss] = np.where(np.isnan(med), out[i][miss], med)
    out = 0.5 * (out + np.swapaxes(out, 1, 2))
    idx = np.arange(n_loci)
    out[:, idx, idx] = 0.0
    return out.astype(np.float32)
