"""User-facing imputation API: impute, denoise, train, evaluate.

- :func:`impute_traces`: fill missing loci (and with ``denoise=True`` flag and correct outlier
  loci) of a :class:`~pointae.Traces`; every original spot is kept bit for bit; the layers
  ``pointae_status`` (observed | imputed | corrected | missing) and ``pointae_confidence`` are
  added and the run's provenance is written to ``attrs["pointae_impute"]``.
- :func:`load_imputer` / :func:`save_imputer`: a model is a run directory in the format of every
  pointae run: ``model.json`` (``"format": "pointae-model/2"``, ``"kind": "imputer"``:
  architecture, training settings, calibration, fingerprints of the training traces) and
  ``model.safetensors`` (weights, no pickle; ensemble members as ``members.<i>.`` prefixed
  tensors). ``None`` loads the default model shipped in ``pointae/assets/imputer``. Runs of the
  older format (``imputer.json``) are converted on load (in memory;
  :func:`convert_legacy_run` rewrites them on disk). :func:`load_imputer` also accepts an
  *inpainting autoencoder* run of ``pointae train`` (any representation) through
  :func:`imputer_from_run`.
- :func:`train_imputer`: self-supervised training on a user's own traces (split by trace).
- :func:`evaluate_imputation` / :func:`evaluate_denoising`: the held-out protocols of
  :mod:`pointae.impute.protocol` against the baselines, with bootstrap confidence intervals.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from pointae._version import __version__
from pointae.baselines import clean_neighbour_rule, interpolate_missing, krige_missing, smooth_missing
from pointae.data.corrupt import add_outliers
from pointae.data.traces import Traces
from pointae.data.transforms import MapScaler
from pointae.errors import PointaeError, atomic_path
from pointae.impute.baselines import fill_maps, knn_maps, population_median_map
from pointae.impute.fit import FitConfig, config_dict, fit_imputer, predict
from pointae.impute.model import Imputer, ImputerConfig, ImputerEnsemble, describe
from pointae.impute.place import place_loci
from pointae.impute.protocol import UndefinedPredictionError, bootstrap, eligible, make_held_out, score
from pointae.impute.uncertainty import Calibration, fit_calibration
from pointae.impute.uncertainty import self_calibrate as _self_calibrate
from pointae.train.runfiles import MODEL_FORMAT  # the one run-directory format

DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[1] / "assets" / "imputer"
WEIGHTS_FILE = "model.safetensors"
# the run-directory format shared with the autoencoder runs of ``pointae train``
META_FILE = "model.json"
LEGACY_META_FILE = "imputer.json"  # imputer runs written before the shared format
# default denoising threshold: a spot is an outlier when it lies farther than this many median
# neighbour distances from where the model places it with the spot hidden (see docs/impute.md)
DENOISE_THRESHOLD = 3.0
_DENOISE_PASSES = 8
# final placement: stress updates of the missing loci towards the predicted map after the network;
# chosen on the IMR90 + Huang validation traces (benchmarks/study_place_steps.py, docs/impute.md):
# the smallest count within 0.001 of 100 updates' ratio (shipped model: 30 -> 0.9465, 100 -> 0.9458,
# 20 -> 0.9470; the earlier GELU ensemble: 0.9441 / 0.9433 / 0.9447)
PLACE_STEPS = 30
# a trace needs this many observed spots for impute to place anything: with fewer (e.g. Hi-M traces
# of one or two barcodes) there is no shape to learn from; such traces are left as they are
MIN_OBSERVED = 3


@dataclass
class LoadedImputer:
    """A trained imputer with its metadata.

    Attributes
    ----------
    model
        The :class:`~pointae.impute.model.Imputer` in eval mode.
    meta
        Contents of ``model.json`` (architecture, training, calibration, fingerprints).
    path
        Where it was loaded from (``"default"`` for the shipped model).
    """

    model: Imputer
    meta: dict = field(default_factory=dict)
    path: str = "default"

    @property
    def train_fingerprints(self) -> set[str]:
        return set(self.meta.get("train_fingerprints", []))


def trace_fingerprints(coords: np.ndarray) -> list[str]:
    """A short content hash per trace ``(N, L, 3)`` (to recognise training traces later)."""
    c = np.ascontiguousarray(np.nan_to_num(np.asarray(coords, np.float32), nan=-1e30))
    return [hashlib.sha1(c[i].tobytes()).hexdigest()[:16] for i in range(len(c))]


def save_imputer(model: Imputer, out_dir, meta: dict) -> Path:
    """Write ``model.safetensors`` and ``model.json`` (format ``pointae-model/2``, kind ``imputer``)."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().to(torch.float32) for k, v in model.state_dict().items()}
    with atomic_path(out / WEIGHTS_FILE) as tmp:
        save_file(state, str(tmp), metadata={"format": MODEL_FORMAT, "kind": "imputer"})
    meta = {
        "format": MODEL_FORMAT,
        "kind": "imputer",
        "task": "inpaint",
        **{k: v for k, v in meta.items() if k not in ("format", "kind", "task")},
        "model": model.config.to_dict(),
        "pointae_version": __version__,
    }
    with atomic_path(out / META_FILE) as tmp:
        tmp.write_text(json.dumps(meta, indent=1))
    return out


def _read_json(path: Path) -> dict:
    try:
        d = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise PointaeError(f"{path}: not valid JSON ({e.msg}, line {e.lineno})") from None
    except UnicodeDecodeError:
        raise PointaeError(f"{path}: not a JSON text file") from None
    if not isinstance(d, dict):
        raise PointaeError(f"{path}: not a pointae run description (expected a JSON object)")
    return d


def legacy_meta(meta: dict) -> dict:
    """An ``imputer.json`` dict (the imputer's format before ``pointae-model/2``) as a ``model.json`` dict."""
    return {
        "format": MODEL_FORMAT,
        "kind": "imputer",
        "task": "inpaint",
        **{k: v for k, v in meta.items() if k not in ("format", "kind", "task")},
        "converted_from": LEGACY_META_FILE,
    }


def run_meta(run) -> tuple[Path, dict]:
    """``(weights path, model.json dict)`` of an imputer run directory or weights file.

    Reads ``model.json``; a legacy ``imputer.json`` is converted in memory (:func:`legacy_meta`).
    """
    p = Path(run)
    weights = p / WEIGHTS_FILE if p.is_dir() else p
    if not weights.exists():
        raise PointaeError(
            f"{weights}: no imputer weights found (expected a run directory with {WEIGHTS_FILE})"
        )
    new, old = weights.parent / META_FILE, weights.parent / LEGACY_META_FILE
    if new.exists():
        return weights, _read_json(new)
    if old.exists():
        return weights, legacy_meta(_read_json(old))
    raise PointaeError(f"{new}: imputer metadata missing")


