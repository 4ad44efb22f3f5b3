"""Simulated training traces for pretraining an imputer (a research study; ``pointae.sim`` + noise).

Simulated conformations are exact; experimental traces carry localisation scatter that dominates
the short-range increments (in the IMR90 file the RMS displacement between consecutive loci is
almost as large as between loci 8 apart). :func:`simulated_training_traces` therefore adds
isotropic Gaussian noise to the simulated coordinates with a standard deviation chosen so that the
ratio of RMS displacements at chain separations ``far`` and ``near`` matches the one measured on
the observed spots of a reference data set (two summary numbers; no hidden locus is used). The
result is in the simulator's unit (nm); the imputer rescales every data set by its own median
neighbour distance, so the absolute scale does not need to match.
"""

from __future__ import annotations

import numpy as np

from pointae.data.traces import Traces
from pointae.errors import PointaeError


def rms_displacement(coords: np.ndarray, k: int) -> float:
    """Per-axis RMS displacement between loci ``k`` apart along the chain (NaN pairs skipped)."""
    c = np.asarray(coords, np.float64)
    d = c[:, k:] - c[:, :-k]  # (N, L - k, 3)
    ok = np.isfinite(d).all(-1)
    if not ok.any():
        raise PointaeError(f"no pair of observed loci {k} apart")
    return float(np.sqrt((d[ok] ** 2).mean()))


def matching_noise(sim: np.ndarray, real: np.ndarray, near: int = 1, far: int = 8) -> float:
    """Noise sd (sim units) so that ``rms(far) / rms(near)`` of ``sim + noise`` equals ``real``'s.

    Independent noise of sd ``s`` per axis adds ``2 s^2`` to every squared per-axis displacement,
    so ``s^2 = (S_far^2 - r^2 S_near^2) / (2 (r^2 - 1))`` with ``r`` the real ratio (0 when the
    simulation is already as flat as the data).
    """
    real_near, real_far = rms_displacement(real, near), rms_displacement(real, far)
    s_near, s_far = rms_displacement(sim, near), rms_displacement(sim, far)
    r = real_far / real_near if real_near > 0 else 0.0
    if r <= 1.0:
        raise PointaeError("the reference data do not spread with chain separation; cannot match noise")
    return float(np.sqrt(max(s_far**2 - r**2 * s_near**2, 0.0) / (2 * (r**2 - 1))))


def simulated_training_traces(
    like: Traces, n: int = 2000, seed: int = 0, preset: str = "wt", noise: float | None = None
) -> tuple[Traces, float]:
    """Simulate ``n`` traces with ``like``'s number of loci and matched localisation noise.

    Parameters
    ----------
    like
        Reference data: its number of loci and (when ``noise`` is None) the noise level.
    n, seed, preset
        Passed to :func:`pointae.sim.simulate`.
    noise
        Noise sd in nm; ``None`` = :func:`matching_noise` against ``like``.

    Returns
    -------
    (Traces, float)
        Noisy complete traces (nm) and the noise sd used.
    """
    from pointae.sim import simulate

    sim = simulate(preset, n=n, n_loci=like.n_loci, seed=seed)
    sigma = matching_noise(sim.coords, like.coords) if noise is None else float(noise)
    rng = np.random.default_rng(seed + 7919)
    noisy = (sim.coords + rng.normal(0.0, sigma, sim.coords.shape)).astype(np.float32)
    attrs = dict(sim.attrs, localisation_noise_nm=sigma)
    return sim._replace(coords=noisy, attrs=attrs), sigma
