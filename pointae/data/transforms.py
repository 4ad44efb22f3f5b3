"""Distance maps, their normalisation, and contact maps (batched, mask-aware, float32).

The graph and voxel representations live in :mod:`pointae.data.graph` and
:mod:`pointae.data.voxel`; all three are registered in :data:`pointae.data.reprs.REPRS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from pointae.errors import PointaeError

_CHUNK = 256  # traces per chunk in distance_maps: two chunk * L * L float32 buffers stay in cache


def distance_maps_torch(coords: torch.Tensor) -> torch.Tensor:
    """Pairwise Euclidean distances of a batch of traces.

    Parameters
    ----------
    coords
        ``(B, L, 3)`` float tensor, NaN where a locus is missing (a locus with any NaN
        coordinate counts as missing).

    Returns
    -------
    torch.Tensor
        ``(B, L, L)``: exactly symmetric, exactly zero on the diagonal of observed loci, NaN in
        every row/column of a missing locus. Invariant to rotations, reflections and translations.

    Notes
    -----
    Computed directly from coordinate differences (``torch.cdist`` without the Gram-matrix
    shortcut): ``|a - b| == |b - a|`` bit for bit, no cancellation error for close loci far from
    the origin, and one fused pass over the ``(B, L, L)`` output, which makes it faster than the
    Gram-matrix route on CPU. Missing loci are zeroed before the distance so gradients stay finite
    for the observed ones (also at zero distances).
    """
    mask = ~torch.isnan(coords).any(-1)  # (B, L)
    x = torch.where(mask[..., None], coords, torch.zeros((), dtype=coords.dtype, device=coords.device))
    d = torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist")  # (B, L, L)
    pair = mask[:, :, None] & mask[:, None, :]  # (B, L, L)
    if d.requires_grad:
        return d.masked_fill(~pair, float("nan"))
    return d.masked_fill_(~pair, float("nan"))


def distance_maps(coords: np.ndarray, chunk: int = _CHUNK) -> np.ndarray:
    """Pairwise distance maps of many traces: ``(N, L, 3) -> (N, L, L)`` float32.

    Same result as :func:`distance_maps_torch` (exactly symmetric, exactly zero diagonal on
    observed loci, NaN in every row/column of a missing locus), computed for the CPU: each
    coordinate difference is written into the preallocated output in chunks of ``chunk`` traces
    small enough to stay in cache, with in-place numpy ufuncs (no ``(N, L, L, 3)`` temporaries,
    no thread-pool overhead, which matters on a busy shared machine). Missing loci need no mask:
    NaN propagates to exactly their rows and columns.

    Parameters
    ----------
    coords
        ``(N, L, 3)``; a locus with any non-finite coordinate is missing.
    chunk
        Traces per block (memory use is ``2 * chunk * L * L`` floats beyond the output).

    Returns
    -------
    numpy.ndarray
        ``(N, L, L)`` float32.
    """
    coords = np.asarray(coords, dtype=np.float32)
    if coords.ndim != 3 or coords.shape[-1] != 3:
        raise PointaeError(f"coords must have shape (N, L, 3), got {coords.shape}")
    n, n_loci = coords.shape[:2]
    from pointae.data.validate import check_memory

    check_memory(
        4.0 * n * n_loci * n_loci,
        f"distance maps of {n:,} traces x {n_loci:,} loci",
        hint="use fewer loci or fewer traces at a time",
    )
    out = np.empty((n, n_loci, n_loci), dtype=np.float32)
    if n == 0 or n_loci == 0:
        return out
    xs = np.ascontiguousarray(coords.transpose(0, 2, 1))  # (N, 3, L)
    bad = ~np.isfinite(xs).all(axis=1)  # (N, L): any non-finite coordinate -> missing locus
    if bad.any():
        xs = np.where(bad[:, None, :], np.float32(np.nan), xs)
    chunk = max(1, int(chunk))
    tmp = np.empty((min(chunk, n), n_loci, n_loci), dtype=np.float32)
    for s in range(0, n, chunk):
        x = xs[s : s + chunk]  # (B, 3, L)
        d = out[s : s + chunk]  # (B, L, L), a view written in place
        t = tmp[: x.shape[0]]
        np.subtract(x[:, 0, :, None], x[:, 0, None, :], out=d)
        np.multiply(d, d, out=d)
        for k in (1, 2):
            np.subtract(x[:, k, :, None], x[:, k, None, :], out=t)
            np.multiply(t, t, out=t)
            np.add(d, t, out=d)
        np.sqrt(d, out=d)
    return out


def pair_mask(mask: np.ndarray | torch.Tensor):
    """``(N, L)`` locus mask -> ``(N, L, L)`` pair mask (both loci observed)."""
    return mask[..., :, None] & mask[..., None, :]


def contact_maps(maps, threshold: float):
    """Binary contacts ``d < threshold`` (same unit as the maps); missing pairs stay NaN."""
    if isinstance(maps, torch.Tensor):
        c = (maps < threshold).to(maps.dtype)
        return c.masked_fill(torch.isnan(maps), float("nan"))
    c = (maps < threshold).astype(np.float32)
    c[np.isnan(maps)] = np.nan
    return c


@dataclass
class MapScaler:
    """An explicit, invertible normalisation of distance maps.

    Parameters
    ----------
    policy
        ``"dataset"``: divide every map by one reference length ``scale`` (by default the
        dataset's median neighbour distance, so 1.0 = a typical bond); ``"per_map"``: scale each
        map to [0, 1] by its own maximum (the seed work's choice; the per-map maxima are returned
        so the transform can be undone); ``"none"``: identity.
    scale
        Reference length for ``"dataset"`` (in the data's unit). Set by :meth:`fit`.

    Examples
    --------
    >>> s = MapScaler("dataset", scale=200.0)
    >>> s.transform(np.array([[[0.0, 400.0], [400.0, 0.0]]]))[0][0, 0, 1]
    2.0
    """

    policy: Literal["dataset", "per_map", "none"] = "dataset"
    scale: float | None = None

    def fit(self, traces) -> MapScaler:
        """Set ``scale`` from a :class:`~pointae.Traces` (median neighbour distance)."""
        if self.policy == "dataset":
            s = traces.median_neighbour_distance()
            if not np.isfinite(s) or s <= 0:
                raise PointaeError("cannot fit a map scale: no two consecutive loci observed")
            self.scale = float(s)
        return self

    def transform(self, maps):
        """Normalise maps ``(N, L, L)``; returns ``(scaled, per_map_max)``.

        ``per_map_max`` is ``None`` except for the ``"per_map"`` policy.
        """
        lib = torch if isinstance(maps, torch.Tensor) else np
        if self.policy == "none":
            return maps, None
        if self.policy == "dataset":
            if self.scale is None:
                raise PointaeError("MapScaler('dataset') needs a scale: call fit() first")
            return maps / self.scale, None
        if self.policy == "per_map":
            if lib is torch:
                m = torch.nan_to_num(maps, nan=0.0).amax(dim=(-2, -1)).clamp(min=1e-12)
            else:
                m = np.maximum(np.nanmax(np.nan_to_num(maps, nan=0.0), axis=(-2, -1)), 1e-12)
            return maps / m[..., None, None], m
        raise PointaeError(f"unknown map normalisation policy {self.policy!r}")

    def inverse(self, maps, per_map_max=None):
        """Undo :meth:`transform` (``per_map_max`` is required for ``"per_map"``)."""
        if self.policy == "none":
            return maps
        if self.policy == "dataset":
            return maps * self.scale
        if per_map_max is None:
            raise PointaeError("inverting 'per_map' scaling needs the per-map maxima")
        return maps * per_map_max[..., None, None]
