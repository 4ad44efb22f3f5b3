"""The contrast objective: NT-Xent on two corrupted views, registered as task ``contrast``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pointae.config import TaskConfig, load_config
from pointae.errors import PointaeError
from pointae.tasks import build_task
from pointae.tasks.contrast import nt_xent


def test_nt_xent_limits_and_ranking():
    torch.manual_seed(0)
    b, d = 8, 4
    same = torch.ones(b, d)
    # identical latents for every trace: each anchor is uniform over the 2B - 1 others
    assert nt_xent(same, same, 0.5).item() == pytest.approx(math.log(2 * b - 1), rel=1e-5)
    # orthogonal traces, views equal to their partner: near 0 at a low temperature
    z = torch.eye(b)
    assert nt_xent(z, z, 0.05).item() < 1e-3
    # matched views score better than shuffled ones
    z1 = torch.randn(b, d)
    z2 = z1 + 0.1 * torch.randn(b, d)
    assert nt_xent(z1, z2, 0.2) < nt_xent(z1, z2[torch.randperm(b)], 0.2)


def test_nt_xent_gradient_pulls_partners_together():
    z1 = torch.randn(6, 3, requires_grad=True)
    z2 = torch.randn(6, 3)
    loss = nt_xent(z1, z2, 0.2)
    loss.backward()
    step = z1 - 0.5 * z1.grad
    assert nt_xent(step, z2, 0.2) < loss
    assert torch.isfinite(z1.grad).all()


def test_contrast_task_draws_two_independent_views():
    task = build_task(TaskConfig(name="contrast", hide_fraction=0.25, outlier_fraction=0.2))
    assert task.views == 2 and task.focus is None
    rng = np.random.default_rng(0)
    coords = np.cumsum(rng.normal(size=(5, 20, 3)), axis=1).astype(np.float32)
    idx = np.arange(5)
    v1, ch1 = task.corrupt_batch(coords, idx, train=True, epoch=0)
    v2, ch2 = task.corrupt_batch(coords, idx, train=True, epoch=0, view=1)
    again, _ = task.corrupt_batch(coords, idx, train=True, epoch=0)
    np.testing.assert_array_equal(np.isnan(v1), np.isnan(again))  # seeded per sample
    assert not np.array_equal(ch1, ch2)  # the second view is another draw
    # both corruptions applied: loci hidden and loci moved
    hidden = np.isnan(v1[..., 0])
    moved = ~hidden & (np.abs(v1 - coords).max(-1) > 1e-6)
    assert hidden.sum() > 0 and moved.sum() > 0 and ch1[hidden | moved].all()


def test_contrast_loss_adds_weighted_term():
    task = build_task(TaskConfig(name="contrast", contrast_weight=0.5, temperature=0.2))
    z1, z2 = torch.randn(4, 3), torch.randn(4, 3)
    parts = task.embedding_loss(z1, z2)
    assert parts["contrast"].item() == pytest.approx(0.5 * nt_xent(z1, z2, 0.2).item())


def test_contrast_config_is_validated():
    assert load_config(overrides=["task.name=contrast"]).task.name == "contrast"
    with pytest.raises(PointaeError, match="task.temperature"):
        load_config(overrides=["task.name=contrast", "task.temperature=0"])
    with pytest.raises(PointaeError, match="task.contrast_weight"):
        load_config(overrides=["task.contrast_weight=-1"])


def test_contrast_run_trains_an_autoencoder_and_logs_the_term(tmp_path):
    from pointae.testing import tiny_traces
    from pointae.train import fit, load_model

    t = tiny_traces(n=48, n_loci=10, seed=1)
    cfg = load_config(
        overrides=[
            "task.name=contrast",
            "model.repr=map",
            "model.latent_dim=4",
            "train.max_epochs=2",
            "train.batch_size=16",
            "train.progress=false",
            "train.threads=1",
            f"out={tmp_path / 'run'}",
        ]
    )
    run = fit(cfg, traces=t)
    model, _ = load_model(run)
    assert type(model).__name__ == "AutoEncoder"
    import pandas as pd

    hist = pd.read_csv(run / "history.csv")
    # the NT-Xent term is logged next to the reconstruction; both finite
    for col in ("val_loss", "val_observed", "val_contrast", "train_contrast"):
        assert col in hist and np.isfinite(hist[col]).all(), col
    # the validation batch (all val traces) is told apart better than uniform guessing, log(2B - 1)
    import json

    n_val = len(json.loads((run / "split.json").read_text())["val"])
    assert hist["val_contrast"].iloc[-1] < math.log(2 * n_val - 1)
