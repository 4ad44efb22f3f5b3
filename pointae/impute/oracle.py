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

from pointae.baselines import chain_msd, interpolate_missing
from pointae.errors import PointaeError
from pointae.impute.protocol import bootstrap, eligible, make_held_out, score


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

    def methods(held, s):
        cl = clean[held.index]
        point = np.where(held.hidden[..., None], cl, held.coords)
        return {
            "oracle_point": score(held, pred_coords=point),
            "oracle_map": score(held, pred_maps=oracle_maps(held, cl, sd, mix, n_draws=n_draws, seed=s)),
        }

    return _protocol_vs_linear(noisy, methods, seeds=seeds, hide=hide, n_boot=n_boot)


def _protocol_vs_linear(noisy: np.ndarray, methods, seeds: int, hide: float, n_boot: int) -> dict:
    """Run the held-out protocol on ``noisy`` with hiding seeds ``0 .. seeds-1``, against linear.

    ``methods(held, seed) -> {name: Scores}`` scores the methods on one masking; linear
    interpolation is added as ``linear`` and is the reference of the bootstrap (per seed).

    Returns
    -------
    dict
        Per method ``{"mae", "ratio"}`` (means over seeds) and ``ratio_ci`` (one ``(lo, hi)`` per
        seed); ``n_traces``.
    """
    out: dict = {}
    for s in range(seeds):
        held = make_held_out(noisy, hide=hide, seed=s)
        scores = {"linear": score(held, interpolate_missing(held.coords)), **methods(held, s)}
        ci = bootstrap(scores, reference="linear", n_boot=n_boot, seed=s)
        for k, sc in scores.items():
            row = out.setdefault(k, {"mae": [], "ratio": [], "ratio_ci": []})
            row["mae"].append(sc.summary()["mae"])
            row["ratio"].append(ci[k]["ratio"])
            row["ratio_ci"].append((ci[k]["ratio_lo"], ci[k]["ratio_hi"]))
        out["n_traces"] = len(held)
    for k, row in out.items():
        if k != "n_traces":
            row["mae"], row["ratio"] = float(np.mean(row["mae"])), float(np.mean(row["ratio"]))
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


# ----------------------------------------------------------------------------- Gaussian twin
# A model-free counterpart of the oracles above: traces with exactly the second-order statistics
# of the real file (its fitted chain variogram, its detection gaps) but Gaussian. For Gaussian
# traces the posterior of a hidden spot given the visible ones is Gaussian and known exactly
# (ordinary kriging over *all* visible loci), so the Bayes-optimal distance predictor can be
# computed: no method, 3D or not, can beat it in expectation on such data.


def _fbm_cov(variogram_row: np.ndarray, n_loci: int) -> np.ndarray:
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
        chol = np.linalg.cholesky(_fbm_cov(vg[ax], n_loci) + 1e-9 * np.eye(n_loci))
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


