"""Self-supervised training of the :class:`~pointae.impute.model.Imputer`.

Each step takes a batch of training traces, hides a random fraction (5-25%) of their observed
loci (isolated loci and contiguous runs, :func:`pointae.data.corrupt.hide_loci`), optionally crops
a random contiguous window of loci (the network is fully convolutional, so crops are cheap extra
variety), places the hidden loci and minimises the L1 error of the distances from each hidden
locus to every observed one (in units of the median neighbour distance): exactly the quantity
the evaluation protocol scores. No simulation and no ground truth beyond the observed spots are
needed, so it trains on the user's own data.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from pointae.data.corrupt import hide_loci
from pointae.data.transforms import distance_maps
from pointae.errors import PointaeError
from pointae.impute.model import (
    ACTIVATIONS,
    Imputer,
    ImputerConfig,
    inference_precision,
    refine_to_map,
    torch_threads,
)
from pointae.impute.protocol import make_held_out, score


@dataclass
class FitConfig:
    """Training hyper-parameters (stored next to the weights)."""

    epochs: int = 14
    batch_size: int = 32
    lr: float = 1.5e-3
    weight_decay: float = 1e-4
    hide_min: float = 0.05
    hide_max: float = 0.25
    run_fraction: float = 0.5
    crop: int = 40
    val_fraction: float = 0.1
    seed: int = 0
    max_minutes: float = 8.0
    threads: int = 1
    map_weight: float = 1.0


def hidden_pair_loss(
    out: dict, truth: torch.Tensor, hidden: torch.Tensor, scale: float, map_weight: float = 0.0
) -> torch.Tensor:
    """Mean L1 error of hidden-to-observed distances, in units of ``scale``.

    The distances of the placed coordinates are scored; with ``map_weight > 0`` the L1 error of
    the raw predicted map (``out["map_detached"]``) on the same pairs is added with that weight.

    Parameters
    ----------
    out
        :class:`Imputer` output for the corrupted batch.
    truth
        ``(B, L, 3)`` true coordinates (NaN only where originally missing).
    hidden
        ``(B, L)`` bool, loci hidden in this step.
    scale
        Length unit.
    """
    obs = out["mask"]
    # centre each trace on its observed loci first: the matmul shortcut of cdist on raw
    # coordinates (~1e5 nm) loses precision (errors up to ~90 nm); centred, it is exact to ~1e-3
    m = obs[..., None]
    centre = torch.where(m, torch.nan_to_num(truth), 0).sum(1, keepdim=True) / m.sum(1, keepdim=True).clamp(
        min=1
    )
    pred = torch.nan_to_num(out["coords"] - centre)  # (B, L, 3) data units, centred
    t = torch.nan_to_num(truth - centre)
    d_pred = torch.cdist(pred, pred)  # (B, L, L)
    d_true = torch.cdist(t, t)
    pairs = hidden[:, :, None] & obs[:, None, :]
    err = (d_pred - d_true).abs() / scale
    n = pairs.sum().clamp(min=1)
    loss = (err * pairs).sum() / n
    if map_weight > 0 and "map_detached" in out:
        err_map = (out["map_detached"] - d_true).abs() / scale
        loss = loss + map_weight * (err_map * pairs).sum() / n
    return loss


def evaluate_ratio(model: Imputer, coords: np.ndarray, scale: float, seed: int = 0) -> dict[str, float]:
    """Protocol MAE (random 10% hidden) of the model's coordinates, its raw map, and linear."""
    from pointae.baselines import interpolate_missing

    held = make_held_out(coords, 0.1, seed=seed, mode="random")
    pred = predict(model, held.coords, scale)
    m = score(held, pred["coords"]).summary()["mae"]
    raw = score(held, pred_maps=pred["map"]).summary()["mae"]
    lin = score(held, interpolate_missing(held.coords)).summary()["mae"]
    return {
        "val_mae": m,
        "val_map_mae": raw,
        "val_linear": lin,
        "val_ratio": m / lin,
        "val_map_ratio": raw / lin,
    }


