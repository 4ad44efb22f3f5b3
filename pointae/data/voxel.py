"""Voxel representation: centred, oriented, Gaussian-splatted loci on a ``G^3`` grid.

Channels keep the chain order: besides the density of observed loci, each observed locus
deposits its sin/cos position-along-chain encodings, so an ordered map can be decoded from the
grid. Missing loci are splatted into separate channels at positions linearly interpolated
along the chain from their nearest observed neighbours, so the model knows which loci are
missing and roughly where they should be.

Voxels are not rotation invariant: at training time (``train=True``) each trace gets a
uniformly random rotation (from the given ``torch.Generator``); otherwise a deterministic
canonical orientation: principal axes (PCA of the observed loci, largest variance first) with
each axis' sign chosen so that the coordinate increases along the chain (positive covariance
with the locus index).

The representation returns a :class:`VoxelInput`: the grid (all the encoder sees) plus side
information for the skip path of the voxel denoise/inpaint model
(:class:`~pointae.models.task_models.VoxelSkipNet`): the distance map with missing loci filled
by linear interpolation along the chain, and the observed-locus mask.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from pointae.data.chain import (
    as_coords,
    chain_encoding,
    filled_distance_maps,
    interpolate_along_chain,
    random_rotations,
)
from pointae.data.transforms import distance_maps_torch


@dataclass
class VoxelInput:
    """A batch of voxel grids with the side information of the task models' skip path.

    Attributes
    ----------
    grid
        ``(B, C, G, G, G)`` the voxel grid; the only thing the voxel encoder reads.
    skip_map
        ``(B, L, L)`` distances after filling missing loci by linear interpolation along the
        chain (exact on observed pairs; the inpainting baseline on the others). Rotation
        invariant; read only by the skip/refinement path of
        :class:`~pointae.models.task_models.VoxelSkipNet`.
    observed
        ``(B, L)`` bool, True where the locus is observed.
    """

    grid: torch.Tensor
    skip_map: torch.Tensor
    observed: torch.Tensor

    def to(self, device, non_blocking: bool = False) -> VoxelInput:
        """Move every tensor to ``device``."""
        return VoxelInput(
            **{f.name: getattr(self, f.name).to(device, non_blocking=non_blocking) for f in fields(self)}
        )

    def __len__(self) -> int:
        return self.grid.shape[0]

    def __getitem__(self, idx) -> VoxelInput:
        return VoxelInput(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    @property
    def shape(self) -> torch.Size:
        """Shape of the grid, ``(B, C, G, G, G)``."""
        return self.grid.shape


def canonical_frame(coords: torch.Tensor, degenerate_tol: float = 1e-3) -> torch.Tensor:
    """Deterministic orientation ``(B, 3, 3)`` (rows = axes) from the observed loci.

    PCA axes sorted by decreasing variance; each axis flipped so that the projection has a
    non-negative covariance with the locus index (ties broken towards the third moment).

    PCA alone is unstable where two principal variances are (nearly) equal: a ring, a disc or a
    round globule has no preferred axis inside the degenerate plane (or space), and the
    eigenvectors returned there are arbitrary, so a rotated copy got a different grid. When two
    variances differ by at most ``degenerate_tol`` times the largest, the axes inside that
    subspace come from the chain instead: the chain moments ``m_k = sum_i h_k(i) (x_i - mu)``
    (``h_k`` the centred locus index to the power 1, 2, 3) projected onto the subspace and
    orthonormalised in that order. Eigenvalues and chain moments are both rotation-equivariant, so
    the frame is too; it stays ambiguous only for a structure whose chain moments also vanish or
    align in that subspace (e.g. a perfectly symmetric shape traversed symmetrically).
    """
    b, n, _ = coords.shape
    obs = ~torch.isnan(coords[..., 0])  # (B, L)
    w = obs.to(torch.float64)
    x = torch.nan_to_num(coords, nan=0.0).to(torch.float64)
    cnt = w.sum(1).clamp(min=1.0)  # (B,)
    mu = (x * w[..., None]).sum(1) / cnt[:, None]  # (B, 3)
    xc = (x - mu[:, None]) * w[..., None]  # (B, L, 3)
    cov = xc.transpose(1, 2) @ xc / cnt[:, None, None]  # (B, 3, 3)
    lam, vec = torch.linalg.eigh(cov)  # ascending eigenvalues
    axes = vec.flip(-1).transpose(1, 2)  # (B, 3, 3) rows = axes, largest variance first
    lam = lam.flip(-1)  # (B, 3) descending
    proj = xc @ axes.transpose(1, 2)  # (B, L, 3)
    t = torch.arange(n, dtype=torch.float64, device=coords.device)
    tc = (t - (t * w).sum(1, keepdim=True) / cnt[:, None]) * w  # (B, L)
    s1 = (proj * tc[..., None]).sum(1)  # (B, 3) covariance with the chain index
    s3 = (proj**3).sum(1)  # (B, 3) third moment, for ties
    tol = 1e-9 * (proj.abs().sum(1) * tc.abs().sum(1, keepdim=True) + 1.0)
    sign = torch.where(s1.abs() > tol, s1.sign(), torch.where(s3 != 0, s3.sign(), 1.0))
    axes = axes * sign[..., None]
    gap = degenerate_tol * lam[:, :1].clamp(min=0.0)  # (B, 1)
    deg = (lam[:, :2] - lam[:, 1:]) <= gap  # (B, 2): top pair, bottom pair (nearly) equal
    for i in torch.nonzero(deg.any(1) & (lam[:, 0] > 0)).flatten().tolist():
        axes[i] = _chain_axes(axes[i], deg[i], xc[i], tc[i], w[i])
    return axes.to(coords.dtype)


def _chain_axes(axes: torch.Tensor, deg: torch.Tensor, xc: torch.Tensor, tc: torch.Tensor, w: torch.Tensor):
    """Replace the axes of a degenerate eigen-subspace by chain moments projected onto it."""
    if bool(deg[0]) and bool(deg[1]):
        groups = [[0, 1, 2]]
    elif bool(deg[0]):
        groups = [[0, 1]]
    else:
        groups = [[1, 2]]
    moments = []
    for k in (1, 2, 3):
        h = tc**k
        h = (h - (h * w).sum() / w.sum().clamp(min=1.0)) * w
        moments.append(h @ xc)  # (3,)
    scale = float(xc.abs().sum()) * float(tc.abs().max() ** 3 + 1.0) * 1e-12
    out = axes.clone()
    for g in groups:
        basis = axes[g]  # (k, 3) rows span the degenerate subspace
        found: list[torch.Tensor] = []
        for m in moments:
            v = basis.T @ (basis @ m)  # projection onto the subspace
            for f in found:
                v = v - (v @ f) * f
            if float(v.norm()) > scale:
                found.append(v / v.norm())
            if len(found) == len(g):
                break
        if len(found) < len(g) - 1:
            continue  # chain moments do not fix this subspace either: keep the PCA axes
        if len(found) < len(g):  # the last axis is the remaining direction of the subspace
            other = found[0] if len(g) == 3 else out[3 - sum(g)]  # axis outside a plane group
            v = torch.linalg.cross(other, found[-1])
            found.append(v / v.norm())
        for j, v in zip(g, found):
            out[j] = v
    return out


class VoxelRepr:
    """Coordinates ``(B, L, 3)`` -> :class:`VoxelInput` (grid ``(B, C, G, G, G)`` + skip map).

    Parameters
    ----------
    grid
        G, voxels per side.
    extent
        Half-width of the grid in scaled units (1 = a typical bond); loci outside are clamped
        onto the border voxels.
    sigma
        Gaussian splat width, in voxels.
    n_freq
        Frequencies of the chain-position encoding (channels per group: ``1 + 2 * n_freq``).

    Notes
    -----
    ``in_channels = 2 * (1 + 2 * n_freq)``: [observed density, observed chain encodings,
    missing-locus density, missing-locus chain encodings]. Each locus deposits a Gaussian whose
    weights sum to one, so the density channel's total mass is the number of observed loci.
    """

    name = "voxel"

    def __init__(self, grid: int = 16, extent: float = 6.0, sigma: float = 0.8, n_freq: int = 2):
        self.grid, self.extent, self.sigma, self.n_freq = grid, extent, sigma, n_freq
        self.in_channels = 2 * (1 + 2 * n_freq)

    def orient(self, coords: torch.Tensor, *, train: bool = False, generator=None) -> torch.Tensor:
        """Centre on the observed loci and rotate: canonical frame, then a random rotation if training."""
        obs = ~torch.isnan(coords[..., 0])
        w = obs.to(coords.dtype)[..., None]
        mu = (torch.nan_to_num(coords, nan=0.0) * w).sum(1) / w.sum(1).clamp(min=1.0)  # (B, 3)
        rot = canonical_frame(coords)  # (B, 3, 3)
        if train:
            rot = random_rotations(coords.shape[0], generator, coords.dtype).to(coords.device) @ rot
        return (coords - mu[:, None]) @ rot.transpose(1, 2)  # (B, L, 3), NaN stays NaN

    def __call__(
        self, coords, *, train: bool = False, generator: torch.Generator | None = None
    ) -> VoxelInput:
        c = as_coords(coords)
        b, n, _ = c.shape
        g = self.grid
        obs = ~torch.isnan(c[..., 0])  # (B, L)
        x = self.orient(c, train=train, generator=generator)
        x = interpolate_along_chain(x)  # (B, L, 3): missing loci at interpolated positions
        # continuous voxel coordinates in [0, G-1]
        u = ((x / self.extent).clamp(-1.0, 1.0) + 1.0) * 0.5 * (g - 1)  # (B, L, 3)
        centres = torch.arange(g, dtype=c.dtype, device=c.device)
        z = (u[..., None] - centres) * (1.0 / self.sigma)  # (B, L, 3, G)
        wts = torch.exp(-0.5 * (z * z).clamp_(max=60.0))  # clamped: no denormals
        wts = wts / wts.sum(-1, keepdim=True)  # each axis sums to 1: mass conserved
        enc = torch.cat(
            [
                torch.ones(n, 1, dtype=c.dtype, device=c.device),
                chain_encoding(n, self.n_freq, c.device, c.dtype),
            ],
            1,
        )  # (L, 1 + 2F)
        o = obs.to(c.dtype)[..., None]  # (B, L, 1)
        feat = torch.cat([enc * o, enc * (1.0 - o)], dim=-1)  # (B, L, C)
        wx, wy, wz = wts.unbind(2)  # (B, L, G) each
        fx = (feat[..., :, None] * wx[..., None, :]).reshape(b, n, -1)  # (B, L, C*G)
        yz = (wy[..., :, None] * wz[..., None, :]).reshape(b, n, g * g)  # (B, L, G*G)
        vox = torch.bmm(fx.transpose(1, 2), yz)  # (B, C*G, G*G)
        grid = vox.view(b, self.in_channels, g, g, g)  # (B, C, G, G, G) axes (x, y, z)
        skip = filled_distance_maps(c, distance_maps_torch(c))  # (B, L, L), pose-free
        return VoxelInput(grid=grid, skip_map=skip, observed=obs)

    def __repr__(self) -> str:
        return (
            f"VoxelRepr(grid={self.grid}, extent={self.extent}, sigma={self.sigma}, n_freq={self.n_freq}, "
            f"in_channels={self.in_channels})"
        )
