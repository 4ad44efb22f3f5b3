"""The held-out masking protocol, its scoring and the population baselines."""

from __future__ import annotations

import numpy as np
import pytest

from pointae.baselines import fit_chain_variogram, interpolate_missing, krige_missing, smooth_missing
from pointae.errors import PointaeError
from pointae.impute.baselines import fill_maps, knn_maps, population_median_map
from pointae.impute.place import place_loci
from pointae.impute.protocol import bootstrap, eligible, kabsch, make_held_out, score
from pointae.testing import assert_valid_map, random_rigid, tiny_traces


def _walks(n=40, n_loci=30, seed=0, missing=0.05):
    return tiny_traces(n=n, n_loci=n_loci, seed=seed, missing=missing).coords


def test_held_out_is_deterministic_by_seed():
    c = _walks()
    a, b = make_held_out(c, 0.1, seed=3), make_held_out(c, 0.1, seed=3)
    other = make_held_out(c, 0.1, seed=4)
    np.testing.assert_array_equal(a.hidden, b.hidden)
    np.testing.assert_array_equal(a.coords, b.coords)
    assert not np.array_equal(a.hidden, other.hidden)


@pytest.mark.parametrize("mode", ["random", "runs", "mixed"])
def test_hidden_loci_were_observed_and_are_about_ten_percent(mode):
    c = _walks(n=60, n_loci=40)
    held = make_held_out(c, 0.1, seed=0, mode=mode)
    orig_obs = ~np.isnan(held.truth[..., 0])
    assert (held.hidden <= orig_obs).all()
    assert np.isnan(held.coords[held.hidden]).all()
    assert not (held.hidden & held.observed).any()
    frac = held.hidden.sum() / orig_obs.sum()
    assert 0.07 < frac < 0.13
    if mode == "runs":  # runs: most hidden loci have a hidden chain neighbour
        h = held.hidden
        nb = np.zeros_like(h)
        nb[:, 1:] |= h[:, :-1]
        nb[:, :-1] |= h[:, 1:]
        assert (h & nb).sum() > 0.6 * h.sum()


def test_eligibility_filter():
    c = _walks(n=10, n_loci=20, missing=0.0)
    c[0, :5] = np.nan  # 25% missing: not eligible
    c[1, :2] = np.nan  # 10%: eligible
    assert eligible(~np.isnan(c[..., 0]), 0.1).tolist() == [False, True] + [True] * 8
    held = make_held_out(c, 0.1, seed=0)
    assert 0 not in held.index and 1 in held.index and len(held) == 9


def test_perfect_prediction_scores_zero():
    held = make_held_out(_walks(), 0.1, seed=0)
    s = score(held, held.truth).summary()
    assert s["mae"] == pytest.approx(0.0, abs=1e-3)
    assert s["pos_err"] == pytest.approx(0.0, abs=1e-3)
    assert s["pearson"] == pytest.approx(1.0, abs=1e-6)


def test_linear_interpolation_exact_on_straight_chains():
    n_loci = 25
    t = np.arange(n_loci, dtype=np.float32)
    rng = np.random.default_rng(1)
    c = np.stack([t[:, None] * rng.normal(size=3)[None] * 100 + rng.normal(size=3) for _ in range(12)])
    c = c.astype(np.float32)
    held = make_held_out(c, 0.15, seed=0)
    # hidden chain ends are extrapolated (constant), so score only interior loci
    held.hidden[:, [0, -1]] = False
    s = score(held, interpolate_missing(held.coords)).summary()
    assert s["mae"] < 1e-2 and s["pos_err"] < 1e-2


def test_local_fit_is_exact_on_lines_keeps_observed_and_resists_a_scattered_neighbour():
    x = np.arange(20, dtype=np.float64)
    line = np.stack([3 * x + 1, -2 * x, 0.5 * x], 1).astype(np.float32)
    c = np.stack([line, line])
    c[:, [4, 5, 12]] = np.nan
    c[1, :] = np.nan  # no observed locus: stays NaN
    c[1, 7] = line[7]  # ... except one: constant fill
    out = smooth_missing(c)
    np.testing.assert_allclose(out[0], line, atol=1e-3)  # a line is reproduced, gaps included
    obs = ~np.isnan(c[..., 0])
    np.testing.assert_array_equal(out[obs], c[obs])  # observed loci bit for bit
    np.testing.assert_allclose(out[1], np.broadcast_to(line[7], line.shape))
    assert smooth_missing(c[0]).shape == (20, 3)
    # a mislocalised neighbour drags linear interpolation, much less the robust local fit
    d = line.copy()
    d[12] = np.nan
    d[11] += np.array([400.0, -300.0, 200.0], np.float32)
    lin_err = np.linalg.norm(interpolate_missing(d)[12] - line[12])
    fit_err = np.linalg.norm(smooth_missing(d)[12] - line[12])
    assert fit_err < 0.6 * lin_err


