"""Masked upper-triangle losses and the Euclidean-consistency penalty."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pointae.data.transforms import distance_maps_torch
from pointae.losses import euclidean_consistency, masked_l1, masked_mse

pytestmark = pytest.mark.usefixtures("one_thread")


def test_masked_losses_match_manual_upper_triangle():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.rand(2, 5, 5, generator=g), torch.rand(2, 5, 5, generator=g)
    mask = torch.rand(2, 5, 5, generator=g) > 0.3
    target[~mask] = float("nan")  # NaN outside the mask must not leak
    sel = mask & torch.ones(5, 5, dtype=torch.bool).triu(1)
    diff = (pred - torch.nan_to_num(target))[sel]
    torch.testing.assert_close(masked_mse(pred, target, mask), diff.pow(2).mean())
    torch.testing.assert_close(masked_l1(pred, target, mask), diff.abs().mean())


def test_masked_loss_gradient_only_on_selected_pairs():
    pred = torch.rand(1, 4, 4, requires_grad=True)
    target = torch.zeros(1, 4, 4)
    mask = torch.zeros(1, 4, 4, dtype=torch.bool)
    mask[0, 0, 2] = True
    masked_mse(pred, target, mask).backward()
    nz = pred.grad.nonzero().tolist()
    assert nz == [[0, 0, 2]]


def test_empty_mask_is_zero_not_nan():
    pred = torch.rand(1, 4, 4, requires_grad=True)
    loss = masked_mse(pred, torch.zeros(1, 4, 4), torch.zeros(1, 4, 4, dtype=torch.bool))
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(pred.grad).all()


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(4, 20))
def test_euclidean_maps_have_no_penalty(seed, n):
    g = torch.Generator().manual_seed(seed)
    maps = distance_maps_torch(torch.randn(2, n, 3, generator=g).cumsum(1))
    assert float(euclidean_consistency(maps)) < 1e-6


def test_non_euclidean_map_is_penalised_and_gradient_reduces_it():
    maps = distance_maps_torch(torch.randn(1, 8, 3).cumsum(1))
    bad = maps.clone()
    bad[0, 0, 7] = bad[0, 7, 0] = bad.max() * 4  # violates the triangle inequality
    p0 = float(euclidean_consistency(bad))
    assert p0 > 1e-3
    x = bad.clone().requires_grad_(True)
    opt = torch.optim.SGD([x], lr=0.05)
    for _ in range(20):
        opt.zero_grad()
        euclidean_consistency(0.5 * (x + x.transpose(1, 2))).backward()
        opt.step()
    assert euclidean_consistency(0.5 * (x + x.transpose(1, 2))).item() < p0
    assert euclidean_consistency(torch.stack([maps[0], bad[0]]), reduction="none").shape == (2,)
