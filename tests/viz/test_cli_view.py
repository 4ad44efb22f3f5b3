"""CLI: pointae view renders PNGs offscreen (single, compared, gallery)."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from pointae.cli import app
from pointae.testing import tiny_traces

pytest.importorskip("open3d")
pytestmark = pytest.mark.viz
runner = CliRunner()
BINTU = "IMR90_chr21-18-20Mb.csv"


def _img(path):
    import matplotlib.image as mpimg

    return mpimg.imread(path)[..., :3]


def _ok(res):
    assert res.exit_code == 0, res.output
    return res.output


def test_view_png_on_bintu_file_differs_between_traces(shared_data, tmp_path):
    src = str(shared_data / BINTU)
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    _ok(runner.invoke(app, ["view", src, "--trace", "3", "--png", str(a), "--size", "480x360"]))
    _ok(runner.invoke(app, ["view", src, "--trace", "4", "--png", str(b), "--size", "480x360"]))
    ia, ib = _img(a), _img(b)
    assert ia.shape == (360, 480, 3)
    assert len(np.unique((ia * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 50  # not one colour
    assert np.abs(ia - ib).mean() > 0.01


def test_view_compare_reconstruction_and_gallery(tmp_path):
    t = tiny_traces(n=6, n_loci=83, seed=3)
    src = tmp_path / "syn83.h5"
    t.save(src)
    rec = tmp_path / "rec.h5"
    _ok(runner.invoke(app, ["reconstruct", str(src), "--out", str(rec), "--method", "mds"]))
    out = tmp_path / "cmp.png"
    text = _ok(
        runner.invoke(
            app, ["view", str(src), "-t", "t2", "--compare", str(rec), "--png", str(out), "--size", "600x300"]
        )
    )
    assert "wrote" in text and _img(out).shape == (300, 600, 3)
    ov = tmp_path / "ov.png"
    _ok(
        runner.invoke(
            app, ["view", str(src), "-t", "t2", "--compare", str(rec), "--overlay", "--png", str(ov)]
        )
    )
    grid = tmp_path / "grid.png"
    _ok(runner.invoke(app, ["view", str(src), "--gallery", "4", "--png", str(grid), "--size", "400x300"]))
    assert _img(grid).std() > 0.05


def test_view_errors(tmp_path):
    t = tiny_traces(n=2, n_loci=10)
    src = tmp_path / "t.csv"
    t.save(src)
    for args, msg in [
        (["view", str(src), "--png", str(tmp_path / "x.png")], "--trace"),
        (["view", str(src), "-t", "zz", "--png", str(tmp_path / "x.png")], "zz"),
        (["view", str(src), "-t", "t0", "--png", str(tmp_path / "x.png"), "--size", "big"], "--size"),
        (["view", str(src), "--gallery", "2"], "--png"),
        (["view", str(src), "-t", "t0", "--compare", str(src), "--model", "m", "--png", "x.png"], "not both"),
    ]:
        res = runner.invoke(app, args)
        assert res.exit_code == 1 and msg in res.output, (args, res.output)
    assert not (tmp_path / "x.png").exists()


def test_view_model_draws_imputed_trace(tmp_path, monkeypatch):
    """--model RUN goes through the one handle, PointAE.load(RUN).impute (replaced here by
    interpolation)."""
    from pointae.api import PointAE
    from pointae.baselines import interpolate_missing

    calls = []

    class FakeRun:
        def impute(self, traces):
            st = np.where(traces.mask, "observed", "imputed")
            out = traces.with_coords(interpolate_missing(traces.coords))
            out.layers = {"pointae_status": st, "pointae_confidence": np.where(traces.mask, 1.0, 0.5)}
            return out

    def fake_load(run, device="cpu"):
        calls.append(str(run))
        return FakeRun()

    monkeypatch.setattr(PointAE, "load", fake_load)
    t = tiny_traces(n=3, n_loci=20, seed=4, missing=0.3)
    src = tmp_path / "t.h5"
    t.save(src)
    png = tmp_path / "m.png"
    _ok(runner.invoke(app, ["view", str(src), "-t", "t1", "--model", "runs/x", "--png", str(png)]))
    assert calls == ["runs/x"] and _img(png).std() > 0.05
