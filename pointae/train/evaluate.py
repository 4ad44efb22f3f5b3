"""The one evaluator of autoencoder runs: corrupt the evaluation traces, predict, score, baselines.

Every score of a trained run goes through :func:`evaluate`: the run's ``metrics.json`` written by
:func:`pointae.train.fit`, ``pointae compare`` (its tables, sweeps and examples) and
:meth:`pointae.PointAE.evaluate`. For the same model, traces, seed and reference traces they
therefore give identical numbers.

How it scores
-------------
- **Corruption** (:func:`corrupt_for_eval`): the task's corruption of the clean traces, in the
  data's unit, drawn from ``numpy.random.default_rng([seed, TASK_STREAMS[task]])`` over the traces
  in their order. ``denoise``: :func:`pointae.add_outliers` (``task.outlier_fraction``, displacements
  of ``task.outlier_magnitude`` x the run's scale, i.e. its training split's median neighbour
  distance); ``inpaint``: :func:`pointae.hide_loci` (``task.hide_fraction``, ``run_fraction``,
  ``max_run``); other tasks: the measured traces as they are.
- **Scores** (:func:`score_task`): errors against the clean maps in the data's unit on the upper
  triangle of pairs observed in the clean traces: ``mae``, ``rmse``, ``pearson``, ``n_pairs``;
  ``inpaint`` scores only the pairs touching a hidden locus; ``denoise`` adds ``mae_changed``,
  ``rmse_changed``, ``n_pairs_changed`` on the pairs touching a displaced locus. The headline
  error (:data:`HEADLINE`) is ``mae_changed`` for denoise, ``mae`` otherwise.
- **Baselines** (:data:`BASELINES`, one table per task, one naming everywhere): fed the same
  corrupted traces as the model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pointae.errors import PointaeError

#: format name of the dict :func:`evaluate` returns (the run's ``metrics.json``)
EVAL_SCHEMA = "pointae.evaluate/1"

#: the random stream of each task's evaluation corruption (other tasks: 3)
TASK_STREAMS = {"autoencode": 0, "denoise": 1, "inpaint": 2}

#: the error a model is ranked by, per task (default ``mae``)
HEADLINE = {"denoise": "mae_changed"}


# ------------------------------------------------------------------------------------ prediction
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


def predict_traces(model, rep, traces, scale: float, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """:func:`predict_maps` on ``traces`` in their data unit: coordinates divided by the run's
    ``scale``, on the model's device. Returns ``(latent (N, d), recon (N, L, L))``, recon in
    normalised units (multiply by ``scale`` for the data unit)."""
    device = next(model.parameters()).device
    coords = traces.coords / np.float32(scale)
    return predict_maps(model, rep, coords, batch_size=batch_size, device=device)


# ------------------------------------------------------------------------------------ corruption
@dataclass
class EvalInputs:
    """The evaluation inputs of one task: clean and corrupted coordinates (data unit)."""

    clean: np.ndarray  # (N, L, 3) measured coordinates: the truth
    coords: np.ndarray  # (N, L, 3) what the model and the baselines are fed
    changed: np.ndarray  # (N, L) bool: displaced / hidden loci
    scale: float  # the length unit of the corruption (data units per median bond)

    @property
    def truth(self) -> np.ndarray:
        """Clean distance maps ``(N, L, L)``."""
        from pointae.data.transforms import distance_maps

        return distance_maps(self.clean)

    @property
    def observed_pairs(self) -> np.ndarray:
        """``(N, L, L)`` pairs observed in the clean traces."""
        m = ~np.isnan(self.clean[..., 0])
        return m[:, :, None] & m[:, None, :]


def corrupt_for_eval(
    task: str, task_cfg, clean: np.ndarray, *, scale: float, seed: int = 0, level: float | None = None
) -> EvalInputs:
    """The evaluation corruption of ``clean`` ``(N, L, 3)`` (data unit) for ``task``.

    ``level`` replaces the task's outlier fraction (denoise) or hidden fraction (inpaint): the
    sweeps of ``pointae compare``. Deterministic in ``(seed, task)`` and the order of the traces.
    """
    from pointae.data.corrupt import add_outliers, hide_loci

    clean = np.asarray(clean, dtype=np.float32)
    rng = np.random.default_rng([int(seed), TASK_STREAMS.get(task, 3)])
    if task == "denoise":
        frac = task_cfg.outlier_fraction if level is None else level
        c = add_outliers(clean, frac, rng, magnitude=tuple(task_cfg.outlier_magnitude), scale=scale)
        return EvalInputs(clean, c.coords, c.changed, float(scale))
    if task == "inpaint":
        frac = task_cfg.hide_fraction if level is None else level
        c = hide_loci(clean, frac, rng, run_fraction=task_cfg.run_fraction, max_run=task_cfg.max_run)
        return EvalInputs(clean, c.coords, c.changed, float(scale))
    return EvalInputs(clean, clean.copy(), np.zeros(clean.shape[:2], bool), float(scale))


# ------------------------------------------------------------------------------------ scoring
def score_maps(pred: np.ndarray, truth: np.ndarray, pairs: np.ndarray | None = None) -> dict:
    """Errors of predicted maps against true maps on the upper triangle of ``pairs``.

    Parameters
    ----------
    pred, truth
        ``(N, L, L)`` in the same unit; NaN entries are skipped.
    pairs
        ``(N, L, L)`` bool pairs to score (default: all).

    Returns
    -------
    dict
        ``mae``, ``rmse``, ``pearson``, ``n_pairs`` (None values when fewer than 2 pairs).
    """
    pred = np.asarray(pred, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    n_loci = pred.shape[-1]
    sel = np.broadcast_to(np.triu(np.ones((n_loci, n_loci), bool), 1), pred.shape).copy()
    if pairs is not None:
        sel &= pairs
    sel &= np.isfinite(pred) & np.isfinite(truth)
    p, t = pred[sel], truth[sel]
    if p.size < 2:
        return {"mae": None, "rmse": None, "pearson": None, "n_pairs": int(p.size)}
    e = p - t
    pear = None if np.ptp(p) == 0 or np.ptp(t) == 0 else float(np.corrcoef(p, t)[0, 1])
    return {
        "mae": float(np.abs(e).mean()),
        "rmse": float(np.sqrt((e**2).mean())),
        "pearson": pear,
        "n_pairs": int(p.size),
    }


def _touching(changed: np.ndarray) -> np.ndarray:
    """``(N, L)`` changed loci -> ``(N, L, L)`` pairs with at least one changed locus."""
    return changed[:, :, None] | changed[:, None, :]


def score_task(task: str, pred: np.ndarray, inputs: EvalInputs, truth=None, pairs=None) -> dict:
    """The task's scores of predicted maps ``(N, L, L)`` (data unit), see the module docstring.

    ``truth`` / ``pairs`` may be passed precomputed (``inputs.truth`` / ``inputs.observed_pairs``).
    """
    truth = inputs.truth if truth is None else truth
    pairs = inputs.observed_pairs if pairs is None else pairs
    if task == "inpaint":
        return score_maps(pred, truth, pairs & _touching(inputs.changed))
    out = score_maps(pred, truth, pairs)
    if task == "denoise":
        ch = score_maps(pred, truth, pairs & _touching(inputs.changed))
        out.update(mae_changed=ch["mae"], rmse_changed=ch["rmse"], n_pairs_changed=ch["n_pairs"])
    return out


# ------------------------------------------------------------------------------------ baselines
@dataclass
class BaselineContext:
    """What a baseline may use: the corrupted inputs, and the reference (training) traces."""

    inputs: EvalInputs
    reference: np.ndarray | None  # (M, L, 3) training-split coordinates, or None
    latent_dim: int


class NeedsReference(PointaeError):
    """A baseline that is fitted on the training split was asked for without reference traces."""


def _pca_dist(ctx: BaselineContext) -> np.ndarray:
    """Rank-``latent_dim`` PCA of the distance vector, fitted on the reference (training) traces."""
    from pointae.baselines import DistancePCA

    if ctx.reference is None:
        raise NeedsReference("pca_dist is fitted on the training split: pass reference traces")
    pca = DistancePCA(n_components=ctx.latent_dim, scale=ctx.inputs.scale).fit(ctx.reference)
    return pca.inverse_maps(pca.transform(ctx.inputs.coords))


def _linear_interp(ctx: BaselineContext) -> np.ndarray:
    """Linear interpolation along the chain (:func:`pointae.baselines.interpolate_missing`)."""
    from pointae.baselines import interpolate_missing
    from pointae.data.transforms import distance_maps

    return distance_maps(interpolate_missing(ctx.inputs.coords))


def _neighbour_rule(ctx: BaselineContext) -> np.ndarray:
    """Neighbour-rule outlier removal + interpolation (:func:`pointae.baselines.clean_neighbour_rule`)."""
    from pointae.baselines import clean_neighbour_rule
    from pointae.data.transforms import distance_maps

    cleaned, _ = clean_neighbour_rule(ctx.inputs.coords, scale=ctx.inputs.scale)
    return distance_maps(cleaned)


def _corrupted_input(ctx: BaselineContext) -> np.ndarray:
    """The corrupted input's own maps (no correction)."""
    from pointae.data.transforms import distance_maps

    return distance_maps(ctx.inputs.coords)


