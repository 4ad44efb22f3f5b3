"""Scoring a trained run: predictions, metrics and baselines on the same corrupted inputs."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from pointae.config import config_from_dict
from pointae.errors import PointaeError
from pointae.tasks.base import build_task
from pointae.train.runfiles import load_model


# ============================================================================ evaluate
@torch.no_grad()
def predict_maps(
    model, rep, coords: np.ndarray, batch_size: int = 256, device="cpu"
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``model`` on scaled coords ``(N, L, 3)`` -> ``(latent (N, d), recon (N, L, L))`` numpy."""
    model.eval()
    lat, rec = [], []
    for s in range(0, coords.shape[0], batch_size):
        c = torch.from_numpy(np.ascontiguousarray(coords[s : s + batch_size], dtype=np.float32)).to(device)
        x = rep(c, train=False)
        if hasattr(x, "to") and not isinstance(x, torch.Tensor):
            x = x.to(device)
        out = model(x)
        lat.append(out.latent.float().cpu().numpy())
        rec.append(out.recon.float().cpu().numpy())
    d = getattr(model, "latent_dim", 0)
    n = coords.shape[1]
    if not lat:
        return np.zeros((0, d), np.float32), np.zeros((0, n, n), np.float32)
    return np.concatenate(lat), np.concatenate(rec)


def _pca_maps(maps: np.ndarray, k: int) -> np.ndarray:
    """Rank-``k`` PCA reconstruction of maps (upper triangles, missing pairs mean-filled)."""
    from sklearn.decomposition import PCA

    n, n_loci = maps.shape[:2]
    iu = np.triu_indices(n_loci, 1)
    v = maps[:, iu[0], iu[1]].astype(np.float64)  # (N, P)
    col = np.nanmean(np.where(np.isfinite(v), v, np.nan), axis=0)
    col = np.where(np.isfinite(col), col, 0.0)
    v = np.where(np.isfinite(v), v, col)
    k = max(1, min(k, n - 1, v.shape[1]))
    p = PCA(n_components=k, random_state=0)
    r = p.inverse_transform(p.fit_transform(v))
    out = np.zeros((n, n_loci, n_loci), np.float32)
    out[:, iu[0], iu[1]] = r
    out = out + out.transpose(0, 2, 1)
    return np.maximum(out, 0.0)


def evaluate(
    run_dir: str | Path,
    traces,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    euclidean: bool = True,
) -> dict:
    """Metrics of a trained run on ``traces``, next to the baselines on the same corrupted inputs.

    The task's corruption is applied with its fixed evaluation seeds (sample ``i`` of ``traces``
    always gets the same corruption). Scores are on the upper triangle of pairs observed in the
    clean traces (``observed``) and, for denoise/inpaint, on those touching a corrupted/hidden
    locus (``corrupted`` / ``hidden``).

    Baselines: ``identity`` (the corrupted input's own map; undefined on hidden pairs),
    ``neighbour_rule`` (denoise: :func:`pointae.baselines.clean_neighbour_rule`),
    ``interpolation`` (inpaint: :func:`pointae.baselines.interpolate_missing`), and for
    autoencode ``pca`` (rank-``latent_dim`` PCA of the maps, fitted on these same traces: an
    optimistic, in-sample baseline) and ``mean_map``.

    Returns
    -------
    dict
        ``{"task", "repr", "n_traces", "unit", "scale", "focus", "model": {...}, "baselines":
        {name: {...}}, "param_count", "latent_dim", "inference_samples_per_s", "beats_baselines"}``
    """
    from pointae.baselines import clean_neighbour_rule, interpolate_missing
    from pointae.data.reprs import build_repr
    from pointae.data.transforms import distance_maps
    from pointae.metrics import euclidean_metrics, map_metrics
    from pointae.models import param_count

    model, info = load_model(run_dir, device=device)
    if traces.n_loci != info["n_loci"]:
        raise PointaeError(f"{run_dir}: model expects {info['n_loci']} loci, the traces have {traces.n_loci}")
    cfg = config_from_dict(info["config"])
    task = build_task(cfg.task)
    rep = build_repr(info["repr"], **info["repr_options"])
    scale = float(info["scale"])
    clean = traces.coords / np.float32(scale)  # (N, L, 3)
    index = np.arange(len(traces))
    inp, changed = task.corrupt_batch(clean, index, train=False)
    target = distance_maps(clean)
    pair_t, focus_t = task.pair_masks(torch.from_numpy(clean), torch.from_numpy(changed))
    pair = pair_t.numpy()
    focus = None if focus_t is None else focus_t.numpy()

    t0 = time.perf_counter()
    _, recon = predict_maps(model, rep, inp, batch_size=batch_size, device=device)
    dt = time.perf_counter() - t0

    def score(pred):
        s = {"observed": map_metrics(pred, target, pair, scale)}
        if focus is not None:
            s[task.focus] = map_metrics(pred, target, focus, scale)
        return s

    res: dict = {
        "task": task.name,
        "repr": info["repr"],
        "n_traces": len(traces),
        "unit": traces.unit,
        "scale": scale,
        "focus": task.focus,
        "model": score(recon),
        "baselines": {},
        "param_count": int(param_count(model)),
        "latent_dim": int(info["latent_dim"]),
        "inference_samples_per_s": len(traces) / dt if dt > 0 else None,
    }
    if euclidean:
        res["model"].update(euclidean_metrics(recon))
    b = res["baselines"]
    if task.name == "autoencode":
        b["pca"] = score(_pca_maps(distance_maps(interpolate_missing(inp)), int(info["latent_dim"])))
        mean = np.nanmean(np.where(pair, target, np.nan), axis=0)
        b["mean_map"] = score(np.broadcast_to(np.nan_to_num(mean), target.shape))
    else:
        b["identity"] = score(distance_maps(inp))
        if task.name == "denoise":
            cleaned, _ = clean_neighbour_rule(inp, scale=1.0)
            b["neighbour_rule"] = score(distance_maps(cleaned))
        else:
            b["interpolation"] = score(distance_maps(interpolate_missing(inp)))
    key = task.focus or "observed"
    m = res["model"][key]["mae"]
    res["beats_baselines"] = {
        name: (None if m is None or s[key]["mae"] is None else bool(m < s[key]["mae"]))
        for name, s in b.items()
    }
    return res
