"""Decoders: latent ``(B, d)`` -> distance map ``(B, L, L)``, valid by construction."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from pointae.models.layers import MLP, ConvBlock2d, pairwise_distances, valid_map
from pointae.models.registry import register_decoder


@register_decoder("map")
class MapDecoder(nn.Module):
    """Dense -> upsampling convolutions (the mirror of the map encoder) -> valid-map head.

    The latent is projected to ``widths[0]`` channels on a ``s x s`` grid, ``s = ceil(L / 2^k)``
    with ``k = len(widths) - 1`` upsampling stages (nearest x2 then Conv-BN-ReLU), a 3x3 conv
    to one channel, a crop to ``L x L``, and :func:`~pointae.models.layers.valid_map`
    (softplus, average with the transpose, times ``1 - I``): symmetric, zero-diagonal and
    non-negative by construction, never through a loss term.

    Shapes
    ------
    ``(B, latent_dim) -> (B, L, L)``
    """

    tiny_hparams: ClassVar[dict] = {"widths": (8, 4, 4)}

    def __init__(
        self,
        n_loci: int,
        latent_dim: int,
        widths: Sequence[int] = (128, 64, 32, 16),
        channels_last: bool = True,
    ):
        super().__init__()
        self.n_loci, self.latent_dim, self.channels_last = n_loci, latent_dim, channels_last
        n_up = len(widths) - 1
        self.start = max(1, math.ceil(n_loci / 2**n_up))
        self.c0 = widths[0]
        self.fc = nn.Linear(latent_dim, widths[0] * self.start * self.start)
        stages: list[nn.Module] = []
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            stages += [nn.Upsample(scale_factor=2, mode="nearest"), ConvBlock2d(c_in, c_out)]
        self.up = nn.Sequential(*stages)
        self.out = nn.Conv2d(widths[-1], 1, 3, padding=1)
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc(z)).view(z.shape[0], self.c0, self.start, self.start)  # (B, C0, s, s)
        if self.channels_last:
            h = h.contiguous(memory_format=torch.channels_last)
        h = self.up(h)  # (B, C, s * 2^k, s * 2^k)
        raw = self.out(h)[:, 0, : self.n_loci, : self.n_loci]  # (B, L, L)
        return valid_map(raw)

    def extra_repr(self) -> str:
        return f"n_loci={self.n_loci}, latent_dim={self.latent_dim}, start={self.start}"


@register_decoder("coord")
class CoordDecoder(nn.Module):
    """Latent -> 3D coordinates ``(B, L, 3)`` -> pairwise distances: Euclidean by construction.

    The output obeys the triangle inequality exactly and :meth:`coords` gives the structure.

    Shapes
    ------
    ``(B, latent_dim) -> (B, L, L)``; :meth:`coords`: ``(B, latent_dim) -> (B, L, 3)``.
    """

    tiny_hparams: ClassVar[dict] = {"hidden": (16,)}

    def __init__(self, n_loci: int, latent_dim: int, hidden: Sequence[int] = (256, 256)):
        super().__init__()
        self.n_loci, self.latent_dim = n_loci, latent_dim
        self.mlp = MLP([latent_dim, *hidden, n_loci * 3])

    def coords(self, z: torch.Tensor) -> torch.Tensor:
        """Decoded structure, centred on its mean: ``(B, d) -> (B, L, 3)``."""
        x = self.mlp(z).view(z.shape[0], self.n_loci, 3)  # (B, L, 3)
        return x - x.mean(1, keepdim=True)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return pairwise_distances(self.coords(z))  # (B, L, L)

    def extra_repr(self) -> str:
        return f"n_loci={self.n_loci}, latent_dim={self.latent_dim}"
