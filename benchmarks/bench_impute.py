"""Imputation benchmark on a real tracing file (default: the shared IMR90 Bintu file).

1. Baselines on all eligible traces (reproduces the issue's reference numbers: seed 0, 10% of the
   observed loci of traces with <= 10% missing hidden at random; linear ~168 nm, population
   median ~237 nm, kNN ~210 nm).
2. Cross-fitted model evaluation: the traces are split into ``--folds`` parts by trace; for each
   part a model is trained (self-supervised) on the other parts and scored on it with
   ``--seeds`` hiding seeds, so every eligible trace is scored by a model that never saw it. The
   per-trace statistics of all folds are pooled and a bootstrap over traces gives the 95%
   interval of the MAE ratio to linear interpolation. ``--model PATH`` skips training and scores
   one existing model (on the traces it was not trained on).
3. The planted-outlier denoising protocol (``--denoising``).

Example::

    python benchmarks/bench_impute.py --folds 2 --epochs 12 --max-minutes 7 --seeds 3 --json out.json
    python benchmarks/bench_impute.py --model pointae/assets/imputer --seeds 3
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from _machine import machine_info  # benchmarks/ is on sys.path

from pointae.baselines import interpolate_missing
from pointae.data.io import read_traces
from pointae.impute.api import (
    _scale,
    evaluate_denoising,
    load_imputer,
    score_methods,
    trace_fingerprints,
    train_imputer,
)
from pointae.impute.baselines import fill_maps, knn_maps, population_median_map
from pointae.impute.protocol import Scores, bootstrap, make_held_out, score

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "IMR90_chr21-18-20Mb.csv"


def _pool(parts: list[Scores]) -> Scores:
    keys = ("n", "abs_err", "true_sum", "sx", "sy", "sxx", "syy", "sxy", "pos_err", "pos_n")
    return Scores(**{k: np.concatenate([getattr(p, k) for p in parts]) for k in keys})


def _row(name: str, s: Scores, ci: dict) -> str:
    m = s.summary()
    r = ci.get("ratio", float("nan"))
    return (
        f"{name:<20}{m['mae']:>8.1f} [{ci['mae_lo']:.1f}, {ci['mae_hi']:.1f}]  rel {m['rel_mae']:.3f}  "
        f"r {m['pearson']:.3f}  pos {m['pos_err']:.1f}  ratio {r:.3f} "
        f"[{ci.get('ratio_lo', float('nan')):.3f}, {ci.get('ratio_hi', float('nan')):.3f}]"
    )


def baselines(traces, seed: int, mode: str) -> dict:
    held = make_held_out(traces.coords, 0.1, seed=seed, mode=mode)
    scores = {
        "linear": score(held, interpolate_missing(held.coords)),
        "population_median": score(
            held, pred_maps=fill_maps(held.coords, population_median_map(held.coords))
        ),
        "knn": score(held, pred_maps=knn_maps(held.coords, held.coords, k=20, exclude_self=True)),
    }
    ci = bootstrap(scores, n_boot=300, seed=seed)
    print(f"baselines, all {len(held)} eligible traces, seed {seed}, mode {mode}:")
    for k, s in scores.items():
        print("  " + _row(k, s, ci[k]))
    return {k: {**s.summary(), **ci[k]} for k, s in scores.items()}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--folds", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--max-minutes", type=float, default=7.0)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--modes", default="random,runs")
    ap.add_argument("--model", default=None, help="score this model instead of cross-fitting new ones")
    ap.add_argument("--runs-dir", default="runs/bench_impute")
    ap.add_argument("--denoising", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    print(machine_info())
    t = read_traces(args.data)
    out: dict = {"data": args.data, "baselines": baselines(t, 0, "random")}
    scale = _scale(t)
    # models: one per fold (cross-fitting) or the given one
    if args.model:
        loaded = load_imputer(None if args.model == "default" else args.model)
        fp = np.array(trace_fingerprints(t.coords))
        unseen = ~np.isin(fp, list(loaded.train_fingerprints))
        folds = [(loaded, np.flatnonzero(unseen))]
    else:
        perm = np.random.default_rng(0).permutation(len(t))
        parts = np.array_split(perm, args.folds)
        folds = []
        for f, test_idx in enumerate(parts):
            train_idx = np.setdiff1d(np.arange(len(t)), test_idx)
            run = Path(args.runs_dir) / f"fold{f}"
            t0 = time.time()
            train_imputer(
                t[train_idx], run, epochs=args.epochs, max_minutes=args.max_minutes, test_fraction=0.0
            )
            print(f"fold {f}: trained in {(time.time() - t0) / 60:.1f} min, load {os.getloadavg()}")
            folds.append((load_imputer(run), np.sort(test_idx)))
    for mode in args.modes.split(","):
        for seed in range(args.seeds):
            per = {}
            for loaded, idx in folds:
                held = make_held_out(t.coords, 0.1, seed=seed, mode=mode, subset=idx)
                scores, _ = score_methods(held, loaded, scale, place_baselines=False)
                for k, s in scores.items():
                    per.setdefault(k, []).append(s)
            pooled = {k: _pool(v) for k, v in per.items()}
            ci = bootstrap(pooled, n_boot=500, seed=seed)
            n_tr = len(pooled["linear"].n)
            print(f"mode {mode}, seed {seed}, {n_tr} held-out traces:")
            for k, s in pooled.items():
                print("  " + _row(k, s, ci[k]))
            out[f"{mode}/seed{seed}"] = {k: {**s.summary(), **ci[k]} for k, s in pooled.items()}
        ratios = [out[f"{mode}/seed{s}"]["pointae"]["ratio"] for s in range(args.seeds)]
        print(f"mode {mode}: pointae / linear MAE over {args.seeds} seeds: {np.mean(ratios):.3f} ({ratios})")
        out[f"{mode}/mean_ratio"] = float(np.mean(ratios))
    if args.denoising:
        loaded, idx = folds[0]
        out["denoising"] = evaluate_denoising(t[idx], model=loaded, exclude_training=False)
        for k, v in out["denoising"].items():
            print(f"denoising {k}: {v}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=float))
    return out


if __name__ == "__main__":
    main()
