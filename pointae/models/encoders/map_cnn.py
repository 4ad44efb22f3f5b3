"""The reference map encoder: 4 conv layers with 2x2 max pooling between them, dense to the latent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from pointae.models.layers import ConvBlock2d
from pointae.models.registry import register_encoder


@register_encoder("map")
class MapCNN(nn.Module):
    """2D CNN on the distance-map representation.

    ``Conv-BN-ReLU`` x4 with ``MaxPool2d(2, ceil_mode=True)`` between them, then adaptive
    average pooling to ``pool_to x pool_to`` and one dense layer to the latent. Works for any L
    (64, 65, 83, ...): ceil-mode pooling and the adaptive pool absorb odd sizes.

    Parameters
    ----------
    n_loci
        L (only used for the repr; any L is accepted at run time).
    latent_dim
        d.
    in_channels
        Channels of the map representation (4, see :class:`~pointae.data.reprs.MapRepr`).
    widths
        Channels of the 4 conv layers.
    pool_to
        Spatial size after the adaptive pooling.
    channels_last
        Run the convolutions in channels-last memory format (faster oneDNN kernels on CPU).

    Shapes
    ------
    ``(B, in_channels, L, L) -> (B, latent_dim)``; invariant to rigid motions of the trace
    because its input is (a function of) the distance map.
    """

    repr: ClassVar[str] = "map"
    #: small hyperparameters for fast tests (the registry-parametrised tests use them)
    tiny_hparams: ClassVar[dict] = {"widths": (4, 4, 8, 8), "pool_to": 2}

    def __init__(
        self,
        n_loci: int,
        latent_dim: int,
        in_channels: int = 4,
        widths: Sequence[int] = (32, 64, 128, 128),
        pool_to: int = 4,
        channels_last: bool = True,
    ):
        super().__init__()
        if len(widths) != 4:
            raise ValueError(f"widths must list 4 channel counts, got {widths}")
        self.n_loci, self.latent_dim, self.channels_last = n_loci, latent_dim, channels_last
        layers: list[nn.Module] = []
        c = in_channels
        for i, w in enumerate(widths):
            if i > 0:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            layers.append(ConvBlock2d(c, w))
            c = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(pool_to)
        self.fc = nn.Linear(c * pool_to * pool_to, latent_dim)
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, L, L) -> (B, widths[-1], ~L/8, ~L/8)``."""
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pool(self.feature_maps(x))  # (B, C, p, p)
        return self.fc(h.flatten(1))  # (B, d)

    def extra_repr(self) -> str:
        return f"n_loci={self.n_loci}, latent_dim={self.latent_dim}, channels_last={self.channels_last}"
