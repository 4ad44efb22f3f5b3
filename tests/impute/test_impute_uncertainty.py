"""Calibrated uncertainty (pointae_sd), joint samples, calibration scores and streamed imputation."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from pointae.cli import app
from pointae.impute.protocol import HeldOut
from pointae.impute.uncertainty import (
    Calibration,
    calibration_scores,
    chain_correlation,
    chain_gap,
    fit_sd_model,
    mixture_pit,
    sample_imputations,
)
from pointae.testing import tiny_traces

runner = CliRunner()


def test_chain_gap_counts_loci_to_the_nearest_observed_one():
    obs = np.array([[1, 0, 0, 0, 1, 1, 0], [0, 0, 1, 0, 0, 0, 0]], bool)
    np.testing.assert_array_equal(chain_gap(obs), [[0, 1, 2, 1, 0, 0, 1], [2, 1, 0, 1, 2, 3, 4]])


def test_fit_sd_model_recovers_a_known_heteroscedastic_scale(rng):
    # errors with sd = exp(0.3 + 0.5 x): the fitted mixture must put 50% / 90% where they belong
    n = 6000
    x = np.stack([np.ones(n), rng.normal(size=n), np.zeros(n)], 1)
    sd = np.exp(0.3 + 0.5 * x[:, 1])
    e = rng.normal(size=(n, 3)) * sd[:, None]
    coef, w, k = fit_sd_model((e**2).sum(1), x)
    base = np.exp(x @ coef)
    u = (e**2).sum(1) / base**2
    pit = mixture_pit(u, w, k)
    for p in (0.5, 0.9):
        assert abs((pit <= p).mean() - p) < 0.02
    # the effective sd tracks the true one (a Gaussian is a mixture with equal factors)
    eff = base * np.sqrt((w * k**2).sum())
    assert np.corrcoef(np.log(eff), np.log(sd))[0, 1] > 0.99


def _held(truth, hidden):
    coords = truth.copy()
    coords[hidden] = np.nan
    return HeldOut(truth, coords, hidden, np.arange(len(truth)), 0, 0.1, "random", 0.1)


def test_calibration_scores_are_nominal_for_a_correct_gaussian_and_detect_overconfidence(rng):
    n, n_loci = 300, 12
    truth = rng.normal(size=(n, n_loci, 3)).astype(np.float32) * 100
    hidden = np.zeros((n, n_loci), bool)
    hidden[:, [3, 8]] = True
    sd = np.full((n, n_loci), 30.0)
    mean = truth + rng.normal(size=truth.shape) * 30.0  # the truth is a draw from N(mean, 30^2 I)
    good = calibration_scores(_held(truth, hidden), mean, sd, n_draws=300)
    for p in (50, 90):
        assert abs(good[f"coverage_pos_{p}"] - p / 100) < 0.05
        assert abs(good[f"coverage_dist_{p}"] - p / 100) < 0.05
    bad = calibration_scores(_held(truth, hidden), mean, sd / 3, n_draws=300)
    assert bad["coverage_pos_90"] < 0.5 and bad["coverage_dist_90"] < 0.6
    assert good["energy_score"] < bad["energy_score"] and good["crps_dist"] < bad["crps_dist"]  # proper


def test_joint_samples_keep_observed_spots_and_have_the_requested_spread(rng):
    t = tiny_traces(n=40, n_loci=20, seed=3, missing=0.0)
    coords = t.coords.copy()
    free = np.zeros(coords.shape[:2], bool)
    free[:, [4, 5, 12]] = True
    coords[free] = np.nan
    mean = t.coords.copy()
    sd = np.full(free.shape, 50.0, np.float32)
    prior = chain_correlation(np.array([[100.0, 400.0, 1.0]] * 3), 20)
    s = sample_imputations(coords, mean, sd, free, 64, rng, prior)
    assert s.shape == (40, 64, 20, 3)
    np.testing.assert_array_equal(s[:, :, ~free[0]], np.repeat(mean[:, None], 64, 1)[:, :, ~free[0]])
    dev = s[:, :, free[0]] - mean[:, None, free[0]]
    assert abs(dev.std() - 50.0) < 3.0
    # neighbouring missing loci move together (chain correlation), distant ones much less
    c45 = np.corrcoef(dev[:, :, 0, 0].ravel(), dev[:, :, 1, 0].ravel())[0, 1]
    c4_12 = np.corrcoef(dev[:, :, 0, 0].ravel(), dev[:, :, 2, 0].ravel())[0, 1]
    assert c45 > 0.3 and c45 > c4_12 + 0.2


def test_shipped_model_has_a_calibration_and_impute_writes_pointae_sd():
    from pointae.impute.api import impute_traces, load_imputer, model_calibration

    cal = model_calibration(load_imputer(None))
    assert isinstance(cal, Calibration)
    assert abs(cal.info["validation_coverage"]["90"] - 0.9) < 0.03
    t = tiny_traces(n=12, n_loci=30, seed=4, missing=0.15)
    res = impute_traces(t)
    sd = res.layers["pointae_sd"]
    obs = t.mask
    assert (sd[obs] == 0).all()
    assert (sd[~obs] > 0).all() and np.isfinite(sd[~obs]).all()
    assert "pointae_sd" in res.attrs["pointae_impute"]["uncertainty"]


@pytest.mark.parametrize("suffix", ["fofct.csv", "bintu.csv", "csv", "h5"])
def test_streamed_impute_in_chunks_equals_one_chunk_and_writes_samples(shared_data, tmp_path, suffix):
    from pointae.data.io import read_traces, write_traces

    src = tmp_path / f"excerpt.{suffix}"
    write_traces(read_traces(shared_data / "IMR90_chr21-18-20Mb_first300.fofct.csv")[:30], src)
    one, many = tmp_path / f"one.{suffix}", tmp_path / f"many.{suffix}"
    r = runner.invoke(app, ["impute", str(src), "--out", str(one), "--chunk-size", "64"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["impute", str(src), "--out", str(many), "--chunk-size", "7", "--samples", "3"])
    assert r.exit_code == 0, r.output
    assert "traces/s" in r.output
    a, b = read_traces(one), read_traces(many)
    np.testing.assert_array_equal(a.meta["trace_id"].to_numpy(), b.meta["trace_id"].to_numpy())
    np.testing.assert_allclose(a.coords, b.coords, atol=1e-3)
    np.testing.assert_array_equal(a.layers["pointae_status"], b.layers["pointae_status"])
    np.testing.assert_allclose(a.layers["pointae_sd"], b.layers["pointae_sd"], rtol=1e-4)
    if suffix == "fofct.csv":  # Spot_ID continues across chunks
        ids = [
            int(line.split(",", 1)[0]) for line in many.read_text().splitlines() if not line.startswith("#")
        ]
        assert ids == list(range(1, len(ids) + 1))
    src_t = read_traces(src)
    stem = f"many.{suffix}".rsplit(".", 2 if suffix.count(".") else 1)[0].split(".")[0]
    if suffix == "h5":
        import h5py

        with h5py.File(tmp_path / f"{stem}.samples.h5") as f:
            s = f["samples"][:]
        assert s.shape == (30, 3, 65, 3)
        np.testing.assert_array_equal(s[:, 1][src_t.mask], src_t.coords[src_t.mask])
    else:
        import pandas as pd

        df = pd.read_csv(tmp_path / f"{stem}.samples.csv", comment="#")
        assert len(df) == 30 * 3 * 65 and set(df["sample"]) == {0, 1, 2}
        imp = df[df["pointae_status"] == "imputed"]
        assert len(imp) == 3 * int((~src_t.mask).sum())
    assert not list(tmp_path.glob(".*"))  # no scratch or temporary file left behind


def test_cli_evaluate_imputation_prints_calibration_and_writes_the_reliability_diagram(tmp_path):
    t = tiny_traces(n=40, n_loci=25, seed=7, missing=0.04)
    src = tmp_path / "t.h5"
    t.save(src)
    fig = tmp_path / "rel.png"
    r = runner.invoke(app, ["evaluate-imputation", str(src), "--figure", str(fig)])
    assert r.exit_code == 0, r.output
    assert "kriging posterior" in r.output and "pos 90%" in r.output
    assert fig.stat().st_size > 10_000


def test_outlier_probability_is_calibrated_on_planted_outliers(rng):
    from pointae.impute.uncertainty import outlier_probability, probability_calibration

    n, n_loci = 400, 30
    sd = np.full((n, n_loci), 40.0)
    w, k = np.array([0.7, 0.3]), np.array([0.8, 1.4])
    comp = rng.choice(k, size=(n, n_loci), p=w)
    resid = np.linalg.norm(rng.normal(size=(n, n_loci, 3)) * (comp * sd)[..., None], axis=-1)
    planted = rng.random((n, n_loci)) < 0.05
    resid[planted] = np.linalg.norm(rng.normal(size=(planted.sum(), 3)) * 400.0, axis=-1)
    observed = np.ones((n, n_loci), bool)
    prob, fitted = outlier_probability(resid, sd, observed, (w, k))
    assert abs(fitted["prior"] - 0.05) < 0.01
    cal = probability_calibration(prob[observed], planted[observed])
    assert cal["ece"] < 0.02 and cal["mean_prob_outliers"] > 0.8 and cal["mean_prob_clean"] < 0.03
    # a model that ignored the residuals would be far worse
    flat = probability_calibration(np.full(planted.sum() * 0 + n * n_loci, 0.05), planted.ravel())
    assert cal["brier"] < 0.5 * flat["brier"]


def test_denoise_writes_outlier_probabilities():
    from pointae.impute.api import impute_traces

    t = tiny_traces(n=10, n_loci=30, seed=9, missing=0.05)
    res = impute_traces(t, denoise=True)
    p = res.layers["pointae_outlier_prob"]
    assert p.shape == t.mask.shape and (p[~t.mask] == 0).all()
    assert ((p >= 0) & (p <= 1)).all()


# ------------------------------------------------------------ anisotropic predictive (issue 14)
def _radial_case(rng, a_r=1.8, a_t=0.7, n=400, n_loci=14):
    """Truth drawn from an anisotropic Gaussian around the mean: sd 30 * a_r along the direction
    from the centroid of the visible spots, 30 * a_t across it."""
    from pointae.impute.uncertainty import radial_directions

    mean = (rng.normal(size=(n, n_loci, 3)) * 100).astype(np.float64)
    hidden = np.zeros((n, n_loci), bool)
    hidden[:, [2, 6, 11]] = True
    vis = mean.copy()
    vis[hidden] = np.nan
    d = radial_directions(mean, vis)
    z = rng.normal(size=mean.shape)
    zr = (z * d).sum(-1, keepdims=True)
    truth = mean + 30.0 * (a_t * z + (a_r - a_t) * zr * d)
    truth[~hidden] = mean[~hidden]  # visible spots are exact
    return _held(truth.astype(np.float32), hidden), mean, np.full((n, n_loci), 30.0)


def test_anisotropic_scores_are_nominal_when_the_errors_are_radial(rng):
    held, mean, sd = _radial_case(rng)
    iso = calibration_scores(held, mean, sd, n_draws=200)
    aniso = calibration_scores(held, mean, sd, n_draws=200, anisotropy=(1.8, 0.7))
    for p in (50, 90):
        assert abs(aniso[f"coverage_pos_{p}"] - p / 100) < 0.04
        assert abs(aniso[f"coverage_dist_{p}"] - p / 100) < 0.04
    assert iso["coverage_dist_50"] < 0.42  # the isotropic form misses the radial spread
    assert aniso["crps_dist"] < iso["crps_dist"]
    same = calibration_scores(held, mean, sd, n_draws=200, anisotropy=(1.0, 1.0), seed=3)
    ref = calibration_scores(held, mean, sd, n_draws=200, seed=3)
    assert same["coverage_dist_50"] == pytest.approx(ref["coverage_dist_50"])
    assert same["coverage_pos_90"] == pytest.approx(ref["coverage_pos_90"])


def test_fit_anisotropy_recovers_radial_errors_and_round_trips(rng):
    from pointae.impute.uncertainty import fit_anisotropy

    held, mean, sd = _radial_case(rng, n=200)
    cal = Calibration(np.zeros(4), np.array([1.0, 0.0]), np.array([1.0, 1.0]), 1.0, {})
    a_r, a_t, cov = fit_anisotropy(cal, [(held, mean, sd)], n_draws=80)
    assert a_r >= 1.6 and a_t <= 0.8
    assert max(abs(cov["coverage_dist_50"] - 0.5), abs(cov["coverage_pos_90"] - 0.9)) < 0.05
    cal.radial, cal.tangential = a_r, a_t
    back = Calibration.from_dict(cal.to_dict())
    assert back.anisotropy == (a_r, a_t) and "anisotropy" not in back.info
    old = cal.to_dict()
    del old["anisotropy"]  # calibrations stored before issue 14 stay isotropic
    assert Calibration.from_dict(old).anisotropy is None


def test_joint_samples_follow_the_anisotropy(rng):
    from pointae.impute.uncertainty import radial_directions

    t = tiny_traces(n=60, n_loci=16, seed=5, missing=0.0)
    coords = t.coords.copy()
    free = np.zeros(coords.shape[:2], bool)
    free[:, [7]] = True
    coords[free] = np.nan
    sd = np.full(free.shape, 40.0, np.float32)
    prior = chain_correlation(np.array([[100.0, 400.0, 1.0]] * 3), 16)
    s = sample_imputations(coords, t.coords, sd, free, 200, rng, prior, anisotropy=(2.0, 0.5))
    d = radial_directions(t.coords, coords)[:, 7]  # (N, 3)
    dev = s[:, :, 7] - t.coords[:, None, 7]  # (N, K, 3)
    radial = (dev * d[:, None]).sum(-1)
    across = dev - radial[..., None] * d[:, None]
    assert radial.std() == pytest.approx(80.0, rel=0.1)
    assert np.sqrt((across**2).sum(-1).mean() / 2) == pytest.approx(20.0, rel=0.1)


def _rescaled(cal: Calibration, f: float) -> Calibration:
    return Calibration(
        cal.coef, cal.weights, cal.factors, cal.kappa * f, dict(cal.info), cal.radial, cal.tangential
    )


def test_self_calibration_undoes_a_wrong_scale_on_the_inputs_own_visible_spots():
    from pointae.impute.api import impute_coords, load_imputer, model_calibration
    from pointae.impute.protocol import make_held_out
    from pointae.impute.sources import median_neighbour_distance
    from pointae.impute.uncertainty import self_calibrate

    loaded = load_imputer(None)
    t = tiny_traces(n=160, n_loci=24, seed=11, missing=0.03)
    scale = median_neighbour_distance(t.coords)
    right = model_calibration(loaded)
    narrow = _rescaled(right, 0.5)  # overconfident by a factor 2 (a calibration from another lab)
    own = self_calibrate(narrow, loaded.model, t.coords[:100], scale, seeds=(201, 202, 203), match="position")
    info = own.info["self_calibration"]
    assert info["factor"] == pytest.approx(own.kappa / narrow.kappa)  # the factor recorded is the one applied
    # from the right and from the 2x too narrow calibration it lands on the same pointae_sd: the
    # factor is found from the data, not from the starting point (nor clipped at the grid's edge)
    from_right = self_calibrate(
        right, loaded.model, t.coords[:100], scale, seeds=(201, 202, 203), match="position"
    )
    assert own.kappa == pytest.approx(from_right.kappa, rel=0.02)
    assert own.info["self_calibration"]["factor"] == pytest.approx(
        2 * from_right.info["self_calibration"]["factor"], rel=0.02
    )
    assert (
        info["coverage_before"]["coverage_pos_50"] < 0.3
        and abs(info["coverage_after"]["coverage_pos_50"] - 0.5) < 0.06
    )
    # scored on other traces (never seen by the self-calibration): coverage moves to nominal
    held = make_held_out(t.coords[100:], 0.1, seed=5, mode="random", max_missing=0.1)
    out = impute_coords(loaded.model, held.coords, scale)
    cov = {}
    for name, cal in (("narrow", narrow), ("self", own)):
        sd = cal.sd(out["spread"], held.observed, scale, held.coords)
        cov[name] = calibration_scores(
            held, out["coords"], sd, cal.mixture, anisotropy=cal.anisotropy, proper=False
        )
    for p in (50, 90):
        assert abs(cov["self"][f"coverage_pos_{p}"] - p / 100) < abs(
            cov["narrow"][f"coverage_pos_{p}"] - p / 100
        )
        assert abs(cov["self"][f"coverage_pos_{p}"] - p / 100) < 0.12
    assert own.to_dict()["self_calibration"]["factor"] == info["factor"]  # stored with the calibration
    # match="all": the factor that brings all four coverages (position and distances) nearest nominal
    both = self_calibrate(narrow, loaded.model, t.coords[:100], scale, seeds=(201, 202, 203))
    sc = both.info["self_calibration"]
    assert set(sc["coverage_after"]) == {f"coverage_{k}_{p}" for k in ("pos", "dist") for p in (50, 90)}

    def worst(cov):
        return max(abs(v - int(k[-2:]) / 100) for k, v in cov.items())

    assert worst(sc["coverage_after"]) < worst(sc["coverage_before"]) - 0.1 and sc["factor"] > 1.3


def test_self_calibration_refuses_an_input_without_enough_spots():
    from pointae.errors import PointaeError
    from pointae.impute.api import load_imputer, model_calibration
    from pointae.impute.uncertainty import self_calibrate

    loaded = load_imputer(None)
    t = tiny_traces(n=3, n_loci=12, seed=2, missing=0.0)
    with pytest.raises(PointaeError, match="self-calibration needs at least 50 held-out spots"):
        self_calibrate(model_calibration(loaded), loaded.model, t.coords, 100.0, seeds=(1,))


def test_impute_and_evaluate_record_the_self_calibration():
    from pointae.impute.api import evaluate_imputation, impute_traces

    t = tiny_traces(n=60, n_loci=20, seed=12, missing=0.05)
    res = impute_traces(t, self_calibrate=True)
    sc = res.attrs["pointae_impute"]["uncertainty"]["self_calibration"]
    assert 0.5 <= sc["factor"] <= 2.0 and sc["n_spots"] >= 50
    assert "self_calibration" not in impute_traces(t).attrs["pointae_impute"]["uncertainty"]
    ev = evaluate_imputation(
        t, hide=0.1, max_missing=0.1, n_boot=20, place_baselines=False, self_calibrate=True
    )
    info = ev["runs"][0]["_info"]
    assert info["self_calibration_pointae"]["n_spots"] >= 50 and "calibration" in info


def test_self_calibration_scores_distances_on_at_most_max_dist_spots_per_masking():
    from pointae.impute.protocol import make_held_out
    from pointae.impute.uncertainty import _fewer_spots

    t = tiny_traces(n=80, n_loci=24, seed=3, missing=0.02)
    held = make_held_out(t.coords, 0.2, seed=1, mode="random", max_missing=0.1)
    n = int(held.hidden.sum())
    few = _fewer_spots(held, 25, seed=4)
    assert few.hidden.sum() == 25 and not (few.hidden & ~held.hidden).any()  # a subset of the hidden spots
    np.testing.assert_array_equal(few.coords, held.coords)  # what the methods see is unchanged
    assert _fewer_spots(held, n, seed=4) is held  # nothing to drop
    np.testing.assert_array_equal(_fewer_spots(held, 25, seed=4).hidden, few.hidden)  # seeded
