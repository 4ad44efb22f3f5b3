"""Imputation commands: ``impute``, ``evaluate-imputation``, ``train-imputer``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from pointae.cli._app import OVERWRITE, choice, command, console, err_console
from pointae.cli._read import (
    ColumnsOpt,
    DuplicatesOpt,
    FormatOpt,
    PixelSizeOpt,
    UnitOpt,
    read_options,
)

_MODEL = typer.Option(
    "--model",
    "-m",
    help="Imputer run directory (or .safetensors file), or an inpainting run of 'pointae train' "
    "(any representation); default: the model shipped with pointae.",
)
_MODELS = typer.Option(
    "--model",
    "-m",
    help="Model(s) to compare, repeatable: imputer runs, inpainting runs of 'pointae train' "
    "(any representation), 'default' for the shipped model (the default when none is given).",
)


def _model_args(models: list[Path] | None) -> list:
    """``--model`` values: ``default`` is the shipped model (``None``); comma lists are split."""
    out: list = []
    for m in models or []:
        parts = [m] if m.exists() or "," not in str(m) else [Path(x) for x in str(m).split(",") if x]
        out += [None if str(x) == "default" and not x.exists() else x for x in parts]
    return out or [None]


_SELF_CALIBRATE = typer.Option(
    "--self-calibrate",
    help="Rescale pointae_sd on the input's own visible spots (5% of them hidden, 6 maskings) for a "
    "file unlike the model's validation data.",
)


@command("impute")
def impute(
    src: Annotated[
        Path,
        typer.Argument(metavar="INPUT", help="Trace file (Bintu, FOF-CT, long CSV/TSV, ECSV, HDF5)."),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file (written atomically).")],
    model: Annotated[Optional[Path], _MODEL] = None,
    denoise: Annotated[
        bool, typer.Option("--denoise", help="Also flag mislocalised spots and re-place them ('corrected').")
    ] = False,
    threshold: Annotated[
        float, typer.Option(help="Denoising threshold, in median neighbour distances.", min=0.1)
    ] = 3.0,
    format: Annotated[
        Optional[str],
        choice("formats", "--format", "-f", where={"read": True}, help="Input format (default: detected)."),
    ] = None,
    to: Annotated[
        Optional[str],
        choice(
            "formats",
            "--to",
            "-t",
            where={"write": True},
            help="Output format (default: the input's format; FOF-CT for tables).",
        ),
    ] = None,
    samples: Annotated[
        int,
        typer.Option(
            help="Also write K joint samples of every trace's imputed spots (OUT stem + .samples.h5/.csv).",
            min=0,
        ),
    ] = 0,
    samples_out: Annotated[
        Optional[Path], typer.Option("--samples-out", help="Where to write the samples (.h5 or .csv).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the samples.")] = 0,
    chunk_size: Annotated[
        int, typer.Option("--chunk-size", help="Traces per chunk (memory grows with it).", min=1)
    ] = 4096,
    precision: Annotated[
        str,
        choice(
            "precisions", "--precision", help="CNN precision: auto = bfloat16 where the CPU has it natively."
        ),
    ] = "auto",
    workers: Annotated[
        str,
        typer.Option(
            help="Processes imputing chunks (one torch thread each): a number, or auto = the CPUs "
            "available (1 for a file of one chunk). The output does not depend on it.",
        ),
    ] = "auto",
    self_calibrate: Annotated[bool, _SELF_CALIBRATE] = False,
    columns: ColumnsOpt = None,
    unit: UnitOpt = None,
    pixel_size: PixelSizeOpt = None,
    duplicates: DuplicatesOpt = None,
    overwrite: Annotated[bool, OVERWRITE] = False,
) -> None:
    """Fill missing loci (and with --denoise correct outliers); every original spot is kept bit for bit.

    Imputed/corrected spots are marked in the per-spot columns pointae_status
    (observed|imputed|corrected|missing), pointae_confidence and pointae_sd (per-axis sd of the
    calibrated Gaussian predictive distribution, data unit: a sphere of radius 2.5 pointae_sd holds
    ~90%); with --denoise also pointae_outlier_prob (calibrated probability that an observed spot
    is mislocalised). Provenance goes to the header/attributes. The file is streamed in chunks.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from pointae.api import PointAE
    from pointae.impute.stream import impute_file, samples_path
    from pointae.outputs import check_outputs

    fmt_out = to
    outs = [out] + ([samples_out or samples_path(out, fmt_out)] if samples else [])
    check_outputs(outs, inputs=[src], folders=[model], overwrite=overwrite)
    opts = read_options(None, columns, unit, pixel_size, duplicates)
    opts.format = format or opts.format

    columns = [
        TextColumn("impute"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} traces/s"),
        TimeElapsedColumn(),
    ]
    t0 = time.time()
    # on stderr and transient: a failure leaves only its one error line, a success its summary line
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task("impute", total=None, rate="-")

        def progress(done: int, total: int | None) -> None:
            rate = done / max(time.time() - t0, 1e-9)
            bar.update(task, completed=done, total=total, rate=f"{rate:,.0f}")

        info = impute_file(
            src,
            out,
            model=PointAE.load(model).as_imputer(),
            denoise=denoise,
            threshold=threshold,
            to=fmt_out,
            read_options=opts.kwargs(),
            chunk_size=chunk_size,
            samples=samples,
            samples_out=samples_out,
            seed=seed,
            precision=precision,
            progress=progress,
            workers=workers,
            self_calibrate=self_calibrate,
        )
    console.print(
        f"wrote {info['n_traces']:,} traces x {info['n_loci']} loci to {out} ({info['format']}): "
        f"{info['n_imputed']:,} imputed, {info['n_corrected']:,} corrected, "
        f"{info['n_missing_left']:,} left missing; scale {info['scale']:.4g} {info['unit']}; "
        f"{info['traces_per_s']:,.0f} traces/s"
        + (f" ({info['workers']} workers)" if info["workers"] > 1 else ""),
        highlight=False,
    )
    if info.get("n_traces_too_few_spots"):
        err_console.print(
            f"warning: {info['n_traces_too_few_spots']:,} trace(s) with fewer than "
            f"{(info.get('settings') or {}).get('min_observed')} observed spots left as they are "
            "(nothing to impute from)",
            highlight=False,
        )
    if info["samples"]:
        console.print(f"wrote {samples} joint samples per trace to {info['samples']}", highlight=False)


