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
from pointae.sim.noise import matching_noise, rms_displacement  # noqa: F401  (the study's API)


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
