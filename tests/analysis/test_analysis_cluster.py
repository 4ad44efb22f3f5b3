"""Layouts, clusterings, label metrics, the PCA baseline and streaming helpers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from analysis_helpers import labelled_traces

from pointae.analysis.cluster import (
    ClusterMeans,
    DistancePCA,
    cluster_points,
    compute_layout,
    knn_accuracy,
    label_columns,
    label_metrics,
    representative_points,
    upper_triangle_features,
)
from pointae.errors import PointaeError


def _blobs(rng, n=150, d=5, sep=8.0):
    y = rng.integers(0, 3, n)
    centres = rng.normal(size=(3, d)) * sep
    return centres[y] + rng.normal(size=(n, d)), y


def test_label_metrics_separable_vs_random(rng):
    z, y = _blobs(rng)
    good = label_metrics(z, y, seed=0)
    assert good["ari"] > 0.95 and good["nmi"] > 0.9
    assert good["knn_accuracy"] > 0.95 and good["silhouette"] > 0.5
    assert good["n_classes"] == 3 and good["n_points"] == 150
    noise = label_metrics(rng.normal(size=z.shape), y, seed=0)
    assert abs(noise["ari"]) < 0.1
    assert noise["knn_accuracy"] < 0.6  # near chance (~1/3)
    assert noise["knn_accuracy"] < good["knn_accuracy"]


def test_label_metrics_subsamples_large_inputs(rng):
    z, y = _blobs(rng, n=600)
    m = label_metrics(z, y, max_points=200)
    assert m["n_points"] == 200 and m["ari"] > 0.9


def test_label_metrics_leave_out_points_without_a_label(rng):
    z, y = _blobs(rng, n=200)
    lab = np.array([str(v) for v in y], dtype=object)
    # a fourth "class" of far-away points whose label is missing: outside the label's scope
    z = np.concatenate([z, rng.normal(size=(100, z.shape[1])) + 100.0])
    lab = np.concatenate([lab, np.array([None, np.nan, ""] * 33 + [None], dtype=object)])
    m = label_metrics(z, lab, seed=0)
    assert m["n_points"] == 200 and m["n_classes"] == 3
    assert m["ari"] > 0.95 and m["knn_accuracy"] > 0.95
    with pytest.raises(PointaeError, match="no point has a label"):
        label_metrics(z[:5], [None] * 5)


def test_knn_accuracy_handles_rare_classes(rng):
    z = rng.normal(size=(40, 3))
    y = np.array(["a"] * 38 + ["b"] * 2)  # rarer than the number of folds: plain K-fold
    acc = knn_accuracy(z, y, k=5, folds=5)
    assert 0.0 <= acc <= 1.0


@pytest.mark.parametrize("method", ["kmeans", "agglomerative"])
def test_cluster_points_recovers_blobs(rng, method):
    from sklearn.metrics import adjusted_rand_score

    z, y = _blobs(rng)
    cl = cluster_points(z, method, k=3, seed=0)
    assert cl.shape == (150,) and cl.dtype == np.int64
    assert adjusted_rand_score(y, cl) > 0.95


def test_leiden_names_the_missing_extra(rng):
    pytest.importorskip("sklearn")
    try:
        import igraph  # noqa: F401
        import leidenalg  # noqa: F401
    except ImportError:
        with pytest.raises(PointaeError, match="leidenalg"):
            cluster_points(rng.normal(size=(30, 3)), "leiden")
    else:  # pragma: no cover - only where the extra is installed
        assert cluster_points(rng.normal(size=(30, 3)), "leiden").shape == (30,)


def test_bad_inputs_are_clear_errors(rng):
    with pytest.raises(PointaeError, match="unknown clustering"):
        cluster_points(rng.normal(size=(10, 2)), "dbscan")
    with pytest.raises(PointaeError, match="between 1 and 10"):
        cluster_points(rng.normal(size=(10, 2)), "kmeans", k=11)
    with pytest.raises(PointaeError, match="NaN"):
        cluster_points(np.full((10, 2), np.nan))
    with pytest.raises(PointaeError, match="unknown layout"):
        compute_layout(rng.normal(size=(10, 2)), "mds")


def test_tsne_layout_shape(rng):
    xy = compute_layout(rng.normal(size=(60, 4)), "tsne", seed=0)
    assert xy.shape == (60, 2) and xy.dtype == np.float32 and np.isfinite(xy).all()


def test_distance_pca_streaming_matches_batch_and_reconstructs():
    t = labelled_traces(n=300, n_loci=12, seed=1)
    scale = t.median_neighbour_distance()
    full = DistancePCA(6, scale=scale).fit(t.coords)
    stream = DistancePCA(6, scale=scale)
    for s in range(0, 300, 100):
        stream.partial_fit(t.coords[s : s + 100])
    stream.finish()
    a, b = full.transform(t.coords), stream.transform(t.coords)
    assert a.shape == (300, 6)
    # same subspace: projections agree up to the sign of each component
    for k in range(3):
        assert abs(abs(np.corrcoef(a[:, k], b[:, k])[0, 1]) - 1) < 1e-3
    rec = full.inverse_maps(a)
    assert rec.shape == (300, 12, 12)
    np.testing.assert_allclose(rec, rec.transpose(0, 2, 1))
    assert (rec >= 0).all() and np.all(np.diagonal(rec, axis1=1, axis2=2) == 0)
    truth = t.distance_maps()
    ok = np.isfinite(truth)
    err = np.abs(rec - truth)[ok].mean()
    naive = np.abs(np.nanmean(truth, 0) - truth)[ok].mean()
    assert err < naive  # better than the mean map
    assert 0 < full.explained_variance_ratio <= 1


def test_distance_pca_of_log_distances():
    t = labelled_traces(n=300, n_loci=12, seed=1)
    scale = t.median_neighbour_distance()
    lg = DistancePCA(6, scale=scale, log=True).fit(t.coords)
    x = lg.features(t.coords)
    lin = DistancePCA(6, scale=scale).features(t.coords)
    ok = np.isfinite(lin)
    np.testing.assert_allclose(x[ok], np.log(np.maximum(lin[ok], 1e-3)), rtol=1e-5)  # floored
    rec = lg.inverse_maps(lg.transform(t.coords))  # back in the data's unit, exp of the log model
    truth = t.distance_maps()
    fin = np.isfinite(truth)
    assert (rec >= 0).all() and np.all(np.diagonal(rec, axis1=1, axis2=2) == 0)
    assert np.abs(rec - truth)[fin].mean() < np.abs(np.nanmean(truth, 0) - truth)[fin].mean()
    # the toy loop (loci 3 and 8 pulled together) is a large relative change: found by log-PCA
    y = t.meta["loop_state"].to_numpy()
    assert label_metrics(lg.transform(t.coords), y, seed=0)["knn_accuracy"] > 0.8


def test_upper_triangle_features():
    m = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    np.testing.assert_array_equal(upper_triangle_features(m)[0], [1, 2, 3, 6, 7, 11])


def test_representative_points_spread(rng):
    xy = rng.uniform(size=(500, 2))
    idx = representative_points(xy, n=9, seed=0)
    assert len(idx) > 1
    assert len(idx) <= 9
    assert len(np.unique(idx)) == len(idx)
    # spread: the chosen points are far apart compared with random neighbours
    d = np.linalg.norm(xy[idx][:, None] - xy[idx][None], axis=-1)
    assert d[np.triu_indices(len(idx), 1)].min() > 0.05


def test_cluster_means_streaming_equals_nanmean(rng):
    maps = rng.uniform(size=(30, 5, 5)).astype(np.float32)
    maps[rng.random(maps.shape) < 0.1] = np.nan
    cl = rng.integers(0, 3, 30)
    acc = ClusterMeans(3, 5)
    acc.update(maps[:10], cl[:10])
    acc.update(maps[10:], cl[10:])
    for k in range(3):
        np.testing.assert_allclose(acc.means()[k], np.nanmean(maps[cl == k], 0), rtol=1e-5)
    assert acc.sizes.sum() == 30


def test_label_columns_auto_and_requested():
    obs = pd.DataFrame(
        {
            "trace_id": [f"t{i}" for i in range(20)],
            "condition": ["a", "b"] * 10,
            "rg": np.linspace(0, 1, 20),
            "n_observed": [5] * 10 + [6] * 10,
            "uniq": [str(i) for i in range(20)],
        }
    )
    assert label_columns(obs) == ["condition"]
    assert label_columns(obs, ["uniq"]) == ["uniq"]
    with pytest.raises(PointaeError, match="nope"):
        label_columns(obs, ["nope"])
