"""``inpaint``: hide extra loci (isolated and contiguous runs), target the full clean map."""

from __future__ import annotations

import numpy as np

from pointae.data.corrupt import hide_loci
from pointae.tasks.base import Corrupted, Task, register_task


@register_task
class Inpaint(Task):
    """Hide ``hide_fraction`` of the observed loci (``run_fraction`` of them in runs up to
    ``max_run``); the representation marks them missing, so the model is told which loci to
    fill; scored on the pairs touching a hidden locus."""

    name = "inpaint"
    focus = "hidden"

    def corrupt(self, coords: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> Corrupted:
        c = hide_loci(
            coords[None],
            self.cfg.hide_fraction,
            rng,
            run_fraction=self.cfg.run_fraction,
            max_run=self.cfg.max_run,
        )
        return Corrupted(c.coords[0], c.changed[0])
