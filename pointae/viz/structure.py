"""3D structure viewer on open3d: spheres joined by a tube, coloured along the chain.

- :func:`trace_geometries`: the open3d meshes of one trace (observed loci = solid spheres coloured
  by position along the chain; imputed = small grey core in a grey wire cage, i.e. hollow-looking;
  corrected = solid sphere inside a red cage; missing loci absent, the chain bridged across
  them by a thin grey tube).
- :func:`render_frame`: geometries -> an RGB image with open3d's legacy ``Visualizer`` in a hidden
  window (EGL/Mesa offscreen when there is no display; about 0.1-0.4 s per frame on CPU).
- :func:`render_trace`: one trace (optionally compared with a second structure, Kabsch-aligned,
  side by side or overlaid) to a PNG with a colour bar of genomic coordinates and a legend.
- :func:`render_gallery`: many traces into one PNG grid.
- :func:`show_trace`: an interactive window when a display exists.

open3d is imported inside the functions (``pip install "pointae[viz]"``); matplotlib composes the
captured frames with titles, colour bar and legend.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pointae.errors import PointaeError, atomic_path

__all__ = [
    "has_display",
    "trace_geometries",
    "render_frame",
    "render_trace",
    "render_gallery",
    "show_trace",
    "select_trace",
    "view_file",
    "parse_size",
    "CHAIN_CMAP",
]

CHAIN_CMAP = "viridis"
IMPUTED_RGB = (0.62, 0.62, 0.62)
CORRECTED_RGB = (0.85, 0.1, 0.1)
GAP_RGB = (0.8, 0.8, 0.8)
COMPARE_RGB = (0.89, 0.34, 0.18)
BACKGROUND = (1.0, 1.0, 1.0)
SUPERSAMPLE = 2  # frames are rendered at this multiple of their size on the PNG
RADIUS_FACTOR = 0.15  # sphere radius / median neighbour distance


def _o3d():
    try:
        import open3d as o3d
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise PointaeError(
            f'the 3D viewer needs open3d ({e}); install it with: pip install "pointae[viz]" '
            "(or pip install open3d-cpu)"
        ) from None
    try:
        o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)
    except AttributeError:  # pragma: no cover
        pass
    return o3d


def has_display() -> bool:
    """True when an X11/Wayland display is available for an interactive window."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


# ---------------------------------------------------------------------------------------- geometry
def _chain_colors(n_loci: int, cmap: str = CHAIN_CMAP) -> np.ndarray:
    """``(L, 3)`` RGB by position along the chain (first locus = low end of the colour map)."""
    from matplotlib import colormaps

    t = np.linspace(0.0, 1.0, max(n_loci, 2))[:n_loci]
    return np.asarray(colormaps[cmap](t))[:, :3]


def _cylinder(o3d, a: np.ndarray, b: np.ndarray, radius: float, rgb, resolution: int = 12):
    """A cylinder mesh from ``a`` to ``b``."""
    v = b - a
    h = float(np.linalg.norm(v))
    if h < 1e-9:
        return None
    m = o3d.geometry.TriangleMesh.create_cylinder(radius=radius, height=h, resolution=resolution, split=1)
    z = np.array([0.0, 0.0, 1.0])
    u = v / h
    axis = np.cross(z, u)
    s, c = np.linalg.norm(axis), float(np.dot(z, u))
    if s < 1e-9:
        rot = np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    else:
        k = axis / s
        kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
        rot = np.eye(3) + s * kx + (1 - c) * kx @ kx  # Rodrigues
    m.rotate(rot, center=np.zeros(3))
    m.translate((a + b) / 2.0)
    m.paint_uniform_color(rgb)
    return m


def _sphere(o3d, centre, radius: float, rgb, resolution: int = 12):
    m = o3d.geometry.TriangleMesh.create_sphere(radius=radius, resolution=resolution)
    m.translate(np.asarray(centre, dtype=np.float64))
    m.paint_uniform_color(rgb)
    return m


def _cage(o3d, centre, radius: float, rgb):
    """A wire sphere (LineSet): draws a hollow-looking ball."""
    m = o3d.geometry.TriangleMesh.create_sphere(radius=radius, resolution=6)
    m.translate(np.asarray(centre, dtype=np.float64))
    ls = o3d.geometry.LineSet.create_from_triangle_mesh(m)
    ls.paint_uniform_color(rgb)
    return ls


def _merge(o3d, meshes):
    out = o3d.geometry.TriangleMesh()
    for m in meshes:
        if m is not None:
            out += m
    out.compute_vertex_normals()
    return out


