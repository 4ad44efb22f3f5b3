"""Reconstruction from damaged distance maps: classical MDS vs masked SMACOF vs shortest paths.

The maps of a trace file lose a further fraction of their known pairs (symmetric, seeded) and the
rest get multiplicative log-normal noise; each method rebuilds 3D coordinates from what is left
and is scored against the true coordinates (RMSD after the best superposition, mirror allowed)
and on the hidden pairs' distances. The baseline for the hidden pairs is the shortest-path fill
that classical MDS relies on. Research code: not part of the package (docs/structure.md)::

    python benchmarks/bench_recon.py --data ../shared/data/IMR90_chr21-18-20Mb.csv --hide 0.3
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from _machine import machine_info

from pointae.recon import _pdist, align, complete_map, reconstruct, rmsd


def benchmark_reconstruction(
    traces,
    hide: float = 0.3,
    noise: float = 0.0,
    n_traces: int | None = 300,
    seed: int = 0,
    methods: tuple[str, ...] = ("mds", "smacof"),
) -> dict:
    """Rebuild traces from damaged maps and score each method against the truth.

    The maps of ``traces`` (NaN rows for missing loci) lose a further fraction ``hide`` of their
    known pairs (symmetric, seeded) and the rest get multiplicative log-normal ``noise``
    (sigma). Each method rebuilds 3D coordinates from what is left.

    Returns
    -------
    dict
        Per method: ``median_rmsd`` (to the true coordinates after the best superposition, mirror
        allowed; data unit), ``mae_hidden`` (mean abs error of the rebuilt distances on the
        hidden pairs), ``mae_known`` (on the kept pairs, against the clean truth), ``seconds``;
        plus ``shortest_path_mae_hidden``: the error of filling hidden pairs by shortest paths
        (what MDS uses), and the settings.
    """
    rng = np.random.default_rng(seed)
    if n_traces is not None and n_traces < len(traces):
        traces = traces[np.sort(rng.choice(len(traces), n_traces, replace=False))]
    truth = traces.coords.astype(np.float64)
    d = traces.distance_maps().astype(np.float64)
    known = np.isfinite(d)
    iu = np.triu(rng.random(d.shape) < hide, 1)
    hidden = (iu | np.swapaxes(iu, 1, 2)) & known
    noisy = d.copy()
    if noise > 0:
        f = np.triu(rng.lognormal(0.0, noise, d.shape), 1)
        noisy = noisy * (f + np.swapaxes(f, 1, 2) + np.eye(d.shape[1]))
    noisy[hidden] = np.nan
    kept = known & ~hidden
    np.einsum("nii->ni", kept)[:] = False
    out: dict = {"n_traces": len(traces), "hide": hide, "noise": noise, "seed": seed, "unit": traces.unit}
    sp = complete_map(noisy)
    out["shortest_path_mae_hidden"] = float(np.nanmean(np.abs(sp - d)[hidden]))
    for m in methods:
        t0 = time.perf_counter()
        x = reconstruct(noisy, method=m).coords
        sec = time.perf_counter() - t0
        x = align(x, truth, allow_reflection=True)
        dx = _pdist(np.nan_to_num(x))
        out[m] = {
            "median_rmsd": float(np.nanmedian(rmsd(x, truth))),
            "mae_hidden": float(np.mean(np.abs(dx - d)[hidden])),
            "mae_known": float(np.mean(np.abs(dx - d)[kept])),
            "seconds": round(sec, 2),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="trace file (any format pointae reads)")
    ap.add_argument("--hide", type=float, default=0.3, help="fraction of known pairs hidden")
    ap.add_argument("--noise", type=float, default=0.0, help="log-normal sigma on the kept pairs")
    ap.add_argument("--n", type=int, default=300, help="traces drawn (seeded)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from pointae import read_traces

    print(machine_info())
    rep = benchmark_reconstruction(read_traces(args.data), args.hide, args.noise, args.n, args.seed)
    print(json.dumps(rep, indent=2))


if __name__ == "__main__":
    main()
