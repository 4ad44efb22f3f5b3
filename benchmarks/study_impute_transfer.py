"""Multi-source imputers and the leave-one-source-out table (issue 14).

Sources: the IMR90 file (Bintu 2018, 65 loci of 30 kb), the Huang 2021 file (42 loci of 5 kb, 34%
missing) and simulation matched to each (:func:`pointae.impute.sources.simulated_source`: noise
and per-locus detection of the file's *training* traces). Every real file is split by trace with
:meth:`Traces.split` (20% test, seed 0: for IMR90 the same 255 test traces as the shipped model);
10% of the training traces are the validation set that picks the epoch; the test traces are
scored once, in ``table``.

``train`` trains one model (today's run format: ``model.safetensors`` + ``model.json``, with the
fingerprints of every real training trace and an uncertainty calibration fitted on the
validation traces of its real sources)::

    python benchmarks/study_impute_transfer.py train --sources huang,sim_huang --out runs/tr/no_imr90
    python benchmarks/study_impute_transfer.py train --sources imr90,sim_imr90 --out runs/tr/no_huang
    python benchmarks/study_impute_transfer.py train --sources imr90,huang,sim_imr90,sim_huang \\
        --out runs/tr/all

``table`` scores models on each file's test split with the protocol (10% hidden, ``--mode``, the
file's own eligibility threshold :func:`pointae.impute.protocol.auto_max_missing`, seeds
``0..--seeds-1``; the same hidden loci for every model), with bootstrap 95% intervals of the
ratio to linear interpolation and the coverage of the calibrated predictive distribution::

    python benchmarks/study_impute_transfer.py table --json transfer.json \\
        --model imr90:no_imr90=runs/tr/no_imr90 --model imr90:all=runs/tr/all \\
        --model imr90:shipped=default --model huang:no_huang=runs/tr/no_huang ...

``table --self-calibrate`` also scores the calibration rescaled on each input's own visible spots
(:func:`pointae.impute.uncertainty.self_calibrate`, fitted on the test traces with the scored loci
already hidden) and a full refit on the same spots. ``train --sim-noise-range 0.5,2
--sim-extra-missing 0,0.4`` widens the simulated sources (per-trace noise factor and extra
missingness); ``train --init RUN --lr 5e-4`` fine-tunes a trained single model.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from _machine import machine_info

from pointae.baselines import fit_chain_variogram, interpolate_missing, krige_missing, smooth_missing
from pointae.data.io import read_traces
from pointae.impute.api import (
    META_FILE,
    _record_weights_hash,
    impute_coords,
    load_imputer,
    model_calibration,
    save_imputer,
    trace_fingerprints,
)
from pointae.impute.fit import FitConfig, config_dict
from pointae.impute.kriging import gaussian_posterior
from pointae.impute.model import ImputerConfig, describe
from pointae.impute.protocol import bootstrap, detection_rates, make_held_out, score
from pointae.impute.sources import fit_sources, median_neighbour_distance, real_source, simulated_source
from pointae.impute.uncertainty import calibration_scores, fit_calibration, self_calibrate

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FILES = {"imr90": DATA / "IMR90_chr21-18-20Mb.csv", "huang": DATA / "Huang2021_mESC_Sox2_4CBS_traces.csv"}
TEST_FRACTION, SPLIT_SEED = 0.2, 0
METHODS = ("pointae", "pointae_map", "linear", "local_fit", "kriging")


def _write_json(path: Path, out: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(out, indent=1, default=float))
    os.replace(tmp, path)


def load_file(name: str):
    """The traces of one real file and its train / test split (by trace, seed 0)."""
    t = read_traces(FILES[name])
    split = t.split(test_fraction=TEST_FRACTION, seed=SPLIT_SEED)
    return t, split["train"], split["test"]


def _pair(text: str) -> tuple[float, float]:
    lo, _, hi = text.partition(",")
    return float(lo), float(hi or lo)


def build_sources(
    names: list[str],
    n_sim: int,
    seed: int,
    val_seed: int = 0,
    noise_range: tuple[float, float] = (1.0, 1.0),
    extra_missing: tuple[float, float] = (0.0, 0.0),
) -> list:
    out = []
    for name in names:
        real = name.removeprefix("sim_")
        if real not in FILES:
            raise SystemExit(f"unknown source {name!r}; expected imr90, huang, sim_imr90, sim_huang")
        t, train, _ = load_file(real)
        if name.startswith("sim_"):
            out.append(
                simulated_source(
                    t[train],
                    n=n_sim,
                    seed=seed,
                    name=name,
                    noise_range=noise_range,
                    extra_missing=extra_missing,
                )
            )
        else:
            out.append(real_source(name, t, train, val_fraction=0.1, seed=val_seed))
    return out


def train(args) -> None:
    torch.set_num_threads(1)
    print(machine_info(1))
    names = args.sources.split(",")
    t0 = time.time()
    sources = build_sources(
        names,
        args.n_sim,
        args.seed,
        args.val_seed,
        _pair(args.sim_noise_range),
        _pair(args.sim_extra_missing),
    )
    for s in sources:
        val = 0 if s.val is None else len(s.val)
        print(f"source {s.name}: {len(s.coords)} train, {val} val traces, scale {s.scale:.1f}, {s.info}")
    fc = FitConfig(epochs=args.epochs, max_minutes=args.max_minutes, seed=args.seed)
    if args.lr is not None:
        fc.lr = args.lr
    mc = ImputerConfig(refine_steps=args.refine_steps, activation=args.activation, channels=args.channels)
    init, fps = None, []
    if args.init:  # fine-tune a trained single model (its architecture; its training traces stay excluded)
        loaded = load_imputer(args.init)
        init = loaded.model
        if not hasattr(init, "config"):
            raise SystemExit(f"{args.init}: --init needs a single model, not an ensemble")
        fps = list(loaded.meta.get("train_fingerprints", []))
        print(f"fine-tuning {args.init} ({describe(init)}), lr {fc.lr:g}")
    model, history = fit_sources(sources, fc, mc, model=init)
    real = [s for s in sources if not s.name.startswith("sim_")]
    out = Path(args.out)
    for s in real:
        t, train_idx, _ = load_file(s.name)
        fps += trace_fingerprints(t.coords[train_idx])  # train + validation traces of that file
    fps = sorted(set(fps))
    meta = {
        "data": {
            "source": "+".join(names),
            "sources": {s.name: {**(s.info or {}), "scale": s.scale} for s in sources},
            "unit": "nm",
        },
        "calibration": {"method": "median neighbour distance (per input)", "unit": "nm"},
        "fit": config_dict(fc),
        "ensemble": 1,
        "split": {"test_fraction": TEST_FRACTION, "seed": SPLIT_SEED, "per_file": True},
        "init": args.init,
        "train_fingerprints": fps,
        "description": describe(model),
        "history": history,
        "command": "python benchmarks/study_impute_transfer.py train " + " ".join(args.argv),
    }
    meta["uncertainty"] = calibrate_on_validation(model, real).to_dict()
    save_imputer(model, out, meta)
    _record_weights_hash(out)
    best = min(h.get("val_ratio", 9.0) for h in history)
    print(f"wrote {out} in {(time.time() - t0) / 60:.1f} min; best validation ratio {best:.4f}")


def calibrate_on_validation(model, real: list):
    """The uncertainty calibration, fitted on the validation traces of the real sources (pooled)."""
    return fit_calibration(
        model,
        [src.val for src in real],
        [src.scale for src in real],
        hide=0.1,
        mode="random",
        seeds=(101, 102, 103, 104, 105),
        max_missing="auto",
    )


def calibrate(args) -> None:
    """Refit and store the calibration of an existing run on its sources' validation traces."""
    torch.set_num_threads(1)
    names = [n for n in args.sources.split(",") if not n.startswith("sim_")]
    real = build_sources(names, 0, args.seed, args.val_seed)
    loaded = load_imputer(args.run)
    cal = calibrate_on_validation(loaded.model, real).to_dict()
    path = Path(args.run) / META_FILE
    meta = json.loads(path.read_text())
    meta["uncertainty"] = cal
    _write_json(path, meta)
    print(
        f"{args.run}: calibration refitted on {cal['fitted_on']}; "
        f"validation coverage {cal['validation_coverage']}"
    )


