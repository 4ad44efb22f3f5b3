"""Training data: load the run's traces, split them by trace, and feed Lightning.

Coordinates are scaled by one dataset scale and corrupted per task *before* the representation
(on the CPU, seeded per sample and epoch); the representation is built on the device.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from pointae.config import RunConfig
from pointae.data.transforms import distance_maps_torch
from pointae.errors import PointaeError, atomic_path
from pointae.tasks.base import Task


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
    if cache and launcher_rank() == 0:
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


def launcher_rank() -> int:
    """Rank of this process as set by a DDP launcher (0 for the process the user started)."""
    for var in ("RANK", "LOCAL_RANK", "SLURM_PROCID"):
        v = os.environ.get(var)
        if v is not None and v.strip().isdigit():
            return int(v)
    return 0


def _version() -> str:
    from pointae._version import __version__

    return __version__
