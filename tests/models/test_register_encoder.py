"""Acceptance test of the registries: a new encoder defined and registered in this file only.

``egnn`` is a small E(n)-equivariant graph network (Satorras et al. 2021) on the ``graph``
representation. The graph holds no coordinates (only pose-free features), so the encoder
recovers coordinates from the pairwise distances by classical MDS; the MDS frame is arbitrary
(any rotation or reflection), which is exactly what an E(n)-equivariant network does not see.
With it registered, ``pointae train``, ``embed`` and ``compare`` run end to end on the CLI and
no other file of pointae names it.
"""

from __future__ import annotations

import json
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from pointae import registry
from pointae.cli import app
from pointae.data.traces import Traces
from pointae.errors import PointaeError
from pointae.models import register_encoder

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()


def classical_mds(d: torch.Tensor, dim: int = 3) -> torch.Tensor:
    """``(B, L, L)`` distances -> ``(B, L, dim)`` coordinates (in an arbitrary frame)."""
    n = d.shape[-1]
    j = torch.eye(n, dtype=torch.float64, device=d.device) - 1.0 / n
    g = -0.5 * j @ (d.to(torch.float64) ** 2) @ j  # (B, L, L) Gram matrix of centred points
    lam, vec = torch.linalg.eigh(0.5 * (g + g.transpose(-1, -2)))  # ascending
    lam, vec = lam[..., -dim:].clamp(min=0), vec[..., -dim:]
    return (vec * lam.sqrt()[..., None, :]).to(d.dtype)  # (B, L, dim)


class EGNNLayer(nn.Module):
    """One E(n)-equivariant layer on a dense graph.

    ``m_ij = phi_e(h_i, h_j, |x_i - x_j|^2, e_ij)`` on edges; ``x_i += mean_j (x_i - x_j)
    phi_x(m_ij)``; ``h_i += phi_h(h_i, sum_j m_ij)``. Shapes: h ``(B, L, H)``, x ``(B, L, 3)``,
    adj ``(B, L, L)``, e ``(B, L, L, E)``.
    """

    def __init__(self, hidden: int, edge_features: int):
        super().__init__()
        self.phi_e = nn.Sequential(nn.Linear(2 * hidden + 1 + edge_features, hidden), nn.SiLU())
        self.phi_x = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 1))
        self.phi_h = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, h, x, adj, e):
        n = h.shape[1]
        diff = x[:, :, None, :] - x[:, None, :, :]  # (B, L, L, 3)
        d2 = (diff**2).sum(-1, keepdim=True)  # (B, L, L, 1)
        hi = h[:, :, None, :].expand(-1, -1, n, -1)
        hj = h[:, None, :, :].expand(-1, n, -1, -1)
        m = self.phi_e(torch.cat([hi, hj, d2, e], dim=-1)) * adj[..., None]  # (B, L, L, H)
        deg = adj.sum(-1, keepdim=True).clamp(min=1)  # (B, L, 1)
        x = x + (diff * self.phi_x(m)).sum(2) / deg
        h = h + self.phi_h(torch.cat([h, m.sum(2)], dim=-1))
        return h, x


class EGNN(nn.Module):
    """E(n)-equivariant encoder ``DenseGraph -> (B, latent_dim)`` (invariant latent)."""

    repr: ClassVar[str] = "graph"

    def __init__(self, n_loci, latent_dim, node_features=14, edge_features=21, hidden=8, layers=2):
        super().__init__()
        self.n_loci, self.latent_dim = n_loci, latent_dim
        self.embed = nn.Linear(node_features, hidden)
        self.layers = nn.ModuleList(EGNNLayer(hidden, edge_features) for _ in range(layers))
        self.out = nn.Linear(2 * hidden, latent_dim)

    def forward(self, g):
        d = torch.nan_to_num(g.edge_attr[..., 0])  # (B, L, L) input distances (chain-filled)
        with torch.no_grad():
            x = classical_mds(d)  # (B, L, 3), any frame: the layers are E(3)-equivariant
        h, adj = self.embed(g.x), g.adj.to(g.x.dtype)
        for layer in self.layers:
            h, x = layer(h, x, adj, g.edge_attr)
        return self.out(torch.cat([h.mean(1), h.amax(1)], dim=-1))  # (B, d)


@pytest.fixture(scope="module")
def egnn():
    """Register ``egnn`` for this module only (other tests see the built-in names)."""
    register_encoder("egnn")(EGNN)
    yield "egnn"
    registry.encoders.remove("egnn")


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    """60 random walks in nm, two conditions with different step sizes (a label to cluster)."""
    rng = np.random.default_rng(3)
    n, n_loci = 60, 12
    cond = np.where(np.arange(n) % 2 == 0, "compact", "open")
    step = np.where(cond == "compact", 100.0, 220.0)[:, None, None]
    c = np.cumsum(rng.normal(size=(n, n_loci, 3)) * step, axis=1).astype(np.float32)
    c[rng.random((n, n_loci)) < 0.05] = np.nan
    meta = pd.DataFrame({"trace_id": [f"t{i}" for i in range(n)], "condition": cond})
    path = tmp_path_factory.mktemp("data") / "walks.h5"
    Traces(c, unit="nm", meta=meta).save(path)
    return path


