"""2D layouts, clusterings and label metrics of embeddings, plus the PCA-of-distances baseline.

All functions take plain arrays: ``z`` is ``(N, d)`` (latents or any representation), labels are
``(N,)``. Distances between points are Euclidean on the raw features: no per-feature scaling, so a
representation is judged by its own geometry (k-means, kNN and silhouette are invariant to a global
scale factor). Metrics on very large inputs are computed on a seeded random subsample
(``max_points``), stated in the returned dict.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import numpy as np

from pointae import registry
from pointae.baselines import DistancePCA, upper_triangle_features  # noqa: F401  (public here too)
from pointae.errors import PointaeError

Layout = Literal["phate", "umap", "tsne", "pca"]
Clustering = Literal["kmeans", "leiden", "agglomerative"]
LAYOUTS = registry.layouts.where()  # live views of pointae.registry
CLUSTERINGS = registry.clusterings.where()

__all__ = [
    "LAYOUTS",
    "CLUSTERINGS",
    "compute_layout",
    "cluster_points",
    "knn_accuracy",
    "label_metrics",
    "compare_to_labels",
    "upper_triangle_features",
    "DistancePCA",
    "representative_points",
    "ClusterMeans",
]


def _check_z(z) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or len(z) == 0:
        raise PointaeError(f"embedding must have shape (N, d) with N > 0, got {z.shape}")
    if not np.isfinite(z).all():
        raise PointaeError("embedding contains NaN or infinite values")
    return z


# ------------------------------------------------------------------------------------ layouts
def compute_layout(z: np.ndarray, method: str = "phate", seed: int = 0, n_jobs: int = 1) -> np.ndarray:
    """A 2D layout of the points.

    Parameters
    ----------
    z
        ``(N, d)`` points.
    method
        ``"phate"`` (PHATE, landmark-based so it scales to 10^6 points), ``"umap"``, ``"tsne"``
        (scikit-learn; exact below 1000 points, Barnes-Hut above; slow beyond ~10^5 points) or
        ``"pca"`` (the first two principal components: linear, instant).
    seed
        Random state of the layout.

    Returns
    -------
    numpy.ndarray
        ``(N, 2)`` float32.
    """
    z = _check_z(z)
    n = len(z)
    if n < 3:
        return np.concatenate([z[:, :2], np.zeros((n, max(0, 2 - z.shape[1])))], 1).astype(np.float32)
    if method == "phate":
        try:
            import phate
        except ImportError as e:  # pragma: no cover - part of the analysis extra
            raise PointaeError(
                "the PHATE layout needs the 'phate' package: pip install 'pointae[analysis]'"
            ) from e
        op = phate.PHATE(
            n_components=2, knn=min(5, n - 2), random_state=seed, n_jobs=n_jobs, verbose=0, n_landmark=2000
        )
        xy = op.fit_transform(z)
    elif method == "umap":
        try:
            import umap
        except ImportError as e:  # pragma: no cover
            raise PointaeError("the UMAP layout needs 'umap-learn': pip install 'pointae[analysis]'") from e
        xy = umap.UMAP(n_components=2, n_neighbors=min(15, n - 1), random_state=seed, n_jobs=1).fit_transform(
            z
        )
    elif method == "tsne":
        from sklearn.manifold import TSNE

        method_ = "exact" if n <= 1000 else "barnes_hut"
        tsne = TSNE(
            n_components=2, perplexity=min(30.0, (n - 1) / 3.0), random_state=seed, init="pca", method=method_
        )
        xy = tsne.fit_transform(z)
    elif method == "pca":
        from sklearn.decomposition import PCA

        xy = PCA(n_components=min(2, z.shape[1]), random_state=seed).fit_transform(z)
        if xy.shape[1] < 2:
            xy = np.concatenate([xy, np.zeros((n, 2 - xy.shape[1]))], 1)
    else:
        raise PointaeError(f"unknown layout {method!r}; expected one of {', '.join(LAYOUTS)}")
    return np.asarray(xy, dtype=np.float32)


# ------------------------------------------------------------------------------------ clustering
def cluster_points(
    z: np.ndarray,
    method: str = "kmeans",
    k: int = 8,
    seed: int = 0,
    n_neighbors: int = 15,
    resolution: float = 1.0,
) -> np.ndarray:
    """Cluster assignment of every point.

    Parameters
    ----------
    z
        ``(N, d)``.
    method
        ``"kmeans"`` (mini-batch k-means above 10^5 points), ``"agglomerative"`` (Ward) or
        ``"leiden"`` (on the kNN graph; needs the optional ``leidenalg`` and ``igraph`` packages;
        ``k`` is ignored and ``resolution`` sets the granularity).
    k
        Number of clusters.

    Returns
    -------
    numpy.ndarray
        ``(N,)`` int64 cluster ids ``0..K-1``.
    """
    z = _check_z(z)
    n = len(z)
    if method not in CLUSTERINGS:
        raise PointaeError(f"unknown clustering {method!r}; expected one of {', '.join(CLUSTERINGS)}")
    if method != "leiden" and not 1 <= k <= n:
        raise PointaeError(f"number of clusters must be between 1 and {n} (the number of points), got {k}")
    if method == "kmeans":
        if n > 100_000:
            from sklearn.cluster import MiniBatchKMeans

            km = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=4096)
        else:
            from sklearn.cluster import KMeans

            km = KMeans(n_clusters=k, random_state=seed, n_init=10)
        return km.fit_predict(z).astype(np.int64)
    if method == "agglomerative":
        if n > 50_000:
            raise PointaeError(
                f"agglomerative clustering of {n} points needs O(N^2) memory; use --clusters kmeans or leiden"
            )
        from sklearn.cluster import AgglomerativeClustering

        return AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(z).astype(np.int64)
    # leiden
    try:
        import igraph
        import leidenalg
    except ImportError as e:
        raise PointaeError(
            "leiden clustering needs the optional packages 'leidenalg' and 'igraph' "
            "(pip install leidenalg igraph); or use --clusters kmeans|agglomerative"
        ) from e
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=min(n_neighbors + 1, n)).fit(z)
    _, idx = nn.kneighbors(z)
    edges = {(min(i, j), max(i, j)) for i, row in enumerate(idx) for j in row[1:] if i != j}
    g = igraph.Graph(n=n, edges=sorted(edges))
    part = leidenalg.find_partition(
        g, leidenalg.RBConfigurationVertexPartition, resolution_parameter=resolution, seed=seed
    )
    return np.asarray(part.membership, dtype=np.int64)


# ------------------------------------------------------------------------------------ metrics
def _encode_labels(labels) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).astype(str)
    classes, codes = np.unique(y, return_inverse=True)
    return classes, codes


def knn_accuracy(z: np.ndarray, labels, k: int = 15, folds: int = 5, seed: int = 0) -> float:
    """Cross-validated accuracy of a k-nearest-neighbour classifier predicting ``labels`` from ``z``.

    Stratified ``folds``-fold CV (plain shuffled K-fold when a class is rarer than ``folds``).
    """
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    z = _check_z(z)
    _, y = _encode_labels(labels)
    n = len(y)
    folds = max(2, min(folds, n))
    counts = np.bincount(y)
    if counts.min() >= folds:
        cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    else:
        cv = KFold(n_splits=folds, shuffle=True, random_state=seed)
    k = max(1, min(k, int(n * (folds - 1) / folds) - 1))
    scores = cross_val_score(KNeighborsClassifier(n_neighbors=k), z, y, cv=cv)
    return float(np.mean(scores))


def _known_labels(labels) -> tuple[np.ndarray, np.ndarray]:
    """Labels as str ``(N,)`` and a bool mask of the points that have one (not None/NaN/"")."""
    import pandas as pd

    raw = pd.Series(np.asarray(labels, dtype=object))
    known = (~raw.isna() & (raw.astype(str) != "")).to_numpy()
    return raw.astype(str).to_numpy(), known


def label_metrics(
    z: np.ndarray,
    labels,
    clusters: np.ndarray | None = None,
    seed: int = 0,
    knn_k: int = 15,
    folds: int = 5,
    max_points: int = 20_000,
) -> dict:
    """How well a representation ``z`` agrees with a label column.

    Parameters
    ----------
    z
        ``(N, d)``.
    labels
        ``(N,)`` categorical labels (converted to str). Missing labels (None, NaN, ``""``) mark
        points outside the label's scope (e.g. a state defined for one condition only): they are left
        out of every metric.
    clusters
        ``(N,)`` cluster ids to score; by default k-means on ``z`` with ``k`` = number of classes.
    max_points
        Above this many points all metrics use a seeded random subsample of that size.

    Returns
    -------
    dict
        ``ari`` and ``nmi`` (clusters vs labels), ``knn_accuracy`` (cross-validated),
        ``silhouette`` (of the labels in ``z``; NaN with one class), ``chance_accuracy``
        (majority-class rate), ``n_classes``, ``n_points``, ``clustering``.
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score

    z = _check_z(z)
    y_all, known = _known_labels(labels)
    if len(y_all) != len(z):
        raise PointaeError(f"{len(y_all)} labels for {len(z)} points")
    sel = np.flatnonzero(known)
    if len(sel) == 0:
        raise PointaeError("no point has a label")
    if len(sel) > max_points:
        sel = np.sort(np.random.default_rng(seed).choice(sel, size=max_points, replace=False))
    zs, ys = z[sel], y_all[sel]
    classes, codes = _encode_labels(ys)
    n_classes = len(classes)
    how = "given"
    if clusters is None:
        how = f"kmeans(k={n_classes})"
        cl = cluster_points(zs, "kmeans", k=max(1, n_classes), seed=seed)
    else:
        cl = np.asarray(clusters)[sel]
    out = {
        "ari": float(adjusted_rand_score(codes, cl)),
        "nmi": float(normalized_mutual_info_score(codes, cl)),
        "knn_accuracy": knn_accuracy(zs, ys, k=knn_k, folds=folds, seed=seed) if n_classes > 1 else 1.0,
        "silhouette": float("nan"),
        "chance_accuracy": float(np.bincount(codes).max() / len(codes)),
        "n_classes": int(n_classes),
        "n_points": int(len(sel)),
        "clustering": how,
    }
    if 1 < n_classes < len(zs):
        out["silhouette"] = float(
            silhouette_score(zs, codes, sample_size=min(len(zs), 5000), random_state=seed)
        )
    return out


