"""Localisation noise matched to a real file (pointae.sim.noise): fit, model, matched traces."""

from __future__ import annotations

import numpy as np
import pytest

from pointae.errors import PointaeError
from pointae.sim.noise import fit_axis_noise, fit_noise_mixture, matching_noise, noise, rms_displacement


def _walks(n=300, n_loci=40, seed=0, step=100.0):
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.normal(0, step, (n, n_loci, 3)), axis=1)


def test_fit_axis_noise_recovers_scale_and_noise_per_axis():
    sim = _walks(seed=1)
    real = _walks(seed=2) * np.array([1.0, 1.0, 0.5])
    real = real + np.random.default_rng(3).normal(0, 1, real.shape) * np.array([150.0, 150.0, 80.0])
    real[:, ::7] = np.nan
    scale, sd = fit_axis_noise(sim, real)
    assert scale == pytest.approx([1.0, 1.0, 0.5], rel=0.08)
    assert sd == pytest.approx([150.0, 150.0, 80.0], rel=0.1)
    with pytest.raises(PointaeError):
        fit_axis_noise(sim, np.ones((3, 10, 3)))


def test_noise_mixture_keeps_the_variance_and_is_heavier_tailed():
    rng = np.random.default_rng(0)
    g = noise(rng, (20000,), [100.0, 100.0, 50.0])
    m = noise(rng, (20000,), [100.0, 100.0, 50.0], (0.3, 5.0))
    assert g.std(0) == pytest.approx([100, 100, 50], rel=0.03)
    assert m.std(0) == pytest.approx([100, 100, 50], rel=0.05)
    assert np.median(np.abs(m[:, 0])) < 0.6 * np.median(np.abs(g[:, 0]))
    with pytest.raises(PointaeError):
        noise(rng, (3,), 1.0, (1.0, 2.0))


def test_fit_noise_mixture_finds_the_planted_mixture_shape():
    clean = _walks(n=400, seed=4, step=60.0)
    real = clean + noise(np.random.default_rng(5), clean.shape[:2], 150.0, (0.3, 5.0))
    (p, rho), err = fit_noise_mixture(_walks(n=400, seed=6, step=60.0), real, 150.0)
    assert p >= 0.2 and rho >= 4.0
    assert err < fit_noise_mixture(clean, real, 150.0, ps=(0.0,))[1]


def test_matched_traces_take_the_reference_gaps_loci_and_noise():
    from pointae.data.traces import Traces
    from pointae.sim.noise import axis_rms, matched_traces

    rng = np.random.default_rng(8)
    ref = np.cumsum(rng.normal(0, 60.0, (300, 24, 3)), axis=1) + rng.normal(0, 120.0, (300, 24, 3))
    ref[rng.random((300, 24)) < 0.15] = np.nan
    like = Traces(coords=ref.astype(np.float32))
    sim, clean, fit = matched_traces(like, n=300, seed=1)
    assert sim.coords.shape == clean.shape == (300, 24, 3)
    gaps = np.isnan(sim.coords[..., 0]).mean()
    assert 0.1 < gaps < 0.2  # the reference's detection gaps
    # the fitted noise reproduces the reference's short-range spread on every axis
    np.testing.assert_allclose(axis_rms(sim.coords, 1), axis_rms(ref, 1), rtol=0.15)
    assert np.all(fit["sd"] > 50.0)


def _walks_nm(n=400, n_loci=40, seed=0, step=100.0):
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.normal(0, step, (n, n_loci, 3)), axis=1)


def test_rms_displacement_of_a_random_walk_grows_like_sqrt_k():
    w = _walks_nm()
    assert rms_displacement(w, 1) == pytest.approx(100.0, rel=0.03)
    assert rms_displacement(w, 9) == pytest.approx(300.0, rel=0.05)


def test_matching_noise_recovers_the_noise_of_the_reference():
    sim = _walks_nm(seed=1)
    real = _walks_nm(seed=2)
    real = real + np.random.default_rng(3).normal(0, 150.0, real.shape)  # "localisation error"
    real[:, ::7] = np.nan  # missing spots are skipped
    assert matching_noise(sim, real) == pytest.approx(150.0, rel=0.1)
    assert matching_noise(sim, _walks_nm(seed=4)) < 30.0  # no noise to add
    with pytest.raises(PointaeError):
        matching_noise(sim, np.ones((3, 10, 3)))  # a reference that does not spread
