"""The training engine: one Lightning module and data module for every representation x task.

``fit(cfg)`` builds the data (a traces file or the default simulated mixture), splits it by
trace, scales coordinates by one dataset scale (the median neighbour distance of the training
split), corrupts them per task *before* the representation, trains with AdamW + warmup/cosine
schedule + early stopping + gradient clipping on Lightning (CPU threads, CUDA + mixed precision
when present, DDP when asked), and writes a run directory::

    runs/NAME/
      config.yaml        resolved RunConfig
      split.json         trace ids per split + seed
      model.safetensors  weights of the best (lowest val loss) epoch
      model.json         everything needed to rebuild the model via the registry (no pickle)
      history.csv        one row per epoch: train/val losses, lr, samples/s
      metrics.json       test-split metrics of the model AND the baselines (same corrupted inputs)
      last.ckpt          Lightning resume checkpoint (loaded only with weights_only=True)
      best.ckpt          checkpoint of the best epoch
      logs/version_K/metrics.csv   raw Lightning CSV logs, one version per (re)start

``evaluate(run_dir, traces)`` recomputes the metrics for any traces.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import os
import pickle
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint, RichProgressBar
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader, Dataset, Sampler

from pointae.config import RunConfig, config_from_dict, load_config, save_config
from pointae.data.transforms import MapScaler, distance_maps_torch
from pointae.errors import PointaeError, atomic_path
from pointae.tasks.base import Task, build_task

MODEL_FORMAT = "pointae-model/1"
_WIDTH_KEYS = (
    "widths",
    "hidden",
    "channels",
    "hidden_dim",
    "hidden_channels",
    "base_channels",
    "pair_dim",
    "pair_hidden",
)
_BASE_WIDTH = 32


# ============================================================================ data
def cache_dir() -> Path:
    """Where simulated default datasets are cached: ``$POINTAE_CACHE`` or ``~/.cache/pointae``."""
    return Path(os.environ.get("POINTAE_CACHE") or Path.home() / ".cache" / "pointae")


def load_traces(cfg: RunConfig, cache: bool = True):
    """The run's traces: ``cfg.data.path`` when set, else the default simulated mixture.

    A simulated dataset is cached (HDF5, keyed by mixture, size, loci, seed and pointae version)
    under :func:`cache_dir`, so later runs with the same data settings skip the simulation.
    """
    if cfg.data.path:
        from pointae.data.io import read_traces

        return read_traces(cfg.data.path)
    try:
        from pointae.sim import simulate_mixture
    except ImportError as e:  # pragma: no cover - the simulator ships with pointae
        raise PointaeError(f"no --data given and the simulator is unavailable ({e})") from None
    import hashlib

    d = cfg.data
    key = json.dumps([dict(d.mixture), d.n_traces, d.n_loci, d.sim_seed, _version()], sort_keys=True)
    path = cache_dir() / "sim" / f"mixture-{hashlib.sha256(key.encode()).hexdigest()[:16]}.h5"
    if cache and path.is_file():
        from pointae.data.io import read_traces

        try:
            return read_traces(path)
        except PointaeError:
            pass  # a damaged cache entry is simply regenerated
    traces = simulate_mixture(dict(d.mixture), n=d.n_traces, n_loci=d.n_loci, seed=d.sim_seed)
    if cache and _launcher_rank() == 0:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                traces.save(tmp, format="h5")
        except OSError:
            pass  # caching is an optimisation only
    return traces


def make_split(traces, cfg: RunConfig) -> dict[str, np.ndarray]:
    """Split by trace (seeded); every split must be non-empty."""
    s = traces.split(
        test_fraction=cfg.data.test_fraction, seed=cfg.data.split_seed, val_fraction=cfg.data.val_fraction
    )
    for k in ("train", "val", "test"):
        if len(s[k]) == 0:
            raise PointaeError(
                f"the {k} split is empty ({len(traces)} traces, val_fraction={cfg.data.val_fraction}, "
                f"test_fraction={cfg.data.test_fraction}): use more traces"
            )
    return s


def _split_to_json(traces, split: dict[str, np.ndarray], seed: int) -> dict:
    ids = traces.trace_ids
    return {"seed": seed, "n_traces": len(traces), **{k: [str(x) for x in ids[v]] for k, v in split.items()}}


def _split_from_json(traces, d: dict, path: Path) -> dict[str, np.ndarray]:
    pos = {tid: i for i, tid in enumerate(traces.trace_ids)}
    out = {}
    for k in ("train", "val", "test"):
        missing = [t for t in d.get(k, []) if t not in pos]
        if missing:
            raise PointaeError(
                f"{path}: trace {missing[0]!r} of the {k} split is not in the data (different data?)"
            )
        out[k] = np.array(sorted(pos[t] for t in d[k]), dtype=np.int64)
    return out


class CoordsDataset(Dataset):
    """Scaled coordinates ``(N, L, 3)``; item ``i`` is ``(coords (L, 3), i)``."""

    def __init__(self, coords: np.ndarray):
        self.coords = torch.from_numpy(np.ascontiguousarray(coords, dtype=np.float32))

    def __len__(self) -> int:
        return self.coords.shape[0]

    def __getitem__(self, i: int):
        return self.coords[i], i


class EpochShuffleSampler(Sampler[int]):
    """A permutation drawn from ``(seed, epoch)`` only: identical after a resume."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


