"""Simulation command: ``pointae simulate``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from pointae.cli._app import OVERWRITE, choice, command, console
from pointae.errors import PointaeError


def parse_mix(text: str) -> dict[str, float]:
    """``"wt:0.5,no-cohesin:0.5"`` -> ``{"wt": 0.5, "no-cohesin": 0.5}``."""
    out: dict[str, float] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, w = part.rpartition(":")
        if not sep or not name:
            raise PointaeError(f"--mix {text!r}: expected preset:weight[,preset:weight...]")
        try:
            out[name.strip()] = float(w)
        except ValueError:
            raise PointaeError(f"--mix {text!r}: weight {w!r} is not a number") from None
    if not out:
        raise PointaeError("--mix is empty")
    return out


def parse_sets(items: list[str]) -> dict:
    """``["dt=0.1", "lefs=false"]`` -> ``{"dt": 0.1, "lefs": False}``."""
    from pointae.sim.presets import parse_value

    out = {}
    for item in items:
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            raise PointaeError(f"--set {item!r}: expected key=value")
        out[key.strip()] = parse_value(val)
    return out


@command("simulate")
def simulate_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file (.h5 native; format by suffix).")],
    preset: Annotated[str, choice("presets", "--preset", help="Condition to simulate.")] = "wt",
    n: Annotated[int, typer.Option("--n", min=1, help="Number of conformations.")] = 10_000,
    loci: Annotated[int, typer.Option("--loci", min=2, help="Loci per trace.")] = 64,
    seed: Annotated[int, typer.Option(help="Random seed (identical output for a seed on CPU).")] = 0,
    ctcf: Annotated[
        Optional[Path], typer.Option(help="CTCF site table (tsv: chrom,start,end,fc[,summitDist]).")
    ] = None,
    region: Annotated[
        Optional[str], typer.Option(help="Region chrom:start-end tiled by the loci (needed with --ctcf).")
    ] = None,
    mix: Annotated[
        Optional[str],
        typer.Option(help="Mixture of presets, e.g. wt:0.5,no-cohesin:0.5 (overrides --preset)."),
    ] = None,
    device: Annotated[str, choice("devices", "--device", help="Where to integrate.")] = "cpu",
    set_: Annotated[
        Optional[list[str]],
        typer.Option("--set", help="Override a parameter, key=value (repeatable), e.g. --set dt=0.2."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    overwrite: Annotated[bool, OVERWRITE] = False,
) -> None:
    """Simulate chromatin conformations with loop extrusion (labelled, independent samples)."""
    from pointae.outputs import check_outputs
    from pointae.sim import simulate, simulate_mixture

    check_outputs([out], inputs=[ctcf], overwrite=overwrite)
    overrides = parse_sets(set_ or [])
    kw = dict(
        n=n,
        n_loci=loci,
        seed=seed,
        device=device,
        ctcf=ctcf,
        region=region,
        progress=not quiet,
        **overrides,
    )
    if mix:
        traces = simulate_mixture(parse_mix(mix), **kw)
    else:
        traces = simulate(preset, **kw)
    traces.save(out)
    if not quiet:
        conds = traces.meta["condition"].value_counts().to_dict()
        console.print(f"wrote {len(traces)} conformations x {traces.n_loci} loci to {out} ({conds})")