def convert_legacy_run(run, out_dir=None) -> Path:
    """Rewrite an imputer run of the old format (``imputer.json``) as a ``pointae-model/2`` run.

    ``model.json`` replaces ``imputer.json``; the weights are re-saved with the new format's
    metadata (the tensors are unchanged, so the model predicts exactly the same) and
    ``weights_sha1`` is updated. With ``out_dir`` the converted run is written there (the other
    files of the run are copied) and ``run`` is left as it was.

    Examples
    --------
    ``python -c "from pointae.impute.api import convert_legacy_run; convert_legacy_run('old_run')"``
    """
    import shutil

    from safetensors.torch import load_file, save_file

    src = Path(run)
    if not (src / LEGACY_META_FILE).is_file():
        if (src / META_FILE).is_file():
            return src  # already converted
        raise PointaeError(f"{src}: no {LEGACY_META_FILE} to convert")
    meta = legacy_meta(_read_json(src / LEGACY_META_FILE))
    out = Path(out_dir) if out_dir is not None else src
    if out != src:
        out.mkdir(parents=True, exist_ok=True)
        for f in src.iterdir():
            if f.is_file() and f.name not in (LEGACY_META_FILE, WEIGHTS_FILE):
                shutil.copy2(f, out / f.name)
    try:
        state = load_file(str(src / WEIGHTS_FILE))
    except Exception as e:  # noqa: BLE001 - any corrupt file is a user error here
        raise PointaeError(f"{src / WEIGHTS_FILE}: cannot load imputer weights ({e})") from None
    with atomic_path(out / WEIGHTS_FILE) as tmp:
        save_file(state, str(tmp), metadata={"format": MODEL_FORMAT, "kind": "imputer"})
    meta["weights_sha1"] = hashlib.sha1((out / WEIGHTS_FILE).read_bytes()).hexdigest()
    with atomic_path(out / META_FILE) as tmp:
        tmp.write_text(json.dumps(meta, indent=1))
    if out == src:
        (src / LEGACY_META_FILE).unlink()
    return out


def load_imputer(path=None) -> LoadedImputer:
    """Load an imputer from a run directory or weights file; ``None`` loads the shipped default.

    Only safetensors weights and JSON metadata are read (no pickle). Accepts imputer runs
    (``model.json`` with ``"kind": "imputer"``; legacy ``imputer.json`` runs are converted in
    memory) and the inpainting autoencoder runs of ``pointae train`` (:func:`imputer_from_run`).
    """
    if isinstance(path, LoadedImputer):
        return path
    from safetensors.torch import load_file

    p = DEFAULT_MODEL_DIR if path is None else Path(path)
    weights, meta = run_meta(p)
    kind = meta.get("kind")
    if kind is None and str(meta.get("format", "")).startswith("pointae-model/"):
        kind = "autoencoder"  # pointae-model/1 runs of ``pointae train`` have no kind
    if kind == "autoencoder":
        return imputer_from_run(weights.parent)
    if kind != "imputer" or meta.get("format") != MODEL_FORMAT:
        raise PointaeError(
            f"{weights.parent / META_FILE}: not a pointae imputer run (format={meta.get('format')!r}, "
            f"kind={kind!r}; expected {MODEL_FORMAT!r} with kind 'imputer', or an inpainting run "
            "of pointae train)"
        )
    cfg = ImputerConfig.from_dict(meta.get("model", {}))
    k = int(meta.get("ensemble", 1))
    model = Imputer(cfg) if k == 1 else ImputerEnsemble([Imputer(cfg) for _ in range(k)])
    try:
        state = load_file(str(weights))
        model.load_state_dict(state)
    except Exception as e:  # noqa: BLE001 - any corrupt/mismatched file is a user error here
        raise PointaeError(f"{weights}: cannot load imputer weights ({e})") from None
    model.eval()
    shipped = path is None or weights.parent.resolve() == DEFAULT_MODEL_DIR.resolve()
    return LoadedImputer(model, meta, "default" if shipped else str(path))


def imputer_from_run(run, calibrate: bool = True) -> LoadedImputer:
    """An inpainting autoencoder run of ``pointae train`` (any representation) as an imputer.

    The run's model predicts each trace's distance map with the missing loci hidden; the missing
    loci are then placed against the observed ones by the imputer's stress updates, observed
    spots kept exactly (:class:`~pointae.impute.adapter.RunImputer`). The result has the
    interface of :func:`load_imputer`'s, so :func:`impute_traces`, ``pointae impute`` and
    :func:`evaluate_imputation` accept it.

    Parameters
    ----------
    run
        Run directory (``model.json`` + ``model.safetensors``) of a ``task: inpaint`` run.
    calibrate
        Read the run's own data and split (``config`` in ``model.json``, ``split.json``) to
        fingerprint its training and validation traces (so the protocol skips them) and to fit
        the ``pointae_sd`` calibration on held-out spots of its *validation* split, the same fit
        as an imputer's. Without them (data not found, or ``calibrate=False``) nothing is
        excluded and ``pointae_sd`` is calibrated on the input's own visible spots (as for an
        imputer without a stored calibration); ``meta["uncertainty_note"]`` says which.
    """
    from pointae.data.reprs import build_repr
    from pointae.impute.adapter import RunImputer
    from pointae.train import load_model

    run = Path(run)
    if (run / META_FILE).is_file():  # refuse other tasks before building their model
        task = _read_json(run / META_FILE).get("task")
        if task != "inpaint":
            raise PointaeError(
                f"{run}: a {task!r} run cannot impute; train one with --task inpaint (or use an imputer run)"
            )
    net, info = load_model(run)
    rep = build_repr(info["repr"], **info.get("repr_options", {}))
    model = RunImputer(net, rep, int(info["n_loci"]), source=str(run))
    meta = {
        "format": info.get("format"),
        "kind": "autoencoder",
        "task": "inpaint",
        "repr": info["repr"],
        "n_loci": int(info["n_loci"]),
        "run": str(run),
        "description": f"inpainting {info['repr']} autoencoder run ({model.n_parameters():,} parameters) "
        "+ the imputer's placement",
        "uncertainty_note": "pointae_sd calibrated on the input's own visible spots",
        "weights_sha1": hashlib.sha1((run / WEIGHTS_FILE).read_bytes()).hexdigest(),
        "data": {"source": (info.get("config") or {}).get("data", {}).get("path"), "unit": info.get("unit")},
    }
    if calibrate:
        meta.update(_run_calibration(run, info, model))
    return LoadedImputer(model, meta, str(run))


