"""``PointAE``: the Python face of a trained pointae model (scvi-tools style).

Examples
--------
>>> from pointae.api import PointAE
>>> from pointae.testing import tiny_traces
>>> traces = tiny_traces(n=40, n_loci=16)
>>> ae = PointAE({"model": {"width": 4}, "train": {"max_epochs": 1, "progress": False}},
...              out="/tmp/pointae-doctest-run", overwrite=True).fit(traces)  # doctest: +SKIP
>>> ae.encode(traces).shape  # doctest: +SKIP
(40, 16)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pointae.config import RunConfig, config_from_dict, load_config
from pointae.errors import PointaeError


class PointAE:
    """Train, save, load and apply a pointae model.

    Parameters
    ----------
    config
        A :class:`~pointae.config.RunConfig`, a nested dict of overrides, or a YAML path
        (``None``: all defaults).
    out
        Run directory for :meth:`fit` (overrides ``config.out``).
    overwrite
        Allow :meth:`fit` to reuse a run directory that already holds a run.
    overrides
        Dotted ``section.key=value`` strings applied last.

    Attributes
    ----------
    model
        The trained ``nn.Module`` (eval mode) after :meth:`fit` or :meth:`load`.
    info
        The ``model.json`` dict (repr, task, n_loci, latent_dim, scale, hparams, config, ...).
    run_dir
        The run directory the model came from, if any.
    """

    def __init__(
        self,
        config: RunConfig | dict | str | Path | None = None,
        *,
        out: str | Path | None = None,
        overwrite: bool | None = None,
        overrides: list[str] | None = None,
    ):
        if isinstance(config, (str, Path)):
            cfg = load_config(config, overrides)
        else:
            cfg = load_config(None, overrides, base=config)
        if out is not None:
            cfg.out = str(out)
        if overwrite is not None:
            cfg.overwrite = bool(overwrite)
        self.config: RunConfig = cfg
        self.model: torch.nn.Module | None = None
        self.info: dict[str, Any] | None = None
        self.run_dir: Path | None = None
        self._rep = None

    # ------------------------------------------------------------------ training / io
    def fit(self, traces=None, *, resume: bool = False) -> PointAE:
        """Train on ``traces`` (default: the configured data) and load the best weights.

        Writes the full run directory (see :func:`pointae.train.fit`); returns ``self``.
        """
        from pointae.train import fit, load_model

        run_dir = fit(self.config, traces, resume=resume)
        self.model, self.info = load_model(run_dir)
        self.run_dir = Path(run_dir)
        self._rep = None
        return self

    @classmethod
    def load(cls, run_dir: str | Path, device: str | torch.device = "cpu") -> PointAE:
        """Rebuild from a run (or saved) directory: ``model.json`` + ``model.safetensors`` only."""
        from pointae.train import load_model

        model, info = load_model(run_dir, device=device)
        self = cls.__new__(cls)
        self.config = config_from_dict(info.get("config"))
        self.model, self.info, self.run_dir, self._rep = model, info, Path(run_dir), None
        return self

    def save(self, directory: str | Path) -> Path:
        """Write ``model.safetensors`` + ``model.json`` (and ``metrics.json`` when known)."""
        from pointae.train import save_model, write_json

        self._check()
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        save_model(self.model, self.info, d)
        if self.run_dir is not None and (self.run_dir / "metrics.json").is_file() and d != self.run_dir:
            write_json(json.loads((self.run_dir / "metrics.json").read_text()), d / "metrics.json")
        return d

    # ------------------------------------------------------------------ properties
    @property
    def scale(self) -> float:
        """Data units per normalised unit (the training split's median neighbour distance)."""
        self._check()
        return float(self.info["scale"])

    @property
    def latent_dim(self) -> int:
        self._check()
        return int(self.info["latent_dim"])

    @property
    def task(self) -> str:
        self._check()
        return str(self.info["task"])

    @property
    def metrics(self) -> dict | None:
        """The run's ``metrics.json`` (test split) if there is one."""
        if self.run_dir is not None and (self.run_dir / "metrics.json").is_file():
            return json.loads((self.run_dir / "metrics.json").read_text())
        return None

    def __repr__(self) -> str:
        if self.info is None:
            c = self.config
            return f"PointAE(repr={c.model.repr!r}, task={c.task.name!r}, untrained)"
        i = self.info
        return (
            f"PointAE(repr={i['repr']!r}, task={i['task']!r}, n_loci={i['n_loci']}, "
            f"latent_dim={i['latent_dim']}, params={i.get('param_count')}, "
            f"scale={i['scale']:.4g} {i['unit']})"
        )

    # ------------------------------------------------------------------ inference
    def _check(self) -> None:
        if self.model is None or self.info is None:
            raise PointaeError("this PointAE has no trained model: call fit() or PointAE.load()")

    def _run(self, traces, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        from pointae.data.reprs import build_repr
        from pointae.train import predict_maps

        self._check()
        if traces.n_loci != self.info["n_loci"]:
            raise PointaeError(f"the model expects {self.info['n_loci']} loci per trace, got {traces.n_loci}")
        if self._rep is None:
            self._rep = build_repr(self.info["repr"], **self.info.get("repr_options", {}))
        device = next(self.model.parameters()).device
        coords = traces.coords / np.float32(self.scale)  # (N, L, 3) normalised units
        return predict_maps(self.model, self._rep, coords, batch_size=batch_size, device=device)

    def encode(self, traces, batch_size: int = 256) -> np.ndarray:
        """Latent representation ``(N, latent_dim)`` float32 of each trace (missing loci allowed)."""
        return self._run(traces, batch_size)[0]

    def reconstruct(self, traces, batch_size: int = 256) -> np.ndarray:
        """Model output maps ``(N, L, L)`` in the data's units (the traces are used as given)."""
        return self._run(traces, batch_size)[1] * np.float32(self.scale)

    def denoise(self, traces, batch_size: int = 256) -> np.ndarray:
        """Cleaned distance maps ``(N, L, L)`` (data units) from a model trained with ``denoise``."""
        self._need_task("denoise")
        return self.reconstruct(traces, batch_size)

    def inpaint(self, traces, batch_size: int = 256) -> np.ndarray:
        """Full distance maps ``(N, L, L)`` (data units), missing loci filled in, from an
        ``inpaint`` model."""
        self._need_task("inpaint")
        return self.reconstruct(traces, batch_size)

    def _need_task(self, task: str) -> None:
        self._check()
        if self.info["task"] != task:
            raise PointaeError(
                f"this model was trained for {self.info['task']!r}, not {task!r}: "
                f"train one with `pointae train --task {task}` (or use reconstruct())"
            )

    def evaluate(self, traces, batch_size: int = 256) -> dict:
        """Metrics + baselines on ``traces`` (see :func:`pointae.train.evaluate`); needs a run dir."""
        from pointae.train import evaluate

        self._check()
        if self.run_dir is None:
            raise PointaeError("evaluate() needs a model saved in a directory")
        return evaluate(self.run_dir, traces, batch_size=batch_size)


__all__ = ["PointAE"]