@dataclass
class Batch:
    """A prepared batch on the device.

    Attributes
    ----------
    x
        The representation's input (tensor or ``DenseGraph``).
    target
        ``(B, L, L)`` clean distance map, scaled units, NaN for unobserved pairs.
    pair
        ``(B, L, L)`` bool, pairs observed in the clean trace.
    focus
        ``(B, L, L)`` bool pairs touching corrupted/hidden loci, or None (autoencode).
    index
        ``(B,)`` sample indices within the split.
    """

    x: Any
    target: torch.Tensor
    pair: torch.Tensor
    focus: torch.Tensor | None
    index: torch.Tensor
    x2: Any = None  # a second, independently corrupted view (tasks with ``views = 2``)

    def __len__(self) -> int:
        return self.target.shape[0]


def corrupt_inputs(
    task: Task, coords: torch.Tensor, index: torch.Tensor, *, train: bool, epoch: int = 0
) -> dict:
    """CPU step: corrupt clean coords ``(B, L, 3)`` per sample -> dict of tensors."""
    inp, changed = task.corrupt_batch(coords.numpy(), index.numpy(), train=train, epoch=epoch)
    out = {
        "clean": coords,
        "input": torch.from_numpy(inp),
        "changed": torch.from_numpy(changed),
        "index": index,
    }
    if getattr(task, "views", 1) > 1:
        inp2, _ = task.corrupt_batch(coords.numpy(), index.numpy(), train=train, epoch=epoch, view=1)
        out["input2"] = torch.from_numpy(inp2)
    return out


def build_batch(task: Task, rep, d: dict, *, train: bool, generator: torch.Generator | None = None) -> Batch:
    """Device step: representation of the corrupted input, clean target map and pair masks."""
    x = rep(d["input"], train=train, generator=generator)
    target = distance_maps_torch(d["clean"])  # (B, L, L)
    pair, focus = task.pair_masks(d["clean"], d["changed"])
    x2 = rep(d["input2"], train=train, generator=generator) if "input2" in d else None
    return Batch(x=x, target=target, pair=pair, focus=focus, index=d["index"], x2=x2)


