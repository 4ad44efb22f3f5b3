"""Learning curve of the imputer on a real tracing file: is the ratio to linear limited by data?

The traces are split by trace exactly as the shipped default model was (``Traces.split``,
``--test-fraction`` 0.2, ``--split-seed`` 0, so on the shared IMR90 file the test part is the 255
traces the default model never saw). For each fraction ``f`` of ``--fractions`` a single imputer
(default architecture, ``refine_steps = 10``) is trained on a random ``f`` share of the training
traces for ``round(--epochs / f)`` epochs (the same number of optimiser steps for every ``f``; the
best epoch on the fit's own validation traces is kept), then scored with the held-out protocol
(10% hidden at random, ``--seeds`` hiding seeds) on the eligible test traces, next to linear
interpolation and ordinary kriging on the same hidden loci.

Example::

    python benchmarks/bench_impute_curve.py --fractions 0.125,0.25,0.5,1 --train-seeds 2 --json curve.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from _machine import machine_info  # benchmarks/ is on sys.path

from pointae.baselines import interpolate_missing, krige_missing
from pointae.data.io import read_traces
from pointae.impute.api import _scale, impute_coords
from pointae.impute.fit import FitConfig, fit_imputer
from pointae.impute.model import ImputerConfig
from pointae.impute.protocol import eligible, make_held_out, score

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "IMR90_chr21-18-20Mb.csv"


def shipped_split(data, test_fraction: float = 0.2, split_seed: int = 0):
    """``(training Traces, eligible test coords, scale)``: the split the shipped model was trained on."""
    traces = read_traces(data)
    split = traces.split(test_fraction=test_fraction, seed=split_seed)
    train = traces[split["train"]]
    test = traces[split["test"]].coords
    return train, test[eligible(~np.isnan(test[..., 0]))], _scale(train)


def held_out_ratios(model, helds, linear_mae, scale) -> tuple[list[float], list[float]]:
    """Protocol MAE ratios to linear of ``model``'s 3D output and raw map, one per masking."""
    ratios, maps = [], []
    for held, lin in zip(helds, linear_mae):
        r = impute_coords(model, held.coords, scale)
        ratios.append(score(held, r["coords"]).summary()["mae"] / lin)
        maps.append(score(held, pred_maps=r["map"]).summary()["mae"] / lin)
    return ratios, maps


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--fractions", default="0.125,0.25,0.5,1")
    ap.add_argument("--epochs", type=int, default=24, help="epochs at fraction 1 (scaled by 1/f)")
    ap.add_argument("--seeds", type=int, default=3, help="hiding seeds of the protocol")
    ap.add_argument("--train-seeds", type=int, default=1, help="models per fraction (seeds 0..n-1)")
    ap.add_argument("--test-fraction", type=float, default=0.2)
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    print(machine_info(1))
    train, test, scale = shipped_split(args.data, args.test_fraction, args.split_seed)
    print(f"{args.data}: {len(train)} training traces, {len(test)} eligible test traces, scale {scale:.1f}")
    helds = [make_held_out(test, hide=0.1, seed=s) for s in range(args.seeds)]
    base = []
    for held in helds:
        lin = score(held, interpolate_missing(held.coords)).summary()["mae"]
        base.append((lin, score(held, krige_missing(held.coords)).summary()["mae"] / lin))
    lin_mae, krig = np.mean([b[0] for b in base]), np.mean([b[1] for b in base])
    print(f"linear MAE {lin_mae:.1f}; kriging ratio {krig:.3f}")
    out: dict = {"data": args.data, "n_test": len(test), "linear_mae": [b[0] for b in base], "rows": []}
    out["kriging_ratio"] = [b[1] for b in base]
    rng = np.random.default_rng(123)
    order = rng.permutation(len(train))
    head = ("fraction", 8), ("traces", 7), ("epochs", 7), ("ratio 3D", 9), ("raw map", 8), ("per seed", 24)
    print(" ".join(f"{h:>{w}}" for h, w in head) + "   min")
    for frac in (float(x) for x in args.fractions.split(",")):
        sub = train.coords[order[: max(8, int(round(frac * len(train))))]]
        epochs = max(1, int(round(args.epochs / frac)))
        for train_seed in range(args.train_seeds):
            t0 = time.time()
            fc = FitConfig(epochs=epochs, max_minutes=120, seed=train_seed)
            model, hist = fit_imputer(sub, scale, fc, ImputerConfig(refine_steps=10), log=None)
            ratios, maps = held_out_ratios(model, helds, [b[0] for b in base], scale)
            row = {
                "fraction": frac,
                "train_seed": train_seed,
                "n_train": len(sub),
                "epochs": epochs,
                "best_epoch": int(np.argmin([h["val_ratio"] for h in hist]) + 1),
                "ratio": float(np.mean(ratios)),
                "map_ratio": float(np.mean(maps)),
                "ratio_per_seed": ratios,
                "minutes": (time.time() - t0) / 60,
            }
            out["rows"].append(row)
            seeds = " ".join(f"{x:.3f}" for x in ratios)
            print(
                f"{frac:>8g} {len(sub):>7} {epochs:>7} {row['ratio']:>9.3f} {row['map_ratio']:>8.3f} "
                f"{seeds:>24} {row['minutes']:>5.1f}   (training seed {train_seed})",
                flush=True,
            )
    out["load_average_end"] = os.getloadavg()
    if args.json:
        path = Path(args.json)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(out, indent=1, default=float))
        os.replace(tmp, path)
    return out


if __name__ == "__main__":
    main()