def test_local_fit_beats_linear_on_noisy_walks():
    rng = np.random.default_rng(3)
    clean = np.cumsum(rng.normal(0, 100.0, (200, 40, 3)), axis=1)
    noisy = (clean + rng.normal(0, 120.0, clean.shape)).astype(np.float32)
    held = make_held_out(noisy, 0.1, seed=0)
    lin = score(held, interpolate_missing(held.coords)).summary()["mae"]
    fit = score(held, smooth_missing(held.coords)).summary()["mae"]
    assert fit < 0.99 * lin


def test_chain_variogram_recovers_walk_step_and_noise():
    rng = np.random.default_rng(5)
    step, sd = 100.0, 80.0
    clean = np.cumsum(rng.normal(0, step, (400, 40, 3)), axis=1)
    noisy = (clean + rng.normal(0, sd, clean.shape)).astype(np.float32)
    noisy[rng.random(noisy.shape[:2]) < 0.08] = np.nan
    vg = fit_chain_variogram(noisy)
    # Brownian walk + white noise: gamma(k) = sd^2 + (step^2 / 2) k
    np.testing.assert_allclose(np.sqrt(vg[:, 0]), sd, rtol=0.15)
    np.testing.assert_allclose(vg[:, 1], step**2 / 2, rtol=0.15)
    np.testing.assert_allclose(vg[:, 2], 1.0, atol=0.1)
    from pointae.errors import PointaeError

    with pytest.raises(PointaeError, match="at least 4 loci"):
        fit_chain_variogram(noisy[:, :3])


def test_kriging_is_linear_interpolation_for_an_exact_brownian_chain_and_keeps_observed():
    rng = np.random.default_rng(2)
    c = np.cumsum(rng.normal(0, 50.0, (6, 30, 3)), axis=1).astype(np.float32)
    c[:, [3, 4, 10, 17, 18, 19]] = np.nan
    brownian = np.array([0.0, 1250.0, 1.0])  # no nugget, alpha = 1: a Markov chain
    out = krige_missing(c, brownian)
    np.testing.assert_allclose(out, interpolate_missing(c), atol=1e-3)
    obs = ~np.isnan(c[..., 0])
    np.testing.assert_array_equal(out[obs], c[obs])
    assert krige_missing(c[0], brownian).shape == (30, 3)


def test_kriging_with_the_fitted_nugget_beats_linear_on_noisy_walks():
    rng = np.random.default_rng(3)
    clean = np.cumsum(rng.normal(0, 100.0, (200, 40, 3)), axis=1)
    noisy = (clean + rng.normal(0, 120.0, clean.shape)).astype(np.float32)
    held = make_held_out(noisy, 0.1, seed=0)
    lin = score(held, interpolate_missing(held.coords)).summary()
    krig = score(held, krige_missing(held.coords)).summary()
    true_vg = np.array([120.0**2, 100.0**2 / 2, 1.0])  # the walk's exact variogram
    best = score(held, krige_missing(held.coords, true_vg)).summary()
    # the best linear predictor: position error well below linear interpolation's, distances too
    assert krig["pos_err"] < 0.95 * lin["pos_err"] and krig["mae"] < 0.99 * lin["mae"]
    # ... and the variogram fitted to the held-out traces does as well as the true one
    assert krig["pos_err"] < 1.005 * best["pos_err"]


def test_score_rejects_undefined_predictions():
    held = make_held_out(_walks(), 0.1, seed=0)
    from pointae.errors import PointaeError

    with pytest.raises(PointaeError):
        score(held, held.coords)  # hidden loci left NaN


def test_kabsch_recovers_rigid_motion(rng):
    a = rng.normal(size=(20, 3))
    rot, shift = random_rigid(rng)
    b = a @ rot.T + shift
    r, t = kabsch(a, b)
    np.testing.assert_allclose(a @ r.T + t, b, atol=1e-8)


def test_bootstrap_ratio_of_identical_methods_is_one():
    held = make_held_out(_walks(), 0.1, seed=0)
    s = score(held, interpolate_missing(held.coords))
    ci = bootstrap({"linear": s, "copy": s}, n_boot=50)
    assert ci["copy"]["ratio"] == pytest.approx(1.0)
    assert ci["copy"]["ratio_lo"] == pytest.approx(1.0) and ci["copy"]["ratio_hi"] == pytest.approx(1.0)
    assert ci["linear"]["mae_lo"] <= s.summary()["mae"] <= ci["linear"]["mae_hi"]


