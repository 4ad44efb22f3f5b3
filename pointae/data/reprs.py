"""The three model representations of a batch of traces, registered by name
(:data:`pointae.registry.representations`).

Every representation is a callable ``rep(coords, *, train=False, generator=None) -> input``:
``coords`` is a float32 tensor ``(B, L, 3)`` in scaled units (divided by the dataset scale,
see :class:`~pointae.data.transforms.MapScaler`), NaN for missing or hidden loci. Corruptions
are applied to coordinates *before* the representation, so all encoders see the same inputs.

- ``"map"`` (:class:`MapRepr`): ``(B, 4, L, L)`` tensor.
- ``"graph"`` (:class:`~pointae.data.graph.GraphRepr`): a :class:`~pointae.data.graph.DenseGraph`.
- ``"voxel"`` (:class:`~pointae.data.voxel.VoxelRepr`): a :class:`~pointae.data.voxel.VoxelInput`
  (grid ``(B, C, G, G, G)`` for the encoder, plus the chain-interpolated distance map and the
  observed mask for the task models' skip path).

Examples
--------
>>> import torch
>>> rep = build_repr("map")
>>> rep(torch.zeros(2, 5, 3)).shape
torch.Size([2, 4, 5, 5])
"""

from __future__ import annotations

import torch

from pointae import registry
from pointae.data.chain import as_coords, filled_distance_maps
from pointae.data.transforms import distance_maps_torch
from pointae.errors import PointaeError


class MapRepr:
    """Distance-map representation ``(B, L, 3) -> (B, 4, L, L)``.

    Channels: 0 distance (missing pairs -> 0), 1 pair mask (1 where both loci observed, so the
    model knows which loci are missing), 2 chain separation ``|i - j| / (L - 1)``, 3 the
    distance after filling missing loci by linear interpolation along the chain (equal to
    channel 0 on observed pairs; a baseline estimate on missing ones, a skip path for
    inpainting). Invariant to rotations, reflections and translations of the coordinates.
    """

    name = "map"
    in_channels = 4

    def __call__(self, coords, *, train: bool = False, generator: torch.Generator | None = None):
        c = as_coords(coords)
        d = distance_maps_torch(c)  # (B, L, L), NaN where a locus is missing
        known = ~torch.isnan(d)
        n = c.shape[1]
        idx = torch.arange(n, device=c.device, dtype=c.dtype)
        sep = (idx[:, None] - idx[None, :]).abs() / max(n - 1, 1)  # (L, L)
        filled = filled_distance_maps(c, d)  # (B, L, L)
        return torch.stack(
            [torch.nan_to_num(d, nan=0.0), known.to(c.dtype), sep.expand_as(d), filled], dim=1
        )  # (B, 4, L, L)

    def __repr__(self) -> str:
        return "MapRepr(channels=[distance, pair_mask, chain_separation, interpolated_distance])"


#: representation name -> class: a live view of :data:`pointae.registry.representations`
REPRS = registry.representations


def build_repr(name: str, **kw):
    """Instantiate the representation ``name`` (``"map"``, ``"graph"``, ``"voxel"`` or any name of
    :data:`pointae.registry.representations`) with options."""
    cls = registry.representations.get(registry.representations.check(name))
    try:
        return cls(**kw)
    except TypeError as e:
        raise PointaeError(f"representation {name!r}: {e}") from None
