"""The exact Gaussian posterior of missing spots: kriging under a fitted chain variogram.

For traces that are Gaussian with a chain variogram ``gamma(k) = nugget + a k**alpha`` per axis
(:func:`pointae.baselines.fit_chain_variogram`), the posterior of a missing spot given every visible
spot of its trace is Gaussian and known exactly (ordinary kriging over all visible loci,
:func:`gaussian_posterior`). ``evaluate-imputation`` reports its calibration and proper scores
beside pointae's (:mod:`pointae.impute.uncertainty`); :func:`gaussian_twin` draws such traces (the
"Gaussian twin" of a real file, ``benchmarks/study_oracle.py``) so that the posterior can be
checked against the truth.
"""

from __future__ import annotations

import numpy as np

from pointae.errors import PointaeError


def fbm_cov(variogram_row: np.ndarray, n_loci: int) -> np.ndarray:
    """Covariance ``(L, L)`` of the noise-free chain anchored before locus 0: ``gamma = a k**alpha``."""
    _, a, alpha = variogram_row
    t = np.arange(1, n_loci + 1, dtype=np.float64)
    return a * (t[:, None] ** alpha + t[None, :] ** alpha - np.abs(t[:, None] - t[None, :]) ** alpha)


def gaussian_twin(
    variogram: np.ndarray, n: int, n_loci: int, masks: np.ndarray | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian traces with a given chain variogram: fractional Brownian chain + white noise per axis.

    Parameters
    ----------
    variogram
        ``(3, 3)`` rows ``(nugget, a, alpha)`` per axis (:func:`pointae.baselines.fit_chain_variogram`).
    n, n_loci
        Number of traces and loci.
    masks
        Optional ``(M, n_loci)`` detection masks; each trace gets a randomly drawn one.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Noisy traces ``(n, n_loci, 3)`` float32 (NaN where ``masks`` say undetected) and the
        noise-free chain ``(n, n_loci, 3)`` float64.
    """
    vg = np.broadcast_to(np.asarray(variogram, np.float64), (3, 3))
    rng = np.random.default_rng(seed)
    clean = np.empty((n, n_loci, 3))
    for ax in range(3):
        chol = np.linalg.cholesky(fbm_cov(vg[ax], n_loci) + 1e-9 * np.eye(n_loci))
        clean[..., ax] = (chol @ rng.normal(size=(n_loci, n))).T
    noisy = clean + rng.normal(size=clean.shape) * np.sqrt(vg[:, 0])
    if masks is not None:
        masks = np.asarray(masks, bool)
        if masks.shape[1] != n_loci:
            raise PointaeError(f"masks have {masks.shape[1]} loci, traces {n_loci}")
        noisy[~masks[rng.integers(0, len(masks), n)]] = np.nan
    return noisy.astype(np.float32), clean


def gaussian_posterior(coords: np.ndarray, variogram: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact posterior of every missing spot given all visible spots, for Gaussian twin traces.

    Ordinary kriging (flat prior on each trace's position) of the *noisy* spot at each missing
    locus from every visible locus of its trace, per axis, under the variogram of
    :func:`gaussian_twin`: for such traces the posterior is Gaussian with this mean and sd.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Mean ``(N, L, 3)`` (visible loci copied) and sd ``(N, L, 3)`` (0 at visible loci).
    """
    vg = np.broadcast_to(np.asarray(variogram, np.float64), (3, 3))
    c = np.asarray(coords, np.float64)
    n_loci = c.shape[1]
    sep = np.abs(np.arange(n_loci)[:, None] - np.arange(n_loci)[None, :]).astype(np.float64)
    gam = [np.where(sep == 0, 0.0, vg[ax, 0] + vg[ax, 1] * sep ** vg[ax, 2]) for ax in range(3)]
    mean, sd = c.copy(), np.zeros_like(c)
    for i in range(c.shape[0]):
        vis = ~np.isnan(c[i, :, 0])
        o, h = np.flatnonzero(vis), np.flatnonzero(~vis)
        if h.size == 0 or o.size == 0:
            continue
        k = o.size
        for ax in range(3):
            a = np.ones((k + 1, k + 1))
            a[k, k] = 0.0
            a[:k, :k] = gam[ax][np.ix_(o, o)]
            b = np.ones((k + 1, h.size))
            b[:k] = gam[ax][np.ix_(o, h)]
            sol = np.linalg.solve(a, b)  # (k + 1, H): weights and the Lagrange multiplier
            w = sol[:k]
            mean[i, h, ax] = w.T @ c[i, o, ax]
            var = (w * b[:k]).sum(0) + sol[k]  # ordinary-kriging variance
            sd[i, h, ax] = np.sqrt(np.maximum(var, 0.0))
    return mean, sd
