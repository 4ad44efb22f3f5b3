"""The one evaluator: a run's metrics.json and the comparison report give identical numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pointae.config import TaskConfig
from pointae.train.evaluate import BASELINES, corrupt_for_eval, evaluate, score_task


def test_compare_and_run_metrics_are_identical(tmp_path, small_traces, fast):
    """Acceptance (issue 13): for the same model and split, the run's own metrics.json (written by
    fit) and the comparison's metrics.json hold the same numbers, for the model and its baselines."""
    from pointae.analysis.compare import compare

    res = compare(
        small_traces,
        reprs=["map"],
        tasks=["autoencode", "denoise", "inpaint"],
        regimes=["bottleneck"],
        out=tmp_path / "rep",
        overrides=[*fast, "train.max_epochs=1", "train.threads=1"],
        layout="pca",
        sweeps=False,
    )
    saved = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    for t in ("autoencode", "denoise", "inpaint"):
        run = json.loads(
            (tmp_path / "rep" / "runs" / ("map-autoencode" if t == "autoencode" else f"map-{t}-bottleneck"))
            .joinpath("metrics.json")
            .read_text()
        )
        rep = saved["tasks"][t]
        assert (
            run["model"]
            == rep["models"]["bottleneck"]["map"]
            == res.metrics["tasks"][t]["models"]["bottleneck"]["map"]
        )
        assert run["baselines"] == rep["baselines"]
        assert set(run["baselines"]) == set(BASELINES[t]) and not run["baselines_skipped"]
        assert run["model"]["n_pairs"] > 0 and run["model"]["mae"] > 0


def test_evaluation_corruption_is_seeded_and_scaled(small_traces):
    tc = TaskConfig(name="denoise", outlier_fraction=0.2)
    a = corrupt_for_eval("denoise", tc, small_traces.coords, scale=100.0, seed=4)
    b = corrupt_for_eval("denoise", tc, small_traces.coords, scale=100.0, seed=4)
    c = corrupt_for_eval("denoise", tc, small_traces.coords, scale=100.0, seed=5)
    np.testing.assert_array_equal(a.coords, b.coords)
    assert not np.array_equal(a.changed, c.changed)
    # displaced loci move by 2-5 scale units (the default outlier_magnitude)
    d = np.linalg.norm(a.coords - a.clean, axis=-1)[a.changed]
    assert d.size > 0 and np.all(d > 150.0) and np.all(d < 550.0)
    h = corrupt_for_eval("inpaint", TaskConfig(name="inpaint"), small_traces.coords, scale=1.0, level=0.4)
    frac = h.changed.sum() / (~np.isnan(small_traces.coords[..., 0])).sum()
    assert 0.3 < frac < 0.5 and np.isnan(h.coords[h.changed]).all()


class _Oracle:
    """A stand-in model that returns the clean maps: perfect on every pair."""

    def __init__(self, traces):
        self.clean, self.scale = traces, traces.median_neighbour_distance()

    def reconstruct(self, traces, batch_size=256):
        return self.clean.distance_maps()


def test_evaluate_scores_a_perfect_model_zero_and_skips_fitted_baselines_without_reference(small_traces):
    t = small_traces[:12]
    r = evaluate(_Oracle(t), t, task="inpaint", euclidean=False)
    assert r["model"]["mae"] == 0.0 and r["model"]["n_pairs"] > 0
    assert r["beats_baselines"] == {"linear_interp": True}
    a = evaluate(_Oracle(t), t, task="autoencode", euclidean=False)
    assert a["baselines"] == {} and "pca_dist" in a["baselines_skipped"]
    a = evaluate(_Oracle(t), t, task="autoencode", reference=small_traces[12:], euclidean=False)
    assert a["baselines"]["pca_dist"]["mae"] > 0 and a["beats_baselines"]["pca_dist"] is True


def test_score_task_focus_pairs():
    clean = np.zeros((1, 4, 3), np.float32)
    clean[0, :, 0] = [0, 1, 2, 3]
    tc = TaskConfig(name="inpaint")
    inp = corrupt_for_eval("autoencode", tc, clean, scale=1.0)
    inp.changed[0, 1] = True
    pred = inp.truth + 1.0
    s = score_task("inpaint", pred, inp)
    assert s["n_pairs"] == 3 and s["mae"] == pytest.approx(1.0)  # pairs (0,1), (1,2), (1,3)
    d = score_task("denoise", pred, inp)
    assert d["n_pairs"] == 6 and d["n_pairs_changed"] == 3
