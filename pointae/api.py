"""``PointAE``: the one handle on a trained pointae run (scvi-tools style).

``PointAE.load(run)`` is how the CLI, ``embed``, ``cluster``, ``compare`` and ``view`` reach any
trained run. It reads the run's ``model.json`` (:func:`pointae.train.runfiles.read_model_info`:
``pointae-model/2``, older runs converted in memory) and dispatches on its ``kind``:
``"autoencoder"`` runs are rebuilt here (``encode``, ``reconstruct``, ``decode``, ``denoise``,
``inpaint``, ``evaluate``); ``"imputer"`` runs are loaded by
:func:`pointae.impute.api.load_imputer` (``impute``). ``impute`` also works on an autoencoder run
trained for ``inpaint`` (through :func:`pointae.impute.api.imputer_from_run`).

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
    kind
        ``"autoencoder"`` or ``"imputer"`` (the run's ``model.json``).
    """

    kind: str = "autoencoder"

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
        self.imputer = None
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
    def load(cls, run_dir: str | Path | None = None, device: str | torch.device = "cpu") -> PointAE:
        """Load a trained run: ``model.json`` + ``model.safetensors`` only (no pickle).

        Autoencoder runs are rebuilt through the registry; imputer runs are loaded by
        :func:`pointae.impute.api.load_imputer`; ``None`` (or ``"default"``) is the imputer shipped
        in ``pointae/assets/imputer``. Runs in an older format are converted in memory (never
        rewritten); a damaged or unknown ``model.json`` is refused with one line.
        """
        from pointae.train.runfiles import load_model, read_model_info

        if run_dir is None or (str(run_dir) == "default" and not Path(run_dir).exists()):
            from pointae.impute.api import DEFAULT_MODEL_DIR

            run_dir = DEFAULT_MODEL_DIR
        path = Path(run_dir)
        info = read_model_info(path)
        self = cls.__new__(cls)
        self.run_dir, self._rep, self.imputer, self.kind = path, None, None, info["kind"]
        if self.kind == "imputer":
            from pointae.impute.api import load_imputer

            self.imputer = load_imputer(path)
            self.model = getattr(self.imputer, "model", None)
            meta = dict(getattr(self.imputer, "meta", None) or {})
            self.info = {"task": "inpaint", **meta, **{k: v for k, v in info.items() if v is not None}}
            self.config = None
            return self
        model, info = load_model(path, device=device)
        self.config = config_from_dict(info.get("config"))
        self.model, self.info = model, info
        return self

    def save(self, directory: str | Path) -> Path:
        """Write ``model.safetensors`` + ``model.json`` (and ``metrics.json`` when known)."""
        from pointae.train import save_model, write_json

        self._check_autoencoder("autoencoder weights to save (copy its folder)")
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
        self._check_autoencoder("scale")
        return float(self.info["scale"])

    @property
    def latent_dim(self) -> int:
        self._check_autoencoder("latent_dim")
        return int(self.info["latent_dim"])

    @property
    def task(self) -> str:
        """What the model was trained for (an imputer: ``inpaint``)."""
        self._check()
        return str(self.info.get("task", "inpaint"))

    @property
    def n_loci(self) -> int:
        """Loci per trace the model takes."""
        self._check_autoencoder("n_loci")
        return int(self.info["n_loci"])

    @property
    def param_count(self) -> int:
        """Number of trainable parameters."""
        self._check()
        v = self.info.get("param_count")
        return int(v) if v is not None else int(sum(p.numel() for p in self.model.parameters()))

    @property
    def metrics(self) -> dict | None:
        """The run's ``metrics.json`` (test split) if there is one."""
        if self.run_dir is not None and (self.run_dir / "metrics.json").is_file():
            return json.loads((self.run_dir / "metrics.json").read_text())
        return None

    def __repr__(self) -> str:
        if self.kind == "imputer":
            return f"PointAE(kind='imputer', run={str(self.run_dir)!r})"
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
        if self.info is None or (self.model is None and self.imputer is None):
            raise PointaeError("this PointAE has no trained model: call fit() or PointAE.load()")

    def _check_autoencoder(self, what: str) -> None:
        self._check()
        if self.kind != "autoencoder":
            raise PointaeError(
                f"{self.run_dir}: an {self.kind} run has no {what} (it only imputes: use impute())"
            )

    def _run(self, traces, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        from pointae.data.reprs import build_repr
        from pointae.train.evaluate import predict_traces

        self._check_autoencoder("encoder")
        if traces.n_loci != self.info["n_loci"]:
            where = f"{self.run_dir}: " if self.run_dir is not None else ""
            raise PointaeError(
                f"{where}the model expects {self.info['n_loci']} loci per trace, got {traces.n_loci}"
            )
        if self._rep is None:
            self._rep = build_repr(self.info["repr"], **self.info.get("repr_options", {}))
        return predict_traces(self.model, self._rep, traces, self.scale, batch_size)

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

    @torch.no_grad()
    def decode(self, z: np.ndarray) -> np.ndarray:
        """Maps ``(K, L, L)`` (data unit) decoded from latents ``(K, latent_dim)``.

        Raises
        ------
        PointaeError
            When the model's reconstruction needs more than the latent (e.g. U-Net skip paths).
        """
        self._check_autoencoder("decoder")
        dec = getattr(self.model, "decode", None)
        if not callable(dec):
            raise PointaeError(f"{self.run_dir}: this {self.task} model cannot decode from latents alone")
        device = next(self.model.parameters()).device
        zt = torch.as_tensor(np.asarray(z, dtype=np.float32), device=device)
        try:
            maps = dec(zt)
        except TypeError as e:
            raise PointaeError(f"{self.run_dir}: this model cannot decode from latents alone ({e})") from None
        return (maps.float().cpu().numpy() * np.float32(self.scale)).astype(np.float32)

    def impute(self, traces, **kwargs):
        """Fill the missing loci of ``traces`` (a :class:`~pointae.Traces` with the imputed loci
        marked), with an imputer run or an autoencoder run trained for ``inpaint``.

        ``kwargs`` go to :func:`pointae.impute.impute_traces` (``denoise``, ``refine``, ...).
        """
        from pointae.impute.api import impute_traces

        return impute_traces(traces, model=self.as_imputer(), **kwargs)

    def as_imputer(self):
        """This run as the imputer that ``impute``, ``evaluate-imputation`` and the streaming
        :func:`pointae.impute.stream.impute_file` take (a :class:`pointae.impute.api.LoadedImputer`):
        an imputer run itself, or an ``inpaint`` autoencoder run whose predicted maps the imputer's
        placement turns into coordinates (:func:`pointae.impute.api.imputer_from_run`)."""
        self._check()
        if self.kind == "imputer":
            return self.imputer
        if self.run_dir is None:
            raise PointaeError("impute() with an autoencoder needs a model saved in a directory")
        from pointae.impute.api import imputer_from_run

        return imputer_from_run(self.run_dir)

    def _need_task(self, task: str) -> None:
        self._check()
        if self.task != task:
            raise PointaeError(
                f"this model was trained for {self.info['task']!r}, not {task!r}: "
                f"train one with `pointae train --task {task}` (or use reconstruct())"
            )

    def evaluate(self, traces, *, reference=None, seed: int = 0, batch_size: int = 256) -> dict:
        """Scores + baselines on ``traces`` (see :func:`pointae.train.evaluate`): the numbers of
        the run's ``metrics.json`` when ``traces`` is its test split and ``reference`` its
        training split."""
        from pointae.train.evaluate import evaluate

        self._check_autoencoder("autoencoder scores (use pointae evaluate-imputation)")
        return evaluate(self, traces, reference=reference, seed=seed, batch_size=batch_size)


__all__ = ["PointAE"]