FAST = ["train.max_epochs=1", "train.batch_size=16", "train.progress=false", "train.threads=1"]


def _sets(items):
    return [a for s in items for a in ("--set", s)]


def test_egnn_layer_is_equivariant(egnn):
    """Rotating, reflecting and translating the points rotates x and leaves h unchanged."""
    torch.manual_seed(0)
    layer = EGNNLayer(hidden=8, edge_features=5).double()
    b, n = 3, 7
    h = torch.randn(b, n, 8, dtype=torch.float64)
    x = torch.randn(b, n, 3, dtype=torch.float64)
    adj = (torch.rand(b, n, n) < 0.5).double()
    adj = torch.triu(adj, 1) + torch.triu(adj, 1).transpose(1, 2)
    e = torch.randn(b, n, n, 5, dtype=torch.float64)
    e = 0.5 * (e + e.transpose(1, 2))
    q, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))
    q[:, 0] *= -1  # include a reflection
    t = torch.randn(3, dtype=torch.float64)
    h1, x1 = layer(h, x, adj, e)
    h2, x2 = layer(h, x @ q.T + t, adj, e)
    assert torch.allclose(h1, h2, atol=1e-10)
    assert torch.allclose(x1 @ q.T + t, x2, atol=1e-10)
    assert not torch.allclose(h1, h)  # the layer does something


def test_egnn_is_in_every_name_list(egnn):
    from pointae.config import ENCODER_NAMES, load_config, model_names
    from pointae.models import ENCODERS, build_model, param_count

    assert "egnn" in registry.encoders.names() and "egnn" in ENCODERS and "egnn" in ENCODER_NAMES
    assert registry.encoders.meta("egnn") == {"repr": "graph", "decoder": "map"}
    assert "egnn" in model_names()
    cfg = load_config(overrides=["model.repr=graph", "model.encoder=egnn"])
    assert cfg.model.encoder_name == "egnn"
    with pytest.raises(PointaeError, match="model.encoder 'egnn' reads the 'graph' representation"):
        load_config(overrides=["model.encoder=egnn"])  # model.repr is map
    # denoise/inpaint have no skip-path model for egnn: the autoencoder trains them
    m = build_model("egnn", "inpaint", 12, 4)
    assert type(m).__name__ == "AutoEncoder" and isinstance(m.encoder, EGNN)
    assert param_count(m) > 0
    r = runner.invoke(app, ["train", "--help"])
    assert r.exit_code == 0 and "egnn" in r.output  # the choices are read when the command runs


def test_train_embed_compare_end_to_end(egnn, data_file, tmp_path):
    run = tmp_path / "egnn-autoencode"
    r = runner.invoke(
        app,
        ["train", "--encoder", "egnn", "--data", str(data_file), "--out", str(run)]
        + _sets([*FAST, "model.latent_dim=4"]),
    )
    assert r.exit_code == 0, r.output
    info = json.loads((run / "model.json").read_text())
    assert info["repr"] == "graph" and info["encoder"] == "egnn"
    metrics = json.loads((run / "metrics.json").read_text())
    assert np.isfinite(metrics["model"][metrics["headline"]])

    emb = tmp_path / "emb.csv"
    r = runner.invoke(app, ["embed", str(run), str(data_file), "--out", str(emb), "--layout", "pca"])
    assert r.exit_code == 0, r.output
    assert "embedded 60 traces into 4 dimensions" in r.output
    z = pd.read_csv(emb)
    assert len(z) == 60 and z.select_dtypes("number").notna().all().all()

    out = tmp_path / "cmp"
    r = runner.invoke(
        app,
        [
            "compare",
            "--data",
            str(data_file),
            "--out",
            str(out),
            "--reprs",
            "map,egnn",
            "--tasks",
            "autoencode",
            "--layout",
            "pca",
            "--label",
            "condition",
        ]
        + _sets([*FAST, "model.latent_dim=4", "model.width=4"]),
    )
    assert r.exit_code == 0, r.output
    m = json.loads((out / "metrics.json").read_text())
    runs = m["runs"]["bottleneck"]
    assert set(runs) == {"map", "egnn"}
    assert (out / "runs" / "egnn-autoencode" / "model.safetensors").is_file()
    saved = (out / "runs" / "egnn-autoencode" / "config.yaml").read_text()
    assert "encoder: egnn" in saved and "repr: graph" in saved
    assert (out / "report.html").is_file()


def test_unknown_encoder_is_a_one_line_error(egnn, data_file, tmp_path):
    r = runner.invoke(app, ["train", "--encoder", "egnm", "--data", str(data_file)])
    assert r.exit_code == 2 and "'egnm' is not one of" in r.output and "'egnn'" in r.output
    r = runner.invoke(
        app,
        [
            "train",
            "--repr",
            "map",
            "--encoder",
            "egnn",
            "--data",
            str(data_file),
            "--out",
            str(tmp_path / "x"),
        ],
    )
    assert r.exit_code == 1 and "model.encoder 'egnn' reads the 'graph' representation" in r.output
    assert "Traceback" not in r.output and not (tmp_path / "x").exists()
