"""Embeddings export, clustering, figures and the comparison report.

- :func:`~pointae.analysis.embed.embed`: latents -> AnnData ``.h5ad`` / CSV / NPY (streaming)
- :mod:`~pointae.analysis.cluster`: layouts (PHATE/UMAP/t-SNE), clusterings, label metrics, the
  PCA-of-distances baseline; :func:`~pointae.analysis.clustering.cluster_embedding` for files
- :func:`~pointae.analysis.compare.compare`: one model per representation x task, one report
- :func:`~pointae.analysis.demo.demo`: the main job (simulate, compare, report)

Submodules import their heavy dependencies lazily.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "embed": "pointae.analysis.embed",
    "EmbedResult": "pointae.analysis.embed",
    "cluster_embedding": "pointae.analysis.clustering",
    "compare": "pointae.analysis.compare",
    "demo": "pointae.analysis.demo",
    "write_report": "pointae.analysis.report",
    "label_metrics": "pointae.analysis.cluster",
    "compute_layout": "pointae.analysis.cluster",
    "cluster_points": "pointae.analysis.cluster",
    "DistancePCA": "pointae.baselines",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'pointae.analysis' has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), name)