def trace_geometries(
    coords: np.ndarray,
    status: np.ndarray | None = None,
    radius: float | None = None,
    cmap: str | None = CHAIN_CMAP,
    color: Sequence[float] | None = None,
    resolution: int = 12,
):
    """open3d geometries of one trace.

    Parameters
    ----------
    coords
        ``(L, 3)``, NaN for missing loci (drawn absent).
    status
        Optional ``(L,)`` strings ``observed``/``imputed``/``corrected`` (anything else counts
        as observed).
    radius
        Sphere radius in data units; default ``RADIUS_FACTOR`` x the median neighbour distance. The tube
        is 0.35 x radius, the bridge over missing loci 0.15 x radius.
    cmap, color
        Colour by position along the chain with matplotlib colour map ``cmap``, or one uniform
        ``color`` (RGB in [0, 1]) when given.
    resolution
        Sphere/cylinder tessellation.

    Returns
    -------
    list
        One merged ``TriangleMesh`` (spheres and tubes) followed by ``LineSet`` cages for imputed
        and corrected loci.
    """
    o3d = _o3d()
    x = np.asarray(coords, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 3:
        raise PointaeError(f"a trace must have shape (L, 3), got {x.shape}")
    n_loci = len(x)
    present = np.isfinite(x).all(1)
    if present.sum() == 0:
        raise PointaeError("the trace has no locus with coordinates")
    st = np.full(n_loci, "observed", dtype=object) if status is None else np.asarray(status).astype(str)
    if radius is None:
        steps = np.linalg.norm(np.diff(x, axis=0), axis=1)
        steps = steps[np.isfinite(steps) & (steps > 0)]
        radius = RADIUS_FACTOR * float(np.median(steps)) if steps.size else 1.0
    rgb = (
        np.tile(np.asarray(color, float)[None], (n_loci, 1))
        if color is not None
        else _chain_colors(n_loci, cmap)
    )
    meshes, extras = [], []
    idx = np.flatnonzero(present)
    for i in idx:
        if st[i] == "imputed":
            meshes.append(_sphere(o3d, x[i], 0.55 * radius, IMPUTED_RGB, resolution))
            extras.append(_cage(o3d, x[i], radius, IMPUTED_RGB))
        else:
            meshes.append(_sphere(o3d, x[i], radius, rgb[i], resolution))
            if st[i] == "corrected":
                extras.append(_cage(o3d, x[i], 1.45 * radius, CORRECTED_RGB))
    for a, b in zip(idx[:-1], idx[1:]):
        if b == a + 1:
            tone = 0.5 * (rgb[a] + rgb[b])
            if st[a] == "imputed" or st[b] == "imputed":
                tone = 0.5 * tone + 0.5 * np.asarray(IMPUTED_RGB)
            meshes.append(_cylinder(o3d, x[a], x[b], 0.35 * radius, tone, resolution))
        else:  # missing loci in between: a thin grey bridge
            meshes.append(_cylinder(o3d, x[a], x[b], 0.15 * radius, GAP_RGB, 8))
    return [_merge(o3d, meshes), *extras]


def _bounds_marker(o3d, lo: np.ndarray, hi: np.ndarray):
    """Background-coloured points at the corners of a box: fixes the camera's framing."""
    corners = np.array([[a, b, c] for a in (lo[0], hi[0]) for b in (lo[1], hi[1]) for c in (lo[2], hi[2])])
    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(corners))
    pc.paint_uniform_color(BACKGROUND)
    return pc


