"""The run directory: what :func:`pointae.train.fit` writes and how a run is read back.

::

    runs/NAME/
      config.yaml        resolved RunConfig
      split.json         trace ids per split + seed
      model.safetensors  weights of the best (lowest val loss) epoch
      model.json         {"format": "pointae-model/2", "kind": "autoencoder" | "imputer", ...}:
                         everything needed to rebuild the model via the registry (no pickle)
      history.csv        one row per epoch: train/val losses, lr, samples/s
      metrics.json       test-split scores of the model and the baselines (pointae.train.evaluate)
      last.ckpt          Lightning resume checkpoint (loaded only with weights_only=True)
      best.ckpt          checkpoint of the best epoch
      logs/version_K/metrics.csv   raw Lightning CSV logs, one version per (re)start

Versions of ``model.json``: ``pointae-model/2`` (current) adds ``kind``; ``pointae-model/1`` (runs
written before the ``kind`` field) is converted in memory on load (the files are never rewritten);
anything else is refused with one line.
"""

from __future__ import annotations

import inspect
import json
import math
import pickle
from pathlib import Path

import numpy as np
import torch

from pointae.config import RunConfig, config_from_dict, load_config
from pointae.errors import PointaeError, atomic_path

MODEL_FORMAT = "pointae-model/2"
#: older ``model.json`` formats converted in memory by :func:`read_model_info`
LEGACY_MODEL_FORMATS = ("pointae-model/1",)
#: the kinds of model a run directory can hold
MODEL_KINDS = ("autoencoder", "imputer")
_WIDTH_KEYS = (
    "widths",
    "hidden",
    "channels",
    "hidden_dim",
    "hidden_channels",
    "base_channels",
    "pair_dim",
    "pair_hidden",
)
_BASE_WIDTH = 32


def _split_to_json(traces, split: dict[str, np.ndarray], seed: int) -> dict:
    ids = traces.trace_ids
    return {"seed": seed, "n_traces": len(traces), **{k: [str(x) for x in ids[v]] for k, v in split.items()}}


def _split_from_json(traces, d: dict, path: Path) -> dict[str, np.ndarray]:
    pos = {tid: i for i, tid in enumerate(traces.trace_ids)}
    out = {}
    for k in ("train", "val", "test"):
        missing = [t for t in d.get(k, []) if t not in pos]
        if missing:
            raise PointaeError(
                f"{path}: trace {missing[0]!r} of the {k} split is not in the data (different data?)"
            )
        out[k] = np.array(sorted(pos[t] for t in d[k]), dtype=np.int64)
    return out


def _model_classes(cfg: RunConfig, encoders: dict, decoders: dict, arch: str) -> list[tuple[type, str]]:
    """The classes :func:`build_model` will instantiate, with their hyperparameter prefix."""
    try:
        from pointae.models.task_models import TASK_MODELS
    except ImportError:  # pragma: no cover
        TASK_MODELS = {}
    m = cfg.model
    from pointae.models.builders import SKIP_TASKS

    enc = m.encoder_name
    if cfg.task.name in SKIP_TASKS and m.decoder == "map" and arch == "auto" and enc in TASK_MODELS:
        return [(TASK_MODELS[enc], "")]
    return [
        (c, p) for c, p in ((encoders.get(enc), ""), (decoders.get(m.decoder), "decoder_")) if c is not None
    ]


