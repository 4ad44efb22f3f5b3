"""Calibrated uncertainty of imputed spots: ``pointae_sd``, joint samples, calibration scores.

**Predictive distribution.** Each imputed (or corrected) spot gets an isotropic Gaussian centred
on the written position with per-axis standard deviation ``pointae_sd`` (data unit). The sd is a
log-linear function of three things the imputer knows about the spot, fitted by Gaussian maximum
likelihood on a *validation* set of held-out spots (:func:`fit_calibration`)::

    log(sd / scale) = c0 + c1 log(spread / scale) + c2 log(gap) + c3 log(flank / scale)

where ``spread`` is the network's weighted RMS distance of the loci it used to place the spot,
``gap`` the chain distance (in loci) to the nearest observed locus and ``flank`` the distance
between the two observed spots that flank it. A sphere of radius
``2.5 sd`` holds ~90% of the mass (``sqrt(chi2_3(0.9)) = 2.50``), ``1.54 sd`` 50%.

**Joint samples** (:func:`sample_imputations`): the marginal sds above, with the correlation
between the missing loci of a trace taken from the Gaussian chain model of the file's own
variogram (:func:`pointae.baselines.fit_chain_variogram`) conditioned on the trace's observed
spots; observed spots are copied into every sample.

**Calibration scores** (:func:`calibration_scores`): on held-out spots, the coverage of the
central 50% / 90% regions of the 3D position and of the distances to the observed loci, the
energy score of the position and the CRPS of the distances (proper scores, lower is better; Monte
Carlo over the predictive distribution), and the PIT values behind a reliability diagram. The
same function scores the exact Gaussian kriging posterior (:func:`pointae.impute.kriging.gaussian_posterior`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from pointae.errors import PointaeError

# radius of the central p region of a 3D isotropic standard Gaussian: sqrt(chi2_3.ppf(p))
LEVELS = (0.5, 0.9)
_FEATURES = ("const", "log_spread", "log_gap", "log_flank")


def chain_gap(observed: np.ndarray) -> np.ndarray:
    """Chain distance ``(N, L)`` (in loci) from each locus to the nearest observed one (0 if observed).

    Traces with no observed locus get ``L``.
    """
    obs = np.asarray(observed, bool)
    n, n_loci = obs.shape
    idx = np.arange(n_loci)
    big = 4 * n_loci
    prev = np.maximum.accumulate(np.where(obs, idx, -big), axis=1)
    nxt = np.minimum.accumulate(np.where(obs, idx, big)[:, ::-1], axis=1)[:, ::-1]
    return np.minimum(np.minimum(idx - prev, nxt - idx), n_loci).astype(np.float32)


def _flank_distance(coords: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Distance ``(N, L)`` between the observed loci flanking each locus (the nearest two at an end)."""
    c = np.asarray(coords, np.float64)
    n, n_loci = observed.shape
    idx = np.arange(n_loci)
    prev = np.maximum.accumulate(np.where(observed, idx, -1), axis=1)
    nxt = np.minimum.accumulate(np.where(observed, idx, n_loci)[:, ::-1], axis=1)[:, ::-1]
    # second observed locus after the first one (for the left end) and before it (right end)
    nxt2 = np.concatenate([nxt[:, 1:], np.full((n, 1), n_loci)], 1)
    nxt2 = np.take_along_axis(nxt2, np.clip(nxt, 0, n_loci - 1), 1)
    prev2 = np.concatenate([np.full((n, 1), -1), prev[:, :-1]], 1)
    prev2 = np.take_along_axis(prev2, np.clip(prev, 0, n_loci - 1), 1)
    a = np.where(prev >= 0, prev, nxt)
    b = np.where(nxt < n_loci, nxt, prev)
    a = np.where((prev < 0) & (nxt2 < n_loci), nxt2, a)
    b = np.where((nxt >= n_loci) & (prev2 >= 0), prev2, b)
    a, b = np.clip(a, 0, n_loci - 1), np.clip(b, 0, n_loci - 1)
    pa = np.take_along_axis(c, a[..., None].repeat(3, -1), 1)
    pb = np.take_along_axis(c, b[..., None].repeat(3, -1), 1)
    return np.nan_to_num(np.linalg.norm(pa - pb, axis=-1), nan=0.0)


def spot_features(spread: np.ndarray, observed: np.ndarray, scale: float, coords: np.ndarray) -> np.ndarray:
    """Design matrix ``(N, L, 4)`` of the sd model.

    Columns: 1, ``log(spread / scale)``, ``log(gap)`` (chain distance to the nearest observed
    locus) and ``log(flank / scale)`` (distance between the observed loci flanking the spot).
    """
    observed = np.asarray(observed, bool)
    s = np.log(np.maximum(np.asarray(spread, np.float64) / scale, 1e-3))
    g = np.log(np.maximum(chain_gap(observed), 1.0))
    f = np.log(np.maximum(_flank_distance(coords, observed) / scale, 0.05))
    return np.stack([np.ones_like(s), s, g, f], -1)