def render_frame(
    geometries,
    size: tuple[int, int] = (800, 600),
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
    zoom: float = 0.7,
) -> np.ndarray:
    """Render geometries offscreen with the legacy ``Visualizer`` (hidden window).

    Parameters
    ----------
    geometries
        open3d geometries.
    size
        ``(width, height)`` in pixels.
    bounds
        Optional ``(lo, hi)`` box to frame (the same box gives the same scale across frames).
    zoom
        open3d view zoom (smaller = closer; 1 = open3d's default framing with wide margins).

    Returns
    -------
    numpy.ndarray
        ``(height, width, 3)`` uint8 RGB.
    """
    o3d = _o3d()
    w, h = int(size[0]), int(size[1])
    vis = o3d.visualization.Visualizer()
    if not vis.create_window(window_name="pointae", width=w, height=h, visible=False):
        raise PointaeError("open3d could not open an offscreen window (no OpenGL/EGL available)")
    try:
        for g in geometries:
            vis.add_geometry(g)
        if bounds is not None:
            vis.add_geometry(_bounds_marker(o3d, *bounds))
        opt = vis.get_render_option()
        opt.background_color = np.asarray(BACKGROUND)
        opt.mesh_show_back_face = True
        opt.light_on = True
        opt.point_size = 1.0
        vis.get_view_control().set_zoom(zoom)
        vis.poll_events()
        vis.update_renderer()
        img = np.asarray(vis.capture_screen_float_buffer(do_render=True))
    finally:
        vis.destroy_window()
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def _crop(images: list[np.ndarray], margin: int = 8) -> list[np.ndarray]:
    """Crop frames to the union box of their non-background pixels (keeps a common scale)."""
    box = None
    for img in images:
        ys, xs = np.nonzero((img < 250).any(2))
        if ys.size == 0:
            continue
        b = np.array([ys.min(), ys.max(), xs.min(), xs.max()])
        box = (
            b
            if box is None
            else np.array([min(box[0], b[0]), max(box[1], b[1]), min(box[2], b[2]), max(box[3], b[3])])
        )
    if box is None:
        return images
    h, w = images[0].shape[:2]
    y0, y1 = max(box[0] - margin, 0), min(box[1] + margin + 1, h)
    x0, x1 = max(box[2] - margin, 0), min(box[3] + margin + 1, w)
    return [img[y0:y1, x0:x1] for img in images]


# ---------------------------------------------------------------------------------------- views
def _view_rotation(x: np.ndarray) -> np.ndarray:
    """Rotation putting the principal axes of ``x`` (``(L, 3)``) along screen x, y, z."""
    p = x[np.isfinite(x).all(1)]
    if len(p) < 3:
        return np.eye(3)
    _, _, vt = np.linalg.svd(p - p.mean(0), full_matrices=False)
    r = vt
    if np.linalg.det(r) < 0:
        r[2] *= -1
    return r  # rows = new axes


def _genomic_labels(loci, n_loci: int, n_ticks: int = 5) -> tuple[np.ndarray, list[str], str]:
    """Colour-bar ticks (fractions of the chain) and labels: genomic Mb when known."""
    pos = np.unique(np.linspace(0, n_loci - 1, min(n_ticks, n_loci)).round().astype(int))
    t = pos / max(n_loci - 1, 1)
    if loci is not None:
        mid = (loci["start"].to_numpy() + loci["end"].to_numpy()) / 2e6
        chrom = str(loci["chrom"].iloc[0])
        return t, [f"{mid[i]:.2f}" for i in pos], f"{chrom} position (Mb)"
    return t, [str(i) for i in pos], "locus index"


def select_trace(traces, trace) -> int:
    """Index of trace id ``trace`` (str) in ``traces``; an int-like string falls back to position."""
    ids = [str(t) for t in traces.trace_ids]
    key = str(trace)
    if key in ids:
        return ids.index(key)
    src = traces.attrs.get("source")
    where = f"{src}: " if src else ""
    first = f", ids {ids[0]!r} ... {ids[-1]!r}" if ids else ""
    raise PointaeError(f"{where}trace {key!r} not found ({len(ids)} traces{first})")


def _status_of(traces, k: int) -> np.ndarray | None:
    st = traces.layers.get("pointae_status")
    return None if st is None else np.asarray(st[k]).astype(str)


def _legend_handles(statuses: list[np.ndarray | None], compare_label: str | None):
    from matplotlib.lines import Line2D

    cm = _chain_colors(3)
    hs = [Line2D([], [], ls="", marker="o", ms=9, mfc=cm[1], mec=cm[1], label="observed")]
    seen = set()
    for s in statuses:
        if s is not None:
            seen |= set(np.unique(s).tolist())
    if "imputed" in seen:
        hs.append(
            Line2D([], [], ls="", marker="o", ms=9, mfc="none", mec=IMPUTED_RGB, mew=1.5, label="imputed")
        )
    if "corrected" in seen:
        hs.append(
            Line2D([], [], ls="", marker="o", ms=9, mfc=cm[1], mec=CORRECTED_RGB, mew=2.0, label="corrected")
        )
    hs.append(Line2D([], [], color=GAP_RGB, lw=1.5, label="gap (missing loci)"))
    if compare_label:
        hs.append(
            Line2D([], [], ls="", marker="o", ms=9, mfc=COMPARE_RGB, mec=COMPARE_RGB, label=compare_label)
        )
    return hs


