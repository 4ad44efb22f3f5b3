"""Masked losses on the upper triangle of distance maps, and a Euclidean-consistency penalty.

All map losses score only pairs ``i < j`` where ``mask`` is True (observed pairs for
autoencoding, corrupted/hidden pairs for denoising/inpainting), so NaN targets outside the
mask never reach the gradient.

``masked_log_mse`` / ``masked_log_l1`` score ``log(d + eps)`` instead of ``d``: a contact-sensitive
view in which halving a short distance costs as much as halving a long one (the plain losses are
dominated by the large, global-size distances). ``eps`` is in the maps' unit; training maps are
divided by the dataset's median neighbour distance, so ``eps = 0.1`` is a tenth of a typical bond.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from pointae import registry


def _upper_pairs(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None):
    n = pred.shape[-1]
    upper = torch.ones(n, n, dtype=torch.bool, device=pred.device).triu(1)  # (L, L)
    m = upper.expand_as(pred) if mask is None else mask.to(torch.bool) & upper
    m = m & ~torch.isnan(target)
    t = torch.where(m, target, torch.zeros((), dtype=pred.dtype, device=pred.device))
    return pred, t, m


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error over the masked upper-triangle pairs.

    Parameters
    ----------
    pred, target
        ``(B, L, L)``; target may hold NaN outside the mask.
    mask
        ``(B, L, L)`` bool, pairs to score (None: all pairs with a finite target).

    Returns
    -------
    torch.Tensor
        Scalar; 0 (with a gradient path) when no pair is selected.
    """
    p, t, m = _upper_pairs(pred, target, mask)
    err = torch.where(m, (p - t) ** 2, torch.zeros((), dtype=p.dtype, device=p.device))
    return err.sum() / m.sum().clamp(min=1)


def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute error over the masked upper-triangle pairs (see :func:`masked_mse`)."""
    p, t, m = _upper_pairs(pred, target, mask)
    err = torch.where(m, (p - t).abs(), torch.zeros((), dtype=p.dtype, device=p.device))
    return err.sum() / m.sum().clamp(min=1)


def _log_err(pred, target, mask, eps: float, power: int) -> torch.Tensor:
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    p, t, m = _upper_pairs(pred, target, mask)
    zero = torch.zeros((), dtype=p.dtype, device=p.device)
    # decoders are non-negative; the clamp keeps the log defined for any other caller's maps
    lp = torch.log(p.clamp(min=0) + eps)
    lt = torch.log(torch.where(m, t, zero).clamp(min=0) + eps)
    diff = lp - lt
    err = torch.where(m, diff.abs() if power == 1 else diff**2, zero)
    return err.sum() / m.sum().clamp(min=1)


def masked_log_mse(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, eps: float = 0.1
) -> torch.Tensor:
    """Mean squared error of ``log(d + eps)`` over the masked upper-triangle pairs.

    Parameters
    ----------
    pred, target
        ``(B, L, L)`` non-negative distances; target may hold NaN outside the mask.
    mask
        ``(B, L, L)`` bool, pairs to score (None: all pairs with a finite target).
    eps
        Offset in the maps' unit (> 0): distances well below ``eps`` count as equal, so the loss
        and its gradient (at most ``1 / eps`` per pair) stay finite at ``d = 0``.

    Returns
    -------
    torch.Tensor
        Scalar; 0 (with a gradient path) when no pair is selected.
    """
    return _log_err(pred, target, mask, eps, 2)


def masked_log_l1(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, eps: float = 0.1
) -> torch.Tensor:
    """Mean absolute error of ``log(d + eps)`` (see :func:`masked_log_mse`)."""
    return _log_err(pred, target, mask, eps, 1)


class _PairLosses(Mapping):
    """``task.loss`` name -> ``(fn, takes eps)``, read from :data:`pointae.registry.losses`."""

    def __getitem__(self, name: str):
        return registry.losses.get(name), bool(registry.losses.meta(name).get("takes_eps", False))

    def __iter__(self):
        return iter(registry.losses.names())

    def __len__(self) -> int:
        return len(registry.losses.names())


#: ``task.loss`` name -> ``(fn, takes eps)`` (live: a loss registered in
#: :data:`pointae.registry.losses` appears here)
PAIR_LOSSES = _PairLosses()


def euclidean_consistency(maps: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """How far maps are from being realisable by 3D points (the differentiable core of MDS).

    The double-centred Gram matrix ``G = -1/2 J D^2 J`` (``J = I - 11^T / L``) of a Euclidean
    distance matrix is positive semi-definite with rank <= 3. The penalty is the energy of its
    negative eigenvalues relative to the total: ``sum(relu(-lam)^2) / sum(lam^2)`` per map, so it
    is 0 exactly for Euclidean maps and scale-free.

    Parameters
    ----------
    maps
        ``(B, L, L)`` symmetric, finite.
    reduction
        ``"mean"`` (scalar) or ``"none"`` (``(B,)``).
    """
    n = maps.shape[-1]
    d2 = maps.to(torch.float64) ** 2  # (B, L, L); float64: eigvalsh is ill-conditioned in fp32
    j = torch.eye(n, dtype=d2.dtype, device=d2.device) - 1.0 / n  # (L, L)
    g = -0.5 * j @ d2 @ j  # (B, L, L)
    g = 0.5 * (g + g.transpose(-1, -2))
    lam = torch.linalg.eigvalsh(g)  # (B, L)
    neg = torch.relu(-lam).pow(2).sum(-1)
    out = (neg / lam.pow(2).sum(-1).clamp(min=1e-12)).to(maps.dtype)  # (B,)
    return out.mean() if reduction == "mean" else out
