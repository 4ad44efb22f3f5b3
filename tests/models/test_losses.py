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


# ------------------------------------------------------------------ log (contact-sensitive) losses
def test_log_losses_match_manual_and_ignore_diagonal_and_masked_pairs():
    from pointae.losses import masked_log_l1, masked_log_mse

    g = torch.Generator().manual_seed(1)
    pred, target = 3 * torch.rand(2, 6, 6, generator=g), 3 * torch.rand(2, 6, 6, generator=g)
    mask = torch.rand(2, 6, 6, generator=g) > 0.3
    target[~mask] = float("nan")
    sel = mask & torch.ones(6, 6, dtype=torch.bool).triu(1)
    diff = (torch.log(pred + 0.1) - torch.log(torch.nan_to_num(target) + 0.1))[sel]
    torch.testing.assert_close(masked_log_mse(pred, target, mask, eps=0.1), diff.pow(2).mean())
    torch.testing.assert_close(masked_log_l1(pred, target, mask, eps=0.1), diff.abs().mean())
    # changing the diagonal, the lower triangle or unmasked pairs changes nothing
    p2 = pred.clone()
    p2[:, range(6), range(6)] = 50.0
    p2[~mask] = 7.0
    p2 = torch.where(torch.ones(6, 6, dtype=torch.bool).tril(), 9.0, p2)
    p2 = torch.where(sel, pred, p2)
    torch.testing.assert_close(masked_log_mse(p2, target, mask), masked_log_mse(pred, target, mask))


def test_log_loss_is_contact_sensitive_where_mse_is_not():
    """The same absolute error costs far more on a short (contact) distance than on a long one
    under the log loss, and the same under MSE: the point of the option."""
    from pointae.losses import masked_log_mse

    target = torch.tensor([[[0.0, 0.5, 8.0], [0.5, 0.0, 1.0], [8.0, 1.0, 0.0]]])
    short, long_ = target.clone(), target.clone()
    short[0, 0, 1] = short[0, 1, 0] = 1.0  # +0.5 on a 0.5 distance
    long_[0, 0, 2] = long_[0, 2, 0] = 8.5  # +0.5 on an 8.0 distance
    assert masked_mse(short, target) == pytest.approx(masked_mse(long_, target).item())
    assert masked_log_mse(short, target) > 50 * masked_log_mse(long_, target)


def test_log_loss_is_scale_aware():
    """Relative errors: scaling prediction and target together leaves the loss (nearly) unchanged
    when distances are well above eps, unlike MSE; eps sets the scale below which distances merge."""
    from pointae.losses import masked_log_mse

    g = torch.Generator().manual_seed(2)
    target = 1 + torch.rand(1, 8, 8, generator=g)
    pred = target * (1 + 0.2 * torch.rand(1, 8, 8, generator=g))
    base = masked_log_mse(pred, target, eps=1e-4)
    assert masked_log_mse(10 * pred, 10 * target, eps=1e-4) == pytest.approx(base.item(), rel=1e-3)
    mse = masked_mse(pred, target).item()
    assert masked_mse(10 * pred, 10 * target) == pytest.approx(100 * mse, rel=1e-4)
    # distances far below eps are (almost) free: 0.001 vs 0.01 with eps = 1 costs ~nothing
    tiny_t, tiny_p = torch.full((1, 3, 3), 0.001), torch.full((1, 3, 3), 0.01)
    assert masked_log_mse(tiny_p, tiny_t, eps=1.0) < 1e-4 < masked_log_mse(tiny_p, tiny_t, eps=1e-4)


def test_log_loss_gradients_finite_at_zero_and_negative_inputs():
    from pointae.losses import masked_log_l1, masked_log_mse

    for fn in (masked_log_mse, masked_log_l1):
        pred = torch.zeros(1, 4, 4, requires_grad=True)
        target = torch.rand(1, 4, 4)
        target[0, 0, 1] = 0.0
        target[0, 3, :] = float("nan")  # a missing locus
        target[0, :, 3] = float("nan")
        loss = fn(pred, target, eps=0.05)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(pred.grad).all()
        assert pred.grad[0, 0, 2] != 0 and (pred.grad[0, :, 3] == 0).all()
        neg = torch.full((1, 4, 4), -1.0)
        assert torch.isfinite(fn(neg, target, eps=0.05))
    with pytest.raises(ValueError, match="eps"):
        masked_log_mse(torch.zeros(1, 3, 3), torch.zeros(1, 3, 3), eps=0.0)
