"""Bigger models for denoising and inpainting, with skip paths, sharing the valid-map output.

- :class:`MapUNet` (``repr = "map"``): a U-Net on the distance-map representation; full
  resolution skip connections make "copy the clean pairs, fix the corrupted ones" easy.
- :class:`GraphPairNet` (``repr = "graph"``): the message-passing encoder's node embeddings
  decoded pairwise, together with each pair's own (input) edge features.
- :class:`VoxelSkipNet` (``repr = "voxel"``): the voxel encoder -> latent -> map decoder, then a
  small convolutional refinement of [decoded map, chain-interpolated input map, pair mask,
  chain separation] added to the interpolated map (side information of
  :class:`~pointae.data.voxel.VoxelInput`; the encoder reads only the grid).

Both return :class:`~pointae.models.autoencoder.AEOutput`; their ``recon`` goes through
:func:`~pointae.models.layers.valid_map` (symmetric, zero diagonal, non-negative), and their
``latent`` is a pooled summary of size ``latent_dim``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from pointae import registry
from pointae.models.autoencoder import AEOutput
from pointae.models.decoder import MapDecoder
from pointae.models.encoders.graph_gnn import GraphGNN
from pointae.models.encoders.voxel_cnn import VoxelCNN
from pointae.models.layers import MLP, ConvBlock2d, inverse_softplus, valid_map


class MapUNet(nn.Module):
    """U-Net on maps: ``(B, C, L, L) -> AEOutput(latent (B, d), recon (B, L, L))``.

    The input is zero-padded to a multiple of ``2^(len(widths) - 1)``; each level is two
    ``Conv-BN-ReLU`` blocks, down by 2x2 max pooling, up by nearest upsampling + concatenation
    with the skip; a 1x1 conv gives the raw map, cropped to L and made valid. The latent is a
    dense projection of the globally averaged bottleneck. With ``residual`` (default) the raw
    output is added to ``softplus^-1`` of input channel 3 (the distance map with missing loci
    interpolated along the chain, see :class:`~pointae.data.reprs.MapRepr`): the network starts
    from the input/baseline map and learns corrections.
    """

    repr: ClassVar[str] = "map"
    tiny_hparams: ClassVar[dict] = {"widths": (4, 8)}

    def __init__(
        self,
        n_loci: int,
        latent_dim: int,
        in_channels: int = 4,
        widths: Sequence[int] = (16, 32, 64),
        channels_last: bool = True,
        residual: bool = True,
    ):
        super().__init__()
        self.n_loci, self.latent_dim, self.channels_last = n_loci, latent_dim, channels_last
        self.residual = residual and in_channels >= 4
        self.factor = 2 ** (len(widths) - 1)
        self.down = nn.ModuleList()
        c = in_channels
        for w in widths:
            self.down.append(nn.Sequential(ConvBlock2d(c, w), ConvBlock2d(w, w)))
            c = w
        self.up = nn.ModuleList()
        for w_skip in reversed(widths[:-1]):
            self.up.append(nn.Sequential(ConvBlock2d(c + w_skip, w_skip), ConvBlock2d(w_skip, w_skip)))
            c = w_skip
        self.out = nn.Conv2d(c, 1, 1)
        if self.residual:  # start exactly at the input/baseline map
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)
        self.fc = nn.Linear(widths[-1], latent_dim)
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> AEOutput:
        n = x.shape[-1]
        pad = (-n) % self.factor
        h = F.pad(x, (0, pad, 0, pad))  # (B, C, P, P), P multiple of factor
        if self.channels_last:
            h = h.contiguous(memory_format=torch.channels_last)
        skips = []
        for i, block in enumerate(self.down):
            if i > 0:
                h = F.max_pool2d(h, 2)
            h = block(h)
            skips.append(h)
        latent = self.fc(h.mean(dim=(-2, -1)))  # (B, d)
        for block, skip in zip(self.up, reversed(skips[:-1])):
            h = F.interpolate(h, scale_factor=2, mode="nearest")
            h = block(torch.cat([h, skip], dim=1))
        raw = self.out(h)[:, 0, :n, :n]  # (B, L, L)
        if self.residual:  # start from the input map (chain-interpolated where missing)
            raw = raw + inverse_softplus(x[:, 3])
        return AEOutput(latent=latent, recon=valid_map(raw))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, L, L) -> (B, d)``."""
        return self.forward(x).latent

    def extra_repr(self) -> str:
        return f"n_loci={self.n_loci}, latent_dim={self.latent_dim}, pad_to_multiple_of={self.factor}"