@torch.no_grad()
def predict(
    model: Imputer,
    coords: np.ndarray,
    scale: float,
    batch_size: int = 128,
    place_steps: int = 0,
    precision: str = "fp32",
    maps: bool = True,
) -> dict[str, np.ndarray]:
    """Run the model on ``coords`` ``(N, L, 3)``; only traces with a missing locus cost work.

    Traces without a missing locus (or without an observed one) skip the network; the others are
    batched in order of their number of missing loci, so a batch pads little.

    Parameters
    ----------
    model, coords, scale
        The imputer, the traces (NaN = missing) and the length unit.
    batch_size
        Traces per forward pass.
    place_steps
        Further stress-refinement steps of the missing loci towards the predicted map after the
        network (:func:`~pointae.impute.model.refine_to_map`, the update the network unrolls; the
        final placement of :func:`pointae.impute.api.impute_coords`).
    precision
        ``"fp32"``, ``"bf16"`` or ``"auto"`` for the CNN (:func:`~pointae.impute.model.inference_precision`).
    maps
        Also return the ``(N, L, L)`` predicted maps (memory: ``4 N L^2`` bytes).

    Returns
    -------
    dict
        ``coords`` ``(N, L, 3)`` (observed loci unchanged, missing ones placed), ``direct``
        (the placement before any refinement), ``spread`` ``(N, L)`` and, with ``maps``,
        ``map`` ``(N, L, L)`` (the raw predicted distance map; observed distances for traces
        that skipped the network), float32.
    """
    model.eval()
    coords = np.asarray(coords, np.float32)
    n, n_loci = coords.shape[:2]
    observed = ~np.isnan(coords[..., 0])
    n_missing = (~observed).sum(1)
    out = {
        "coords": coords.copy(),
        "direct": coords.copy(),
        "spread": np.zeros((n, n_loci), np.float32),
    }
    if maps:
        out["map"] = distance_maps(coords)
    work = np.flatnonzero((n_missing > 0) & observed.any(1))
    work = work[np.argsort(n_missing[work], kind="stable")]  # batch by need
    # the final placement runs on groups of PLACE_BATCH traces (several network batches): its
    # per-step tensors are small, so larger batches cost less per trace (measured: -26% at 128)
    group = max(batch_size, PLACE_BATCH) if place_steps > 0 else batch_size
    with torch_threads(1), inference_precision(model, precision):
        for g in range(0, work.size, group):
            rows_g = work[g : g + group]
            placed = []
            for s in range(0, rows_g.size, batch_size):
                rows = rows_g[s : s + batch_size]
                r = model(torch.from_numpy(coords[rows]), scale)
                out["direct"][rows] = r["direct"].numpy()
                out["spread"][rows] = r["spread"].numpy()
                if maps:
                    out["map"][rows] = r["map"].numpy()
                if place_steps > 0:
                    placed.append((r["coords"], r["map"], r["mask"]))
                else:
                    out["coords"][rows] = r["coords"].numpy()
            if placed:
                xyz, target, mask = (torch.cat(v) for v in zip(*placed))
                out["coords"][rows_g] = _place(xyz, target, mask, place_steps).numpy()
    obs = ~np.isnan(coords)
    out["coords"][obs] = coords[obs]
    out["direct"][obs] = coords[obs]
    return out


PLACE_BATCH = 128  # traces per final-placement batch in :func:`predict`


def _place(xyz: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, steps: int) -> torch.Tensor:
    """``steps`` more Jacobi stress updates of the missing loci (centred, data units)."""
    m = mask[..., None]
    centre = torch.where(m, xyz, 0).sum(1, keepdim=True) / m.sum(1, keepdim=True).clamp(min=1)
    return refine_to_map(xyz - centre, target, mask, steps) + centre


def training_step(model, opt, sched, batch: np.ndarray, scale: float, rng, cfg: FitConfig) -> float | None:
    """One self-supervised step on ``batch`` ``(B, L, 3)``: a random crop of ``cfg.crop`` loci (traces
    left with < 4 spots dropped), a random fraction of the observed loci hidden, the hidden-pair
    loss, one clipped optimiser and scheduler step. Returns the loss, or None (no step taken) when
    the crop left no usable trace. Shared by :func:`fit_imputer` and
    :func:`pointae.impute.sources.fit_sources`."""
    n_loci = batch.shape[1]
    if cfg.crop and cfg.crop < n_loci:
        a = int(rng.integers(0, n_loci - cfg.crop + 1))
        batch = batch[:, a : a + cfg.crop]
        batch = batch[(~np.isnan(batch[..., 0])).sum(1) >= 4]
        if len(batch) == 0:
            return None
    frac = float(rng.uniform(cfg.hide_min, cfg.hide_max))
    corr = hide_loci(batch, frac, rng, run_fraction=cfg.run_fraction)
    out = model(torch.from_numpy(corr.coords), scale)
    loss = hidden_pair_loss(
        out, torch.from_numpy(batch), torch.from_numpy(corr.changed), scale, cfg.map_weight
    )
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.step()
    return float(loss.detach())