def _run_calibration(run: Path, info: dict, model) -> dict:
    """Training fingerprints and the ``pointae_sd`` calibration of a run, from its own data/split."""
    from pointae.config import config_from_dict
    from pointae.train import load_traces

    split_path = run / "split.json"
    try:
        cfg = config_from_dict(info.get("config") or {})
        if not split_path.is_file():
            raise PointaeError(f"{split_path}: no such file")
        traces = load_traces(cfg)
        pos = {str(t): i for i, t in enumerate(traces.trace_ids)}
        split = {}
        for k, ids in _read_json(split_path).items():
            if k in ("train", "val", "test"):
                if any(str(t) not in pos for t in ids):
                    raise PointaeError(
                        f"{split_path}: the {k} split names traces not in "
                        f"{cfg.data.path or 'the simulated data'}"
                    )
                split[k] = np.array(sorted(pos[str(t)] for t in ids), dtype=np.int64)
        if "train" not in split or "val" not in split:
            raise PointaeError(f"{split_path}: no train/val split")
    except (PointaeError, OSError) as e:
        return {"uncertainty_note": f"pointae_sd calibrated on the input's own visible spots ({e})"}
    seen = np.concatenate([split["train"], split["val"]])
    out: dict = {"train_fingerprints": trace_fingerprints(traces.coords[seen])}
    scale = _scale(traces[split["train"]])
    try:
        cal = _calibrate_on(model, traces.coords[split["val"]], scale)
    except PointaeError as e:  # too few eligible validation spots
        out["uncertainty_note"] = f"pointae_sd calibrated on the input's own visible spots ({e})"
        return out
    out["uncertainty"] = cal.to_dict()
    out["uncertainty_note"] = (
        f"pointae_sd calibrated on held-out spots of the run's {len(split['val'])} validation traces"
    )
    return out


def model_calibration(loaded: LoadedImputer) -> Calibration | None:
    """The uncertainty calibration stored with a model (``model.json`` ``"uncertainty"``), if any."""
    return Calibration.from_dict(loaded.meta.get("uncertainty"))


def input_calibration(
    loaded: LoadedImputer,
    coords: np.ndarray,
    scale: float,
    precision: str = "auto",
    self_calibrate: bool = False,
    fit_traces: int = 4000,
) -> Calibration:
    """The ``pointae_sd`` calibration used to impute ``coords`` ``(N, L, 3)``.

    The model's stored calibration, rescaled on the input's own visible spots with
    ``self_calibrate`` (:func:`pointae.impute.uncertainty.self_calibrate`); for a model without
    one, a calibration fitted on the visible spots of the first ``fit_traces`` traces.
    """
    cal = model_calibration(loaded)
    if cal is None:
        return fit_calibration(loaded.model, coords[:fit_traces], scale, precision=precision)
    if self_calibrate:
        return _self_calibrate(cal, loaded.model, coords, scale, precision=precision)
    return cal


def predictive_description(cal: Calibration) -> dict:
    """What ``pointae_sd`` means, for the output's provenance."""
    w, k = cal.mixture
    return {
        "pointae_sd": "per-axis sd of an isotropic Gaussian centred on the written position "
        "(a sphere of radius 2.5 pointae_sd holds ~90%)",
        "mixture_weights": [round(float(v), 4) for v in w],
        "mixture_sd_factors": [round(float(v), 4) for v in k],
        "mixture": "full predictive: sum_c weight_c N(position, (factor_c pointae_sd)^2 A), "
        "A = radial^2 u u^T + tangential^2 (I - u u^T), u = unit vector from the centroid of the "
        "trace's kept spots to the position",
        "anisotropy_radial_tangential": [1.0, 1.0] if cal.anisotropy is None else list(cal.anisotropy),
        "calibrated_on": cal.info.get("fitted_on"),
        **({"self_calibration": cal.info["self_calibration"]} if "self_calibration" in cal.info else {}),
    }


def _scale(traces_or_coords) -> float:
    t = traces_or_coords if isinstance(traces_or_coords, Traces) else Traces(traces_or_coords)
    return MapScaler("dataset").fit(t).scale


def _predict(model: Imputer, coords: np.ndarray, scale: float):
    """Model placement of all missing loci: ``(coords (N, L, 3), spread (N, L))``."""
    r = predict(model, coords, scale, precision="auto", maps=False)
    return r["coords"], r["spread"]


def impute_coords(
    model: Imputer,
    coords: np.ndarray,
    scale: float,
    refine: bool = True,
    precision: str = "auto",
    maps: bool = True,
    batch_size: int = 32,
) -> dict:
    """Impute the missing loci of ``coords`` ``(N, L, 3)``.

    The network places each missing locus (weighted combination of observed positions), predicts
    the distance map and (``refine_steps > 0``) moves the placed loci towards it by its own
    unrolled stress updates; with ``refine`` the missing loci are then moved on to the minimum of
    the unweighted stress to that predicted map (:data:`PLACE_STEPS` more of the same updates,
    observed loci pinned), which lowers the protocol MAE (see docs/impute.md). Traces without a
    missing locus skip the network.

    Parameters
    ----------
    precision
        CNN precision, ``"auto"`` (bfloat16 where the CPU supports it), ``"bf16"`` or ``"fp32"``.
    maps
        Also return the predicted maps (``4 N L^2`` bytes).

    Returns
    -------
    dict
        ``coords`` ``(N, L, 3)`` (observed loci bit for bit), ``direct`` (the network placement
        before any refinement), ``spread`` ``(N, L)`` and (``maps``) ``map`` ``(N, L, L)``.
    """
    steps = PLACE_STEPS if refine else 0
    return predict(
        model, coords, scale, batch_size=batch_size, place_steps=steps, precision=precision, maps=maps
    )