_CACHE: dict = {}


def _held(file: str, seed: int, mode: str):
    """The held-out masking of a file's test split (cached: the same for every model)."""
    key = (file, seed, mode)
    if key not in _CACHE:
        t, train, test = load_file(file)
        det = detection_rates(t.mask[train]) if mode == "detection" else None
        held = make_held_out(
            t.coords, 0.1, seed=seed, mode=mode, max_missing="auto", subset=test, detection=det
        )
        scale = median_neighbour_distance(held.coords)  # the visible spots, as `impute` would
        base = {
            "linear": score(held, interpolate_missing(held.coords)),
            "local_fit": score(held, smooth_missing(held.coords)),
            "kriging": score(held, krige_missing(held.coords)),
        }
        k_mean, k_sd = gaussian_posterior(held.coords, fit_chain_variogram(held.coords))
        kcal = calibration_scores(held, k_mean, k_sd, seed=seed)
        _CACHE[key] = (held, scale, base, kcal, len(test))
    return _CACHE[key]


def _row(file: str, label: str, model: str, args) -> dict:
    loaded = load_imputer(None if model == "default" else model)
    cal = model_calibration(loaded)
    runs = []
    for seed in range(args.seeds):
        held, scale, base, kcal, n_test = _held(file, seed, args.mode)
        out = impute_coords(loaded.model, held.coords, scale, refine=True)
        scores = {
            "pointae": score(held, out["coords"]),
            "pointae_map": score(held, pred_maps=out["map"]),
            **base,
        }
        ci = bootstrap(scores, reference="linear", n_boot=args.n_boot, seed=seed)
        calib = {"kriging_posterior": kcal}
        if cal is not None:
            sd = cal.sd(out["spread"], held.observed, scale, held.coords)
            calib["pointae"] = calibration_scores(
                held, out["coords"], sd, cal.mixture, seed=seed, anisotropy=cal.anisotropy
            )
            if cal.anisotropy is not None:  # the isotropic form (pointae_sd + mixture) beside it
                calib["pointae_isotropic"] = calibration_scores(
                    held, out["coords"], sd, cal.mixture, seed=seed
                )
            if args.self_calibrate:  # rescaled on the input's own visible spots (never the scored ones)
                own = self_calibrate(cal, loaded.model, held.coords, scale)
                sd = own.sd(out["spread"], held.observed, scale, held.coords)
                calib["pointae_self"] = calibration_scores(
                    held, out["coords"], sd, own.mixture, seed=seed, anisotropy=own.anisotropy
                )
                calib["pointae_self"]["self_calibration"] = own.info["self_calibration"]
                refit = fit_calibration(
                    loaded.model, held.coords, scale, mode="random", seeds=(201, 202, 203), max_missing="auto"
                )
                sd = refit.sd(out["spread"], held.observed, scale, held.coords)
                calib["pointae_refit"] = calibration_scores(
                    held, out["coords"], sd, refit.mixture, seed=seed, anisotropy=refit.anisotropy
                )
        runs.append(
            {
                "seed": seed,
                "n_test": n_test,
                "n_eligible": len(held),
                "max_missing": held.max_missing,
                "n_hidden": int(held.hidden.sum()),
                "scale": scale,
                "methods": {k: {**s.summary(), **ci[k]} for k, s in scores.items()},
                "calibration": calib,
            }
        )
    return {"file": file, "label": label, "model": model, "mode": args.mode, "runs": runs}


