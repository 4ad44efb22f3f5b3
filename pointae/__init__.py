"""pointae: deep learning on single-cell chromatin 3D structures.

Public API (imported lazily, so ``import pointae`` and ``pointae --help`` stay fast):

- :class:`Traces`, :func:`read_traces`, :func:`write_traces`, :func:`distance_maps`
- corruptions :func:`add_outliers`, :func:`hide_loci`; :class:`MapScaler`; :func:`summarize` (QC)
- simulation :func:`simulate`, :func:`simulate_mixture`
- models and training :func:`build_model`, :class:`PointAE`, :func:`load_config`, :class:`RunConfig`
- analysis :func:`embed`, :func:`compare`; real data :func:`impute_traces`, :func:`evaluate_imputation`,
  :func:`reconstruct`
"""

from __future__ import annotations

import importlib
from typing import Any

from pointae._version import __version__

_LAZY: dict[str, str] = {
    "Traces": "pointae.data.traces",
    "read_traces": "pointae.data.io",
    "write_traces": "pointae.data.io",
    "iter_traces": "pointae.data.io",
    "detect_format": "pointae.data.io",
    "distance_maps": "pointae.data.transforms",
    "MapScaler": "pointae.data.transforms",
    "add_outliers": "pointae.data.corrupt",
    "hide_loci": "pointae.data.corrupt",
    "simulate": "pointae.sim",
    "simulate_mixture": "pointae.sim",
    "summarize": "pointae.data.qc",
    "PointAE": "pointae.api",
    "embed": "pointae.analysis.embed",
    "compare": "pointae.analysis.compare",
    "load_config": "pointae.config",
    "RunConfig": "pointae.config",
    "build_model": "pointae.models",
    "impute_traces": "pointae.impute",
    "evaluate_imputation": "pointae.impute",
    "reconstruct": "pointae.recon",
    "PointaeError": "pointae.errors",
    "InputError": "pointae.errors",
}

__all__ = ["__version__", *_LAZY]


def register_lazy(name: str, module: str) -> None:
    """Expose ``module.name`` as ``pointae.name`` without importing it now."""
    _LAZY[name] = module
    if name not in __all__:
        __all__.append(name)


def __getattr__(name: str) -> Any:
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'pointae' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
