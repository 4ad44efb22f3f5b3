"""How low can the imputation ratio go? Oracle and Bayes-optimal imputers (a research study).

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

The noise model is :mod:`pointae.sim.noise`. The Gaussian-twin part (:func:`gaussian_twin_experiment`)
asks the same question without the simulator, on Gaussian traces with the real file's chain
variogram, where the exact posterior (:func:`pointae.impute.kriging.gaussian_posterior`) gives the
Bayes-optimal predictors. Used by ``bench_impute_sim.py --oracle / --gaussian-twin``; not part of
the package.
"""

from __future__ import annotations

import numpy as np

from pointae.baselines import interpolate_missing
from pointae.errors import PointaeError
from pointae.impute.kriging import gaussian_posterior, gaussian_twin
from pointae.impute.protocol import bootstrap, eligible, make_held_out, score
from pointae.sim.noise import noise


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


def bayes_maps(
    held, variogram: np.ndarray, n_draws: int = 4001, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Bayes-optimal predictions on Gaussian twin traces: posterior means and conditional-median maps.

    For each hidden spot and each visible spot, the median of the distance over the hidden spot's
    exact posterior (:func:`gaussian_posterior`, Monte Carlo with ``n_draws`` common draws)
    minimises the expected absolute error: its protocol score is a lower bound for any predictor
    of those distances on Gaussian traces with this variogram. A sample median from finite draws
    is not the exact median, and any error in it can only raise the expected loss: the Monte Carlo
    estimate is biased upward by O(1 / n_draws) (401 draws: ~+0.005 in the ratio; the experiment
    reports the estimate at ``n_draws / 10`` and two independent draw sets at ``n_draws``, so the
    bias and the Monte Carlo error can be read off).

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
        # |mean + sd * e - y|^2 = |v|^2 + 2 v . (sd * e) + |sd * e|^2 with v = mean - y: one matmul
        v = mean[i, h][:, None, :] - held.coords[i, o][None].astype(np.float64)  # (H, O, 3)
        se = sd[i, h][:, None, :] * e[None]  # (H, M, 3)
        d2 = (v * v).sum(-1)[..., None] + 2.0 * (v @ se.transpose(0, 2, 1)) + (se * se).sum(-1)[:, None, :]
        med = np.sqrt(np.maximum(np.median(d2, axis=-1), 0.0))  # (H, O); the median commutes with sqrt
        maps[i][np.ix_(h, o)] = med
        maps[i][np.ix_(o, h)] = med.T
    return mean, maps


def bayes_points(
    held,
    variogram: np.ndarray,
    init: np.ndarray | None = None,
    n_draws: int = 128,
    steps: int = 150,
    seed: int = 0,
    chunk: int = 512,
    n_select: int = 2001,
) -> np.ndarray:
    """The best single 3D point per hidden locus on Gaussian twin traces (numerically).

    Minimises, for each hidden locus separately, the expected protocol loss of one point ``x``,
    ``E sum_o | |x - y_o| - |P - y_o| |`` over the visible spots ``y_o``, with ``P`` drawn from the
    exact posterior of the hidden spot (:func:`gaussian_posterior`). Stochastic optimisation: every
    Adam step (cosine schedule) draws ``n_draws`` *fresh* posterior samples, so the point is not
    fitted to one fixed sample (an earlier version optimised on 101 fixed draws and was scored
    optimistically). It starts from the posterior mean and (if given) from ``init``; the better
    of the two per locus is chosen on ``n_select`` independent draws. The objective is not convex
    in ``x``, so this is the best point found, not a proven optimum: its score is reachable by a 3D
    method that knew the posterior exactly.

    Returns
    -------
    numpy.ndarray
        ``(N, L, 3)`` float64: visible loci copied, hidden loci at the chosen points.
    """
    import torch

    mean, sd = gaussian_posterior(held.coords, variogram)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
    vis = held.observed
    rows, hs = np.nonzero(held.hidden)
    out = mean.copy()
    for s in range(0, rows.size, chunk):
        r, h = rows[s : s + chunk], hs[s : s + chunk]
        yt = torch.from_numpy(np.nan_to_num(np.asarray(held.coords, np.float64)[r]))  # (K, L, 3)
        ok = torch.from_numpy(vis[r].astype(np.float64))
        mu, sig = torch.from_numpy(mean[r, h]), torch.from_numpy(sd[r, h])  # (K, 3)
        step = 0.05 * (float(np.median(sd[r, h])) + 1e-9)

        def loss(x, m, yt=yt, ok=ok, mu=mu, sig=sig):
            draws = mu[:, None] + sig[:, None] * torch.randn(mu.shape[0], m, 3, generator=gen, dtype=mu.dtype)
            d_true = torch.linalg.norm(draws[:, None] - yt[:, :, None], dim=-1)  # (K, L, m)
            d = torch.linalg.norm(x[:, None, :] - yt, dim=-1)  # (K, L)
            return ((d[..., None] - d_true).abs().mean(-1) * ok).sum(-1)  # (K,)

        best_x, best_f = None, None
        for x0 in [mean[r, h]] + ([np.asarray(init, np.float64)[r, h]] if init is not None else []):
            x = torch.tensor(x0, requires_grad=True)
            opt = torch.optim.Adam([x], lr=step)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
            for _ in range(steps):
                opt.zero_grad()
                loss(x, n_draws).sum().backward()
                opt.step()
                sched.step()
            with torch.no_grad():
                f = sum(loss(x, 501).numpy() for _ in range(max(1, n_select // 501)))
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
    n_draws: int = 4001,
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
        ``twin_variogram`` (refitted on the twin). Monte Carlo checks: ``bayes_map_b`` (a second,
        independent set of ``n_draws`` draws; ``bayes_map_mc_se`` = half their difference, the
        standard error of their mean), ``bayes_map_coarse`` (``n_draws // 10`` draws: the upward
        bias shrinks ~10x from there) and, with ``points``, ``bayes_point_3d_b`` (an independent
        optimisation with fresh draws) and ``bayes_point_3d_mc_se``. The reported ``bayes_map`` and
        ``bayes_point_3d`` are the means of the two estimates.
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
                "bayes_map_b": score(
                    held, pred_maps=bayes_maps(held, v, n_draws=n_draws, seed=s + 10_000)[1]
                ),
                "bayes_map_coarse": score(
                    held, pred_maps=bayes_maps(held, v, n_draws=n_draws // 10, seed=s)[1]
                ),
                "bayes_map_3d": score(held, placed),
            }
            if points:
                scores["bayes_point_3d"] = score(held, bayes_points(held, v, init=placed, seed=s + 1))
                scores["bayes_point_3d_b"] = score(held, bayes_points(held, v, init=placed, seed=s + 20_001))
            return scores

        res = _protocol_vs_linear(twin, methods, seeds=seeds, hide=hide, n_boot=n_boot)
        row = {"linear_mae": res["linear"]["mae"]}
        for k, r in res.items():
            if k not in ("linear", "n_traces"):
                row[k] = r["ratio"]
                row[f"{k}_ci"] = [min(a for a, _ in r["ratio_ci"]), max(b for _, b in r["ratio_ci"])]
        for k in ("bayes_map", "bayes_point_3d"):
            if f"{k}_b" in row:  # two independent Monte Carlo estimates: report their mean and SE
                a, b = row[k], row[f"{k}_b"]
                row[f"{k}_first"], row[k], row[f"{k}_mc_se"] = a, (a + b) / 2, abs(a - b) / 2
        row["variogram"] = v.tolist()
        row["twin_variogram"] = fit_chain_variogram(twin).tolist()
        out["runs"][float(f)] = row
    return out
