"""The :class:`Traces` container: the one object passed between all pointae stages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from pointae import registry
from pointae.errors import PointaeError

Unit = Literal["nm", "micron", "bead"]
UNITS = registry.units.where()  # live view of pointae.registry.units
_TO_NM = {"nm": 1.0, "micron": 1000.0}
LOCUS_COLUMNS = ("chrom", "start", "end")


def median_neighbour_distance(coords: np.ndarray) -> float:
    """Median distance between consecutive loci of ``coords`` ``(N, L, 3)`` where both are observed.

    NaN when no two consecutive loci are observed.
    """
    d = np.linalg.norm(np.diff(np.asarray(coords), axis=1), axis=-1)
    d = d[np.isfinite(d)]
    return float(np.median(d)) if d.size else float("nan")


@dataclass
class Traces:
    """A set of chromatin traces sharing one locus set.

    Parameters
    ----------
    coords
        float32 array, shape ``(N, L, 3)``, x/y/z per locus; NaN where a locus was not detected.
        A locus with any NaN coordinate is missing as a whole (all three set to NaN).
    unit
        ``"nm"``, ``"micron"`` or ``"bead"`` (simulation units).
    meta
        One row per trace (``N`` rows). Always has a string column ``trace_id`` (unique); may
        carry ``cell_id``, ``condition``, labels and anything else the source file had.
    loci
        One row per locus (``L`` rows) with ``chrom`` (str), ``start``, ``end`` (int, bp) when
        known, else ``None``.
    attrs
        Provenance and free-form attributes (source file, pointae version, parameters, ...).
        Values must be JSON-serialisable.
    layers
        Optional per-spot fields, each an array of shape ``(N, L)`` (numeric or str), e.g.
        ``pointae_status`` (observed/imputed/corrected) or ``confidence``, or extra per-spot
        columns a file carried. Sliced together with the traces.

    Notes
    -----
    ``mask`` (bool, ``(N, L)``, True where observed) is derived from ``coords``, so it always
    agrees with the NaNs.

    Examples
    --------
    >>> import numpy as np
    >>> t = Traces(np.zeros((2, 5, 3), np.float32))
    >>> len(t), t.n_loci, t.mask.all()
    (2, 5, True)
    """

    coords: np.ndarray
    unit: str = "nm"
    meta: pd.DataFrame | None = None
    loci: pd.DataFrame | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    layers: dict[str, np.ndarray] = field(default_factory=dict)
    coords64: np.ndarray | None = None

    def __post_init__(self) -> None:
        c = np.asarray(self.coords)
        if c.ndim != 3 or c.shape[-1] != 3:
            raise PointaeError(f"coords must have shape (N, L, 3), got {c.shape}")
        if not np.issubdtype(c.dtype, np.number):
            raise PointaeError(f"coords must be numeric, got dtype {c.dtype}")
        from pointae.data.validate import clean_coords

        # a locus with any non-finite or out-of-range coordinate is missing as a whole; the
        # count is kept for the readers' report (pointae.data.validate)
        c, self.invalid_spots = clean_coords(c)
        self.coords = c
        if self.unit not in UNITS:
            raise PointaeError(f"unknown unit {self.unit!r}; expected one of {', '.join(UNITS)}")
        n, n_loci = c.shape[:2]
        if self.meta is None:
            self.meta = pd.DataFrame({"trace_id": [str(i) for i in range(n)]})
        else:
            self.meta = self.meta.reset_index(drop=True).copy()
            if "trace_id" not in self.meta.columns:
                self.meta.insert(0, "trace_id", [str(i) for i in range(n)])
            self.meta["trace_id"] = self.meta["trace_id"].astype(str)
        if len(self.meta) != n:
            raise PointaeError(f"meta has {len(self.meta)} rows but coords has {n} traces")
        if self.loci is not None:
            self.loci = self.loci.reset_index(drop=True).copy()
            if len(self.loci) != n_loci:
                raise PointaeError(f"loci has {len(self.loci)} rows but coords has {n_loci} loci")
            missing = [k for k in LOCUS_COLUMNS if k not in self.loci.columns]
            if missing:
                raise PointaeError(f"loci table lacks column(s) {', '.join(missing)}")
            self.loci["chrom"] = self.loci["chrom"].astype(str)
            self.loci["start"] = self.loci["start"].astype(np.int64)
            self.loci["end"] = self.loci["end"].astype(np.int64)
        self.attrs = dict(self.attrs)
        self.layers = {k: np.asarray(v) for k, v in self.layers.items()}
        for k, v in self.layers.items():
            if v.shape != (n, n_loci):
                raise PointaeError(f"layer {k!r} has shape {v.shape}, expected {(n, n_loci)}")
        if self.coords64 is not None:
            c64 = np.asarray(self.coords64, dtype=np.float64)
            if c64.shape != c.shape:
                raise PointaeError(f"coords64 has shape {c64.shape}, expected {c.shape}")
            self.coords64 = c64

    def exact_coords(self) -> np.ndarray:
        """float64 ``(N, L, 3)``: ``coords64`` where it still agrees with ``coords``, else ``coords``.

        What writers write: observed values exactly as read, changed or new values as float32.
        """
        out = self.coords.astype(np.float64)
        if self.coords64 is not None:
            same = self.coords64.astype(np.float32) == self.coords  # (N, L, 3); False for NaN
            out[same] = self.coords64[same]
        return out

    # ------------------------------------------------------------------ basic properties
    def __len__(self) -> int:
        return self.coords.shape[0]

    @property
    def n_loci(self) -> int:
        """Number of loci ``L``."""
        return self.coords.shape[1]

    @property
    def mask(self) -> np.ndarray:
        """bool ``(N, L)``: True where the locus was observed."""
        return ~np.isnan(self.coords[..., 0])

    @property
    def trace_ids(self) -> np.ndarray:
        """``(N,)`` array of trace ids (str)."""
        return self.meta["trace_id"].to_numpy()

    @property
    def missing_fraction(self) -> float:
        """Fraction of (trace, locus) entries that are missing."""
        return float(1.0 - self.mask.mean()) if self.coords.size else 0.0

    def __repr__(self) -> str:
        extra = [c for c in self.meta.columns if c != "trace_id"]
        return (
            f"Traces(n={len(self)}, loci={self.n_loci}, unit={self.unit!r}, "
            f"missing={self.missing_fraction:.1%}, meta={extra})"
        )

    # ------------------------------------------------------------------ validation
    def validate(self) -> Traces:
        """Check every invariant; raise :class:`PointaeError` on the first violation."""
        c = self.coords
        if c.dtype != np.float32:
            raise PointaeError("coords must be float32")
        partial = np.isnan(c).any(-1) & ~np.isnan(c).all(-1)
        if partial.any():
            i, j = np.argwhere(partial)[0]
            raise PointaeError(f"trace {self.trace_ids[i]}: locus {j} is partly NaN")
        if self.meta["trace_id"].duplicated().any():
            dup = self.meta["trace_id"][self.meta["trace_id"].duplicated()].iloc[0]
            raise PointaeError(f"duplicated trace id {dup!r}")
        if len(self.meta) != len(self) or (self.loci is not None and len(self.loci) != self.n_loci):
            raise PointaeError("meta/loci lengths disagree with coords")
        return self

    # ------------------------------------------------------------------ indexing
    def __getitem__(self, idx) -> Traces:
        """Select traces by int, slice, integer array or boolean mask; always returns Traces."""
        if isinstance(idx, (int, np.integer)):
            idx = [int(idx)]
        if isinstance(idx, slice):
            sel = np.arange(len(self))[idx]
        else:
            sel = np.asarray(idx)
            if sel.dtype == bool:
                if sel.shape != (len(self),):
                    raise IndexError(f"boolean index of shape {sel.shape} for {len(self)} traces")
                sel = np.flatnonzero(sel)
        layers = {k: v[sel] for k, v in self.layers.items()}
        c64 = None if self.coords64 is None else self.coords64[sel]
        return self._replace(coords=self.coords[sel], meta=self.meta.iloc[sel], layers=layers, coords64=c64)

    def _replace(self, **changes) -> Traces:
        kw = dict(
            coords=self.coords,
            unit=self.unit,
            meta=self.meta,
            loci=self.loci,
            attrs=self.attrs,
            layers=self.layers,
            coords64=self.coords64,
        )
        kw.update(changes)
        return Traces(**kw)

    def with_coords(self, coords: np.ndarray) -> Traces:
        """Same traces and metadata with new coordinates ``(N, L, 3)``."""
        if coords.shape != self.coords.shape:
            raise PointaeError(f"new coords shape {coords.shape} != {self.coords.shape}")
        return self._replace(coords=coords)

    @staticmethod
    def concat(items: Sequence[Traces], unique_ids: bool = True) -> Traces:
        """Concatenate traces with the same locus count and unit.

        With ``unique_ids`` trace ids that collide are made unique by prefixing ``{k}:``.
        """
        items = list(items)
        if not items:
            raise PointaeError("nothing to concatenate")
        first = items[0]
        for t in items[1:]:
            if t.n_loci != first.n_loci:
                raise PointaeError(f"cannot concatenate traces with {first.n_loci} and {t.n_loci} loci")
            if t.unit != first.unit:
                raise PointaeError(f"cannot concatenate units {first.unit!r} and {t.unit!r}")
        meta = pd.concat([t.meta for t in items], ignore_index=True)
        if unique_ids and meta["trace_id"].duplicated().any():
            meta["trace_id"] = [f"{k}:{tid}" for k, t in enumerate(items) for tid in t.meta["trace_id"]]
        common = set.intersection(*(set(t.layers) for t in items))
        c64 = None
        if any(t.coords64 is not None for t in items):
            c64 = np.concatenate([t.exact_coords() for t in items])
        return Traces(
            coords=np.concatenate([t.coords for t in items]),
            unit=first.unit,
            meta=meta,
            loci=first.loci,
            attrs=dict(first.attrs),
            layers={k: np.concatenate([t.layers[k] for t in items]) for k in sorted(common)},
            coords64=c64,
        )

    # ------------------------------------------------------------------ splits
    def split(
        self, test_fraction: float = 0.2, seed: int = 0, val_fraction: float = 0.0
    ) -> dict[str, np.ndarray]:
        """Split trace indices into train/val/test sets, by trace, reproducibly.

        Returns
        -------
        dict
            ``{"train": idx, "val": idx, "test": idx}``, sorted int arrays that partition
            ``range(N)``; ``val`` is empty when ``val_fraction`` is 0.
        """
        if not 0 <= test_fraction < 1 or not 0 <= val_fraction < 1 or test_fraction + val_fraction >= 1:
            raise PointaeError("split fractions must be in [0, 1) and sum to less than 1")
        n = len(self)
        perm = np.random.default_rng(seed).permutation(n)
        n_test = int(round(test_fraction * n))
        n_val = int(round(val_fraction * n))
        return {
            "test": np.sort(perm[:n_test]),
            "val": np.sort(perm[n_test : n_test + n_val]),
            "train": np.sort(perm[n_test + n_val :]),
        }

    # ------------------------------------------------------------------ units
    def to_unit(self, unit: str) -> Traces:
        """Convert between ``nm`` and ``micron`` (``bead`` cannot be converted implicitly)."""
        if unit == self.unit:
            return self
        if unit not in _TO_NM or self.unit not in _TO_NM:
            raise PointaeError(f"cannot convert {self.unit!r} to {unit!r} without a calibration")
        factor = _TO_NM[self.unit] / _TO_NM[unit]
        return self._replace(coords=self.coords * np.float32(factor), unit=unit, coords64=None)

    # ------------------------------------------------------------------ geometry
    def distance_maps(self, idx=None) -> np.ndarray:
        """Pairwise distance maps, float32 ``(N, L, L)``, NaN for pairs with a missing locus."""
        from pointae.data.transforms import distance_maps

        c = self.coords if idx is None else self.coords[idx]
        return distance_maps(c)

    def neighbour_distances(self) -> np.ndarray:
        """Distances between consecutive loci, ``(N, L-1)``, NaN where either is missing."""
        return np.linalg.norm(np.diff(self.coords, axis=1), axis=-1)

    def median_neighbour_distance(self) -> float:
        """Median distance between consecutive observed loci (a robust length scale)."""
        return median_neighbour_distance(self.coords)

    def radius_of_gyration(self) -> np.ndarray:
        """Radius of gyration per trace over observed loci, ``(N,)``."""
        c = self.coords.astype(np.float64)
        with np.errstate(invalid="ignore"):
            centre = np.nanmean(c, axis=1, keepdims=True)
            rg = np.sqrt(np.nanmean(np.sum((c - centre) ** 2, -1), axis=1))
        return rg

    # ------------------------------------------------------------------ io shortcuts
    def save(self, path, **kw) -> None:
        """Write to ``path``; the format follows the suffix (see :func:`pointae.write_traces`)."""
        from pointae.data.io import write_traces

        write_traces(self, path, **kw)

    @staticmethod
    def load(path, **kw) -> Traces:
        """Read any supported file (see :func:`pointae.read_traces`)."""
        from pointae.data.io import read_traces

        return read_traces(path, **kw)
