"""The Lightning side of training: the module, its guards and callbacks, the trainer settings.

:class:`PointAEModule` wraps any model of :func:`pointae.models.build_model` with a task's loss;
:class:`NonFiniteGuard` stops at the first non-finite loss, gradient or weight; :class:`Throughput`
measures training samples/s.
"""

from __future__ import annotations

import logging
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, RichProgressBar

from pointae.config import RunConfig
from pointae.errors import PointaeError
from pointae.tasks.base import Task
from pointae.train.data import Batch


class PointAEModule(L.LightningModule):
    """Wraps any model built by :func:`pointae.models.build_model` with a task's loss.

    Logs ``train_loss`` (step and epoch), ``val_loss`` (early-stopping monitor) and the loss
    parts (``val_observed``, ``val_corrupted`` / ``val_hidden``), and ``lr``.
    """

    def __init__(self, model: torch.nn.Module, task: Task, cfg: RunConfig):
        super().__init__()
        self.model, self.task, self.cfg = model, task, cfg

    def forward(self, x):
        return self.model(x)

    def _loss(self, batch: Batch):
        out = self.model(batch.x)
        loss = self.task.loss(out.recon, batch.target, batch.pair, batch.focus)
        if batch.x2 is not None:  # two views: add the task's loss on the pair of latents
            for k, v in self.task.embedding_loss(out.latent, self.model(batch.x2).latent).items():
                loss.parts[k] = v
                loss.total = loss.total + v
        return loss

    def training_step(self, batch: Batch, batch_idx: int):
        loss = self._loss(batch)
        b = len(batch)
        self.log(
            "train_loss", loss.total, prog_bar=True, on_step=True, on_epoch=True, batch_size=b, sync_dist=True
        )
        for k, v in loss.parts.items():
            self.log(f"train_{k}", v, on_step=False, on_epoch=True, batch_size=b, sync_dist=True)
        self.log(
            "lr",
            self.optimizers().param_groups[0]["lr"],
            on_step=False,
            on_epoch=True,
            batch_size=b,
            sync_dist=True,
        )
        return loss.total

    def validation_step(self, batch: Batch, batch_idx: int):
        loss = self._loss(batch)
        b = len(batch)
        if not torch.isfinite(loss.total.detach()):
            raise NonFiniteError("validation loss", float(loss.total))
        self.log("val_loss", loss.total, prog_bar=True, on_epoch=True, batch_size=b, sync_dist=True)
        for k, v in loss.parts.items():
            self.log(f"val_{k}", v, on_epoch=True, batch_size=b, sync_dist=True)

    def configure_optimizers(self):
        t = self.cfg.train
        opt = torch.optim.AdamW(self.model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
        if t.scheduler == "none":
            return opt
        if t.scheduler == "plateau":
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
                opt, factor=0.5, patience=max(1, t.patience // 2)
            )
            return {
                "optimizer": opt,
                "lr_scheduler": {"scheduler": sched, "monitor": "val_loss", "interval": "epoch"},
            }
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warm = min(t.warmup_steps, total // 2)

        def factor(step: int) -> float:  # linear warmup, then cosine to 5% of the peak
            if step < warm:
                return (step + 1) / warm
            p = min(1.0, (step - warm) / max(1, total - warm))
            return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * p))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


class NonFiniteError(PointaeError):
    """Training produced a non-finite loss or gradient (completed into one line by :func:`fit`)."""

    def __init__(self, what: str, value: float):
        self.what, self.value = what, value
        super().__init__(f"the {what} is non-finite ({value})")


class NonFiniteGuard(Callback):
    """Stop training as soon as a loss, gradient or weight is non-finite.

    Gradients are checked before each optimizer step, so non-finite values never reach the
    weights; Lightning runs checkpoint callbacks after this one, so no checkpoint with non-finite
    weights is written. :func:`fit` turns the error into one line naming the likely cause.
    """

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        for name, p in pl_module.named_parameters():
            if p.grad is not None and not torch.isfinite(p.grad).all():
                raise NonFiniteError(f"gradient of {name}", float(p.grad.abs().max()))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None and not torch.isfinite(loss.detach()).all():
            raise NonFiniteError("training loss", float(loss))
        for name, p in pl_module.named_parameters():
            if not torch.isfinite(p.detach()).all():
                raise NonFiniteError(f"weight {name}", float("nan"))