def bayes_maps(
    held, variogram: np.ndarray, n_draws: int = 401, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Bayes-optimal predictions on Gaussian twin traces: posterior means and conditional-median maps.

    For each hidden spot and each visible spot, the median of the distance over the hidden spot's
    exact posterior (:func:`gaussian_posterior`, Monte Carlo with ``n_draws`` common draws)
    minimises the expected absolute error: its protocol score is a lower bound for any predictor
    of those distances on Gaussian traces with this variogram.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``(N, L, 3)`` posterior means (a 3D point per hidden locus) and ``(N, L, L)`` maps whose
        hidden x visible entries hold the conditional medians (the rest: distances of the means).
    """
    mean, sd = gaussian_posterior(held.coords, variogram)
    e = np.random.default_rng(seed).normal(size=(n_draws, 3))
    maps = np.linalg.norm(mean[:, :, None] - mean[:, None], axis=-1)
    vis = held.observed
    for i in range(len(held)):
        h, o = np.flatnonzero(held.hidden[i]), np.flatnonzero(vis[i])
        if h.size == 0 or o.size == 0:
            continue
        draws = mean[i, h][:, None, :] + e[None] * sd[i, h][:, None, :]  # (H, M, 3)
        d = np.linalg.norm(draws[:, :, None, :] - held.coords[i, o][None, None].astype(np.float64), axis=-1)
        med = np.median(d, axis=1)  # (H, O)
        maps[i][np.ix_(h, o)] = med
        maps[i][np.ix_(o, h)] = med.T
    return mean, maps


def bayes_points(
    held,
    variogram: np.ndarray,
    init: np.ndarray | None = None,
    n_draws: int = 101,
    steps: int = 150,
    seed: int = 0,
    chunk: int = 512,
) -> np.ndarray:
    """The best single 3D point per hidden locus on Gaussian twin traces (numerically).

    Minimises, for each hidden locus separately, the expected protocol loss of one point ``x``,
    ``E sum_o | |x - y_o| - |P - y_o| |`` over the visible spots ``y_o``, with ``P`` drawn from the
    exact posterior of the hidden spot (:func:`gaussian_posterior`; ``n_draws`` Monte Carlo
    draws). Adam with a cosine schedule, started from the posterior mean and (if given) from
    ``init``; the better of the two per locus is kept. The objective is not convex in ``x``, so
    this is the best point found, not a proven optimum: its score is reachable by a 3D method
    that knew the posterior exactly.

    Returns
    -------
    numpy.ndarray
        ``(N, L, 3)`` float64: visible loci copied, hidden loci at the chosen points.
    """
    import torch

    mean, sd = gaussian_posterior(held.coords, variogram)
    e = np.random.default_rng(seed).normal(size=(n_draws, 3))
    vis = held.observed
    rows, hs = np.nonzero(held.hidden)
    out = mean.copy()
    for s in range(0, rows.size, chunk):
        r, h = rows[s : s + chunk], hs[s : s + chunk]
        y = np.nan_to_num(np.asarray(held.coords, np.float64)[r])  # (K, L, 3)
        draws = mean[r, h][:, None, :] + e[None] * sd[r, h][:, None, :]  # (K, M, 3)
        d_true = np.linalg.norm(draws[:, :, None, :] - y[:, None], axis=-1)  # (K, M, L)
        dt = torch.from_numpy(np.ascontiguousarray(d_true.transpose(0, 2, 1)))  # (K, L, M)
        yt, ok = torch.from_numpy(y), torch.from_numpy(vis[r].astype(np.float64))
        step = 0.05 * (float(np.median(sd[r, h])) + 1e-9)

        def loss(x, yt=yt, dt=dt, ok=ok):
            d = torch.linalg.norm(x[:, None, :] - yt, dim=-1)  # (K, L)
            return ((d[..., None] - dt).abs().mean(-1) * ok).sum(-1)  # (K,)

        best_x, best_f = None, None
        for x0 in [mean[r, h]] + ([np.asarray(init, np.float64)[r, h]] if init is not None else []):
            x = torch.tensor(x0, requires_grad=True)
            opt = torch.optim.Adam([x], lr=step)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
            for _ in range(steps):
                opt.zero_grad()
                loss(x).sum().backward()
                opt.step()
                sched.step()
            with torch.no_grad():
                f = loss(x).numpy()
            xv = x.detach().numpy()
            if best_x is None:
                best_x, best_f = xv, f
            else:
                better = f < best_f
                best_x[better], best_f[better] = xv[better], f[better]
        out[r, h] = best_x
    return out


def gaussian_twin_experiment(
    real: np.ndarray,
    n: int = 2000,
    seeds: int = 2,
    nugget_scales=(1.0,),
    hide: float = 0.1,
    n_draws: int = 401,
    n_boot: int = 200,
    seed: int = 0,
    points: bool = False,
) -> dict:
    """Linear, kriging and the Bayes-optimal predictors on Gaussian twins of ``real``.

    The chain variogram of ``real`` (``(N, L, 3)``, NaN = undetected) is fitted
    (:func:`pointae.baselines.fit_chain_variogram`); for each factor ``f`` in ``nugget_scales`` the
    nugget is multiplied by ``f`` and ``a`` adjusted so that the neighbour semivariance
    ``gamma(1)`` stays that of the data (how much of it is scatter is the least certain part of
    the fit). ``n`` twin traces get the real file's eligible detection masks and the held-out
    protocol is run with hiding seeds ``0 .. seeds-1``.

    Returns
    -------
    dict
        ``variogram`` (the fit) and per factor: ``linear_mae`` and, as ratios to linear,
        ``kriging`` (window 8, the package's baseline), ``bayes_point`` (posterior means),
        ``bayes_map`` (conditional medians: the bound for any predictor), ``bayes_map_3d`` (that
        map turned into one 3D point per locus by the package's stress placement) and with
        ``points`` ``bayes_point_3d`` (:func:`bayes_points`: the best single 3D point found for
        the exact posterior), each with the range of the per-seed bootstrap CIs;
        ``twin_variogram`` (refitted on the twin).
    """
    from pointae.baselines import fit_chain_variogram, krige_missing
    from pointae.impute.place import place_loci

    real = np.asarray(real, np.float64)
    vg = fit_chain_variogram(real)
    obs = ~np.isnan(real[..., 0])
    masks = obs[eligible(obs)]
    out: dict = {"variogram": vg.tolist(), "n": n, "seeds": seeds, "runs": {}}
    for f in nugget_scales:
        v = vg.copy()
        v[:, 1] = np.maximum(vg[:, 1] + (1.0 - f) * vg[:, 0], 1e-9)
        v[:, 0] = f * vg[:, 0]
        twin, _ = gaussian_twin(v, n, real.shape[1], masks=masks, seed=seed)

        def methods(held, s, v=v):
            mean, maps = bayes_maps(held, v, n_draws=n_draws, seed=s)
            placed = place_loci(held.coords, maps, init=mean.astype(np.float32), power=0.0)
            scores = {
                "kriging": score(held, krige_missing(held.coords, v)),
                "bayes_point": score(held, mean.astype(np.float32)),
                "bayes_map": score(held, pred_maps=maps),
                "bayes_map_3d": score(held, placed),
            }
            if points:
                scores["bayes_point_3d"] = score(held, bayes_points(held, v, init=placed, seed=s + 1))
            return scores

        res = _protocol_vs_linear(twin, methods, seeds=seeds, hide=hide, n_boot=n_boot)
        row = {"linear_mae": res["linear"]["mae"]}
        for k, r in res.items():
            if k not in ("linear", "n_traces"):
                row[k] = r["ratio"]
                row[f"{k}_ci"] = [min(a for a, _ in r["ratio_ci"]), max(b for _, b in r["ratio_ci"])]
        row["variogram"] = v.tolist()
        row["twin_variogram"] = fit_chain_variogram(twin).tolist()
        out["runs"][float(f)] = row
    return out
