"""Chain geometry shared by the representations, the models and the baselines.

Everything here is pure tensor code on ``(B, L, 3)`` coordinates in chain order (NaN = missing):
interpolation along the chain, distances after filling missing loci, position-along-chain
encodings and random rotations. The representation modules (:mod:`pointae.data.reprs`,
:mod:`~pointae.data.graph`, :mod:`~pointae.data.voxel`) and :mod:`pointae.models.layers` import
from here and from :mod:`pointae.data.transforms`; nothing here imports them back.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from pointae.data.transforms import distance_maps_torch
from pointae.errors import PointaeError

__all__ = [
    "as_coords",
    "chain_encoding",
    "chain_features",
    "filled_distance_maps",
    "interpolate_along_chain",
    "random_rotations",
]


def as_coords(coords) -> torch.Tensor:
    """Accept a tensor or array ``(B, L, 3)`` (or one trace ``(L, 3)``) -> float32 ``(B, L, 3)``."""
    c = torch.as_tensor(np.asarray(coords) if not isinstance(coords, torch.Tensor) else coords)
    c = c.to(torch.float32)
    if c.ndim == 2:
        c = c[None]
    if c.ndim != 3 or c.shape[-1] != 3:
        raise PointaeError(f"coords must have shape (B, L, 3), got {tuple(c.shape)}")
    return c


def interpolate_along_chain(coords: torch.Tensor) -> torch.Tensor:
    """Fill missing loci ``(B, L, 3)`` by linear interpolation along the chain index.

    Ends take the nearest observed locus; traces with no observed locus become zeros.
    """
    b, n, _ = coords.shape
    obs = ~torch.isnan(coords[..., 0])  # (B, L)
    idx = torch.arange(n, device=coords.device).expand(b, n)
    big = n + 1
    # index of the previous / next observed locus for every position
    prev = torch.where(obs, idx, torch.full_like(idx, -1)).cummax(1).values  # (B, L)
    nxt = torch.where(obs, idx, torch.full_like(idx, big)).flip(1).cummin(1).values.flip(1)
    has_p, has_n = prev >= 0, nxt < big
    p = torch.where(has_p, prev, torch.where(has_n, nxt, 0))
    q = torch.where(has_n, nxt, p)
    c0 = torch.nan_to_num(coords, nan=0.0)
    cp = torch.gather(c0, 1, p[..., None].expand(b, n, 3))
    cq = torch.gather(c0, 1, q[..., None].expand(b, n, 3))
    w = torch.where(q > p, (idx - p).to(coords.dtype) / (q - p).clamp(min=1).to(coords.dtype), 0.0)
    return cp + w[..., None] * (cq - cp)  # (B, L, 3)


def filled_distance_maps(coords: torch.Tensor, maps: torch.Tensor | None = None) -> torch.Tensor:
    """Distances ``(B, L, L)`` after filling missing loci by linear interpolation along the chain.

    Observed pairs keep their exact distance (``maps`` if given); rigid-motion invariant, since
    interpolation commutes with rigid motions. Traces with no observed locus give zeros.
    """
    filled = distance_maps_torch(interpolate_along_chain(coords))  # (B, L, L), no NaN
    if maps is not None:
        filled = torch.where(torch.isnan(maps), filled, maps)
    return filled


def chain_encoding(n_loci: int, n_freq: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Sinusoidal position-along-chain encoding ``(L, 2 * n_freq)``.

    Column pairs are ``sin/cos(pi * 2^k * t)`` with ``t = i / (L - 1)`` in [0, 1], k = 0..n_freq-1,
    so the encoding is the same for any L (a fraction of the chain, not an index).
    """
    t = torch.linspace(0.0, 1.0, n_loci, device=device, dtype=dtype)  # (L,)
    freq = math.pi * 2.0 ** torch.arange(n_freq, device=device, dtype=dtype)  # (F,)
    ang = t[:, None] * freq[None, :]  # (L, F)
    return torch.cat([torch.sin(ang), torch.cos(ang)], dim=-1)  # (L, 2F)


def chain_features(n_loci: int, n_freq: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """``(L, 2 * n_freq + 1)``: sinusoidal chain-position encodings plus ``i / (L - 1)``."""
    t = torch.linspace(0.0, 1.0, n_loci, device=device, dtype=dtype)[:, None]
    return torch.cat([chain_encoding(n_loci, n_freq, device=device, dtype=dtype), t], dim=-1)


def random_rotations(
    n: int, generator: torch.Generator | None = None, dtype=torch.float32, device=None
) -> torch.Tensor:
    """``(n, 3, 3)`` independent, uniformly (Haar) distributed rotation matrices.

    From normalised 4D normal vectors (uniform unit quaternions): one ``randn(n, 4)`` draw in
    float64 on ``device`` (the generator's device), no decomposition, so it is cheap on any
    accelerator. The one implementation for the simulator's randomly rotated frames and the voxel
    representation's training rotations.
    """
    if device is None and generator is not None:
        device = generator.device
    q = torch.randn(n, 4, generator=generator, device=device, dtype=torch.float64)
    w, x, y, z = (q / torch.linalg.vector_norm(q, dim=1, keepdim=True)).unbind(1)
    rows = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ]
    return torch.stack([torch.stack(r, -1) for r in rows], -2).to(dtype)
