"""3D reconstruction from distance maps, rigid alignment and structure errors.

- :func:`classical_mds`: maps -> coordinates by double centring and an eigen-decomposition
  (Torgerson); missing pairs are first completed by shortest paths through known pairs.
- :func:`smacof`: weighted stress minimisation by Guttman transforms (SMACOF), honouring a pair
  mask / weights and able to *pin* loci (e.g. observed spots) at their initial positions while the
  free loci are placed.
- :func:`kabsch`, :func:`align`, :func:`rmsd`: optimal superposition and the error after it.
- :func:`reconstruct`: one call for a batch of maps with a report of the distance error.
- :func:`reconstruct_traces`: maps of a :class:`~pointae.Traces` -> 3D, aligned back onto the input.

Every function accepts a single structure ``(L, ...)`` or a batch ``(N, L, ...)`` and works in
float64 internally.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from pointae.data.io import read_structures  # re-exported: it lived here before
from pointae.data.io.npy import load_npy_array
from pointae.errors import PointaeError

__all__ = [
    "classical_mds",
    "complete_map",
    "smacof",
    "stress",
    "kabsch",
    "align",
    "rmsd",
    "distance_error",
    "Reconstruction",
    "reconstruct",
    "reconstruct_traces",
    "reconstruct_file",
    "read_structures",
]

_ERROR_KEYS = ("mae", "relative", "pearson", "stress")
_CHUNK = 2048  # traces per chunk in batched SMACOF: bounds temporaries to chunk * L * L doubles


# ---------------------------------------------------------------------------------------- helpers
_BLAS = {"controller": None, "depth": 0}


def _single_blas(fn):
    """Run ``fn`` with one BLAS thread: the matrices here are small (L x L), and a multi-threaded
    BLAS on busy cores is 10-40x slower on them (measured: eigh of 65 x 65, 58 ms vs 1.6 ms).
    The threadpoolctl controller is built once (the limit then costs ~10 us per call)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if _BLAS["depth"] > 0:  # already limited by an outer call
            return fn(*args, **kwargs)
        if _BLAS["controller"] is None:
            try:
                from threadpoolctl import ThreadpoolController

                _BLAS["controller"] = ThreadpoolController()
            except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
                _BLAS["controller"] = False
        if not _BLAS["controller"]:
            return fn(*args, **kwargs)
        _BLAS["depth"] += 1
        try:
            with _BLAS["controller"].limit(limits=1, user_api="blas"):
                return fn(*args, **kwargs)
        finally:
            _BLAS["depth"] -= 1

    return wrapper


