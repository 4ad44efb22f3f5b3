"""The pretraining study's noise matching (benchmarks/study_pretrain.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from pointae.errors import PointaeError

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def mod(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    spec = importlib.util.spec_from_file_location("study_pretrain", BENCH / "study_pretrain.py")
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def _walks(n=400, n_loci=40, seed=0, step=100.0):
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.normal(0, step, (n, n_loci, 3)), axis=1)


def test_rms_displacement_of_a_random_walk_grows_like_sqrt_k(mod):
    w = _walks()
    assert mod.rms_displacement(w, 1) == pytest.approx(100.0, rel=0.03)
    assert mod.rms_displacement(w, 9) == pytest.approx(300.0, rel=0.05)


def test_matching_noise_recovers_the_noise_of_the_reference(mod):
    sim = _walks(seed=1)
    real = _walks(seed=2)
    real = real + np.random.default_rng(3).normal(0, 150.0, real.shape)  # "localisation error"
    real[:, ::7] = np.nan  # missing spots are skipped
    assert mod.matching_noise(sim, real) == pytest.approx(150.0, rel=0.1)
    assert mod.matching_noise(sim, _walks(seed=4)) < 30.0  # no noise to add
    with pytest.raises(PointaeError):
        mod.matching_noise(sim, np.ones((3, 10, 3)))  # a reference that does not spread