def test_population_median_map_is_valid():
    m = population_median_map(_walks())
    assert m.shape == (30, 30)
    assert_valid_map(m)
    filled = fill_maps(_walks(), m)
    assert np.isfinite(filled).all()


def test_knn_finds_an_identical_trace():
    c = _walks(n=30, n_loci=20, missing=0.0)
    query = c[:5].copy()
    query[:, 7] = np.nan
    pred = knn_maps(query, c, k=1)
    true = np.linalg.norm(c[:5, 7, None] - c[:5], axis=-1)
    np.testing.assert_allclose(pred[:, 7], true, rtol=1e-4, atol=1e-2)
    assert_valid_map(pred)


def test_place_loci_keeps_fixed_loci_and_fits_target():
    c = _walks(n=6, n_loci=20, missing=0.0)
    from pointae.data.transforms import distance_maps

    held = make_held_out(c, 0.1, seed=0)
    target = distance_maps(held.truth)
    placed = place_loci(held.coords, target, n_iter=300)
    obs = held.observed
    np.testing.assert_array_equal(placed[obs], held.coords[obs])
    lin = interpolate_missing(held.coords)
    err_placed = np.linalg.norm(placed - held.truth, axis=-1)[held.hidden].mean()
    err_lin = np.linalg.norm(lin - held.truth, axis=-1)[held.hidden].mean()
    assert err_placed < 0.5 * err_lin


# ---------------------------------------------------------------- per-file rules (issue 14)
def test_auto_max_missing_keeps_ten_percent_for_complete_files_and_follows_gappy_ones():
    from pointae.impute.protocol import auto_max_missing

    rng = np.random.default_rng(0)
    few = rng.random((500, 65)) > 0.05  # ~5% missing per trace
    assert auto_max_missing(few) == pytest.approx(0.1)
    gappy = rng.random((500, 42)) > 0.34  # ~34% missing: median rounded up to 5%
    t = auto_max_missing(gappy)
    assert t == pytest.approx(0.35)
    # about half of the traces are eligible under the rule (vs almost none at 10%)
    assert 0.4 < eligible(gappy, t).mean() < 0.8
    assert eligible(gappy, 0.1).mean() < 0.05
    assert auto_max_missing(np.zeros((10, 20), bool)) == pytest.approx(0.5)  # capped


def test_held_out_auto_reports_threshold_and_candidates():
    c = _walks(n=80, n_loci=30, missing=0.3)
    held = make_held_out(c, 0.1, seed=0, max_missing="auto", subset=np.arange(60))
    assert held.n_candidates == 60
    assert held.max_missing >= 0.3
    assert len(held) == eligible(~np.isnan(c[:60, :, 0]), held.max_missing).sum()
    with pytest.raises(PointaeError, match="'auto'"):
        make_held_out(c, 0.1, max_missing="half")


def test_detection_mode_hides_loci_in_proportion_to_their_missing_rate():
    from pointae.impute.protocol import detection_rates

    rng = np.random.default_rng(1)
    n, n_loci = 400, 30
    c = tiny_traces(n=n, n_loci=n_loci, seed=2, missing=0.0).coords.copy()
    det = np.full(n_loci, 0.95)
    det[:5] = 0.6  # five poorly detected loci
    c[rng.random((n, n_loci)) > det[None, :]] = np.nan
    score_rows = np.arange(200, 400)
    held = make_held_out(c, 0.1, seed=0, mode="detection", max_missing=0.5, subset=score_rows)
    # rates come from the traces that are not scored
    np.testing.assert_allclose(held.detection, detection_rates(~np.isnan(c[:200, :, 0])))
    assert np.isnan(held.coords[held.hidden]).all() and (held.hidden <= ~np.isnan(held.truth[..., 0])).all()
    per_locus = held.hidden.sum(0) / (~np.isnan(held.truth[..., 0])).sum(0)
    # the poorly detected loci (missing 40%) are hidden far more often than the others (5%)
    assert per_locus[:5].mean() > 3 * per_locus[5:].mean()
    frac = held.hidden.sum() / (~np.isnan(held.truth[..., 0])).sum()
    assert 0.07 < frac < 0.13
    again = make_held_out(c, 0.1, seed=0, mode="detection", max_missing=0.5, subset=score_rows)
    np.testing.assert_array_equal(held.hidden, again.hidden)
    with pytest.raises(PointaeError, match="detection rates"):
        make_held_out(c, 0.1, mode="detection", detection=np.ones(3))
    with pytest.raises(PointaeError, match="unknown hiding mode"):
        make_held_out(c, 0.1, mode="bogus")
