"""3D convolutional encoder on the voxel representation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from pointae.models.layers import ConvBlock3d
from pointae.models.registry import register_encoder


@register_encoder("voxel")
class VoxelCNN(nn.Module):
    """3D CNN: ``Conv3d-BN-ReLU`` blocks with ``MaxPool3d(2)`` between them, adaptive average
    pooling to ``pool_to^3`` and a dense layer to the latent.

    Not rotation invariant by itself: :class:`~pointae.data.voxel.VoxelRepr` supplies random
    rotations while training and a canonical orientation otherwise.

    Parameters
    ----------
    n_loci, latent_dim
        L and d.
    in_channels
        Voxel channels (default matches ``VoxelRepr()``: 10).
    widths
        Channels of the conv blocks.
    pool_to
        Spatial size after the adaptive pooling.

    Shapes
    ------
    ``(B, in_channels, G, G, G) -> (B, latent_dim)``; a
    :class:`~pointae.data.voxel.VoxelInput` is accepted too (only its ``grid`` is read).
    """

    repr: ClassVar[str] = "voxel"
    tiny_hparams: ClassVar[dict] = {"widths": (4, 4, 8, 8)}

    def __init__(
        self,
        n_loci: int,
        latent_dim: int,
        in_channels: int = 10,
        widths: Sequence[int] = (16, 32, 64, 64),
        pool_to: int = 2,
    ):
        super().__init__()
        self.n_loci, self.latent_dim = n_loci, latent_dim
        layers: list[nn.Module] = []
        c = in_channels
        for i, w in enumerate(widths):
            if i > 0:
                layers.append(nn.MaxPool3d(2, ceil_mode=True))
            layers.append(ConvBlock3d(c, w))
            c = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool3d(pool_to)
        self.fc = nn.Linear(c * pool_to**3, latent_dim)

    def forward(self, x) -> torch.Tensor:
        x = getattr(x, "grid", x)  # VoxelInput -> its grid; the side information is not used here
        h = self.pool(self.features(x))  # (B, C, p, p, p)
        return self.fc(h.flatten(1))  # (B, d)

    def extra_repr(self) -> str:
        return f"n_loci={self.n_loci}, latent_dim={self.latent_dim}"
