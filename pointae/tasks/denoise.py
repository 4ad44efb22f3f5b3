"""``denoise``: inputs with outlier loci (mis-localised spots), target the clean map."""

from __future__ import annotations

import numpy as np

from pointae.data.corrupt import add_outliers
from pointae.tasks.base import Corrupted, Task, register_task


@register_task
class Denoise(Task):
    """Displace ``outlier_fraction`` of the observed loci by ``outlier_magnitude`` median bonds
    (coordinates are in scaled units, where the median bond is 1); scored separately on the
    pairs touching a displaced locus."""

    name = "denoise"
    focus = "corrupted"

    def corrupt(self, coords: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> Corrupted:
        lo, hi = self.cfg.outlier_magnitude
        c = add_outliers(coords[None], self.cfg.outlier_fraction, rng, magnitude=(lo, hi), scale=1.0)
        return Corrupted(c.coords[0], c.changed[0])
