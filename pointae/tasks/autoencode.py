"""``autoencode``: reconstruct the input map; the loss covers observed pairs only."""

from __future__ import annotations

import numpy as np

from pointae.tasks.base import Corrupted, Task, register_task


@register_task
class Autoencode(Task):
    """No corruption: input = target; scored on observed pairs."""

    name = "autoencode"
    focus = None

    def corrupt(self, coords: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> Corrupted:
        return Corrupted(np.array(coords, dtype=np.float32), np.zeros(coords.shape[0], dtype=bool))
