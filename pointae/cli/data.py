"""Data commands: ``info``, ``convert``."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from pointae.cli._app import OVERWRITE, command, console


class InFormat(str, Enum):
    bintu = "bintu"
    fofct = "fofct"
    csv = "csv"
    h5 = "h5"


class OutFormat(str, Enum):
    bintu = "bintu"
    fofct = "fofct"
    csv = "csv"
    h5 = "h5"
    pdb = "pdb"


_FILE = typer.Argument(help="Trace file: Bintu CSV, FOF-CT table, long CSV or pointae HDF5.")


@command("info")
def info(
    file: Annotated[Path, _FILE],
    format: Annotated[
        Optional[InFormat], typer.Option("--format", "-f", help="Input format (default: detected).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON (for scripts).")] = False,
) -> None:
    """Summarise a trace file: traces, loci, missing data, sizes, outliers, labels."""
    import warnings

    from pointae.data.qc import summarize_file

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        s = summarize_file(file, format=format.value if format else None)
    if as_json:
        typer.echo(json.dumps(s, indent=2))
        return
    _print_table(s)


def _fmt(v, unit: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.4g}{unit}"
    return f"{v}{unit}"


def _print_table(s: dict) -> None:
    from rich.table import Table

    u = f" {s['unit']}"
    t = Table(title=f"{s['source']} ({s['format']})", show_header=False, title_justify="left")
    t.add_column("key", style="bold")
    t.add_column("value")
    t.add_row("traces", f"{s['n_traces']:,}")
    t.add_row("loci", f"{s['n_loci']:,}")
    t.add_row("unit", s["unit"])
    span = s["genomic_span"]
    if span:
        bp = f" ({span['bp'] / 1e6:.3g} Mb)" if span["bp"] else ""
        t.add_row("genomic span", f"{span['chrom']}:{span['start']:,}-{span['end']:,}{bp}")
    t.add_row("missing", f"{s['missing_fraction']:.2%}")
    mp = s["missing_per_trace"]
    if mp:
        t.add_row(
            "missing per trace",
            f"median {mp['q50']:.1%}, 5-95% {mp['q05']:.1%}-{mp['q95']:.1%}, max {mp['max']:.1%}",
        )
    t.add_row("traces >50% missing", f"{s['traces_over_half_missing']:,}")
    t.add_row("median neighbour distance", _fmt(s["median_neighbour_distance"], u))
    rg = s["radius_of_gyration"]
    if rg:
        t.add_row(
            "radius of gyration",
            f"median {_fmt(rg['q50'], u)}, 5-95% {_fmt(rg['q05'])}-{_fmt(rg['q95'], u)}",
        )
    if s["outlier_fraction"] is not None:
        t.add_row(
            "outliers (neighbour rule)",
            f"{s['outlier_fraction']:.2%} of observed loci (> {s['outlier_factor']:g}x median neighbour "
            f"distance from both neighbours), in {s['outlier_traces']:,} traces",
        )
    extra = [c for c in s["meta_columns"] if c != "trace_id"]
    if extra:
        t.add_row("meta columns", ", ".join(extra))
    if s["layers"]:
        t.add_row("layers", ", ".join(s["layers"]))
    for col, counts in s["labels"].items():
        t.add_row(f"labels: {col}", ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    console.print(t)


@command("convert")
def convert(
    src: Annotated[Path, typer.Argument(metavar="IN", help="Input trace file (any readable format).")],
    dst: Annotated[Path, typer.Argument(metavar="OUT", help="Output file (written atomically).")],
    to: Annotated[
        Optional[OutFormat], typer.Option("--to", "-t", help="Output format (default: from OUT's suffix).")
    ] = None,
    format: Annotated[
        Optional[InFormat], typer.Option("--format", "-f", help="Input format (default: detected).")
    ] = None,
    overwrite: Annotated[bool, OVERWRITE] = False,
) -> None:
    """Convert between trace formats (Bintu CSV, FOF-CT, long CSV, HDF5, PDB), keeping ids, labels, layers."""
    from pointae.data.io import convert_file
    from pointae.outputs import check_outputs

    check_outputs([dst], inputs=[src], overwrite=overwrite)
    n, n_loci = convert_file(src, dst, to=to.value if to else None, format=format.value if format else None)
    console.print(f"wrote {n:,} traces x {n_loci} loci to {dst}", highlight=False)