@command("evaluate-imputation")
def evaluate_imputation_cmd(
    data: Annotated[Path, typer.Argument(metavar="DATA", help="Trace file to evaluate on.")],
    model: Annotated[Optional[list[Path]], _MODELS] = None,
    hide: Annotated[float, typer.Option(help="Fraction of observed loci to hide.", min=0.01, max=0.9)] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed of the first run.")] = 0,
    runs: Annotated[int, typer.Option(help="Number of runs (seeds seed..seed+runs-1).", min=1)] = 1,
    mode: Annotated[
        str,
        choice(
            "hide_modes",
            "--mode",
            help="Hide isolated loci, runs of 2-4, a mix, or loci by the file's per-locus detection rates.",
        ),
    ] = "random",
    max_missing: Annotated[
        str,
        typer.Option(
            help="Use traces with at most this fraction missing; 'auto': max(0.1, the file's median "
            "missing fraction per trace, rounded up to 5%)."
        ),
    ] = "0.1",
    denoising: Annotated[
        bool, typer.Option("--denoising", help="Also run the planted-outlier protocol (5% outliers).")
    ] = False,
    json_out: Annotated[
        Optional[Path], typer.Option("--json", help="Write all results as JSON here.")
    ] = None,
    figure: Annotated[
        Optional[Path],
        typer.Option("--figure", help="Write the reliability diagram of the uncertainty (.png/.svg/.pdf)."),
    ] = None,
    self_calibrate: Annotated[bool, _SELF_CALIBRATE] = False,
    format: FormatOpt = None,
    columns: ColumnsOpt = None,
    unit: UnitOpt = None,
    pixel_size: PixelSizeOpt = None,
    duplicates: DuplicatesOpt = None,
    overwrite: Annotated[bool, OVERWRITE] = False,
) -> None:
    """Held-out masking protocol: hide observed loci, impute, score only them, against the baselines.

    Scores MAE / relative MAE / Pearson r of hidden-to-observed distances and the 3D position error,
    for the model (pointae: the imputed 3D coordinates; pointae_direct: the placement before
    refinement; pointae_map: its raw predicted distances, not a 3D structure), linear interpolation,
    the population median map and kNN across traces, with bootstrap 95% intervals over traces.
    With several --model, each is scored on the same hidden spots of the same traces (named by its
    run directory; 'shipped' for the default model). Traces a model was trained on are skipped
    automatically. Then the calibration of the predictive distribution (pointae_sd) on the hidden
    spots, next to the exact Gaussian kriging posterior: coverage of the central 50%/90% regions of
    the 3D position and of the distances to observed loci, energy score and CRPS (--figure:
    reliability diagram).
    """
    import numpy as np

    from pointae.api import PointAE
    from pointae.data.io import read_traces
    from pointae.errors import PointaeError, atomic_path
    from pointae.impute.api import evaluate_denoising, evaluate_imputation, model_labels
    from pointae.outputs import check_outputs

    models = _model_args(model)
    outs = [p for p in (json_out, figure) if p is not None]
    if outs:
        check_outputs(outs, inputs=[data], folders=[m for m in models if m is not None], overwrite=overwrite)
    if max_missing != "auto":
        try:
            max_missing = float(max_missing)
        except ValueError:
            raise PointaeError(f"--max-missing: expected a fraction or 'auto', got {max_missing!r}") from None
    t = read_traces(data, **read_options(format, columns, unit, pixel_size, duplicates).kwargs())
    loaded = [PointAE.load(m).as_imputer() for m in models]
    labels = model_labels(loaded)
    res = evaluate_imputation(
        t,
        model=loaded if len(loaded) > 1 else loaded[0],
        hide=hide,
        seed=seed,
        runs=runs,
        mode=mode,
        max_missing=max_missing,
        self_calibrate=self_calibrate,
    )
    p = res["protocol"]
    console.print(
        f"{data}: {p['n_eligible']} of {p['n_candidates']} traces eligible (<= {p['max_missing']:.0%} "
        f"missing{', per-file rule' if max_missing == 'auto' else ''}; "
        f"{p['excluded_training_traces']} training traces skipped), {hide:.0%} hidden ({mode}), "
        f"seeds {p['seeds']}, unit {p['unit']}",
        highlight=False,
    )
    if len(labels) > 1:
        for label, lo in zip(labels, loaded):
            console.print(
                f"  {label}: {lo.path} ({lo.meta.get('description', lo.meta.get('kind'))})", highlight=False
            )
    width = max(18, max(len(x) for x in labels) + 7)
    console.print(
        f"{'method':<{width}}{'MAE':>9}{'95% CI':>20}{'rel':>7}{'r':>7}{'pos':>9}{'vs linear':>22}",
        soft_wrap=True,
    )
    names = [f"{x}{suffix}" for x in labels for suffix in ("", "_direct", "_map")]
    for name in names + ["linear", "local_fit", "kriging", "knn", "population_median"]:
        for run in res["runs"]:
            s = run[name]
            ci = f"[{s['mae_lo']:.1f}, {s['mae_hi']:.1f}]"
            ratio = f"{s['ratio']:.3f} [{s['ratio_lo']:.3f}, {s['ratio_hi']:.3f}]"
            console.print(
                f"{name:<{width}}{s['mae']:>9.1f}{ci:>20}{s['rel_mae']:>7.3f}{s['pearson']:>7.3f}"
                f"{s['pos_err']:>9.1f}{ratio:>22}",
                highlight=False,
                soft_wrap=True,
            )
    if runs > 1:
        for label in labels:
            m = res["mean"][label]
            console.print(
                f"mean over {runs} seeds: {label} MAE {m['mae']:.1f}, ratio to linear {m['ratio']:.3f}",
                highlight=False,
            )
    cal = res.get("calibration")
    if cal:
        console.print(
            f"calibration on the hidden spots (mean over {runs} seed(s); nominal 0.50 / 0.90; "
            f"proper scores in {p['unit']}, lower is better):",
            highlight=False,
        )
        if self_calibrate:
            for label in labels:
                fs = [r["_info"].get(f"self_calibration_{label}", {}).get("factor") for r in res["runs"]]
                fs = [f for f in fs if f is not None]
                if fs:
                    console.print(
                        f"  {label}: pointae_sd self-calibrated on the evaluated traces' visible spots "
                        f"(factor {min(fs):.3f}-{max(fs):.3f} over the seeds)",
                        highlight=False,
                    )
        rows = {}
        for label in labels:
            if label in cal:
                rows[label] = f"{label} (pointae_sd)"
                rows[f"{label}_gaussian"] = "  Gaussian alone"
        rows["kriging_posterior"] = "kriging posterior"
        w_cal = max(22, max(len(x) for x in rows.values()) + 2)
        console.print(
            f"{'predictive':<{w_cal}}{'pos 50%':>9}{'pos 90%':>9}{'dist 50%':>10}{'dist 90%':>10}"
            f"{'energy':>9}{'CRPS dist':>11}",
            soft_wrap=True,
        )
        for key, text in rows.items():
            c = cal[key]
            console.print(
                f"{text:<{w_cal}}{c['coverage_pos_50']:>9.3f}{c['coverage_pos_90']:>9.3f}"
                f"{c['coverage_dist_50']:>10.3f}{c['coverage_dist_90']:>10.3f}"
                f"{c['energy_score']:>9.1f}{c['crps_dist']:>11.1f}",
                highlight=False,
                soft_wrap=True,
            )
        for label, lo in zip(labels, loaded):
            note = lo.meta.get("uncertainty_note")
            if note and len(labels) > 1:
                console.print(f"  {label}: {note}", highlight=False)
            elif note:
                console.print(f"  {note}", highlight=False)
        if figure is not None:
            from pointae.impute.uncertainty import reliability_figure

            # legend names: the table's, each "Gaussian alone" row named after its model when several
            legend = {
                k: (f"{k[: -len('_gaussian')]}: " if len(labels) > 1 else "") + v.strip()
                for k, v in rows.items()
            }
            legend = {k: (v if k.endswith("_gaussian") else rows[k].strip()) for k, v in legend.items()}
            reliability_figure({legend[k]: cal[k] for k in rows}, figure)
            console.print(f"wrote {figure}")
    elif figure is not None:
        console.print("no calibration available for this model: no reliability diagram written")
    if denoising:
        per_model = {}
        if len(loaded) > 1:  # one planted-outlier draw for all: the traces no model was trained on
            from pointae.impute.api import trace_fingerprints

            seen = set().union(*(lo.train_fingerprints for lo in loaded))
            unseen = ~np.isin(np.array(trace_fingerprints(t.coords)), list(seen))
            t_d, excl = t[np.flatnonzero(unseen)], False
        else:
            t_d, excl = t, True
        for label, lo in zip(labels, loaded):
            per_model[label] = evaluate_denoising(
                t_d, model=lo, seed=seed, max_missing=max_missing, exclude_training=excl
            )
        res["denoising"] = per_model[labels[0]] if len(labels) == 1 else per_model
        rows_d = [(label, per_model[label]["pointae"]) for label in labels]
        rows_d += [(name, per_model[labels[0]][name]) for name in ("neighbour_rule", "none")]
        for name, s in rows_d:
            console.print(
                f"denoise {name:<15} precision {s['precision']:.3f} recall {s['recall']:.3f} "
                f"F1 {s['f1']:.3f} outlier position error {s['outlier_pos_err']:.1f}",
                highlight=False,
            )
        for label in labels:
            op = per_model[label]["pointae"].get("outlier_probability")
            if not op:
                continue
            console.print(
                f"outlier probability (pointae_outlier_prob) of {label} on planted outliers: Brier "
                f"{op['brier']:.4f}, ECE {op['ece']:.4f}, mean {op['mean_prob_outliers']:.3f} on planted / "
                f"{op['mean_prob_clean']:.3f} on other spots; expected {op['expected_outliers']:.0f} "
                f"outliers vs {op['planted_outliers']} planted",
                highlight=False,
            )
            for mean_p, frac, n in op["bins"]:
                console.print(
                    f"  predicted {mean_p:.3f}  planted fraction {frac:.3f}  ({n} spots)", highlight=False
                )
    if json_out is not None:
        with atomic_path(json_out) as tmp:
            tmp.write_text(json.dumps(res, indent=1, default=float))
        console.print(f"wrote {json_out}")


