"""Imputation models trained on simulation, applied to a real tracing file (default: shared IMR90).

1. Simulate ``--n`` conformations (:func:`pointae.sim.simulate`, preset ``--preset``) with the real
   file's number of loci and add localisation noise matched to it
   (``study_pretrain.simulated_training_traces``: two summary numbers of the observed
   spots, no hidden locus).
2. Train an imputer on the simulation only and score it with the held-out masking protocol on
   *every* eligible real trace (the model never saw a real trace): the honest "data set it was not
   trained on" test available offline.
3. With ``--finetune``: fine-tune that model on the real training split (``--split-seed``) and score
   it on the held-out traces next to a model trained from scratch with the same settings.

With ``--gaussian-twin`` (no training; ~40 s per noise factor and seed on one thread): the same
question without the simulator. Fits the real spots' chain variogram (``fit_chain_variogram``:
nugget = per-spot scatter, ``a k**alpha`` = the chain), draws ``--n`` *Gaussian* traces with exactly
that variogram and the real detection gaps (``gaussian_twin``), and scores linear interpolation,
kriging, the exact posterior mean (``bayes_point``) and the exact Bayes-optimal distance predictor
(``bayes_map``: conditional medians under the exact Gaussian posterior of the hidden spot given
every visible one; no predictor can beat it on such traces), plus that map placed in 3D and, with
``--points``, the best single 3D point per hidden locus found for the exact posterior; nugget x
``--noise-factors`` with ``gamma(1)`` held at the data's. ``--model-on-sim`` also scores an
imputer on the twin.

With ``--oracle`` (no training; < 2 min on one thread): "how low can the ratio go?". Simulates
``--n`` noise-free traces, fits a per-axis scale and localisation noise to the real file
(:func:`pointae.sim.noise.fit_axis_noise`), prints simulated vs real neighbour-distance
quantiles and mean distance vs chain separation, gives the simulated traces the real file's
detection gaps, and scores with the real protocol (noisy spots as the truth) linear interpolation,
the noise-free hidden position (``oracle_point``) and the conditional-median distance map
(``oracle_map``, a lower bound for any distance predictor under the noise model) at
``--noise-factors`` x the fitted noise, plus the isotropic noise of ``matching_noise``.

Examples::

    python benchmarks/bench_impute_sim.py --n 1600 --epochs 24 --finetune --json sim.json
    python benchmarks/bench_impute_sim.py --oracle --n 1000 --json oracle.json
    python benchmarks/bench_impute_sim.py --gaussian-twin --n 2000 --seeds 2 --model-on-sim default
    python benchmarks/bench_impute_sim.py --gaussian-twin --points --n 1000 --seeds 2
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
from study_oracle import gaussian_twin_experiment, oracle_experiment
from study_pretrain import matching_noise, simulated_training_traces

from pointae.data.io import read_traces
from pointae.impute.api import evaluate_imputation, load_imputer, train_imputer
from pointae.impute.model import ImputerConfig
from pointae.sim.noise import axis_rms, fit_axis_noise, fit_noise_mixture, matched_traces, noise

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "IMR90_chr21-18-20Mb.csv"
KEYS = ("pointae", "pointae_direct", "pointae_map", "linear", "knn")


def _write_json(path: Path, out: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(out, indent=1, default=float))
    os.replace(tmp, path)


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


SEPARATIONS = (1, 2, 4, 8, 16, 32, 64)
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9, 0.99)


def _mean_distance(coords: np.ndarray, k: int) -> float:
    d = np.linalg.norm(coords[:, k:] - coords[:, :-k], axis=-1)
    return float(np.nanmean(d))


def _neighbour_quantiles(coords: np.ndarray) -> list[float]:
    d = np.linalg.norm(coords[:, 1:] - coords[:, :-1], axis=-1)
    return [float(q) for q in np.nanquantile(d, QUANTILES)]


def oracle(args, real) -> dict:
    """The oracle study (``--oracle``): see the module docstring."""
    from pointae.sim import simulate

    t0 = time.time()
    print(f"load average {os.getloadavg()}, {os.cpu_count()} CPUs, torch threads 1")
    sim_traces = simulate(args.preset, n=args.n, n_loci=real.n_loci, seed=0)
    sim = sim_traces.coords.astype(np.float64)
    print(
        f"simulated {args.n} noise-free traces x {real.n_loci} loci ({args.preset}), {time.time() - t0:.1f} s"
    )
    scale, sd = fit_axis_noise(sim, real.coords)
    iso = matching_noise(sim, real.coords)
    mix, mix_err = fit_noise_mixture(sim * scale, real.coords, sd)
    gauss_err = fit_noise_mixture(sim * scale, real.coords, sd, ps=(0.0,))[1]
    out: dict = {"data": args.data, "n_sim": args.n, "preset": args.preset}
    out["fit"] = {"scale": scale.tolist(), "sd_nm": sd.tolist(), "iso_sd_nm": iso, "mixture": mix}
    print(
        f"per-axis fit (k = 1, 8): scale {np.round(scale, 3).tolist()}, noise sd {np.round(sd, 1).tolist()}"
    )
    for far in (4, 16):
        other = np.round(fit_axis_noise(sim, real.coords, far=far)[1], 1).tolist()
        print(f"  same fit with k = 1, {far}: noise sd {other}")
    print(f"isotropic fit (matching_noise, scale 1): noise sd {iso:.1f} nm per axis")
    print(
        f"noise shape (fit_noise_mixture, same variance): {mix[0]:.0%} of spots with {mix[1]:g}x the sd"
        f" of the rest; quantile misfit {mix_err:.3f} vs {gauss_err:.3f} for plain Gaussian noise"
    )
    rng = np.random.default_rng(1)
    obs = ~np.isnan(real.coords[..., 0])
    models = {  # name: (noise-free traces in the real unit, per-axis sd, mixture)
        "gauss": (sim * scale, sd, (0.0, 1.0)),
        "mixture": (sim * scale, sd, mix),
        "iso": (sim, np.full(3, iso), (0.0, 1.0)),
    }
    rows = {"real": real.coords}
    for name, (clean, s, m) in models.items():
        v = clean + noise(rng, clean.shape[:2], s, m)
        v[~obs[rng.integers(0, len(obs), len(v))]] = np.nan
        rows[f"sim {name}"] = v
    ks = [k for k in SEPARATIONS if k < real.n_loci]
    print("per-axis RMS displacement (nm) and mean 3D distance (nm) vs chain separation k:")
    print("  k   " + "".join(f"{name:>30}" for name in rows))
    curves = {name: [] for name in rows}
    for k in ks:
        cells = []
        for name, c in rows.items():
            rms, md = axis_rms(c, k), _mean_distance(c, k)
            curves[name].append({"k": k, "rms_axes": rms.tolist(), "mean_distance": md})
            cells.append(f"{'/'.join(f'{x:.0f}' for x in rms)} mean {md:.0f}".rjust(30))
        print(f"  {k:<4}" + "".join(cells))
    print("neighbour (k = 1) 3D distance quantiles " + "/".join(f"{q:g}" for q in QUANTILES) + " (nm):")
    quants = {}
    for name, c in rows.items():
        quants[name] = _neighbour_quantiles(c)
        print(f"  {name:<12}" + " ".join(f"{q:7.0f}" for q in quants[name]))
    out["curves"], out["neighbour_quantiles"] = curves, quants
    runs = [
        (f"{m} x{f:g}", *models[m][:1], models[m][1] * f, models[m][2])
        for m in ("gauss", "mixture")
        for f in args.noise_factors
    ]
    runs.append(("iso x1", *models["iso"]))
    print(f"protocol: hide 10% of observed loci ({args.seeds} seeds), real detection gaps; ratio to linear:")
    print(f"  {'noise':<12} {'sd (nm)':<12} {'linear MAE':>10} {'oracle_point':>24} {'oracle_map':>24}")
    out["oracle"] = {}
    for name, clean, s, m in runs:
        r = oracle_experiment(clean, s, m, masks=obs, seeds=args.seeds)
        r["sd_nm"], r["mixture"] = np.asarray(s).tolist(), m
        out["oracle"][name] = r
        cells = []
        for k in ("oracle_point", "oracle_map"):
            lo = min(a for a, _ in r[k]["ratio_ci"])
            hi = max(b for _, b in r[k]["ratio_ci"])
            cells.append(f"{r[k]['ratio']:.3f} [{lo:.3f}, {hi:.3f}]".rjust(24))
        sds = "/".join(f"{x:.0f}" for x in s)
        print(f"  {name:<12} {sds:<12} {r['linear']['mae']:>10.1f} " + " ".join(cells))
    out["n_traces"] = out["oracle"][runs[0][0]]["n_traces"]
    print("mixture shape sensitivity (fitted sd, 1 seed): p rho misfit linear-MAE oracle_point oracle_map")
    out["mixture_grid"] = []
    for p in (0.2, 0.3, 0.4):
        for rho in (4.0, 5.0, 6.0):
            err = fit_noise_mixture(sim * scale, real.coords, sd, ps=(p,), rhos=(rho,))[1]
            r = oracle_experiment(sim * scale, sd, (p, rho), masks=obs, seeds=1, n_draws=201)
            row = [p, rho, err, r["linear"]["mae"], r["oracle_point"]["ratio"], r["oracle_map"]["ratio"]]
            out["mixture_grid"].append(row)
            print("  {:.1f} {:g} {:.3f} {:.1f} {:.3f} {:.3f}".format(*row))
    if args.model_on_sim:
        print(f"imputer {args.model_on_sim} (trained on real traces) on the simulated traces (1 seed):")
        model = load_imputer(None if args.model_on_sim == "default" else args.model_on_sim)
        out["model_on_sim"] = {}
        for name in ("gauss", "mixture"):
            t = sim_traces._replace(coords=rows[f"sim {name}"].astype(np.float32))
            res = evaluate_imputation(t, model=model, runs=1, n_boot=100, place_baselines=False)
            m = {k: {"mae": v["mae"], "ratio": v["ratio"]} for k, v in res["mean"].items()}
            out["model_on_sim"][name] = m
            print(f"  sim {name:<8} " + "  ".join(f"{k} {v['ratio']:.3f}" for k, v in m.items()))
    out["seconds"] = time.time() - t0
    print(f"{out['seconds']:.0f} s, load average {os.getloadavg()}")
    return out


def _cell(row: dict, k: str) -> str:
    lo, hi = row[k + "_ci"]
    return f"{row[k]:.3f} [{lo:.3f}, {hi:.3f}]".rjust(24)


def twin(args, real) -> dict:
    """The Gaussian-twin study (``--gaussian-twin``): see the module docstring."""
    from pointae.data.traces import Traces
    from pointae.impute.kriging import gaussian_twin
    from pointae.impute.protocol import eligible

    t0 = time.time()
    print(machine_info(1))
    out = gaussian_twin_experiment(
        real.coords, n=args.n, seeds=args.seeds, nugget_scales=args.noise_factors, points=args.points
    )
    vg = np.asarray(out["variogram"])
    print(
        "chain variogram of the real spots, gamma(k) = nugget + a k^alpha per axis: nugget sd "
        + "/".join(f"{x:.0f}" for x in np.sqrt(vg[:, 0]))
        + " nm, alpha "
        + "/".join(f"{x:.2f}" for x in vg[:, 2])
        + ", sqrt(gamma(1)) "
        + "/".join(f"{x:.0f}" for x in np.sqrt(vg[:, 0] + vg[:, 1]))
        + " nm"
    )
    print(f"{args.n} Gaussian twin traces, real detection gaps, {args.seeds} hiding seeds; ratio to linear:")
    keys = ("kriging", "bayes_point", "bayes_map", "bayes_map_3d") + ("bayes_point_3d",) * args.points
    print(f"  {'nugget x':<9}{'linear MAE':>11}" + "".join(f"{k:>24}" for k in keys))
    for f, row in out["runs"].items():
        cells = "".join(_cell(row, k) for k in keys)
        print(f"  {f:<9g}{row['linear_mae']:>11.1f}{cells}")
    print("Monte Carlo error (two independent estimates: mean +- SE; bias check at a tenth of the draws):")
    for f, row in out["runs"].items():
        line = (
            f"  nugget x{f:g}: bayes_map {row['bayes_map']:.4f} +- {row['bayes_map_mc_se']:.4f} "
            f"({row['bayes_map_first']:.4f} / {row['bayes_map_b']:.4f}); "
            f"with a tenth of the draws {row['bayes_map_coarse']:.4f}"
        )
        if "bayes_point_3d_mc_se" in row:
            line += (
                f"; best 3D point {row['bayes_point_3d']:.4f} +- {row['bayes_point_3d_mc_se']:.4f} "
                f"({row['bayes_point_3d_first']:.4f} / {row['bayes_point_3d_b']:.4f})"
            )
        print(line)
    if args.model_on_sim:
        model = load_imputer(None if args.model_on_sim == "default" else args.model_on_sim)
        vg1 = np.asarray(out["runs"][1.0]["variogram"]) if 1.0 in out["runs"] else vg
        obs = ~np.isnan(real.coords[..., 0])
        coords, _ = gaussian_twin(vg1, args.n, real.n_loci, masks=obs[eligible(obs)], seed=0)
        res = evaluate_imputation(
            Traces(coords, unit=real.unit),
            model=model,
            runs=args.seeds,
            n_boot=100,
            place_baselines=False,
        )
        out["model_on_twin"] = {k: {"mae": v["mae"], "ratio": v["ratio"]} for k, v in res["mean"].items()}
        print(
            f"imputer {args.model_on_sim} (trained on real traces) on the twin (nugget x1): "
            + "  ".join(f"{k} {v['ratio']:.3f}" for k, v in out["model_on_twin"].items())
        )
    out["seconds"] = time.time() - t0
    print(f"{out['seconds']:.0f} s, load average {os.getloadavg()}")
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--n", type=int, default=1600, help="simulated traces")
    ap.add_argument("--preset", default="wt")
    ap.add_argument("--epochs", type=int, default=24)
    ap.add_argument("--seeds", type=int, default=3, help="hiding seeds of the protocol")
    ap.add_argument("--refine-steps", type=int, default=10)
    ap.add_argument("--finetune", action="store_true")
    ap.add_argument(
        "--noise",
        choices=("iso", "mixture"),
        default="iso",
        help="training noise: isotropic Gaussian (matching_noise) or per-axis scale + mixture (oracle fit)",
    )
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--runs-dir", default="runs/bench_impute_sim")
    ap.add_argument("--json", default=None)
    ap.add_argument("--reuse", action="store_true", help="keep an existing sim_only run in --runs-dir")
    ap.add_argument("--oracle", action="store_true", help="oracle study instead of training (see above)")
    ap.add_argument(
        "--gaussian-twin",
        action="store_true",
        help="Gaussian-twin study instead of training (nugget x --noise-factors; see above)",
    )
    ap.add_argument(
        "--points",
        action="store_true",
        help="with --gaussian-twin: also the best single 3D point for the exact posterior (slow)",
    )
    ap.add_argument("--noise-factors", type=float, nargs="+", default=[0.5, 1.0, 1.5])
    ap.add_argument(
        "--model-on-sim",
        default=None,
        help="with --oracle or --gaussian-twin: also score this imputer ('default' = shipped) on them",
    )
    args = ap.parse_args(argv)
    runs = Path(args.runs_dir)
    real = read_traces(args.data)
    study = twin if args.gaussian_twin else oracle if args.oracle else None
    if study is not None:  # no training
        torch.set_num_threads(1)
        out = study(args, real)
        if args.json:
            _write_json(Path(args.json), out)
        return out
    t0 = time.time()
    print(f"load average {os.getloadavg()}")
    if args.noise == "mixture":
        sim, _, fit = matched_traces(real, n=args.n, seed=0, preset=args.preset)
        sigma = {k: np.asarray(v).tolist() for k, v in fit.items()}
        print(f"simulated {args.n} traces x {real.n_loci} loci, real gaps, scale + mixture noise {sigma}")
    else:
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
    if args.noise == "mixture":  # the same model on fresh simulated traces, next to the oracles
        test, clean, _ = matched_traces(real, n=600, seed=1, preset=args.preset, fit=fit)
        res = evaluate_imputation(test, model=runs / "sim_only", **ev)
        out["sim_only_on_sim"] = _summary(res)
        _print("the same model on 600 fresh simulated traces (seed 1)", out["sim_only_on_sim"])
        orc = oracle_experiment(
            clean, fit["sd"], fit["mixture"], masks=~np.isnan(real.coords[..., 0]), seeds=args.seeds
        )
        out["oracle_on_sim"] = {k: orc[k]["ratio"] for k in ("oracle_point", "oracle_map")}
        print(f"  oracles on the same clean traces: {out['oracle_on_sim']}")
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
        _write_json(Path(args.json), out)
    return out


if __name__ == "__main__":
    main()
