"""A trained run seen through the small interface the analysis needs.

``encode(traces, batch_size) -> (N, d)``, ``reconstruct(traces, batch_size) -> (N, L, L)`` in the
data's unit, ``decode(z) -> (K, L, L)`` (data unit; only for models with a latent-only decoder),
``param_count``, ``config``, ``scale`` and ``run_dir``. Built on :func:`pointae.train.load_model`
(weights from safetensors, architecture from ``model.json``; no pickle).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pointae.errors import PointaeError


class RunModel:
    """A loaded run directory.

    Parameters
    ----------
    run_dir
        Output folder of :func:`pointae.train.fit`.
    device
        Torch device for inference.
    """

    def __init__(self, run_dir, device: str = "cpu"):
        from pointae.data.reprs import build_repr
        from pointae.train import load_model

        self.run_dir = Path(run_dir)
        self.device = device
        self.model, self.info = load_model(self.run_dir, device=device)
        self.rep = build_repr(self.info["repr"], **self.info.get("repr_options", {}))
        self.scale = float(self.info["scale"])
        self.config = self.info.get("config", {})
        self.param_count = int(
            self.info.get("param_count") or sum(p.numel() for p in self.model.parameters())
        )
        self.n_loci = int(self.info["n_loci"])

    def __repr__(self) -> str:
        return f"RunModel({str(self.run_dir)!r}, repr={self.info['repr']}, task={self.info['task']})"

    def _predict(self, traces, batch_size: int):
        from pointae.train import predict_maps

        if traces.n_loci != self.n_loci:
            raise PointaeError(
                f"{self.run_dir}: the model expects {self.n_loci} loci, the traces have {traces.n_loci}"
            )
        coords = traces.coords / np.float32(self.scale)  # (N, L, 3) scaled units
        return predict_maps(self.model, self.rep, coords, batch_size=batch_size, device=self.device)

    def encode(self, traces, batch_size: int = 256) -> np.ndarray:
        """Latents ``(N, d)`` float32."""
        return self._predict(traces, batch_size)[0].astype(np.float32)

    def reconstruct(self, traces, batch_size: int = 256) -> np.ndarray:
        """Reconstructed maps ``(N, L, L)`` in the data's unit."""
        return (self._predict(traces, batch_size)[1] * self.scale).astype(np.float32)

    @torch.no_grad()
    def decode(self, z: np.ndarray) -> np.ndarray:
        """Maps ``(K, L, L)`` (data unit) decoded from latents ``(K, d)``.

        Raises
        ------
        PointaeError
            When the model's reconstruction needs more than the latent (e.g. U-Net skip paths).
        """
        dec = getattr(self.model, "decode", None)
        if not callable(dec):
            raise PointaeError(
                f"{self.run_dir}: this {self.info['task']} model cannot decode from latents alone"
            )
        zt = torch.as_tensor(np.asarray(z, dtype=np.float32), device=self.device)
        try:
            maps = dec(zt)
        except TypeError as e:
            raise PointaeError(f"{self.run_dir}: this model cannot decode from latents alone ({e})") from None
        return (maps.float().cpu().numpy() * self.scale).astype(np.float32)


def load_run(run_dir, device: str = "cpu") -> RunModel:
    """The model of a run directory (see :class:`RunModel`)."""
    return RunModel(run_dir, device=device)
