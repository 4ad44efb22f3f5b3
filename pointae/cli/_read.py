"""The reader options shared by every command that reads traces.

``--format --columns --unit --pixel-size --duplicates`` are declared once here and turned into a
:class:`pointae.data.io.ReadOptions`; commands take them as parameters and call
:func:`read_options`. No heavy import at module level (``pointae --help`` stays instant).
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Optional

import typer

# the names of pointae.data.io.READ_FORMATS / _common.DUPLICATE_POLICIES (a test checks they agree)
READ_FORMAT_NAMES = ("bintu", "fofct", "csv", "table", "h5")
DUPLICATE_NAMES = ("closest", "first", "mean", "error")

InFormat = Enum("InFormat", {f: f for f in READ_FORMAT_NAMES}, type=str)
Duplicates = Enum("Duplicates", {d: d for d in DUPLICATE_NAMES}, type=str)

FormatOpt = Annotated[
    Optional[InFormat],
    typer.Option("--format", "-f", help="Input format (default: detected from the content)."),
]
ColumnsOpt = Annotated[
    Optional[str],
    typer.Option(
        "--columns",
        help="Which column is what in a long table, e.g. trace=FOV_ID+Trace_ID,locus=start,"
        "x=x-nm,y=y-nm,z=z-nm (also chrom=, end=), or a mapping YAML saved by info --save-columns.",
    ),
]
UnitOpt = Annotated[
    Optional[str],
    typer.Option("--unit", help="Coordinate unit: nm, micron (um) or pixel (default: from the file)."),
]
PixelSizeOpt = Annotated[
    Optional[float],
    typer.Option("--pixel-size", help="Nanometres per pixel, with --unit pixel.", min=0.0),
]
DuplicatesOpt = Annotated[
    Optional[Duplicates],
    typer.Option(
        "--duplicates",
        help="Several spots for one (trace, locus): keep the one closest to its chain neighbours "
        "(default), the first, their mean, or stop with an error.",
    ),
]


def read_options(format=None, columns=None, unit=None, pixel_size=None, duplicates=None):
    """A :class:`pointae.data.io.ReadOptions` from the CLI values (enums unwrapped)."""
    from pointae.data.io import ReadOptions

    return ReadOptions(
        format=format.value if format is not None else None,
        columns=columns,
        unit=unit,
        pixel_size=pixel_size,
        duplicates=duplicates.value if duplicates is not None else None,
    )
