"""compare(): identical evaluation of every repr x task, baselines, verdicts, report files.

The fast tests use a stand-in trainer/loader (PCA "models" written as run directories); the slow
test trains real models with pointae.train.fit.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from analysis_helpers import labelled_traces, standin_loader_for, standin_trainer

from pointae.analysis.compare import compare, evaluate_maps, summary_text
from pointae.errors import PointaeError


@pytest.fixture(scope="module")
def traces():
    return labelled_traces(n=160, n_loci=12, seed=3)


def test_evaluate_maps_on_pairs():
    truth = np.zeros((1, 3, 3))
    pred = np.array([[[0, 1, 2], [1, 0, 4], [2, 4, 0]]], float)
    pairs = np.zeros((1, 3, 3), bool)
    pairs[0, 0, 2] = pairs[0, 1, 2] = True
    e = evaluate_maps(pred, truth, pairs)
    assert e["n_pairs"] == 2 and e["mae"] == 3.0 and np.isclose(e["rmse"], np.sqrt(10))
    assert evaluate_maps(pred, truth)["n_pairs"] == 3


def test_compare_with_standin_models(tmp_path, traces):
    res = compare(
        traces,
        reprs=["map", "graph"],
        tasks=["autoencode", "denoise", "inpaint"],
        out=tmp_path / "rep",
        overrides=["train.max_epochs=3"],
        latent_dim=4,
        layout="pca",
        trainer=standin_trainer,
        loader=standin_loader_for(traces, d=4),
    )
    m = res.metrics
    for f in ("report.html", "report.md", "metrics.json"):
        assert (tmp_path / "rep" / f).is_file()
    saved = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert saved["schema"] == "pointae.compare/1" and "keys" in saved
    assert set(saved["runs"]) == {"map", "graph"} and set(saved["runs"]["map"]) == {
        "autoencode",
        "denoise",
        "inpaint",
    }
    assert saved["runs"]["map"]["autoencode"]["epochs"] == 3
    # every model and baseline is scored on the same pairs
    for t, bases in (
        ("autoencode", {"pca_dist"}),
        ("denoise", {"neighbour_rule", "corrupted_input"}),
        ("inpaint", {"linear_interp"}),
    ):
        res_t = m["tasks"][t]
        assert set(res_t["baselines"]) == bases
        n_pairs = {v["n_pairs"] for v in [*res_t["models"].values(), *res_t["baselines"].values()]}
        assert len(n_pairs) == 1 and n_pairs.pop() > 0
    # the stand-in model IS a PCA of distances fitted on all traces: close to the PCA baseline
    ae = m["tasks"]["autoencode"]
    assert ae["models"]["map"]["mae"] == pytest.approx(ae["baselines"]["pca_dist"]["mae"], rel=0.2)
    # denoise: the corrupted input is worse at the outliers than the neighbour rule
    dn = m["tasks"]["denoise"]["baselines"]
    assert dn["corrupted_input"]["mae_changed"] > dn["neighbour_rule"]["mae_changed"]
    # clustering for both labels, models and PCA; a verdict per label
    for lab in ("condition", "loop_state"):
        assert set(m["clustering"]["autoencode"][lab]) == {"map", "graph", "pca_dist", "pca_logdist"}
        assert lab in m["verdict"] and "PCA of log distances" in m["verdict"][lab]
    assert m["clustering"]["autoencode"]["condition"]["pca_dist"]["knn_accuracy"] > 0.8
    # sweeps: one curve per model and baseline, one point per level
    assert set(m["sweeps"]["hide_fraction"]) == {"map", "graph", "linear_interp"}
    assert len(m["sweeps"]["outlier_rate"]["neighbour_rule"]) == 4
    # summary table: models first, then baselines
    kinds = [r["kind"] for r in m["summary"]["rows"]]
    assert kinds[:2] == ["model", "model"] and set(kinds[2:]) == {"baseline"}
    html = res.report.read_text()
    assert html.count("data:image/png;base64,") >= 6  # examples x3, clustering, sweeps, curves
    assert "loop_state" in html and "PCA (distances)" in html and "PCA (log distances)" in html
    text = summary_text(m)
    assert "condition kNN acc" in text and "PCA" in text.splitlines()[0]


def test_compare_reuses_runs(tmp_path, traces):
    kw = dict(
        reprs=["map"],
        tasks=["autoencode"],
        latent_dim=3,
        layout="pca",
        sweeps=False,
        loader=standin_loader_for(traces, 3),
    )
    compare(traces, out=tmp_path / "a", trainer=standin_trainer, **kw)
    run = tmp_path / "a" / "runs" / "map-autoencode"
    (run / "model.safetensors").write_bytes(b"")  # marks the run as finished

    def must_not_train(cfg, t):
        raise AssertionError("should reuse the run")

    res = compare(traces, out=tmp_path / "b", runs=tmp_path / "a" / "runs", trainer=must_not_train, **kw)
    assert res.metrics["runs"]["map"]["autoencode"]["reused"] is True


def test_compare_rejects_bad_arguments(tmp_path, traces):
    with pytest.raises(PointaeError, match="unknown representation"):
        compare(traces, reprs=["pixels"], out=tmp_path)
    with pytest.raises(PointaeError, match="unknown task"):
        compare(traces, tasks=["fold"], out=tmp_path)
    with pytest.raises(PointaeError, match="at least 20 traces"):
        compare(traces[:5], out=tmp_path, trainer=standin_trainer)


@pytest.mark.slow
def test_compare_trains_real_models(tmp_path):
    t = labelled_traces(n=80, n_loci=12, seed=4)
    res = compare(
        t,
        reprs=["map", "graph", "voxel"],
        tasks=["autoencode", "inpaint"],
        out=tmp_path / "real",
        overrides=["train.max_epochs=1", "train.progress=false", "train.threads=2", "train.batch_size=16"],
        latent_dim=4,
        layout="pca",
    )
    m = res.metrics
    for r in ("map", "graph", "voxel"):
        assert m["runs"][r]["autoencode"]["param_count"] > 0
        assert np.isfinite(m["tasks"]["inpaint"]["models"][r]["mae"])
    assert (tmp_path / "real" / "runs" / "voxel-inpaint" / "model.safetensors").is_file()


def test_task_overrides_reach_only_that_tasks_runs(tmp_path, traces):
    seen = {}

    def trainer(cfg, tr):
        seen[(cfg.model.repr, cfg.task.name)] = (cfg.task.loss, cfg.task.log_eps, cfg.train.max_epochs)
        return standin_trainer(cfg, tr)

    res = compare(
        traces,
        reprs=["map"],
        tasks=["autoencode", "inpaint"],
        out=tmp_path / "rep",
        overrides=["train.max_epochs=2"],
        task_overrides={"autoencode": ["task.loss=log_mse", "task.log_eps=0.2"]},
        latent_dim=3,
        layout="pca",
        sweeps=False,
        trainer=trainer,
        loader=standin_loader_for(traces, d=3),
    )
    assert seen == {("map", "autoencode"): ("log_mse", 0.2, 2), ("map", "inpaint"): ("mse", 0.1, 2)}
    ae_ov = ["task.loss=log_mse", "task.log_eps=0.2"]
    assert res.metrics["settings"]["task_overrides"] == {"autoencode": ae_ov}
    assert "autoencode runs also: `task.loss=log_mse`" in (tmp_path / "rep" / "report.md").read_text()
    bad = {"autoencode": ["task.loss=huber"]}
    with pytest.raises(PointaeError, match="task.loss must be one of"):
        compare(traces, ["map"], ["autoencode"], tmp_path / "b", task_overrides=bad)
    with pytest.raises(PointaeError, match="not among the tasks"):
        compare(traces, ["map"], ["autoencode"], tmp_path / "b", task_overrides={"denoise": ["task.loss=l1"]})


def test_verdict_compares_the_best_latent_with_log_distance_pca():
    from pointae.analysis.compare import _verdicts

    def row(acc, n=400):
        return {"knn_accuracy": acc, "ari": 0.0, "nmi": 0.0, "chance_accuracy": 0.17, "n_points": n}

    def text(map_acc, log_acc):
        per = {"s": {"map": row(map_acc), "pca_dist": row(0.27), "pca_logdist": row(log_acc)}}
        return _verdicts(per, ["map"])["s"]

    assert "map beats it by more than two standard errors (+0.100" in text(0.46, 0.36)
    assert "map is above it within two standard errors (+0.040" in text(0.40, 0.36)
    assert "no representation is above it on kNN accuracy (best map 0.300)" in text(0.30, 0.36)


def test_reused_run_with_other_model_task_or_split_settings_is_refused(tmp_path, traces):
    kw = dict(layout="pca", sweeps=False, trainer=standin_trainer, runs=tmp_path / "runs")
    kw["loader"] = standin_loader_for(traces, d=3)
    compare(traces, ["map"], ["autoencode"], tmp_path / "a", latent_dim=3, **kw)
    run = tmp_path / "runs" / "map-autoencode"
    (run / "model.safetensors").write_bytes(b"")  # a finished run: reused from now on
    compare(traces, ["map"], ["autoencode"], tmp_path / "b", latent_dim=3, **kw)  # same settings: reused
    ov = {"autoencode": ["task.loss=log_mse"]}
    with pytest.raises(PointaeError, match="trained with task.loss=mse, this comparison asks for log_mse"):
        compare(traces, ["map"], ["autoencode"], tmp_path / "c", latent_dim=3, task_overrides=ov, **kw)
    with pytest.raises(PointaeError, match="trained with model.latent_dim=3, this comparison asks for 5"):
        compare(traces, ["map"], ["autoencode"], tmp_path / "d", latent_dim=5, **kw)
    # a run saved by an older version without the newer keys counts as their defaults
    (run / "config.yaml").write_text("model:\n  latent_dim: 3\ntask:\n  name: autoencode\n")
    compare(traces, ["map"], ["autoencode"], tmp_path / "e", latent_dim=3, **kw)


def test_report_md_escapes_data_derived_text_like_the_html_report(tmp_path, traces):
    """Issue 11: a label column's name went into report.md as raw HTML (report.html escaped it)."""
    evil = "<img src=x onerror=alert(1)>|cond"
    col = next(c for c in traces.meta.columns if c != "trace_id")
    t = traces._replace(meta=traces.meta.rename(columns={col: evil}))
    compare(
        t,
        reprs=["map"],
        tasks=["autoencode"],
        out=tmp_path / "rep",
        overrides=["train.max_epochs=1"],
        labels=[evil],
        latent_dim=4,
        layout="pca",
        trainer=standin_trainer,
        loader=standin_loader_for(t, d=4),
    )
    md = (tmp_path / "rep" / "report.md").read_text()
    page = (tmp_path / "rep" / "report.html").read_text()
    assert "<img src=x" not in md and "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in md and "&lt;img src=x onerror=alert(1)&gt;" in page
    # every Markdown table keeps one cell count per row (no '|' from data splits a row)
    import re

    blocks, cur = [], []
    for line in md.splitlines() + [""]:
        if line.startswith("|"):
            cur.append(len(re.findall(r"(?<!\\)\|", line)))
        elif cur:
            blocks.append(cur)
            cur = []
    assert blocks and all(len(set(b)) == 1 for b in blocks)
