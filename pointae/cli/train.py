"""``pointae train``: train a model (any registered representation, encoder and task), or the imputer.

``--task inpaint --data FILE`` trains the imputer (:mod:`pointae.impute`, the model registered as
``imputer`` in :data:`pointae.registry.models`) unless ``--repr``/``--encoder`` or ``--model
autoencoder`` asks for an autoencoder; ``train-imputer`` (:mod:`pointae.cli.impute`) is its short alias.
"""

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
    model: Annotated[
        Optional[str],
        choice(
            "models",
            "--model",
            extra=("autoencoder",),
            help="autoencoder or imputer (default: the imputer for --task inpaint on a --data file "
            "without --repr, else an autoencoder).",
        ),
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

    --task inpaint --data FILE trains the imputer unless --repr, --encoder or --model autoencoder
    is given (its config has the sections data, model and train, e.g. --set train.epochs=24
    --set ensemble=2; see docs/impute.md).
    """
    from pointae.errors import PointaeError

    kind = model
    if kind is None:
        imputer = task == "inpaint" and data is not None and repr is None and encoder is None and not resume
        kind = "imputer" if imputer else "autoencoder"
    if kind == "imputer":
        if repr is not None or encoder is not None or (task is not None and task != "inpaint"):
            raise PointaeError(
                "--model imputer is the inpaint task on traces: drop --repr / --encoder / --task"
            )
        if resume:
            raise PointaeError("--resume is for autoencoder runs; an imputer run is retrained (--overwrite)")
        train_imputer_run(data, out, config, set_, overwrite)
        return
    _train_autoencoder(repr, encoder, task, data, out, config, set_, resume, overwrite)


def train_imputer_run(
    data: Path | None,
    out: Path | None,
    config: list[Path] | None,
    set_: list[str] | None,
    overwrite: bool = False,
    shortcuts: list[str] | None = None,
    traces=None,
) -> Path:
    """Train the imputer (``train --task inpaint --data FILE`` and ``train-imputer``).

    Precedence: defaults < --config files < ``shortcuts`` (the alias's --epochs etc.) and
    --data/--out < --set.
    """
    import json

    from pointae.errors import PointaeError
    from pointae.impute.fit import load_imputer_config
    from pointae.models.registry import model_part
    from pointae.outputs import check_output_dir

    if data is not None and not data.is_file():
        raise PointaeError(f"{data}: no such file")
    direct = list(shortcuts or [])
    if data is not None:
        direct.append(f"data.path={json.dumps(str(data))}")  # quoted: a path is never read as a number
    if out is not None:
        direct.append(f"out={json.dumps(str(out))}")
    if overwrite:
        direct.append("overwrite=true")
    try:
        cfg = load_imputer_config(config or [], direct + list(set_ or []))
    except PointaeError as e:
        raise PointaeError(
            f"{e} (imputer config; --repr or --model autoencoder trains an autoencoder)"
        ) from None
    if not cfg.data.path:
        raise PointaeError("the imputer trains on your traces: give --data FILE")
    check_output_dir(cfg.out or "runs/imputer", inputs=[cfg.data.path, cfg.init, *(config or [])])
    fit = model_part("imputer", "fit")
    run_dir = Path(fit(cfg, traces=traces, log=lambda s: console.print(s, highlight=False)))
    _imputer_summary(run_dir)
    return run_dir


def _imputer_summary(run_dir: Path) -> None:
    import json

    p = Path(run_dir) / "metrics.json"
    m = json.loads(p.read_text()) if p.is_file() else {}
    if "test" in m:
        run = m["test"]["runs"][0]
        pt, lin = run["pointae"], run["linear"]
        unit = m["test"]["protocol"].get("unit", "")
        console.print(
            f"held-out test traces ({run['_info']['n_traces']} eligible): pointae MAE {pt['mae']:.4g} {unit} "
            f"vs linear {lin['mae']:.4g} {unit} (ratio {pt['ratio']:.3f} [{pt['ratio_lo']:.3f}, "
            f"{pt['ratio_hi']:.3f}])",
            highlight=False,
        )
    console.print(f"run: {run_dir}", highlight=False)


def _train_autoencoder(repr, encoder, task, data, out, config, set_, resume: bool, overwrite: bool) -> None:
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
