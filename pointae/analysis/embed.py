"""Export latents of a trained model as AnnData (``.h5ad``), CSV or NPY, streaming over big inputs.

The AnnData file is what single-cell analysts already use (scanpy, scverse):

========================  ==============================================================================
field                     content
========================  ==============================================================================
``obs``                   the traces' metadata (index = ``trace_id``; every meta column, e.g.
                          ``condition``, ``loop_state``) plus ``missing_fraction`` (float, share of
                          loci not observed) and ``n_observed`` (int)
``X``                     the latents again ``(N, d)`` float32 (so ``scanpy.pp.neighbors`` works as is)
``var``                   one row per latent dimension: ``z0 .. z{d-1}``
``obsm['X_pointae']``     latents ``(N, d)`` float32
``obsm['X_pca_dist']``    the baseline: PCA (same ``d``) of the upper-triangle distance vector after
                          linear interpolation of missing loci (``analysis.cluster.DistancePCA``)
``obsm['X_phate']``       2D PHATE layout of the latents (``X_umap``/``X_tsne`` when asked)
``uns['pointae']``        provenance: ``version``, ``created`` (UTC ISO time), ``run_dir``, ``source``,
                          ``n_obs``, ``n_loci``, ``latent_dim``, ``unit``, ``layouts``, ``baseline``
                          (dict), ``config`` (the model's resolved config, nested), ``config_json`` and
                          ``attrs_json`` (exact JSON of the config and of the traces' ``attrs``)
========================  ==============================================================================

``.csv`` holds ``obs`` columns, ``z0..`` and the layout columns (``phate1``, ``phate2``); ``.npy`` holds
the latents only, ``(N, d)`` float32, rows in input order.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pointae.errors import PointaeError, atomic_path

__all__ = ["embed", "EmbedResult", "iter_batches", "load_model", "to_uns", "SUFFIXES"]

SUFFIXES = (".h5ad", ".csv", ".npy")


# ------------------------------------------------------------------------------------ inputs
def load_model(run_or_model):
    """A model object with ``encode(traces, batch_size=...) -> (N, d)``.

    ``run_or_model`` is a run directory (loaded with :meth:`pointae.PointAE.load`, from
    ``model.json`` + ``model.safetensors``) or an object that already has ``encode``.
    """
    if not isinstance(run_or_model, (str, os.PathLike)) and hasattr(run_or_model, "encode"):
        return run_or_model
    path = Path(run_or_model)
    if not path.is_dir():
        raise PointaeError(f"{path}: not a run directory (expected the output folder of 'pointae train')")
    from pointae.api import PointAE

    model = PointAE.load(path)
    if model.kind != "autoencoder":
        raise PointaeError(f"{path}: an {model.kind} run has no latents to embed (train an autoencoder)")
    return model


def iter_batches(traces, batch_size: int) -> Iterator:
    """Yield :class:`~pointae.Traces` chunks of at most ``batch_size`` traces.

    ``traces`` is a :class:`~pointae.Traces`, or a path read chunk by chunk with
    :func:`pointae.data.io.iter_traces` (so the whole file is never held in memory).
    """
    if batch_size < 1:
        raise PointaeError(f"batch size must be >= 1, got {batch_size}")
    if isinstance(traces, (str, os.PathLike)):
        from pointae.data.io import iter_traces

        yield from iter_traces(traces, chunk_size=batch_size)
        return
    for s in range(0, len(traces), batch_size):
        yield traces[s : s + batch_size]


def _model_config(model) -> dict:
    cfg = getattr(model, "config", None)
    if cfg is None:
        return {}
    if hasattr(cfg, "to_dict"):
        cfg = cfg.to_dict()
    return dict(cfg) if isinstance(cfg, dict) else {}


def _model_scale(model) -> float | None:
    for name in ("scale", "data_scale"):
        v = getattr(model, name, None)
        if isinstance(v, (int, float)) and np.isfinite(v) and v > 0:
            return float(v)
    return None


# ------------------------------------------------------------------------------------ uns sanitiser
def to_uns(obj: Any) -> Any:
    """Make a JSON-able value storable in ``AnnData.uns`` (and in ``.h5ad``).

    Dicts stay dicts (keys as str), scalars stay scalars, ``None`` becomes the string ``"null"``,
    homogeneous lists of numbers/strings become arrays, anything else becomes its JSON text.
    """
    if isinstance(obj, dict):
        return {str(k): to_uns(v) for k, v in obj.items()}
    if obj is None:
        return "null"
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, float, str, np.integer, np.floating)):
        return obj
    if isinstance(obj, (list, tuple)):
        if obj and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in obj):
            return np.asarray(obj)
        if obj and all(isinstance(v, str) for v in obj):
            return np.asarray(obj, dtype=object)
    return json.dumps(obj, default=str)


def _obs_frame(meta: pd.DataFrame) -> pd.DataFrame:
    """Metadata as an AnnData-safe ``obs``: str index = trace_id, no mixed-object columns."""
    obs = meta.copy()
    for c in obs.columns:
        s = obs[c]
        if s.dtype == object:
            if not all(isinstance(v, str) for v in s):
                obs[c] = [v if isinstance(v, str) else json.dumps(v, default=str) for v in s]
    obs.index = pd.Index(obs["trace_id"].astype(str).to_numpy(), name="trace_index")
    if obs.index.has_duplicates:
        obs.index = pd.Index(
            pd.Series(obs.index).where(~pd.Series(obs.index).duplicated(), obs.index + "-dup").to_numpy()
        )
    return obs


# ------------------------------------------------------------------------------------ result
@dataclass
class EmbedResult:
    """What :func:`embed` computed (also written to ``paths``).

    Attributes
    ----------
    latents
        ``(N, d)`` float32.
    obs
        Metadata with ``missing_fraction`` and ``n_observed``.
    layouts
        ``{"phate": (N, 2), ...}``.
    baseline
        ``(N, d)`` PCA-of-distances codes, or ``None``.
    uns
        The provenance dict stored as ``uns['pointae']``.
    paths
        Files written.
    """

    latents: np.ndarray
    obs: pd.DataFrame
    layouts: dict[str, np.ndarray] = field(default_factory=dict)
    baseline: np.ndarray | None = None
    uns: dict = field(default_factory=dict)
    paths: list[Path] = field(default_factory=list)

    def to_anndata(self):
        """Build the :class:`anndata.AnnData` described in the module docstring."""
        import anndata as ad

        z = np.ascontiguousarray(self.latents, dtype=np.float32)
        var = pd.DataFrame(index=[f"z{i}" for i in range(z.shape[1])])
        obsm = {"X_pointae": z}
        if self.baseline is not None:
            obsm["X_pca_dist"] = np.ascontiguousarray(self.baseline, dtype=np.float32)
        for name, xy in self.layouts.items():
            obsm[f"X_{name}"] = np.ascontiguousarray(xy, dtype=np.float32)
        return ad.AnnData(X=z.copy(), obs=_obs_frame(self.obs), var=var, obsm=obsm, uns={"pointae": self.uns})

    def to_frame(self) -> pd.DataFrame:
        """Flat table: obs columns, ``z0..``, layout columns ``<name>1``/``<name>2``."""
        df = self.obs.reset_index(drop=True).copy()
        for i in range(self.latents.shape[1]):
            df[f"z{i}"] = self.latents[:, i]
        for name, xy in self.layouts.items():
            df[f"{name}1"], df[f"{name}2"] = xy[:, 0], xy[:, 1]
        return df


def write_outputs(result: EmbedResult, outs: Sequence[str | os.PathLike]) -> list[Path]:
    """Write ``result`` to each path in ``outs``; the suffix picks the format (atomic writes)."""
    written = []
    for out in outs:
        out = Path(out)
        suffix = out.suffix.lower()
        if suffix not in SUFFIXES:
            raise PointaeError(f"{out}: unknown output format; use one of {', '.join(SUFFIXES)}")
        with atomic_path(out) as tmp:
            if suffix == ".h5ad":
                result.to_anndata().write_h5ad(tmp)
            elif suffix == ".csv":
                result.to_frame().to_csv(tmp, index=False)
            else:
                with open(tmp, "wb") as fh:
                    np.save(fh, np.ascontiguousarray(result.latents, dtype=np.float32))
        written.append(out)
    return written


# ------------------------------------------------------------------------------------ main entry
def embed(
    run_dir,
    traces,
    out: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    batch_size: int = 1024,
    layouts: Iterable[str] = ("phate",),
    baseline: bool = True,
    baseline_fit_max: int = 50_000,
    seed: int = 0,
    n_jobs: int = 1,
) -> EmbedResult:
    """Encode traces with a trained model and export the latents.

    Streams: the input is read in chunks of ``batch_size`` traces (from a file via
    :func:`pointae.data.io.iter_traces`), each chunk is encoded and its latents appended to a
    scratch file, so memory holds one chunk's maps at a time plus the ``(N, d)`` latents. The PCA
    baseline is fitted incrementally on the first ``baseline_fit_max`` traces and applied in a
    second pass.

    Parameters
    ----------
    run_dir
        Run directory of a trained model, or a loaded model with ``encode``.
    traces
        :class:`~pointae.Traces` or a path to any trace file pointae reads.
    out
        Output path(s); ``.h5ad`` (AnnData), ``.csv`` or ``.npy`` by suffix. ``None`` writes nothing.
    batch_size
        Traces per chunk.
    layouts
        2D layouts to compute on the latents: any of ``phate``, ``umap``, ``tsne``; empty for none.
    baseline
        Also compute the PCA-of-distances baseline codes (``obsm['X_pca_dist']``).
    seed
        Random state of layouts.

    Returns
    -------
    EmbedResult
        Latents ``(N, d)``, obs, layouts, baseline codes, provenance and written paths.
    """
    from pointae._version import __version__
    from pointae.analysis.cluster import LAYOUTS, DistancePCA, compute_layout

    layouts = tuple(layouts)
    for name in layouts:
        if name not in LAYOUTS:
            raise PointaeError(f"unknown layout {name!r}; expected one of {', '.join(LAYOUTS)}")
    outs = [] if out is None else ([out] if isinstance(out, (str, os.PathLike)) else list(out))
    for o in outs:
        if Path(o).suffix.lower() not in SUFFIXES:
            raise PointaeError(f"{o}: unknown output format; use one of {', '.join(SUFFIXES)}")
    model = load_model(run_dir)
    source = str(traces) if isinstance(traces, (str, os.PathLike)) else None

    metas: list[pd.DataFrame] = []
    n_total, d, n_loci, unit, attrs = 0, None, None, None, {}
    pca: DistancePCA | None = None
    fitted_on = 0
    with tempfile.TemporaryDirectory(prefix="pointae-embed-") as scratch:
        zfile = Path(scratch) / "latents.f32"
        with open(zfile, "wb") as fh:
            for chunk in iter_batches(traces, batch_size):
                if len(chunk) == 0:
                    continue
                if n_loci is None:
                    n_loci, unit, attrs = chunk.n_loci, chunk.unit, dict(chunk.attrs)
                elif chunk.n_loci != n_loci:
                    raise PointaeError(
                        f"{source or 'traces'}: chunk with {chunk.n_loci} loci, expected {n_loci}"
                    )
                z = np.asarray(model.encode(chunk, batch_size=batch_size), dtype=np.float32)
                if z.ndim != 2 or len(z) != len(chunk):
                    raise PointaeError(f"model returned latents of shape {z.shape} for {len(chunk)} traces")
                if d is None:
                    d = z.shape[1]
                fh.write(np.ascontiguousarray(z).tobytes())
                m = chunk.meta.copy()
                mask = chunk.mask
                m["n_observed"] = mask.sum(1).astype(np.int64)
                m["missing_fraction"] = (1.0 - mask.mean(1)).astype(np.float64)
                metas.append(m)
                if baseline and fitted_on < baseline_fit_max:
                    if pca is None:
                        scale = _model_scale(model) or chunk.median_neighbour_distance()
                        pca = DistancePCA(n_components=min(d, n_loci * (n_loci - 1) // 2), scale=scale)
                    take = chunk.coords[: baseline_fit_max - fitted_on]
                    pca.partial_fit(take)
                    fitted_on += len(take)
                n_total += len(chunk)
        if n_total == 0:
            raise PointaeError(f"{source or 'traces'}: no traces to embed")
        latents = np.fromfile(zfile, dtype=np.float32).reshape(n_total, d)
    obs = pd.concat(metas, ignore_index=True)

    codes = None
    base_info: dict[str, Any] = {"computed": False}
    if baseline and pca is not None:
        if fitted_on < pca.n_components:
            base_info["reason"] = f"only {fitted_on} traces; PCA needs {pca.n_components}"
        else:
            pca.finish()
            parts = [pca.transform(c.coords) for c in iter_batches(traces, batch_size) if len(c)]
            codes = np.concatenate(parts).astype(np.float32)
            base_info = {
                "computed": True,
                "method": "PCA of upper-triangle distances after linear interpolation of missing loci",
                "n_components": pca.n_components,
                "fitted_on": fitted_on,
                "scale": pca.scale,
                "explained_variance_ratio": pca.explained_variance_ratio,
            }

    lay = {name: compute_layout(latents, name, seed=seed, n_jobs=n_jobs) for name in layouts}
    cfg = _model_config(model)
    run_path = getattr(model, "run_dir", None)
    uns = {
        "version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "run_dir": str(Path(run_path).resolve()) if run_path else "null",
        "source": str(Path(source).resolve()) if source else "null",
        "n_obs": int(n_total),
        "n_loci": int(n_loci),
        "latent_dim": int(d),
        "unit": unit,
        "scale": _model_scale(model) or "null",
        "layouts": list(layouts),
        "baseline": base_info,
        "config": cfg,
        "config_json": json.dumps(cfg, default=str),
        "attrs_json": json.dumps(attrs, default=str),
    }
    result = EmbedResult(latents=latents, obs=obs, layouts=lay, baseline=codes, uns=to_uns(uns))
    result.paths = write_outputs(result, outs)
    return result
