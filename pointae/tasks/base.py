"""The task protocol: how inputs are corrupted and which pairs the loss and metrics score.

A task corrupts *coordinates* (scaled units, NaN = missing) before any representation is built,
so the map, graph and voxel encoders see exactly the same corrupted structures. Corruption is
seeded per sample: ``(task seed, stream, epoch, sample index)``, so training draws a new
corruption every epoch while validation and test corruptions are fixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from pointae import registry
from pointae.config import TaskConfig
from pointae.errors import PointaeError

TRAIN_STREAM, EVAL_STREAM = 0, 1


@dataclass
class Corrupted:
    """One corrupted trace.

    Attributes
    ----------
    coords
        ``(L, 3)`` float32, the model input (NaN = missing or hidden).
    changed
        ``(L,)`` bool, loci the corruption displaced or hid.
    """

    coords: np.ndarray
    changed: np.ndarray


@dataclass
class LossOutput:
    """A loss and its named parts (detached floats for logging)."""

    total: torch.Tensor
    parts: dict[str, torch.Tensor]


def sample_rng(seed: int, stream: int, epoch: int, index: int) -> np.random.Generator:
    """The generator for one sample's corruption (independent of batch composition)."""
    return np.random.default_rng([int(seed), int(stream), int(epoch), int(index)])


def upper_pairs(n: int, device=None) -> torch.Tensor:
    """``(L, L)`` bool, True for ``i < j``."""
    return torch.ones(n, n, dtype=torch.bool, device=device).triu(1)


class Task:
    """Base class; subclasses set ``name`` and ``focus`` and implement :meth:`corrupt`.

    Parameters
    ----------
    cfg
        The :class:`~pointae.config.TaskConfig`.
    """

    name: ClassVar[str] = "base"
    focus: ClassVar[str | None] = None  # name of the scored subset ("corrupted", "hidden") or None
    #: independently corrupted copies of each trace per batch; tasks with 2 views implement
    #: :meth:`embedding_loss` on the two views' latents
    views: ClassVar[int] = 1

    def __init__(self, cfg: TaskConfig | None = None):
        self.cfg = cfg or TaskConfig(name=self.name)

    # -------------------------------------------------------------- corruption (numpy, CPU)
    def corrupt(self, coords: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> Corrupted:
        """Corrupt one trace ``coords (L, 3)`` with observed mask ``(L,)`` using ``rng``."""
        raise NotImplementedError

    def corrupt_batch(
        self, coords: np.ndarray, index: np.ndarray, *, train: bool, epoch: int = 0, view: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Corrupt a batch ``(B, L, 3)``; sample ``b`` is seeded by ``index[b]`` (and ``epoch`` when
        ``train``; ``view`` > 0 draws an independent corruption for the extra views).
        Returns ``(inputs (B, L, 3), changed (B, L))``."""
        coords = np.asarray(coords, dtype=np.float32)
        out = np.empty_like(coords)
        changed = np.zeros(coords.shape[:2], dtype=bool)
        stream = (TRAIN_STREAM if train else EVAL_STREAM) + 2 * int(view)
        ep = int(epoch) if train else 0
        for b in range(coords.shape[0]):
            rng = sample_rng(self.cfg.seed, stream, ep, int(index[b]))
            c = self.corrupt(coords[b], ~np.isnan(coords[b, :, 0]), rng)
            out[b], changed[b] = c.coords, c.changed
        return out, changed

    # -------------------------------------------------------------- masks and loss (torch)
    def pair_masks(
        self, clean: torch.Tensor, changed: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(observed pairs (B, L, L), focus pairs (B, L, L) or None)``.

        Observed pairs are pairs of loci observed in the *clean* trace (the target is known);
        focus pairs are those of them touching a changed locus.
        """
        obs = ~torch.isnan(clean[..., 0])  # (B, L)
        pair = obs[:, :, None] & obs[:, None, :]  # (B, L, L)
        if self.focus is None:
            return pair, None
        touch = changed[:, :, None] | changed[:, None, :]
        return pair, pair & touch

    def embedding_loss(self, z1: torch.Tensor, z2: torch.Tensor) -> dict[str, torch.Tensor]:
        """Loss parts on the latents ``(B, d)`` of two views (tasks with ``views = 2``)."""
        raise NotImplementedError

    def _pair_loss(self, pred, target, mask):
        name = self.cfg.loss
        if name not in registry.losses:
            raise PointaeError(f"task.loss must be one of {', '.join(registry.losses.names())}, got {name!r}")
        fn = registry.losses.get(name)
        if registry.losses.meta(name).get("takes_eps", False):
            return fn(pred, target, mask, eps=self.cfg.log_eps)
        return fn(pred, target, mask)

    def loss(self, recon: torch.Tensor, target: torch.Tensor, pair: torch.Tensor, focus) -> LossOutput:
        """Loss on observed pairs, plus ``focus_weight`` x loss on focus pairs, plus the optional
        Euclidean-consistency term. All inputs ``(B, L, L)``; ``recon`` in scaled units."""
        recon = recon.float()
        parts = {"observed": self._pair_loss(recon, target, pair)}
        total = parts["observed"]
        if focus is not None:
            parts[self.focus] = self._pair_loss(recon, target, focus)
            if self.cfg.focus_weight:
                total = total + self.cfg.focus_weight * parts[self.focus]
        if self.cfg.euclid_weight:
            from pointae.losses import euclidean_consistency

            parts["euclid"] = euclidean_consistency(recon)
            total = total + self.cfg.euclid_weight * parts["euclid"]
        return LossOutput(total, parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.cfg})"


#: task name -> class: a live view of :data:`pointae.registry.tasks`
TASKS = registry.tasks


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: register a task under ``cls.name`` in :data:`pointae.registry.tasks`.

    A new task that should train the skip-path task models (like ``denoise``/``inpaint``)
    registers with ``registry.tasks.add(cls.name, cls, skip_model=True)`` instead.
    """
    registry.tasks.add(cls.name, cls)
    return cls


def build_task(cfg: TaskConfig) -> Task:
    """Instantiate the task named ``cfg.name``."""
    return registry.tasks.get(registry.tasks.check(cfg.name))(cfg)