def _as_batch(x: np.ndarray, ndim: int, what: str) -> tuple[np.ndarray, bool]:
    """Return ``(batch, was_single)`` where a single item gets a leading batch axis."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == ndim - 1:
        return x[None], True
    if x.ndim != ndim:
        raise PointaeError(f"{what} must have {ndim - 1} or {ndim} dimensions, got shape {x.shape}")
    return x, False


def _check_maps(d: np.ndarray) -> None:
    if d.shape[-1] != d.shape[-2]:
        raise PointaeError(f"distance maps must be square, got shape {d.shape}")
    if np.nanmin(d, initial=0.0) < 0:
        raise PointaeError("distance maps contain negative distances")


def _pair_weights(d: np.ndarray, weights, mask) -> np.ndarray:
    """Symmetric non-negative weights ``(N, L, L)``, zero on the diagonal and on unknown pairs."""
    n, n_loci = d.shape[:2]
    if weights is None:
        w = np.ones_like(d)
    else:
        w = np.broadcast_to(np.asarray(weights, dtype=np.float64), d.shape).copy()
        if np.nanmin(w, initial=0.0) < 0:
            raise PointaeError("weights must be non-negative")
        w = np.nan_to_num(w, nan=0.0)
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if m.shape == (n, n_loci) or m.shape == (n_loci,):  # a locus mask
            m = m[..., :, None] & m[..., None, :]
        w = w * np.broadcast_to(m, d.shape)
    w[~np.isfinite(d)] = 0.0
    w = 0.5 * (w + np.swapaxes(w, -1, -2))
    idx = np.arange(n_loci)
    w[:, idx, idx] = 0.0
    return w


@_single_blas
def complete_map(d: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Fill unknown pairs by the shortest path through known pairs (an Isomap-style completion).

    Parameters
    ----------
    d
        ``(L, L)`` or ``(N, L, L)`` distances, NaN where unknown.
    mask
        Optional bool pair mask ``(..., L, L)`` (True = trusted) or locus mask ``(..., L)``;
        untrusted pairs are treated as unknown.

    Returns
    -------
    numpy.ndarray
        Same shape, float64. Pairs not connected through known pairs stay NaN (e.g. rows of
        missing loci). Known pairs are kept as given.
    """
    from scipy.sparse.csgraph import shortest_path

    d, single = _as_batch(d, 3, "distance maps")
    _check_maps(d)
    w = _pair_weights(d, None, mask)
    out = np.where(w > 0, d, np.nan)
    idx = np.arange(d.shape[1])
    for i in range(d.shape[0]):
        known = w[i] > 0
        has = known.any(1)
        block = known[np.ix_(has, has)]
        if block.sum() == has.sum() * (has.sum() - 1):  # complete among placed loci: nothing to fill
            out[i, idx[has], idx[has]] = 0.0
            continue
        g = np.where(known, np.maximum(d[i], 1e-12), 0.0)  # 0 = no edge for csgraph
        sp = shortest_path(g, method="D", directed=False)
        filled = np.where(known, d[i], sp)
        filled[np.isinf(filled)] = np.nan
        filled[idx[has], idx[has]] = 0.0
        out[i] = filled
    return out[0] if single else out


# ---------------------------------------------------------------------------------------- MDS
@_single_blas
def classical_mds(d: np.ndarray, dim: int = 3, mask: np.ndarray | None = None) -> np.ndarray:
    """Classical (Torgerson) multidimensional scaling.

    Parameters
    ----------
    d
        Distance map(s), ``(L, L)`` or ``(N, L, L)``; NaN = unknown pair. Unknown pairs between
        placed loci are completed by :func:`complete_map`; a locus with no known pair is not placed.
    dim
        Output dimension (3 for structures).
    mask
        Optional pair mask ``(..., L, L)`` or locus mask ``(..., L)`` of trusted entries.

    Returns
    -------
    numpy.ndarray
        ``(L, dim)`` or ``(N, L, dim)`` float64 coordinates, centred, NaN for loci that cannot be
        placed. Exact (up to a rigid motion and a reflection) when ``d`` is Euclidean in ``dim``-D.
    """
    d, single = _as_batch(d, 3, "distance maps")
    _check_maps(d)
    n, n_loci = d.shape[:2]
    full = complete_map(d, mask)  # (N, L, L), NaN only where disconnected
    out = np.full((n, n_loci, dim), np.nan)
    complete = np.isfinite(full).all(axis=(1, 2))
    if complete.any():
        out[complete] = _mds_complete(full[complete], dim)
    for i in np.flatnonzero(~complete):
        # place the largest connected block of loci; the rest stay NaN
        ok = np.isfinite(full[i])
        counts = ok.sum(1)
        if counts.max() < 2:
            continue
        keep = ok[np.argmax(counts)]
        sub = full[i][np.ix_(keep, keep)]
        out[i, keep] = _mds_complete(sub[None], dim)[0]
    return out[0] if single else out


