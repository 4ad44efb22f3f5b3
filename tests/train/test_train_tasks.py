from __future__ import annotations

import numpy as np
import pytest
import torch

from pointae.config import TaskConfig
from pointae.tasks import build_task


@pytest.fixture
def coords(tiny_traces):
    return tiny_traces.coords / 150.0


@pytest.mark.parametrize("name", ["denoise", "inpaint"])
def test_eval_corruption_fixed_per_sample(coords, name):
    task = build_task(TaskConfig(name=name))
    idx = np.arange(len(coords))
    a, ca = task.corrupt_batch(coords, idx, train=False)
    b, cb = task.corrupt_batch(coords, idx, train=False)
    np.testing.assert_array_equal(a, b)
    assert ca.any() and np.array_equal(ca, cb)
    # independent of batch composition: sample 3 alone gets the same corruption
    c3, ch3 = task.corrupt_batch(coords[3:4], idx[3:4], train=False)
    np.testing.assert_array_equal(c3[0], a[3])
    # training draws a new corruption every epoch
    e0, _ = task.corrupt_batch(coords, idx, train=True, epoch=0)
    e1, _ = task.corrupt_batch(coords, idx, train=True, epoch=1)
    assert not np.array_equal(e0, e1, equal_nan=True)
    # unchanged loci keep their coordinates
    keep = ~ca & ~np.isnan(coords[..., 0])
    np.testing.assert_array_equal(a[keep], coords[keep])


def test_denoise_moves_inpaint_hides(coords):
    idx = np.arange(len(coords))
    d, cd = build_task(TaskConfig(name="denoise", outlier_fraction=0.3)).corrupt_batch(
        coords, idx, train=False
    )
    assert np.isfinite(d[cd]).all()
    moved = np.linalg.norm(d[cd] - coords[cd], axis=-1)
    assert (moved >= 2.0 - 1e-4).all() and (moved <= 5.0 + 1e-4).all()  # median-bond units
    h, ch = build_task(TaskConfig(name="inpaint")).corrupt_batch(coords, idx, train=False)
    assert np.isnan(h[ch]).all() and not np.isnan(coords[ch]).any()


def test_autoencode_identity(coords):
    x, ch = build_task(TaskConfig()).corrupt_batch(coords, np.arange(len(coords)), train=True, epoch=3)
    np.testing.assert_array_equal(x, coords)
    assert not ch.any()


def test_pair_masks_and_loss(coords):
    task = build_task(TaskConfig(name="inpaint"))
    x, ch = task.corrupt_batch(coords, np.arange(len(coords)), train=False)
    clean = torch.from_numpy(coords.astype(np.float32))
    pair, focus = task.pair_masks(clean, torch.from_numpy(ch))
    obs = ~np.isnan(coords[..., 0])
    np.testing.assert_array_equal(pair.numpy(), obs[:, :, None] & obs[:, None, :])
    f = focus.numpy()
    assert f.any() and not (f & ~pair.numpy()).any()
    i, j = np.nonzero(ch[0])[0][0], np.nonzero(obs[0] & ~ch[0])[0][0]
    assert f[0, i, j] and f[0, j, i]
    from pointae.data.transforms import distance_maps_torch

    target = distance_maps_torch(clean)
    perfect = task.loss(torch.nan_to_num(target), target, pair, focus)
    assert float(perfect.total) == pytest.approx(0.0, abs=1e-10)
    noisy = task.loss(torch.nan_to_num(target) + 1.0, target, pair, focus)
    assert set(noisy.parts) == {"observed", "hidden"}
    assert float(noisy.total) == pytest.approx(2.0, rel=1e-5)  # 1 (observed) + 1 x 1 (focus)


@pytest.mark.parametrize("loss", ["log_mse", "log_l1"])
def test_task_log_loss_uses_log_eps(coords, loss):
    from pointae.data.transforms import distance_maps_torch
    from pointae.losses import masked_log_l1, masked_log_mse

    clean = torch.from_numpy(coords.astype(np.float32))
    target = distance_maps_torch(clean)
    task = build_task(TaskConfig(loss=loss, log_eps=0.3))
    pair, _ = task.pair_masks(clean, torch.zeros(clean.shape[:2], dtype=torch.bool))
    pred = torch.nan_to_num(target) * 1.5
    fn = masked_log_mse if loss == "log_mse" else masked_log_l1
    got = task.loss(pred, target, pair, None).total
    torch.testing.assert_close(got, fn(pred, target, pair, eps=0.3))
    assert float(got) != pytest.approx(float(fn(pred, target, pair, eps=0.1)), rel=1e-3)
    perfect = task.loss(torch.nan_to_num(target), target, pair, None).total
    assert float(perfect) == pytest.approx(0.0, abs=1e-10)
    with pytest.raises(Exception, match="task.loss must be one of"):
        build_task(TaskConfig(loss="huber")).loss(pred, target, pair, None)
