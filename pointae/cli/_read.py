"""The reader options shared by every command that reads traces.

``--format --columns --unit --pixel-size --duplicates`` are declared once here and turned into a
:class:`pointae.data.io.ReadOptions`; commands take them as parameters and call
:func:`read_options`. No heavy import at module level (``pointae --help`` stays instant).
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from pointae import registry
from pointae.cli._app import choice

# the readable formats and duplicate policies (live views of pointae.registry)
READ_FORMAT_NAMES = registry.formats.where(read=True)
DUPLICATE_NAMES = registry.duplicates.where()

FormatOpt = Annotated[
    Optional[str],
    choice(
        "formats",
        "--format",
        "-f",
        where={"read": True},
        help="Input format (default: detected from the content).",
    ),
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
    Optional[str],
    choice(
        "duplicates",
        "--duplicates",
        help="Several spots for one (trace, locus): keep the one closest to its chain neighbours "
        "(default), the first, their mean, or stop with an error.",
    ),
]


def read_options(format=None, columns=None, unit=None, pixel_size=None, duplicates=None):
    """A :class:`pointae.data.io.ReadOptions` from the CLI values."""
    from pointae.data.io import ReadOptions

    return ReadOptions(
        format=format,
        columns=columns,
        unit=unit,
        pixel_size=pixel_size,
        duplicates=duplicates,
    )
