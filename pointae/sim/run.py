"""The simulation driver: presets -> batched dynamics -> independent, labelled conformations."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pandas as pd
import torch

from pointae.data.chain import random_rotations
from pointae.data.traces import Traces
from pointae.errors import PointaeError
from pointae.sim.barriers import (
    Region,
    barriers_to_monomers,
    parse_region,
    read_ctcf_table,
    synthetic_blocks,
    synthetic_sites,
)
from pointae.sim.extrusion import LEFSystem
from pointae.sim.polymer import ChainBatch, ForceField
from pointae.sim.presets import resolve_params

_INV_E = math.exp(-1.0)
_PLAIN = (int, float, str, bool, type(None))


def autocorrelation(series: np.ndarray, max_lag: int, vector: bool = False) -> np.ndarray:
    """Autocorrelation function averaged over chains.

    Parameters
    ----------
    series
        ``(T, C)`` scalar or ``(T, C, 3)`` vector samples (one per step).
    max_lag
        Largest lag returned.
    vector
        For vectors the mean is taken as 0 (isotropy) and ``x(t) . x(t+lag)`` is used; scalars are
        centred on their mean over the whole (stationary) window.

    Returns
    -------
    (max_lag + 1,) array, ``acf[0] == 1``.
    """
    x = np.asarray(series, dtype=np.float64)
    if not vector:
        x = (x - x.mean())[..., None]
    t = x.shape[0]
    max_lag = min(max_lag, t - 1)
    var = (x * x).sum(-1).mean()
    if var <= 0:
        return np.ones(max_lag + 1)
    acf = np.empty(max_lag + 1)
    for lag in range(max_lag + 1):
        acf[lag] = (x[: t - lag] * x[lag:]).sum(-1).mean() / var
    return acf


def decorrelation_time(acf: np.ndarray) -> float | None:
    """First lag where the ACF drops below ``1/e`` (linear interpolation); None if it never does."""
    below = np.flatnonzero(acf < _INV_E)
    if below.size == 0:
        return None
    k = int(below[0])
    if k == 0:
        return 0.0
    a, b = acf[k - 1], acf[k]
    return float(k - 1 + (a - _INV_E) / (a - b))


class _Progress:
    """Optional rich progress bar counting saved conformations, with conformations/s."""

    def __init__(self, enabled: bool, total: int, label: str):
        self.bar = None
        if not enabled:
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} conformations"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            transient=False,
        )
        self.t0 = time.perf_counter()
        self.bar.start()
        self.task = self.bar.add_task(label, total=total, rate="burn-in")

    def update(self, done: int, phase: str | None = None) -> None:
        if self.bar is None:
            return
        dt = time.perf_counter() - self.t0
        rate = phase or f"{done / max(dt, 1e-9):,.0f} conformations/s"
        self.bar.update(self.task, completed=done, rate=rate)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _series_tau(record: list, k: int, max_lag: int, vector: bool = False) -> float | None:
    """Decorrelation time of recorded series ``k`` (the squared norm of a vector series unless ``vector``)."""
    series = np.stack([r[k] for r in record])
    if series.ndim == 3 and not vector:
        series = (series**2).sum(-1)
    return decorrelation_time(autocorrelation(series, max_lag, vector=vector))


def _geometry(params: dict, n_loci: int, region, ctcf) -> dict[str, Any]:
    """Resolution, monomer count, loci table, barriers and blocks."""
    mpl = int(params["monomers_per_locus"])
    if mpl < 1:
        raise PointaeError("monomers_per_locus must be >= 1")
    if n_loci < 2:
        raise PointaeError("n_loci must be >= 2")
    ext = int(params["extension_loci"]) * mpl
    if region is not None:
        reg = region if isinstance(region, Region) else parse_region(region)
        locus_bp = reg.length / n_loci
        synthetic_coords = False
    else:
        if ctcf is not None:
            raise PointaeError("a CTCF table needs a region (e.g. --region chr21:29372390-31322258)")
        locus_bp = float(params["locus_bp"])
        reg = Region("sim", 0, int(round(locus_bp * n_loci)))
        synthetic_coords = True
    monomer_bp = locus_bp / mpl
    m = n_loci * mpl + 2 * ext
    edges = np.round(reg.start + np.arange(n_loci + 1) * locus_bp).astype(np.int64)
    loci = pd.DataFrame({"chrom": reg.chrom, "start": edges[:-1], "end": edges[1:]})
    n_dropped = 0
    ctcf_source = None
    if ctcf is not None:
        sites = read_ctcf_table(ctcf, mu=params["ctcf_mu"], divide=params["ctcf_divide"])
        n_dropped = int(sites.attrs.get("n_dropped", 0))
        ctcf_source = str(ctcf)
    else:
        sites = synthetic_sites(reg, n_loci, occupancy=float(params["synthetic_occupancy"]))
    bmap = barriers_to_monomers(sites, reg, monomer_bp, m, ext)
    if not params["barriers"]:
        bmap.stall_left[:] = 0.0
        bmap.stall_right[:] = 0.0
    blocks = None
    if params["blocks"]:
        syn = synthetic_sites(reg, n_loci)
        b_mon = ext + np.floor((syn["pos"].to_numpy() - reg.start) / monomer_bp).astype(np.int64)
        blocks = synthetic_blocks(m, np.unique(b_mon))
    return dict(
        mpl=mpl,
        ext=ext,
        n_monomers=m,
        region=reg,
        synthetic_coords=synthetic_coords,
        locus_bp=locus_bp,
        monomer_bp=monomer_bp,
        loci=loci,
        barriers=bmap,
        blocks=blocks,
        n_sites_dropped=n_dropped,
        ctcf_source=ctcf_source,
    )


def _loci_of(monomers: np.ndarray, ext: int, mpl: int, n_loci: int) -> list[int]:
    """Distinct loci (inside the region) holding the given monomers."""
    loci = {int((i - ext) // mpl) for i in monomers}
    return sorted(k for k in loci if 0 <= k < n_loci)


def _loops_and_states(
    lef: LEFSystem | None, geo: dict, c_idx: np.ndarray, tol: int = 1
) -> tuple[list, list, list]:
    """Per chain: loops string (locus coordinates), loop count and the loop state.

    The loop state is the set of barrier pairs bridged by a LEF at that moment: a LEF bridges the
    pair ``(a, b)`` (``a`` a forward-barrier locus, ``b > a`` a reverse-barrier locus) when its left
    leg sits within ``tol`` loci of ``a`` and its right leg within ``tol`` loci of ``b`` (captured by
    the barriers or not: the structure is the same). Written ``"a-b"``, several pairs sorted and joined
    with ``"+"`` (``"4-12+19-27"``), ``"none"`` when no pair is bridged (always without barriers).
    """
    n = len(c_idx)
    if lef is None:
        return [""] * n, [0] * n, ["none"] * n
    mpl, ext, n_loci = geo["mpl"], geo["ext"], len(geo["loci"])
    bm = geo["barriers"]
    fwd = np.array(_loci_of(np.flatnonzero(bm.stall_left > 0), ext, mpl, n_loci), dtype=np.int64)
    rev = np.array(_loci_of(np.flatnonzero(bm.stall_right > 0), ext, mpl, n_loci), dtype=np.int64)
    left = lef.left[c_idx].cpu().numpy()
    right = lef.right[c_idx].cpu().numpy()
    li = np.floor_divide(left - ext, mpl)
    ri = np.floor_divide(right - ext, mpl)
    ok = (left >= 0) & (li >= 0) & (ri < n_loci) & (ri > li)

    def nearest(pos: int, sites: np.ndarray) -> int | None:
        if sites.size == 0:
            return None
        j = int(np.argmin(np.abs(sites - pos)))
        return int(sites[j]) if abs(int(sites[j]) - pos) <= tol else None

    loops, counts, states = [], [], []
    for k in range(n):
        sel = np.flatnonzero(ok[k])
        order = sel[np.argsort(li[k, sel], kind="stable")]
        loops.append(";".join(f"{li[k, j]}-{ri[k, j]}" for j in order))
        counts.append(int(sel.size))
        pairs = set()
        for j in sel:
            a, b = nearest(int(li[k, j]), fwd), nearest(int(ri[k, j]), rev)
            if a is not None and b is not None and b > a:
                pairs.add((a, b))
        states.append("+".join(f"{a}-{b}" for a, b in sorted(pairs)) or "none")
    return loops, counts, states


def simulate(
    preset: str = "wt",
    n: int = 1000,
    n_loci: int = 64,
    seed: int = 0,
    device: str = "cpu",
    ctcf=None,
    region=None,
    progress: bool = False,
    **overrides,
) -> Traces:
    """Simulate ``n`` independent conformations of one condition.

    Parameters
    ----------
    preset
        One of :data:`pointae.sim.PRESETS` (``wt``, ``no-cohesin``, ``no-ctcf``, ``tads``, ``ideal``,
        ``swollen``, ``globule``).
    n
        Number of conformations.
    n_loci
        Loci ``L`` per trace (each the average of ``monomers_per_locus`` monomers).
    seed
        Seed; results are identical for a seed on the CPU.
    device
        ``"cpu"`` or ``"cuda"``.
    ctcf
        Optional CTCF site table (see :func:`pointae.sim.barriers.read_ctcf_table`); needs ``region``.
    region
        ``"chrom:start-end"``: the loci tile it evenly and the output gets a ``loci`` table; without it
        loci are 30 kb bins on a synthetic chromosome ``sim``.
    progress
        Show a rich progress bar (conformations/s).
    **overrides
        Any key of :data:`pointae.sim.presets.DEFAULTS`.

    Returns
    -------
    Traces
        ``coords`` ``(n, n_loci, 3)`` float32 in nm (centred per trace); ``meta`` columns
        ``trace_id, condition, loop_state, loops, n_loops, chain, step, rg_nm``; ``loci``;
        ``attrs`` with every parameter, the measured decorrelation time, burn-in, sampling
        interval, seed and version.
    """
    if n < 1:
        raise PointaeError("n must be >= 1")
    params = resolve_params(preset, overrides)
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise PointaeError("device 'cuda' requested but CUDA is not available")
    t_start = time.perf_counter()
    geo = _geometry(params, n_loci, region, ctcf)
    m = geo["n_monomers"]
    gen = torch.Generator(device=dev)
    gen.manual_seed(int(seed))
    n_chains = int(min(n, int(params["chains"])))
    ff = ForceField(
        n_monomers=m,
        bond_k=float(params["bond_k"]),
        angle_k=float(params["angle_k"]),
        ev_strength=float(params["ev_strength"] or 0.0),
        ev_radius=float(params["ev_radius"]),
        ev_potential=str(params["ev_potential"]),
        confine_density=params["confine_density"],
        confine_k=float(params["confine_k"]),
        blocks=geo["blocks"],
        attract_strength=float(params["attract_strength"] or 0.0),
        attract_radius=float(params["attract_radius"]),
        lef_k=float(params["lef_k"]),
    )
    batch = ChainBatch(
        ff,
        n_chains,
        dt=float(params["dt"]),
        lambda_c=float(params["lambda_c"]),
        generator=gen,
        device=dev,
        metropolis=bool(params["metropolis"]),
        integrator=str(params["integrator"]),
    )
    batch.init_ideal()

    lef = None
    spl = int(params["steps_per_lef"])
    lef_info: dict[str, Any] = {}
    if params["lefs"]:
        sep = float(params["lef_separation_bp"]) / geo["monomer_bp"]
        lifetime = max(1.0, float(params["lef_lifetime_bp"]) / geo["monomer_bp"])
        n_lef = max(1, int(round(m / sep)))
        lef = LEFSystem(
            n_chains,
            m,
            n_lef,
            lifetime,
            stall_left=geo["barriers"].stall_left,
            stall_right=geo["barriers"].stall_right,
            release=float(params["release"]),
            generator=gen,
            device=dev,
        )
        lef_burn = int(math.ceil(10 * lifetime))
        lef.step(lef_burn)  # 1D steady state before the 3D run
        batch.set_lefs(lef.left, lef.right)
        lef_info = {
            "n_lef": n_lef,
            "lef_separation_monomers": sep,
            "lef_lifetime_steps": lifetime,
            "lef_burn_in_steps": lef_burn,
        }

    lo, hi = geo["ext"], geo["ext"] + n_loci * geo["mpl"]
    bar = _Progress(progress, n, f"simulate {preset}")

    def advance(k: int, record: list | None = None) -> None:
        for _ in range(k):
            batch.step()
            if lef is not None and batch.n_steps % spl == 0:
                lef.step()
                batch.update_lef_operator()
            if record is not None:
                ree, rg2, com2 = batch.observables(lo, hi)
                cov = lef.loop_sizes().sum(1).float() if lef is not None else rg2 * 0
                record.append(tuple(v.cpu().numpy() for v in (ree, rg2, cov, com2)))

    # ---- decorrelation time from a pilot window (the start of the run itself)
    auto = params["burn_in"] == "auto" or params["interval"] == "auto"
    # With `rotate` every saved frame is turned by an independent uniformly random rotation about the
    # centre (an exact symmetry of every preset: free space or a sphere, rotation-invariant forces),
    # so orientation is independent by construction and the decorrelation time is measured on
    # rotation-invariant series: |R_ee|^2, Rg^2, |region centre|^2 (confined only; in free space it
    # is a translation) and the LEF coverage. Without it, the end-to-end *vector* replaces |R_ee|^2.
    rotate = bool(params["rotate"])
    confined = batch.confine_radius is not None
    tau = tau_ree = tau_ree2 = tau_rg = tau_lef = tau_com2 = None
    record: list = []
    if auto:
        window = int(params["pilot_steps"])
        while True:
            advance(window - len(record), record)
            half = record[len(record) // 2 :]
            max_lag = len(half) // 2
            tau_ree = _series_tau(half, 0, max_lag, vector=True)
            tau_ree2, tau_rg = _series_tau(half, 0, max_lag), _series_tau(half, 1, max_lag)
            tau_lef = _series_tau(half, 2, max_lag) if lef is not None else None
            tau_com2 = _series_tau(half, 3, max_lag) if confined else None
            if rotate:
                taus = [tau_ree2, tau_rg] + ([tau_com2] if confined else []) + ([tau_lef] if lef else [])
            else:
                taus = [tau_ree, tau_rg] + ([tau_lef] if lef is not None else [])
            if all(t is not None for t in taus) or window >= 32 * int(params["pilot_steps"]):
                tau = max((t if t is not None else max_lag) for t in taus)
                break
            window *= 2
            bar.update(0, f"measuring decorrelation ({window} steps)")
    burn_in = (
        int(math.ceil(max(float(params["burn_factor"]) * max(tau, 1.0), len(record))))
        if params["burn_in"] == "auto"
        else int(params["burn_in"])
    )
    interval = (
        int(math.ceil(float(params["interval_factor"]) * max(tau, 1.0)))
        if params["interval"] == "auto"
        else int(params["interval"])
    )
    if interval < 1:
        raise PointaeError("interval must be >= 1")
    bar.update(0, "burn-in")
    advance(max(0, burn_in - batch.n_steps))
    t_sample = time.perf_counter()

    # ---- sampling
    coords, rows = [], []
    done = 0
    frame = 0
    nm = float(params["nm_per_bead"])
    mpl = geo["mpl"]
    rot_gen = torch.Generator(device=dev)  # separate stream: rotating never changes the dynamics
    rot_gen.manual_seed(int(seed) + 104_729)
    while done < n:
        if frame > 0:
            advance(interval)
        take = min(n_chains, n - done)
        x = batch.positions()[:take, :, lo:hi]  # (c, 3, L * mpl)
        if not bool(torch.isfinite(x).all()):
            raise PointaeError(
                f"simulation of {preset!r} became unstable (non-finite coordinates at step "
                f"{batch.n_steps}); use a smaller dt (now {params['dt']}) or a larger lambda_c"
            )
        x = x.reshape(take, 3, n_loci, mpl).mean(-1).transpose(1, 2)  # (c, L, 3)
        x = x - x.mean(1, keepdim=True)
        if rotate:
            x = x @ random_rotations(take, rot_gen, dtype=x.dtype, device=dev).transpose(1, 2)
        coords.append((x.double() * nm).float().cpu().numpy())
        c_idx = np.arange(take)
        loops, counts, states = _loops_and_states(lef, geo, c_idx)
        for k in range(take):
            rows.append((k, batch.n_steps, loops[k], counts[k], states[k]))
        done += take
        frame += 1
        bar.update(done)
    bar.close()
    elapsed = time.perf_counter() - t_start
    xyz = np.concatenate(coords)
    meta = pd.DataFrame(rows, columns=["chain", "step", "loops", "n_loops", "loop_state"])
    max_states = int(params["max_states"])
    counts = meta["loop_state"][meta["loop_state"] != "none"].value_counts()
    if len(counts) > max_states:
        keep = set(counts.index[:max_states])
        meta["loop_state"] = [s if s == "none" or s in keep else "other" for s in meta["loop_state"]]
    meta.insert(0, "trace_id", [f"{preset}-{i}" for i in range(len(meta))])
    meta.insert(1, "condition", preset)
    rg = np.sqrt(((xyz - xyz.mean(1, keepdims=True)) ** 2).sum(-1).mean(-1))
    meta["rg_nm"] = rg.astype(np.float32)
    meta = meta[["trace_id", "condition", "loop_state", "loops", "n_loops", "chain", "step", "rg_nm"]]

    from pointae._version import __version__

    bm = geo["barriers"]
    attrs = {
        "source": "pointae.sim.simulate",
        "pointae_version": __version__,
        "preset": preset,
        "seed": int(seed),
        "n": int(n),
        "n_loci": int(n_loci),
        "device": str(dev),
        "params": {
            k: (v if isinstance(v, (int, float, str, bool, type(None))) else str(v))
            for k, v in params.items()
        },
        "acceptance": round(batch.acceptance, 4),
        "region": str(geo["region"]),
        "synthetic_coordinates": geo["synthetic_coords"],
        "ctcf": geo["ctcf_source"],
        "ctcf_sites_dropped_no_orientation": geo["n_sites_dropped"],
        "n_barrier_sites": int(len(bm.sites)),
        "barrier_monomers_left": np.flatnonzero(bm.stall_left > 0).tolist(),
        "barrier_monomers_right": np.flatnonzero(bm.stall_right > 0).tolist(),
        "barrier_loci_forward": _loci_of(np.flatnonzero(bm.stall_left > 0), geo["ext"], mpl, n_loci),
        "barrier_loci_reverse": _loci_of(np.flatnonzero(bm.stall_right > 0), geo["ext"], mpl, n_loci),
        "n_monomers": int(m),
        "monomer_bp": float(geo["monomer_bp"]),
        "locus_bp": float(geo["locus_bp"]),
        "extension_monomers": int(geo["ext"]),
        "n_chains": n_chains,
        "decorrelation_time_steps": None if tau is None else float(tau),
        "decorrelation_time_ree": tau_ree,
        "decorrelation_time_ree2": tau_ree2,
        "decorrelation_time_com2": tau_com2,
        "decorrelation_criterion": (
            "rotation-invariant (|R_ee|^2, Rg^2, |centre|^2, LEF coverage); frames randomly rotated"
            if rotate
            else "end-to-end vector, Rg^2, LEF coverage"
        ),
        "decorrelation_time_rg": tau_rg,
        "decorrelation_time_lef": tau_lef,
        "burn_in_steps": int(burn_in),
        "sampling_interval_steps": int(interval),
        "total_steps": int(batch.n_steps),
        "integrator": (
            f"preconditioned overdamped Langevin ({params['integrator']}"
            f"{', Metropolis' if params['metropolis'] else ''}); mobility "
            + ("K^-1 per chain (bonds, LEF bonds, eps I)" if lef is not None else "Rouse modes, floor")
        ),
        "elapsed_s": round(elapsed, 3),
        "sampling_s": round(time.perf_counter() - t_sample, 3),
        "conformations_per_s": round(n / max(elapsed, 1e-9), 1),
        "unit_note": "nm = nm_per_bead x monomer bond length; coordinates centred per trace",
        **lef_info,
    }
    return Traces(xyz, unit="nm", meta=meta, loci=geo["loci"], attrs=attrs)


def simulate_mixture(proportions: dict[str, float], n: int = 1000, seed: int = 0, **kw) -> Traces:
    """Simulate several conditions in given proportions into one :class:`Traces`.

    Parameters
    ----------
    proportions
        ``{preset: weight}``, e.g. ``{"wt": 0.5, "no-cohesin": 0.5}``; weights are normalised and
        counts rounded by largest remainder so they sum to ``n``.
    n, seed, **kw
        As for :func:`simulate`; condition ``k`` (in the given order) uses seed ``seed * 1000 + k``.
    """
    if not proportions:
        raise PointaeError("empty mixture")
    names = list(proportions)
    w = np.array([float(proportions[k]) for k in names])
    if (w < 0).any() or w.sum() <= 0:
        raise PointaeError("mixture weights must be non-negative with a positive sum")
    exact = w / w.sum() * n
    counts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    parts = []
    for k, (name, c) in enumerate(zip(names, counts)):
        if c > 0:
            parts.append(simulate(name, n=int(c), seed=int(seed) * 1000 + k, **kw))
    out = Traces.concat(parts)
    out.attrs = {
        "source": "pointae.sim.simulate_mixture",
        "pointae_version": parts[0].attrs["pointae_version"],
        "mixture": {name: float(x) for name, x in zip(names, w / w.sum())},
        "counts": {name: int(c) for name, c in zip(names, counts)},
        "seed": int(seed),
        "conditions": {p.attrs["preset"]: p.attrs for p in parts},
    }
    return out