def _save_figure(fig, png) -> Path:
    png = Path(png)
    if png.suffix.lower() != ".png":
        raise PointaeError(f"{png}: the image must be a .png file")
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=fig.dpi)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return png


def _figure(size: tuple[int, int], dpi: int = 100):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt.figure(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi)


def _colorbar(fig, rect, loci, n_loci: int) -> None:
    from matplotlib import colormaps
    from matplotlib.colorbar import ColorbarBase
    from matplotlib.colors import Normalize

    cax = fig.add_axes(rect)
    cb = ColorbarBase(cax, cmap=colormaps[CHAIN_CMAP], norm=Normalize(0, 1), orientation="horizontal")
    ticks, labels, title = _genomic_labels(loci, n_loci)
    cb.set_ticks(ticks)
    cb.set_ticklabels(labels)
    cb.set_label(f"position along the chain: {title}", fontsize=9)
    cax.tick_params(labelsize=8)


def render_trace(
    traces,
    trace,
    png,
    compare=None,
    compare_label: str = "compared",
    overlay: bool = False,
    size: tuple[int, int] = (1024, 768),
    title: str | None = None,
    allow_reflection: bool = False,
) -> Path:
    """Render one trace (and optionally a second structure of it) to a PNG.

    Parameters
    ----------
    traces
        :class:`~pointae.Traces`; ``layers["pointae_status"]`` marks imputed/corrected loci.
    trace
        Trace id (str) to draw.
    png
        Output ``.png`` (written atomically).
    compare
        Optional second :class:`~pointae.Traces` with the same trace id (e.g. a reconstruction
        or an imputed version) or an ``(L, 3)`` array; it is Kabsch-aligned onto the first over
        the loci both have.
    compare_label
        Its name in the title/legend.
    overlay
        Draw both in one frame (the comparison in one uniform colour) instead of side by side.
    size
        ``(width, height)`` of the PNG in pixels.
    title
        Figure title; default ``trace <id>``.
    allow_reflection
        Allow a mirror image in the alignment (for structures rebuilt from distance maps).

    Returns
    -------
    Path
        The PNG written.
    """
    from pointae.recon import align, rmsd

    k = select_trace(traces, trace)
    x = traces.coords[k].astype(np.float64)
    st = _status_of(traces, k)
    panels: list[tuple[list, str, np.ndarray | None]] = []
    y = st2 = None
    if compare is not None:
        if hasattr(compare, "coords"):
            k2 = select_trace(compare, trace)
            y = compare.coords[k2].astype(np.float64)
            st2 = _status_of(compare, k2)
        else:
            y = np.asarray(compare, dtype=np.float64)
        if y.shape != x.shape:
            raise PointaeError(f"cannot compare traces of {x.shape[0]} and {y.shape[0]} loci")
        y = align(y, x, allow_reflection=allow_reflection)
    if not np.isfinite(x).all(1).any():
        src = traces.attrs.get("source") if hasattr(traces, "attrs") else None
        where = f"{src}: " if src else ""
        raise PointaeError(f"{where}trace {trace!r} has no observed locus; nothing to draw")
    centre = np.nanmean(x, 0)
    rot = _view_rotation(x)
    x = (x - centre) @ rot.T
    pts = [x]
    if y is not None:
        y = (y - centre) @ rot.T
        pts.append(y)
    allp = np.concatenate(pts)
    allp = allp[np.isfinite(allp).all(1)]
    lo, hi = allp.min(0), allp.max(0)
    pad = 0.08 * (hi - lo).max()
    bounds = (lo - pad, hi + pad)
    steps = np.linalg.norm(np.diff(x, axis=0), axis=1)
    steps = steps[np.isfinite(steps) & (steps > 0)]
    radius = RADIUS_FACTOR * float(np.median(steps)) if steps.size else 0.02 * float((hi - lo).max() or 1.0)
    if y is None:
        panels.append((trace_geometries(x, st, radius=radius), f"trace {traces.trace_ids[k]}", st))
    elif overlay:
        geoms = trace_geometries(x, st, radius=radius) + trace_geometries(
            y, st2, radius=0.7 * radius, color=COMPARE_RGB
        )
        panels.append((geoms, "overlay (aligned)", st))
    else:
        name = Path(str(traces.attrs.get("source", "reference"))).name
        panels.append((trace_geometries(x, st, radius=radius), name, st))
        panels.append((trace_geometries(y, st2, radius=radius), f"{compare_label} (aligned)", st2))
    w, h = int(size[0]), int(size[1])
    cb_h = min(90 / h, 0.3)  # colour bar + legend band (90 px)
    top_h = min((62 if len(panels) > 1 else 36) / h, 0.2)  # title (+ panel titles)
    frame_w = w // len(panels)
    frame_h = max(int(h * (1 - cb_h - top_h)), 16)
    fig = _figure((w, h))
    ss = SUPERSAMPLE  # render larger, let matplotlib downsample: smooth edges
    frames = _crop([render_frame(g, size=(ss * frame_w, ss * frame_h), bounds=bounds) for g, _, _ in panels])
    for j, ((_, label, _), img) in enumerate(zip(panels, frames)):
        ax = fig.add_axes([j / len(panels), cb_h, 1 / len(panels), 1 - cb_h - top_h])
        ax.imshow(img)
        ax.set_axis_off()
        if len(panels) > 1:
            ax.set_title(label, fontsize=9)
    head = title or f"trace {traces.trace_ids[k]}"
    n_obs = int(np.isfinite(x).all(1).sum())
    head += f"  ({n_obs}/{len(x)} loci"
    for s_ in (st, st2):
        if s_ is not None:
            for key in ("imputed", "corrected"):
                if (s_ == key).any():
                    head += f"; {int((s_ == key).sum())} {key}"
    if y is not None:
        head += f"; RMSD to {compare_label} over common loci {rmsd(y, x):.1f} {traces.unit}"
    head += ")"
    fig.text(0.5, 1 - 8 / h, head, ha="center", va="top", fontsize=11)
    _colorbar(fig, [0.06, 52 / h, 0.5, 14 / h], traces.loci, traces.n_loci)
    fig.legend(
        handles=_legend_handles([p[2] for p in panels], compare_label if overlay and y is not None else None),
        loc="lower right",
        bbox_to_anchor=(0.995, 0.0),
        fontsize=8,
        frameon=False,
        ncol=2,
    )
    return _save_figure(fig, png)


