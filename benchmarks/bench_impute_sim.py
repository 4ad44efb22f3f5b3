"""Imputation models trained on simulation, applied to a real tracing file (default: shared IMR90).

1. Simulate ``--n`` conformations (:func:`pointae.sim.simulate`, preset ``--preset``) with the real
   file's number of loci and add localisation noise matched to it
   (:func:`pointae.impute.pretrain.simulated_training_traces`: two summary numbers of the observed
   spots, no hidden locus).
2. Train an imputer on the simulation only and score it with the held-out masking protocol on
   *every* eligible real trace (the model never saw a real trace): the honest "data set it was not
   trained on" test available offline.
3. With ``--finetune``: fine-tune that model on the real training split (``--split-seed``) and score
   it on the held-out traces next to a model trained from scratch with the same settings.

Example::

    python benchmarks/bench_impute_sim.py --n 1600 --epochs 24 --finetune --json sim.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from pointae.data.io import read_traces
from pointae.impute.api import evaluate_imputation, load_imputer, train_imputer
from pointae.impute.model import ImputerConfig
from pointae.impute.pretrain import simulated_training_traces

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "IMR90_chr21-18-20Mb.csv"
KEYS = ("pointae", "pointae_direct", "pointae_map", "linear", "knn")


def _summary(res: dict) -> dict:
    return {
        k: {
            "ratio": res["mean"][k]["ratio"],
            "mae": res["mean"][k]["mae"],
            "ratio_ci": [(r[k]["ratio_lo"], r[k]["ratio_hi"]) for r in res["runs"]],
        }
        for k in KEYS
    }


def _print(name: str, s: dict) -> None:
    print(f"{name}:")
    for k, v in s.items():
        ci = ", ".join(f"[{lo:.3f}, {hi:.3f}]" for lo, hi in v["ratio_ci"])
        print(f"  {k:<16} MAE {v['mae']:.1f}  ratio to linear {v['ratio']:.3f}  per-seed CI {ci}")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--n", type=int, default=1600, help="simulated traces")
    ap.add_argument("--preset", default="wt")
    ap.add_argument("--epochs", type=int, default=24)
    ap.add_argument("--seeds", type=int, default=3, help="hiding seeds of the protocol")
    ap.add_argument("--refine-steps", type=int, default=10)
    ap.add_argument("--finetune", action="store_true")
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--runs-dir", default="runs/bench_impute_sim")
    ap.add_argument("--json", default=None)
    ap.add_argument("--reuse", action="store_true", help="keep an existing sim_only run in --runs-dir")
    args = ap.parse_args(argv)
    runs = Path(args.runs_dir)
    real = read_traces(args.data)
    t0 = time.time()
    print(f"load average {os.getloadavg()}")
    sim, sigma = simulated_training_traces(real, n=args.n, seed=0, preset=args.preset)
    print(f"simulated {args.n} traces x {real.n_loci} loci, localisation noise {sigma:.1f} nm per axis")
    mc = ImputerConfig(refine_steps=args.refine_steps)
    if not (args.reuse and (runs / "sim_only" / "model.safetensors").exists()):
        train_imputer(
            sim, runs / "sim_only", epochs=args.epochs, max_minutes=60, test_fraction=0.0, model_config=mc
        )
    out: dict = {"data": args.data, "n_sim": args.n, "noise_nm": sigma}
    ev = {"runs": args.seeds, "n_boot": 300, "place_baselines": False}
    res = evaluate_imputation(real, model=runs / "sim_only", **ev)
    out["sim_only"] = _summary(res)
    n_ev = out["n_eval_sim_only"] = res["runs"][0]["_info"]["n_traces"]
    _print(f"trained on simulation only, all {n_ev} eligible real traces", out["sim_only"])
    if args.finetune:
        for name, init in (("finetuned", runs / "sim_only"), ("scratch", None)):
            run = runs / name
            train_imputer(
                real,
                run,
                epochs=args.epochs,
                max_minutes=60,
                split_seed=args.split_seed,
                init=init,
                model_config=mc,
                log=None,
            )
            res = evaluate_imputation(real, model=load_imputer(run), **ev)
            out[name] = _summary(res)
            _print(f"{name} on the real training split, held-out real traces", out[name])
    out["minutes"] = (time.time() - t0) / 60
    print(f"{out['minutes']:.1f} min, load average {os.getloadavg()}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=float))
    return out


if __name__ == "__main__":
    main()