def _non_finite_message(
    e: NonFiniteError, trainer, traces, scale: float, cfg: RunConfig, run_dir: Path
) -> str:
    """One line: where training stopped, the likely cause, and which checkpoint is kept."""
    with np.errstate(invalid="ignore"):
        big = float(np.nanmax(np.abs(traces.coords))) if traces.mask.any() else float("nan")
    ratio = big / scale if scale > 0 else float("inf")
    if not np.isfinite(ratio) or ratio > 1e3:
        cause = (
            f"the coordinate range: the largest |coordinate| is {big:.3g} {traces.unit}, {ratio:.3g}x the "
            "map scale; look for spots far outside the nucleus or a wrong unit ('pointae info')"
        )
    else:
        cause = f"a learning rate too high (train.lr={cfg.train.lr:g}); the coordinate range looks sane"
    ckpt = run_dir / "last.ckpt"
    kept = (
        f"the last finite checkpoint is kept in {ckpt}"
        if ckpt.is_file()
        else "no checkpoint had been written yet"
    )
    return (
        f"training stopped at epoch {trainer.current_epoch}, step {trainer.global_step}: {e}; "
        f"likely cause: {cause}; {kept}"
    )


class Throughput(Callback):
    """Training samples/s: shown in the progress bar (``samples_per_s``) and kept in totals."""

    def __init__(self):
        self.samples = 0
        self.seconds = 0.0
        self._t0 = 0.0
        self._ema: float | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        dt = time.perf_counter() - self._t0
        n = len(batch) * trainer.world_size
        self.samples += n
        self.seconds += dt
        rate = n / max(dt, 1e-9)
        self._ema = rate if self._ema is None else 0.9 * self._ema + 0.1 * rate
        pl_module.log(
            "samples_per_s", self._ema, prog_bar=True, on_step=True, on_epoch=False, batch_size=len(batch)
        )

    @property
    def samples_per_s(self) -> float | None:
        return self.samples / self.seconds if self.seconds > 0 else None


class _ProgressBar(RichProgressBar):
    """RichProgressBar showing loss and samples/s, without the logger's version number."""

    def get_metrics(self, trainer, pl_module):
        m = super().get_metrics(trainer, pl_module)
        m.pop("v_num", None)
        return m


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Tip:" not in str(record.msg)


def _quiet_lightning() -> None:
    """Drop Lightning's advertising tips; keep its real messages.

    Lightning binds its console handler to the ``sys.stderr`` of its first import. When that stream
    has been closed since (a test runner's or a notebook's captured stream), logging would print a
    "--- Logging error ---" traceback on every message: point such handlers at today's stderr.
    """
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        lg = logging.getLogger(name)
        if not any(isinstance(f, _DropTips) for f in lg.filters):
            lg.addFilter(_DropTips())
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        for h in logging.getLogger(name).handlers:
            if type(h) is logging.StreamHandler and getattr(h.stream, "closed", False):
                h.stream = sys.stderr  # not setStream(): it flushes the closed stream first
    warnings.filterwarnings("ignore", message=r".*Checkpoint directory .* exists and is not empty.*")
    warnings.filterwarnings("ignore", message=r".*treespec.*LeafSpec.*")
    warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")


def _trainer_kwargs(cfg: RunConfig) -> dict:
    t = cfg.train
    cuda = torch.cuda.is_available() and t.accelerator in ("auto", "gpu", "cuda")
    precision = t.precision
    if precision == "auto":
        precision = ("bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed") if cuda else "32-true"
    strategy: Any = t.strategy
    if t.strategy == "ddp" and not cuda:
        from lightning.pytorch.strategies import DDPStrategy

        strategy = DDPStrategy(process_group_backend="gloo")
    return {
        "accelerator": t.accelerator,
        "devices": t.devices,
        "strategy": strategy,
        "num_nodes": t.num_nodes,
        "precision": precision,
        "deterministic": "warn" if cuda else True,
    }
