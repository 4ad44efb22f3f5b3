"""The training engine: one Lightning module and data module for every representation x task.

A small package, one job per module:

- :mod:`pointae.train.data`: load the traces (file or cached simulated mixture), split by trace,
  dataset / data module / batches;
- :mod:`pointae.train.module`: the LightningModule, its guards (non-finite losses) and callbacks;
- :mod:`pointae.train.runfiles`: the run-directory format (``model.json`` + safetensors weights,
  config, split, history, checkpoints), versions and legacy conversion;
- :mod:`pointae.train.evaluate`: **the** evaluator of autoencoder runs (corruption of the
  evaluation split, prediction, scores, the baselines of each task);
- :mod:`pointae.train.fit`: ``fit(cfg)``, the orchestration.

Names are imported lazily (``from pointae.train import evaluate`` does not import Lightning).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

_NAMES = {
    # data
    "Batch": "data",
    "CoordsDataset": "data",
    "EpochShuffleSampler": "data",
    "TracesDataModule": "data",
    "build_batch": "data",
    "cache_dir": "data",
    "corrupt_inputs": "data",
    "load_traces": "data",
    "make_split": "data",
    # module
    "NonFiniteError": "module",
    "NonFiniteGuard": "module",
    "PointAEModule": "module",
    "Throughput": "module",
    # run files
    "MODEL_FORMAT": "runfiles",
    "build_from_info": "runfiles",
    "load_model": "runfiles",
    "read_model_info": "runfiles",
    "resolve_hparams": "runfiles",
    "resume_config": "runfiles",
    "safe_load_checkpoint": "runfiles",
    "save_model": "runfiles",
    "write_history": "runfiles",
    "write_json": "runfiles",
    # evaluation
    "evaluate": "evaluate",
    "predict_maps": "evaluate",
    # orchestration
    "fit": "fit",
}

__all__ = [
    "Batch",
    "PointAEModule",
    "TracesDataModule",
    "build_from_info",
    "evaluate",
    "fit",
    "load_model",
    "load_traces",
    "make_split",
    "predict_maps",
    "resolve_hparams",
    "resume_config",
    "safe_load_checkpoint",
    "save_model",
    "write_history",
]


def __getattr__(name: str) -> Any:
    mod = _NAMES.get(name)
    if mod is None:
        raise AttributeError(f"module 'pointae.train' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"pointae.train.{mod}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_NAMES])


class _Package(types.ModuleType):
    """``pointae.train`` itself. Importing the submodule ``pointae.train.evaluate`` (or ``.fit``)
    binds it on the package under the same name as the function it defines, so a later
    ``from pointae.train import evaluate`` would get the module, depending on import order. The
    package keeps the function under that name instead (``from pointae.train.evaluate import ...``
    and ``sys.modules`` still give the module)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _NAMES.get(name) == name:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


if TYPE_CHECKING:  # pragma: no cover
    from pointae.train.data import (  # noqa: F401
        Batch,
        CoordsDataset,
        EpochShuffleSampler,
        TracesDataModule,
        build_batch,
        cache_dir,
        corrupt_inputs,
        load_traces,
        make_split,
    )
    from pointae.train.evaluate import evaluate, predict_maps  # noqa: F401
    from pointae.train.fit import fit  # noqa: F401
    from pointae.train.module import NonFiniteError, NonFiniteGuard, PointAEModule, Throughput  # noqa: F401
    from pointae.train.runfiles import (  # noqa: F401
        MODEL_FORMAT,
        build_from_info,
        load_model,
        read_model_info,
        resolve_hparams,
        resume_config,
        safe_load_checkpoint,
        save_model,
        write_history,
        write_json,
    )
