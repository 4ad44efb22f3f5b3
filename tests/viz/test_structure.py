"""Offscreen rendering of structures with open3d (legacy Visualizer, hidden window)."""

from __future__ import annotations

import numpy as np
import pytest

from pointae.errors import PointaeError
from pointae.testing import tiny_traces

o3d = pytest.importorskip("open3d")
pytestmark = pytest.mark.viz


def _png(path):
    import matplotlib.image as mpimg

    return mpimg.imread(path)[..., :3]


@pytest.fixture(scope="module")
def traces():
    t = tiny_traces(n=6, n_loci=24, seed=5)
    from pointae.baselines import interpolate_missing

    st = np.where(t.mask, "observed", "missing").astype(object)
    coords = t.coords.copy()
    coords[0] = interpolate_missing(coords[0])  # trace t0: every locus has coordinates
    st[0] = "observed"
    st[0, 6] = "imputed"
    st[0, 12] = "corrected"
    t = t.with_coords(coords)
    t.layers = {"pointae_status": st.astype(str)}
    return t


def test_trace_geometries_leave_missing_loci_out(traces):
    from pointae.viz.structure import trace_geometries

    x = np.zeros((8, 3))
    x[:, 0] = np.arange(8) * 100.0  # a straight chain, 100 nm steps
    x[3] = np.nan
    mesh = trace_geometries(x, radius=10.0)[0]
    assert isinstance(mesh, o3d.geometry.TriangleMesh) and len(mesh.vertices) > 0
    v = np.asarray(mesh.vertices)
    # no sphere at the missing locus (only the thin bridge's end caps at 200 and 400 nm)
    assert np.linalg.norm(v - [300.0, 0, 0], axis=1).min() > 50.0
    assert np.linalg.norm(v - [200.0, 0, 0], axis=1).min() < 11.0
    # imputed/corrected loci get cages (LineSets)
    g0 = trace_geometries(traces.coords[0], traces.layers["pointae_status"][0], radius=10.0)
    assert sum(isinstance(g, o3d.geometry.LineSet) for g in g0) == 2
    with pytest.raises(PointaeError):
        trace_geometries(np.full((4, 3), np.nan))


def test_render_frame_is_not_blank_and_differs_between_traces(traces):
    from pointae.viz.structure import render_frame, trace_geometries

    a = render_frame(trace_geometries(traces.coords[1]), size=(160, 120))
    b = render_frame(trace_geometries(traces.coords[2]), size=(160, 120))
    assert a.shape == (120, 160, 3) and a.dtype == np.uint8
    for img in (a, b):
        assert len(np.unique(img.reshape(-1, 3), axis=0)) > 20  # not a single colour
        assert (img < 250).any(2).mean() > 0.01  # something drawn on the white background
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 1.0


def test_render_trace_png_single_compare_overlay(traces, tmp_path):
    from pointae.recon import reconstruct_traces
    from pointae.viz.structure import render_trace

    p1 = render_trace(traces, "t0", tmp_path / "one.png", size=(400, 300))
    img1 = _png(p1)
    assert img1.shape[:2] == (300, 400)
    assert img1.std() > 0.05
    rec, _ = reconstruct_traces(traces[:2], method="mds")
    p2 = render_trace(traces, "t1", tmp_path / "cmp.png", compare=rec, compare_label="MDS", size=(400, 300))
    p3 = render_trace(traces, "t1", tmp_path / "ov.png", compare=rec, overlay=True, size=(400, 300))
    img2, img3 = _png(p2), _png(p3)
    assert not np.allclose(img1, img2) and not np.allclose(img2, img3)
    with pytest.raises(PointaeError, match="not found"):
        render_trace(traces, "nope", tmp_path / "x.png")
    with pytest.raises(PointaeError, match="png"):
        render_trace(traces, "t0", tmp_path / "x.jpg")
    assert not (tmp_path / "x.png").exists()


def test_gallery_png(traces, tmp_path):
    from pointae.viz.structure import render_gallery

    p = render_gallery(traces, tmp_path / "g.png", n=4, size=(400, 300))
    img = _png(p)
    assert img.shape[:2] == (300, 400)
    # four frames: each quadrant holds drawn pixels
    h, w = img.shape[:2]
    for qy in (0, 1):
        for qx in (0, 1):
            q = img[qy * h // 2 : (qy + 1) * h // 2, qx * w // 2 : (qx + 1) * w // 2]
            assert (q < 0.95).any(2).mean() > 0.01


def test_show_needs_a_display(traces, monkeypatch):
    from pointae.viz.structure import show_trace

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(PointaeError, match="--png"):
        show_trace(traces, "t0")