def _fmt(row: dict) -> str:
    r0 = row["runs"]
    ratios = [r["methods"]["pointae"]["ratio"] for r in r0]
    ci = ", ".join(
        f"[{r['methods']['pointae']['ratio_lo']:.3f}, {r['methods']['pointae']['ratio_hi']:.3f}]" for r in r0
    )
    cal = [r["calibration"].get("pointae", {}) for r in r0]
    iso = [r["calibration"].get("pointae_isotropic", {}) for r in r0]
    kr = [r["calibration"]["kriging_posterior"] for r in r0]
    extra = {
        name: [r["calibration"][name] for r in r0]
        for name in ("pointae_self", "pointae_refit")
        if all(name in r["calibration"] for r in r0)
    }

    def m(k, c=cal):
        v = [x[k] for x in c if k in x]
        return f"{np.mean(v):.3f}" if v else "-"

    return (
        f"{row['file']:<6} {row['label']:<12} ratio {np.mean(ratios):.3f} {ci} | "
        f"eligible {r0[0]['n_eligible']}/{r0[0]['n_test']} (<= {r0[0]['max_missing']:.0%} missing) | "
        f"coverage pos {m('coverage_pos_50')}/{m('coverage_pos_90')} "
        f"dist {m('coverage_dist_50')}/{m('coverage_dist_90')} energy {m('energy_score')} | "
        f"isotropic pos {m('coverage_pos_50', iso)}/{m('coverage_pos_90', iso)} "
        f"dist {m('coverage_dist_50', iso)}/{m('coverage_dist_90', iso)} | "
        f"kriging posterior pos {m('coverage_pos_50', kr)}/{m('coverage_pos_90', kr)} "
        f"dist {m('coverage_dist_50', kr)}/{m('coverage_dist_90', kr)} energy {m('energy_score', kr)}"
        + "".join(
            f" | {name} pos {m('coverage_pos_50', c)}/{m('coverage_pos_90', c)} "
            f"dist {m('coverage_dist_50', c)}/{m('coverage_dist_90', c)} energy {m('energy_score', c)}"
            for name, c in extra.items()
        )
    )


