"""Benchmark of the simulator: independent conformations per second, with the parameters used.

Run: ``python benchmarks/bench_sim.py [--n 512] [--threads 2] [--presets ideal,swollen,wt]
[--openmm-python /work/venv-openmm/bin/python]``

For each preset it prints the chain length, the measured decorrelation time (steps until the
autocorrelation of the end-to-end vector / Rg / LEF loop coverage falls below 1/e), the burn-in and
sampling interval derived from it, chain-steps/s, independent conformations/s and the fraction of the
arithmetic limit (pair-force FLOPs per step over the machine's measured float32 matmul rate).

The OpenMM side (``benchmarks/openmm_chains.py``: the ``swollen`` 64-mer physics, many chains in
one System, CPU platform, polychrom's integration settings) runs when ``import openmm`` works in
this interpreter or in the one given by ``--openmm-python`` (openmm needs neither torch nor
pointae, so a small separate environment works); its independent conformations/s, measured with
the same decorrelation criterion, is the denominator of the ratio. Otherwise the reference figure
measured on this machine with OpenMM 8.6 (about 33 independent conformations/s) is quoted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from _machine import machine_info  # benchmarks/ is on sys.path

OPENMM_REFERENCE = 33.0  # independent conformations/s, OpenMM 8.6 best packing, 64-mers, 2 cores


def matmul_flops(threads: int, n: int = 512, reps: int = 20, trials: int = 5) -> float:
    """Measured float32 matmul rate (FLOP/s): the best of ``trials`` timings of ``reps`` products."""
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(trials):
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 * reps / best


def run(preset: str, n: int, n_loci: int, **kw) -> dict:
    from pointae.sim import simulate
    from pointae.sim.polymer import pair_force_flops

    t0 = time.perf_counter()
    tr = simulate(preset, n=n, n_loci=n_loci, seed=0, **kw)
    dt = time.perf_counter() - t0
    a = tr.attrs
    chain_steps = a["n_chains"] * a["total_steps"]
    p = a["params"]
    ev = (p["ev_strength"] or 0) > 0
    flops = pair_force_flops(a["n_monomers"], ev=ev, attract=bool(p["blocks"])) if ev or p["blocks"] else 0
    return dict(
        preset=preset,
        monomers=a["n_monomers"],
        chains=a["n_chains"],
        tau=a["decorrelation_time_steps"],
        burn=a["burn_in_steps"],
        interval=a["sampling_interval_steps"],
        steps=a["total_steps"],
        seconds=dt,
        chain_steps_s=chain_steps / dt,
        conf_s=n / dt,
        # steady state: one independent conformation per chain every `interval` steps
        conf_s_steady=chain_steps / dt / a["sampling_interval_steps"],
        pair_flops_s=flops * chain_steps / dt,
        dt=p["dt"],
        lambda_c=p["lambda_c"],
        integrator=p.get("integrator", "euler"),
        ree2=float(((tr.coords[:, -1] - tr.coords[:, 0]) ** 2).sum(-1).mean()) / p["nm_per_bead"] ** 2,
    )


def pair_kernel_flops(m: int, chains: int = 128, reps: int = 30) -> float:
    """FLOP/s of the soft-core pair forces alone (``ChainBatch._pair``, ``pair_force_flops`` count)."""
    from pointae.sim.polymer import ChainBatch, ForceField, pair_force_flops

    b = ChainBatch(ForceField(m, ev_strength=3.0), chains, generator=torch.Generator().manual_seed(0))
    b.init_ideal()
    x = b.positions().contiguous()
    b._pair(x, False)
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            b._pair(x, False)
        best = min(best, (time.perf_counter() - t) / reps)
    return pair_force_flops(m) * chains / best


def openmm_python(arg: str | None) -> str | None:
    """An interpreter that can import openmm: ``arg``, else this one, else None."""
    for exe in ([arg] if arg else []) + [sys.executable]:
        r = subprocess.run([exe, "-c", "import openmm"], capture_output=True)
        if r.returncode == 0:
            return exe
    return None


def run_openmm(exe: str, threads: int, chains: int, steps: int) -> dict:
    """The OpenMM side-by-side run (``openmm_chains.py``), as a dict."""
    script = Path(__file__).with_name("openmm_chains.py")
    cmd = [exe, str(script), "--threads", str(threads), "--chains", str(chains), "--steps", str(steps)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--presets", default="ideal,swollen,no-cohesin,wt")
    ap.add_argument("--openmm-python", default=None, help="interpreter with openmm (default: this one)")
    ap.add_argument("--openmm-chains", type=int, default=100)
    ap.add_argument("--openmm-steps", type=int, default=20000)
    ap.add_argument("--set", action="append", default=[], help="simulate() override key=value, repeatable")
    args = ap.parse_args()
    from pointae.sim.presets import parse_value

    overrides = {k: parse_value(v) for k, v in (kv.split("=", 1) for kv in args.set)}
    exe = openmm_python(args.openmm_python)
    omm = None
    if exe is not None:
        print(f"OpenMM side-by-side ({exe}): {args.openmm_chains} chains x 64 monomers in one System ...")
        omm = run_openmm(exe, args.threads, args.openmm_chains, args.openmm_steps)
        print("openmm:", json.dumps(omm))
    from pointae.sim.presets import DEFAULTS

    invariant = bool(overrides.get("rotate", DEFAULTS["rotate"]))
    key = "conf_per_s_invariant" if invariant else "conf_per_s"
    ref = omm[key] if omm and omm.get(key) else OPENMM_REFERENCE
    print(
        "decorrelation criterion: "
        + ("rotation-invariant (frames randomly rotated)" if invariant else "end-to-end vector")
        + f"; 'x OpenMM' divides by {ref} conformations/s"
    )
    torch.set_num_threads(args.threads)
    peak = matmul_flops(args.threads)
    print(machine_info(args.threads))
    print(f"measured float32 matmul: {peak / 1e9:.1f} GFLOP/s")
    for m in (64, 80):
        k = pair_kernel_flops(m)
        print(f"pair-force kernel alone, M={m}, 128 chains: {k / 1e9:.1f} GFLOP/s ({100 * k / peak:.0f}%)")
    hdr = (
        f"{'preset':>11} {'M':>4} {'C':>4} {'dt':>5} {'lam_c':>5} {'tau':>7} {'burn':>6} {'intvl':>6} "
        f"{'time s':>7} {'chain-steps/s':>13} {'conf/s':>7} {'steady conf/s':>13} {'x OpenMM':>8} "
        f"{'% peak':>6} {'Ree^2 b^2':>9}"
    )
    print(f"integrator: {overrides.get('integrator', 'default (lm)')}; overrides: {overrides or 'none'}")
    print(hdr)
    for preset in args.presets.split(","):
        n_loci = 64
        kw = {}
        if preset in ("ideal", "swollen", "globule"):
            kw = dict(monomers_per_locus=1, extension_loci=0)  # 64-monomer chains
        r = run(preset, args.n, n_loci, **kw, **overrides)
        tau = "-" if r["tau"] is None else f"{r['tau']:.1f}"
        print(
            f"{r['preset']:>11} {r['monomers']:>4} {r['chains']:>4} {r['dt']:>5} {r['lambda_c']:>5} {tau:>7} "
            f"{r['burn']:>6} {r['interval']:>6} {r['seconds']:>7.1f} {r['chain_steps_s']:>13,.0f} "
            f"{r['conf_s']:>7.1f} {r['conf_s_steady']:>13.1f} {r['conf_s_steady'] / ref:>8.2f} "
            f"{100 * r['pair_flops_s'] / peak:>6.2f} {r['ree2']:>9.1f}",
            flush=True,
        )
    if omm is None:
        print(
            f"openmm not available: skipped; reference (OpenMM 8.6, this machine, best packing): "
            f"{OPENMM_REFERENCE:.0f} independent conformations/s"
        )
    else:
        print(
            f"OpenMM {omm['openmm']} CPU, {omm['threads']} thread(s), {omm['chains']} chains: "
            f"{omm['chain_steps_per_s']:,.0f} chain-steps/s; end-to-end vector criterion: tau "
            f"{omm['tau_steps'] or 0:.0f} steps, {omm['conf_per_s']} conformations/s; rotation-invariant: "
            f"tau {omm['tau_invariant_steps'] or 0:.0f} steps, {omm['conf_per_s_invariant']} conf/s; "
            f"<R_ee^2> {omm['mean_ree2']} b^2"
        )
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
