"""Training an imputer on several sources at once (real files of different labs + simulation).

A *source* is a set of traces with one length unit (its median neighbour distance) and one number
of loci. The :class:`~pointae.impute.model.Imputer` is fully convolutional and takes the length
unit per batch, so sources with different locus counts and scales train together: every step
draws one batch from one source (random crop of ``FitConfig.crop`` loci, random hiding), and an
epoch visits every training trace of every source once (each source's traces in batches of its
own, batch order shuffled across sources).

Simulated sources are matched to one real file (:func:`simulated_source`): conformations of
:func:`pointae.sim.simulate` with that file's number of loci, isotropic localisation noise whose
size matches the ratio of RMS displacements at chain separations 8 and 1 of the file's observed
spots, and the file's own per-locus detection rates (each locus dropped independently with its
rate), so the simulation sees the same missingness pattern as the file.

Validation (epoch selection) uses the protocol on held-out traces of the *real* training sources
(geometric mean of their ratios to linear interpolation), with each file's own eligibility
threshold (:func:`pointae.impute.protocol.auto_max_missing`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from pointae.data.traces import Traces
from pointae.data.traces import median_neighbour_distance as _median_neighbour_distance
from pointae.errors import PointaeError
from pointae.impute.fit import EpochKeeper, FitConfig, predict, training_step
from pointae.impute.model import Imputer, ImputerConfig
from pointae.impute.protocol import auto_max_missing, make_held_out, score
from pointae.sim.noise import matching_noise


@dataclass
class Source:
    """One training source.

    Attributes
    ----------
    name
        Label (in logs and the run's metadata).
    coords
        ``(N, L, 3)`` float32 training traces, NaN = missing.
    scale
        Length unit (median neighbour distance of the source's observed spots).
    val
        ``(M, L, 3)`` validation traces (scored every epoch) or ``None`` (simulated sources).
    info
        Provenance (file, noise, detection rates, ...).
    """

    name: str
    coords: np.ndarray
    scale: float
    val: np.ndarray | None = None
    info: dict | None = None


def median_neighbour_distance(coords: np.ndarray) -> float:
    """:func:`pointae.data.traces.median_neighbour_distance`, refusing data without a length unit."""
    d = _median_neighbour_distance(coords)
    if not math.isfinite(d):
        raise PointaeError("no two consecutive loci are observed: cannot calibrate a length unit")
    return d


def real_source(
    name: str, traces: Traces, train: np.ndarray, val_fraction: float = 0.1, seed: int = 0
) -> Source:
    """A real file's training traces ``traces[train]`` with a validation part split off (by trace)."""
    coords = traces.coords[np.asarray(train)]
    perm = np.random.default_rng(seed).permutation(len(coords))
    n_val = int(round(val_fraction * len(coords)))
    val, tr = coords[perm[:n_val]], coords[perm[n_val:]]
    info = {"file": str(traces.attrs.get("source", name)), "n_train": len(tr), "n_val": len(val)}
    return Source(name, tr, median_neighbour_distance(tr), val if n_val else None, info)


def simulated_source(
    like: Traces,
    n: int = 1000,
    seed: int = 0,
    preset: str = "wt",
    name: str | None = None,
    noise_range: tuple[float, float] = (1.0, 1.0),
    extra_missing: tuple[float, float] = (0.0, 0.0),
) -> Source:
    """Simulated traces matched to ``like`` in loci, localisation noise and per-locus detection.

    Only ``like``'s observed spots are used (two RMS displacements and the fraction of traces
    observing each locus); pass the training traces of a file, never its test traces.

    ``noise_range = (lo, hi)`` widens the simulation beyond the one file: each trace's noise sd is
    the matched sd times a factor drawn log-uniformly in ``[lo, hi]`` (``(1, 1)``: the matched sd
    for all). ``extra_missing = (lo, hi)``: each trace additionally loses each remaining spot with
    a probability drawn uniformly in ``[lo, hi]`` (on top of the file's per-locus detection).
    """
    from pointae.sim import simulate

    lo, hi = (float(v) for v in noise_range)
    m_lo, m_hi = (float(v) for v in extra_missing)
    if not 0 < lo <= hi:
        raise PointaeError(f"noise_range must satisfy 0 < lo <= hi, got {noise_range}")
    if not 0 <= m_lo <= m_hi < 1:
        raise PointaeError(f"extra_missing must satisfy 0 <= lo <= hi < 1, got {extra_missing}")
    sim = simulate(preset, n=n, n_loci=like.n_loci, seed=seed).coords.astype(np.float64)
    sigma = matching_noise(sim, like.coords)
    rng = np.random.default_rng(seed + 7919)
    noise = rng.normal(0.0, sigma, sim.shape)
    if hi > lo:  # per-trace factor, log-uniform in [lo, hi]
        noise *= np.exp(rng.uniform(np.log(lo), np.log(hi), (n, 1, 1)))
    noisy = (sim + noise).astype(np.float32)
    detection = like.mask.mean(0)  # (L,)
    drop = rng.random(noisy.shape[:2]) > detection[None, :]
    if m_hi > 0:
        drop |= rng.random(noisy.shape[:2]) < rng.uniform(m_lo, m_hi, (n, 1))
    noisy[drop] = np.nan
    info = {
        "like": str(like.attrs.get("source", "")),
        "preset": preset,
        "n": n,
        "noise_sd": sigma,
        "missing": float(drop.mean()),
    }
    if hi > lo:
        info["noise_range"] = [lo, hi]
    if m_hi > 0:
        info["extra_missing"] = [m_lo, m_hi]
    return Source(name or f"sim_like_{like.n_loci}", noisy, median_neighbour_distance(noisy), None, info)


def validation_ratio(model: Imputer, val: np.ndarray, scale: float, seed: int = 1000) -> float:
    """Protocol MAE ratio to linear on ``val`` (random 10% hidden, the file's own eligibility)."""
    from pointae.baselines import interpolate_missing

    mm = auto_max_missing(~np.isnan(val[..., 0]))
    held = make_held_out(val, 0.1, seed=seed, mode="random", max_missing=mm)
    pred = predict(model, held.coords, scale)
    mae = score(held, pred["coords"]).summary()["mae"]
    return mae / score(held, interpolate_missing(held.coords)).summary()["mae"]


def fit_sources(
    sources: list[Source],
    config: FitConfig | None = None,
    model_config: ImputerConfig | None = None,
    log: Callable[[str], None] | None = print,
    model: Imputer | None = None,
) -> tuple[Imputer, list[dict]]:
    """Train one imputer on several sources (see the module docstring).

    Parameters
    ----------
    sources
        Training sources; those with ``val`` traces choose the epoch (geometric mean of their
        validation ratios); without any, the training loss does.
    config, model_config
        Training settings (``crop``, ``batch_size``, ``lr``, ``epochs``, ``max_minutes``, ``seed``,
        hiding range, ``map_weight``) and architecture.
    log
        Progress printer (``None`` for silence).
    model
        Start from this model instead of a fresh one.

    Returns
    -------
    (model, history)
        The best model (by validation) in eval mode and one dict per epoch.
    """
    cfg = config or FitConfig()
    if not sources:
        raise PointaeError("fit_sources needs at least one source")
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    data = []
    for s in sources:
        c = np.asarray(s.coords, np.float32)
        data.append(c[(~np.isnan(c[..., 0])).sum(1) >= 4])
    model = model if model is not None else Imputer(model_config or ImputerConfig())
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = sum(max(1, math.ceil(len(c) / cfg.batch_size)) for c in data)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=steps_per_epoch * cfg.epochs, pct_start=0.1
    )
    keeper = EpochKeeper(model, cfg.max_minutes, log)
    for epoch in range(cfg.epochs):
        model.train()
        batches = []
        for k, c in enumerate(data):
            perm = rng.permutation(len(c))
            batches += [(k, perm[s : s + cfg.batch_size]) for s in range(0, len(perm), cfg.batch_size)]
        order = rng.permutation(len(batches))
        losses = {s.name: [] for s in sources}
        for b in order:
            k, rows = batches[b]
            loss = training_step(model, opt, sched, data[k][rows], sources[k].scale, rng, cfg)
            if loss is None:
                sched.step()  # keep the schedule on its planned length
            else:
                losses[sources[k].name].append(loss)
        row: dict = {"epoch": epoch + 1, "minutes": keeper.minutes()}
        row.update({f"loss_{n}": float(np.mean(v)) for n, v in losses.items() if v})
        ratios = [
            validation_ratio(model, s.val, s.scale) for s in sources if s.val is not None and len(s.val)
        ]
        for s, r in zip([s for s in sources if s.val is not None and len(s.val)], ratios, strict=True):
            row[f"val_ratio_{s.name}"] = r
        if ratios:
            row["val_ratio"] = float(np.exp(np.mean(np.log(ratios))))
            key = row["val_ratio"]
        else:
            key = float(np.mean([v for n, v in row.items() if n.startswith("loss_")]))
        if keeper.end_epoch(model, row, key):
            break
    return keeper.restore(model)