def table(args) -> None:
    torch.set_num_threads(1)
    print(machine_info(1))
    out = {"machine": machine_info(1), "mode": args.mode, "seeds": args.seeds, "rows": []}
    path = Path(args.json) if args.json else None
    for spec in args.model:
        head, model = spec.split("=", 1)
        file, label = head.split(":", 1)
        t0 = time.time()
        row = _row(file, label, model, args)
        row["seconds"] = round(time.time() - t0, 1)
        out["rows"].append(row)
        print(_fmt(row), f"({row['seconds']} s)", flush=True)
        if path is not None:
            _write_json(path, out)


def main(argv=None) -> None:
    import sys

    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    tr = sub.add_parser("train", help="train one multi-source imputer")
    tr.add_argument("--sources", required=True, help="comma list of imr90, huang, sim_imr90, sim_huang")
    tr.add_argument("--out", required=True)
    tr.add_argument("--epochs", type=int, default=16)
    tr.add_argument("--max-minutes", type=float, default=12.0)
    tr.add_argument("--n-sim", type=int, default=600, help="simulated traces per sim source")
    tr.add_argument(
        "--sim-noise-range",
        default="1,1",
        help="LO,HI: each simulated trace's noise sd = matched sd x a log-uniform factor in [LO, HI]",
    )
    tr.add_argument(
        "--sim-extra-missing",
        default="0,0",
        help="LO,HI: each simulated trace also loses each spot with a probability uniform in [LO, HI]",
    )
    tr.add_argument("--refine-steps", type=int, default=10)
    tr.add_argument("--activation", default="gelu", choices=["gelu", "relu"])
    tr.add_argument("--channels", type=int, default=16)
    tr.add_argument("--seed", type=int, default=0, help="training seed (and of the simulations)")
    tr.add_argument("--init", help="fine-tune this trained single-model run instead of a fresh model")
    tr.add_argument("--lr", type=float, help="peak learning rate (default FitConfig's)")
    tr.add_argument("--val-seed", type=int, default=0, help="seed of the validation split (keep it fixed)")
    tb = sub.add_parser("table", help="score models on the test splits")
    tb.add_argument(
        "--model", action="append", required=True, help="FILE:LABEL=RUN (RUN 'default' = shipped)"
    )
    tb.add_argument("--mode", default="random", choices=("random", "runs", "mixed", "detection"))
    tb.add_argument("--seeds", type=int, default=3)
    tb.add_argument("--n-boot", type=int, default=1000)
    tb.add_argument("--json")
    tb.add_argument(
        "--self-calibrate",
        action="store_true",
        help="also score pointae_sd rescaled (self_calibrate) and refitted on each input's own visible spots",
    )
    cb = sub.add_parser("calibrate", help="refit a run's uncertainty calibration on validation traces")
    cb.add_argument("--run", required=True)
    cb.add_argument("--sources", required=True, help="the run's training sources (sim_ ones are skipped)")
    cb.add_argument("--seed", type=int, default=0)
    cb.add_argument("--val-seed", type=int, default=0)
    args = p.parse_args(argv)
    args.argv = argv[1:]
    {"train": train, "table": table, "calibrate": calibrate}[args.cmd](args)


if __name__ == "__main__":
    main()
