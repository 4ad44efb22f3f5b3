"""Shared building blocks: the valid-map output head, conv blocks, MLPs, chain encodings."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pointae.data.chain import chain_encoding  # noqa: F401  (re-exported: models use it from here)


def valid_map(raw: torch.Tensor) -> torch.Tensor:
    """Turn any ``(B, L, L)`` tensor into a valid distance map, by construction.

    ``softplus`` (non-negative), average with the transpose (symmetric), times ``1 - I``
    (exactly zero diagonal). Every decoder and task model ends here.
    """
    pos = F.softplus(raw)  # (B, L, L) > 0
    sym = 0.5 * (pos + pos.transpose(-1, -2))  # (B, L, L) symmetric
    eye = torch.eye(raw.shape[-1], dtype=raw.dtype, device=raw.device)
    return sym * (1.0 - eye)  # (B, L, L) zero diagonal


def inverse_softplus(y: torch.Tensor, floor: float = 1e-3) -> torch.Tensor:
    """``softplus^-1(max(y, floor))``: the raw value :func:`valid_map` turns back into ``y``."""
    y = y.clamp(min=floor)
    return y + torch.log(-torch.expm1(-y))


class ValidMap(nn.Module):
    """Module form of :func:`valid_map`: ``(B, L, L) -> (B, L, L)`` symmetric, >= 0, zero diagonal."""

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        return valid_map(raw)


def pairwise_distances(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Euclidean distances ``(B, L, 3) -> (B, L, L)`` with finite gradients everywhere.

    The diagonal is exactly zero; off-diagonal entries are ``sqrt(max(d^2, eps))``.
    """
    diff = x[:, :, None, :] - x[:, None, :, :]  # (B, L, L, 3)
    d2 = (diff * diff).sum(-1)  # (B, L, L)
    eye = torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
    return torch.sqrt(d2.clamp(min=eps)) * (1.0 - eye)


class ConvBlock2d(nn.Sequential):
    """``Conv2d(3x3, same) -> BatchNorm2d -> ReLU``: ``(B, c_in, H, W) -> (B, c_out, H, W)``."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3):
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        )


class ConvBlock3d(nn.Sequential):
    """``Conv3d(3x3x3, same) -> BatchNorm3d -> ReLU``: ``(B, c_in, G, G, G) -> (B, c_out, G, G, G)``."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3):
        super().__init__(
            nn.Conv3d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
            nn.BatchNorm3d(c_out),
            nn.ReLU(inplace=True),
        )


class MLP(nn.Sequential):
    """``Linear -> ReLU -> ... -> Linear`` through the given sizes (no activation at the end)."""

    def __init__(self, sizes: Sequence[int], dropout: float = 0.0):
        layers: list[nn.Module] = []
        for i in range(len(sizes) - 1):
            layers.append(nn.Linear(sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU(inplace=True))
                if dropout > 0:
                    layers.append(nn.Dropout(dropout))
        super().__init__(*layers)


def crop_or_pad2d(x: torch.Tensor, size: int) -> torch.Tensor:
    """Crop or zero-pad the last two dims of ``x`` to ``(size, size)`` (bottom/right)."""
    h = x.shape[-1]
    if h >= size:
        return x[..., :size, :size]
    return F.pad(x, (0, size - h, 0, size - h))
