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
    assert saved["schema"] == "pointae.compare/2" and "keys" in saved
    # both regimes: autoencoders are bottleneck models; denoise/inpaint run in both, in their own folders
    bn, sk = saved["runs"]["bottleneck"], saved["runs"]["skip"]
    assert set(bn) == set(sk) == {"map", "graph"}
    assert set(bn["map"]) == {"autoencode", "denoise", "inpaint"} and set(sk["map"]) == {"denoise", "inpaint"}
    assert bn["map"]["autoencode"]["epochs"] == 3
    assert bn["map"]["denoise"]["run_dir"].endswith("map-denoise-bottleneck")
    assert sk["map"]["denoise"]["run_dir"].endswith("map-denoise")
    assert saved["settings"]["regime_overrides"]["bottleneck"]["inpaint"] == [
        "model.hparams.arch=autoencoder"
    ]
    # every model and baseline is scored on the same pairs
    for t, bases in (
        ("autoencode", {"pca_dist"}),
        ("denoise", {"neighbour_rule", "corrupted_input"}),
        ("inpaint", {"linear_interp"}),
    ):
        res_t = m["tasks"][t]
        assert set(res_t["baselines"]) == bases
        scored = [v for per in res_t["models"].values() for v in per.values()]
        assert len(scored) == (2 if t == "autoencode" else 4)
        n_pairs = {v["n_pairs"] for v in [*scored, *res_t["baselines"].values()]}
        assert len(n_pairs) == 1 and n_pairs.pop() > 0
    # the stand-in model IS a PCA of distances fitted on all traces: close to the PCA baseline
    ae = m["tasks"]["autoencode"]
    assert ae["models"]["bottleneck"]["map"]["mae"] == pytest.approx(
        ae["baselines"]["pca_dist"]["mae"], rel=0.2
    )
    # denoise: the corrupted input is worse at the outliers than the neighbour rule
    dn = m["tasks"]["denoise"]["baselines"]
    assert dn["corrupted_input"]["mae_changed"] > dn["neighbour_rule"]["mae_changed"]
    # clustering for both labels, models and PCA; a verdict per label
    for lab in ("condition", "loop_state"):
        for g, t in (("bottleneck", "autoencode"), ("bottleneck", "inpaint"), ("skip", "denoise")):
            assert set(m["clustering"][g][t][lab]) == {"map", "graph", "pca_dist", "pca_logdist"}
        assert "PCA of log distances" in m["verdict"][lab] and "regime" in m["verdict"][lab]
        assert "PCA of log distances" in m["verdict_detail"][lab]
    assert m["clustering"]["bottleneck"]["autoencode"]["condition"]["pca_dist"]["knn_accuracy"] > 0.8
    # sweeps: one curve per model and baseline, one point per level
    assert set(m["sweeps"]["hide_fraction"]) == {
        "map (bottleneck)",
        "graph (bottleneck)",
        "map (skip)",
        "graph (skip)",
        "linear_interp",
    }
    assert len(m["sweeps"]["outlier_rate"]["neighbour_rule"]) == 4
    # summary table: models first, then baselines
    kinds = [r["kind"] for r in m["summary"]["rows"]]
    assert kinds[:4] == ["model"] * 4 and set(kinds[4:]) == {"baseline"}
    assert [r["name"] for r in m["summary"]["rows"][:4]] == [
        "map (bottleneck)",
        "graph (bottleneck)",
        "map (skip)",
        "graph (skip)",
    ]
    html = res.report.read_text()
    md = (tmp_path / "rep" / "report.md").read_text()
    for lab in ("condition", "loop_state"):  # a section per label with its verdict
        assert f"Verdict: {lab}" in html and f"Verdict: {lab}" in md
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
    assert res.metrics["runs"]["bottleneck"]["map"]["autoencode"]["reused"] is True


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
        assert m["runs"]["bottleneck"][r]["autoencode"]["param_count"] > 0
        for g in ("bottleneck", "skip"):
            assert np.isfinite(m["tasks"]["inpaint"]["models"][g][r]["mae"])
    assert (tmp_path / "real" / "runs" / "voxel-inpaint" / "model.safetensors").is_file()
    assert (tmp_path / "real" / "runs" / "voxel-inpaint-bottleneck" / "model.safetensors").is_file()
    # the bottleneck inpainter is a plain autoencoder, the skip one a task model
    from pointae.api import PointAE

    runs = tmp_path / "real" / "runs"
    assert type(PointAE.load(runs / "map-inpaint-bottleneck").model).__name__ == "AutoEncoder"
    assert type(PointAE.load(runs / "map-inpaint").model).__name__ == "MapUNet"


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