def resolve_hparams(cfg: RunConfig) -> dict:
    """Model hyperparameters for :func:`build_model`: ``model.hparams`` plus, when
    ``model.width`` is set, every width-like default of the encoder and decoder (``widths``,
    ``hidden``, ``channels``, ...) scaled by ``width / 32`` (an encoder parameter literally named
    ``width`` is set to ``model.width``). Explicit ``hparams`` win."""
    from pointae.models.registry import DECODERS, ENCODERS, _load_builtins

    _load_builtins()
    m = cfg.model
    hp = dict(m.hparams)
    if m.width is None:
        return hp
    if m.width < 1:
        raise PointaeError(f"model.width must be >= 1, got {m.width}")
    f = m.width / _BASE_WIDTH
    for cls, prefix in _model_classes(cfg, ENCODERS, DECODERS, hp.get("arch", "auto")):
        for pname, p in inspect.signature(cls.__init__).parameters.items():
            key = prefix + pname
            if key in hp:
                continue
            d = p.default
            if pname == "width":
                hp[key] = m.width
            elif pname in _WIDTH_KEYS and isinstance(d, int) and not isinstance(d, bool):
                hp[key] = max(1, round(d * f))
            elif pname in _WIDTH_KEYS and isinstance(d, (tuple, list)) and all(isinstance(v, int) for v in d):
                hp[key] = [max(1, round(v * f)) for v in d]
    return hp


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def write_json(obj, path: Path) -> None:
    """Atomic, strict JSON (NaN/inf written as null)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_jsonable(obj), indent=2, allow_nan=False) + "\n")


def build_from_info(info: dict) -> torch.nn.Module:
    """Rebuild an (untrained) model from a ``model.json`` dict via the registry."""
    from pointae.data.reprs import build_repr
    from pointae.models import build_model

    rep = build_repr(info["repr"], **info.get("repr_options", {}))
    return build_model(
        info.get("encoder", info["repr"]),
        info["task"],
        int(info["n_loci"]),
        int(info["latent_dim"]),
        info["decoder"],
        rep=rep,
        **info["hparams"],
    )


def save_model(model: torch.nn.Module, info: dict, run_dir: Path) -> None:
    """Write ``model.safetensors`` (weights) and ``model.json`` (how to rebuild it)."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    with atomic_path(run_dir / "model.safetensors") as tmp:
        save_file(state, str(tmp), metadata={"format": MODEL_FORMAT})
    write_json(info, run_dir / "model.json")


#: ``model.json`` keys an autoencoder run needs to be rebuilt
_AUTOENCODER_KEYS = ("repr", "task", "n_loci", "latent_dim", "decoder", "hparams", "scale")
#: the metadata file of imputer runs written before ``pointae-model/2`` (read by the imputer)
LEGACY_IMPUTER_FILE = "imputer.json"


def read_model_info(run_dir: str | Path) -> dict:
    """The ``model.json`` of a run as a ``pointae-model/2`` dict (``kind`` included).

    A ``pointae-model/1`` file (autoencoder runs written before ``kind`` existed) is converted in
    memory (``converted_from`` records it; the file is never rewritten). A folder with only a
    legacy ``imputer.json`` gives ``{"kind": "imputer", "format": None}`` (the imputer reads it).
    Anything else is refused with one line naming the file and the problem.
    """
    run_dir = Path(run_dir)
    jpath = run_dir / "model.json"
    if not jpath.is_file():
        if (run_dir / LEGACY_IMPUTER_FILE).is_file():
            return {"format": None, "kind": "imputer", "legacy_file": LEGACY_IMPUTER_FILE}
        if not run_dir.is_dir():
            raise PointaeError(
                f"{run_dir}: not a run directory (expected the output folder of 'pointae train')"
            )
        raise PointaeError(f"{jpath}: no such file (is {run_dir} a finished pointae run?)")
    try:
        info = json.loads(jpath.read_text())
    except json.JSONDecodeError as e:
        raise InputErrorLike(jpath, f"invalid JSON ({e.msg})", e.lineno) from None
    except (OSError, UnicodeDecodeError) as e:
        raise PointaeError(f"{jpath}: cannot read ({e.__class__.__name__})") from None
    if not isinstance(info, dict):
        raise PointaeError(f"{jpath}: not a pointae model file (a JSON object is expected)")
    fmt = info.get("format")
    if fmt in LEGACY_MODEL_FORMATS:
        info = {**info, "format": MODEL_FORMAT, "kind": "autoencoder", "converted_from": fmt}
    elif fmt != MODEL_FORMAT:
        raise PointaeError(
            f"{jpath}: not a pointae model file (format={fmt!r}; this version reads {MODEL_FORMAT} "
            f"and converts {', '.join(LEGACY_MODEL_FORMATS)})"
        )
    kind = info.get("kind")
    if kind not in MODEL_KINDS:
        raise PointaeError(f"{jpath}: unknown model kind {kind!r} (expected {' or '.join(MODEL_KINDS)})")
    if kind == "autoencoder":
        missing = [k for k in _AUTOENCODER_KEYS if k not in info]
        if missing:
            raise PointaeError(f"{jpath}: damaged model file: no {missing[0]!r} (retrain the run)")
    return info