#: the baselines of each task: name -> maps ``(N, L, L)`` (data unit) from a :class:`BaselineContext`.
#: One naming, used in the run's ``metrics.json``, the comparison report and the docs.
BASELINES: dict[str, dict[str, Callable[[BaselineContext], np.ndarray]]] = {
    "autoencode": {"pca_dist": _pca_dist},
    "contrast": {"pca_dist": _pca_dist},
    "denoise": {"neighbour_rule": _neighbour_rule, "corrupted_input": _corrupted_input},
    "inpaint": {"linear_interp": _linear_interp},
}

#: how the reports name each baseline
BASELINE_LABELS = {
    "pca_dist": "PCA (distances)",
    "linear_interp": "linear interpolation",
    "neighbour_rule": "neighbour rule",
    "corrupted_input": "corrupted input (no correction)",
}


def baselines_for(task: str) -> dict[str, Callable[[BaselineContext], np.ndarray]]:
    """The baseline table of ``task`` (tasks without their own entry: the autoencode baselines)."""
    return BASELINES.get(task, BASELINES["autoencode"])


# ------------------------------------------------------------------------------------ evaluate
def _coords(x) -> np.ndarray | None:
    if x is None:
        return None
    return np.asarray(getattr(x, "coords", x), dtype=np.float32)


