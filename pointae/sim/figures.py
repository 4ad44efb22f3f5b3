"""Figures made from simulated traces (matplotlib, imported lazily)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pointae.errors import atomic_path


def mean_distance_map(coords: np.ndarray) -> np.ndarray:
    """Mean pairwise distance map ``(L, L)`` of ``coords`` ``(N, L, 3)``, ignoring NaN."""
    c = np.asarray(coords, dtype=np.float64)
    d = np.linalg.norm(c[:, :, None, :] - c[:, None, :, :], axis=-1)
    return np.nanmean(d, axis=0)


def average_map_figure(traces_by_name: dict, path: str | Path, barriers: dict | None = None) -> Path:
    """Save mean distance maps side by side (one panel per condition) as an image.

    Parameters
    ----------
    traces_by_name
        ``{title: Traces}``.
    path
        Output image (png/pdf/svg by suffix); written atomically.
    barriers
        Optional ``{"forward": [locus, ...], "reverse": [locus, ...]}`` drawn as ticks on the axes.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    maps = {k: mean_distance_map(t.coords) for k, t in traces_by_name.items()}
    vmax = max(float(np.nanpercentile(m, 99)) for m in maps.values())
    fig, axes = plt.subplots(1, len(maps), figsize=(4.2 * len(maps), 3.8), squeeze=False)
    im = None
    for ax, (name, m) in zip(axes[0], maps.items()):
        im = ax.imshow(m, cmap="RdBu", vmin=0, vmax=vmax, interpolation="nearest")
        ax.set_title(f"{name} (n={len(traces_by_name[name])})")
        ax.set_xlabel("locus")
        ax.set_ylabel("locus")
        if barriers:
            for key, marker, col in (("forward", ">", "k"), ("reverse", "<", "m")):
                loci = [b for b in barriers.get(key, []) if 0 <= b < m.shape[0]]
                ax.plot(loci, [-0.5] * len(loci), marker, color=col, ms=5, clip_on=False, ls="none")
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="mean distance (nm)")
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    return path


def wt_vs_no_cohesin_figure(path: str | Path, n: int = 256, n_loci: int = 48, seed: int = 0, **kw) -> Path:
    """Simulate ``wt`` and ``no-cohesin`` with the same settings and save their mean distance maps.

    Example: ``python -c "from pointae.sim.figures import wt_vs_no_cohesin_figure as f;
    f('docs/img/sim_wt_vs_nocohesin.png')"``.
    """
    from pointae.sim.run import simulate

    wt = simulate("wt", n=n, n_loci=n_loci, seed=seed, **kw)
    nc = simulate("no-cohesin", n=n, n_loci=n_loci, seed=seed, **kw)
    barriers = {"forward": wt.attrs["barrier_loci_forward"], "reverse": wt.attrs["barrier_loci_reverse"]}
    return average_map_figure({"wt": wt, "no-cohesin": nc}, path, barriers=barriers)
