"""``pointae train``: train a map/graph/voxel model for autoencode/denoise/inpaint."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from pointae.cli._app import command, console


class Repr(str, Enum):
    map = "map"
    graph = "graph"
    voxel = "voxel"


class TaskName(str, Enum):
    autoencode = "autoencode"
    denoise = "denoise"
    inpaint = "inpaint"
    contrast = "contrast"


@command("train")
def train(
    repr: Annotated[
        Optional[Repr], typer.Option("--repr", help="Representation/encoder (default: from config, map).")
    ] = None,
    task: Annotated[
        Optional[TaskName], typer.Option("--task", help="Task (default: from config, autoencode).")
    ] = None,
    data: Annotated[
        Optional[Path],
        typer.Option("--data", help="Trace file to train on (default: simulate the default mixture)."),
    ] = None,
    out: Annotated[
        Optional[Path], typer.Option("--out", "-o", help="Run directory (default: runs/<repr>-<task>).")
    ] = None,
    config: Annotated[
        Optional[list[Path]],
        typer.Option("--config", "-c", help="YAML config file(s) applied over the defaults, in order."),
    ] = None,
    set_: Annotated[
        Optional[list[str]],
        typer.Option("--set", "-s", help="Override one key, e.g. --set train.max_epochs=5 (repeatable)."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out from its last checkpoint.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Reuse an --out directory that already holds a run.")
    ] = False,
) -> None:
    """Train a model and write its run directory (config, split, weights, history, metrics).

    Precedence: built-in defaults < --config files < --repr/--task/--data/--out < --set.
    With --resume the run's saved config.yaml is the base instead of the defaults.
    """
    from pointae.config import load_config
    from pointae.errors import PointaeError
    from pointae.train import fit, resume_config

    direct = []
    if repr is not None:
        direct.append(f"model.repr={repr.value}")
    if task is not None:
        direct.append(f"task.name={task.value}")
    if data is not None and not data.is_file():
        raise PointaeError(f"{data}: no such file")
    if out is not None:
        from pointae.outputs import check_output_dir

        check_output_dir(out, inputs=[data, *(config or [])])
    overrides = direct + list(set_ or [])
    if resume:
        if out is None:
            raise PointaeError("--resume needs --out, the run directory to continue")
        cfg = resume_config(out, config or [], list(set_ or []))
        for key, want in (("model.repr", repr), ("task.name", task)):
            sec, name = key.split(".")
            have = getattr(getattr(cfg, sec), name)
            if want is not None and have != want.value:
                raise PointaeError(f"{out}: the run was trained with {key}={have}, not {want.value}")
    else:
        cfg = load_config(config or [], overrides)
        if data is not None:
            cfg.data.path = str(data)
        if out is not None:
            cfg.out = str(out)
        if overwrite:
            cfg.overwrite = True
    run_dir = fit(cfg, resume=resume)
    _summary(run_dir)


def _summary(run_dir: Path) -> None:
    import json

    p = Path(run_dir) / "metrics.json"
    if not p.is_file():  # a non-zero DDP rank
        return
    m = json.loads(p.read_text())
    key = m.get("headline") or "mae"
    unit = m.get("unit", "")

    def fmt(s):
        v = s.get(key)
        return "-" if v is None else f"{v:.4g} {unit}"

    parts = [f"model {fmt(m['model'])}"] + [f"{k} {fmt(v)}" for k, v in m.get("baselines", {}).items()]
    t = m.get("training", {})
    console.print(f"run: {run_dir}")
    console.print(f"test {key} ({m.get('scored', 'observed pairs')}): " + ", ".join(parts))
    console.print(
        f"params {m.get('param_count')}, latent {m.get('latent_dim')}, epochs {t.get('epochs')}, "
        f"train {t.get('train_samples_per_s') or 0:.0f} samples/s, "
        f"inference {m.get('inference_samples_per_s') or 0:.0f} samples/s"
    )
