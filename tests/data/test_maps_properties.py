"""Property tests (hypothesis) of the representations' invariants: distance maps, map scaling,
corruptions and the Traces container."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pointae.data.corrupt import add_outliers, hide_loci
from pointae.data.traces import Traces
from pointae.data.transforms import MapScaler, distance_maps, pair_mask
from pointae.testing import assert_rigid_invariant, assert_valid_map

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def coords_with_missing(draw, max_n: int = 5, max_loci: int = 14, min_observed: int = 0):
    """``(N, L, 3)`` float32 coordinates (|x| <= 1e4) with whole loci set to NaN."""
    n = draw(st.integers(1, max_n))
    n_loci = draw(st.integers(2, max_loci))
    scale = draw(st.sampled_from([1.0, 100.0, 1e4]))
    unit = st.floats(-1.0, 1.0, width=32, allow_nan=False, allow_infinity=False)
    c = draw(arrays(np.float32, (n, n_loci, 3), elements=unit)) * np.float32(scale)
    missing = draw(arrays(np.bool_, (n, n_loci)))
    if min_observed:
        missing[:, :min_observed] = False
    c[missing] = np.nan
    return c


def _reference(c: np.ndarray) -> np.ndarray:
    x = c.astype(np.float64)
    return np.sqrt(((x[:, :, None, :] - x[:, None, :, :]) ** 2).sum(-1))


# ---------------------------------------------------------------- distance maps
@SETTINGS
@given(coords_with_missing())
def test_distance_maps_are_valid_and_mask_aware(c):
    d = distance_maps(c)
    n, n_loci = c.shape[:2]
    assert d.shape == (n, n_loci, n_loci) and d.dtype == np.float32
    m = ~np.isnan(c[..., 0])
    # NaN exactly where one of the two loci is missing
    np.testing.assert_array_equal(np.isnan(d), ~pair_mask(m))
    # exact symmetry (same NaN pattern, identical values), exact zero diagonal on observed loci
    np.testing.assert_array_equal(d, np.swapaxes(d, 1, 2))
    diag = np.diagonal(d, axis1=1, axis2=2)
    assert np.all(diag[m] == 0.0)
    assert np.all(d[~np.isnan(d)] >= 0.0)
    assert_valid_map(d, allow_nan=True)
    # close to a float64 reference
    scale = max(1.0, float(np.nanmax(np.abs(c), initial=1.0)))
    np.testing.assert_allclose(d, _reference(c), rtol=0, atol=2e-3 * scale, equal_nan=True)


@SETTINGS
@given(coords_with_missing(), st.integers(0, 2**32 - 1), st.booleans())
def test_distance_maps_rigid_invariant(c, seed, reflect):
    rng = np.random.default_rng(seed)
    assert_rigid_invariant(distance_maps, c, rng, rtol=2e-3, reflect=reflect)


@SETTINGS
@given(coords_with_missing())
def test_numpy_and_torch_paths_agree(c):
    import torch

    from pointae.data.transforms import distance_maps_torch

    d_np = distance_maps(c)
    d_t = distance_maps_torch(torch.from_numpy(c)).numpy()
    scale = max(1.0, float(np.nanmax(np.abs(c), initial=1.0)))
    np.testing.assert_allclose(d_np, d_t, rtol=0, atol=1e-5 * scale, equal_nan=True)
    np.testing.assert_array_equal(d_t, np.swapaxes(d_t, 1, 2))


def test_non_finite_coordinates_make_a_locus_missing():
    c = np.arange(18, dtype=np.float32).reshape(1, 6, 3)
    c[0, 2, 1] = np.inf
    c[0, 4, 0] = np.nan
    d = distance_maps(c)
    miss = np.array([False, False, True, False, True, False])
    np.testing.assert_array_equal(np.isnan(d[0]), miss[:, None] | miss[None, :])


def test_distance_maps_chunking_is_seamless():
    rng = np.random.default_rng(0)
    c = rng.normal(scale=300, size=(50, 11, 3)).astype(np.float32)
    c[rng.random((50, 11)) < 0.2] = np.nan
    np.testing.assert_array_equal(distance_maps(c, chunk=7), distance_maps(c))


# ---------------------------------------------------------------- map scaling
@SETTINGS
@given(coords_with_missing(min_observed=2), st.sampled_from(["dataset", "per_map", "none"]))
def test_map_scaler_round_trip(c, policy):
    t = Traces(c)
    maps = t.distance_maps()
    assume(policy != "dataset" or t.median_neighbour_distance() > 1e-3)
    s = MapScaler(policy).fit(t)
    scaled, per_map = s.transform(maps)
    np.testing.assert_array_equal(np.isnan(scaled), np.isnan(maps))
    back = s.inverse(scaled, per_map)
    scale = max(1.0, float(np.nanmax(maps, initial=1.0)))
    np.testing.assert_allclose(back, maps, rtol=1e-5, atol=1e-5 * scale, equal_nan=True)
    if policy == "per_map":
        assert np.nanmax(scaled, initial=0.0) <= 1.0 + 1e-6
    if policy == "dataset":
        assert s.scale == pytest.approx(t.median_neighbour_distance())


# ---------------------------------------------------------------- corruptions
@SETTINGS
@given(coords_with_missing(), st.floats(0.0, 1.0), st.integers(0, 2**32 - 1))
def test_add_outliers_pure_deterministic_exact(c, fraction, seed):
    before = c.copy()
    a = add_outliers(c, fraction, np.random.default_rng(seed))
    b = add_outliers(c, fraction, np.random.default_rng(seed))
    np.testing.assert_array_equal(c, before)  # input untouched
    np.testing.assert_array_equal(a.coords, b.coords)
    np.testing.assert_array_equal(a.changed, b.changed)
    observed = ~np.isnan(c[..., 0])
    assert not (a.changed & ~observed).any()
    # unchanged loci are bit-identical, changed loci moved
    np.testing.assert_array_equal(a.coords[~a.changed], c[~a.changed])
    moved = np.linalg.norm(a.coords.astype(np.float64) - c, axis=-1)
    bonds = np.linalg.norm(np.diff(c, axis=1), axis=-1)
    bonds = bonds[np.isfinite(bonds)]
    displacement = 2.0 * (float(np.median(bonds)) if bonds.size else 1.0)  # the smallest one
    if displacement > 1e-5 * max(1.0, float(np.nanmax(np.abs(c), initial=1.0))):
        assert np.all(moved[a.changed] > 0)


@SETTINGS
@given(coords_with_missing(), st.floats(0.0, 0.9), st.integers(0, 2**32 - 1))
def test_hide_loci_pure_deterministic_exact(c, fraction, seed):
    before = c.copy()
    a = hide_loci(c, fraction, np.random.default_rng(seed))
    b = hide_loci(c, fraction, np.random.default_rng(seed))
    np.testing.assert_array_equal(c, before)
    np.testing.assert_array_equal(a.coords, b.coords)
    np.testing.assert_array_equal(a.changed, b.changed)
    obs_in = ~np.isnan(c[..., 0])
    obs_out = ~np.isnan(a.coords[..., 0])
    # changed marks exactly the newly hidden loci; the rest is untouched
    np.testing.assert_array_equal(a.changed, obs_in & ~obs_out)
    assert not (obs_out & ~obs_in).any()
    np.testing.assert_array_equal(a.coords[obs_out], c[obs_out])
    # at least two observed loci kept (or all, when a trace had fewer)
    assert np.all(obs_out.sum(1) >= np.minimum(2, obs_in.sum(1)))


# ---------------------------------------------------------------- Traces container
@st.composite
def traces_strategy(draw):
    c = draw(coords_with_missing(max_n=9))
    n, n_loci = c.shape[:2]
    meta = pd.DataFrame(
        {
            "trace_id": [f"t{i}" for i in range(n)],
            "label": draw(st.lists(st.sampled_from("ab"), min_size=n, max_size=n)),
        }
    )
    layers = {"q": np.arange(n * n_loci, dtype=np.int64).reshape(n, n_loci)}
    return Traces(c, meta=meta, layers=layers)


@SETTINGS
@given(traces_strategy(), st.data())
def test_traces_indexing_slices_everything(t, data):
    n = len(t)
    idx = np.array(data.draw(st.lists(st.integers(0, n - 1), max_size=2 * n)), dtype=np.int64)
    sub = t[idx]
    np.testing.assert_array_equal(sub.coords, t.coords[idx])
    np.testing.assert_array_equal(sub.mask, t.mask[idx])
    np.testing.assert_array_equal(sub.layers["q"], t.layers["q"][idx])
    assert sub.meta["trace_id"].tolist() == t.meta["trace_id"].to_numpy()[idx].tolist()
    boolean = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    np.testing.assert_array_equal(t[boolean].layers["q"], t.layers["q"][boolean])
    np.testing.assert_array_equal(t.mask, ~np.isnan(t.coords).any(-1))
    one = t[n - 1]
    assert len(one) == 1 and one.trace_ids[0] == t.trace_ids[-1]


@SETTINGS
@given(traces_strategy(), st.integers(0, 1000), st.floats(0.0, 0.5), st.floats(0.0, 0.4))
def test_split_partitions_and_concat_restores(t, seed, test_fraction, val_fraction):
    assume(test_fraction + val_fraction < 1)
    s = t.split(test_fraction=test_fraction, val_fraction=val_fraction, seed=seed)
    parts = [s["train"], s["val"], s["test"]]
    allidx = np.concatenate(parts)
    np.testing.assert_array_equal(np.sort(allidx), np.arange(len(t)))  # a partition
    s2 = t.split(test_fraction=test_fraction, val_fraction=val_fraction, seed=seed)
    for k in s:
        np.testing.assert_array_equal(s[k], s2[k])  # reproducible by seed
    joined = Traces.concat([t[p] for p in parts if len(p)])
    np.testing.assert_array_equal(joined.coords, t.coords[allidx])
    np.testing.assert_array_equal(joined.layers["q"], t.layers["q"][allidx])
    assert joined.trace_ids.tolist() == t.trace_ids[allidx].tolist()


def test_assert_valid_map_rejects_bad_maps():
    """The helper the property tests rely on must fail on each kind of invalid map."""
    rng = np.random.default_rng(0)
    c = rng.normal(size=(6, 3))
    good = np.linalg.norm(c[:, None] - c[None], axis=-1)
    assert_valid_map(good)
    bad = {
        "NaN": good.copy(),
        "asymmetric": good.copy(),
        "diagonal": good.copy(),
        "negative": good.copy(),
        "inf": good.copy(),
    }
    bad["NaN"][1, 2] = bad["NaN"][2, 1] = np.nan
    bad["asymmetric"][1, 2] += 0.5
    bad["diagonal"][3, 3] = 0.5
    bad["negative"][1, 2] = bad["negative"][2, 1] = -0.5
    bad["inf"][0, 4] = bad["inf"][4, 0] = np.inf
    for m in bad.values():
        with pytest.raises(AssertionError):
            assert_valid_map(m)
    # a data map's missing locus: NaN allowed when asked for, but only in a symmetric pattern
    assert_valid_map(bad["NaN"], allow_nan=True)
    one_sided = good.copy()
    one_sided[1, 2] = np.nan
    with pytest.raises(AssertionError, match="NaN pattern"):
        assert_valid_map(one_sided, allow_nan=True)
