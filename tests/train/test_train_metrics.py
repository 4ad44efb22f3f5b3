from __future__ import annotations

import numpy as np
import pytest

from pointae.data.transforms import distance_maps
from pointae.metrics import euclidean_metrics, map_metrics, mds_error, triangle_violations


def test_map_metrics_known_values():
    t = np.zeros((1, 3, 3))
    t[0, 0, 1], t[0, 0, 2], t[0, 1, 2] = 1.0, 2.0, 3.0
    p = t.copy()
    p[0, 0, 1] += 1.0  # one pair off by 1, another off by -1
    p[0, 1, 2] -= 1.0
    m = map_metrics(p, t, scale=10.0)
    assert m["n_pairs"] == 3
    assert m["mae"] == pytest.approx(2 / 3) and m["rmse"] == pytest.approx(np.sqrt(2 / 3))
    assert m["mae_data"] == pytest.approx(20 / 3)
    mask = np.zeros((1, 3, 3), bool)
    mask[0, 0, 2] = mask[0, 1, 2] = True
    m2 = map_metrics(p, t, mask)
    assert m2["n_pairs"] == 2 and m2["mae"] == pytest.approx(0.5)
    nan = t.copy()
    nan[0, 0, 1] = np.nan
    assert map_metrics(p, nan)["n_pairs"] == 2
    assert map_metrics(p, t, np.zeros_like(mask))["mae"] is None


def test_euclidean_maps_pass_broken_maps_fail(rng):
    x = np.cumsum(rng.normal(size=(6, 20, 3)), axis=1).astype(np.float32)
    d = distance_maps(x)
    assert triangle_violations(d) == 0.0
    assert mds_error(d) < 1e-4
    bad = d.copy()
    bad[:, 0, 19] = bad[:, 19, 0] = 10 * d.max()  # far longer than any two-hop path
    assert triangle_violations(bad) > 0
    assert mds_error(bad) > 0.05
    e = euclidean_metrics(bad)
    assert set(e) == {"triangle_violation_fraction", "mds_error"}
