"""Simulated traces with localisation noise matched to a real tracing file.

Simulated conformations are exact; experimental traces carry localisation scatter that dominates
the short-range increments. The noise model: per axis ``a``, ``real_a = c_a * sim_a + noise_a`` with
a scale ``c_a`` and a Gaussian sd ``s_a`` fitted so that the per-axis RMS displacements at chain
separations ``near`` and ``far`` equal the reference's (:func:`fit_axis_noise`; two numbers per
axis, observed spots only), optionally a two-scale mixture for poorly localised spots
(:func:`fit_noise_mixture`). :func:`matched_traces` simulates a data set with a reference file's
number of loci, noise and detection gaps: training data for imputers (``train_imputer`` with
simulated sources) and the oracle studies in ``benchmarks/study_oracle.py``.
"""

from __future__ import annotations

import numpy as np

from pointae.baselines import chain_msd
from pointae.errors import PointaeError


def axis_rms(coords: np.ndarray, k: int) -> np.ndarray:
    """Per-axis RMS displacement ``(3,)`` between loci ``k`` apart along the chain (NaN skipped)."""
    msd = chain_msd(coords, k)
    if np.isnan(msd).any():
        raise PointaeError(f"no pair of observed loci {k} apart")
    return np.sqrt(msd)


def fit_axis_noise(
    sim: np.ndarray, real: np.ndarray, near: int = 1, far: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """Per-axis scale and noise sd so that ``scale * sim + noise`` matches ``real`` at two separations.

    With ``R_k`` the reference's and ``S_k`` the simulation's per-axis RMS displacement,
    ``R_k^2 = c^2 S_k^2 + 2 s^2`` at ``k = near, far`` gives ``c^2 = (R_far^2 - R_near^2) /
    (S_far^2 - S_near^2)`` and ``s^2 = (R_near^2 - c^2 S_near^2) / 2`` (clipped at 0).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``scale`` and ``sd``, each ``(3,)``, in the reference's unit per simulation unit / in the
        reference's unit.
    """
    rn, rf = axis_rms(real, near), axis_rms(real, far)
    sn, sf = axis_rms(sim, near), axis_rms(sim, far)
    if np.any(rf <= rn) or np.any(sf <= sn):
        raise PointaeError("the data do not spread with chain separation on every axis; cannot fit noise")
    c2 = (rf**2 - rn**2) / (sf**2 - sn**2)
    s2 = np.maximum(rn**2 - c2 * sn**2, 0.0) / 2
    return np.sqrt(c2), np.sqrt(s2)


def noise(
    rng: np.random.Generator, shape: tuple, sd: np.ndarray, mix: tuple[float, float] = (0.0, 1.0)
) -> np.ndarray:
    """Gaussian localisation noise ``shape + (3,)`` with per-axis sd ``sd``, optionally a two-scale mixture.

    ``mix = (p, rho)``: a spot is "poorly localised" with probability ``p`` and then has ``rho``
    times the sd of the others; the two sds are normalised so that the mean noise variance per
    axis stays ``sd**2`` (what :func:`fit_axis_noise` identifies). ``(0, 1)`` = plain Gaussian.
    """
    p, rho = mix
    if not (0.0 <= p < 1.0 and rho >= 1.0):
        raise PointaeError(f"noise mixture needs 0 <= p < 1 and rho >= 1, got {mix}")
    small = 1.0 / np.sqrt(1.0 - p + p * rho**2)
    per_spot = np.where(rng.random(shape) < p, rho * small, small)
    return (
        rng.normal(0.0, 1.0, (*shape, 3)) * per_spot[..., None] * np.broadcast_to(np.asarray(sd, float), (3,))
    )


def fit_noise_mixture(
    clean: np.ndarray,
    real: np.ndarray,
    sd: np.ndarray,
    ps=(0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5),
    rhos=(1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0),
    quantiles=(0.1, 0.25, 0.5, 0.75, 0.9, 0.99),
    seed: int = 0,
) -> tuple[tuple[float, float], float]:
    """Grid-search the mixture ``(p, rho)`` of :func:`noise` (variance fixed by ``sd``).

    The criterion is the sum of squared log-ratios of the quantiles of the 3D distances between
    chain neighbours (k = 1) and between loci 8 apart, simulated (``clean`` + noise) vs ``real``
    (observed spots only). Returns the best ``(p, rho)`` and its criterion.
    """
    q = np.asarray(quantiles)

    def quants(c):
        return np.concatenate(
            [np.nanquantile(np.linalg.norm(c[:, k:] - c[:, :-k], axis=-1), q) for k in (1, 8)]
        )

    target = np.log(quants(np.asarray(real, np.float64)))
    best = ((0.0, 1.0), np.inf)
    for p in ps:
        for rho in rhos if p > 0 else (1.0,):
            c = clean + noise(np.random.default_rng(seed), clean.shape[:2], sd, (p, rho))
            err = float(((np.log(quants(c)) - target) ** 2).sum())
            if err < best[1]:
                best = ((float(p), float(rho)), err)
    return best


def matched_traces(like, n: int = 1600, seed: int = 0, preset: str = "wt", fit: dict | None = None):
    """Simulated traces in ``like``'s unit with the per-axis scale and mixture noise fitted to it.

    Parameters
    ----------
    like
        Reference :class:`~pointae.data.traces.Traces` (number of loci, noise fit, detection gaps:
        each simulated trace gets the gaps of a randomly drawn trace of ``like``).
    n, seed, preset
        Passed to :func:`pointae.sim.simulate`.
    fit
        ``{"scale", "sd", "mixture"}`` to reuse (e.g. from a training set); ``None`` = fit here.

    Returns
    -------
    (Traces, numpy.ndarray, dict)
        Noisy traces with gaps, the noise-free coordinates ``(n, L, 3)`` in ``like``'s unit, and
        the fit.
    """
    from pointae.sim import simulate

    sim = simulate(preset, n=n, n_loci=like.n_loci, seed=seed)
    raw = sim.coords.astype(np.float64)
    if fit is None:
        scale, sd = fit_axis_noise(raw, like.coords)
        mix, _ = fit_noise_mixture(raw * scale, like.coords, sd)
        fit = {"scale": scale, "sd": sd, "mixture": mix}
    clean = raw * fit["scale"]
    rng = np.random.default_rng(seed + 7919)
    noisy = clean + noise(rng, clean.shape[:2], fit["sd"], fit["mixture"])
    obs = ~np.isnan(np.asarray(like.coords)[..., 0])
    noisy[~obs[rng.integers(0, len(obs), n)]] = np.nan
    attrs = dict(sim.attrs, localisation_noise=str({k: np.asarray(v).tolist() for k, v in fit.items()}))
    return sim._replace(coords=noisy.astype(np.float32), attrs=attrs), clean, fit


def rms_displacement(coords: np.ndarray, k: int) -> float:
    """RMS per-axis displacement between loci ``k`` apart along the chain (NaN pairs skipped)."""
    c = np.asarray(coords, np.float64)
    d = c[:, k:] - c[:, :-k]  # (N, L - k, 3)
    ok = np.isfinite(d).all(-1)
    if not ok.any():
        raise PointaeError(f"no pair of observed loci {k} apart")
    return float(np.sqrt((d[ok] ** 2).mean()))


def matching_noise(sim: np.ndarray, real: np.ndarray, near: int = 1, far: int = 8) -> float:
    """Isotropic noise sd (``sim``'s unit) so that ``rms(far) / rms(near)`` of ``sim + noise`` equals
    ``real``'s (the one-number special case of :func:`fit_axis_noise`: ``c = 1``, one sd).

    Independent noise of sd ``s`` per axis adds ``2 s^2`` to every squared per-axis displacement,
    so ``s^2 = (S_far^2 - r^2 S_near^2) / (2 (r^2 - 1))`` with ``r`` the real ratio (0 when the
    simulation is already as flat as the data). Only the observed spots of ``real`` are used.
    """
    real_near, real_far = rms_displacement(real, near), rms_displacement(real, far)
    s_near, s_far = rms_displacement(sim, near), rms_displacement(sim, far)
    r = real_far / real_near if real_near > 0 else 0.0
    if r <= 1.0:
        raise PointaeError("the reference traces do not spread with chain separation; cannot match noise")
    return float(np.sqrt(max(s_far**2 - r**2 * s_near**2, 0.0) / (2 * (r**2 - 1))))
