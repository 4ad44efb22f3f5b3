"""Multi-source training (pointae.impute.sources) and traces too sparse to impute (issue 14)."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from pointae.cli import app
from pointae.data.io import write_traces
from pointae.errors import PointaeError
from pointae.impute.api import MIN_OBSERVED, impute_traces, load_imputer
from pointae.impute.fit import FitConfig
from pointae.impute.model import ImputerConfig
from pointae.impute.sources import Source, fit_sources, median_neighbour_distance, simulated_source
from pointae.testing import tiny_traces

pytestmark = pytest.mark.usefixtures("one_thread")


def _sparse_traces():
    t = tiny_traces(n=6, n_loci=20, seed=3, missing=0.1)
    c = t.coords.copy()
    c[0, 1:] = np.nan  # one observed spot
    c[1, 2:] = np.nan  # two observed spots
    c[2, 3:] = np.nan  # three: enough
    return t._replace(coords=c)


def test_traces_with_too_few_spots_are_left_as_they_are():
    t = _sparse_traces()
    res = impute_traces(t, model=load_imputer(None))
    status = res.layers["pointae_status"]
    for i in (0, 1):  # untouched: coordinates bit for bit, nothing imputed, no spread written
        assert res.coords[i].tobytes() == t.coords[i].tobytes()
        assert (status[i][~t.mask[i]] == "missing").all()
        assert np.isnan(res.layers["pointae_sd"][i][~t.mask[i]]).all()
    assert MIN_OBSERVED == 3 and (status[2][~t.mask[2]] == "imputed").all()
    assert np.isfinite(res.coords[2:]).all()
    info = res.attrs["pointae_impute"]
    assert info["n_traces_too_few_spots"] == 2 and info["min_observed"] == 3
    lower = impute_traces(t, model=load_imputer(None), min_observed=2)
    assert lower.attrs["pointae_impute"]["n_traces_too_few_spots"] == 1


def test_cli_impute_warns_once_about_sparse_traces(tmp_path):
    src, out = tmp_path / "in.h5", tmp_path / "out.h5"
    write_traces(_sparse_traces(), src)
    r = CliRunner().invoke(app, ["impute", str(src), "--out", str(out)])
    assert r.exit_code == 0, r.output
    lines = [ln for ln in r.output.splitlines() if "warning" in ln]
    assert len(lines) == 1 and "2 trace(s) with fewer than 3 observed spots" in lines[0]


def test_simulated_source_matches_detection_rates_of_the_file():
    like = tiny_traces(n=300, n_loci=12, seed=4, missing=0.0)
    c = like.coords.copy()
    det = np.linspace(0.5, 1.0, 12)
    c[np.random.default_rng(0).random(c.shape[:2]) > det[None, :]] = np.nan
    like = like._replace(coords=c)
    src = simulated_source(like, n=400, seed=0)
    assert src.coords.shape == (400, 12, 3) and src.val is None
    got = (~np.isnan(src.coords[..., 0])).mean(0)
    np.testing.assert_allclose(got, like.mask.mean(0), atol=0.08)
    assert src.info["noise_sd"] >= 0 and src.scale == pytest.approx(median_neighbour_distance(src.coords))


def test_fit_sources_trains_on_sources_of_different_lengths_and_units():
    a = tiny_traces(n=48, n_loci=20, seed=5, missing=0.05)
    b = tiny_traces(n=48, n_loci=14, seed=6, missing=0.2)
    b_um = b.coords / 1000.0  # another lab, in micron, fewer loci
    sources = [
        Source("a", a.coords[:40], median_neighbour_distance(a.coords[:40]), a.coords[40:]),
        Source("b", b_um[:40], median_neighbour_distance(b_um[:40]), b_um[40:]),
    ]
    cfg = FitConfig(epochs=2, batch_size=16, crop=12, max_minutes=5)
    model, hist = fit_sources(sources, cfg, ImputerConfig(channels=8, refine_steps=2), log=None)
    assert len(hist) == 2
    for row in hist:
        assert np.isfinite([row["loss_a"], row["loss_b"], row["val_ratio_a"], row["val_ratio_b"]]).all()
        assert row["val_ratio"] == pytest.approx(np.sqrt(row["val_ratio_a"] * row["val_ratio_b"]))
    with pytest.raises(PointaeError, match="at least one source"):
        fit_sources([], cfg)


def test_simulated_source_widens_noise_and_missingness_per_trace():
    like = tiny_traces(n=300, n_loci=16, seed=7, missing=0.05)
    plain = simulated_source(like, n=400, seed=1)
    wide = simulated_source(like, n=400, seed=1, noise_range=(0.5, 2.0), extra_missing=(0.0, 0.4))
    assert wide.info["noise_range"] == [0.5, 2.0] and wide.info["extra_missing"] == [0.0, 0.4]
    assert "noise_range" not in plain.info

    from pointae.sim import simulate

    clean = simulate("wt", n=400, n_loci=16, seed=1).coords  # the same conformations, noise-free

    def noise_sd(c):  # per-trace RMS per-axis noise, in units of the matched sd
        return np.sqrt(np.nanmean((c - clean) ** 2, axis=(1, 2))) / plain.info["noise_sd"]

    lp, lw = np.log(noise_sd(plain.coords)), np.log(noise_sd(wide.coords))
    assert np.nanstd(lp) < 0.15 and abs(np.nanmean(lp)) < 0.1  # one noise level: the matched one
    assert np.nanstd(lw) > 0.3 and np.nanmin(lw) < np.log(0.6) and np.nanmax(lw) > np.log(1.7)
    miss = [np.isnan(s.coords[..., 0]).mean(1) for s in (plain, wide)]
    assert miss[1].mean() == pytest.approx(miss[0].mean() + 0.2 * (1 - miss[0].mean()), abs=0.04)
    assert miss[1].std() > 2 * miss[0].std()
    for bad in ({"noise_range": (0.0, 1.0)}, {"noise_range": (2.0, 1.0)}, {"extra_missing": (0.2, 1.0)}):
        with pytest.raises(PointaeError, match="must satisfy"):
            simulated_source(like, n=10, seed=1, **bad)