def _mds_complete(d: np.ndarray, dim: int) -> np.ndarray:
    """Classical MDS of complete maps ``(N, L, L)`` -> ``(N, L, dim)``."""
    n_loci = d.shape[1]
    d2 = d**2
    # double centring: B = -1/2 J D^2 J with J = I - 11'/L
    b = d2 - d2.mean(1, keepdims=True) - d2.mean(2, keepdims=True) + d2.mean((1, 2), keepdims=True)
    b = -0.5 * b
    b = 0.5 * (b + np.swapaxes(b, 1, 2))
    vals, vecs = np.linalg.eigh(b)  # ascending
    k = min(dim, n_loci)
    vals = vals[:, ::-1][:, :k]
    vecs = vecs[:, :, ::-1][:, :, :k]
    x = vecs * np.sqrt(np.clip(vals, 0.0, None))[:, None, :]
    if k < dim:
        x = np.concatenate([x, np.zeros(x.shape[:2] + (dim - k,))], axis=2)
    return x


# ---------------------------------------------------------------------------------------- SMACOF
def _pdist(x: np.ndarray) -> np.ndarray:
    """Pairwise distances of ``(N, L, k)`` -> ``(N, L, L)``."""
    x = x - x.mean(1, keepdims=True)  # centring keeps the Gram form accurate
    sq = np.einsum("nik,nik->ni", x, x)
    d2 = sq[:, :, None] + sq[:, None, :] - 2.0 * (x @ np.swapaxes(x, 1, 2))
    return np.sqrt(np.clip(d2, 0.0, None))


def stress(x: np.ndarray, d: np.ndarray, weights=None, mask=None, normalized: bool = True) -> np.ndarray:
    """Weighted (Kruskal) stress of coordinates against target distances.

    Parameters
    ----------
    x
        ``(L, k)`` or ``(N, L, k)`` coordinates (NaN loci ignored).
    d
        ``(L, L)`` or ``(N, L, L)`` target distances (NaN pairs ignored).
    weights, mask
        As in :func:`smacof`.
    normalized
        Return stress-1, ``sqrt(sum w (d - dx)^2 / sum w d^2)``, instead of the raw sum over
        pairs ``i < j``.

    Returns
    -------
    numpy.ndarray or float
        ``(N,)`` or a float.
    """
    x, single = _as_batch(x, 3, "coordinates")
    d, _ = _as_batch(d, 3, "distance maps")
    w = _pair_weights(d, weights, mask)
    dx = _pdist(np.nan_to_num(x))
    w = w * (np.isfinite(x[:, :, None, 0]) & np.isfinite(x[:, None, :, 0]))
    dd = np.nan_to_num(d)
    raw = 0.5 * (w * (dd - dx) ** 2).sum((1, 2))
    if normalized:
        den = 0.5 * (w * dd**2).sum((1, 2))
        raw = np.sqrt(raw / np.where(den > 0, den, 1.0))
    return float(raw[0]) if single else raw