class TracesDataModule(L.LightningDataModule):
    """Train/val data for one representation and task.

    Corruption happens on the CPU in :meth:`on_before_batch_transfer` (seeded per sample and, for
    training, per epoch); the representation is built on the device in
    :meth:`on_after_batch_transfer` (random rotations for voxels when training).
    """

    def __init__(
        self, coords: dict[str, np.ndarray], task: Task, rep, batch_size: int, num_workers: int, seed: int
    ):
        super().__init__()
        self.coords, self.task, self.rep = coords, task, rep
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        ds = CoordsDataset(self.coords[split])
        return DataLoader(
            ds,
            batch_size=self.batch_size,
            sampler=EpochShuffleSampler(len(ds), self.seed) if shuffle else None,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False)

    def _training(self) -> bool:
        return self.trainer is not None and self.trainer.training

    def on_before_batch_transfer(self, batch, dataloader_idx: int):
        coords, index = batch
        train = self._training()
        return corrupt_inputs(
            self.task, coords, index, train=train, epoch=self.trainer.current_epoch if train else 0
        )

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        train = self._training()
        gen = None
        if train:
            dev = batch["input"].device
            gen = torch.Generator(device=dev).manual_seed(self.seed * 7_919 + int(self.trainer.global_step))
        return build_batch(self.task, self.rep, batch, train=train, generator=gen)


# ============================================================================ module
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


# ============================================================================ model files
def _model_classes(cfg: RunConfig, encoders: dict, decoders: dict, arch: str) -> list[tuple[type, str]]:
    """The classes :func:`build_model` will instantiate, with their hyperparameter prefix."""
    try:
        from pointae.models.task_models import TASK_MODELS
    except ImportError:  # pragma: no cover
        TASK_MODELS = {}
    m = cfg.model
    from pointae.models.builders import SKIP_TASKS

    enc = m.encoder_name
    if cfg.task.name in SKIP_TASKS and m.decoder == "map" and arch == "auto" and enc in TASK_MODELS:
        return [(TASK_MODELS[enc], "")]
    return [
        (c, p) for c, p in ((encoders.get(enc), ""), (decoders.get(m.decoder), "decoder_")) if c is not None
    ]


def resolve_hparams(cfg: RunConfig) -> dict:
    """Model hyperparameters for :func:`build_model`: ``model.hparams`` plus, when
    ``model.width`` is set, every width-like default of the encoder and decoder (``widths``,
    ``hidden``, ``channels``, ...) scaled by ``width / 32`` (an encoder parameter literally named
    ``width`` is set to ``model.width``). Explicit ``hparams`` win."""
    from pointae.models.registry import DECODERS, ENCODERS, _load_builtins

    _load_builtins()
    m = cfg.model
    hp = dict(m.hparams)
    if m.width is None:
        return hp
    if m.width < 1:
        raise PointaeError(f"model.width must be >= 1, got {m.width}")
    f = m.width / _BASE_WIDTH
    for cls, prefix in _model_classes(cfg, ENCODERS, DECODERS, hp.get("arch", "auto")):
        for pname, p in inspect.signature(cls.__init__).parameters.items():
            key = prefix + pname
            if key in hp:
                continue
            d = p.default
            if pname == "width":
                hp[key] = m.width
            elif pname in _WIDTH_KEYS and isinstance(d, int) and not isinstance(d, bool):
                hp[key] = max(1, round(d * f))
            elif pname in _WIDTH_KEYS and isinstance(d, (tuple, list)) and all(isinstance(v, int) for v in d):
                hp[key] = [max(1, round(v * f)) for v in d]
    return hp


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def write_json(obj, path: Path) -> None:
    """Atomic, strict JSON (NaN/inf written as null)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_jsonable(obj), indent=2, allow_nan=False) + "\n")


def build_from_info(info: dict) -> torch.nn.Module:
    """Rebuild an (untrained) model from a ``model.json`` dict via the registry."""
    from pointae.data.reprs import build_repr
    from pointae.models import build_model

    rep = build_repr(info["repr"], **info.get("repr_options", {}))
    return build_model(
        info.get("encoder", info["repr"]),
        info["task"],
        int(info["n_loci"]),
        int(info["latent_dim"]),
        info["decoder"],
        rep=rep,
        **info["hparams"],
    )


def save_model(model: torch.nn.Module, info: dict, run_dir: Path) -> None:
    """Write ``model.safetensors`` (weights) and ``model.json`` (how to rebuild it)."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    with atomic_path(run_dir / "model.safetensors") as tmp:
        save_file(state, str(tmp), metadata={"format": MODEL_FORMAT})
    write_json(info, run_dir / "model.json")