class GraphPairNet(nn.Module):
    """Message passing, then a pairwise decoder on node embeddings.

    ``a = W h`` (B, L, P); for each pair the features ``[a_i * a_j, |a_i - a_j|, e_ij]`` (symmetric
    in i, j; ``e_ij`` the pair's input edge features, a skip path carrying the observed
    distance) go through an MLP to one raw value, made valid by
    :func:`~pointae.models.layers.valid_map`. With ``residual`` (default) the raw value is
    added to ``softplus^-1`` of edge channel 0 (the input distance, chain-interpolated where a
    locus is missing), so the model starts from the input/baseline map and learns corrections.
    Invariant to rigid motions like the encoder.

    Shapes
    ------
    ``DenseGraph -> AEOutput(latent (B, d), recon (B, L, L))``
    """

    repr: ClassVar[str] = "graph"
    tiny_hparams: ClassVar[dict] = {"hidden": 8, "layers": 2, "bases": 2, "pair_dim": 4, "pair_hidden": 8}

    def __init__(
        self,
        n_loci: int,
        latent_dim: int,
        node_features: int = 14,
        edge_features: int = 21,
        hidden: int = 64,
        layers: int = 4,
        bases: int = 8,
        pair_dim: int = 32,
        pair_hidden: int = 64,
        residual: bool = True,
    ):
        super().__init__()
        self.n_loci, self.latent_dim, self.residual = n_loci, latent_dim, residual
        self.gnn = GraphGNN(n_loci, latent_dim, node_features, edge_features, hidden, layers, bases)
        self.proj = nn.Linear(hidden, pair_dim)
        self.pair = MLP([2 * pair_dim + edge_features, pair_hidden, pair_hidden, 1])
        if residual:  # start exactly at the input/baseline map
            nn.init.zeros_(self.pair[-1].weight)
            nn.init.zeros_(self.pair[-1].bias)

    def forward(self, g) -> AEOutput:
        h = self.gnn.node_embeddings(g)  # (B, L, H)
        latent = self.gnn.pool(h)  # (B, d)
        a = self.proj(h)  # (B, L, P)
        ai, aj = a[:, :, None, :], a[:, None, :, :]
        feats = torch.cat([ai * aj, (ai - aj).abs(), g.edge_attr], dim=-1)  # (B, L, L, 2P + E)
        raw = self.pair(feats)[..., 0]  # (B, L, L)
        if self.residual:  # edge channel 0: input distance (chain-interpolated where missing)
            raw = raw + inverse_softplus(g.edge_attr[..., 0])
        return AEOutput(latent=latent, recon=valid_map(raw))

    def encode(self, g) -> torch.Tensor:
        """``DenseGraph -> (B, d)``."""
        return self.gnn(g)

    def extra_repr(self) -> str:
        return f"n_loci={self.n_loci}, latent_dim={self.latent_dim}"


class VoxelSkipNet(nn.Module):
    """Voxel autoencoder with a zero-initialised residual refinement from the interpolated map.

    The :class:`~pointae.models.encoders.voxel_cnn.VoxelCNN` reads only ``x.grid`` and gives
    the latent ``z``; a :class:`~pointae.models.decoder.MapDecoder` decodes ``z`` to a map. A
    refinement CNN (``Conv-BN-ReLU`` blocks of width ``refine_width`` with dilations
    ``refine_dilations``, then a 1x1 conv, zero-initialised) reads [decoded map, ``x.skip_map``
    (distances with missing loci interpolated along the chain), pair-observed mask, chain
    separation] and its output is added to ``softplus^-1(x.skip_map)`` before
    :func:`~pointae.models.layers.valid_map`. An untrained model therefore returns exactly the
    interpolation baseline, and training learns corrections from the voxel latent and the
    local map context. Rigid-motion invariant in its skip path; the grid is oriented
    canonically (or randomly while training) by :class:`~pointae.data.voxel.VoxelRepr`.

    Shapes
    ------
    ``VoxelInput -> AEOutput(latent (B, d), recon (B, L, L))``
    """

    repr: ClassVar[str] = "voxel"
    tiny_hparams: ClassVar[dict] = {
        "widths": (4, 4, 8, 8),
        "map_widths": (8, 4, 4),
        "refine_width": 4,
        "refine_dilations": (1, 2),
    }

    def __init__(
        self,
        n_loci: int,
        latent_dim: int,
        in_channels: int = 10,
        widths: Sequence[int] = (16, 32, 64, 64),
        pool_to: int = 2,
        map_widths: Sequence[int] = (64, 32, 16, 8),
        refine_width: int = 16,
        refine_dilations: Sequence[int] = (1, 2, 4, 1),
    ):
        super().__init__()
        self.n_loci, self.latent_dim = n_loci, latent_dim
        self.encoder = VoxelCNN(n_loci, latent_dim, in_channels, widths, pool_to)
        self.decoder = MapDecoder(n_loci, latent_dim, map_widths, channels_last=False)
        blocks: list[nn.Module] = []
        c = 4
        for dil in refine_dilations:
            blocks += [
                nn.Conv2d(c, refine_width, 3, padding=dil, dilation=dil, bias=False),
                nn.BatchNorm2d(refine_width),
                nn.ReLU(inplace=True),
            ]
            c = refine_width
        self.refine = nn.Sequential(*blocks)
        self.out = nn.Conv2d(c, 1, 1)
        nn.init.zeros_(self.out.weight)  # start exactly at the interpolation baseline
        nn.init.zeros_(self.out.bias)

    def forward(self, x) -> AEOutput:
        latent = self.encoder(x.grid)  # (B, d): the grid only
        decoded = self.decoder(latent)  # (B, L, L) valid map from the latent
        skip = x.skip_map  # (B, L, L)
        n = skip.shape[-1]
        obs = x.observed.to(skip.dtype)  # (B, L)
        pair = obs[:, :, None] * obs[:, None, :]  # (B, L, L)
        idx = torch.arange(n, device=skip.device, dtype=skip.dtype)
        sep = ((idx[:, None] - idx[None, :]).abs() / max(n - 1, 1)).expand_as(skip)
        h = self.refine(torch.stack([decoded, skip, pair, sep], dim=1))  # (B, W, L, L)
        raw = self.out(h)[:, 0] + inverse_softplus(skip)  # (B, L, L)
        return AEOutput(latent=latent, recon=valid_map(raw))

    def encode(self, x) -> torch.Tensor:
        """``VoxelInput -> (B, d)`` (reads only the grid)."""
        return self.encoder(x.grid)

    def extra_repr(self) -> str:
        return f"n_loci={self.n_loci}, latent_dim={self.latent_dim}"


#: task model per encoder name for denoise/inpaint (others fall back to AutoEncoder): a live view
#: of :data:`pointae.registry.task_models`
TASK_MODELS = registry.task_models
