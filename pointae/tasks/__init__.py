"""Tasks: ``autoencode``, ``denoise``, ``inpaint`` (corruption before the representation)."""

from __future__ import annotations

from pointae.tasks.autoencode import Autoencode
from pointae.tasks.base import TASKS, Corrupted, LossOutput, Task, build_task, register_task, sample_rng
from pointae.tasks.contrast import Contrast
from pointae.tasks.denoise import Denoise
from pointae.tasks.inpaint import Inpaint

__all__ = [
    "TASKS",
    "Autoencode",
    "Contrast",
    "Corrupted",
    "Denoise",
    "Inpaint",
    "LossOutput",
    "Task",
    "build_task",
    "register_task",
    "sample_rng",
]