def _task_config(model, task):
    """The task settings: ``task`` (a TaskConfig or a name), else the model's saved config."""
    from pointae.config import TaskConfig, config_from_dict

    if isinstance(task, TaskConfig):
        return task
    cfg = getattr(model, "config", None)
    if isinstance(cfg, Mapping):
        cfg = config_from_dict(dict(cfg)) if "task" in cfg else None
    tc = cfg.task if cfg is not None and hasattr(cfg, "task") else TaskConfig()
    if isinstance(task, str):
        tc = replace(tc, name=task)
    return tc


def evaluate(
    run,
    traces,
    *,
    reference=None,
    seed: int = 0,
    level: float | None = None,
    task=None,
    baselines: bool = True,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    euclidean: bool = True,
    keep_maps: bool = False,
) -> dict:
    """Scores of a trained run on ``traces`` next to its task's baselines on the same inputs.

    Parameters
    ----------
    run
        A run directory (loaded with :meth:`pointae.PointAE.load`) or a loaded model: anything
        with ``reconstruct(traces, batch_size) -> (N, L, L)`` in the data's unit and ``scale``
        (a :class:`~pointae.PointAE`, or a stand-in).
    traces
        The clean traces to corrupt and score on (e.g. the run's test split).
    reference
        Traces (or coordinates ``(M, L, 3)``) the fitted baselines learn from: the run's training
        split. Without it those baselines (``pca_dist``) are left out and named in
        ``baselines_skipped``.
    seed
        Seed of the evaluation corruption (the same for the model and every baseline).
    level
        Replace the task's corruption level (outlier / hidden fraction).
    task
        A :class:`~pointae.config.TaskConfig` or task name (default: the run's).
    baselines
        Also score the task's baselines (:data:`BASELINES`).
    euclidean
        Add ``model_checks`` (triangle-inequality violations, MDS error of the model's maps).
    keep_maps
        Add ``maps`` (not JSON): ``inputs`` (:class:`EvalInputs`), ``model`` and ``baselines``
        maps ``(N, L, L)`` for figures.

    Returns
    -------
    dict
        ``{"schema", "task", "repr", "n_traces", "unit", "scale", "eval_seed", "level", "scored",
        "headline", "model": scores, "baselines": {name: scores}, "baselines_skipped",
        "beats_baselines": {name: bool}, "param_count", "latent_dim", "inference_samples_per_s"
        [, "model_checks"]}``; scores as in :func:`score_task`.
    """
    if isinstance(run, (str, Path)):
        run = _SavedRun(run, device)
    info = dict(getattr(run, "info", None) or {})
    tc = _task_config(run, task)
    name = tc.name
    n_loci = info.get("n_loci")
    if n_loci is not None and traces.n_loci != int(n_loci):
        where = getattr(run, "run_dir", None) or "the model"
        raise PointaeError(f"{where}: the model expects {n_loci} loci, the traces have {traces.n_loci}")
    scale = float(run.scale)
    inputs = corrupt_for_eval(name, tc, traces.coords, scale=scale, seed=seed, level=level)
    truth, pairs = inputs.truth, inputs.observed_pairs

    t0 = time.perf_counter()
    try:
        pred = run.reconstruct(traces.with_coords(inputs.coords), batch_size=batch_size)
    except TypeError:
        pred = run.reconstruct(traces.with_coords(inputs.coords))
    dt = time.perf_counter() - t0
    pred = np.asarray(pred, dtype=np.float32)

    latent_dim = info.get("latent_dim") or getattr(run, "latent_dim", None)
    if latent_dim is None:
        latent_dim = (getattr(run, "config", None) or {}).get("model", {}).get("latent_dim")
    headline = HEADLINE.get(name, "mae")
    level_used = level
    if level_used is None:
        level_used = {"denoise": tc.outlier_fraction, "inpaint": tc.hide_fraction}.get(name)
    res: dict[str, Any] = {
        "schema": EVAL_SCHEMA,
        "task": name,
        "repr": info.get("repr"),
        "n_traces": len(traces),
        "unit": traces.unit,
        "scale": scale,
        "eval_seed": int(seed),
        "level": level_used,
        "scored": {"inpaint": "hidden pairs"}.get(name, "observed pairs")
        + ("; *_changed: pairs touching a displaced locus" if name == "denoise" else ""),
        "headline": headline,
        "model": score_task(name, pred, inputs, truth, pairs),
        "baselines": {},
        "baselines_skipped": {},
        "param_count": _param_count(run, info),
        "latent_dim": None if latent_dim is None else int(latent_dim),
        "inference_samples_per_s": len(traces) / dt if dt > 0 else None,
    }
    if euclidean:
        from pointae.metrics import euclidean_metrics

        res["model_checks"] = euclidean_metrics(pred)
    base_maps: dict[str, np.ndarray] = {}
    if baselines:
        ctx = BaselineContext(inputs, _coords(reference), int(latent_dim or 1))
        for bname, fn in baselines_for(name).items():
            try:
                bm = fn(ctx)
            except NeedsReference as e:
                res["baselines_skipped"][bname] = str(e)
                continue
            base_maps[bname] = bm
            res["baselines"][bname] = score_task(name, bm, inputs, truth, pairs)
    m = res["model"][headline]
    res["beats_baselines"] = {
        b: (None if m is None or s[headline] is None else bool(m < s[headline]))
        for b, s in res["baselines"].items()
    }
    if keep_maps:
        res["maps"] = {"inputs": inputs, "model": pred, "baselines": base_maps}
    return res


