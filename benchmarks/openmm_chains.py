"""OpenMM side of the simulator benchmark: the `swollen` physics, many chains packed in one System.

Run: ``python benchmarks/openmm_chains.py [--chains 100] [--monomers 64] [--steps 20000] [--threads 2]``
with any Python that has ``openmm`` and ``numpy`` (torch and pointae are not needed, so a small
separate virtual environment works; ``benchmarks/bench_sim.py --openmm-python PATH`` calls it).

Physics, in units of b = 1 nm and kT at 300 K (the same as pointae's ``swollen`` preset):
Gaussian bonds ``U = 3/2 kT r^2`` (zero rest length), the soft core ``U = 3 kT (1 - r^2 / 1.05^2)^2``
for ``r < 1.05`` between all non-bonded pairs of the same chain (chains never interact: a ``delta``
on a per-particle chain id), free space. Integration as polychrom runs loop extrusion: Langevin
(``LangevinMiddleIntegrator``), mass 100 amu, 80 fs steps, friction 0.01/ps by default, CPU platform.

It prints one JSON line: chain-steps/s, the decorrelation time (steps until the autocorrelation of
the end-to-end vector and of Rg^2 falls below 1/e, the larger; measured after a burn-in of a quarter
of the run, as pointae measures its own), the interval (3 tau, pointae's default) and independent
conformations/s = chain-steps/s / interval; and the same with the rotation-invariant criterion
(``|R_ee|^2`` instead of the vector: frames randomly rotated, as pointae does by default).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
from _machine import machine_info  # benchmarks/ is on sys.path


def acf_time(series: np.ndarray, vector: bool) -> float | None:
    """Lag (in samples) where the chain-averaged autocorrelation falls below 1/e."""
    x = np.asarray(series, dtype=np.float64)
    if not vector:
        x = (x - x.mean())[..., None]
    t = x.shape[0]
    var = (x * x).sum(-1).mean()
    prev = 1.0
    for lag in range(1, t // 2):
        a = (x[: t - lag] * x[lag:]).sum(-1).mean() / var
        if a < np.exp(-1.0):
            return lag - 1 + (prev - np.exp(-1.0)) / (prev - a)
        prev = a
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chains", type=int, default=100)
    ap.add_argument("--monomers", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--every", type=int, default=20, help="steps between recorded frames")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--friction", type=float, default=0.01, help="collision rate, 1/ps")
    ap.add_argument("--dt-fs", type=float, default=80.0)
    ap.add_argument("--ev", type=float, default=3.0, help="soft-core height, kT (0: ideal chain)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(machine_info(args.threads), flush=True)

    import openmm as mm
    from openmm import unit as u

    c, m = args.chains, args.monomers
    kt = (u.MOLAR_GAS_CONSTANT_R * 300 * u.kelvin).value_in_unit(u.kilojoule_per_mole)
    system = mm.System()
    for _ in range(c * m):
        system.addParticle(100.0)
    bonds = mm.HarmonicBondForce()  # U = k/2 (r - 0)^2, k = 3 kT / b^2
    ev = mm.CustomNonbondedForce("e*delta(c1-c2)*(1-(r/s)^2)^2")
    ev.addGlobalParameter("e", args.ev * kt)
    ev.addGlobalParameter("s", 1.05)
    ev.addPerParticleParameter("c")
    ev.setNonbondedMethod(mm.CustomNonbondedForce.CutoffNonPeriodic)
    ev.setCutoffDistance(1.05)
    rng = np.random.default_rng(args.seed)
    pos = []
    side = int(np.ceil(c ** (1 / 3)))
    for k in range(c):
        for _ in range(m):
            ev.addParticle([float(k)])
        for i in range(m - 1):
            bonds.addBond(k * m + i, k * m + i + 1, 0.0, 3.0 * kt)
            ev.addExclusion(k * m + i, k * m + i + 1)
        steps = rng.normal(size=(m, 3)) / np.sqrt(3.0)
        origin = 40.0 * np.array([k % side, (k // side) % side, k // side**2])
        pos.append(origin + np.cumsum(steps, 0))
    system.addForce(bonds)
    if args.ev > 0:
        system.addForce(ev)
    integ = mm.LangevinMiddleIntegrator(
        300 * u.kelvin, args.friction / u.picosecond, args.dt_fs * u.femtosecond
    )
    integ.setRandomNumberSeed(args.seed + 1)
    platform = mm.Platform.getPlatformByName("CPU")
    ctx = mm.Context(system, integ, platform, {"Threads": str(args.threads)})
    ctx.setPositions(np.concatenate(pos) * u.nanometer)
    ctx.setVelocitiesToTemperature(300 * u.kelvin, args.seed + 2)
    integ.step(100)
    ree, rg2 = [], []
    t0 = time.perf_counter()
    for _ in range(args.steps // args.every):
        integ.step(args.every)
        x = ctx.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(u.nanometer)
        x = np.asarray(x).reshape(c, m, 3)
        ree.append(x[:, -1] - x[:, 0])
        rg2.append(((x - x.mean(1, keepdims=True)) ** 2).sum(-1).mean(-1))
    wall = time.perf_counter() - t0
    burn = len(ree) // 4
    tau_ree = acf_time(np.stack(ree[burn:]), vector=True)
    tau_ree2 = acf_time((np.stack(ree[burn:]) ** 2).sum(-1), vector=False)
    tau_rg = acf_time(np.stack(rg2[burn:]), vector=False)
    taus = [t for t in (tau_ree, tau_rg) if t is not None]
    tau = None if len(taus) < 2 else max(taus) * args.every
    # rotation-invariant criterion (frames randomly rotated, as pointae does by default)
    inv = [t for t in (tau_ree2, tau_rg) if t is not None]
    tau_inv = None if len(inv) < 2 else max(inv) * args.every
    rate = c * args.steps / wall
    out = {
        "openmm": mm.__version__,
        "platform": "CPU",
        "threads": args.threads,
        "chains": c,
        "monomers": m,
        "steps": args.steps,
        "friction_per_ps": args.friction,
        "dt_fs": args.dt_fs,
        "chain_steps_per_s": round(rate, 1),
        "tau_ree_steps": None if tau_ree is None else round(tau_ree * args.every, 1),
        "tau_rg_steps": None if tau_rg is None else round(tau_rg * args.every, 1),
        "tau_steps": tau,
        "interval_steps": None if tau is None else int(np.ceil(3 * tau)),
        "conf_per_s": None if tau is None else round(rate / np.ceil(3 * tau), 2),
        "tau_ree2_steps": None if tau_ree2 is None else round(tau_ree2 * args.every, 1),
        "tau_invariant_steps": tau_inv,
        "conf_per_s_invariant": None if tau_inv is None else round(rate / np.ceil(3 * tau_inv), 2),
        "mean_ree2": round(float((np.stack(ree[burn:]) ** 2).sum(-1).mean()), 2),
        "wall_s": round(wall, 1),
        "load": os.getloadavg(),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
