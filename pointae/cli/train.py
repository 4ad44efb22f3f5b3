"""``pointae train``: train a model (any registered representation, encoder and task)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from pointae.cli._app import choice, command, console


@command("train")
def train(
    repr: Annotated[
        Optional[str], choice("representations", "--repr", help="Representation (default: from config, map).")
    ] = None,
    encoder: Annotated[
        Optional[str],
        choice(
            "encoders",
            "--encoder",
            help="Encoder (default: the representation's own); alone, it sets the representation it reads.",
        ),
    ] = None,
    task: Annotated[
        Optional[str], choice("tasks", "--task", help="Task (default: from config, autoencode).")
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

    Precedence: built-in defaults < --config files < --repr/--encoder/--task/--data/--out < --set.
    With --resume the run's saved config.yaml is the base instead of the defaults.
    """
    from pointae.config import encoder_overrides, load_config
    from pointae.errors import PointaeError
    from pointae.train import fit, resume_config

    direct = []
    if encoder is not None:
        direct += encoder_overrides(encoder)
    if repr is not None:
        direct.append(f"model.repr={repr}")
    if task is not None:
        direct.append(f"task.name={task}")
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
        for key, have, want in (
            ("model.repr", cfg.model.repr, repr),
            ("model.encoder", cfg.model.encoder_name, encoder),
            ("task.name", cfg.task.name, task),
        ):
            if want is not None and have != want:
                raise PointaeError(f"{out}: the run was trained with {key}={have}, not {want}")
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
    key = m.get("focus") or "observed"
    unit = m.get("unit", "")

    def fmt(s):
        v = s.get(key, {}).get("mae_data")
        return "-" if v is None else f"{v:.4g} {unit}"

    parts = [f"model {fmt(m['model'])}"] + [f"{k} {fmt(v)}" for k, v in m.get("baselines", {}).items()]
    t = m.get("training", {})
    console.print(f"run: {run_dir}")
    console.print(f"test MAE on {key} pairs: " + ", ".join(parts))
    console.print(
        f"params {m.get('param_count')}, latent {m.get('latent_dim')}, epochs {t.get('epochs')}, "
        f"train {t.get('train_samples_per_s') or 0:.0f} samples/s, "
        f"inference {m.get('inference_samples_per_s') or 0:.0f} samples/s"
    )