@_single_blas
def smacof(
    d: np.ndarray,
    weights: np.ndarray | None = None,
    init: np.ndarray | None = None,
    fixed: np.ndarray | None = None,
    n_iter: int = 300,
    tol: float = 1e-6,
    dim: int = 3,
    mask: np.ndarray | None = None,
    lift: int = 2,
) -> np.ndarray:
    """Weighted metric SMACOF (stress majorisation by Guttman transforms), optionally with pinned loci.

    Minimises ``sum_{i<j} w_ij (d_ij - |x_i - x_j|)^2``. Each step solves the majorising quadratic
    exactly: ``V X = B(Z) Z`` with ``V = diag(W 1) - W`` and ``B(Z)_ij = -w_ij d_ij / |z_i - z_j|``.
    With pinned loci ``P`` only the free loci ``F`` are solved for,
    ``V_FF X_F = (B(Z) Z)_F - V_FP X_P``, and ``X_P`` is copied from ``init`` bit for bit.

    Parameters
    ----------
    d
        Target distances ``(L, L)`` or ``(N, L, L)``; NaN = unknown (weight 0).
    weights
        Optional non-negative pair weights broadcastable to ``d`` (e.g. a bool pair mask or
        confidences). Default: 1 for every known pair.
    init
        Starting coordinates ``(L, dim)`` / ``(N, L, dim)``. Default: :func:`classical_mds`.
        Required when ``fixed`` is given; NaN rows of free loci are filled by linear
        interpolation along the chain.
    fixed
        Optional bool ``(L,)`` or ``(N, L)``: loci pinned at their ``init`` position.
    n_iter, tol
        At most ``n_iter`` Guttman steps; a trace stops when its relative stress decrease is
        below ``tol``.
    dim
        Output dimension.
    mask
        Optional pair mask ``(..., L, L)`` or locus mask ``(..., L)``; pairs outside get weight 0.
    lift
        Without ``init``: first solve in ``dim + lift`` dimensions (from classical MDS there), then
        start from the ``dim``-D MDS of that solution. The extra dimensions let folds pass
        through each other, which avoids most local minima when many pairs are unknown; 0 = start
        from plain classical MDS.

    Returns
    -------
    numpy.ndarray
        ``(L, dim)`` or ``(N, L, dim)`` float64. Loci with no weighted pair (and not pinned) are NaN.
        Without pinned loci the result is centred and defined up to a rigid motion/reflection.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(20, 3))
    >>> d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    >>> y = smacof(d)
    >>> bool(rmsd(align(y, x, allow_reflection=True), x) < 1e-3)
    True
    """
    d, single = _as_batch(d, 3, "distance maps")
    _check_maps(d)
    n, n_loci = d.shape[:2]
    w = _pair_weights(d, weights, mask)
    dd = np.nan_to_num(d)
    if fixed is not None:
        fixed = np.broadcast_to(np.asarray(fixed, dtype=bool), (n, n_loci)).copy()
        if init is None:
            raise PointaeError("smacof: pinned loci need `init` coordinates")
    if init is None:
        known = np.where(w > 0, d, np.nan)
        if lift > 0:
            hi = smacof(known, weights=w, dim=dim + lift, n_iter=max(n_iter // 2, 1), tol=tol, lift=0)
            hi = np.nan_to_num(hi)
            x0 = _mds_complete(_pdist(hi), dim)  # (N, L, dim)
        else:
            x0 = classical_mds(known, dim=dim).reshape(n, n_loci, dim)
    else:
        x0, _ = _as_batch(init, 3, "init")
        if x0.shape != (n, n_loci, dim):
            raise PointaeError(f"init has shape {x0.shape[-2:]}, expected {(n_loci, dim)} per trace")
        x0 = x0.copy()
    if fixed is not None and np.isnan(x0[fixed]).any():
        raise PointaeError("smacof: a pinned locus has no initial coordinates")
    placed = (w > 0).any(2)
    if fixed is not None:
        placed |= fixed
    x0 = _fill_init(x0, placed)
    out = np.empty_like(x0)
    for s in range(0, n, _CHUNK):
        sl = slice(s, s + _CHUNK)
        out[sl] = _smacof_chunk(dd[sl], w[sl], x0[sl], None if fixed is None else fixed[sl], n_iter, tol)
    out[~placed] = np.nan
    return out[0] if single else out


def _fill_init(x: np.ndarray, placed: np.ndarray) -> np.ndarray:
    """Give every placed locus with a NaN start a position interpolated along the chain."""
    idx = np.arange(x.shape[1])
    for i in range(x.shape[0]):
        have = np.isfinite(x[i]).all(1)
        need = placed[i] & ~have
        if not need.any():
            continue
        if not have.any():
            # no start at all: a gentle helix keeps loci apart
            t = idx[need].astype(np.float64)
            x[i, need] = np.stack([np.cos(t), np.sin(t), 0.3 * t] + [0 * t] * (x.shape[2] - 3), 1)[
                :, : x.shape[2]
            ]
            continue
        for a in range(x.shape[2]):
            x[i, need, a] = np.interp(idx[need], idx[have], x[i, have, a])
        # loci that collapse onto the same point (e.g. beyond the chain ends) get a tiny offset
        x[i, need] += (
            1e-3
            * np.sqrt(np.nanmean(np.nanvar(x[i, have], 0)) + 1.0)
            * np.sin(np.outer(idx[need], np.arange(1, x.shape[2] + 1)))
        )
    return x


def _smacof_chunk(d, w, x, fixed, n_iter, tol):
    """Batched Guttman iterations on ``(B, L, L)`` maps; see :func:`smacof`."""
    b, n_loci = d.shape[:2]
    eye = np.eye(n_loci)
    v = -w.copy()
    v[:, np.arange(n_loci), np.arange(n_loci)] = w.sum(2)  # V = diag(W 1) - W
    x = np.nan_to_num(x)
    if fixed is not None:
        # rows of pinned loci become identity rows: A X = rhs, rhs_P = X_P (keeps V_FP X_P coupling)
        a = np.where(fixed[:, :, None], eye[None], v)
        solve = np.linalg.pinv(a)
        pinned = x.copy()
    else:
        solve = np.linalg.pinv(v)  # V is singular (translations): the pseudo-inverse centres X
    wd = w * d
    out = x.copy()
    active = np.arange(b)  # original index of each working row; converged rows leave the set
    dx = _pdist(x)
    prev = 0.5 * (w * (d - dx) ** 2).sum((1, 2))
    scale = 0.5 * (w * d**2).sum((1, 2))  # stress of the all-zero configuration
    pin = (fixed[:, :, None], pinned) if fixed is not None else None
    for _ in range(n_iter):
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(dx > 1e-12, wd / dx, 0.0)
        rhs = ratio.sum(2)[:, :, None] * x - ratio @ x  # B(Z) Z, (B, L, k)
        if pin is not None:
            rhs = np.where(pin[0], pin[1], rhs)
        x = solve @ rhs
        if pin is not None:
            x = np.where(pin[0], pin[1], x)
        dx = _pdist(x)
        cur = 0.5 * (w * (d - dx) ** 2).sum((1, 2))
        # stop on a small relative decrease, or once the fit is exact to rounding
        go = ((prev - cur) > tol * np.maximum(prev, 1e-300)) & (cur > 1e-13 * scale)
        if not go.all():
            out[active[~go]] = x[~go]
            active, x, dx, cur = active[go], x[go], dx[go], cur[go]
            w, d, wd, solve, scale = w[go], d[go], wd[go], solve[go], scale[go]
            if pin is not None:
                pin = (pin[0][go], pin[1][go])
            if active.size == 0:
                break
        prev = cur
    out[active] = x
    x = out
    if fixed is not None:
        x[fixed] = pinned[fixed]  # bit-identical pins
    return x


# ---------------------------------------------------------------------------------------- alignment
def kabsch(
    p: np.ndarray, q: np.ndarray, mask: np.ndarray | None = None, allow_reflection: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Optimal rigid superposition of ``p`` onto ``q`` (least squares over common loci).

    Parameters
    ----------
    p, q
        ``(L, 3)`` or ``(N, L, 3)``; NaN loci are left out.
    mask
        Optional bool ``(L,)`` / ``(N, L)`` of loci to use (intersected with the finite ones).
    allow_reflection
        If False (default) ``R`` is a proper rotation (``det R = +1``, the classic Kabsch sign
        correction); if True an improper ``R`` is returned when it fits better, which is what
        MDS output needs (it is only defined up to a mirror image).

    Returns
    -------
    (R, t)
        ``R`` ``(3, 3)`` / ``(N, 3, 3)`` and ``t`` ``(3,)`` / ``(N, 3)`` with ``p @ R.T + t ~ q``.
        With fewer than one common locus ``R`` is the identity and ``t`` zero.
    """
    p, single = _as_batch(p, 3, "coordinates")
    q, _ = _as_batch(q, 3, "coordinates")
    if p.shape != q.shape:
        raise PointaeError(f"kabsch: shapes differ {p.shape} vs {q.shape}")
    m = np.isfinite(p).all(-1) & np.isfinite(q).all(-1)
    if mask is not None:
        m &= np.broadcast_to(np.asarray(mask, dtype=bool), m.shape)
    wt = m[..., None].astype(np.float64)
    cnt = np.maximum(m.sum(1), 1)[:, None]  # (N, 1)
    p0, q0 = np.where(m[..., None], p, 0.0), np.where(m[..., None], q, 0.0)
    pc, qc = p0.sum(1) / cnt, q0.sum(1) / cnt  # (N, 3)
    h = np.swapaxes((p0 - pc[:, None]) * wt, 1, 2) @ ((q0 - qc[:, None]) * wt)  # (N, 3, 3)
    u, _, vt = np.linalg.svd(h)
    r = np.swapaxes(vt, 1, 2) @ np.swapaxes(u, 1, 2)  # (N, 3, 3), may be improper
    if not allow_reflection:
        sign = np.sign(np.linalg.det(r))
        sign[sign == 0] = 1.0
        dmat = np.tile(np.eye(3), (len(r), 1, 1))
        dmat[:, 2, 2] = sign
        r = np.swapaxes(vt, 1, 2) @ dmat @ np.swapaxes(u, 1, 2)
    none = m.sum(1) == 0
    r[none] = np.eye(3)
    t = qc - np.einsum("nij,nj->ni", r, pc)
    t[none] = 0.0
    return (r[0], t[0]) if single else (r, t)


def align(
    p: np.ndarray, q: np.ndarray, mask: np.ndarray | None = None, allow_reflection: bool = False
) -> np.ndarray:
    """Move ``p`` onto ``q`` by :func:`kabsch`; returns ``p``'s shape (NaN loci stay NaN)."""
    r, t = kabsch(p, q, mask, allow_reflection)
    p = np.asarray(p, dtype=np.float64)
    return p @ np.swapaxes(r, -1, -2) + t[..., None, :]


def rmsd(p: np.ndarray, q: np.ndarray, mask: np.ndarray | None = None, superpose: bool = False):
    """Root-mean-square deviation over loci finite in both (and in ``mask``).

    With ``superpose`` ``p`` is first aligned onto ``q`` (proper rotation only). Returns a float
    for ``(L, 3)`` inputs, ``(N,)`` for batches (NaN where no locus is common).
    """
    if superpose:
        p = align(p, q, mask)
    p, single = _as_batch(p, 3, "coordinates")
    q, _ = _as_batch(q, 3, "coordinates")
    m = np.isfinite(p).all(-1) & np.isfinite(q).all(-1)
    if mask is not None:
        m &= np.broadcast_to(np.asarray(mask, dtype=bool), m.shape)
    sq = np.where(m, ((np.nan_to_num(p) - np.nan_to_num(q)) ** 2).sum(-1), 0.0)
    cnt = m.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.sqrt(sq.sum(1) / cnt)
    out[cnt == 0] = np.nan
    return float(out[0]) if single else out


# ---------------------------------------------------------------------------------------- reports
def distance_error(x: np.ndarray, d: np.ndarray, mask: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """How well coordinates reproduce target distances, per trace, over known pairs ``i < j``.

    Returns
    -------
    dict
        ``mae`` (same unit as ``d``), ``relative`` (MAE / mean target distance), ``pearson``
        (r between target and reconstructed distances) and ``stress`` (stress-1); each ``(N,)``
        (or a float for a single map).
    """
    x, single = _as_batch(x, 3, "coordinates")
    d, _ = _as_batch(d, 3, "distance maps")
    w = _pair_weights(d, None, mask) > 0
    w &= np.isfinite(x[:, :, None, 0]) & np.isfinite(x[:, None, :, 0])
    iu = np.triu_indices(d.shape[1], 1)
    dx = _pdist(np.nan_to_num(x))[:, iu[0], iu[1]]
    dt = np.nan_to_num(d)[:, iu[0], iu[1]]
    k = w[:, iu[0], iu[1]]
    cnt = k.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mae = np.where(k, np.abs(dx - dt), 0).sum(1) / cnt
        mean_t = np.where(k, dt, 0).sum(1) / cnt
        mean_x = np.where(k, dx, 0).sum(1) / cnt
        a = np.where(k, dt - mean_t[:, None], 0)
        bb = np.where(k, dx - mean_x[:, None], 0)
        r = (a * bb).sum(1) / np.sqrt((a * a).sum(1) * (bb * bb).sum(1))
        st = np.sqrt(np.where(k, (dx - dt) ** 2, 0).sum(1) / np.where(k, dt**2, 0).sum(1))
        rel = mae / mean_t
    res = {"mae": mae, "relative": rel, "pearson": r, "stress": st}
    return {k_: float(v[0]) for k_, v in res.items()} if single else res


@dataclass
class Reconstruction:
    """Result of :func:`reconstruct`.

    Attributes
    ----------
    coords
        ``(N, L, 3)`` float64 (``(L, 3)`` for a single map); NaN for loci that could not be placed.
    method
        ``"mds"`` or ``"smacof"``.
    errors
        Per-trace ``mae``, ``relative``, ``pearson``, ``stress`` over the trusted pairs (see
        :func:`distance_error`).
    """

    coords: np.ndarray
    method: str
    errors: dict[str, np.ndarray] = field(default_factory=dict)

    def summary(self) -> dict[str, float]:
        """Medians of the per-trace errors (JSON-able)."""
        return {f"median_{k}": float(np.nanmedian(np.atleast_1d(v))) for k, v in self.errors.items()}


@_single_blas
def reconstruct(
    maps: np.ndarray,
    mask: np.ndarray | None = None,
    method: Literal["mds", "smacof"] = "smacof",
    weights: np.ndarray | None = None,
    n_iter: int = 300,
    tol: float = 1e-6,
) -> Reconstruction:
    """Distance maps -> 3D coordinates, with the distance error of the result.

    Parameters
    ----------
    maps
        ``(L, L)`` or ``(N, L, L)`` distances, NaN = unknown (e.g. a missing locus).
    mask
        Optional trusted pairs ``(..., L, L)`` or trusted loci ``(..., L)``.
    method
        ``"mds"``: classical MDS (after shortest-path completion of unknown pairs);
        ``"smacof"``: weighted SMACOF started from the MDS solution, fitting only trusted pairs.
    weights, n_iter, tol
        Passed to :func:`smacof`.

    Returns
    -------
    Reconstruction
        ``coords`` ``(N, L, 3)`` (centred; defined up to a rigid motion and reflection) and errors.
    """
    if method not in ("mds", "smacof"):
        raise PointaeError(f"unknown reconstruction method {method!r}; use 'mds' or 'smacof'")
    maps = np.asarray(maps, dtype=np.float64)
    if method == "mds":
        x = classical_mds(maps, 3, mask=mask)
    else:
        x = smacof(maps, weights=weights, n_iter=n_iter, tol=tol, mask=mask)
    return Reconstruction(coords=x, method=method, errors=distance_error(x, maps, mask))


def reconstruct_traces(
    traces,
    method: Literal["mds", "smacof"] = "smacof",
    maps: np.ndarray | None = None,
    align_to_input: bool = True,
):
    """Rebuild every trace from its distance map and align it back onto the observed loci.

    Parameters
    ----------
    traces
        A :class:`~pointae.Traces`.
    method
        See :func:`reconstruct`.
    maps
        Optional ``(N, L, L)`` maps to reconstruct instead of the traces' own (e.g. predicted
        maps); the result is still aligned onto the traces' observed loci.
    align_to_input
        Superpose each result on the input coordinates (mirror images allowed, since a distance
        map cannot tell them apart).

    Returns
    -------
    (Traces, dict)
        The reconstructed traces (same ids, loci and layers; ``attrs["reconstruction"]`` records
        the method) and a report: per-trace ``rmsd`` to the input (data unit), and the
        distance-error arrays of :func:`distance_error`.
    """
    own = traces.distance_maps() if maps is None else np.asarray(maps, dtype=np.float64)
    if own.shape != (len(traces), traces.n_loci, traces.n_loci):
        raise PointaeError(
            f"maps have shape {own.shape}, expected {(len(traces), traces.n_loci, traces.n_loci)}"
        )
    rec = reconstruct(own, method=method)
    x = rec.coords
    ref = traces.coords.astype(np.float64)
    if align_to_input:
        x = align(x, ref, allow_reflection=True)
    report = {"rmsd": rmsd(x, ref), **rec.errors}
    attrs = dict(traces.attrs)
    attrs["reconstruction"] = {"method": method, "aligned": bool(align_to_input)}
    out = traces._replace(coords=x.astype(np.float32), attrs=attrs)
    return out, report


# ---------------------------------------------------------------------------------------- files
def reconstruct_file(
    input,
    output,
    method: Literal["mds", "smacof"] = "smacof",
    unit: str = "nm",
) -> dict:
    """Rebuild 3D structures from a file and write them; what ``pointae reconstruct`` runs.

    Parameters
    ----------
    input
        A trace file (any format :func:`pointae.read_traces` reads, or ``.pdb``): its distance maps
        are rebuilt and aligned back onto the observed loci; or an ``.npy`` of distance maps
        ``(N, L, L)`` / ``(L, L)`` (NaN = unknown pair), e.g. a model's predictions.
    output
        Where to write: an ``.npy`` gets the coordinates ``(N, L, 3)`` float32; any other suffix
        goes through :func:`pointae.write_traces` (``.h5``, ``.csv``, ``.fofct.csv``, ``.pdb``...).
    method
        ``"mds"`` or ``"smacof"`` (see :func:`reconstruct`).
    unit
        Unit of ``.npy`` maps (``nm``, ``micron`` or ``bead``).

    Returns
    -------
    dict
        ``n_traces``, ``n_loci``, ``method``, ``unit``, ``seconds`` and the medians over traces of
        the distance error (``median_mae``, ``median_relative``, ``median_pearson``,
        ``median_stress``) and, for trace input, ``median_rmsd`` / ``mean_rmsd`` to the input.
    """
    import time
    from pathlib import Path

    from pointae.data.traces import Traces
    from pointae.errors import InputError, atomic_path

    src, dst = Path(input), Path(output)
    from pointae.outputs import check_outputs

    check_outputs([dst], inputs=[src], overwrite=True)  # never the input (also via links); see outputs
    t0 = time.perf_counter()
    report: dict = {"method": method}
    if src.suffix.lower() == ".npy":
        maps = load_npy_array(src)
        if maps.ndim == 2:
            maps = maps[None]
        if maps.ndim != 3 or maps.shape[1] != maps.shape[2]:
            raise InputError(src, f"expected distance maps of shape (N, L, L), got {maps.shape}")
        if np.nanmin(maps, initial=0.0) < 0:
            raise InputError(src, "distance maps contain negative values")
        rec = reconstruct(maps, method=method)
        out = Traces(
            rec.coords.astype(np.float32),
            unit=unit,
            attrs={"source": str(src), "reconstruction": {"method": method, "from": "maps"}},
        )
        errors = rec.errors
    else:
        traces = read_structures(src)
        if len(traces) == 0:
            raise InputError(src, "no traces")
        out, errors = reconstruct_traces(traces, method=method)
        r = errors["rmsd"]
        report["median_rmsd"] = float(np.nanmedian(r))
        report["mean_rmsd"] = float(np.nanmean(r))
    report.update(
        {
            "n_traces": len(out),
            "n_loci": out.n_loci,
            "unit": out.unit,
            **{
                f"median_{k}": float(np.nanmedian(errors[k]))
                for k in ("mae", "relative", "pearson", "stress")
            },
        }
    )
    report["seconds"] = round(time.perf_counter() - t0, 3)
    if dst.suffix.lower() == ".npy":
        with atomic_path(dst) as tmp, open(tmp, "wb") as fh:
            np.save(fh, out.coords)
    else:
        from pointae.data.io import write_traces

        write_traces(out, dst)
    return report
