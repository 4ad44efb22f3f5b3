"""Analysis commands: ``embed``, ``cluster``, ``compare``, ``demo`` (thin wrappers over pointae.analysis)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from pointae.cli._app import OVERWRITE, choice, command, console


def _csv_list(text: str, what: str, allowed) -> list[str]:
    from pointae.errors import PointaeError

    items = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in items if s not in allowed]
    if bad or not items:
        raise PointaeError(f"--{what}: {', '.join(bad) or 'empty'} not in {', '.join(allowed)}")
    return items


@command("embed")
def embed_cmd(
    run: Annotated[Path, typer.Argument(help="Run directory of a trained model (from 'pointae train').")],
    data: Annotated[Path, typer.Argument(help="Trace file to embed (any format pointae reads).")],
    out: Annotated[
        list[Path],
        typer.Option("--out", "-o", help="Output .h5ad (AnnData), .csv or .npy; repeat for several."),
    ] = [Path("emb.h5ad")],  # noqa: B006 - typer needs a literal default
    batch_size: Annotated[int, typer.Option(help="Traces per streamed chunk.")] = 1024,
    layout: Annotated[
        list[str], choice("layouts", "--layout", help="2D layout(s) to store in obsm (repeatable).")
    ] = ["phate"],  # noqa: B006
    no_layout: Annotated[
        bool, typer.Option("--no-layout", help="Skip the 2D layout (fast, huge inputs).")
    ] = False,
    no_baseline: Annotated[
        bool, typer.Option("--no-baseline", help="Skip the PCA-of-distances baseline.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Random state of the layout.")] = 0,
    overwrite: Annotated[bool, OVERWRITE] = False,
) -> None:
    """Encode traces with a trained model; write latents as AnnData (obs = metadata, obsm = latents)."""
    from pointae.analysis.embed import embed
    from pointae.outputs import check_outputs

    check_outputs(out, inputs=[data], folders=[run], overwrite=overwrite)
    res = embed(
        run,
        data,
        out=out,
        batch_size=batch_size,
        layouts=() if no_layout else list(layout),
        baseline=not no_baseline,
        seed=seed,
    )
    n, d = res.latents.shape
    console.print(f"embedded {n:,} traces into {d} dimensions")
    for p in res.paths:
        console.print(f"wrote {p}")


@command("cluster")
def cluster_cmd(
    emb: Annotated[Path, typer.Argument(help="Embedding .h5ad written by 'pointae embed'.")],
    method: Annotated[str, choice("layouts", "--method", help="2D layout for the figures.")] = "phate",
    clusters: Annotated[str, choice("clusterings", "--clusters", help="Clustering algorithm.")] = "kmeans",
    k: Annotated[
        Optional[int],
        typer.Option("--k", help="Number of clusters (default: classes of the first label, else 8)."),
    ] = None,
    label: Annotated[
        Optional[list[str]],
        typer.Option("--label", help="obs column to score against (repeatable; default: all)."),
    ] = None,
    out: Annotated[
        Optional[Path], typer.Option("--out", "-o", help="Figure folder (default: <EMB>_cluster).")
    ] = None,
    data: Annotated[
        Optional[Path], typer.Option("--data", help="Trace file embedded (default: the one recorded in EMB).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random state.")] = 0,
) -> None:
    """Layout + clusters of an embedding, metrics vs labels (with the PCA baseline), figures (PNG)."""
    from pointae.analysis.clustering import cluster_embedding
    from pointae.outputs import check_output_dir

    check_output_dir(out if out is not None else emb.with_name(f"{emb.stem}_cluster"), inputs=[emb, data])
    m = cluster_embedding(
        emb, out=out, layout=method, clusters=clusters, k=k, labels=label, seed=seed, data=data
    )
    from rich.table import Table

    t = Table(title=f"{m['n_obs']:,} traces, {m['clustering']} k={m['k']}, layout {m['layout']}")
    for c in ("label", "representation", "ARI", "NMI", "kNN acc", "silhouette"):
        t.add_column(c)
    for lab, row in m["labels"].items():
        for name, v in row.items():
            t.add_row(
                lab,
                name,
                f"{v['ari']:.3f}",
                f"{v['nmi']:.3f}",
                f"{v['knn_accuracy']:.3f}",
                f"{v['silhouette']:.3f}",
            )
    console.print(t)
    for name, p in m["figures"].items():
        console.print(f"{name}: {p}")


@command("compare")
def compare_cmd(
    data: Annotated[Path, typer.Option("--data", help="Trace file (any format pointae reads).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Report folder.")] = Path("runs/compare"),
    reprs: Annotated[
        str, typer.Option("--reprs", help="Comma-separated representations or encoders.")
    ] = "map,graph,voxel",
    tasks: Annotated[
        str, typer.Option("--tasks", help="Comma-separated tasks.")
    ] = "autoencode,denoise,inpaint",
    runs: Annotated[
        Optional[Path],
        typer.Option("--runs", help="Folder of runs <repr>-<task> to reuse (missing ones are trained)."),
    ] = None,
    set_: Annotated[
        Optional[list[str]], typer.Option("--set", help="Config override section.key=value for every run.")
    ] = None,
    label: Annotated[
        Optional[list[str]],
        typer.Option("--label", help="Label column to score clusterings against (repeatable)."),
    ] = None,
    device: Annotated[Optional[str], typer.Option(help="train.accelerator: cpu, gpu or auto.")] = None,
    layout: Annotated[
        str, choice("layouts", "--layout", help="2D layout of the clustering figures.")
    ] = "phate",
    regimes: Annotated[
        str,
        typer.Option(
            "--regimes",
            help="bottleneck (everything through the latent), skip (the task models), or both.",
        ),
    ] = "bottleneck,skip",
    skip_reprs: Annotated[
        Optional[str],
        typer.Option(
            "--skip-reprs", help="Representations run in the skip regime (default: all of --reprs)."
        ),
    ] = None,
) -> None:
    """Train (or reuse) one model per representation x task x regime; write the report and metrics.json.

    Writes report.html, report.md and metrics.json. Regimes: bottleneck (denoise/inpaint trained as
    plain autoencoders, runs <repr>-<task>-bottleneck) and skip (the task models with skip paths,
    runs <repr>-<task>).
    """
    from pointae.analysis.compare import REGIMES, compare, summary_text
    from pointae.config import TASK_NAMES, model_names
    from pointae.outputs import check_output_dir

    check_output_dir(out, inputs=[data])
    res = compare(
        data,
        reprs=_csv_list(reprs, "reprs", model_names()),
        tasks=_csv_list(tasks, "tasks", TASK_NAMES),
        regimes=_csv_list(regimes, "regimes", REGIMES),
        skip_reprs=None if skip_reprs is None else _csv_list(skip_reprs, "skip-reprs", model_names()),
        out=out,
        runs=runs,
        overrides=set_ or [],
        labels=label,
        device=device,
        layout=layout,
        log=lambda s: console.print(s, markup=False, highlight=False),
    )
    typer.echo(summary_text(res.metrics))
    for text in res.metrics["verdict"].values():
        typer.echo(text)
    typer.echo(f"report: {res.report}")


@command("demo")
def demo_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("runs/demo"),
    large: Annotated[
        bool, typer.Option("--large", help="Bigger data and training (meant for a GPU).")
    ] = False,
    device: Annotated[Optional[str], typer.Option(help="train.accelerator: cpu, gpu or auto.")] = None,
    seed: Annotated[int, typer.Option(help="Simulation seed.")] = 0,
    threads: Annotated[
        Optional[int],
        typer.Option(help="CPU threads for simulation and training (default: all cores; 1 on a shared box)."),
    ] = None,
    set_: Annotated[
        Optional[list[str]], typer.Option("--set", help="Extra config override for every run.")
    ] = None,
) -> None:
    """The main job: simulate a labelled mixture, compare map/graph/voxel, print summary + report path."""
    import time

    from pointae.analysis.compare import summary_text
    from pointae.analysis.demo import demo

    t0 = time.perf_counter()
    res = demo(
        out=out,
        size="large" if large else "small",
        device=device,
        seed=seed,
        overrides=tuple(set_ or ()),
        threads=threads,
        log=lambda s: console.print(s, markup=False, highlight=False),
    )
    typer.echo(summary_text(res.metrics))
    for text in res.metrics["verdict"].values():
        typer.echo(text)
    typer.echo(f"finished in {time.perf_counter() - t0:.0f} s")
    typer.echo(f"report: {res.report}")
