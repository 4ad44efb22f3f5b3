"""``.npy`` arrays: coordinates ``(N, L, 3)`` (or one trace ``(L, 3)``) or distance maps.

Loaded with ``allow_pickle=False`` (never runs code), checked numeric, as float64.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pointae.data.traces import Traces
from pointae.errors import InputError


def load_npy_array(path) -> np.ndarray:
    """A numeric ``.npy`` array as float64; a one-line :class:`InputError` otherwise."""
    p = Path(path)
    if not p.exists():
        raise InputError(p, "no such file")
    try:
        arr = np.load(p, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise InputError(p, f"not a numeric .npy array ({e})") from None
    if not np.issubdtype(arr.dtype, np.number):
        raise InputError(p, f"expected a numeric array, got dtype {arr.dtype}")
    return np.asarray(arr, dtype=np.float64)


def read_npy(path) -> Traces:
    """Coordinates ``(N, L, 3)`` or ``(L, 3)`` from an ``.npy`` file (trace ids ``0..N-1``)."""
    p = Path(path)
    arr = load_npy_array(p)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise InputError(p, f"expected coordinates of shape (N, L, 3), got {arr.shape}")
    return Traces(arr, attrs={"source": str(p), "format": "npy"})
