"""Imputation commands: ``impute``, ``evaluate-imputation``, ``train-imputer``."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from pointae.cli._app import OVERWRITE, command, console
from pointae.cli._read import ColumnsOpt, DuplicatesOpt, InFormat, PixelSizeOpt, UnitOpt, read_options

_InFormat = InFormat


class _OutFormat(str, Enum):
    bintu = "bintu"
    fofct = "fofct"
    csv = "csv"
    h5 = "h5"
    pdb = "pdb"


class _HideMode(str, Enum):
    random = "random"
    runs = "runs"
    mixed = "mixed"


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
    columns: ColumnsOpt = None,
    unit: UnitOpt = None,
    pixel_size: PixelSizeOpt = None,
    duplicates: DuplicatesOpt = None,
    overwrite: Annotated[bool, OVERWRITE] = False,
) -> None:
    """Fill missing loci (and with --denoise correct outliers); every original spot is kept bit for bit.

    Imputed/corrected spots are marked in the per-spot columns pointae_status
    (observed|imputed|corrected|missing) and pointae_confidence; provenance goes to the header/attributes.
    """
    from pointae.data.io import default_write_format, read_traces, write_traces
    from pointae.errors import PointaeError
    from pointae.impute.api import impute_traces
    from pointae.outputs import check_outputs

    check_outputs([out], inputs=[src], folders=[model], overwrite=overwrite)
    opts = read_options(None, columns, unit, pixel_size, duplicates)
    opts.format = format.value if format else opts.format
    t = read_traces(src, **opts.kwargs())
    fmt = to.value if to else default_write_format(t)
    if Path(out).resolve() == Path(src).resolve():
        raise PointaeError(f"{out}: output would overwrite the input")
    res = impute_traces(t, model=model, denoise=denoise, threshold=threshold)
    info = res.attrs["pointae_impute"]
    res.attrs["pointae_impute"] = dict(info, input=str(src))
    kw = {}
    if fmt == "bintu":  # the free-text first line is the Bintu format's only header: add provenance
        base = str(res.attrs.get("description") or "").strip()
        kw["description"] = (
            f"{base} [pointae {info['pointae_version']} impute: model {info['model']}, "
            f"scale {info['scale']:.4g} {info['scale_unit']}, {info['n_imputed']} imputed, "
            f"{info['n_corrected']} corrected; see columns pointae_status, pointae_confidence]"
        ).strip()
    write_traces(res, out, format=fmt, **kw)
    console.print(
        f"wrote {len(res):,} traces x {res.n_loci} loci to {out} ({fmt}): {info['n_imputed']:,} imputed, "
        f"{info['n_corrected']:,} corrected, {info['n_missing_left']:,} left missing; "
        f"scale {info['scale']:.4g} {info['scale_unit']}",
        highlight=False,
    )


@command("evaluate-imputation")
def evaluate_imputation_cmd(
    data: Annotated[Path, typer.Argument(metavar="DATA", help="Trace file to evaluate on.")],
    model: Annotated[Optional[Path], _MODEL] = None,
    hide: Annotated[float, typer.Option(help="Fraction of observed loci to hide.", min=0.01, max=0.9)] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed of the first run.")] = 0,
    runs: Annotated[int, typer.Option(help="Number of runs (seeds seed..seed+runs-1).", min=1)] = 1,
    mode: Annotated[
        _HideMode, typer.Option(help="Hide isolated loci, runs of 2-4, or a mix.")
    ] = _HideMode.random,
    max_missing: Annotated[float, typer.Option(help="Use traces with at most this fraction missing.")] = 0.1,
    denoising: Annotated[
        bool, typer.Option("--denoising", help="Also run the planted-outlier protocol (5% outliers).")
    ] = False,
    json_out: Annotated[
        Optional[Path], typer.Option("--json", help="Write all results as JSON here.")
    ] = None,
    format: Annotated[
        Optional[_InFormat], typer.Option("--format", "-f", help="Input format (default: detected).")
    ] = None,
    overwrite: Annotated[bool, OVERWRITE] = False,
) -> None:
    """Held-out masking protocol: hide observed loci, impute, score only them, against the baselines.

    Scores MAE / relative MAE / Pearson r of hidden-to-observed distances and the 3D position error,
    for the model (pointae: the imputed 3D coordinates; pointae_direct: the network placement before
    refinement; pointae_map: its raw predicted distances, not a 3D structure), linear interpolation,
    the population median map and kNN across traces, with bootstrap 95% intervals over traces.
    Traces the model was trained on are skipped automatically.
    """
    from pointae.data.io import read_traces
    from pointae.errors import PointaeError, atomic_path
    from pointae.impute.api import evaluate_denoising, evaluate_imputation
    from pointae.outputs import check_outputs

    if json_out is not None:
        check_outputs([json_out], inputs=[data], folders=[model], overwrite=overwrite)
    t = read_traces(data, format=format.value if format else None)
    try:
        res = evaluate_imputation(
            t, model=model, hide=hide, seed=seed, runs=runs, mode=mode.value, max_missing=max_missing
        )
    except PointaeError as e:
        if "undefined" not in str(e):
            raise
        from pointae.impute.protocol import eligible

        n_ok = int(eligible(t.mask, max_missing).sum())
        raise PointaeError(
            f"{data}: {n_ok} usable trace(s) (at most {max_missing:.0%} loci missing) are too few: the "
            "population baselines predict each hidden locus pair from the other traces, and no other "
            "trace observes some of them; use a file with more traces or raise --max-missing"
        ) from None
    p = res["protocol"]
    console.print(
        f"{data}: {res['runs'][0]['_info']['n_traces']} traces (<= {max_missing:.0%} missing; "
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
    if denoising:
        res["denoising"] = evaluate_denoising(t, model=model, seed=seed, max_missing=max_missing)
        for name in ("pointae", "neighbour_rule", "none"):
            s = res["denoising"][name]
            console.print(
                f"denoise {name:<15} precision {s['precision']:.3f} recall {s['recall']:.3f} "
                f"F1 {s['f1']:.3f} outlier position error {s['outlier_pos_err']:.1f}",
                highlight=False,
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
    format: Annotated[
        Optional[_InFormat], typer.Option("--format", "-f", help="Input format (default: detected).")
    ] = None,
) -> None:
    """Train an imputer on your own traces by hiding observed loci and learning to restore them."""
    from pointae.data.io import read_traces
    from pointae.impute.api import train_imputer
    from pointae.impute.fit import FitConfig
    from pointae.impute.model import ImputerConfig
    from pointae.outputs import check_output_dir

    check_output_dir(out, inputs=[data, init])
    t = read_traces(data, format=format.value if format else None)
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