def detect_outliers_model(
    model: Imputer,
    coords: np.ndarray,
    scale: float,
    threshold: float = DENOISE_THRESHOLD,
    passes: int = _DENOISE_PASSES,
    rounds: int = 2,
    calibration: Calibration | None = None,
    details: bool = False,
):
    """Flag mislocalised spots: observed loci far from where the model places them when hidden.

    Each observed locus is hidden in one of ``passes`` interleaved passes (loci ``i`` with
    ``i % passes == r``), placed by the model from the others, and flagged when it lies more than
    ``threshold * scale`` from that placement. In later ``rounds`` the spots flagged so far are
    hidden too, so one outlier does not spoil its neighbours' predictions.

    Returns
    -------
    numpy.ndarray or (numpy.ndarray, dict)
        ``(N, L)`` bool; with ``details`` also ``{"resid": (N, L) distance of each observed spot
        from its placement in the last round, "sd": (N, L) the calibrated pointae_sd of that
        placement (with a ``calibration``)}``.
    """
    coords = np.asarray(coords, np.float32)
    observed = ~np.isnan(coords[..., 0])
    flagged = np.zeros_like(observed)
    idx = np.arange(coords.shape[1])
    for _ in range(rounds):
        resid = np.zeros(observed.shape, np.float32)
        sd = np.full(observed.shape, np.nan, np.float32)
        for r in range(passes):
            hide = observed & (idx % passes == r)[None, :]
            c = coords.copy()
            c[hide | flagged] = np.nan
            pred, spread = _predict(model, c, scale)
            d = np.linalg.norm(pred - coords, axis=-1)
            resid[hide] = d[hide]
            if calibration is not None:
                sd[hide] = calibration.sd(spread, ~np.isnan(c[..., 0]), scale, c)[hide]
        new = observed & (resid > threshold * scale)
        if (new == flagged).all():
            break
        flagged = new
    return (flagged, {"resid": resid, "sd": sd}) if details else flagged


def impute_traces(
    traces: Traces,
    model=None,
    denoise: bool = False,
    threshold: float = DENOISE_THRESHOLD,
    scale: float | None = None,
    refine: bool = True,
    precision: str = "auto",
    calibration: Calibration | None = None,
    min_observed: int = MIN_OBSERVED,
    self_calibrate: bool = False,
) -> Traces:
    """Fill missing loci (and optionally correct outlier loci) of ``traces``.

    Parameters
    ----------
    traces
        Input traces, any unit, any number of loci.
    model
        A run directory / weights path, a :class:`LoadedImputer`, or ``None`` for the shipped
        default model.
    denoise
        Also flag mislocalised spots (:func:`detect_outliers_model`) and re-place them; their
        original coordinates are replaced and marked ``corrected``.
    threshold
        Denoising threshold in median neighbour distances.
    scale
        Length unit; by default calibrated on ``traces`` (median neighbour distance).
    refine
        Refine the network's placement against its predicted map (:func:`impute_coords`).
    precision
        CNN precision (``"auto"``: bfloat16 where the CPU supports it natively).
    calibration
        The uncertainty model (:class:`~pointae.impute.uncertainty.Calibration`); default the
        model's stored one, else one fitted on ``traces``' own visible spots.
    min_observed
        Traces with fewer observed (kept) spots are left as they are (their missing loci stay
        ``missing``); counted in ``attrs["pointae_impute"]["n_traces_too_few_spots"]``.
    self_calibrate
        Rescale the stored calibration on ``traces``' own visible spots before use (for a file
        unlike the model's validation data; :func:`pointae.impute.uncertainty.self_calibrate`);
        the factor is recorded in the provenance (``attrs["pointae_impute"]["uncertainty"]``).

    Returns
    -------
    Traces
        Same traces, metadata and loci; ``coords`` ``(N, L, 3)`` with missing loci filled
        (observed loci bit-for-bit identical unless corrected); layers ``pointae_status``
        (``(N, L)`` str: observed | imputed | corrected | missing) and ``pointae_confidence``
        (``(N, L)`` float32 in (0, 1]: 1 for observed spots, ``exp(-spread / scale)`` for placed
        ones, where ``spread`` is the weighted RMS distance of the loci used to place them) and
        ``pointae_sd`` (``(N, L)`` float32: per-axis sd of the isotropic Gaussian predictive
        distribution of each imputed/corrected spot, data unit; 0 for kept spots, NaN where
        nothing was written; calibrated on validation spots, see
        :mod:`pointae.impute.uncertainty`).
    """
    if not isinstance(traces, Traces):
        raise PointaeError(f"impute_traces needs a Traces, got {type(traces).__name__}")
    loaded = load_imputer(model)
    t0 = time.time()
    coords = traces.coords
    scale = _scale(traces) if scale is None else float(scale)
    observed = traces.mask
    flagged = np.zeros_like(observed)
    cal = calibration
    if cal is None:
        cal = input_calibration(loaded, coords, scale, precision=precision, self_calibrate=self_calibrate)
    p_out = None
    if denoise:
        from pointae.impute.uncertainty import outlier_probability

        flagged, det = detect_outliers_model(
            loaded.model, coords, scale, threshold=threshold, calibration=cal, details=True
        )
        p_out, _ = outlier_probability(det["resid"], det["sd"], observed, cal.mixture)
    work = coords.copy()
    work[flagged] = np.nan
    n_kept = (~np.isnan(work[..., 0])).sum(1)
    can = n_kept >= max(1, int(min_observed))  # traces with enough usable spots
    pred = np.full_like(coords, np.nan)
    spread = np.full(observed.shape, np.nan, np.float32)
    if can.any():
        r = impute_coords(loaded.model, work[can], scale, refine=refine, precision=precision, maps=False)
        pred[can], spread[can] = r["coords"], r["spread"]
    out = coords.copy()
    fill = (~observed | flagged) & ~np.isnan(pred[..., 0])
    sd = np.zeros(observed.shape, np.float32)
    kept = ~np.isnan(work[..., 0])
    sd[fill] = cal.sd(spread, kept, scale, work)[fill]
    sd[~observed & ~fill] = np.nan
    out[fill] = pred[fill]
    status = np.full(observed.shape, "observed", dtype=object)
    status[~observed] = "missing"
    status[~observed & fill] = "imputed"
    status[flagged & fill] = "corrected"
    conf = np.ones(observed.shape, np.float32)
    conf[fill] = np.exp(-spread[fill] / scale)
    conf[~observed & ~fill] = 0.0
    status = status.astype(str)
    attrs = dict(traces.attrs)
    attrs["pointae_impute"] = {
        "pointae_version": __version__,
        "model": loaded.path,
        "model_sha1": loaded.meta.get("weights_sha1"),
        "model_trained_on": loaded.meta.get("data", {}).get("source"),
        "scale": scale,
        "scale_unit": traces.unit,
        "scale_method": "median neighbour distance of the input",
        "refine": bool(refine),
        "denoise": bool(denoise),
        "denoise_threshold": float(threshold) if denoise else None,
        "n_imputed": int((status == "imputed").sum()),
        "n_corrected": int((status == "corrected").sum()),
        "n_missing_left": int((status == "missing").sum()),
        "n_traces_too_few_spots": int((~can & (~observed).any(1)).sum()),
        "min_observed": int(min_observed),
        "seconds": round(time.time() - t0, 3),
        "precision": precision,
        "uncertainty": predictive_description(cal),
    }
    layers = dict(traces.layers)
    layers["pointae_status"] = status
    layers["pointae_confidence"] = conf
    layers["pointae_sd"] = sd
    if p_out is not None:
        layers["pointae_outlier_prob"] = p_out
    return traces._replace(coords=out, attrs=attrs, layers=layers)


