"""Any inpainting autoencoder run of ``pointae train`` as an imputer.

:class:`RunImputer` wraps the trained model of a ``--task inpaint`` run (any representation:
map, graph, voxel) in the interface of :class:`~pointae.impute.model.Imputer`
(``forward(coords (B, L, 3), scale) -> dict``), so :func:`pointae.impute.api.impute_traces`,
the streaming :func:`pointae.impute.stream.impute_file`, the denoiser and the real-data protocol
(``evaluate-imputation``) run it unchanged:

1. the autoencoder predicts the full distance map of each trace from its observed loci (the
   trace divided by the data's median neighbour distance, missing loci NaN: exactly the input
   of its ``inpaint`` training task);
2. the map the placement follows is the observed distances where both loci are observed and the
   autoencoder's prediction elsewhere;
3. the missing loci start at linear interpolation and are moved by the imputer's own stress
   updates (:func:`~pointae.impute.model.refine_to_map`, observed loci pinned) towards that map,
   so every observed spot is kept bit for bit and the result is a real 3D structure.

``spread`` (the input of the ``pointae_sd`` calibration) is, as for the imputer, the weighted RMS
distance of the loci that placed the spot from its position, here with the linear-interpolation
weights (the two flanking observed loci).
"""

from __future__ import annotations

import torch
from torch import nn

from pointae.data.transforms import distance_maps_torch
from pointae.errors import PointaeError
from pointae.impute.model import linear_weights, refine_to_map

# stress updates from linear interpolation towards the autoencoder's map (the imputer's final
# placement runs pointae.impute.api.PLACE_STEPS more of the same updates after the network)
RUN_PLACE_STEPS = 100


class RunImputer(nn.Module):
    """An inpainting autoencoder (from a run directory) with the imputer's interface.

    Parameters
    ----------
    net
        The trained model of the run (``forward(rep_input) -> AEOutput(latent, recon (B, L, L))``).
    rep
        The run's representation (:func:`pointae.data.reprs.build_repr`).
    n_loci
        The number of loci the run was trained on (an autoencoder reads a fixed number).
    source
        The run directory, for error messages.
    place_steps
        Stress updates of the missing loci towards the predicted map.
    """

    def __init__(
        self, net: nn.Module, rep, n_loci: int, source: str = "", place_steps: int = RUN_PLACE_STEPS
    ) -> None:
        super().__init__()
        self.net = net.eval()
        self.rep = rep
        self.n_loci = int(n_loci)
        self.source = source
        self.place_steps = int(place_steps)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.net.parameters())

    def forward(self, coords: torch.Tensor, scale: float | torch.Tensor) -> dict[str, torch.Tensor]:
        n_loci = coords.shape[1]
        if n_loci != self.n_loci:
            raise PointaeError(
                f"{self.source}: this inpainting run was trained on traces of {self.n_loci} loci, "
                f"the input has {n_loci} (an autoencoder reads a fixed number of loci)"
            )
        mask = ~torch.isnan(coords[..., 0])  # (B, L)
        m = mask[..., None]
        s = torch.as_tensor(scale, dtype=torch.float32).reshape(-1, 1, 1)
        x = coords.to(torch.float32) / s  # the run's input: scaled coordinates, NaN = missing
        recon = self.net(self.rep(x, train=False)).recon.float()  # (B, L, L) scaled units
        centre = torch.where(m, torch.nan_to_num(x), 0).sum(1, keepdim=True) / m.sum(1, keepdim=True).clamp(
            min=1
        )
        pos = torch.where(m, x - centre, torch.zeros(()))  # centred, zeros at missing loci
        known = mask[:, :, None] & mask[:, None, :]
        observed = torch.nan_to_num(distance_maps_torch(torch.where(m, pos, torch.full((), float("nan")))))
        target = torch.where(known, observed, recon)
        w_lin = linear_weights(mask)  # (B, L, L)
        lin = torch.where(m, pos, w_lin @ pos)
        placed = refine_to_map(lin, target, mask, self.place_steps) if self.place_steps > 0 else lin
        diff = pos[:, None, :, :] - placed[:, :, None, :]  # (B, L, L, 3)
        spread = torch.sqrt((w_lin * (diff**2).sum(-1)).sum(-1) + 1e-12)  # (B, L)
        out = torch.where(m, coords, ((placed + centre) * s).to(coords.dtype))
        direct = torch.where(m, coords, ((lin + centre) * s).to(coords.dtype))
        return {
            "coords": out,
            "direct": direct,
            "spread": spread * s[:, 0],
            "mask": mask,
            "map": target * s,
        }
