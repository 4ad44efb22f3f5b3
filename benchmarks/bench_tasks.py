"""Denoise and inpaint vs their baselines, for every encoder, on a held-out split.

Usage::

    python benchmarks/bench_tasks.py --data sim.h5 --out runs/bench [--epochs 20] [--width 16]
        [--reprs map graph voxel] [--tasks denoise inpaint] [--set key=value ...]

Without ``--data`` the default simulated mixture (``pointae.sim.simulate_mixture``, wt +
no-cohesin) of ``--n`` traces is simulated once and saved as ``<out>/data.h5``. Every run uses
the same data, split (``data.split_seed``), task corruption seeds and test set; each writes a
normal run directory ``<out>/<repr>-<task>``. The table compares, on the test split's
corrupted/hidden pairs, the model's MAE with the identity and the task baseline (neighbour rule
+ interpolation for denoise; linear interpolation along the chain for inpaint), and is saved
as ``<out>/summary.md`` and ``<out>/summary.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from _machine import machine_info  # benchmarks/ is on sys.path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--n", type=int, default=2000, help="traces to simulate when --data is not given")
    ap.add_argument("--out", type=Path, default=Path("runs/bench"))
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--width", type=int, default=None)
    ap.add_argument("--reprs", nargs="+", default=["map", "graph", "voxel"])
    ap.add_argument("--tasks", nargs="+", default=["denoise", "inpaint"])
    ap.add_argument("--set", dest="sets", action="append", default=[])
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    print(machine_info(), flush=True)

    import torch

    from pointae.config import load_config
    from pointae.data.io import read_traces
    from pointae.train import fit

    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    data = args.data
    if data is None:
        data = args.out / "data.h5"
        if not data.is_file():
            from pointae.sim import simulate_mixture

            t0 = time.perf_counter()
            simulate_mixture({"wt": 0.5, "no-cohesin": 0.5}, n=args.n, n_loci=64, seed=0).save(data)
            print(f"simulated {args.n} traces in {time.perf_counter() - t0:.0f} s -> {data}", flush=True)
    traces = read_traces(data)
    root = Path(__file__).resolve().parents[1] / "configs"
    rows = []
    for task in args.tasks:
        for rep in args.reprs:
            run = args.out / f"{rep}-{task}"
            sets = [f"train.max_epochs={args.epochs}", f"out={run}", "overwrite=true", "train.progress=false"]
            if args.width:
                sets.append(f"model.width={args.width}")
            if args.threads:
                sets.append(f"train.threads={args.threads}")
            cfg = load_config(
                [root / "repr" / f"{rep}.yaml", root / "task" / f"{task}.yaml"], sets + args.sets
            )
            cfg.data.path = str(data)
            t0 = time.perf_counter()
            fit(cfg, traces)
            m = json.loads((run / "metrics.json").read_text())
            key = m["headline"]  # the one evaluator's scores (pointae.train.evaluate), data unit
            row = {
                "repr": rep,
                "task": task,
                "params": m["param_count"],
                "epochs": m["training"]["epochs"],
                "wall_s": time.perf_counter() - t0,
                "unit": m["unit"],
                "model_mae": m["model"][key],
                "model_pearson": m["model"]["pearson"],
                **{f"{b}_mae": s[key] for b, s in m["baselines"].items()},
                "beats": m["beats_baselines"],
                "train_samples_per_s": m["training"]["train_samples_per_s"],
                "inference_samples_per_s": m["inference_samples_per_s"],
                "load": os.getloadavg()[0],
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    lines = [
        f"test split of {data} ({len(traces)} traces); MAE on corrupted/hidden pairs, {rows[0]['unit']}",
        "",
        "| repr | task | params | epochs | model MAE | corrupted-input MAE | baseline MAE | beats baseline |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        base = r.get("neighbour_rule_mae", r.get("linear_interp_mae", r.get("pca_dist_mae")))
        ident = r.get("corrupted_input_mae")
        name = {"denoise": "neighbour_rule", "inpaint": "linear_interp"}.get(r["task"], "pca_dist")

        def f(v):
            return "-" if v is None else f"{v:.1f}"

        lines.append(
            f"| {r['repr']} | {r['task']} | {r['params']:,} | {r['epochs']} | {f(r['model_mae'])} | "
            f"{f(ident)} | {f(base)} ({name}) | {r['beats'].get(name)} |"
        )
    text = "\n".join(lines)
    print(text)
    (args.out / "summary.md").write_text(text + "\n")
    (args.out / "summary.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