# ---------------------------------------------------------------------------------- training
def train_imputer(
    traces: Traces,
    out_dir,
    epochs: int = 14,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    max_minutes: float = 8.0,
    init=None,
    fit_config: FitConfig | None = None,
    model_config: ImputerConfig | None = None,
    log=print,
    ensemble: int = 1,
    config: dict | None = None,
) -> dict:
    """Self-supervised training on ``traces``, split by trace; writes a run directory.

    Parameters
    ----------
    traces
        Training data (any unit; lengths are calibrated by the median neighbour distance).
    out_dir
        Run directory: ``model.safetensors``, ``model.json``, ``history.csv``, ``metrics.json``,
        ``split.json``.
    epochs, max_minutes
        Training length and wall-clock budget.
    test_fraction, split_seed
        Fraction of traces kept out of training (scored with the protocol at the end) and the
        seed of that split (:meth:`Traces.split`).
    init
        Fine-tune from this model (path, :class:`LoadedImputer` or ``None`` for a fresh one),
        e.g. one pretrained on simulations.
    fit_config, model_config
        Full settings (``epochs``/``max_minutes`` override the fit config's).
    ensemble
        Train this many members with seeds ``seed, seed + 1, ...`` (same split) and average them
        (:class:`~pointae.impute.model.ImputerEnsemble`).
    config
        The run's full configuration (:meth:`~pointae.impute.fit.ImputerRunConfig.to_dict`), stored
        in ``model.json``.

    Returns
    -------
    dict
        The metrics written to ``metrics.json`` (held-out protocol scores when
        ``test_fraction > 0``).
    """
    out = Path(out_dir)
    fc = fit_config or FitConfig()
    fc.epochs, fc.max_minutes, fc.seed = int(epochs), float(max_minutes), int(fc.seed)
    split = traces.split(test_fraction=test_fraction, seed=split_seed) if test_fraction > 0 else None
    train_idx = split["train"] if split is not None else np.arange(len(traces))
    train = traces[train_idx]
    scale = _scale(train)
    members, history = [], []
    for i in range(max(1, int(ensemble))):
        fc_i = dataclasses.replace(fc, seed=fc.seed + i)
        start = copy.deepcopy(load_imputer(init).model) if init is not None else None
        if start is not None and model_config is not None:
            start.config.refine_steps = model_config.refine_steps  # the only setting a start can change
        cfg = model_config if start is None else start.config
        m, hist = fit_imputer(train.coords, scale, fc_i, cfg, log=log, model=start)
        members.append(m)
        history += [dict(row, member=i) for row in hist]
    model = members[0] if len(members) == 1 else ImputerEnsemble(members)
    src = str(traces.attrs.get("source", ""))
    meta = {
        "data": {"source": src, "unit": traces.unit, "n_traces": len(traces), "n_loci": traces.n_loci},
        "calibration": {"method": "median neighbour distance", "train_scale": scale, "unit": traces.unit},
        "fit": config_dict(fc),
        "ensemble": len(members),
        "split": {"test_fraction": test_fraction, "seed": split_seed, "n_train": int(len(train_idx))},
        "init": None if init is None else str(init),
        "train_fingerprints": trace_fingerprints(train.coords),
        "description": describe(model),
    }
    if config is not None:
        meta["config"] = config
    try:
        meta["uncertainty"] = _calibrate_on(model, train.coords, scale).to_dict()
    except PointaeError as e:  # too few eligible spots: impute calibrates on its input instead
        if log is not None:
            log(f"no uncertainty calibration stored: {e}")
    save_imputer(model, out, meta)
    _record_weights_hash(out)
    with atomic_path(out / "history.csv") as tmp, open(tmp, "w", newline="") as f:
        keys = sorted({k for row in history for k in row}, key=lambda k: (k != "epoch", k))
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(history)
    with atomic_path(out / "split.json") as tmp:
        ids = {k: traces.trace_ids[v].tolist() for k, v in (split or {"train": train_idx}).items()}
        tmp.write_text(json.dumps(ids))
    metrics: dict = {"history_last": history[-1] if history else {}, "description": describe(model)}
    if split is not None and len(split["test"]):
        metrics["test"] = evaluate_imputation(traces[split["test"]], model=out, n_boot=200, knn_pool=train)
    with atomic_path(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=1, default=float))
    return metrics


def fit_imputer_run(cfg, traces: Traces | None = None, log=print) -> Path:
    """Train the imputer as configured and write its run directory (``pointae train --task inpaint
    --data FILE``; the ``fit`` of the model registered as ``imputer``).

    Parameters
    ----------
    cfg
        :class:`~pointae.impute.fit.ImputerRunConfig` (or a nested dict of one); ``cfg.out`` is
        the run directory (default ``runs/imputer``), ``cfg.data.path`` the traces file unless
        ``traces`` is given.
    traces
        Train on these instead of reading ``cfg.data.path``.

    Returns
    -------
    pathlib.Path
        The run directory: ``model.json``, ``model.safetensors``, ``config.yaml``, ``history.csv``,
        ``metrics.json`` (the held-out protocol on the test split), ``split.json``.
    """
    import yaml

    from pointae.impute.fit import ImputerRunConfig, load_imputer_config

    cfg = cfg.validate() if isinstance(cfg, ImputerRunConfig) else load_imputer_config(base=cfg)
    run_dir = Path(cfg.out or "runs/imputer")
    cfg.out = str(run_dir)
    if run_dir.exists() and any(run_dir.iterdir()) and not cfg.overwrite:
        if (run_dir / META_FILE).exists() or (run_dir / WEIGHTS_FILE).exists():
            raise PointaeError(f"{run_dir} already holds a run: use another --out or --set overwrite=true")
    if traces is None:
        if not cfg.data.path:
            raise PointaeError("the imputer trains on a traces file: give --data FILE (or data.path)")
        from pointae.data.io import read_traces

        traces = read_traces(cfg.data.path)
    run_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(run_dir / "config.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    train_imputer(
        traces,
        run_dir,
        epochs=cfg.train.epochs,
        test_fraction=cfg.data.test_fraction,
        split_seed=cfg.data.split_seed,
        max_minutes=cfg.train.max_minutes,
        init=cfg.init,
        fit_config=copy.deepcopy(cfg.train),
        model_config=copy.deepcopy(cfg.model),
        log=log,
        ensemble=cfg.ensemble,
        config=cfg.to_dict(),
    )
    return run_dir


