"""Imputation and cleaning of chromatin traces (issue 6).

- :func:`impute_traces`, :func:`load_imputer`, :func:`train_imputer`, :func:`combine_imputers`
- :func:`imputer_from_run` (an inpainting autoencoder run of ``pointae train`` as an imputer),
  :func:`convert_legacy_run` (old ``imputer.json`` runs to the shared ``model.json`` format)
- :func:`evaluate_imputation`, :func:`evaluate_denoising` (the held-out protocols)
- :mod:`pointae.impute.protocol` (masking + scoring), :mod:`pointae.impute.baselines`,
  :mod:`pointae.impute.model`, :mod:`pointae.impute.fit`, :mod:`pointae.impute.place`
"""

from __future__ import annotations

import importlib
from typing import Any

_API = (
    "impute_traces",
    "load_imputer",
    "imputer_from_run",
    "convert_legacy_run",
    "save_imputer",
    "train_imputer",
    "combine_imputers",
    "evaluate_imputation",
    "evaluate_denoising",
    "impute_coords",
    "detect_outliers_model",
)
__all__ = list(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module("pointae.impute.api"), name)
    raise AttributeError(f"module 'pointae.impute' has no attribute {name!r}")
