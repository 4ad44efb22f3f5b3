"""Test helpers shipped with the package (as e3nn ships ``assert_equivariant``).

Use them in your own tests of encoders, decoders and transforms.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def tiny_traces(n: int = 8, n_loci: int = 16, seed: int = 0, missing: float = 0.1, step: float = 150.0):
    """Small random-walk traces in nm with a fraction of loci missing (never the first two).

    Returns
    -------
    Traces
        ``n`` traces, ``n_loci`` loci, a ``condition`` column alternating ``a``/``b`` and a
        loci table on a made-up chromosome.
    """
    from pointae.data.traces import Traces

    rng = np.random.default_rng(seed)
    steps = rng.normal(scale=step / np.sqrt(3), size=(n, n_loci, 3))
    coords = np.cumsum(steps, axis=1).astype(np.float32) + rng.uniform(-5e3, 5e3, size=(n, 1, 3))
    drop = rng.random((n, n_loci)) < missing
    drop[:, :2] = False
    coords[drop] = np.nan
    meta = pd.DataFrame(
        {"trace_id": [f"t{i}" for i in range(n)], "condition": ["a", "b"] * (n // 2) + ["a"] * (n % 2)}
    )
    loci = pd.DataFrame(
        {"chrom": "chrT", "start": np.arange(n_loci) * 30_000, "end": (np.arange(n_loci) + 1) * 30_000}
    )
    return Traces(coords, unit="nm", meta=meta, loci=loci, attrs={"source": "pointae.testing.tiny_traces"})


def random_rigid(rng: np.random.Generator, reflect: bool = False):
    """A random rotation (optionally with reflection) ``(3, 3)`` and translation ``(3,)``."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    if reflect:
        q = q @ np.diag([1.0, 1.0, -1.0])
    return q, rng.normal(scale=1e3, size=3)


def assert_valid_map(maps, atol: float = 1e-5, allow_nan: bool = False) -> None:
    """Assert maps ``(..., L, L)`` are symmetric, zero-diagonal and non-negative.

    A model's output map must be finite everywhere (the default). Data maps with missing loci
    pass ``allow_nan=True``: NaN is then allowed off the diagonal of a missing locus' row and
    column only, in a symmetric pattern, and never on the diagonal of an observed locus.
    """
    m = np.asarray(maps.detach().cpu() if hasattr(maps, "detach") else maps, dtype=np.float64)
    assert m.ndim >= 2 and m.shape[-1] == m.shape[-2], f"not square: {m.shape}"
    nan = np.isnan(m)
    assert not np.isinf(m).any(), "infinite entries"
    if not allow_nan:
        assert not nan.any(), f"{int(nan.sum())} NaN entries"
    else:
        assert np.array_equal(nan, np.swapaxes(nan, -1, -2)), "NaN pattern not symmetric"
    sym = np.abs(m - np.swapaxes(m, -1, -2))
    assert np.nanmax(sym, initial=0.0) <= atol * max(1.0, np.nanmax(np.abs(m), initial=0.0)), "not symmetric"
    diag = np.diagonal(m, axis1=-2, axis2=-1)
    assert np.nanmax(np.abs(diag), initial=0.0) <= atol, "diagonal not zero"
    assert np.nanmin(m, initial=0.0) >= -atol, "negative entries"


def assert_rigid_invariant(
    fn, coords: np.ndarray, rng: np.random.Generator, rtol: float = 1e-4, reflect=True
):
    """Assert ``fn(coords)`` is unchanged by a random rotation + translation (+ reflection)."""
    rot, shift = random_rigid(rng, reflect=reflect)
    moved = (coords.astype(np.float64) @ rot.T + shift).astype(np.float32)
    a, b = np.asarray(fn(coords)), np.asarray(fn(moved))
    scale = max(1.0, float(np.nanmax(np.abs(a), initial=1.0)))
    np.testing.assert_allclose(a, b, rtol=0, atol=rtol * scale, equal_nan=True)