def _param_count(run, info: dict) -> int | None:
    v = info.get("param_count")
    if v is None:
        v = getattr(run, "param_count", None)
        if callable(v):
            v = v()
    if v is None:
        net = getattr(run, "model", None)
        if net is not None and hasattr(net, "parameters"):
            v = sum(p.numel() for p in net.parameters())
    return None if v is None else int(v)


__all__ = [
    "BASELINES",
    "BASELINE_LABELS",
    "EVAL_SCHEMA",
    "EvalInputs",
    "baselines_for",
    "corrupt_for_eval",
    "evaluate",
    "predict_maps",
    "score_maps",
    "score_task",
]


class _SavedRun:
    """An autoencoder run directory as :func:`evaluate` reads it (``fit`` scores the run it just
    wrote). Users reach runs through :class:`pointae.PointAE`, which sits above this layer and
    predicts the same way (:func:`predict_traces` on the weights of ``model.json``)."""

    def __init__(self, run_dir, device="cpu"):
        from pointae.data.reprs import build_repr
        from pointae.train.runfiles import load_model

        self.run_dir = Path(run_dir)
        self.model, self.info = load_model(self.run_dir, device=device)
        self.task = self.info["task"]
        self.config = self.info.get("config")  # the run's config dict (task settings)
        self.scale = float(self.info["scale"])
        self._rep = build_repr(self.info["repr"], **self.info.get("repr_options", {}))

    def reconstruct(self, traces, batch_size: int = 256) -> np.ndarray:
        _, maps = predict_traces(self.model, self._rep, traces, self.scale, batch_size)
        return maps * np.float32(self.scale)
