"""``contrast``: an objective built for embeddings (SimCLR-style, the task corruptions as views).

Each training trace is corrupted twice, independently, by the inpaint and denoise corruptions
(hide ``hide_fraction`` of the observed loci, then displace ``outlier_fraction`` of the remaining
ones by ``outlier_magnitude`` median bonds). The loss is

- the reconstruction of the *clean* map from the first view (``task.loss`` on all observed pairs,
  through the latent: the model is a plain autoencoder), plus
- ``contrast_weight`` x the normalised-temperature cross entropy (NT-Xent, Chen et al. 2020) of
  the two views' latents: each view must pick its partner among the ``2B - 1`` other latents of the
  batch by cosine similarity / ``temperature``.

So the latent is asked to be the same for two corrupted copies of a structure and different from
the other structures, which is what a nearest-neighbour search in the latent uses; the
reconstruction term keeps it a summary of the whole map.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from pointae.data.corrupt import add_outliers, hide_loci
from pointae.tasks.base import Corrupted, Task, register_task


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent loss of paired views ``z1, z2`` ``(B, d)``: mean over the ``2B`` anchors.

    Row ``i`` of ``z1`` and row ``i`` of ``z2`` are positives; every other row of either is a
    negative. ``log(2B - 1)`` for identical latents of all traces, 0 in the limit of perfectly
    separated pairs.
    """
    b = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)  # (2B, d)
    sim = z @ z.T / temperature  # (2B, 2B)
    sim = sim.masked_fill(torch.eye(2 * b, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(z.device)
    return F.cross_entropy(sim, target)


@register_task
class Contrast(Task):
    """Two corrupted views per trace; reconstruction of view 1 plus NT-Xent between the views."""

    name = "contrast"
    focus = None
    views = 2

    def corrupt(self, coords: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> Corrupted:
        c = self.cfg
        h = hide_loci(coords[None], c.hide_fraction, rng, run_fraction=c.run_fraction, max_run=c.max_run)
        o = add_outliers(h.coords, c.outlier_fraction, rng, magnitude=tuple(c.outlier_magnitude), scale=1.0)
        return Corrupted(o.coords[0], h.changed[0] | o.changed[0])

    def embedding_loss(self, z1: torch.Tensor, z2: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"contrast": weighted NT-Xent}`` of the two views' latents."""
        return {"contrast": self.cfg.contrast_weight * nt_xent(z1, z2, self.cfg.temperature)}
