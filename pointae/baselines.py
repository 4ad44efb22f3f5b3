"""Honest baselines that every model is compared against.

- :func:`interpolate_missing`: linear interpolation of missing loci along the chain (what
  biologists do today), constant extrapolation beyond the first/last observed locus.
- :func:`smooth_missing`: a robust local-linear fit along the chain over a few observed neighbours
  on each side (Huber-reweighted), a stronger chain-only baseline when spots carry localisation
  noise: it averages over more than the two adjacent loci and down-weights a scattered neighbour.
- :func:`krige_missing`: ordinary kriging along the chain (the best *linear* chain-only predictor)
  with a power-law variogram plus nugget (localisation noise) fitted to the data themselves by
  :func:`fit_chain_variogram`.
- :func:`detect_outliers_neighbour`: the neighbour rule (a locus far from both chain neighbours is
  a mislocalised spot); :func:`clean_neighbour_rule` removes such loci and interpolates them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pointae.errors import PointaeError


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


def _chain_window(observed: np.ndarray, i: int, half_window: int) -> np.ndarray:
    """Observed loci within ``half_window`` positions of locus ``i`` (at least the two nearest)."""
    j = observed[np.abs(observed - i) <= half_window]
    if j.size < 2:
        j = observed[np.argsort(np.abs(observed - i), kind="stable")[:2]]
    return j


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
            j = _chain_window(observed, i, half_window)
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


def chain_msd(coords: np.ndarray, k: int) -> np.ndarray:
    """Per-axis mean squared displacement ``(3,)`` between observed loci ``k`` apart along the chain.

    ``coords`` is ``(N, L, 3)`` or ``(L, 3)`` with NaN where missing; NaN where no pair is observed.
    """
    c = np.asarray(coords, np.float64)
    d = c[..., k:, :] - c[..., :-k, :]
    d = d[np.isfinite(d).all(-1)]
    return (d**2).mean(0) if len(d) else np.full(3, np.nan)


def fit_chain_variogram(coords: np.ndarray, max_sep: int = 16, n_alpha: int = 190) -> np.ndarray:
    """Per-axis semivariogram along the chain, ``gamma(k) = nugget + a k**alpha``, fitted to the data.

    The empirical semivariance ``gamma(k) = E[(x_{i+k} - x_i)^2] / 2`` is taken per axis over all
    observed pairs ``k = 1 .. max_sep`` loci apart; ``nugget >= 0`` (the variance of independent
    per-spot localisation noise), ``a > 0`` and ``0 < alpha < 2`` (a valid variogram: fractional
    Brownian motion plus white noise) are fitted by least squares (``alpha`` on a grid, the two
    linear coefficients by non-negative least squares).

    Parameters
    ----------
    coords
        ``(N, L, 3)`` (or ``(L, 3)``), NaN where missing.

    Returns
    -------
    numpy.ndarray
        ``(3, 3)``: one row ``(nugget, a, alpha)`` per axis, in squared data units.
    """
    from scipy.optimize import nnls

    c = np.asarray(coords, np.float64)
    c = c[None] if c.ndim == 2 else c
    ks = np.arange(1, min(max_sep, c.shape[1] - 1) + 1)
    if ks.size < 3:
        raise PointaeError(f"fitting a chain variogram needs traces of at least 4 loci, got {c.shape[1]}")
    gam = np.stack([chain_msd(c, k) / 2 for k in ks])
    keep = np.isfinite(gam[:, 0])
    if keep.sum() < 3:
        raise PointaeError("fitting a chain variogram needs observed pairs at 3 or more chain separations")
    ks, gam = ks[keep].astype(np.float64), gam[keep]
    out = np.zeros((3, 3))
    for ax in range(3):
        best = (np.inf, None)
        for alpha in np.linspace(0.01, 1.99, n_alpha):
            design = np.stack([np.ones_like(ks), ks**alpha], 1)
            coef, res = nnls(design, gam[:, ax])
            if coef[1] > 0 and res < best[0]:
                best = (res, (coef[0], coef[1], alpha))
        if best[1] is None:  # no spread with separation on this axis: pure nugget
            best = (0.0, (float(gam[:, ax].mean()), 1e-12, 1.0))
        out[ax] = best[1]
    return out


def krige_missing(
    coords: np.ndarray, variogram: np.ndarray | None = None, half_window: int = 8
) -> np.ndarray:
    """Fill missing loci by ordinary kriging along the chain index, per axis.

    Each missing locus ``i`` is predicted as ``sum_j w_j x_j`` over the observed loci within
    ``half_window`` positions (at least the two nearest), with weights summing to one that
    minimise the prediction variance under the variogram (the best linear unbiased predictor of
    the *observed* spot at ``i``, noise included). With ``alpha = 1`` and no nugget (a Brownian
    chain observed exactly) this is linear interpolation between the two flanking observed loci;
    a nugget spreads the weights over more neighbours. Linear, so not robust to a mislocalised
    neighbour (compare :func:`smooth_missing`).

    Parameters
    ----------
    coords
        ``(N, L, 3)`` or ``(L, 3)``, NaN where missing.
    variogram
        ``(3, 3)`` rows ``(nugget, a, alpha)`` per axis (or ``(3,)`` for all axes); default:
        :func:`fit_chain_variogram` on ``coords`` itself.
    half_window
        Observed neighbours used on each side (loci).

    Returns
    -------
    numpy.ndarray
        Same shape, float32; observed loci unchanged. A trace with no observed locus stays NaN.
    """
    vg = fit_chain_variogram(coords) if variogram is None else np.asarray(variogram, np.float64)
    vg = np.broadcast_to(vg, (3, 3))

    def gamma(k: np.ndarray) -> np.ndarray:  # (3, ...) per axis; 0 at k = 0 (same spot)
        k = np.abs(k).astype(np.float64)
        g = vg[:, 0, None, None] + vg[:, 1, None, None] * k[None] ** vg[:, 2, None, None]
        return np.where(k[None] == 0, 0.0, g)

    def fill(trace: np.ndarray, obs: np.ndarray) -> np.ndarray:
        out = trace.copy()
        observed = np.flatnonzero(obs)
        for i in np.flatnonzero(~obs):
            j = _chain_window(observed, i, half_window)
            n = j.size
            a = np.ones((3, n + 1, n + 1))
            a[:, n, n] = 0.0
            a[:, :n, :n] = gamma(j[:, None] - j[None, :])
            b = np.ones((3, n + 1))
            b[:, :n] = gamma((j - i)[None, :])[:, 0]
            w = np.linalg.solve(a, b[..., None])[:, :n, 0]  # (3, n)
            out[i] = (w * trace[j].astype(np.float64).T).sum(1)
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


# ------------------------------------------------------------------ PCA of distance maps
def upper_triangle_features(maps: np.ndarray) -> np.ndarray:
    """``(N, L, L)`` maps -> ``(N, L(L-1)/2)`` strictly-upper-triangle vectors (float32)."""
    maps = np.asarray(maps)
    n_loci = maps.shape[-1]
    iu = np.triu_indices(n_loci, k=1)
    return maps[:, iu[0], iu[1]].astype(np.float32)


_LOG_FLOOR = 1e-3  # distances below 1/1000 of the scale are clipped before the log


@dataclass
class DistancePCA:
    """The baseline representation: PCA of the upper-triangle distance vector.

    Missing loci are first filled by linear interpolation along the chain (the standard practice;
    :func:`pointae.baselines.interpolate_missing`), distances are divided by ``scale`` and any pair
    still missing takes the training mean. Fitted incrementally so it streams over large inputs.

    Parameters
    ----------
    n_components
        Number of components (use the model's latent size for a fair comparison).
    scale
        Length unit the distances are divided by (e.g. the median neighbour distance).
    log
        PCA of ``log(distance / scale)`` instead (scale-relative: a contact that halves a short
        distance weighs as much as halving a long one). :meth:`inverse_maps` undoes the log.
    """

    n_components: int = 16
    scale: float = 1.0
    log: bool = False

    def __post_init__(self) -> None:
        from sklearn.decomposition import IncrementalPCA

        self._pca = IncrementalPCA(n_components=self.n_components)
        self._mean: np.ndarray | None = None
        self._count = 0
        self._pending: list[np.ndarray] = []
        self.fitted = False

    def features(self, coords: np.ndarray) -> np.ndarray:
        """Coordinates ``(N, L, 3)`` -> features ``(N, L(L-1)/2)`` with NaN where still missing."""
        from pointae.data.transforms import distance_maps

        filled = interpolate_missing(np.asarray(coords, dtype=np.float32))
        x = upper_triangle_features(distance_maps(filled)) / np.float32(self.scale)
        if self.log:
            x = np.log(np.maximum(x, np.float32(_LOG_FLOOR)))
        return x

    def _fill(self, x: np.ndarray) -> np.ndarray:
        bad = ~np.isfinite(x)
        if bad.any():
            x = x.copy()
            x[bad] = np.broadcast_to(self._mean, x.shape)[bad]
        return x

    def partial_fit(self, coords: np.ndarray) -> DistancePCA:
        """Update with a batch of traces ``(B, L, 3)``; batches smaller than ``n_components`` are pooled."""
        x = self.features(coords)
        s = np.nansum(x, 0)
        c = np.isfinite(x).sum(0)
        if self._mean is None:
            self._sum, self._cnt = s.astype(np.float64), c.astype(np.int64)
        else:
            self._sum += s
            self._cnt += c
        self._mean = (self._sum / np.maximum(self._cnt, 1)).astype(np.float32)
        self._pending.append(x)
        pooled = sum(len(p) for p in self._pending)
        if pooled >= max(self.n_components, 256):
            self._pca.partial_fit(self._fill(np.concatenate(self._pending)))
            self._pending = []
            self.fitted = True
        return self

    def finish(self) -> DistancePCA:
        """Flush pooled batches (call after the last :meth:`partial_fit`)."""
        if self._pending:
            x = self._fill(np.concatenate(self._pending))
            if not self.fitted and len(x) < self.n_components:
                raise PointaeError(f"PCA baseline needs at least {self.n_components} traces, got {len(x)}")
            if len(x) >= self.n_components:
                self._pca.partial_fit(x)
            self._pending = []
            self.fitted = True
        return self

    def fit(self, coords: np.ndarray) -> DistancePCA:
        """Fit on all traces ``(N, L, 3)`` at once."""
        return self.partial_fit(coords).finish()

    def transform(self, coords: np.ndarray) -> np.ndarray:
        """``(B, L, 3)`` -> ``(B, n_components)`` float32."""
        if not self.fitted:
            raise PointaeError("DistancePCA: call fit() or partial_fit()+finish() first")
        return self._pca.transform(self._fill(self.features(coords))).astype(np.float32)

    def inverse_maps(self, codes: np.ndarray) -> np.ndarray:
        """Codes ``(B, n_components)`` -> reconstructed maps ``(B, L, L)`` in the data's unit."""
        v = self._pca.inverse_transform(np.asarray(codes, dtype=np.float64))
        v = (np.exp(v) if self.log else v) * self.scale
        m = len(self._mean)
        n_loci = int(round((1 + np.sqrt(1 + 8 * m)) / 2))
        iu = np.triu_indices(n_loci, k=1)
        out = np.zeros((len(v), n_loci, n_loci), np.float32)
        out[:, iu[0], iu[1]] = np.maximum(v, 0.0)
        return out + out.transpose(0, 2, 1)

    @property
    def explained_variance_ratio(self) -> float:
        """Total fraction of variance the components explain."""
        return float(np.sum(self._pca.explained_variance_ratio_))


# ------------------------------------------------------------------------------------ figures' helpers
