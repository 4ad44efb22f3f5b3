"""Imputation commands: ``impute``, ``evaluate-imputation``, ``train-imputer``."""

from __future__ import annotations

import json
import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from pointae.cli._app import OVERWRITE, command, console, err_console
from pointae.cli._read import (
    ColumnsOpt,
    DuplicatesOpt,
    FormatOpt,
    InFormat,
    PixelSizeOpt,
    UnitOpt,
    read_options,
)

_InFormat = InFormat


class _OutFormat(str, Enum):
    bintu = "bintu"
    fofct = "fofct"
    csv = "csv"
    h5 = "h5"
    pdb = "pdb"


class _Precision(str, Enum):
    auto = "auto"
    bf16 = "bf16"
    fp32 = "fp32"


class _HideMode(str, Enum):
    random = "random"
    runs = "runs"
    mixed = "mixed"
    detection = "detection"


_MODEL = typer.Option(
    "--model",
    "-m",
    help="Imputer run directory or .safetensors file (default: the model shipped with pointae).",
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
        Optional[_InFormat], typer.Option("--format", "-f", help="Input format (default: detected).")
    ] = None,
    to: Annotated[
        Optional[_OutFormat],
        typer.Option("--to", "-t", help="Output format (default: the input's format; FOF-CT for tables)."),
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
        _Precision, typer.Option(help="CNN precision: auto = bfloat16 where the CPU has it natively.")
    ] = _Precision.auto,
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

    from pointae.impute.stream import impute_file, samples_path
    from pointae.outputs import check_outputs

    fmt_out = to.value if to else None
    outs = [out] + ([samples_out or samples_path(out, fmt_out)] if samples else [])
    check_outputs(outs, inputs=[src], folders=[model], overwrite=overwrite)
    opts = read_options(None, columns, unit, pixel_size, duplicates)
    opts.format = format.value if format else opts.format

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
            model=model,
            denoise=denoise,
            threshold=threshold,
            to=fmt_out,
            read_options=opts.kwargs(),
            chunk_size=chunk_size,
            samples=samples,
            samples_out=samples_out,
            seed=seed,
            precision=precision.value,
            progress=progress,
        )
    console.print(
        f"wrote {info['n_traces']:,} traces x {info['n_loci']} loci to {out} ({info['format']}): "
        f"{info['n_imputed']:,} imputed, {info['n_corrected']:,} corrected, "
        f"{info['n_missing_left']:,} left missing; scale {info['scale']:.4g} {info['unit']}; "
        f"{info['traces_per_s']:,.0f} traces/s",
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
    model: Annotated[Optional[Path], _MODEL] = None,
    hide: Annotated[float, typer.Option(help="Fraction of observed loci to hide.", min=0.01, max=0.9)] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed of the first run.")] = 0,
    runs: Annotated[int, typer.Option(help="Number of runs (seeds seed..seed+runs-1).", min=1)] = 1,
    mode: Annotated[
        _HideMode,
        typer.Option(
            help="Hide isolated loci, runs of 2-4, a mix, or loci by the file's per-locus detection rates."
        ),
    ] = _HideMode.random,
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
    format: FormatOpt = None,
    columns: ColumnsOpt = None,
    unit: UnitOpt = None,
    pixel_size: PixelSizeOpt = None,
    duplicates: DuplicatesOpt = None,
    overwrite: Annotated[bool, OVERWRITE] = False,
) -> None:
    """Held-out masking protocol: hide observed loci, impute, score only them, against the baselines.

    Scores MAE / relative MAE / Pearson r of hidden-to-observed distances and the 3D position error,
    for the model (pointae: the imputed 3D coordinates; pointae_direct: the network placement before
    refinement; pointae_map: its raw predicted distances, not a 3D structure), linear interpolation,
    the population median map and kNN across traces, with bootstrap 95% intervals over traces.
    Traces the model was trained on are skipped automatically. Then the calibration of the
    predictive distribution (pointae_sd) on the hidden spots, next to the exact Gaussian kriging
    posterior: coverage of the central 50%/90% regions of the 3D position and of the distances to
    observed loci, energy score and CRPS (--figure: reliability diagram).
    """
    from pointae.data.io import read_traces
    from pointae.errors import PointaeError, atomic_path
    from pointae.impute.api import evaluate_denoising, evaluate_imputation
    from pointae.outputs import check_outputs

    outs = [p for p in (json_out, figure) if p is not None]
    if outs:
        check_outputs(outs, inputs=[data], folders=[model], overwrite=overwrite)
    if max_missing != "auto":
        try:
            max_missing = float(max_missing)
        except ValueError:
            raise PointaeError(f"--max-missing: expected a fraction or 'auto', got {max_missing!r}") from None
    t = read_traces(data, **read_options(format, columns, unit, pixel_size, duplicates).kwargs())
    res = evaluate_imputation(
        t, model=model, hide=hide, seed=seed, runs=runs, mode=mode.value, max_missing=max_missing
    )
    p = res["protocol"]
    console.print(
        f"{data}: {p['n_eligible']} of {p['n_candidates']} traces eligible (<= {p['max_missing']:.0%} "
        f"missing{', per-file rule' if max_missing == 'auto' else ''}; "
        f"{p['excluded_training_traces']} training traces skipped), {hide:.0%} hidden ({mode.value}), "
        f"seeds {p['seeds']}, unit {p['unit']}",
        highlight=False,
    )
    console.print(
        f"{'method':<18}{'MAE':>9}{'95% CI':>20}{'rel':>7}{'r':>7}{'pos':>9}{'vs linear':>22}", soft_wrap=True
    )
    for name in (
        "pointae",
        "pointae_direct",
        "pointae_map",
        "linear",
        "local_fit",
        "kriging",
        "knn",
        "population_median",
    ):
        for run in res["runs"]:
            s = run[name]
            ci = f"[{s['mae_lo']:.1f}, {s['mae_hi']:.1f}]"
            ratio = f"{s['ratio']:.3f} [{s['ratio_lo']:.3f}, {s['ratio_hi']:.3f}]"
            console.print(
                f"{name:<18}{s['mae']:>9.1f}{ci:>20}{s['rel_mae']:>7.3f}{s['pearson']:>7.3f}"
                f"{s['pos_err']:>9.1f}{ratio:>22}",
                highlight=False,
                soft_wrap=True,
            )
    if runs > 1:
        m = res["mean"]["pointae"]
        console.print(f"mean over {runs} seeds: pointae MAE {m['mae']:.1f}, ratio to linear {m['ratio']:.3f}")
    cal = res.get("calibration")
    if cal:
        console.print(
            f"calibration on the hidden spots (mean over {runs} seed(s); nominal 0.50 / 0.90; "
            f"proper scores in {p['unit']}, lower is better):",
            highlight=False,
        )
        console.print(
            f"{'predictive':<22}{'pos 50%':>9}{'pos 90%':>9}{'dist 50%':>10}{'dist 90%':>10}"
            f"{'energy':>9}{'CRPS dist':>11}",
            soft_wrap=True,
        )
        names = {
            "pointae": "pointae (pointae_sd)",
            "pointae_gaussian": "  Gaussian alone",
            "kriging_posterior": "kriging posterior",
        }
        for key, label in names.items():
            c = cal[key]
            console.print(
                f"{label:<22}{c['coverage_pos_50']:>9.3f}{c['coverage_pos_90']:>9.3f}"
                f"{c['coverage_dist_50']:>10.3f}{c['coverage_dist_90']:>10.3f}"
                f"{c['energy_score']:>9.1f}{c['crps_dist']:>11.1f}",
                highlight=False,
                soft_wrap=True,
            )
        if figure is not None:
            from pointae.impute.uncertainty import reliability_figure

            reliability_figure(
                {names[k].strip(): cal[k] for k in ("pointae", "pointae_gaussian", "kriging_posterior")},
                figure,
            )
            console.print(f"wrote {figure}")
    elif figure is not None:
        console.print("no calibration available for this model: no reliability diagram written")
    if denoising:
        res["denoising"] = evaluate_denoising(t, model=model, seed=seed, max_missing=max_missing)
        for name in ("pointae", "neighbour_rule", "none"):
            s = res["denoising"][name]
            console.print(
                f"denoise {name:<15} precision {s['precision']:.3f} recall {s['recall']:.3f} "
                f"F1 {s['f1']:.3f} outlier position error {s['outlier_pos_err']:.1f}",
                highlight=False,
            )
        op = res["denoising"]["pointae"].get("outlier_probability")
        if op:
            console.print(
                f"outlier probability (pointae_outlier_prob) on planted outliers: Brier {op['brier']:.4f}, "
                f"ECE {op['ece']:.4f}, mean {op['mean_prob_outliers']:.3f} on planted / "
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
    epochs: Annotated[int, typer.Option(help="Training epochs.", min=1)] = 14,
    max_minutes: Annotated[float, typer.Option(help="Wall-clock budget (minutes).")] = 8.0,
    test_fraction: Annotated[float, typer.Option(help="Traces kept out of training and scored.")] = 0.2,
    split_seed: Annotated[int, typer.Option(help="Seed of the train/test split by trace.")] = 0,
    seed: Annotated[int, typer.Option(help="Training seed (masks, batches, initialisation).")] = 0,
    channels: Annotated[int, typer.Option(help="CNN width.")] = 16,
    refine_steps: Annotated[
        int, typer.Option(help="Stress-refinement steps unrolled inside the network.", min=0)
    ] = 10,
    ensemble: Annotated[
        int, typer.Option(help="Train this many members (seeds seed, seed+1, ...) and average them.", min=1)
    ] = 1,
    init: Annotated[
        Optional[Path], typer.Option(help="Fine-tune from this imputer (e.g. pretrained).")
    ] = None,
    format: FormatOpt = None,
    columns: ColumnsOpt = None,
    unit: UnitOpt = None,
    pixel_size: PixelSizeOpt = None,
    duplicates: DuplicatesOpt = None,
) -> None:
    """Train an imputer on your own traces by hiding observed loci and learning to restore them."""
    from pointae.data.io import read_traces
    from pointae.impute.api import train_imputer
    from pointae.impute.fit import FitConfig
    from pointae.impute.model import ImputerConfig
    from pointae.outputs import check_output_dir

    check_output_dir(out, inputs=[data, init])
    t = read_traces(data, **read_options(format, columns, unit, pixel_size, duplicates).kwargs())
    metrics = train_imputer(
        t,
        out,
        epochs=epochs,
        max_minutes=max_minutes,
        test_fraction=test_fraction,
        split_seed=split_seed,
        init=init,
        fit_config=FitConfig(seed=seed),
        model_config=ImputerConfig(channels=channels, refine_steps=refine_steps),
        ensemble=ensemble,
        log=lambda s: console.print(s, highlight=False),
    )
    if "test" in metrics:
        p, lin = metrics["test"]["runs"][0]["pointae"], metrics["test"]["runs"][0]["linear"]
        console.print(
            f"held-out test traces: pointae MAE {p['mae']:.1f} vs linear {lin['mae']:.1f} "
            f"(ratio {p['ratio']:.3f} [{p['ratio_lo']:.3f}, {p['ratio_hi']:.3f}])",
            highlight=False,
        )
    console.print(f"wrote {out}")
