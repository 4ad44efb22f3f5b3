"""Embedding export (AnnData/CSV/NPY), streaming from files, and cluster_embedding on the result."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from analysis_helpers import PCAModel, labelled_traces

from pointae.analysis.clustering import cluster_embedding
from pointae.analysis.embed import embed, to_uns
from pointae.errors import PointaeError


@pytest.fixture(scope="module")
def traces():
    return labelled_traces(n=120, n_loci=14, seed=2)


def test_embed_writes_documented_anndata_fields(tmp_path, traces):
    ad = pytest.importorskip("anndata")
    model = PCAModel(traces, d=4)
    out = tmp_path / "emb.h5ad"
    res = embed(
        model, traces, out=[out, tmp_path / "emb.csv", tmp_path / "emb.npy"], batch_size=50, layouts=("pca",)
    )
    assert [p.name for p in res.paths] == ["emb.h5ad", "emb.csv", "emb.npy"]
    a = ad.read_h5ad(out)
    assert a.n_obs == 120 and a.n_vars == 4
    assert list(a.obs_names[:2]) == ["t0", "t1"]
    for col in ("trace_id", "condition", "loop_state", "missing_fraction", "n_observed"):
        assert col in a.obs.columns
    np.testing.assert_allclose(a.obs["missing_fraction"].to_numpy(), 1 - traces.mask.mean(1))
    np.testing.assert_allclose(a.obsm["X_pointae"], model.pca.transform(traces.coords), rtol=1e-5, atol=1e-5)
    assert a.obsm["X_pca"].shape == (120, 2)
    assert a.obsm["X_pca_dist"].shape == (120, 4)
    u = a.uns["pointae"]
    for key in (
        "version",
        "created",
        "run_dir",
        "source",
        "n_obs",
        "latent_dim",
        "config",
        "config_json",
        "baseline",
    ):
        assert key in u, key
    assert u["n_obs"] == 120 and u["latent_dim"] == 4 and u["n_loci"] == 14
    assert json.loads(u["config_json"]) == model.config  # exact config, None included
    assert u["config"]["model"]["repr"] == "pca-standin"
    assert bool(u["baseline"]["computed"]) is True
    assert json.loads(u["attrs_json"])["source"] == "tests.analysis.labelled_traces"
    # chunks never exceed the batch size (streaming)
    assert max(model.calls) <= 50 and sum(model.calls) == 120
    csv = pd.read_csv(tmp_path / "emb.csv")
    assert {"trace_id", "condition", "z0", "z3", "pca1", "pca2"} <= set(csv.columns)
    npy = np.load(tmp_path / "emb.npy")
    assert npy.shape == (120, 4) and npy.dtype == np.float32
    np.testing.assert_array_equal(npy, a.obsm["X_pointae"])


def test_embed_streams_from_a_file(tmp_path, traces):
    pytest.importorskip("h5py")
    path = tmp_path / "traces.h5"
    traces.save(path)
    model = PCAModel(traces, d=3)
    from_file = embed(model, path, out=tmp_path / "f.npy", batch_size=32, layouts=())
    in_memory = embed(model, traces, out=None, batch_size=1000, layouts=())
    np.testing.assert_allclose(from_file.latents, in_memory.latents, rtol=1e-5, atol=1e-5)
    assert from_file.uns["source"].endswith("traces.h5")
    assert max(model.calls[:4]) <= 32


def test_embed_rejects_bad_requests(tmp_path, traces):
    model = PCAModel(traces, d=3)
    with pytest.raises(PointaeError, match="unknown output format"):
        embed(model, traces, out=tmp_path / "emb.parquet", layouts=())
    with pytest.raises(PointaeError, match="unknown layout"):
        embed(model, traces, out=None, layouts=("mds",))
    with pytest.raises(PointaeError, match="not a run directory"):
        embed(tmp_path / "missing-run", traces, out=None, layouts=())
    assert not (tmp_path / "emb.parquet").exists()


def test_to_uns_makes_h5ad_safe_values():
    u = to_uns({"a": None, "b": [1, 2], "c": ["x", "y"], "d": [1, "x"], "e": {"f": 1.5}})
    assert u["a"] == "null" and list(u["b"]) == [1, 2] and list(u["c"]) == ["x", "y"]
    assert json.loads(u["d"]) == [1, "x"] and u["e"] == {"f": 1.5}


def test_cluster_embedding_metrics_figures_and_write_back(tmp_path, traces):
    ad = pytest.importorskip("anndata")
    model = PCAModel(traces, d=4)
    emb = tmp_path / "emb.h5ad"
    embed(model, traces, out=emb, batch_size=64, layouts=("pca",))
    m = cluster_embedding(emb, out=tmp_path / "cl", layout="pca", k=2, data=traces, model=model)
    assert {"condition", "loop_state"} <= set(m["labels"])
    for lab in ("condition", "loop_state"):
        assert set(m["labels"][lab]) == {"pointae", "pca_dist"}
        for v in m["labels"][lab].values():
            assert {"ari", "nmi", "knn_accuracy", "silhouette"} <= set(v)
    # the toy conditions differ in compaction: distances separate them well
    assert m["labels"]["condition"]["pca_dist"]["knn_accuracy"] > 0.8
    for name in ("layout_by_label", "layout_thumbnails", "cluster_mean_maps"):
        p = tmp_path / "cl" / f"{name}.png"
        assert p.stat().st_size > 5000, name
    assert m["thumbnails"] == "decoded from the latents"
    saved = json.loads((tmp_path / "cl" / "cluster_metrics.json").read_text())
    assert saved["k"] == 2
    a = ad.read_h5ad(emb)
    assert a.obs["cluster"].nunique() == 2 and a.uns["pointae_cluster"]["method"] == "kmeans"


def test_cluster_embedding_without_model_uses_measured_maps(tmp_path, traces):
    model = PCAModel(traces, d=3)
    emb = tmp_path / "emb.h5ad"
    embed(model, traces, out=emb, layouts=("pca",))
    m = cluster_embedding(emb, out=tmp_path / "c2", layout="pca", clusters="agglomerative", data=traces)
    assert m["thumbnails"] == "the traces' measured maps"
    assert m["k"] == 2  # default: classes of the first label column
    with pytest.raises(PointaeError, match="not found"):
        cluster_embedding(emb, out=tmp_path / "c3", layout="pca", labels=["nope"])
    with pytest.raises(PointaeError, match="no such embedding"):
        cluster_embedding(tmp_path / "missing.h5ad")