@dataclass
class Calibration:
    """The fitted predictive model (stored in a model's ``imputer.json`` under ``"uncertainty"``).

    ``pointae_sd = kappa * scale * exp(x @ coef)``, with ``kappa`` chosen so that the sphere of
    radius ``2.5 pointae_sd`` holds 90% of the predictive mass. The full predictive distribution
    is the isotropic Gaussian scale mixture ``sum_c weights_c N(written position, (factors_c
    pointae_sd)^2 I)``; ``factors`` are in units of ``pointae_sd``.

    Attributes
    ----------
    coef
        ``(4,)`` coefficients of :func:`spot_features` for the log of the base sd (scaled units).
    weights, factors
        ``(2,)`` mixture weights and sd factors relative to ``pointae_sd``.
    kappa
        ``pointae_sd`` / base sd.
    info
        How it was fitted (traces, spots, hiding, seeds, validation coverage).
    radial, tangential
        The anisotropic form of the full predictive (issue 14, distance calibration): the sd along
        the direction from the centroid of the trace's kept spots to the written spot is
        ``radial`` times, across it ``tangential`` times what the isotropic mixture says
        (1, 1 = isotropic). Chosen on the validation spots so that the coverage of both the 3D
        position and the distances to observed loci is nominal (:func:`fit_anisotropy`).
        ``pointae_sd`` itself stays the isotropic summary.
    """

    coef: np.ndarray
    weights: np.ndarray
    factors: np.ndarray
    kappa: float
    info: dict
    radial: float = 1.0
    tangential: float = 1.0

    def sd(self, spread: np.ndarray, observed: np.ndarray, scale: float, coords: np.ndarray) -> np.ndarray:
        """``pointae_sd`` ``(N, L)`` in the data unit for every locus (meaningful at free loci).

        ``observed`` marks the loci the imputation kept, ``coords`` holds them (NaN elsewhere).
        """
        x = spot_features(spread, observed, scale, coords)
        return (self.kappa * scale * np.exp(x @ np.asarray(self.coef, np.float64))).astype(np.float32)

    @property
    def anisotropy(self) -> tuple[float, float] | None:
        """``(radial, tangential)`` factors of the full predictive, ``None`` when isotropic."""
        if self.radial == 1.0 and self.tangential == 1.0:
            return None
        return float(self.radial), float(self.tangential)

    @property
    def mixture(self) -> tuple[np.ndarray, np.ndarray]:
        """``(weights, factors)`` of the predictive scale mixture, factors relative to ``pointae_sd``."""
        return np.asarray(self.weights, np.float64), np.asarray(self.factors, np.float64)

    def to_dict(self) -> dict:
        return {
            "features": list(_FEATURES),
            "coef": [float(c) for c in self.coef],
            "mixture_weights": [float(c) for c in self.weights],
            "mixture_factors": [float(c) for c in self.factors],
            "kappa": float(self.kappa),
            "anisotropy": [float(self.radial), float(self.tangential)],
            **self.info,
        }

    @classmethod
    def from_dict(cls, d: dict | None) -> Calibration | None:
        if not d or "coef" not in d:
            return None
        keys = ("coef", "features", "mixture_weights", "mixture_factors", "kappa", "anisotropy")
        radial, tangential = d.get("anisotropy", (1.0, 1.0))
        return cls(
            np.asarray(d["coef"], np.float64),
            np.asarray(d["mixture_weights"], np.float64),
            np.asarray(d["mixture_factors"], np.float64),
            float(d["kappa"]),
            {k: v for k, v in d.items() if k not in keys},
            float(radial),
            float(tangential),
        )


