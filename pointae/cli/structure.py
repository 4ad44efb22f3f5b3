"""Structure commands: ``reconstruct``, ``view``, ``export-pdb``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from pointae.cli._app import OVERWRITE, choice, command, console
from pointae.cli._read import ColumnsOpt, DuplicatesOpt, FormatOpt, PixelSizeOpt, UnitOpt, read_options


@command("reconstruct")
def reconstruct(
    input: Annotated[
        Path,
        typer.Argument(
            help="Trace file (Bintu CSV, FOF-CT, long CSV, HDF5, PDB) or an .npy of distance maps."
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Output: .npy (coordinates N x L x 3) or any trace format by suffix."
        ),
    ],
    method: Annotated[
        str, choice("reconstructions", "--method", help="Classical MDS or weighted SMACOF (masked pairs).")
    ] = "smacof",
    unit: Annotated[str, choice("units", "--unit", help="Unit of .npy distance maps.")] = "nm",
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    overwrite: Annotated[bool, OVERWRITE] = False,
) -> None:
    """Rebuild 3D structures from distance maps (MDS or SMACOF) and report their distance error.

    From a trace file: its maps are rebuilt, aligned back onto the observed loci (Kabsch) and
    the RMSD is printed. From an .npy of maps (e.g. a model's predictions): unknown pairs (NaN)
    are left out of the fit.
    """
    from pointae.outputs import check_outputs
    from pointae.recon import reconstruct_file

    check_outputs([out], inputs=[input], overwrite=overwrite)
    rep = reconstruct_file(input, out, method=method, unit=unit)
    if as_json:
        typer.echo(json.dumps(rep, indent=2))
        return
    u = rep["unit"]
    console.print(
        f"{rep['n_traces']} traces x {rep['n_loci']} loci rebuilt by {rep['method']} "
        f"in {rep['seconds']:.1f} s"
    )
    if "median_rmsd" in rep:
        console.print(
            f"RMSD to the input (aligned): median {rep['median_rmsd']:.4g} {u}, "
            f"mean {rep['mean_rmsd']:.4g} {u}"
        )
    console.print(
        f"distance error: median MAE {rep['median_mae']:.4g} {u}, relative {rep['median_relative']:.3g}, "
        f"Pearson r {rep['median_pearson']:.4f}, stress-1 {rep['median_stress']:.3g}"
    )
    console.print(f"wrote {out}")


@command("view")
def view(
    file: Annotated[Path, typer.Argument(help="Trace file, .pdb, or .npy of coordinates (N x L x 3).")],
    trace: Annotated[Optional[str], typer.Option("--trace", "-t", help="Trace id to draw.")] = None,
    compare: Annotated[
        Optional[Path],
        typer.Option(help="Second file with the same trace (e.g. reconstructed/imputed); drawn aligned."),
    ] = None,
    model: Annotated[
        Optional[str],
        typer.Option(help="Imputation run (or 'default'): draw the trace imputed beside the observed one."),
    ] = None,
    png: Annotated[Optional[Path], typer.Option(help="Write a PNG instead of opening a window.")] = None,
    size: Annotated[str, typer.Option(help="PNG size WIDTHxHEIGHT.")] = "1024x768",
    gallery: Annotated[
        Optional[int], typer.Option(help="Render the first N traces into one PNG grid (with --png).")
    ] = None,
    overlay: Annotated[bool, typer.Option(help="Overlay the comparison instead of side by side.")] = False,
    overwrite: Annotated[bool, OVERWRITE] = False,
    format: FormatOpt = None,
    columns: ColumnsOpt = None,
    unit: UnitOpt = None,
    pixel_size: PixelSizeOpt = None,
    duplicates: DuplicatesOpt = None,
) -> None:
    """Show a trace in 3D (open3d): spheres and a tube coloured along the chain.

    Missing loci are absent, imputed ones grey and hollow, corrected ones ringed in red. Without
    a display pass --png to render offscreen. The reader options apply to FILE.
    """
    from pointae.data.io import read_structures
    from pointae.errors import PointaeError
    from pointae.outputs import check_outputs
    from pointae.viz.structure import parse_size, select_trace, view_traces

    if png is not None:
        model_dir = model if model not in (None, "default") else None
        check_outputs([png], inputs=[file, compare], folders=[model_dir], overwrite=overwrite)
    wh = parse_size(size)
    if compare is not None and model is not None:
        raise PointaeError("give either --compare or --model, not both")
    traces = read_structures(file, **read_options(format, columns, unit, pixel_size, duplicates).kwargs())
    if trace is None and gallery is None:
        raise PointaeError(f"give --trace ID (the first ids in {file} are {', '.join(traces.trace_ids[:3])})")
    other, label, reflect = None, "compared", False
    if compare is not None:
        other = read_structures(compare)
        label = Path(compare).name
        reflect = "reconstruction" in other.attrs  # rebuilt from maps: mirror images are equivalent
    elif model is not None and gallery is None:
        one = traces[select_trace(traces, trace)]
        if model == "default":
            from pointae.impute import impute_traces

            other = impute_traces(one)
        else:  # any trained run that can impute: an imputer, or an autoencoder trained to inpaint
            from pointae.api import PointAE

            other = PointAE.load(model).impute(one)
        label = f"imputed ({Path(str(model)).name})"
        traces = one._replace(layers={})  # left panel: what was measured
    written = view_traces(
        traces,
        trace=trace,
        compare=other,
        compare_label=label,
        allow_reflection=reflect,
        png=png,
        size=wh,
        gallery=gallery,
        overlay=overlay,
    )
    if written is not None:
        console.print(f"wrote {written}")


@command("export-pdb")
def export_pdb(
    input: Annotated[
        Path, typer.Argument(help="Trace file (any format pointae reads) or .npy of coordinates.")
    ],
    out: Annotated[
        Path, typer.Argument(help="Output .pdb (with --per-trace: stem of the files, or a folder).")
    ],
    trace: Annotated[Optional[str], typer.Option("--trace", "-t", help="Export only this trace id.")] = None,
    per_trace: Annotated[
        bool, typer.Option(help="One file per trace instead of one MODEL per trace.")
    ] = False,
    scale: Annotated[
        Optional[float],
        typer.Option(help="PDB units per data unit (default: nm x 0.1, micron x 100, bead x 1)."),
    ] = None,
    overwrite: Annotated[bool, OVERWRITE] = False,
) -> None:
    """Export traces to PDB for ChimeraX/PyMOL: one pseudo-atom per locus, B-factor = confidence/status."""
    from pointae.data.io.pdb import export_pdb as run

    files = run(input, out, trace=trace, per_trace=per_trace, scale=scale, overwrite=overwrite)
    if len(files) == 1:
        console.print(f"wrote {files[0]}")
    else:
        console.print(f"wrote {len(files)} files: {files[0]} ... {files[-1]}")