def _calibrate_on(model, coords: np.ndarray, scale: float) -> Calibration:
    """The uncertainty calibration of a trained model on (validation) traces: the protocol's hiding."""
    return fit_calibration(
        model, coords, scale, hide=0.1, mode="random", seeds=(101, 102, 103), max_missing=0.1
    )


def calibrate_imputer(run, traces: Traces, exclude: Traces | None = None) -> dict:
    """Fit the uncertainty calibration of a saved model on ``traces`` and store it in its ``model.json``.

    ``traces`` must not be the traces you evaluate on: use the model's training or validation
    traces (the shipped model: its 1,022 IMR90 training traces, see docs/impute.md).

    Returns
    -------
    dict
        The stored calibration (:meth:`~pointae.impute.uncertainty.Calibration.to_dict`).
    """
    run_dir = DEFAULT_MODEL_DIR if run is None else Path(run)
    if (run_dir / LEGACY_META_FILE).is_file():
        convert_legacy_run(run_dir)
    loaded = load_imputer(run)
    if loaded.meta.get("kind") != "imputer":
        raise PointaeError(f"{run_dir}: only imputer runs store a calibration")
    path = run_dir / META_FILE
    cal = _calibrate_on(loaded.model, traces.coords, _scale(traces)).to_dict()
    meta = json.loads(path.read_text())
    meta["uncertainty"] = cal
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(meta, indent=1))
    return cal


def combine_imputers(runs: list, out_dir) -> Path:
    """Average trained single imputers (same architecture and training split) into one ensemble run.

    ``combine_imputers([run_seed0, run_seed1], out)`` gives the same model as
    ``train_imputer(..., ensemble=2)`` with the same settings.
    """
    loaded = [load_imputer(r) for r in runs]
    for r, lo in zip(runs, loaded):
        if lo.meta.get("kind") != "imputer":
            raise PointaeError(f"{r}: only imputer runs can be combined (this is an autoencoder run)")
    fps = [lo.meta.get("train_fingerprints", []) for lo in loaded]
    if any(set(f) != set(fps[0]) for f in fps):
        raise PointaeError("imputers trained on different traces cannot be combined")
    members = [
        m
        for lo in loaded
        for m in (lo.model.members if isinstance(lo.model, ImputerEnsemble) else [lo.model])
    ]
    model = ImputerEnsemble(members)
    meta = {k: v for k, v in loaded[0].meta.items() if k not in ("model", "weights_sha1", "pointae_version")}
    meta.update(
        ensemble=len(members),
        members_from=[str(r) for r in runs],
        member_seeds=[lo.meta.get("fit", {}).get("seed") for lo in loaded],
        description=describe(model),
    )
    out = Path(out_dir)
    save_imputer(model, out, meta)
    _record_weights_hash(out)
    rows = []
    for i, r in enumerate(runs):
        h = Path(r) / "history.csv"
        if h.exists():
            with open(h, newline="") as f:
                rows += [dict(row, member=i) for row in csv.DictReader(f)]
    if rows:
        with atomic_path(out / "history.csv") as tmp, open(tmp, "w", newline="") as f:
            keys = list(dict.fromkeys(k for row in rows for k in row))
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(rows)
    split = Path(runs[0]) / "split.json"
    if split.exists():
        with atomic_path(out / "split.json") as tmp:
            tmp.write_text(split.read_text())
    return out


def _record_weights_hash(run_dir: Path) -> None:
    meta_path = run_dir / META_FILE
    meta = json.loads(meta_path.read_text())
    meta["weights_sha1"] = hashlib.sha1((run_dir / WEIGHTS_FILE).read_bytes()).hexdigest()
    with atomic_path(meta_path) as tmp:
        tmp.write_text(json.dumps(meta, indent=1))


# ---------------------------------------------------------------------------------- evaluation
def score_methods(
    held,
    model,
    scale: float,
    knn_pool: Traces | None = None,
    knn_k: int = 20,
    place_baselines: bool = True,
    calibration: Calibration | None = None,
) -> tuple[dict, dict]:
    """Run the model and every baseline on one :class:`~pointae.impute.protocol.HeldOut`.

    Returns ``({method: Scores}, info)``; methods: ``pointae`` (the imputed coordinates, as
    :func:`impute_traces` writes them), ``pointae_direct`` (the network placement before the
    refinement), ``pointae_map`` (the network's raw predicted distances: not a 3D structure,
    reported for reference), ``linear``, ``local_fit`` (robust local-linear fit along the chain,
    :func:`pointae.baselines.smooth_missing`), ``kriging`` (ordinary kriging along the chain with the
    variogram fitted to ``held``'s visible spots, :func:`pointae.baselines.krige_missing`: the best
    linear chain-only predictor), ``population_median`` and ``knn`` (their raw
    predicted distances; 3D positions by stress placement when ``place_baselines``). With a
    ``calibration``, ``info["calibration"]`` holds the calibration scores of pointae's predictive
    distribution (``pointae``: the scale mixture; ``pointae_gaussian``: the Gaussian with sd
    ``pointae_sd`` alone) and of the exact Gaussian kriging posterior
    (:func:`pointae.impute.uncertainty.calibration_scores`).
    """
    scores, info = model_scores(held, load_imputer(model), scale, calibration, "pointae")
    if calibration is not None:
        info["calibration"]["kriging_posterior"] = kriging_posterior_scores(held)
    scores.update(baseline_scores(held, knn_pool, knn_k, place_baselines))
    return scores, info


def model_scores(
    held, loaded: LoadedImputer, scale: float, calibration: Calibration | None = None, name: str = "pointae"
) -> tuple[dict, dict]:
    """One model's scores on a :class:`~pointae.impute.protocol.HeldOut`: ``name`` (the imputed
    coordinates), ``name_direct`` (the placement before refinement), ``name_map`` (the raw predicted
    distances); with a ``calibration`` also ``info["calibration"]`` ``{name, name_gaussian}``."""
    t0 = time.time()
    out = impute_coords(loaded.model, held.coords, scale, refine=True)
    info: dict = {"model_seconds": round(time.time() - t0, 3)}
    if name != "pointae":
        info = {f"{name}_seconds": info["model_seconds"]}
    if calibration is not None:
        from pointae.impute.uncertainty import calibration_scores

        sd = calibration.sd(out["spread"], held.observed, scale, held.coords)
        info["calibration"] = {
            name: calibration_scores(
                held,
                out["coords"],
                sd,
                calibration.mixture,
                seed=held.seed,
                anisotropy=calibration.anisotropy,
            ),
            f"{name}_gaussian": calibration_scores(held, out["coords"], sd, seed=held.seed),
        }
    scores = {
        name: score(held, out["coords"]),
        f"{name}_direct": score(held, out["direct"]),
        f"{name}_map": score(held, pred_maps=out["map"]),
    }
    return scores, info