def render_gallery(
    traces,
    png,
    n: int = 16,
    ids: Sequence[str] | None = None,
    size: tuple[int, int] = (1024, 768),
    cols: int | None = None,
) -> Path:
    """Render many traces into one PNG grid (each frame framed on its own trace).

    Parameters
    ----------
    traces
        :class:`~pointae.Traces`.
    png
        Output ``.png``.
    n
        Number of traces (the first ``n`` with at least two loci) unless ``ids`` is given.
    ids
        Explicit trace ids to draw.
    size
        ``(width, height)`` of the whole PNG.
    cols
        Grid columns; default about ``sqrt(n * width / height)``.

    Returns
    -------
    Path
        The PNG written.
    """
    if ids is not None:
        sel = [select_trace(traces, i) for i in ids]
    else:
        if n < 1:
            raise PointaeError("--gallery needs at least one trace")
        ok = np.flatnonzero(traces.mask.sum(1) >= 2)
        sel = ok[:n].tolist()
    if not sel:
        raise PointaeError("no trace with at least two observed loci to draw")
    w, h = int(size[0]), int(size[1])
    m = len(sel)
    cols = cols or max(1, int(round(np.sqrt(m * w / h))))
    cols = min(cols, m)
    rows = int(np.ceil(m / cols))
    cb_h = 80 / h if h >= 300 else 0.0
    top_h = 24 / h
    cell_w, cell_h = w // cols, max(int(h * (1 - cb_h - top_h) / rows), 16)
    fig = _figure((w, h))
    for j, k in enumerate(sel):
        x = traces.coords[k].astype(np.float64)
        x = (x - np.nanmean(x, 0)) @ _view_rotation(x).T
        geoms = trace_geometries(x, _status_of(traces, k), resolution=8)
        (img,) = _crop([render_frame(geoms, size=(SUPERSAMPLE * cell_w, SUPERSAMPLE * cell_h))], margin=6)
        r, c = divmod(j, cols)
        top = 1 - top_h - (r + 1) * (1 - cb_h - top_h) / rows
        ax = fig.add_axes([c / cols, top, 1 / cols, (1 - cb_h - top_h) / rows])
        ax.imshow(img)
        ax.set_axis_off()
        ax.text(
            0.02,
            0.97,
            str(traces.trace_ids[k]),
            transform=ax.transAxes,
            fontsize=7,
            va="top",
            bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 1},
        )
    fig.text(0.5, 1 - 5 / h, f"{m} traces", ha="center", va="top", fontsize=10)
    if cb_h:
        _colorbar(fig, [0.2, 45 / h, 0.6, 14 / h], traces.loci, traces.n_loci)
    return _save_figure(fig, png)


