"""CLI: embed -> cluster on a real (tiny) trained run, compare/demo wiring, one-line errors."""

from __future__ import annotations

import json

import pytest
from analysis_helpers import labelled_traces, standin_loader_for, standin_trainer
from typer.testing import CliRunner

from pointae.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "toy.h5"
    labelled_traces(n=80, n_loci=12, seed=5).save(path)
    return path


@pytest.fixture(scope="module")
def real_run(tmp_path_factory, data_file):
    """A real map autoencoder trained for one epoch with pointae.train.fit."""
    from pointae.config import load_config
    from pointae.train import fit

    out = tmp_path_factory.mktemp("runs") / "map-autoencode"
    cfg = load_config(
        overrides=[
            f"out={out}",
            f"data.path={data_file}",
            "model.latent_dim=4",
            "train.max_epochs=1",
            "train.batch_size=16",
            "train.progress=false",
            "train.threads=2",
        ]
    )
    return fit(cfg)


def test_embed_then_cluster_on_a_real_run(tmp_path, data_file, real_run):
    import anndata as ad

    emb = tmp_path / "emb.h5ad"
    r = runner.invoke(
        app,
        [
            "embed",
            str(real_run),
            str(data_file),
            "--out",
            str(emb),
            "--out",
            str(tmp_path / "e.csv"),
            "--layout",
            "pca",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "embedded 80 traces into 4 dimensions" in r.output
    a = ad.read_h5ad(emb)
    assert a.obsm["X_pointae"].shape == (80, 4) and "X_pca" in a.obsm
    assert a.uns["pointae"]["run_dir"] == str(real_run.resolve())
    assert a.uns["pointae"]["config"]["model"]["repr"] == "map"
    assert a.uns["pointae"]["scale"] > 0
    r = runner.invoke(
        app,
        [
            "cluster",
            str(emb),
            "--method",
            "pca",
            "--k",
            "3",
            "--label",
            "condition",
            "--out",
            str(tmp_path / "cl"),
        ],
    )
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "cl" / "cluster_metrics.json").read_text())
    assert m["k"] == 3 and list(m["labels"]) == ["condition"]
    # the run directory recorded in the file gives decoded thumbnails; the source file gives mean maps
    assert m["thumbnails"] == "decoded from the latents"
    assert set(m["figures"]) == {"layout_by_label", "layout_thumbnails", "cluster_mean_maps"}


def test_cli_errors_are_one_line(tmp_path, data_file):
    r = runner.invoke(
        app, ["embed", str(tmp_path / "nope"), str(data_file), "--out", str(tmp_path / "e.h5ad")]
    )
    assert r.exit_code == 1
    assert "not a run directory" in r.output and "Traceback" not in r.output
    r = runner.invoke(
        app, ["compare", "--data", str(data_file), "--reprs", "map,pixels", "--out", str(tmp_path)]
    )
    assert r.exit_code == 1 and "pixels not in map, graph, voxel" in r.output
    r = runner.invoke(app, ["cluster", str(data_file)])
    assert r.exit_code == 1 and "expected an AnnData .h5ad" in r.output


def test_demo_wiring(tmp_path, monkeypatch):
    """demo: simulate (stand-in), cache the data, compare, print the summary and the report path."""
    import pointae.analysis.compare as cmp
    import pointae.analysis.demo as demo_mod
    import pointae.sim as sim

    calls = []

    def fake_mixture(mixture, n, n_loci, seed, **kw):
        calls.append((tuple(sorted(mixture)), n, n_loci, seed))
        return labelled_traces(n=n, n_loci=n_loci, seed=seed)

    monkeypatch.setattr(sim, "simulate_mixture", fake_mixture)
    small = demo_mod.DemoSize(
        n_traces=60, n_loci=10, max_epochs=2, batch_size=16, latent_dim=3, tasks=("autoencode",)
    )
    monkeypatch.setitem(demo_mod.SIZES, "small", small)
    monkeypatch.setattr(cmp, "_default_trainer", standin_trainer)
    toy = labelled_traces(n=60, n_loci=10, seed=0)
    monkeypatch.setattr(cmp, "_default_loader", standin_loader_for(toy, 3))
    out = tmp_path / "demo"
    r = runner.invoke(app, ["demo", "--out", str(out), "--threads", "1"])
    assert r.exit_code == 0, r.output
    assert calls == [(("no-cohesin", "no-ctcf", "wt"), 60, 10, 0)]
    assert f"report: {out / 'report.html'}" in r.output
    assert "loop_state kNN acc" in r.output and "condition: " in r.output
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["runs"]["bottleneck"]) == {"map", "graph", "voxel"}
    assert m["data"]["labels"] == ["condition", "loop_state"]
    assert "train.threads=1" in m["settings"]["overrides"]
    # the autoencoders (only) train with the contact-sensitive loss
    assert m["settings"]["task_overrides"] == {"autoencode": ["task.loss=log_mse"]}
    assert not any(o.startswith("task.loss") for o in m["settings"]["overrides"])
    # the demo block is in the written file, not only in the returned dict (written atomically:
    # no temporary file left beside it)
    assert m["demo"]["size"] == "small" and m["demo"]["threads"] == 1 and m["demo"]["seed"] == 0
    assert m["demo"]["wall_seconds"] > 0
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    # a second run reuses the cached simulation and the finished runs
    for rd in (out / "runs").iterdir():
        (rd / "model.safetensors").write_bytes(b"")
    r = runner.invoke(app, ["demo", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert len(calls) == 1 and "reusing simulated traces" in r.output
    r = runner.invoke(app, ["demo", "--out", str(out), "--threads", "0"])
    assert r.exit_code == 1 and "threads must be >= 1" in r.output


def test_demo_refuses_broken_simulations(tmp_path, monkeypatch):
    import numpy as np

    import pointae.analysis.demo as demo_mod
    import pointae.sim as sim

    def broken(mixture, n, n_loci, seed, **kw):
        t = labelled_traces(n=n, n_loci=n_loci, seed=seed)
        return t.with_coords(np.full_like(t.coords, np.nan))

    monkeypatch.setattr(sim, "simulate_mixture", broken)
    monkeypatch.setitem(
        demo_mod.SIZES, "small", demo_mod.DemoSize(n_traces=30, n_loci=8, max_epochs=1, batch_size=8)
    )
    r = runner.invoke(app, ["demo", "--out", str(tmp_path / "d")])
    assert r.exit_code == 1
    assert "simulator returned 100% missing coordinates" in r.output
    assert not (tmp_path / "d" / "data.h5").exists()


def test_demo_labels_scope_loop_state_to_barrier_conditions():
    import numpy as np

    from pointae.analysis.cluster import label_metrics
    from pointae.analysis.demo import demo_labels

    t = labelled_traces(n=60, n_loci=10, seed=0)
    assert demo_labels(t) == ["condition", "loop_state"]  # no "wt" structures: nothing added
    t.meta["condition"] = np.where(np.arange(60) < 30, "wt", "no-ctcf")
    t.meta.loc[30:, "loop_state"] = "none"
    assert demo_labels(t) == ["condition", "loop_state", "loop_state_wt"]
    scoped = t.meta["loop_state_wt"]
    assert scoped[:30].tolist() == t.meta["loop_state"][:30].tolist() and scoped[30:].isna().all()
    m = label_metrics(np.random.default_rng(0).normal(size=(60, 3)), scoped.to_numpy(), seed=0)
    assert m["n_points"] == 30
