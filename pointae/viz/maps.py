"""Matplotlib helpers for distance maps and 2D embeddings (headless, Agg backend).

Every function takes arrays (never files), draws on a new or given figure, and returns the
:class:`matplotlib.figure.Figure`; :func:`figure_png` turns a figure into PNG bytes for reports.
matplotlib is imported inside the functions so importing this module stays cheap.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

MAP_CMAP = "seismic_r"  # small distance = red ("contact"), large = blue, as in Bintu et al. 2018
ERR_CMAP = "RdBu_r"


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def figure_png(fig, dpi: int = 100) -> bytes:
    """Render ``fig`` to PNG bytes and close it."""
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def save_figure(fig, path, dpi: int = 100) -> None:
    """Write ``fig`` as PNG to ``path`` atomically and close it."""
    from pointae.errors import atomic_path

    data = figure_png(fig, dpi=dpi)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def _map_limits(maps: np.ndarray, vmax: float | None) -> float:
    if vmax is not None:
        return float(vmax)
    finite = np.asarray(maps, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return float(np.percentile(finite, 98)) if finite.size else 1.0


def plot_map(dmap: np.ndarray, ax=None, vmax: float | None = None, title: str | None = None, cmap=MAP_CMAP):
    """Draw one distance map ``(L, L)`` (NaN drawn grey) on ``ax``; returns the image artist."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(3, 3))
    m = np.ma.masked_invalid(np.asarray(dmap, dtype=np.float64))
    cm = plt.get_cmap(cmap).copy()
    cm.set_bad("#cccccc")
    im = ax.imshow(m, cmap=cm, vmin=0.0, vmax=_map_limits(dmap, vmax), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)
    return im


def map_grid(
    maps: np.ndarray,
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    vmax: float | None = None,
    cmap=MAP_CMAP,
    suptitle: str | None = None,
    panel: float = 1.8,
    unit: str = "",
):
    """Maps ``(K, L, L)`` side by side on one shared colour scale, with one colour bar.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    maps = np.asarray(maps)
    k = len(maps)
    ncols = min(k, ncols or k) if k else 1
    nrows = max(1, int(np.ceil(k / ncols)))
    vmax = _map_limits(maps, vmax)
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel * ncols + 0.8, panel * nrows + 0.4), squeeze=False)
    im = None
    for i, ax in enumerate(axes.ravel()):
        if i >= k:
            ax.axis("off")
            continue
        im = plot_map(maps[i], ax=ax, vmax=vmax, title=None if titles is None else titles[i], cmap=cmap)
    if im is not None:
        cb = fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8)
        if unit:
            cb.set_label(unit, fontsize=8)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return fig


def example_maps_figure(rows: dict[str, dict[str, np.ndarray]], unit: str = "", vmax: float | None = None):
    """A table of maps: one row per entry of ``rows``, one column per panel name.

    Parameters
    ----------
    rows
        ``{row_label: {column_label: map (L, L)}}``; columns whose label starts with ``"error"``
        are drawn with a diverging colour map centred on 0.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    row_labels = list(rows)
    col_labels: list[str] = []
    for r in rows.values():
        for c in r:
            if c not in col_labels:
                col_labels.append(c)
    plain = [m for r in rows.values() for c, m in r.items() if not c.startswith("error")]
    vmax = _map_limits(np.stack(plain) if plain else np.ones((1, 1)), vmax)
    errs = [np.abs(m) for r in rows.values() for c, m in r.items() if c.startswith("error")]
    emax = _map_limits(np.stack(errs), None) if errs else 1.0
    nr, nc = len(row_labels), len(col_labels)
    fig, axes = plt.subplots(nr, nc, figsize=(1.7 * nc + 1.8, 1.7 * nr + 0.3), squeeze=False)
    im_map = im_err = None
    for i, rl in enumerate(row_labels):
        for j, cl in enumerate(col_labels):
            ax = axes[i, j]
            m = rows[rl].get(cl)
            if m is None:
                ax.axis("off")
                continue
            if cl.startswith("error"):
                plt_cm = plt.get_cmap(ERR_CMAP).copy()
                plt_cm.set_bad("#cccccc")
                im_err = ax.imshow(
                    np.ma.masked_invalid(m), cmap=plt_cm, vmin=-emax, vmax=emax, interpolation="nearest"
                )
                ax.set_xticks([])
                ax.set_yticks([])
            else:
                im_map = plot_map(m, ax=ax, vmax=vmax)
            if i == 0:
                ax.set_title(cl, fontsize=8)
            if j == 0:
                ax.set_ylabel(rl, fontsize=8)
    fig.subplots_adjust(right=0.84, wspace=0.05, hspace=0.08)
    if im_map is not None:
        cax = fig.add_axes([0.86, 0.15, 0.015, 0.7])
        fig.colorbar(im_map, cax=cax, label=f"distance {unit}".strip())
    if im_err is not None:
        cax = fig.add_axes([0.93, 0.15, 0.015, 0.7])
        fig.colorbar(im_err, cax=cax, label=f"error {unit}".strip())
    return fig