def kriging_posterior_scores(held) -> dict:
    """Calibration scores of the exact Gaussian posterior (ordinary kriging over all visible loci,
    variogram fitted to the visible spots only)."""
    from pointae.baselines import fit_chain_variogram
    from pointae.impute.kriging import gaussian_posterior
    from pointae.impute.uncertainty import calibration_scores

    k_mean, k_sd = gaussian_posterior(held.coords, fit_chain_variogram(held.coords))
    return calibration_scores(held, k_mean, k_sd, seed=held.seed)


def baseline_scores(
    held, knn_pool: Traces | None = None, knn_k: int = 20, place_baselines: bool = True
) -> dict:
    """The baselines' scores on a :class:`~pointae.impute.protocol.HeldOut` (see :func:`score_methods`)."""
    pool = held.coords if knn_pool is None else knn_pool.coords
    med = fill_maps(held.coords, population_median_map(pool))
    knn = knn_maps(held.coords, pool, k=knn_k, exclude_self=knn_pool is None)
    med_xyz = place_loci(held.coords, med) if place_baselines else None
    knn_xyz = place_loci(held.coords, knn) if place_baselines else None
    return {
        "linear": score(held, interpolate_missing(held.coords)),
        "local_fit": score(held, smooth_missing(held.coords)),
        "kriging": score(held, krige_missing(held.coords)),
        "population_median": score(held, med_xyz, pred_maps=med),
        "knn": score(held, knn_xyz, pred_maps=knn),
    }


BASELINES = ("linear", "local_fit", "kriging", "knn", "population_median")


def model_labels(loaded: list[LoadedImputer]) -> list[str]:
    """Names of the compared models: ``pointae`` for one model; else ``shipped`` for the default
    model and the run directory's name for the others (made unique)."""
    if len(loaded) == 1:
        return ["pointae"]
    labels: list[str] = []
    for lo in loaded:
        base = "shipped" if lo.path == "default" else (Path(lo.path).name or "model")
        base = base.replace(" ", "_")
        name, i = base, 2
        while name in labels or name in BASELINES or name == "kriging_posterior":
            name, i = f"{base}_{i}", i + 1
        labels.append(name)
    return labels


def evaluate_imputation(
    traces: Traces,
    model=None,
    hide: float = 0.1,
    seed: int = 0,
    mode: str = "random",
    max_missing: float | str = 0.1,
    runs: int = 1,
    knn_k: int = 20,
    knn_pool: Traces | None = None,
    n_boot: int = 1000,
    exclude_training: bool = True,
    place_baselines: bool = True,
    calibrate: bool = True,
    self_calibrate: bool = False,
) -> dict:
    """The held-out masking protocol: model(s) vs linear interpolation, population median map and kNN.

    Parameters
    ----------
    traces
        Data to evaluate on (traces with more than ``max_missing`` missing loci are skipped).
    model
        Imputer (path, :class:`LoadedImputer`, ``None`` = shipped default; an inpainting run of
        ``pointae train`` is accepted, :func:`imputer_from_run`), or a list of them: every model
        is then scored on the same masking draw of the same traces (those no model was trained
        on), beside the same baselines, under the names of :func:`model_labels`.
    hide, seed, mode, max_missing
        Protocol parameters (:func:`pointae.impute.protocol.make_held_out`); seeds
        ``seed .. seed + runs - 1`` are run. ``mode="detection"`` hides loci by the file's per-locus
        detection rates estimated on the traces that are not scored (the model's training traces
        when it has any in ``traces``, else all of them); ``max_missing="auto"`` is the per-file
        eligibility rule :func:`pointae.impute.protocol.auto_max_missing` (the threshold used and
        the number of eligible traces are in ``"protocol"``).
    knn_k, knn_pool
        kNN neighbours and the pool they come from (default: the evaluated traces themselves,
        with their hidden loci hidden, excluding each trace from its own neighbours).
    n_boot
        Bootstrap resamples of traces for the confidence intervals.
    exclude_training
        Skip traces whose content matches a model's training traces (fingerprints).
    place_baselines
        Also place the map baselines' loci in 3D (stress to their predicted distances) to report
        their position error.
    calibrate
        Also score the calibration of the predictive distribution (``pointae_sd``) next to the
        exact Gaussian kriging posterior (``runs[i]["_info"]["calibration"]``, averaged in
        ``"calibration"``); uses the model's stored calibration.
    self_calibrate
        Rescale that calibration per seed on the evaluated traces' *visible* spots
        (:func:`pointae.impute.uncertainty.self_calibrate`; the scored loci are already hidden,
        so they are never used); the factor is in ``runs[i]["_info"]["self_calibration_<model>"]``.

    Returns
    -------
    dict
        ``{"protocol": ..., "runs": [per-seed {method: summary + CI}], "mean": {method: ...},
        "calibration": ...}``; distance metrics in the data's unit; ``protocol["models"]`` maps
        each model name to where it was loaded from.
    """
    models = list(model) if isinstance(model, (list, tuple)) else [model]
    if not models:
        models = [None]
    loaded = [load_imputer(m) for m in models]
    labels = model_labels(loaded)
    coords = traces.coords
    subset = np.ones(len(traces), bool)
    seen = set().union(*(lo.train_fingerprints for lo in loaded))
    if exclude_training and seen:
        fp = np.array(trace_fingerprints(coords))
        subset = ~np.isin(fp, list(seen))
        if not subset.any():
            which = "this model" if len(loaded) == 1 else "these models"
            raise PointaeError(f"every trace was used to train {which}; evaluate on other traces")
    scale = _scale(traces)
    cals = []
    for lo in loaded:
        cal = model_calibration(lo) if calibrate else None
        if (
            calibrate and cal is None and (~subset).any()
        ):  # fit on the models' own traces, never the scored ones
            cal = _calibrate_on(lo.model, coords[~subset], scale)
        cals.append(cal)
    per_run = []
    for r in range(max(1, int(runs))):
        held = make_held_out(coords, hide, seed=seed + r, mode=mode, max_missing=max_missing, subset=subset)
        try:
            scores: dict = {}
            info: dict = {}
            calib: dict = {}
            for lo, label, cal in zip(loaded, labels, cals):
                if self_calibrate and cal is not None:  # on the visible spots: never the scored ones
                    cal = _self_calibrate(cal, lo.model, held.coords, scale)
                    info[f"self_calibration_{label}"] = cal.info["self_calibration"]
                s_m, i_m = model_scores(held, lo, scale, cal, label)
                scores.update(s_m)
                calib.update(i_m.pop("calibration", {}))
                info.update(i_m)
            if calib:
                calib["kriging_posterior"] = kriging_posterior_scores(held)
                info["calibration"] = calib
            scores.update(baseline_scores(held, knn_pool, knn_k, place_baselines))
        except UndefinedPredictionError:
            src = traces.attrs.get("source", "the traces")
            n_ok = int(eligible(traces.mask, held.max_missing).sum())
            raise PointaeError(
                f"{src}: {n_ok} usable trace(s) (at most {held.max_missing:.0%} loci missing) are too "
                "few: the population baselines predict each hidden locus pair from the other traces, "
                "and no other trace observes some of them; use a file with more traces or raise "
                "--max-missing"
            ) from None
        ci = bootstrap(scores, reference="linear", n_boot=n_boot, seed=seed + r)
        res = {k: {**s.summary(), **ci[k]} for k, s in scores.items()}
        res["_info"] = {"seed": seed + r, "n_traces": len(held), "n_hidden": int(held.hidden.sum()), **info}
        per_run.append(res)
    methods = [k for k in per_run[0] if not k.startswith("_")]
    mean = {
        m: {
            k: float(np.mean([r[m][k] for r in per_run]))
            for k in ("mae", "rel_mae", "pearson", "pos_err", "ratio")
        }
        for m in methods
    }
    calib = None
    if "calibration" in per_run[0]["_info"]:
        calib = {
            m: {
                k: (
                    float(np.mean([r["_info"]["calibration"][m][k] for r in per_run]))
                    if k != "reliability"
                    else {
                        key: np.mean([r["_info"]["calibration"][m][k][key] for r in per_run], 0).tolist()
                        for key in ("levels", "position", "distance")
                    }
                )
                for k in per_run[0]["_info"]["calibration"][m]
            }
            for m in per_run[0]["_info"]["calibration"]
        }
    return {
        "calibration": calib,
        "protocol": {
            "hide": hide,
            "mode": mode,
            "max_missing": held.max_missing,
            "max_missing_rule": "auto (pointae.impute.protocol.auto_max_missing)"
            if isinstance(max_missing, str)
            else "given",
            "n_candidates": held.n_candidates,
            "n_eligible": len(held),
            "detection_rates": None
            if held.detection is None
            else [round(float(v), 4) for v in held.detection],
            "seeds": [seed + r for r in range(max(1, int(runs)))],
            "scale": scale,
            "unit": traces.unit,
            "excluded_training_traces": int((~subset).sum()),
            "knn_k": knn_k,
            "model": loaded[0].path if len(loaded) == 1 else [lo.path for lo in loaded],
            "models": {label: lo.path for label, lo in zip(labels, loaded)},
        },
        "runs": per_run,
        "mean": mean,
    }


