"""Oracle imputers on simulated traces: noise fit, noise model and the protocol bound."""

from __future__ import annotations

import numpy as np
import pytest

from pointae.errors import PointaeError
from pointae.impute.oracle import fit_axis_noise, fit_noise_mixture, noise, oracle_experiment


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


def test_oracles_beat_linear_and_the_map_oracle_is_the_lowest():
    clean = _walks(n=150, n_loci=30, seed=7)
    r = oracle_experiment(clean, 80.0, seeds=1, n_boot=20, n_draws=101)
    assert r["n_traces"] == 150
    assert r["oracle_map"]["ratio"] < r["oracle_point"]["ratio"] < 0.95
    exact = oracle_experiment(clean, 1e-3, seeds=1, n_boot=20, n_draws=101)
    assert exact["oracle_point"]["mae"] < 0.01  # no noise: the true position is the truth
    masks = np.ones((5, 29), bool)
    with pytest.raises(PointaeError):
        oracle_experiment(clean, 80.0, masks=masks, seeds=1)