class EpochKeeper:
    """Keeps the weights of the best epoch (lowest ``key``), logs each epoch's row and stops at the
    time budget: the epoch bookkeeping shared by :func:`fit_imputer` and
    :func:`pointae.impute.sources.fit_sources`."""

    def __init__(self, model: torch.nn.Module, max_minutes: float, log: Callable[[str], None] | None):
        self.best, self.state = math.inf, copy.deepcopy(model.state_dict())
        self.max_minutes, self.log = max_minutes, log
        self.history: list[dict] = []
        self.t0 = time.time()

    def minutes(self) -> float:
        return (time.time() - self.t0) / 60

    def end_epoch(self, model: torch.nn.Module, row: dict, key: float) -> bool:
        """Record ``row``; keep the weights if ``key`` is the best so far. True = stop (time budget)."""
        if key < self.best:
            self.best, self.state = key, copy.deepcopy(model.state_dict())
        self.history.append(row)
        if self.log is not None:
            self.log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
        if row["minutes"] > self.max_minutes:
            if self.log is not None:
                self.log(f"stopping: time budget of {self.max_minutes} min reached")
            return True
        return False

    def restore(self, model: torch.nn.Module):
        """The best epoch's weights, in eval mode, and the per-epoch rows."""
        model.load_state_dict(self.state)
        model.eval()
        return model, self.history


def fit_imputer(
    coords: np.ndarray,
    scale: float,
    config: FitConfig | None = None,
    model_config: ImputerConfig | None = None,
    val_coords: np.ndarray | None = None,
    log: Callable[[str], None] | None = print,
    model: Imputer | None = None,
) -> tuple[Imputer, list[dict]]:
    """Train an imputer on traces ``coords`` ``(N, L, 3)`` (NaN = missing).

    Parameters
    ----------
    coords
        Training traces.
    scale
        Length unit (median neighbour distance of the data).
    config, model_config
        Training and architecture settings.
    val_coords
        Validation traces, scored with the protocol after every epoch; the best epoch is kept.
        When ``None`` a ``val_fraction`` of ``coords`` is held out (by trace).
    log
        Progress printer (``None`` for silence).
    model
        Start from this model (fine-tuning) instead of a fresh one.

    Returns
    -------
    (model, history)
        The best model (by validation MAE) in eval mode and one dict per epoch.
    """
    cfg = config or FitConfig()
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    coords = np.asarray(coords, np.float32)
    if val_coords is None and cfg.val_fraction > 0:
        perm = rng.permutation(len(coords))
        n_val = max(1, int(round(cfg.val_fraction * len(coords))))
        val_coords, coords = coords[perm[:n_val]], coords[perm[n_val:]]
    # traces need at least a few observed loci to learn from
    coords = coords[(~np.isnan(coords[..., 0])).sum(1) >= 4]
    model = model if model is not None else Imputer(model_config or ImputerConfig())
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, math.ceil(len(coords) / cfg.batch_size))
    total = steps_per_epoch * cfg.epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total, pct_start=0.1)
    keeper = EpochKeeper(model, cfg.max_minutes, log)
    for epoch in range(cfg.epochs):
        model.train()
        perm = rng.permutation(len(coords))
        losses = []
        for s in range(0, len(perm), cfg.batch_size):
            loss = training_step(model, opt, sched, coords[perm[s : s + cfg.batch_size]], scale, rng, cfg)
            if loss is not None:
                losses.append(loss)
        row = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "minutes": keeper.minutes()}
        if val_coords is not None and len(val_coords):
            row.update(evaluate_ratio(model, val_coords, scale, seed=1000))
            key = row["val_ratio"]
        else:
            key = row["loss"]
        if keeper.end_epoch(model, row, key):
            break
    return keeper.restore(model)