def evaluate_denoising(
    traces: Traces,
    model=None,
    fraction: float = 0.05,
    seed: int = 0,
    max_missing: float = 0.1,
    threshold: float = DENOISE_THRESHOLD,
    exclude_training: bool = True,
) -> dict:
    """Planted-outlier protocol: model-based cleaning vs neighbour rule + interpolation.

    Outliers (:func:`pointae.data.corrupt.add_outliers`, 2-5 median neighbour distances) are
    planted in ``fraction`` of the observed loci of the eligible traces. Scored: detection
    precision / recall / F1, and the position error of the planted spots after correction (the
    uncorrected error for spots a method misses), next to doing nothing.
    """
    loaded = load_imputer(model)
    coords = traces.coords
    subset = np.ones(len(traces), bool)
    if exclude_training and loaded.train_fingerprints:
        subset = ~np.isin(np.array(trace_fingerprints(coords)), list(loaded.train_fingerprints))
    held = make_held_out(coords, 0.0, seed=seed, max_missing=max_missing, subset=subset)
    truth = held.truth
    scale = _scale(traces)
    cal = model_calibration(loaded)
    prob_info = None
    corr = add_outliers(truth, fraction, np.random.default_rng(seed), scale=scale)
    out = {}
    flagged_nb = None
    for name in ("pointae", "neighbour_rule", "none"):
        if name == "pointae":
            flagged, det = detect_outliers_model(
                loaded.model, corr.coords, scale, threshold=threshold, calibration=cal, details=True
            )
            if cal is not None:
                from pointae.impute.uncertainty import outlier_probability, probability_calibration

                prob, fitted = outlier_probability(det["resid"], det["sd"], held.observed, cal.mixture)
                prob_info = {
                    **probability_calibration(prob[held.observed], corr.changed[held.observed]),
                    **fitted,
                }
            work = corr.coords.copy()
            work[flagged] = np.nan
            fixed = impute_coords(loaded.model, work, scale)["coords"]
            cleaned = np.where(flagged[..., None], fixed, corr.coords)
        elif name == "neighbour_rule":
            cleaned, flagged_nb = clean_neighbour_rule(corr.coords, scale=scale)
            flagged = flagged_nb
        else:
            cleaned, flagged = corr.coords, np.zeros_like(corr.changed)
        tp = int((flagged & corr.changed).sum())
        fp = int((flagged & ~corr.changed).sum())
        fn = int((~flagged & corr.changed).sum())
        prec = tp / max(tp + fp, 1)
        rec = tp / max(tp + fn, 1)
        err_out = np.linalg.norm(cleaned - truth, axis=-1)
        out[name] = {
            "precision": prec,
            "recall": rec,
            "f1": 2 * prec * rec / max(prec + rec, 1e-12),
            "outlier_pos_err": float(np.nanmean(err_out[corr.changed])),
            "clean_spots_changed": int((flagged & ~corr.changed).sum()),
            "mean_pos_err_all": float(np.nanmean(err_out[held.observed])),
        }
    if prob_info is not None:
        out["pointae"]["outlier_probability"] = prob_info
    out["_info"] = {
        "fraction": fraction,
        "seed": seed,
        "n_traces": len(held),
        "n_outliers": int(corr.changed.sum()),
        "threshold": threshold,
        "scale": scale,
    }
    return out