def compare_to_labels(
    representations: dict[str, np.ndarray], label_columns: dict[str, np.ndarray], seed: int = 0, **kw
) -> dict[str, dict[str, dict]]:
    """:func:`label_metrics` for every representation and label: ``{label: {repr: metrics}}``."""
    return {
        lab: {name: label_metrics(z, y, seed=seed, **kw) for name, z in representations.items()}
        for lab, y in label_columns.items()
    }


# ------------------------------------------------------------------------------------ baseline
def representative_points(xy: np.ndarray, n: int = 12, seed: int = 0) -> np.ndarray:
    """Indices of ``n`` points spread over a 2D layout (the point nearest each k-means centre).

    Returns
    -------
    numpy.ndarray
        ``(K,)`` unique int indices, ``K <= n``.
    """
    from sklearn.cluster import KMeans

    xy = _check_z(xy)
    n = min(n, len(xy))
    sub = xy
    if len(xy) > 50_000:
        sub = xy[np.random.default_rng(seed).choice(len(xy), 50_000, replace=False)]
    centres = KMeans(n_clusters=n, random_state=seed, n_init=4).fit(sub).cluster_centers_
    d = ((xy[:, None, :] - centres[None]) ** 2).sum(-1) if len(xy) <= 50_000 else None
    if d is None:
        idx = [int(np.argmin(((xy - c) ** 2).sum(-1))) for c in centres]
    else:
        idx = list(np.argmin(d, axis=0))
    return np.unique(np.asarray(idx, dtype=np.int64))


