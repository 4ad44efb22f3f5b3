"""Data commands: ``info``, ``convert``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from pointae.cli._app import OVERWRITE, choice, command, console
from pointae.cli._read import ColumnsOpt, DuplicatesOpt, FormatOpt, PixelSizeOpt, UnitOpt, read_options
from pointae.errors import PointaeError

_FILE = typer.Argument(help="Trace file: Bintu CSV, FOF-CT table, long CSV/TSV table, ECSV or pointae HDF5.")


@command("info")
def info(
    file: Annotated[Path, _FILE],
    format: FormatOpt = None,
    columns: ColumnsOpt = None,
    unit: UnitOpt = None,
    pixel_size: PixelSizeOpt = None,
    duplicates: DuplicatesOpt = None,
    save_columns: Annotated[
        Optional[Path],
        typer.Option("--save-columns", help="Save the column mapping used (tables) as YAML for --columns."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON (for scripts).")] = False,
) -> None:
    """Summarise a trace file: traces, loci, detection per locus, unit, keys, duplicates, outliers, labels."""
    import warnings

    from pointae.data.qc import summarize_file

    opts = read_options(format, columns, unit, pixel_size, duplicates)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("always", UserWarning)
        s = summarize_file(file, **opts.kwargs())
    s["warnings"] = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    if save_columns is not None:
        from pointae.data.io.table import ColumnMap

        if not s.get("columns"):
            raise PointaeError(f"{file}: --save-columns applies to long tables read by column mapping")
        ColumnMap.parse(s["columns"]).save(save_columns)
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
    t.add_row("unit", f"{s['unit']} ({s['unit_source']})" if s.get("unit_source") else s["unit"])
    if s.get("trace_key"):
        t.add_row("traces keyed by", " + ".join(map(str, s["trace_key"])))
    if s.get("columns"):
        t.add_row("columns", s["columns"])
    if s.get("encoding"):
        t.add_row("encoding", f"{s['encoding']} (not UTF-8)")
    span = s["genomic_span"]
    if span:
        bp = f" ({span['bp'] / 1e6:.3g} Mb)" if span["bp"] else ""
        t.add_row("genomic span", f"{span['chrom']}:{span['start']:,}-{span['end']:,}{bp}")
    t.add_row("missing", f"{s['missing_fraction']:.2%}")
    det = s.get("detection_per_locus") or []
    if det:
        names = s["locus_names"]
        order = sorted(range(len(det)), key=det.__getitem__)
        low = ", ".join(f"{names[i]} {det[i]:.0%}" for i in order[:3])
        t.add_row(
            "detection per locus",
            f"median {sorted(det)[len(det) // 2]:.0%}, lowest: {low} (all with --json)",
        )
    dup = s.get("duplicates")
    if dup and dup.get("spots"):
        t.add_row(
            "duplicated spots",
            f"{dup['spots']:,} (trace, locus) with several spots, {dup['rows_dropped']:,} rows dropped "
            f"(policy {dup['policy']})",
        )
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
    for w in s.get("warnings", []):
        console.print(f"warning: {w}", style="yellow", highlight=False, markup=False, soft_wrap=True)


@command("convert")
def convert(
    src: Annotated[Path, typer.Argument(metavar="IN", help="Input trace file (any readable format).")],
    dst: Annotated[Path, typer.Argument(metavar="OUT", help="Output file (written atomically).")],
    to: Annotated[
        Optional[str],
        choice(
            "formats", "--to", "-t", where={"write": True}, help="Output format (default: from OUT's suffix)."
        ),
    ] = None,
    format: FormatOpt = None,
    columns: ColumnsOpt = None,
    unit: UnitOpt = None,
    pixel_size: PixelSizeOpt = None,
    duplicates: DuplicatesOpt = None,
    overwrite: Annotated[bool, OVERWRITE] = False,
) -> None:
    """Convert between trace formats (Bintu, FOF-CT, long CSV, tables, HDF5, PDB), keeping ids and labels."""
    from pointae.data.io import convert_file
    from pointae.outputs import check_outputs

    check_outputs([dst], inputs=[src], overwrite=overwrite)
    opts = read_options(format, columns, unit, pixel_size, duplicates)
    n, n_loci = convert_file(src, dst, to=to, **opts.kwargs())
    console.print(f"wrote {n:,} traces x {n_loci} loci to {dst}", highlight=False)
