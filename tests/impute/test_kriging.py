"""The exact Gaussian kriging posterior (pointae.impute.kriging) and its Gaussian twin traces."""

from __future__ import annotations

import numpy as np

_VG = np.array([[90.0**2, 120.0**2 / 2, 0.6], [90.0**2, 120.0**2 / 2, 0.6], [50.0**2, 80.0**2 / 2, 0.4]])


def test_gaussian_twin_has_the_requested_variogram_and_gaps():
    from pointae.baselines import fit_chain_variogram
    from pointae.impute.kriging import gaussian_twin

    masks = np.ones((5, 30), bool)
    masks[:, [3, 17]] = False
    twin, clean = gaussian_twin(_VG, 1500, 30, masks=masks, seed=1)
    assert twin.shape == clean.shape == (1500, 30, 3) and np.isnan(twin[:, [3, 17]]).all()
    fit = fit_chain_variogram(twin)
    g1 = lambda v: v[:, 0] + v[:, 1]  # noqa: E731  semivariance between neighbours
    np.testing.assert_allclose(g1(fit), g1(_VG), rtol=0.1)
    # the nugget is well identified where the chain part grows fast enough (alpha 0.6); at alpha
    # 0.4 it trades off against alpha (hence the nugget sensitivity runs of the experiment)
    np.testing.assert_allclose(np.sqrt(fit[:2, 0]), np.sqrt(_VG[:2, 0]), rtol=0.2)


def test_gaussian_posterior_is_kriging_on_all_loci_and_is_calibrated():
    from pointae.baselines import krige_missing
    from pointae.impute.kriging import gaussian_posterior, gaussian_twin
    from pointae.impute.protocol import make_held_out

    twin, _ = gaussian_twin(_VG, 400, 30, seed=2)
    held = make_held_out(twin, hide=0.15, seed=0)
    mean, sd = gaussian_posterior(held.coords, _VG)
    obs = held.observed
    np.testing.assert_array_equal(mean[obs], held.coords[obs])
    np.testing.assert_allclose(mean, krige_missing(held.coords, _VG, half_window=30), atol=1e-2)
    # the posterior sd matches the actual errors (standardised residuals have unit variance)
    z = (held.truth[held.hidden] - mean[held.hidden]) / sd[held.hidden]
    assert 0.85 < z.var(0).mean() < 1.15
    assert (sd[obs] == 0).all() and (sd[held.hidden] > 0).all()
