"""``pointae demo``: the main job. Simulate a labelled mixture, compare map/graph/voxel, report.

The default ("small") size is chosen to finish in about 10 minutes on a 2-core laptop CPU; "large"
is meant for a GPU. The simulated traces are cached in ``out/data.h5`` and reused when the demo is
run again with the same settings (delete it to resimulate).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pointae.errors import PointaeError

__all__ = ["demo", "demo_labels", "DemoSize", "SIZES", "MIXTURE", "BARRIER_CONDITIONS"]

#: three conditions with different loop-extrusion states: loops anchored at CTCF (wt), no loops
#: (no-cohesin), loops without barriers (no-ctcf); ``loop_state`` labels each structure.
MIXTURE = {"wt": 1 / 3, "no-cohesin": 1 / 3, "no-ctcf": 1 / 3}

#: the conditions whose structures have barriers for LEFs to bridge: the scope of ``loop_state_wt``
BARRIER_CONDITIONS = ("wt",)


#: the autoencoders train with the contact-sensitive log-distance loss (docs/analysis.md: on the
#: demo mixture it lifts the map latents' loop_state_wt kNN accuracy from 0.28-0.30 to 0.35-0.40,
#: at about the same distance MAE); denoise/inpaint keep MSE, their scores are distance errors
AUTOENCODE_LOSS = (("autoencode", ("task.loss=log_mse",)),)


@dataclass(frozen=True)
class DemoSize:
    """Dataset and training budget of one demo size."""

    n_traces: int
    n_loci: int
    max_epochs: int
    batch_size: int
    latent_dim: int = 16
    tasks: tuple[str, ...] = ("autoencode", "denoise", "inpaint")
    overrides: tuple[str, ...] = field(default_factory=tuple)
    sim: tuple[tuple[str, object], ...] = ()  # simulator parameter overrides (pointae.sim DEFAULTS keys)
    #: extra overrides of one task's runs; the user's ``overrides`` still win (applied after them)
    task_overrides: tuple[tuple[str, tuple[str, ...]], ...] = AUTOENCODE_LOSS
    #: regimes compared (see :data:`pointae.analysis.compare.REGIMES`) and the representations run
    #: in the skip regime (None = all)
    regimes: tuple[str, ...] = ("bottleneck", "skip")
    skip_reprs: tuple[str, ...] | None = None


SIZES: dict[str, DemoSize] = {
    # CPU: 150 traces per condition, each from its own independent chain (chains = traces per
    # condition, so no within-chain sampling interval), automatic burn-in (the simulator's default:
    # burn_factor x the measured decorrelation time)
    "small": DemoSize(
        n_traces=1200,
        n_loci=32,
        max_epochs=20,
        batch_size=32,
        overrides=("train.patience=6", "train.warmup_steps=20"),
        sim=(("chains", 400),),
        # every representation in the bottleneck regime (where they differ); the skip regime with
        # the map task models only (on this mixture the three skip inpainters tie, 63.7 nm, and the
        # map U-Net is the best denoiser): 11 trainings instead of 15 keep the demo near 6 minutes
        skip_reprs=("map",),
    ),
    "large": DemoSize(n_traces=20_000, n_loci=64, max_epochs=40, batch_size=128),
}


def _simulate(path: Path, size: DemoSize, seed: int, device: str | None, say) -> Any:
    from pointae.data.io import read_traces
    from pointae.sim import simulate_mixture

    want = {
        "n": size.n_traces,
        "n_loci": size.n_loci,
        "seed": seed,
        "mixture": sorted(MIXTURE),
        "sim": {k: v for k, v in size.sim},
    }
    if path.is_file():
        t = read_traces(path)
        demo_attrs = t.attrs.get("demo", {})
        if demo_attrs == want:
            say(f"reusing simulated traces {path}")
            return t
    say(f"simulating {size.n_traces} traces x {size.n_loci} loci ({', '.join(MIXTURE)}) -> {path}")
    kw = dict(size.sim)
    if device in ("cuda", "gpu"):
        kw["device"] = "cuda"
    t0 = time.perf_counter()
    t = simulate_mixture(MIXTURE, n=size.n_traces, n_loci=size.n_loci, seed=seed, **kw)
    bad = float(1.0 - t.mask.mean()) if len(t) else 1.0
    if bad > 0.5:
        raise PointaeError(
            f"the simulator returned {bad:.0%} missing coordinates (numerical blow-up?); "
            "not training on it. Try --seed, or check 'pointae simulate' on its own"
        )
    t.attrs["demo"] = want
    t.save(path)
    say(f"simulated in {time.perf_counter() - t0:.0f} s")
    return t


def demo_labels(traces) -> list[str]:
    """Label columns the demo scores, adding ``loop_state_wt`` to ``traces.meta`` in place.

    ``loop_state`` (which barrier pairs a LEF bridges, see :func:`pointae.sim.simulate`) is
    ``"none"`` for every structure of a condition without LEFs or barriers, so on the mixture it
    mostly repeats the condition. ``loop_state_wt`` is the same state for the structures of the
    conditions with barriers (:data:`BARRIER_CONDITIONS`) only, missing elsewhere: the harder,
    within-condition question of which loops a structure carries.
    """
    meta = traces.meta
    cols = [c for c in ("condition", "loop_state") if c in meta.columns]
    if {"condition", "loop_state"} <= set(meta.columns):
        scope = meta["condition"].astype(str).isin(BARRIER_CONDITIONS).to_numpy()
        if scope.any() and meta.loc[scope, "loop_state"].nunique() > 1:
            meta["loop_state_wt"] = meta["loop_state"].where(scope, None)
            cols.append("loop_state_wt")
    return cols


def demo(
    out: str | os.PathLike = "runs/demo",
    size: str = "small",
    device: str | None = None,
    seed: int = 0,
    reprs: tuple[str, ...] = ("map", "graph", "voxel"),
    tasks: tuple[str, ...] | None = None,
    overrides: tuple[str, ...] = (),
    threads: int | None = None,
    log: Callable[[str], None] | None = None,
):
    """Run the demo: simulate, train one model per representation x task, write the report.

    Parameters
    ----------
    out
        Output folder (``data.h5``, ``runs/``, ``report.html``, ``report.md``, ``metrics.json``).
    size
        ``"small"`` (CPU, ~10 min) or ``"large"`` (GPU); see :data:`SIZES`.
    device
        ``train.accelerator`` (``cpu``, ``gpu``, ``auto``); the simulation uses CUDA for ``gpu``/``cuda``.
    seed
        Simulation seed.
    tasks
        Override the size's task list.
    overrides
        Extra ``section.key=value`` config overrides for every run.
    threads
        CPU threads for the simulation and every training run (``train.threads``); default: all
        cores. On a machine shared with other jobs, 1 avoids thread oversubscription.

    Returns
    -------
    pointae.analysis.compare.CompareResult
    """
    from pointae.analysis.compare import compare

    if size not in SIZES:
        raise PointaeError(f"unknown demo size {size!r}; expected one of {', '.join(SIZES)}")
    if threads is not None and threads < 1:
        raise PointaeError(f"threads must be >= 1, got {threads}")
    say = log or (lambda msg: None)
    spec = SIZES[size]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if threads is None:
        traces = _simulate(out / "data.h5", spec, seed, device, say)
    else:
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(int(threads))
        try:
            traces = _simulate(out / "data.h5", spec, seed, device, say)
        finally:
            torch.set_num_threads(before)
    ov = [
        f"train.max_epochs={spec.max_epochs}",
        f"train.batch_size={spec.batch_size}",
        "train.progress=false",
        *spec.overrides,
        *([f"train.threads={int(threads)}"] if threads is not None else []),
        *overrides,
    ]
    run_tasks = tuple(tasks or spec.tasks)
    per_task = {t: [*ov, *overrides] for t, ov in spec.task_overrides if t in run_tasks}
    res = compare(
        traces,
        reprs=reprs,
        tasks=run_tasks,
        task_overrides=per_task,
        out=out,
        runs=out / "runs",
        overrides=ov,
        latent_dim=spec.latent_dim,
        labels=demo_labels(traces) or None,
        device=device,
        regimes=spec.regimes,
        skip_reprs=spec.skip_reprs,
        log=say,
    )
    from pointae.analysis.report import write_metrics

    res.metrics["demo"] = {
        "size": size,
        "seed": int(seed),
        "threads": None if threads is None else int(threads),
        "wall_seconds": round(time.perf_counter() - t0, 1),
    }
    # compare() wrote metrics.json before the demo block existed: rewrite it (atomically) with it
    write_metrics(res.paths["json"], res.metrics)
    return res