def load_model(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict]:
    """Rebuild a trained autoencoder from a run directory: ``(model in eval mode, model.json dict)``.

    Only ``model.json`` and ``model.safetensors`` are read: no YAML, no pickle. Older formats are
    converted in memory (:func:`read_model_info`); imputer runs are refused here (load them with
    :meth:`pointae.PointAE.load`).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    run_dir = Path(run_dir)
    info = read_model_info(run_dir)
    if info["kind"] != "autoencoder":
        raise PointaeError(f"{run_dir}: holds an {info['kind']} run, not an autoencoder: use PointAE.load")
    wpath = run_dir / "model.safetensors"
    if not wpath.is_file():
        raise PointaeError(f"{wpath}: no such file (is {run_dir} a finished pointae run?)")
    try:
        model = build_from_info(info)
    except PointaeError as e:
        raise PointaeError(f"{run_dir / 'model.json'}: {e}") from None
    except (TypeError, ValueError, KeyError) as e:
        raise PointaeError(
            f"{run_dir / 'model.json'}: damaged model file ({e.__class__.__name__}: {e})"
        ) from None
    try:
        state = load_file(str(wpath), device=str(device))
    except (SafetensorError, OSError, ValueError) as e:
        raise PointaeError(f"{wpath}: cannot read safetensors weights ({e})") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise PointaeError(f"{wpath}: weights do not match model.json ({first})") from None
    return model.to(device).eval(), info


def InputErrorLike(path, problem, line):  # noqa: N802 - small helper keeping messages uniform
    from pointae.errors import InputError

    return InputError(path, problem, line=line)


def safe_load_checkpoint(path: str | Path) -> dict:
    """Load a Lightning checkpoint with ``torch.load(weights_only=True)``.

    Anything that is not plain tensors/containers (e.g. a pickle carrying code) is refused with a
    :class:`PointaeError`; no code from the file is ever executed.
    """
    path = Path(path)
    if not path.is_file():
        raise PointaeError(f"{path}: no such checkpoint")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise PointaeError(
            f"{path}: refusing to load checkpoint: not a plain-weights checkpoint ({first[:200]})"
        ) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise PointaeError(f"{path}: not a Lightning checkpoint (no state_dict)")
    return ckpt


def resume_config(run_dir: str | Path, paths=None, overrides: list[str] | None = None) -> RunConfig:
    """The saved ``config.yaml`` of ``run_dir``, updated by extra YAML files / overrides
    (e.g. ``train.max_epochs=50`` to train longer)."""
    from pointae.config import read_yaml

    p = Path(run_dir) / "config.yaml"
    if not p.is_file():
        raise PointaeError(f"{p}: no such file: nothing to resume in {run_dir}")
    try:
        base = config_from_dict(read_yaml(p))
    except PointaeError as e:
        raise PointaeError(f"{p}: {e}") from None
    cfg = load_config(paths, overrides, base=base)
    cfg.out = str(run_dir)
    return cfg


def write_history(run_dir: Path) -> Path:
    """Merge ``logs/version_*/metrics.csv`` into ``history.csv``: one row per epoch.

    After a resume, a later version's rows replace those of the same epochs.
    """
    import pandas as pd

    frames = []
    logs = sorted(
        (run_dir / "logs").glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[1])
    )
    for k, p in enumerate(logs):
        try:
            df = pd.read_csv(p)
        except (pd.errors.EmptyDataError, FileNotFoundError):
            continue
        if "epoch" not in df.columns:
            continue
        df["_version"] = k
        frames.append(df)
    cols = ["epoch", "step", "train_loss_epoch", "val_loss", "lr", "samples_per_s"]
    if not frames:
        hist = pd.DataFrame(columns=cols)
    else:
        df = pd.concat(frames, ignore_index=True)
        # a later version owns every epoch from its first logged epoch on
        first = df.groupby("_version")["epoch"].min()
        keep = np.ones(len(df), dtype=bool)
        for v, e0 in first.items():
            keep &= ~((df["_version"] < v) & (df["epoch"] >= e0)).to_numpy()
        df = df[keep]
        agg = {c: "last" for c in df.columns if c not in ("epoch", "_version")}
        if "samples_per_s" in df.columns:
            agg["samples_per_s"] = "mean"
        hist = df.groupby("epoch", as_index=False).agg(agg)
        hist = hist.drop(columns=[c for c in hist.columns if c.endswith("_step")])
        lead = [c for c in cols if c in hist.columns]
        hist = hist[lead + sorted(c for c in hist.columns if c not in lead)]
    out = run_dir / "history.csv"
    with atomic_path(out) as tmp:
        hist.to_csv(tmp, index=False)
    return out