def _colours_for(values: np.ndarray):
    """Map labels to colours: categorical (tab10/tab20) or continuous (viridis)."""
    plt = _plt()
    v = np.asarray(values)
    if v.dtype.kind in "fc" and len(np.unique(v[np.isfinite(v)])) > 20:
        return None, None
    cats = np.unique(v.astype(str))
    cmap = plt.get_cmap("tab10" if len(cats) <= 10 else "tab20")
    lut = {c: cmap(i % cmap.N) for i, c in enumerate(cats)}
    return lut, v.astype(str)


def scatter_layout(
    xy: np.ndarray, values: np.ndarray, ax=None, title: str | None = None, point_size: float | None = None
):
    """Scatter a 2D layout ``(N, 2)`` coloured by ``values`` ``(N,)`` (categorical or numeric)."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    xy = np.asarray(xy)
    n = len(xy)
    s = point_size if point_size is not None else float(np.clip(3000.0 / max(n, 1), 0.5, 12.0))
    lut, cats = _colours_for(values)
    if lut is None:
        sc = ax.scatter(xy[:, 0], xy[:, 1], c=np.asarray(values, float), s=s, cmap="viridis", linewidths=0)
        ax.figure.colorbar(sc, ax=ax, shrink=0.7)
    else:
        for c, col in lut.items():
            sel = cats == c
            ax.scatter(xy[sel, 0], xy[sel, 1], color=col, s=s, linewidths=0, label=c)
        if len(lut) <= 20:
            ax.legend(fontsize=6, markerscale=max(1.0, 6.0 / max(s, 0.1) ** 0.5), frameon=False, loc="best")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def layout_panels(
    xy: np.ndarray, columns: dict[str, np.ndarray], suptitle: str | None = None, ncols: int = 3
):
    """One panel per colouring in ``columns`` (e.g. cluster, condition, loop state)."""
    plt = _plt()
    k = len(columns)
    ncols = max(1, min(ncols, k))
    nrows = int(np.ceil(k / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.0 * ncols, 3.8 * nrows), squeeze=False)
    for ax, (name, vals) in zip(axes.ravel(), columns.items()):
        scatter_layout(xy, vals, ax=ax, title=name)
    for ax in axes.ravel()[k:]:
        ax.axis("off")
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def layout_with_thumbnails(
    xy: np.ndarray,
    colour: np.ndarray,
    anchors: np.ndarray,
    thumbs: np.ndarray,
    title: str | None = None,
    zoom: float = 0.09,
    vmax: float | None = None,
):
    """The layout with maps drawn as thumbnails at representative points.

    Parameters
    ----------
    xy
        ``(N, 2)`` layout.
    colour
        ``(N,)`` values colouring the background points (e.g. cluster).
    anchors
        ``(K,)`` indices into ``xy`` where thumbnails go.
    thumbs
        ``(K, L, L)`` maps (e.g. decoded from those points' latents).
    zoom
        Thumbnail width as a fraction of the axes width.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 7))
    scatter_layout(xy, colour, ax=ax, title=title)
    for lh in ax.get_legend().legend_handles if ax.get_legend() else []:
        lh.set_alpha(1.0)
    for coll in ax.collections:
        coll.set_alpha(0.35)
    vmax = _map_limits(thumbs, vmax)
    cm = plt.get_cmap(MAP_CMAP).copy()
    cm.set_bad("#cccccc")
    # place each thumbnail in axes-fraction coordinates centred on its anchor point
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    for idx, m in zip(anchors, thumbs):
        fx = (xy[idx, 0] - x0) / (x1 - x0)
        fy = (xy[idx, 1] - y0) / (y1 - y0)
        sub = ax.inset_axes([fx - zoom / 2, fy - zoom / 2, zoom, zoom])
        sub.imshow(np.ma.masked_invalid(m), cmap=cm, vmin=0, vmax=vmax, interpolation="nearest")
        sub.set_xticks([])
        sub.set_yticks([])
        for sp in sub.spines.values():
            sp.set_linewidth(0.6)
        ax.plot(xy[idx, 0], xy[idx, 1], "k.", ms=3)
    return fig


def line_plot(
    series: dict[str, tuple[Sequence[float], Sequence[float]]],
    xlabel: str,
    ylabel: str,
    title: str | None = None,
    ax=None,
    logy: bool = False,
    dashed: Sequence[str] = (),
):
    """Lines ``{name: (x, y)}``; names in ``dashed`` (baselines) drawn dashed."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3.2))
    for name, (x, y) in series.items():
        ax.plot(x, y, "--" if name in dashed else "-", marker="o", ms=3, label=name)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    if logy:
        ax.set_yscale("log")
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, frameon=False)
    if title:
        ax.set_title(title, fontsize=9)
    return ax.figure