def _mixture_nll(err2: np.ndarray, log_sd: np.ndarray, w: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Per-spot negative log-likelihood of 3D errors under an isotropic Gaussian scale mixture."""
    var = np.exp(2 * log_sd)[:, None] * (k**2)[None]  # (M, C)
    logp = np.log(w)[None] - 1.5 * np.log(2 * np.pi * var) - err2[:, None] / (2 * var)
    top = logp.max(1, keepdims=True)
    return -(top[:, 0] + np.log(np.exp(logp - top).sum(1)))


def mixture_radius(w, k, p: float) -> float:
    """Radius (in units of the base sd) of the central ``p`` ball of a 3D Gaussian scale mixture."""
    from scipy.optimize import brentq

    w, k = np.asarray(w, np.float64), np.asarray(k, np.float64)
    return float(brentq(lambda r: (w * _chi2_3_cdf(r * r / k**2)).sum() - p, 1e-6, 1e3))


def fit_sd_model(err2: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximum likelihood for squared 3D errors ``err2`` ``(M,)`` given features ``x`` ``(M, F)``.

    Model: an isotropic Gaussian scale mixture with two components, ``sd_c = k_c exp(x @ coef)``
    (``k_0 = 1``); real localisation scatter has heavier tails than one Gaussian, so one
    component alone cannot match the 50% and the 90% regions at once (measured on IMR90).

    Returns
    -------
    (coef, w, k)
        ``(F,)`` coefficients, ``(2,)`` mixture weights and ``(2,)`` scale factors.
    """
    from scipy.optimize import minimize

    err2 = np.asarray(err2, np.float64)
    x = np.asarray(x, np.float64)
    if err2.size < 10 * x.shape[1]:
        raise PointaeError(f"calibrating the uncertainty needs more held-out spots (got {err2.size})")
    c0 = np.zeros(x.shape[1])
    c0[0] = 0.5 * np.log(np.median(err2) / 2.37 + 1e-300)  # median of chi2_3 = 2.37

    def unpack(theta):
        coef = theta[: x.shape[1]]
        w1 = 1 / (1 + np.exp(-theta[-2]))
        return coef, np.array([1 - w1, w1]), np.array([1.0, 1.0 + np.exp(theta[-1])])

    def f(theta):
        coef, w, k = unpack(theta)
        return _mixture_nll(err2, x @ coef, w, k).mean()

    res = minimize(f, np.concatenate([c0, [-1.0, 0.0]]), method="L-BFGS-B")
    return unpack(res.x)


def fit_calibration(
    model,
    coords: np.ndarray,
    scale: float,
    hide: float = 0.1,
    mode: str = "mixed",
    seeds: tuple[int, ...] = (101, 102),
    max_missing: float | str = 0.25,
    precision: str = "auto",
    anisotropy_seeds: int = 1,
) -> Calibration:
    """Fit the sd model on held-out spots of validation traces ``coords`` ``(N, L, 3)``.

    Hides ``hide`` of each eligible trace's observed loci (``mode``, one masking per seed), imputes
    them exactly as :func:`pointae.impute.api.impute_coords` does and fits
    :func:`fit_sd_model` to the 3D errors. Use traces that are not the ones you will evaluate on.
    ``coords`` and ``scale`` may be lists (one entry per source, e.g. files with different numbers
    of loci): the scaled errors of all sources are pooled into one fit. The maskings of the first
    ``anisotropy_seeds`` seeds also choose the anisotropic form (:func:`fit_anisotropy`; 0 keeps
    the predictive isotropic).
    """
    from pointae.impute.api import impute_coords
    from pointae.impute.protocol import make_held_out

    sources = list(zip(coords, scale, strict=True)) if isinstance(coords, list | tuple) else [(coords, scale)]
    err2, xs, n_tr, kept = [], [], 0, []
    for c, sc in sources:
        for j, s in enumerate(seeds):
            held = make_held_out(c, hide, seed=s, mode=mode, max_missing=max_missing)
            r = impute_coords(model, held.coords, sc, precision=precision, maps=False)
            e2 = ((r["coords"] - held.truth) ** 2).sum(-1) / sc**2
            x = spot_features(r["spread"], held.observed, sc, held.coords)
            err2.append(e2[held.hidden])
            xs.append(x[held.hidden])
            if j < anisotropy_seeds:
                kept.append((held, r["coords"], x, sc))
        n_tr += len(held)
    e2, x = np.concatenate(err2), np.concatenate(xs)
    coef, w, k = fit_sd_model(e2, x)
    kappa = mixture_radius(w, k, 0.9) / np.sqrt(_chi2_3_ppf(0.9))
    cal = Calibration(coef, w, k / kappa, float(kappa), {})
    if anisotropy_seeds > 0:
        cal.radial, cal.tangential, aniso_cov = fit_anisotropy(
            cal, [(h, m, kappa * sc * np.exp(x @ coef)) for h, m, x, sc in kept]
        )
    u = e2 * np.exp(-2 * x @ coef) / kappa**2  # (error / pointae_sd)^2
    pit = mixture_pit(u, w, k / kappa)
    cal.info = {
        "fitted_on": f"{n_tr} traces, {e2.size} held-out spots ({hide:.0%} hidden, {mode}, "
        f"seeds {list(seeds)})",
        "validation_coverage": {str(int(p * 100)): float((pit <= p).mean()) for p in LEVELS},
        "validation_coverage_gaussian": {
            str(int(p * 100)): float((_chi2_3_cdf(u) <= p).mean()) for p in LEVELS
        },
    }
    if anisotropy_seeds > 0:
        cal.info["validation_coverage_anisotropic"] = aniso_cov
    return cal


ANISOTROPY_GRID = (
    (1.0, 1.2, 1.4, 1.6, 1.8, 2.0),  # radial factors
    (0.6, 0.7, 0.8, 0.9, 1.0),  # tangential factors
)


def fit_anisotropy(cal: Calibration, helds: list, n_draws: int = 120) -> tuple[float, float, dict]:
    """Choose the radial / tangential factors of the predictive on validation spots (grid search).

    ``helds`` holds ``(held, written_coords, pointae_sd)`` triples of validation maskings. The
    factors minimise the largest deviation from nominal of the coverage of the central 50% / 90%
    regions of the 3D position and of the distances to the observed loci (the isotropic form,
    ``(1, 1)``, is one of the candidates, so the result is never worse than it on validation).

    Returns
    -------
    (radial, tangential, coverage)
        The factors and their validation coverages.
    """
    best = (np.inf, 1.0, 1.0, {})
    for a_r in ANISOTROPY_GRID[0]:
        for a_t in ANISOTROPY_GRID[1]:
            res = [
                calibration_scores(
                    h, m, sd, cal.mixture, n_draws=n_draws, anisotropy=(a_r, a_t), proper=False
                )
                for h, m, sd in helds
            ]
            wts = np.array([r["n_pairs"] for r in res], np.float64)
            wsp = np.array([r["n_spots"] for r in res], np.float64)
            cov = {}
            for key, wt in (("pos", wsp), ("dist", wts)):
                for p in LEVELS:
                    k = f"coverage_{key}_{int(p * 100)}"
                    cov[k] = float((np.array([r[k] for r in res]) * wt).sum() / max(wt.sum(), 1))
            dev = max(
                abs(cov[f"coverage_{key}_{int(p * 100)}"] - p) for key in ("pos", "dist") for p in LEVELS
            )
            if dev < best[0] - 1e-9:
                best = (dev, a_r, a_t, cov)
    return float(best[1]), float(best[2]), best[3]


SELF_FACTORS = np.exp(np.linspace(np.log(0.5), np.log(2.0), 141))  # candidate sd factors


def standardised_u(held, mean: np.ndarray, sd: np.ndarray, anisotropy=None) -> np.ndarray:
    """Squared standardised 3D error of each hidden spot of ``held`` (the ``u`` of :func:`mixture_pit`).

    ``mean`` ``(N, L, 3)`` are the written positions, ``sd`` ``(N, L)`` their ``pointae_sd``;
    with ``anisotropy = (radial, tangential)`` the error is standardised as in
    :func:`calibration_scores`.
    """
    rows, locs = np.nonzero(held.hidden)
    mu = np.asarray(mean, np.float64)[rows, locs]
    z = (np.asarray(held.truth, np.float64)[rows, locs] - mu) / np.maximum(
        np.asarray(sd, np.float64)[rows, locs], 1e-9
    )[:, None]
    if anisotropy is None:
        return (z**2).sum(-1)
    a_r, a_t = anisotropy
    d = radial_directions(np.asarray(mean, np.float64), held.coords)[rows, locs]
    zr = (z * d).sum(-1)
    return (zr / a_r) ** 2 + ((z - zr[:, None] * d) ** 2).sum(-1) / a_t**2


def self_calibrate(
    cal: Calibration,
    model,
    coords: np.ndarray,
    scale: float,
    hide: float = 0.05,
    seeds: tuple[int, ...] = (201, 202, 203, 204, 205, 206),
    max_missing: float | str = "auto",
    max_traces: int = 2000,
    precision: str = "auto",
    match: str = "all",
    max_dist_spots: int = 800,
) -> Calibration:
    """Rescale a stored calibration on the input's own visible spots (calibration that transfers).

    A calibration fitted on one lab's validation spots can be off on another lab's file (Huang
    2021 with the IMR90-trained sd model: 44% of hidden spots inside the 50% region). This hides
    ``hide`` of the observed loci of the input's eligible traces (``coords`` ``(N, L, 3)``, at
    most ``max_traces`` of them, evenly spaced; one masking per seed), imputes them as
    :func:`pointae.impute.api.impute_coords` does and chooses one factor ``f`` on ``pointae_sd``
    (grid ``0.5 .. 2``) that brings the coverage of the central 50% and 90% regions of the 3D
    position closest to nominal (smallest largest deviation; the predictive's shape, mixture and
    anisotropy are kept). With ``match="all"`` (default) the factor is then refined on a grid
    within ``x/ e^0.25`` of that one so that the largest deviation of all four coverages
    (position and distances to the observed loci, 50% and 90%; distances by Monte Carlo, 100
    draws per spot; at most ``max_dist_spots`` hidden spots per masking, drawn at random, so
    the cost does not grow with the input) is smallest. Only spots the input observes are used:
    in the protocol, pass the traces with the scored loci already hidden.

    Returns
    -------
    Calibration
        A copy with ``kappa`` multiplied by ``f``; ``info["self_calibration"]`` records ``f``,
        the spots used and their coverage before / after.
    """
    from pointae.impute.api import impute_coords
    from pointae.impute.protocol import make_held_out

    c = np.asarray(coords)
    if len(c) > max_traces:
        c = c[np.linspace(0, len(c) - 1, max_traces).round().astype(int)]
    if match not in ("all", "position"):
        raise PointaeError(f"match must be 'all' or 'position', got {match!r}")
    us, kept = [], []
    for s in seeds:
        try:
            held = make_held_out(c, hide, seed=s, mode="random", max_missing=max_missing)
        except PointaeError:
            break
        if not held.hidden.any():
            break
        r = impute_coords(model, held.coords, scale, precision=precision, maps=False)
        sd = cal.sd(r["spread"], held.observed, scale, held.coords)
        us.append(standardised_u(held, r["coords"], sd, cal.anisotropy))
        kept.append((_fewer_spots(held, max_dist_spots, s), r["coords"], sd))
    u = np.concatenate(us) if us else np.zeros(0)
    if u.size < 50:
        raise PointaeError(
            f"self-calibration needs at least 50 held-out spots of the input (got {u.size}): "
            "too few traces with enough observed loci"
        )

    def coverage(f: float) -> dict:
        pit = mixture_pit(u / f**2, *cal.mixture)
        return {f"coverage_pos_{int(p * 100)}": float((pit <= p).mean()) for p in LEVELS}

    def deviation(cov: dict) -> float:
        return max(abs(v - int(k.rsplit("_", 1)[1]) / 100) for k, v in cov.items())

    def all_coverages(f: float) -> dict:
        res = [
            calibration_scores(
                h, m, sd * f, cal.mixture, n_draws=100, anisotropy=cal.anisotropy, proper=False
            )
            for h, m, sd in kept
        ]
        w = np.array([r["n_pairs"] for r in res], np.float64)
        out = coverage(f)
        for p in LEVELS:
            k = f"coverage_dist_{int(p * 100)}"
            out[k] = float((np.array([r[k] for r in res]) * w).sum() / max(w.sum(), 1.0))
        return out

    devs = [deviation(coverage(f)) for f in SELF_FACTORS]
    best = min(range(len(SELF_FACTORS)), key=lambda i: (round(devs[i], 9), abs(np.log(SELF_FACTORS[i]))))
    f = float(SELF_FACTORS[best])
    before, after = coverage(1.0), coverage(f)
    if match == "all":
        grid = [float(v) for v in f * np.exp(np.linspace(-0.25, 0.25, 21))]
        covs = [all_coverages(g) for g in grid]
        j = min(range(len(grid)), key=lambda i: (round(deviation(covs[i]), 9), abs(np.log(grid[i]))))
        f, before, after = grid[j], all_coverages(1.0), covs[j]
    info = dict(cal.info)
    info["self_calibration"] = {
        "factor": f,
        "match": match,
        "n_spots": int(u.size),
        "seeds": list(seeds[: len(us)]),
        "hide": hide,
        "coverage_before": before,
        "coverage_after": after,
    }
    return Calibration(
        np.array(cal.coef),
        np.array(cal.weights),
        np.array(cal.factors),
        cal.kappa * f,
        info,
        cal.radial,
        cal.tangential,
    )


def _fewer_spots(held, n: int, seed: int):
    """``held`` scoring at most ``n`` of its hidden spots (a random subset; the rest unscored)."""
    rows, locs = np.nonzero(held.hidden)
    if rows.size <= n:
        return held
    pick = np.random.default_rng(seed).choice(rows.size, n, replace=False)
    hidden = np.zeros_like(held.hidden)
    hidden[rows[pick], locs[pick]] = True
    return replace(held, hidden=hidden)


def radial_directions(mean: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Unit vectors ``(N, L, 3)`` from the centroid of each trace's visible spots to ``mean``.

    ``coords`` ``(N, L, 3)`` holds the visible spots (NaN elsewhere); where the direction is
    undefined (a spot at the centroid, a trace without visible spots) the x axis is returned.
    """
    mean = np.asarray(mean, np.float64)
    c = np.asarray(coords, np.float64)
    vis = ~np.isnan(c[..., 0])
    n = np.maximum(vis.sum(1), 1)[:, None]
    centre = np.where(vis[..., None], c, 0.0).sum(1) / n  # (N, 3)
    u = mean - centre[:, None]
    norm = np.linalg.norm(u, axis=-1, keepdims=True)
    ok = np.isfinite(norm) & (norm > 1e-9)
    return np.where(ok, u / np.where(ok, norm, 1.0), np.array([1.0, 0.0, 0.0]))


def mixture_pit(u: np.ndarray, weights, factors) -> np.ndarray:
    """Predictive CDF of the squared standardised 3D error ``u = (e / sd)^2`` under the scale mixture."""
    w, k = np.asarray(weights, np.float64), np.asarray(factors, np.float64)
    return (w[None] * _chi2_3_cdf(np.asarray(u, np.float64)[:, None] / k[None] ** 2)).sum(1)


def _chi2_3_ppf(p: float) -> float:
    from scipy.special import gammaincinv

    return float(2 * gammaincinv(1.5, p))


# ------------------------------------------------------------------------------------- sampling
def _chi2_3_cdf(u: np.ndarray) -> np.ndarray:
    """CDF of the chi-square distribution with 3 degrees of freedom."""
    from scipy.special import gammainc

    return gammainc(1.5, np.asarray(u, np.float64) / 2)


def chain_correlation(variogram: np.ndarray, n_loci: int) -> np.ndarray:
    """Prior covariance ``(L, L)`` of one axis under the chain model, averaged over the axes.

    Fractional Brownian chain plus per-spot scatter with the variogram rows ``(nugget, a, alpha)``
    (:func:`pointae.baselines.fit_chain_variogram`), plus a large constant (a flat prior on the
    trace's position, as in ordinary kriging).
    """
    from pointae.impute.kriging import fbm_cov

    vg = np.broadcast_to(np.asarray(variogram, np.float64), (3, 3))
    cov = np.mean([fbm_cov(vg[a], n_loci) + vg[a, 0] * np.eye(n_loci) for a in range(3)], 0)
    return cov + 100.0 * float(np.abs(cov).max()) * np.ones((n_loci, n_loci))


def sample_imputations(
    coords: np.ndarray,
    imputed: np.ndarray,
    sd: np.ndarray,
    free: np.ndarray,
    k: int,
    rng: np.random.Generator,
    prior_cov: np.ndarray,
    mixture: tuple | None = None,
    anisotropy: tuple[float, float] | None = None,
) -> np.ndarray:
    """``k`` joint samples of the free loci of every trace, observed spots copied.

    Parameters
    ----------
    coords
        ``(N, L, 3)`` the input (kept loci are copied bit for bit into each sample).
    imputed
        ``(N, L, 3)`` the written positions (sample means).
    sd
        ``(N, L)`` per-axis sd of the free loci (``pointae_sd``).
    free
        ``(N, L)`` bool, loci to sample (imputed or corrected).
    k
        Samples per trace.
    rng
        Random generator.
    prior_cov
        ``(L, L)`` chain covariance (:func:`chain_correlation`) giving the correlation between the
        free loci after conditioning on the kept ones.
    mixture, anisotropy
        The scale mixture and the ``(radial, tangential)`` factors of the full predictive
        (:attr:`Calibration.mixture`, :attr:`Calibration.anisotropy`); ``None``: one isotropic
        Gaussian.

    Returns
    -------
    numpy.ndarray
        ``(N, k, L, 3)`` float32; NaN where ``imputed`` is NaN.
    """
    imputed = np.asarray(imputed, np.float32)
    n, n_loci = free.shape
    out = np.repeat(imputed[:, None], k, axis=1)  # (N, K, L, 3)
    kept = ~free & ~np.isnan(np.asarray(coords)[..., 0])
    if anisotropy is not None:
        dirs = radial_directions(imputed, np.where(kept[..., None], np.asarray(coords), np.nan))
    for i in np.flatnonzero(free.any(1)):
        h, o = np.flatnonzero(free[i]), np.flatnonzero(kept[i])
        if o.size:
            a = prior_cov[np.ix_(o, o)]
            b = prior_cov[np.ix_(o, h)]
            cond = prior_cov[np.ix_(h, h)] - b.T @ np.linalg.solve(a, b)
        else:
            cond = prior_cov[np.ix_(h, h)]
        d = np.sqrt(np.maximum(np.diag(cond), 1e-300))
        corr = cond / d[:, None] / d[None, :]
        w, v = np.linalg.eigh(0.5 * (corr + corr.T))
        root = v * np.sqrt(np.maximum(w, 0.0))  # (H, H): corr = root root^T
        z = rng.standard_normal((k, h.size, 3))
        eps = np.einsum("ij,kjc->kic", root, z)  # (K, H, 3) standard, correlated along the chain
        if anisotropy is not None:
            d = dirs[i, h]  # (H, 3)
            er = (eps * d[None]).sum(-1, keepdims=True)
            eps = anisotropy[1] * eps + (anisotropy[0] - anisotropy[1]) * er * d[None]
        eps = eps * sd[i, h][None, :, None]
        if mixture is not None:
            eps *= rng.choice(np.asarray(mixture[1]), size=k, p=np.asarray(mixture[0]))[:, None, None]
        out[i][:, h] = (imputed[i, h][None] + eps).astype(np.float32)
    return out


# ------------------------------------------------------------------------------ calibration scores
def calibration_scores(
    held,
    mean: np.ndarray,
    sd: np.ndarray,
    mixture: tuple | None = None,
    n_draws: int = 400,
    seed: int = 0,
    chunk: int = 256,
    anisotropy: tuple[float, float] | None = None,
    proper: bool = True,
) -> dict:
    """Calibration of a Gaussian predictive distribution on the hidden spots of ``held``.

    Parameters
    ----------
    held
        :class:`~pointae.impute.protocol.HeldOut`.
    mean
        ``(N, L, 3)`` predictive means (hidden loci).
    sd
        ``(N, L)`` isotropic per-axis sd, or ``(N, L, 3)`` per-axis sd (e.g. the kriging posterior).
    mixture
        Optional ``(weights, factors)``: the predictive is the scale mixture of Gaussians with sds
        ``factors * sd`` (:attr:`Calibration.mixture`); default one Gaussian.
    n_draws
        Monte Carlo draws per hidden spot (distance PITs and the proper scores).
    anisotropy
        Optional ``(radial, tangential)`` factors (:attr:`Calibration.anisotropy`, isotropic
        ``sd`` only): the sd along the direction from the centroid of the trace's visible spots to
        the mean (:func:`radial_directions`) and across it are multiplied by them.
    proper
        Also compute the energy score and CRPS (``False``: coverage only, faster).

    Returns
    -------
    dict
        ``coverage_pos_50/90`` (fraction of true hidden spots inside the central 50% / 90% region
        of the 3D predictive distribution), ``coverage_dist_50/90`` (fraction of true
        hidden-to-observed distances inside the central 50% / 90% interval of the predicted
        distance distribution), ``energy_score`` (position, data unit), ``crps_dist`` (mean CRPS
        of the distances), ``reliability`` (nominal levels 0.1 .. 0.9 with the position and
        distance coverages) and ``n_spots`` / ``n_pairs``.
    """
    mean = np.asarray(mean, np.float64)
    sd = np.asarray(sd, np.float64)
    sd3 = np.broadcast_to(sd[..., None], mean.shape) if sd.ndim == 2 else sd
    if anisotropy is not None and sd.ndim != 2:
        raise PointaeError("an anisotropic predictive needs an isotropic sd (N, L)")
    a_r, a_t = anisotropy if anisotropy is not None else (1.0, 1.0)
    dirs = radial_directions(mean, held.coords) if anisotropy is not None else None
    rows, locs = np.nonzero(held.hidden)
    truth = np.asarray(held.truth, np.float64)
    obs_c = np.asarray(held.coords, np.float64)
    e = np.random.default_rng(seed).standard_normal((n_draws, 3))
    if mixture is not None:  # stratified: each component gets its share of the draws
        w, k = (np.asarray(a, np.float64) for a in mixture)
        counts = np.floor(w * n_draws).astype(int)
        counts[np.argmax(w)] += n_draws - counts.sum()
        e = e * np.repeat(k, counts)[:, None]
    pit_pos, pit_dist, es, crps = [], [], [], []
    for s in range(0, rows.size, chunk):
        r, h = rows[s : s + chunk], locs[s : s + chunk]
        mu, sg, y = mean[r, h], np.maximum(sd3[r, h], 1e-9), truth[r, h]  # (K, 3)
        z = (y - mu) / sg  # (K, 3) standardised error
        if dirs is None:
            u = (z**2).sum(-1)
            draws = mu[:, None] + e[None] * sg[:, None]  # (K, M, 3)
        else:
            d = dirs[r, h]  # (K, 3)
            zr = (z * d).sum(-1)
            u = (zr / a_r) ** 2 + ((z - zr[:, None] * d) ** 2).sum(-1) / a_t**2
            er = np.einsum("mc,kc->km", e, d)  # (K, M) radial part of each draw
            eps = a_t * e[None] + (a_r - a_t) * er[..., None] * d[:, None]  # (K, M, 3)
            draws = mu[:, None] + eps * sg[:, None]
        pit_pos.append(_chi2_3_cdf(u) if mixture is None else mixture_pit(u, *mixture))
        if proper:
            es.append(
                np.linalg.norm(draws - y[:, None], axis=-1).mean(1)
                - 0.5 * np.linalg.norm(draws - np.roll(draws, 1, axis=1), axis=-1).mean(1)
            )
        ok = held.observed[r]  # (K, L)
        obs = np.nan_to_num(obs_c[r])  # (K, L, 3)
        d_draw = np.linalg.norm(draws[:, :, None] - obs[:, None], axis=-1)  # (K, M, L)
        d_true = np.linalg.norm(y[:, None] - obs, axis=-1)  # (K, L)
        below = (d_draw < d_true[:, None]).mean(1)  # (K, L) PIT of the true distance
        pit_dist.append(below[ok])
        if proper:
            crps_kl = np.abs(d_draw - d_true[:, None]).mean(1) - 0.5 * np.abs(
                d_draw - np.roll(d_draw, 1, axis=1)
            ).mean(1)
            crps.append(crps_kl[ok])
    if not pit_pos:
        raise PointaeError("no hidden spot to score")
    pp, pd_ = np.concatenate(pit_pos), np.concatenate(pit_dist)
    levels = np.round(np.arange(0.1, 0.95, 0.1), 2)
    out = {
        "n_spots": int(pp.size),
        "n_pairs": int(pd_.size),
        "energy_score": float(np.concatenate(es).mean()) if proper else float("nan"),
        "crps_dist": float(np.concatenate(crps).mean()) if proper else float("nan"),
        "reliability": {
            "levels": levels.tolist(),
            "position": [float((pp <= p).mean()) for p in levels],
            "distance": [float((np.abs(pd_ - 0.5) <= p / 2).mean()) for p in levels],
        },
    }
    for p in LEVELS:
        out[f"coverage_pos_{int(p * 100)}"] = float((pp <= p).mean())
        out[f"coverage_dist_{int(p * 100)}"] = float((np.abs(pd_ - 0.5) <= p / 2).mean())
    return out


def reliability_figure(results: dict, path) -> None:
    """Reliability diagram (nominal vs observed coverage, position and distances) to ``path``.

    ``results`` maps a method name to the output of :func:`calibration_scores`.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pointae.errors import atomic_path

    fig, axes = plt.subplots(1, 2, figsize=(8.4, 4.0), sharey=True)
    for ax, key, title in zip(axes, ("position", "distance"), ("3D position", "distances to observed loci")):
        ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="nominal")
        for name, res in results.items():
            rel = res["reliability"]
            ax.plot(rel["levels"], rel[key], marker="o", ms=3, label=name)
        ax.set_title(title)
        ax.set_xlabel("nominal coverage of the central region")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("observed coverage (held-out spots)")
    axes[1].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    suffix = "".join(__import__("pathlib").Path(path).suffixes[-1:]) or ".png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format=suffix.lstrip(".") or "png")
    plt.close(fig)


# ----------------------------------------------------------------------------- outlier probability
def _maxwell_logpdf(r: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Log density of the length of a 3D isotropic Gaussian vector with per-axis sd ``a``."""
    return 0.5 * np.log(2 / np.pi) + 2 * np.log(np.maximum(r, 1e-12)) - r * r / (2 * a * a) - 3 * np.log(a)


def outlier_probability(
    resid: np.ndarray, sd: np.ndarray, observed: np.ndarray, mixture: tuple, n_iter: int = 100
) -> tuple[np.ndarray, dict]:
    """Per-spot probability that an observed spot is an outlier.

    ``resid`` is the distance of each observed spot from where the imputer places it with the spot
    hidden (:func:`pointae.impute.api.detect_outliers_model`), ``sd`` the calibrated
    ``pointae_sd`` of that placement. A clean spot's residual follows the calibrated predictive
    distribution (the scale mixture ``mixture``); an outlier's follows a broad 3D Gaussian whose
    sd and prior weight are fitted to the data by EM. The posterior probability of the outlier
    component is returned (0 where not observed).

    Returns
    -------
    (numpy.ndarray, dict)
        ``(N, L)`` float32 probabilities and ``{"prior": ..., "outlier_sd": ...}``.
    """
    obs = np.asarray(observed, bool) & np.isfinite(sd) & (sd > 0)
    r = np.asarray(resid, np.float64)[obs]
    s = np.asarray(sd, np.float64)[obs]
    w, k = (np.asarray(a, np.float64) for a in mixture)
    comp = np.stack([np.log(wc) + _maxwell_logpdf(r, kc * s) for wc, kc in zip(w, k)], 1)
    top = comp.max(1, keepdims=True)
    log_in = top[:, 0] + np.log(np.exp(comp - top).sum(1))
    prior, s_out = 0.05, 3.0 * float(np.median(s)) if s.size else 1.0
    gamma = np.zeros_like(r)
    for _ in range(n_iter):
        lo = np.log(prior) + _maxwell_logpdf(r, s_out)
        li = np.log1p(-prior) + log_in
        m = np.maximum(lo, li)
        gamma = np.exp(lo - m) / (np.exp(lo - m) + np.exp(li - m))
        new_prior = float(np.clip(gamma.mean(), 1e-4, 0.5))
        new_s = float(np.sqrt((gamma * r * r).sum() / max(3 * gamma.sum(), 1e-12)))
        new_s = max(new_s, 1.5 * float(np.median(s)))  # the outlier component stays the broad one
        done = abs(new_prior - prior) < 1e-6 and abs(new_s - s_out) < 1e-6 * s_out
        prior, s_out = new_prior, new_s
        if done:
            break
    out = np.zeros(np.shape(observed), np.float32)
    out[obs] = gamma
    return out, {"prior": prior, "outlier_sd": s_out}


def probability_calibration(prob: np.ndarray, truth: np.ndarray, bins: int = 10) -> dict:
    """Reliability of predicted probabilities against 0/1 outcomes: Brier score, ECE and bins."""
    p = np.asarray(prob, np.float64)
    y = np.asarray(truth, bool).astype(np.float64)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
    rows = []
    ece = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            rows.append([float(p[sel].mean()), float(y[sel].mean()), int(sel.sum())])
            ece += sel.mean() * abs(p[sel].mean() - y[sel].mean())
    flag = p > 0.5
    tp = float((flag & (y > 0)).sum())
    return {
        "brier": float(((p - y) ** 2).mean()),
        "ece": float(ece),
        "bins": rows,
        "mean_prob_outliers": float(p[y > 0].mean()) if (y > 0).any() else float("nan"),
        "mean_prob_clean": float(p[y == 0].mean()) if (y == 0).any() else float("nan"),
        "expected_outliers": float(p.sum()),
        "planted_outliers": int(y.sum()),
        "precision_p50": tp / max(float(flag.sum()), 1.0),
        "recall_p50": tp / max(float(y.sum()), 1.0),
    }