class ClusterMeans:
    """Streaming per-cluster mean of distance maps (NaN pairs ignored).

    Feed batches with :meth:`update` (maps ``(B, L, L)`` and their cluster ids ``(B,)``); read
    :meth:`means` ``(K, L, L)`` and :attr:`sizes` ``(K,)``.
    """

    def __init__(self, n_clusters: int, n_loci: int):
        self.sum = np.zeros((n_clusters, n_loci, n_loci), np.float64)
        self.cnt = np.zeros((n_clusters, n_loci, n_loci), np.int64)
        self.sizes = np.zeros(n_clusters, np.int64)

    def update(self, maps: np.ndarray, clusters: np.ndarray) -> None:
        maps = np.asarray(maps, dtype=np.float64)
        ok = np.isfinite(maps)
        np.add.at(self.sum, clusters, np.where(ok, maps, 0.0))
        np.add.at(self.cnt, clusters, ok.astype(np.int64))
        np.add.at(self.sizes, clusters, 1)

    def means(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return (self.sum / self.cnt).astype(np.float32)


def label_columns(obs, requested: Iterable[str] | None = None, max_classes: int = 50) -> list[str]:
    """The label columns to score: ``requested`` (checked), else every categorical-looking column.

    A column qualifies automatically when it is not ``trace_id``/``cluster``, is non-numeric or
    integer, and has 2..``max_classes`` distinct values, fewer than half the number of rows.
    """
    cols = list(obs.columns)
    if requested:
        req = list(requested)
        bad = [c for c in req if c not in cols]
        if bad:
            raise PointaeError(f"label column(s) {', '.join(bad)} not found; available: {', '.join(cols)}")
        return req
    out = []
    for c in cols:
        if c in ("trace_id", "cluster", "missing_fraction", "n_observed") or c.startswith("_"):
            continue
        s = obs[c]
        if s.dtype.kind == "f":
            continue
        try:
            nu = s.astype(str).nunique()
        except Exception:  # noqa: BLE001 - unhashable cells: not a label
            continue
        if 2 <= nu <= max_classes and nu < max(2, len(s) / 2):
            out.append(c)
    return out