def config_dict(cfg: FitConfig) -> dict:
    """JSON-able training settings."""
    return asdict(cfg)


# ------------------------------------------------------------------------------ run configuration
@dataclass
class ImputerDataConfig:
    """The traces file the imputer trains on and its train/test split (by trace)."""

    path: str | None = None
    test_fraction: float = 0.2
    split_seed: int = 0


@dataclass
class ImputerRunConfig:
    """A complete imputer run (``pointae train --task inpaint --data FILE``).

    Sections: ``data`` (:class:`ImputerDataConfig`), ``model`` (the architecture,
    :class:`~pointae.impute.model.ImputerConfig`) and ``train`` (:class:`FitConfig`); ``ensemble``
    members are trained with seeds ``train.seed, train.seed + 1, ...`` and averaged; ``init``
    fine-tunes from an imputer run. YAML files and ``--set section.key=value`` overrides go
    through the same machinery as autoencoder runs (:mod:`pointae.config`), e.g.
    ``--set train.epochs=24 --set model.channels=16 --set ensemble=2``.
    """

    out: str | None = None
    overwrite: bool = False
    ensemble: int = 1
    init: str | None = None
    data: ImputerDataConfig = field(default_factory=ImputerDataConfig)
    model: ImputerConfig = field(default_factory=ImputerConfig)
    train: FitConfig = field(default_factory=FitConfig)

    def to_dict(self) -> dict:
        """Plain nested dict (YAML/JSON-able)."""
        d = asdict(self)
        d["model"] = self.model.to_dict()
        return d

    def validate(self) -> ImputerRunConfig:
        """Check ranges; raise :class:`~pointae.errors.PointaeError` naming the key."""
        t, m = self.train, self.model
        for key, v in (
            ("ensemble", self.ensemble),
            ("train.epochs", t.epochs),
            ("train.batch_size", t.batch_size),
            ("train.threads", t.threads),
        ):
            if v < 1:
                raise PointaeError(f"{key} must be >= 1, got {v}")
        if m.channels < 4 or m.channels % 4:
            raise PointaeError(f"model.channels must be a positive multiple of 4, got {m.channels}")
        if not m.dilations or min(m.dilations) < 1:
            raise PointaeError(
                f"model.dilations must be a non-empty list of integers >= 1, got {list(m.dilations)}"
            )
        if m.refine_steps < 0:
            raise PointaeError(f"model.refine_steps must be >= 0, got {m.refine_steps}")
        if m.activation not in ACTIVATIONS:
            raise PointaeError(
                f"model.activation must be one of {', '.join(ACTIVATIONS)}, got {m.activation!r}"
            )
        if not (0 <= self.data.test_fraction < 1):
            raise PointaeError(f"data.test_fraction must be in [0, 1), got {self.data.test_fraction}")
        if not (0 < t.hide_min <= t.hide_max < 1):
            raise PointaeError("train.hide_min and train.hide_max must satisfy 0 < hide_min <= hide_max < 1")
        if not (t.lr > 0 and math.isfinite(t.lr)):
            raise PointaeError(f"train.lr must be a finite number > 0, got {t.lr}")
        if not (0 <= t.val_fraction < 1):
            raise PointaeError(f"train.val_fraction must be in [0, 1), got {t.val_fraction}")
        return self


def load_imputer_config(
    paths: str | Path | list | None = None,
    overrides: list[str] | None = None,
    base: ImputerRunConfig | dict | None = None,
) -> ImputerRunConfig:
    """Build an :class:`ImputerRunConfig`: ``base`` (defaults), then each YAML file, then the
    dotted ``section.key=value`` overrides: the machinery of :func:`pointae.config.load_config`
    (unknown keys and wrong types are one-line errors naming the file or ``--set``)."""
    from pointae.config import _merge, apply_layers

    if isinstance(base, ImputerRunConfig):
        cfg = copy.deepcopy(base)
    else:
        cfg = ImputerRunConfig()
        if base:
            _merge(cfg, copy.deepcopy(base))
    return apply_layers(cfg, paths, overrides).validate()