def load_model(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict]:
    """Rebuild a trained model from a run directory: ``(model in eval mode, model.json dict)``.

    Only ``model.json`` and ``model.safetensors`` are read: no YAML, no pickle.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    run_dir = Path(run_dir)
    jpath, wpath = run_dir / "model.json", run_dir / "model.safetensors"
    for p in (jpath, wpath):
        if not p.is_file():
            raise PointaeError(f"{p}: no such file (is {run_dir} a finished pointae run?)")
    try:
        info = json.loads(jpath.read_text())
    except json.JSONDecodeError as e:
        raise InputErrorLike(jpath, f"invalid JSON ({e.msg})", e.lineno) from None
    if info.get("format") != MODEL_FORMAT:
        raise PointaeError(f"{jpath}: not a {MODEL_FORMAT} file (format={info.get('format')!r})")
    model = build_from_info(info)
    try:
        state = load_file(str(wpath), device=str(device))
    except (SafetensorError, OSError, ValueError) as e:
        raise PointaeError(f"{wpath}: cannot read safetensors weights ({e})") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise PointaeError(f"{wpath}: weights do not match model.json ({first})") from None
    return model.to(device).eval(), info


def InputErrorLike(path, problem, line):  # noqa: N802 - small helper keeping messages uniform
    from pointae.errors import InputError

    return InputError(path, problem, line=line)


def safe_load_checkpoint(path: str | Path) -> dict:
    """Load a Lightning checkpoint with ``torch.load(weights_only=True)``.

    Anything that is not plain tensors/containers (e.g. a pickle carrying code) is refused with a
    :class:`PointaeError`; no code from the file is ever executed.
    """
    path = Path(path)
    if not path.is_file():
        raise PointaeError(f"{path}: no such checkpoint")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise PointaeError(
            f"{path}: refusing to load checkpoint: not a plain-weights checkpoint ({first[:200]})"
        ) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise PointaeError(f"{path}: not a Lightning checkpoint (no state_dict)")
    return ckpt


# ============================================================================ fit
class _ProgressBar(RichProgressBar):
    """RichProgressBar showing loss and samples/s, without the logger's version number."""

    def get_metrics(self, trainer, pl_module):
        m = super().get_metrics(trainer, pl_module)
        m.pop("v_num", None)
        return m


def _launcher_rank() -> int:
    """Rank of this process as set by a DDP launcher (0 for the process the user started)."""
    for var in ("RANK", "LOCAL_RANK", "SLURM_PROCID"):
        v = os.environ.get(var)
        if v is not None and v.strip().isdigit():
            return int(v)
    return 0


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Tip:" not in str(record.msg)