def test_regimes_and_skip_reprs_choose_the_runs(tmp_path, traces):
    from pointae.analysis.compare import model_slots, run_name

    assert model_slots(["map", "graph"], ["inpaint", "autoencode"], skip_reprs=["map"]) == [
        ("bottleneck", "map", "autoencode"),
        ("bottleneck", "graph", "autoencode"),
        ("bottleneck", "map", "inpaint"),
        ("bottleneck", "graph", "inpaint"),
        ("skip", "map", "inpaint"),
    ]
    # autoencoders and the contrast objective have no skip path: bottleneck only, whatever regimes say
    assert model_slots(["map"], ["autoencode", "contrast", "denoise"], regimes=["skip"]) == [
        ("bottleneck", "map", "autoencode"),
        ("bottleneck", "map", "contrast"),
        ("skip", "map", "denoise"),
    ]
    assert run_name("bottleneck", "map", "denoise") == "map-denoise-bottleneck"
    assert (
        run_name("skip", "map", "denoise") == run_name("bottleneck", "map", "denoise")[: -len("-bottleneck")]
    )
    with pytest.raises(PointaeError, match="unknown regime 'wide'"):
        compare(traces, ["map"], ["autoencode"], tmp_path / "x", regimes=["wide"])
    seen = []

    def trainer(cfg, tr):
        seen.append((cfg.model.repr, cfg.task.name, cfg.model.hparams.get("arch", "auto")))
        return standin_trainer(cfg, tr)

    res = compare(
        traces,
        reprs=["map", "graph"],
        tasks=["inpaint"],
        out=tmp_path / "rep",
        latent_dim=3,
        layout="pca",
        sweeps=False,
        skip_reprs=["map"],
        trainer=trainer,
        loader=standin_loader_for(traces, d=3),
    )
    assert seen == [
        ("map", "inpaint", "autoencoder"),
        ("graph", "inpaint", "autoencoder"),
        ("map", "inpaint", "auto"),
    ]
    m = res.metrics
    assert set(m["tasks"]["inpaint"]["models"]["skip"]) == {"map"}
    assert (
        m["settings"]["clustering_regime"] == "bottleneck" and m["settings"]["clustering_task"] == "inpaint"
    )


def test_label_verdict_names_representation_regime_task_and_margin():
    from pointae.analysis.compare import _label_verdicts

    def row(acc, n=400):
        return {"knn_accuracy": acc, "ari": 0.0, "nmi": 0.0, "chance_accuracy": 0.17, "n_points": n}

    base = {"pca_dist": row(0.27), "pca_logdist": row(0.36)}
    clustering = {
        "bottleneck": {"autoencode": {"s": {"map": row(0.47), "graph": row(0.30), **base}}},
        "skip": {"denoise": {"s": {"map": row(0.31), **base}}},
    }
    text = _label_verdicts(clustering, ["s"])["s"]
    assert text.startswith("s: map (bottleneck regime, autoencode model) wins; best latents map (bottleneck")
    assert "kNN accuracy 0.470 on 400 traces" in text
    assert "+0.110 over PCA of log distances (0.360; 2 SE = 0.069, beyond two standard errors)" in text
    assert "best under the skip regime: map (denoise model) 0.310" in text
    clustering["bottleneck"]["autoencode"]["s"]["map"] = row(0.38)
    text = _label_verdicts(clustering, ["s"])["s"]
    assert text.startswith("s: no clear winner;")
    assert "+0.020 over PCA of log distances (0.360; 2 SE = 0.068, within noise)" in text
    clustering["bottleneck"]["autoencode"]["s"]["map"] = row(0.25)
    clustering["skip"]["denoise"]["s"]["map"] = row(0.2)
    clustering["bottleneck"]["autoencode"]["s"]["graph"] = row(0.2)
    text = _label_verdicts(clustering, ["s"])["s"]
    assert text.startswith("s: PCA of log distances wins; best latents map (bottleneck regime, autoencode")
    assert (
        "-0.110 over PCA of log distances (0.360; 2 SE = 0.065, below it beyond two standard errors)" in text
    )


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
