"""``pointae cluster``: layout, clusters and figures for an embedding file, metrics vs labels.

:func:`cluster_embedding` reads an ``.h5ad`` written by :func:`pointae.analysis.embed.embed`,
adds ``obsm['X_<layout>']`` (if missing) and ``obs['cluster']`` (+ ``uns['pointae_cluster']``),
writes it back, and writes into ``out``:

- ``layout_by_label.png``: the layout coloured by cluster and by each label column;
- ``layout_thumbnails.png``: the layout with maps drawn at representative points (decoded from
  those points' latents when the model's run directory is available, else the traces' own maps);
- ``cluster_mean_maps.png``: per-cluster mean distance maps side by side (from the traces when the
  source file is available, else decoded from cluster-mean latents);
- ``cluster_metrics.json``: ``{"labels": {col: {"pointae": metrics, "pca_dist": metrics}}, ...}``
  with the metrics of :func:`pointae.analysis.cluster.label_metrics`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from pointae.errors import PointaeError, atomic_path

__all__ = ["cluster_embedding", "decoder_for", "maps_at"]


def decoder_for(model) -> Any:
    """A function ``z (K, d) -> maps (K, L, L)`` in data units for a loaded model, or ``None``."""
    if model is None:
        return None
    for name in ("decode_latents", "decode"):
        fn = getattr(model, name, None)
        if callable(fn):

            def dec(z, fn=fn):
                return np.asarray(fn(np.asarray(z, dtype=np.float32)), dtype=np.float32)

            return dec
    return None


def maps_at(traces, indices: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """Distance maps ``(K, L, L)`` of the traces at ``indices`` (streams over a file)."""
    from pointae.analysis.embed import iter_batches

    indices = np.asarray(indices, dtype=np.int64)
    out: dict[int, np.ndarray] = {}
    start = 0
    for chunk in iter_batches(traces, batch_size):
        sel = indices[(indices >= start) & (indices < start + len(chunk))]
        if sel.size:
            m = chunk.distance_maps(sel - start)
            for i, mm in zip(sel, m):
                out[int(i)] = mm
        start += len(chunk)
        if len(out) == len(np.unique(indices)):
            break
    return np.stack([out[int(i)] for i in indices])


def _cluster_mean_maps(traces, clusters: np.ndarray, trace_ids: np.ndarray, batch_size: int = 4096):
    from pointae.analysis.cluster import ClusterMeans
    from pointae.analysis.embed import iter_batches

    acc = None
    start = 0
    for chunk in iter_batches(traces, batch_size):
        ids = trace_ids[start : start + len(chunk)]
        if len(ids) != len(chunk) or not np.array_equal(ids, chunk.trace_ids):
            raise PointaeError(
                "the traces do not match the embedding (trace ids differ); pass the file embedded"
            )
        if acc is None:
            acc = ClusterMeans(int(clusters.max()) + 1, chunk.n_loci)
        acc.update(chunk.distance_maps(), clusters[start : start + len(chunk)])
        start += len(chunk)
    if acc is None or start != len(clusters):
        raise PointaeError(f"the traces have {start} rows but the embedding {len(clusters)}")
    return acc.means(), acc.sizes


def _source(uns: dict, data) -> Any:
    if data is not None:
        return data
    src = uns.get("source", "null")
    if isinstance(src, str) and src != "null" and Path(src).exists():
        return src
    return None


def _model(uns: dict, model) -> Any:
    if model is not None:
        return model
    run = uns.get("run_dir", "null")
    if isinstance(run, str) and run != "null" and Path(run).is_dir():
        from pointae.analysis.embed import load_model

        try:
            return load_model(run)
        except Exception:  # noqa: BLE001 - a missing/broken run only removes the decoded figures
            return None
    return None


def cluster_embedding(
    emb: str | os.PathLike,
    out: str | os.PathLike | None = None,
    layout: str = "phate",
    clusters: str = "kmeans",
    k: int | None = None,
    labels: list[str] | None = None,
    seed: int = 0,
    data=None,
    model=None,
    n_thumbnails: int = 12,
    write_back: bool = True,
) -> dict:
    """Cluster an embedding file, score it against labels (with the PCA baseline) and draw figures.

    Parameters
    ----------
    emb
        ``.h5ad`` from :func:`pointae.analysis.embed.embed`.
    out
        Folder for figures and ``cluster_metrics.json`` (default: ``<emb stem>_cluster`` beside it).
    layout
        ``phate``, ``umap`` or ``tsne`` (reused when ``obsm['X_<layout>']`` exists).
    clusters
        ``kmeans``, ``leiden`` or ``agglomerative``.
    k
        Number of clusters; default: number of classes of the first label column, else 8.
    labels
        obs columns to score against; default: every categorical-looking column.
    data, model
        Traces (or path) and loaded model overriding ``uns['pointae']['source'/'run_dir']``.
    write_back
        Rewrite ``emb`` with the layout and cluster assignment.

    Returns
    -------
    dict
        The content of ``cluster_metrics.json`` plus ``figures`` (name -> path).
    """
    import anndata as ad

    from pointae.analysis.cluster import cluster_points, compute_layout, label_columns, label_metrics
    from pointae.analysis.cluster import representative_points as reps
    from pointae.viz.maps import layout_panels, layout_with_thumbnails, map_grid, save_figure

    emb = Path(emb)
    if not emb.is_file():
        raise PointaeError(f"{emb}: no such embedding file")
    if emb.suffix.lower() != ".h5ad":
        raise PointaeError(f"{emb}: expected an AnnData .h5ad file written by 'pointae embed'")
    try:
        adata = ad.read_h5ad(emb)
    except Exception as e:  # noqa: BLE001
        raise PointaeError(f"{emb}: cannot read as AnnData ({e.__class__.__name__})") from None
    if "X_pointae" not in adata.obsm:
        raise PointaeError(f"{emb}: no obsm['X_pointae'] (latents); was it written by 'pointae embed'?")
    out = Path(out) if out is not None else emb.with_name(emb.stem + "_cluster")
    out.mkdir(parents=True, exist_ok=True)
    uns = dict(adata.uns.get("pointae", {}))
    z = np.asarray(adata.obsm["X_pointae"], dtype=np.float64)
    cols = label_columns(adata.obs, labels)
    if k is None:
        k = int(adata.obs[cols[0]].astype(str).nunique()) if cols else 8
        k = max(2, min(k, len(z)))

    key = f"X_{layout}"
    if key in adata.obsm:
        xy = np.asarray(adata.obsm[key])
    else:
        xy = compute_layout(z, layout, seed=seed)
        adata.obsm[key] = xy.astype(np.float32)
    cl = cluster_points(z, clusters, k=k, seed=seed)
    adata.obs["cluster"] = np.asarray(cl).astype(str)
    adata.obs["cluster"] = adata.obs["cluster"].astype("category")
    adata.uns["pointae_cluster"] = {
        "method": clusters,
        "k": int(cl.max()) + 1,
        "layout": layout,
        "seed": seed,
    }

    reprs = {"pointae": z}
    if "X_pca_dist" in adata.obsm:
        reprs["pca_dist"] = np.asarray(adata.obsm["X_pca_dist"], dtype=np.float64)
    metrics: dict[str, Any] = {
        "n_obs": int(len(z)),
        "latent_dim": int(z.shape[1]),
        "layout": layout,
        "clustering": clusters,
        "k": int(cl.max()) + 1,
        "labels": {},
        "clusters_vs_labels": {},
    }
    for c in cols:
        y = adata.obs[c].to_numpy()
        metrics["labels"][c] = {name: label_metrics(r, y, seed=seed) for name, r in reprs.items()}
        metrics["clusters_vs_labels"][c] = label_metrics(z, y, clusters=cl, seed=seed)

    figures: dict[str, str] = {}
    panels = {f"cluster ({clusters}, k={int(cl.max()) + 1})": cl}
    for c in cols:
        panels[c] = adata.obs[c].astype(str).to_numpy()
    p = out / "layout_by_label.png"
    save_figure(layout_panels(xy, panels, suptitle=f"{layout.upper()} of pointae latents"), p)
    figures["layout_by_label"] = str(p)

    src = _source(uns, data)
    mdl = _model(uns, model)
    dec = decoder_for(mdl)
    anchors = reps(xy, n=n_thumbnails, seed=seed)
    thumbs, what = None, ""
    if dec is not None:
        try:
            thumbs, what = dec(z[anchors]), "decoded from the latents"
        except PointaeError:
            dec = None  # e.g. a U-Net whose reconstruction needs skip paths
    if thumbs is None and src is not None:
        thumbs, what = maps_at(src, anchors), "the traces' measured maps"
    if thumbs is not None:
        p = out / "layout_thumbnails.png"
        fig = layout_with_thumbnails(
            xy, cl, anchors, thumbs, title=f"{layout.upper()} layout; thumbnails: {what}"
        )
        save_figure(fig, p, dpi=110)
        figures["layout_thumbnails"] = str(p)
    means, sizes, how = None, None, ""
    if src is not None:
        means, sizes = _cluster_mean_maps(src, cl, adata.obs["trace_id"].astype(str).to_numpy())
        how = "mean of measured maps"
    elif dec is not None:
        centroids = np.stack([z[cl == i].mean(0) for i in range(int(cl.max()) + 1)])
        means, sizes, how = dec(centroids), np.bincount(cl), "decoded cluster-mean latent"
    if means is not None:
        p = out / "cluster_mean_maps.png"
        titles = [f"cluster {i} (n={int(s)})" for i, s in enumerate(sizes)]
        unit = str(uns.get("unit", ""))
        save_figure(map_grid(means, titles=titles, ncols=min(6, len(means)), suptitle=how, unit=unit), p)
        figures["cluster_mean_maps"] = str(p)
    metrics["figures"] = figures
    metrics["thumbnails"] = what or "none (no model run directory or source traces available)"
    with atomic_path(out / "cluster_metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2, default=float))
    if write_back:
        with atomic_path(emb) as tmp:
            adata.write_h5ad(tmp)
    return metrics