def _quiet_lightning() -> None:
    """Drop Lightning's advertising tips; keep its real messages."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        lg = logging.getLogger(name)
        if not any(isinstance(f, _DropTips) for f in lg.filters):
            lg.addFilter(_DropTips())
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


def resume_config(run_dir: str | Path, paths=None, overrides: list[str] | None = None) -> RunConfig:
    """The saved ``config.yaml`` of ``run_dir``, updated by extra YAML files / overrides
    (e.g. ``train.max_epochs=50`` to train longer)."""
    from pointae.config import read_yaml

    p = Path(run_dir) / "config.yaml"
    if not p.is_file():
        raise PointaeError(f"{p}: no such file: nothing to resume in {run_dir}")
    try:
        base = config_from_dict(read_yaml(p))
    except PointaeError as e:
        raise PointaeError(f"{p}: {e}") from None
    cfg = load_config(paths, overrides, base=base)
    cfg.out = str(run_dir)
    return cfg


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
    elif _launcher_rank() == 0 and run_dir.exists() and any(run_dir.iterdir()) and not cfg.overwrite:
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
    metrics = evaluate(run_dir, traces[split["test"]], batch_size=cfg.train.eval_batch_size)
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


def _version() -> str:
    from pointae._version import __version__

    return __version__


def write_history(run_dir: Path) -> Path:
    """Merge ``logs/version_*/metrics.csv`` into ``history.csv``: one row per epoch.

    After a resume, a later version's rows replace those of the same epochs.
    """
    import pandas as pd

    frames = []
    logs = sorted(
        (run_dir / "logs").glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[1])
    )
    for k, p in enumerate(logs):
        try:
            df = pd.read_csv(p)
        except (pd.errors.EmptyDataError, FileNotFoundError):
            continue
        if "epoch" not in df.columns:
            continue
        df["_version"] = k
        frames.append(df)
    cols = ["epoch", "step", "train_loss_epoch", "val_loss", "lr", "samples_per_s"]
    if not frames:
        hist = pd.DataFrame(columns=cols)
    else:
        df = pd.concat(frames, ignore_index=True)
        # a later version owns every epoch from its first logged epoch on
        first = df.groupby("_version")["epoch"].min()
        keep = np.ones(len(df), dtype=bool)
        for v, e0 in first.items():
            keep &= ~((df["_version"] < v) & (df["epoch"] >= e0)).to_numpy()
        df = df[keep]
        agg = {c: "last" for c in df.columns if c not in ("epoch", "_version")}
        if "samples_per_s" in df.columns:
            agg["samples_per_s"] = "mean"
        hist = df.groupby("epoch", as_index=False).agg(agg)
        hist = hist.drop(columns=[c for c in hist.columns if c.endswith("_step")])
        lead = [c for c in cols if c in hist.columns]
        hist = hist[lead + sorted(c for c in hist.columns if c not in lead)]
    out = run_dir / "history.csv"
    with atomic_path(out) as tmp:
        hist.to_csv(tmp, index=False)
    return out


# ============================================================================ evaluate
@torch.no_grad()
def predict_maps(
    model, rep, coords: np.ndarray, batch_size: int = 256, device="cpu"
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``model`` on scaled coords ``(N, L, 3)`` -> ``(latent (N, d), recon (N, L, L))`` numpy."""
    model.eval()
    lat, rec = [], []
    for s in range(0, coords.shape[0], batch_size):
        c = torch.from_numpy(np.ascontiguousarray(coords[s : s + batch_size], dtype=np.float32)).to(device)
        x = rep(c, train=False)
        if hasattr(x, "to") and not isinstance(x, torch.Tensor):
            x = x.to(device)
        out = model(x)
        lat.append(out.latent.float().cpu().numpy())
        rec.append(out.recon.float().cpu().numpy())
    d = getattr(model, "latent_dim", 0)
    n = coords.shape[1]
    if not lat:
        return np.zeros((0, d), np.float32), np.zeros((0, n, n), np.float32)
    return np.concatenate(lat), np.concatenate(rec)


def _pca_maps(maps: np.ndarray, k: int) -> np.ndarray:
    """Rank-``k`` PCA reconstruction of maps (upper triangles, missing pairs mean-filled)."""
    from sklearn.decomposition import PCA

    n, n_loci = maps.shape[:2]
    iu = np.triu_indices(n_loci, 1)
    v = maps[:, iu[0], iu[1]].astype(np.float64)  # (N, P)
    col = np.nanmean(np.where(np.isfinite(v), v, np.nan), axis=0)
    col = np.where(np.isfinite(col), col, 0.0)
    v = np.where(np.isfinite(v), v, col)
    k = max(1, min(k, n - 1, v.shape[1]))
    p = PCA(n_components=k, random_state=0)
    r = p.inverse_transform(p.fit_transform(v))
    out = np.zeros((n, n_loci, n_loci), np.float32)
    out[:, iu[0], iu[1]] = r
    out = out + out.transpose(0, 2, 1)
    return np.maximum(out, 0.0)


