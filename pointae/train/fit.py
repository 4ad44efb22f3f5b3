"""``fit(cfg)``: train one model as configured and write its run directory.

Builds the data (a traces file or the default simulated mixture), splits it by trace, scales
coordinates by one dataset scale (the median neighbour distance of the training split), corrupts
them per task *before* the representation, trains with AdamW + warmup/cosine schedule + early
stopping + gradient clipping on Lightning (CPU threads, CUDA + mixed precision when present, DDP
when asked), writes the run directory (:mod:`pointae.train.runfiles`) and scores the test split
with :func:`pointae.train.evaluate`.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from pointae.config import RunConfig, save_config
from pointae.data.transforms import MapScaler
from pointae.errors import PointaeError
from pointae.tasks.base import build_task
from pointae.train.data import TracesDataModule, _version, launcher_rank, load_traces, make_split
from pointae.train.evaluate import evaluate
from pointae.train.module import (
    NonFiniteError,
    NonFiniteGuard,
    PointAEModule,
    Throughput,
    _non_finite_message,
    _ProgressBar,
    _quiet_lightning,
    _trainer_kwargs,
)
from pointae.train.runfiles import (
    MODEL_FORMAT,
    _jsonable,
    _split_from_json,
    _split_to_json,
    resolve_hparams,
    safe_load_checkpoint,
    save_model,
    write_history,
    write_json,
)


def fit(
    cfg: RunConfig,
    traces=None,
    *,
    resume: bool = False,
    callbacks: list[Callback] | None = None,
) -> Path:
    """Train a model as configured and write its run directory.

    Parameters
    ----------
    cfg
        The :class:`~pointae.config.RunConfig` (``cfg.out`` is the run directory; default
        ``runs/<repr>-<task>``).
    traces
        A :class:`~pointae.Traces` to train on; when None, loaded from ``cfg.data`` (file or
        the default simulated mixture).
    resume
        Continue the run in ``cfg.out`` from its ``last.ckpt`` (loaded with
        ``weights_only=True``), with the saved split.
    callbacks
        Extra Lightning callbacks (e.g. for tests).

    Returns
    -------
    pathlib.Path
        The run directory.
    """
    from pointae.data.reprs import build_repr
    from pointae.models import build_model, param_count

    cfg = cfg.validate()
    run_dir = Path(cfg.out or f"runs/{cfg.model.repr}-{cfg.task.name}")
    cfg.out = str(run_dir)
    ckpt_path = run_dir / "last.ckpt"
    if resume:
        if not ckpt_path.is_file():
            raise PointaeError(f"{ckpt_path}: no checkpoint to resume from")
        safe_load_checkpoint(ckpt_path)  # refuse anything that is not plain weights, before Lightning sees it
    elif launcher_rank() == 0 and run_dir.exists() and any(run_dir.iterdir()) and not cfg.overwrite:
        if (
            (run_dir / "config.yaml").exists()
            or (run_dir / "model.safetensors").exists()
            or ckpt_path.exists()
        ):
            raise PointaeError(
                f"{run_dir} already holds a run: use --resume, another --out or --set overwrite=true"
            )

    _quiet_lightning()
    threads = cfg.train.threads or os.cpu_count() or 1
    if not cfg.train.threads and "ddp" in cfg.train.strategy and isinstance(cfg.train.devices, int):
        threads = max(1, threads // max(1, cfg.train.devices))  # CPU processes share the cores
    torch.set_num_threads(threads)
    L.seed_everything(cfg.train.seed, workers=True, verbose=False)

    if traces is None:
        traces = load_traces(cfg)
    if traces.n_loci < 3:
        raise PointaeError(f"need at least 3 loci per trace, got {traces.n_loci}")
    from pointae.data.validate import check_memory

    bs, n_loci = min(cfg.train.batch_size, len(traces)), traces.n_loci
    check_memory(  # a batch holds at least its target map, the prediction and their masks/gradients
        16.0 * bs * n_loci * n_loci,
        f"training batches of {bs} traces x {n_loci:,} loci (distance maps)",
        hint="use fewer loci (bin them) or a smaller train.batch_size",
    )
    split_path = run_dir / "split.json"
    if resume and split_path.is_file():
        split = _split_from_json(traces, json.loads(split_path.read_text()), split_path)
    else:
        split = make_split(traces, cfg)
    scale = MapScaler("dataset").fit(traces[split["train"]]).scale
    coords = {k: traces.coords[v] / np.float32(scale) for k, v in split.items()}

    task = build_task(cfg.task)
    rep = build_repr(cfg.model.repr, **cfg.model.repr_options)
    hparams = resolve_hparams(cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.train.seed)
        model = build_model(
            cfg.model.encoder_name,
            cfg.task.name,
            traces.n_loci,
            cfg.model.latent_dim,
            cfg.model.decoder,
            rep=rep,
            **hparams,
        )
    module = PointAEModule(model, task, cfg)
    dm = TracesDataModule(coords, task, rep, cfg.train.batch_size, cfg.train.num_workers, cfg.train.seed)

    throughput = Throughput()
    best_cb = ModelCheckpoint(
        dirpath=run_dir,
        filename="best",
        monitor="val_loss",
        mode="min",
        save_top_k=1,
        enable_version_counter=False,
    )
    last_cb = ModelCheckpoint(
        dirpath=run_dir,
        filename="last",
        save_top_k=1,  # no monitor: keeps only the latest, i.e. last.ckpt
        every_n_train_steps=cfg.train.checkpoint_every_n_steps or None,
        enable_version_counter=False,
    )
    cbs: list[Callback] = [
        NonFiniteGuard(),
        best_cb,
        last_cb,
        EarlyStopping("val_loss", patience=cfg.train.patience, min_delta=cfg.train.min_delta, mode="min"),
        throughput,
    ]
    if cfg.train.progress:
        cbs.append(_ProgressBar(leave=True))
    cbs += list(callbacks or [])
    n_train_batches = math.ceil(len(split["train"]) / cfg.train.batch_size)
    trainer = L.Trainer(
        max_epochs=cfg.train.max_epochs,
        gradient_clip_val=cfg.train.grad_clip or None,
        callbacks=cbs,
        logger=CSVLogger(save_dir=run_dir, name="logs"),
        enable_progress_bar=cfg.train.progress,
        enable_model_summary=False,
        log_every_n_steps=max(1, min(50, n_train_batches)),
        num_sanity_val_steps=0,
        default_root_dir=run_dir,
        **_trainer_kwargs(cfg),
    )
    if trainer.is_global_zero:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / "config.yaml")
        if not (resume and split_path.is_file()):
            write_json(_split_to_json(traces, split, cfg.data.split_seed), split_path)

    t0 = time.perf_counter()
    try:
        trainer.fit(module, datamodule=dm, ckpt_path=str(ckpt_path) if resume else None, weights_only=True)
    except NonFiniteError as e:
        raise PointaeError(_non_finite_message(e, trainer, traces, scale, cfg, run_dir)) from None
    wall = time.perf_counter() - t0
    if not trainer.is_global_zero:
        return run_dir

    # export the best epoch's weights (fall back to the last ones if validation never ran)
    best = Path(best_cb.best_model_path) if best_cb.best_model_path else None
    if best is not None and best.is_file():
        state = safe_load_checkpoint(best)["state_dict"]
        module.load_state_dict(state)
    model = module.model.cpu().eval()
    info = {
        "format": MODEL_FORMAT,
        "kind": "autoencoder",
        "pointae_version": _version(),
        "repr": cfg.model.repr,
        "encoder": cfg.model.encoder_name,
        "task": cfg.task.name,
        "n_loci": int(traces.n_loci),
        "latent_dim": int(cfg.model.latent_dim),
        "decoder": cfg.model.decoder,
        "hparams": _jsonable(hparams),
        "repr_options": _jsonable(dict(cfg.model.repr_options)),
        "scale": float(scale),
        "unit": traces.unit,
        "loci": None
        if traces.loci is None
        else traces.loci.astype({"start": int, "end": int}).to_dict("list"),
        "param_count": int(param_count(model)),
        "config": cfg.to_dict(),
    }
    save_model(model, info, run_dir)
    write_history(run_dir)
    metrics = evaluate(
        run_dir,
        traces[split["test"]],
        reference=traces[split["train"]],
        batch_size=cfg.train.eval_batch_size,
    )
    best_score = best_cb.best_model_score
    metrics["training"] = {
        "epochs": int(trainer.current_epoch),
        "global_step": int(trainer.global_step),
        "best_val_loss": None if best_score is None else float(best_score),
        "stopped_early": bool(
            trainer.early_stopping_callback and trainer.early_stopping_callback.stopped_epoch
        ),
        "train_samples_per_s": throughput.samples_per_s,
        "wall_s": wall,
        "n_train": int(len(split["train"])),
        "n_val": int(len(split["val"])),
        "threads": int(threads),
        "device": str(trainer.strategy.root_device),
        "precision": str(trainer.precision),
        "world_size": int(trainer.world_size),
        "resumed": bool(resume),
    }
    write_json(metrics, run_dir / "metrics.json")
    return run_dir