def show_trace(traces, trace, compare=None, allow_reflection: bool = False) -> None:
    """Open an interactive open3d window with one trace (and an aligned comparison overlaid)."""
    if not has_display():
        raise PointaeError("no display for an interactive window: pass --png out.png to render offscreen")
    from pointae.recon import align

    o3d = _o3d()
    k = select_trace(traces, trace)
    x = traces.coords[k].astype(np.float64)
    geoms = trace_geometries(x, _status_of(traces, k))
    if compare is not None:
        k2 = select_trace(compare, trace)
        y = align(compare.coords[k2].astype(np.float64), x, allow_reflection=allow_reflection)
        geoms += trace_geometries(y, _status_of(compare, k2), color=COMPARE_RGB)
    o3d.visualization.draw_geometries(geoms, window_name=f"pointae: trace {traces.trace_ids[k]}")


# ---------------------------------------------------------------------------------------- files
def parse_size(text: str) -> tuple[int, int]:
    """``"1024x768"`` -> ``(1024, 768)``; a clear error otherwise."""
    parts = str(text).lower().replace("*", "x").split("x")
    try:
        w, h = (int(p) for p in parts)
    except ValueError:
        raise PointaeError(f"--size must look like 1024x768, got {text!r}") from None
    if not (16 <= w <= 8192 and 16 <= h <= 8192):
        raise PointaeError(f"--size {text!r}: width and height must be within 16..8192 pixels")
    return w, h


def _imputer():
    try:
        from pointae.impute import impute_traces
    except ImportError:
        try:
            from pointae.impute.api import impute_traces
        except ImportError as e:
            raise PointaeError(
                f"--model needs pointae's imputation module, which is not available ({e})"
            ) from None
    return impute_traces


def view_file(
    file,
    trace: str | None = None,
    compare=None,
    model: str | None = None,
    png=None,
    size: tuple[int, int] = (1024, 768),
    gallery: int | None = None,
    overlay: bool = False,
) -> Path | None:
    """What ``pointae view`` runs: render or show a trace of ``file``.

    Parameters
    ----------
    file
        A trace file, a ``.pdb`` or an ``.npy`` of coordinates ``(N, L, 3)``.
    trace
        Trace id to draw (not needed with ``gallery``).
    compare
        A second file with the same trace id (e.g. the output of ``pointae reconstruct`` or
        ``pointae impute``); drawn Kabsch-aligned, side by side or overlaid.
    model
        An imputation run (or ``"default"`` for the shipped model): the trace is imputed with
        it and drawn beside the observed one, imputed loci marked.
    png
        Write a PNG instead of opening a window (required without a display).
    size
        PNG size in pixels.
    gallery
        Render the first ``gallery`` traces into one PNG grid.
    overlay
        Overlay the comparison instead of drawing it side by side.

    Returns
    -------
    Path or None
        The PNG written, or None after an interactive window closed.
    """
    from pointae.recon import read_structures

    if compare is not None and model is not None:
        raise PointaeError("give either --compare or --model, not both")
    traces = read_structures(file)
    if gallery is not None:
        if png is None:
            raise PointaeError("--gallery needs --png grid.png")
        ids = None if trace is None else [trace]
        return render_gallery(traces, png, n=gallery, ids=ids, size=size)
    if trace is None:
        raise PointaeError(f"give --trace ID (the first ids in {file} are {', '.join(traces.trace_ids[:3])})")
    other, label, reflect = None, "compared", False
    if compare is not None:
        other = read_structures(compare)
        label = Path(compare).name
        reflect = "reconstruction" in other.attrs  # rebuilt from maps: mirror images are equivalent
    elif model is not None:
        impute = _imputer()
        one = traces[select_trace(traces, trace)]
        other = impute(one, model=None if model == "default" else model)
        label = f"imputed ({Path(str(model)).name})"
        traces = one._replace(layers={})  # left panel: what was measured
    if png is None:
        if model is not None:  # interactive: the imputed trace, imputed loci marked
            show_trace(other, trace)
        else:
            show_trace(traces, trace, compare=other, allow_reflection=reflect)
        return None
    return render_trace(
        traces,
        trace,
        png,
        compare=other,
        compare_label=label,
        overlay=overlay,
        size=size,
        allow_reflection=reflect,
    )