def evaluate(
    run_dir: str | Path,
    traces,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    euclidean: bool = True,
) -> dict:
    """Metrics of a trained run on ``traces``, next to the baselines on the same corrupted inputs.

    The task's corruption is applied with its fixed evaluation seeds (sample ``i`` of ``traces``
    always gets the same corruption). Scores are on the upper triangle of pairs observed in the
    clean traces (``observed``) and, for denoise/inpaint, on those touching a corrupted/hidden
    locus (``corrupted`` / ``hidden``).

    Baselines: ``identity`` (the corrupted input's own map; undefined on hidden pairs),
    ``neighbour_rule`` (denoise: :func:`pointae.baselines.clean_neighbour_rule`),
    ``interpolation`` (inpaint: :func:`pointae.baselines.interpolate_missing`), and for
    autoencode ``pca`` (rank-``latent_dim`` PCA of the maps, fitted on these same traces: an
    optimistic, in-sample baseline) and ``mean_map``.

    Returns
    -------
    dict
        ``{"task", "repr", "n_traces", "unit", "scale", "focus", "model": {...}, "baselines":
        {name: {...}}, "param_count", "latent_dim", "inference_samples_per_s", "beats_baselines"}``
    """
    from pointae.baselines import clean_neighbour_rule, interpolate_missing
    from pointae.data.reprs import build_repr
    from pointae.data.transforms import distance_maps
    from pointae.metrics import euclidean_metrics, map_metrics
    from pointae.models import param_count

    model, info = load_model(run_dir, device=device)
    if traces.n_loci != info["n_loci"]:
        raise PointaeError(f"{run_dir}: model expects {info['n_loci']} loci, the traces have {traces.n_loci}")
    cfg = config_from_dict(info["config"])
    task = build_task(cfg.task)
    rep = build_repr(info["repr"], **info["repr_options"])
    scale = float(info["scale"])
    clean = traces.coords / np.float32(scale)  # (N, L, 3)
    index = np.arange(len(traces))
    inp, changed = task.corrupt_batch(clean, index, train=False)
    target = distance_maps(clean)
    pair_t, focus_t = task.pair_masks(torch.from_numpy(clean), torch.from_numpy(changed))
    pair = pair_t.numpy()
    focus = None if focus_t is None else focus_t.numpy()

    t0 = time.perf_counter()
    _, recon = predict_maps(model, rep, inp, batch_size=batch_size, device=device)
    dt = time.perf_counter() - t0

    def score(pred):
        s = {"observed": map_metrics(pred, target, pair, scale)}
        if focus is not None:
            s[task.focus] = map_metrics(pred, target, focus, scale)
        return s

    res: dict = {
        "task": task.name,
        "repr": info["repr"],
        "n_traces": len(traces),
        "unit": traces.unit,
        "scale": scale,
        "focus": task.focus,
        "model": score(recon),
        "baselines": {},
        "param_count": int(param_count(model)),
        "latent_dim": int(info["latent_dim"]),
        "inference_samples_per_s": len(traces) / dt if dt > 0 else None,
    }
    if euclidean:
        res["model"].update(euclidean_metrics(recon))
    b = res["baselines"]
    if task.name == "autoencode":
        b["pca"] = score(_pca_maps(distance_maps(interpolate_missing(inp)), int(info["latent_dim"])))
        mean = np.nanmean(np.where(pair, target, np.nan), axis=0)
        b["mean_map"] = score(np.broadcast_to(np.nan_to_num(mean), target.shape))
    else:
        b["identity"] = score(distance_maps(inp))
        if task.name == "denoise":
            cleaned, _ = clean_neighbour_rule(inp, scale=1.0)
            b["neighbour_rule"] = score(distance_maps(cleaned))
        else:
            b["interpolation"] = score(distance_maps(interpolate_missing(inp)))
    key = task.focus or "observed"
    m = res["model"][key]["mae"]
    res["beats_baselines"] = {
        name: (None if m is None or s[key]["mae"] is None else bool(m < s[key]["mae"]))
        for name, s in b.items()
    }
    return res


__all__ = [
    "Batch",
    "PointAEModule",
    "TracesDataModule",
    "build_from_info",
    "evaluate",
    "fit",
    "load_model",
    "load_traces",
    "make_split",
    "predict_maps",
    "resolve_hparams",
    "resume_config",
    "safe_load_checkpoint",
    "save_model",
    "write_history",
]