@command("train-imputer")
def train_imputer_cmd(
    data: Annotated[Path, typer.Argument(metavar="DATA", help="Trace file to train on (self-supervised).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory to write.")],
    epochs: Annotated[
        Optional[int], typer.Option(help="Training epochs (train.epochs; default 14).", min=1)
    ] = None,
    max_minutes: Annotated[
        Optional[float], typer.Option(help="Wall-clock budget in minutes (train.max_minutes; default 8).")
    ] = None,
    test_fraction: Annotated[
        Optional[float],
        typer.Option(help="Traces kept out of training and scored (data.test_fraction; 0.2)."),
    ] = None,
    split_seed: Annotated[
        Optional[int], typer.Option(help="Seed of the train/test split by trace (data.split_seed).")
    ] = None,
    seed: Annotated[
        Optional[int], typer.Option(help="Training seed: masks, batches, initialisation (train.seed).")
    ] = None,
    channels: Annotated[Optional[int], typer.Option(help="CNN width (model.channels; default 16).")] = None,
    refine_steps: Annotated[
        Optional[int],
        typer.Option(
            help="Stress-refinement steps unrolled inside the network (model.refine_steps; 10).", min=0
        ),
    ] = None,
    ensemble: Annotated[
        Optional[int],
        typer.Option(
            help="Train this many members (seeds seed, seed+1, ...) and average them (ensemble).", min=1
        ),
    ] = None,
    init: Annotated[
        Optional[Path], typer.Option(help="Fine-tune from this imputer (e.g. pretrained) (init).")
    ] = None,
    config: Annotated[
        Optional[list[Path]],
        typer.Option(
            "--config", "-c", help="YAML imputer config file(s) applied over the defaults, in order."
        ),
    ] = None,
    set_: Annotated[
        Optional[list[str]],
        typer.Option("--set", "-s", help="Override one key, e.g. --set train.epochs=24 (repeatable)."),
    ] = None,
    format: FormatOpt = None,
    columns: ColumnsOpt = None,
    unit: UnitOpt = None,
    pixel_size: PixelSizeOpt = None,
    duplicates: DuplicatesOpt = None,
    overwrite: Annotated[bool, OVERWRITE] = False,
) -> None:
    """Train an imputer on your own traces by hiding observed loci and learning to restore them.

    Short alias of 'pointae train --task inpaint --data DATA' (same config, same run directory);
    the options below are shortcuts for config keys. Precedence: defaults < --config < the
    shortcuts < --set.
    """
    from pointae.cli.train import train_imputer_run
    from pointae.data.io import read_traces

    shortcuts = [
        f"{key}={value}"
        for key, value in (
            ("train.epochs", epochs),
            ("train.max_minutes", max_minutes),
            ("data.test_fraction", test_fraction),
            ("data.split_seed", split_seed),
            ("train.seed", seed),
            ("model.channels", channels),
            ("model.refine_steps", refine_steps),
            ("ensemble", ensemble),
            ("init", None if init is None else json.dumps(str(init))),
        )
        if value is not None
    ]
    opts = read_options(format, columns, unit, pixel_size, duplicates)
    from pointae.errors import PointaeError

    if not data.is_file():
        raise PointaeError(f"{data}: no such file")
    t = read_traces(data, **opts.kwargs())
    train_imputer_run(data, out, config, set_, overwrite, shortcuts=shortcuts, traces=t)
