"""How low can the imputation ratio go? Oracle imputers on simulated traces with matched noise.

On real traces the held-out protocol scores predictions against the *noisy* observed position of
each hidden locus, so part of every error is localisation scatter that no method can predict. On
simulated traces the noise-free position is known, which gives two oracles scored with exactly the
same protocol (:func:`pointae.impute.protocol.make_held_out` + :func:`~pointae.impute.protocol.score`):

- ``oracle_point``: each hidden locus placed at its noise-free position (the best a method that
  recovers the true structure can do with one 3D point per locus, up to a small hedge);
- ``oracle_map``: each hidden-to-observed distance predicted by the conditional median of the
  scored (noisy) distance given the noise-free hidden position and the observed spot, i.e. the
  minimiser of the expected absolute error. Since the hidden spot's noise is independent of
  everything a method sees, no predictor of distances can beat it in expectation (under the
  noise model): its ratio to linear interpolation is a lower bound for the simulated data.

The noise model: per axis ``a``, ``real_a = c_a * sim_a + noise_a`` with a scale ``c_a`` and a
Gaussian sd ``s_a`` fitted so that the per-axis RMS displacements at chain separations ``near``
and ``far`` equal the reference's (:func:`fit_axis_noise`; two numbers per axis, no hidden locus
used). The isotropic variant of :func:`pointae.impute.pretrain.matching_noise` is the special
case ``c = 1``, one sd for all axes.
"""

from __future__ import annotations

import numpy as np

from pointae.baselines import interpolate_missing
from pointae.errors import PointaeError
from pointae.impute.protocol import bootstrap, eligible, make_held_out, score


def axis_rms(coords: np.ndarray, k: int) -> np.ndarray:
    """Per-axis RMS displacement ``(3,)`` between loci ``k`` apart along the chain (NaN skipped)."""
    c = np.asarray(coords, np.float64)
    d = c[:, k:] - c[:, :-k]
    ok = np.isfinite(d).all(-1)
    if not ok.any():
        raise PointaeError(f"no pair of observed loci {k} apart")
    return np.sqrt((d[ok] ** 2).mean(0))


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


def oracle_maps(
    held,
    clean: np.ndarray,
    sd: np.ndarray,
    mix: tuple[float, float] = (0.0, 1.0),
    n_draws: int = 401,
    seed: int = 0,
) -> np.ndarray:
    """Conditional-median distances from the noise-free hidden positions to the observed spots.

    Parameters
    ----------
    held
        :class:`~pointae.impute.protocol.HeldOut` on noisy traces.
    clean
        ``(N, L, 3)`` noise-free positions of ``held``'s traces (same rows).
    sd, mix
        The noise model (:func:`noise`).
    n_draws
        Monte Carlo draws of the hidden spot's noise (the same draws for every pair).

    Returns
    -------
    numpy.ndarray
        ``(N, L, L)``: hidden x observed pairs hold the oracle median; the other entries hold the
        observed distances (never scored).
    """
    e = noise(np.random.default_rng(seed), (n_draws,), sd, mix)
    ee = (e * e).sum(-1)
    mid = n_draws // 2
    obs = held.observed
    filled = np.where(np.isnan(held.coords), clean, held.coords).astype(np.float64)
    out = np.linalg.norm(filled[:, :, None] - filled[:, None], axis=-1)
    for i in range(len(held)):
        h = np.flatnonzero(held.hidden[i])
        o = np.flatnonzero(obs[i])
        if h.size == 0:
            continue
        v = clean[i, h][:, None, :] - held.coords[i, o][None, :, :]  # (H, O, 3)
        d2 = (v * v).sum(-1)[..., None] + 2.0 * (v @ e.T) + ee  # (H, O, M) squared distances
        med = np.partition(d2, mid, axis=-1)[..., mid]  # the median (n_draws odd), monotone in d
        out[i, h[:, None], o[None, :]] = np.sqrt(np.maximum(med, 0.0))
    return out


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


def oracle_experiment(
    clean: np.ndarray,
    sd: np.ndarray,
    mix: tuple[float, float] = (0.0, 1.0),
    masks: np.ndarray | None = None,
    seeds: int = 3,
    hide: float = 0.1,
    noise_seed: int = 0,
    n_draws: int = 401,
    n_boot: int = 200,
) -> dict:
    """Linear interpolation vs the two oracles on ``clean`` traces plus Gaussian noise ``sd``.

    Parameters
    ----------
    clean
        ``(N, L, 3)`` noise-free complete traces (already scaled to the reference unit).
    sd, mix
        The noise model (:func:`noise`): per-axis sd ``(3,)`` (or a scalar) and mixture.
    masks
        Optional ``(M, L)`` bool detection masks (e.g. of the real file's eligible traces); trace
        ``i`` gets mask ``i mod M`` after a seeded shuffle, so the simulated gaps look like real ones.
    seeds
        Hiding seeds of the protocol (0 .. seeds-1), pooled per method.

    Returns
    -------
    dict
        Per method (``linear``, ``oracle_point``, ``oracle_map``): ``mae`` (mean over seeds),
        ``ratio`` to linear and the per-seed bootstrap ``ratio_ci``; plus ``n_traces``.
    """
    clean = np.asarray(clean, np.float64)
    sd = np.broadcast_to(np.asarray(sd, np.float64), (3,))
    rng = np.random.default_rng(noise_seed)
    noisy = clean + noise(rng, clean.shape[:2], sd, mix)
    if masks is not None:
        masks = np.asarray(masks, bool)
        if masks.shape[1] != clean.shape[1]:
            raise PointaeError(f"masks have {masks.shape[1]} loci, traces {clean.shape[1]}")
        masks = masks[eligible(masks)]
        if masks.shape[0] == 0:
            raise PointaeError("no eligible detection mask")
        pick = rng.permutation(np.resize(np.arange(masks.shape[0]), clean.shape[0]))
        noisy[~masks[pick]] = np.nan
    out: dict = {
        k: {"mae": [], "ratio": [], "ratio_ci": []} for k in ("linear", "oracle_point", "oracle_map")
    }
    for s in range(seeds):
        held = make_held_out(noisy, hide=hide, seed=s)
        cl = clean[held.index]
        point = np.where(held.hidden[..., None], cl, held.coords)
        scores = {
            "linear": score(held, interpolate_missing(held.coords)),
            "oracle_point": score(held, pred_coords=point),
            "oracle_map": score(held, pred_maps=oracle_maps(held, cl, sd, mix, n_draws=n_draws, seed=s)),
        }
        ci = bootstrap(scores, reference="linear", n_boot=n_boot, seed=s)
        for k, sc in scores.items():
            out[k]["mae"].append(sc.summary()["mae"])
            out[k]["ratio"].append(ci[k]["ratio"])
            out[k]["ratio_ci"].append((ci[k]["ratio_lo"], ci[k]["ratio_hi"]))
        out["n_traces"] = len(held)
    for k in ("linear", "oracle_point", "oracle_map"):
        out[k]["mae"] = float(np.mean(out[k]["mae"]))
        out[k]["ratio"] = float(np.mean(out[k]["ratio"]))
    return out


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
