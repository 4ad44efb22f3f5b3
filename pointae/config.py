"""Run configuration: nested dataclasses with defaults, YAML files and dotted overrides.

The dataclasses are the single source of truth for every option and its default; YAML files in
``configs/`` only override them, and ``--set section.key=value`` overrides those. Unknown keys are
errors, never silently ignored.

Examples
--------
>>> cfg = load_config(overrides=["train.max_epochs=5", "model.repr=graph"])
>>> cfg.train.max_epochs, cfg.model.repr
(5, 'graph')
"""

from __future__ import annotations

import copy
import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from pointae import registry
from pointae.errors import PointaeError

#: the names accepted for ``model.repr``, ``task.name``, ``task.loss``: live views of
#: :mod:`pointae.registry` (a name registered later is accepted too)
REPR_NAMES = registry.representations.where()
TASK_NAMES = registry.tasks.where()
TASK_LOSSES = registry.losses.where()
ENCODER_NAMES = registry.encoders.where()


@dataclass
class DataConfig:
    """Where the traces come from and how they are split.

    ``path`` is a traces file (any format :func:`pointae.read_traces` knows); when it is ``None``
    the default dataset is simulated with :func:`pointae.sim.simulate_mixture` (``mixture``,
    ``n_traces``, ``n_loci``, ``sim_seed``). The split is by trace, seeded by ``split_seed``.
    """

    path: str | None = None
    n_traces: int = 2000
    n_loci: int = 64
    mixture: dict[str, float] = field(default_factory=lambda: {"wt": 0.5, "no-cohesin": 0.5})
    sim_seed: int = 0
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    split_seed: int = 0


@dataclass
class ModelConfig:
    """Which representation, encoder and decoder, and their size.

    ``repr`` is the representation the traces are turned into
    (:data:`pointae.registry.representations`); ``encoder`` the network that reads it
    (:data:`pointae.registry.encoders`; ``None``: the representation's default encoder, which has
    the same name for the built-ins). An encoder reads one representation: naming an encoder of
    another one is a config error. ``decoder`` ``None`` is the encoder's default decoder.
    ``width`` (when set) and ``hparams`` are passed to :func:`pointae.models.build_model`;
    ``repr_options`` to :func:`pointae.data.reprs.build_repr`.
    """

    repr: str = "map"
    encoder: str | None = None
    latent_dim: int = 16
    decoder: str | None = "map"
    width: int | None = None
    hparams: dict[str, Any] = field(default_factory=dict)
    repr_options: dict[str, Any] = field(default_factory=dict)

    @property
    def encoder_name(self) -> str:
        """The encoder used: ``encoder``, or the representation's default encoder."""
        if self.encoder is not None:
            return self.encoder
        return registry.representations.meta(self.repr).get("encoder", self.repr)


@dataclass
class TaskConfig:
    """The task and its corruption (applied to coordinates before the representation).

    ``outlier_fraction``/``outlier_magnitude`` (in median-bond units) drive ``denoise``;
    ``hide_fraction``/``run_fraction``/``max_run`` drive ``inpaint``. The loss is ``loss``
    (``mse`` or ``l1``) on all observed pairs plus ``focus_weight`` times the same loss on the
    pairs the task scores (touching corrupted/hidden loci), plus ``euclid_weight`` times the
    Euclidean-consistency penalty. ``log_mse``/``log_l1`` score ``log(d + log_eps)`` instead of
    ``d`` (contact-sensitive: relative rather than absolute errors); training maps are in units of
    the dataset's median neighbour distance, so ``log_eps`` is a fraction of a typical bond.
    ``contrast`` (an objective for embeddings) corrupts each trace twice with the inpaint and
    denoise corruptions and adds ``contrast_weight`` x NT-Xent of the two views' latents at
    ``temperature`` to the reconstruction loss of the first view (:mod:`pointae.tasks.contrast`).
    """

    name: str = "autoencode"
    outlier_fraction: float = 0.1
    outlier_magnitude: list[float] = field(default_factory=lambda: [2.0, 5.0])
    hide_fraction: float = 0.25
    run_fraction: float = 0.5
    max_run: int = 4
    loss: str = "mse"
    log_eps: float = 0.1
    focus_weight: float = 1.0
    euclid_weight: float = 0.0
    contrast_weight: float = 1.0
    temperature: float = 0.2
    seed: int = 0


@dataclass
class TrainConfig:
    """Optimisation and hardware.

    ``threads`` 0 means all CPU cores; ``precision`` ``"auto"`` means bf16/fp16 mixed precision
    on CUDA and fp32 on CPU; ``strategy`` is any Lightning strategy name (``"ddp"`` uses gloo on
    CPU and nccl on GPU); ``checkpoint_every_n_steps`` 0 saves ``last.ckpt`` once per epoch.
    """

    max_epochs: int = 30
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    scheduler: str = "cosine"
    warmup_steps: int = 50
    patience: int = 6
    min_delta: float = 0.0
    grad_clip: float = 1.0
    seed: int = 0
    accelerator: str = "auto"
    devices: Union[int, str] = "auto"
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "auto"
    num_workers: int = 0
    threads: int = 0
    checkpoint_every_n_steps: int = 0
    progress: bool = True
    eval_batch_size: int = 256


@dataclass
class RunConfig:
    """A complete run: output directory plus the four sections."""

    out: str | None = None
    overwrite: bool = False
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML/JSON-able)."""
        return dataclasses.asdict(self)

    def validate(self) -> RunConfig:
        """Check values that have a fixed set of choices or ranges; raise :class:`PointaeError`."""
        _one_of("model.repr", self.model.repr, registry.representations)
        enc = self.model.encoder_name
        _one_of("model.encoder", enc, registry.encoders)
        reads = registry.encoders.meta(enc).get("repr")
        if reads != self.model.repr:
            raise PointaeError(
                f"model.encoder {enc!r} reads the {reads!r} representation, "
                f"not model.repr={self.model.repr!r} (set model.repr={reads})"
            )
        if self.model.decoder is not None:
            _one_of("model.decoder", self.model.decoder, registry.decoders)
        _one_of("task.name", self.task.name, registry.tasks)
        _one_of("task.loss", self.task.loss, registry.losses)
        if not (math.isfinite(self.task.temperature) and self.task.temperature > 0):
            raise PointaeError(f"task.temperature must be a finite number > 0, got {self.task.temperature!r}")
        if not (math.isfinite(self.task.contrast_weight) and self.task.contrast_weight >= 0):
            raise PointaeError(
                f"task.contrast_weight must be a finite number >= 0, got {self.task.contrast_weight!r}"
            )
        if not (math.isfinite(self.task.log_eps) and self.task.log_eps > 0):
            raise PointaeError(f"task.log_eps must be a finite number > 0, got {self.task.log_eps!r}")
        if self.train.scheduler not in registry.schedulers:
            names = "|".join(registry.schedulers.names())
            raise PointaeError(f"train.scheduler must be {names}, got {self.train.scheduler!r}")
        for key in ("max_epochs", "batch_size", "latent_dim"):
            sec = self.model if key == "latent_dim" else self.train
            if getattr(sec, key) < 1:
                raise PointaeError(f"{key} must be >= 1, got {getattr(sec, key)}")
        if len(self.task.outlier_magnitude) != 2:
            raise PointaeError("task.outlier_magnitude must be two numbers [low, high]")
        f = self.data
        if not (0 <= f.val_fraction < 1 and 0 < f.test_fraction < 1 and f.val_fraction + f.test_fraction < 1):
            raise PointaeError("data.val_fraction and data.test_fraction must be in [0, 1) and sum below 1")
        return self


def _one_of(key: str, value: Any, reg: registry.Registry) -> None:
    if value not in reg:
        raise PointaeError(f"{key} must be one of {', '.join(reg.names())}, got {value!r}")


def encoder_overrides(name: str) -> list[str]:
    """``section.key=value`` overrides that select the encoder or representation ``name``.

    A representation selects itself with its default encoder (``map`` -> ``model.repr=map``:
    the built-in encoders are named after their representation); another registered encoder
    selects itself and the representation it reads (``egnn`` -> ``model.repr=graph``,
    ``model.encoder=egnn``). Unknown names raise :class:`PointaeError`.
    """
    if name in registry.representations and registry.representations.meta(name).get("encoder", name) == name:
        return [f"model.repr={name}"]
    if name in registry.encoders:
        return [f"model.repr={registry.encoders.meta(name)['repr']}", f"model.encoder={name}"]
    if name in registry.representations:
        return [f"model.repr={name}"]
    raise PointaeError(f"unknown representation or encoder {name!r}; known: {', '.join(model_names())}")


def model_names() -> tuple[str, ...]:
    """Every name :func:`encoder_overrides` accepts: representations, then other encoders."""
    return tuple(dict.fromkeys([*registry.representations.names(), *registry.encoders.names()]))


# ---------------------------------------------------------------------------------------- merging
def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_dataclass_type(tp) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp`` (ints are accepted for floats)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        errors = []
        for arg in typing.get_args(tp):
            if arg is type(None):
                if value is None:
                    return None
                continue
            try:
                return _coerce(value, arg, key)
            except PointaeError as e:
                errors.append(str(e))
        raise PointaeError(f"config key {key!r}: {value!r} has the wrong type (expected {_tname(tp)})")
    if origin is dict:
        if not isinstance(value, dict):
            raise PointaeError(f"config key {key!r}: expected a mapping, got {value!r}")
        return dict(value)
    if origin is tuple:  # homogeneous tuples, e.g. tuple[int, ...] (given as a YAML list)
        if not isinstance(value, (list, tuple)):
            raise PointaeError(f"config key {key!r}: expected a list, got {value!r}")
        arg = next((a for a in typing.get_args(tp) if a is not Ellipsis), Any)
        return tuple(_coerce(v, arg, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise PointaeError(f"config key {key!r}: expected a list, got {value!r}")
        (arg,) = typing.get_args(tp) or (Any,)
        return [_coerce(v, arg, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    raise PointaeError(f"config key {key!r}: {value!r} has the wrong type (expected {_tname(tp)})")


def _tname(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _merge(obj, updates: dict, prefix: str = "") -> None:
    """Apply a nested dict of updates onto dataclass ``obj`` in place; unknown keys raise."""
    if not isinstance(updates, dict):
        raise PointaeError(f"config section {prefix.rstrip('.') or '<root>'!r} must be a mapping")
    hints = _hints(type(obj))
    for k, v in updates.items():
        key = f"{prefix}{k}"
        if k not in hints:
            known = ", ".join(f"{prefix}{n}" for n in hints)
            raise PointaeError(f"unknown config key {key!r} (known: {known})")
        tp = hints[k]
        if _is_dataclass_type(tp):
            _merge(getattr(obj, k), v, prefix=f"{key}.")
        elif typing.get_origin(tp) is dict and isinstance(v, dict):
            setattr(obj, k, _deep_update(dict(getattr(obj, k) or {}), _coerce(v, tp, key)))
        else:
            setattr(obj, k, _coerce(v, tp, key))


def config_from_dict(d: dict | None) -> RunConfig:
    """Defaults updated by the nested dict ``d`` (unknown keys raise :class:`PointaeError`)."""
    cfg = RunConfig()
    if d:
        _merge(cfg, copy.deepcopy(d))
    return cfg


def parse_override(text: str) -> dict:
    """``"train.max_epochs=5"`` -> ``{"train": {"max_epochs": 5}}`` (value parsed as YAML)."""
    if "=" not in text:
        raise PointaeError(f"override {text!r} must look like section.key=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not p for p in key.split(".")):
        raise PointaeError(f"override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise PointaeError(f"override {text!r}: value is not valid YAML ({e.__class__.__name__})") from None
    out: dict = {}
    node = out
    parts = key.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    return out


def _deep_update(base: dict, upd: dict) -> dict:
    for k, v in upd.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _deep_update(base[k], v)
        else:
            base[k] = v
    return base


def read_yaml(path: str | Path) -> dict:
    """Read a YAML config file into a dict (empty file -> ``{}``)."""
    path = Path(path)
    if not path.is_file():
        raise PointaeError(f"{path}: no such config file")
    try:
        d = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise PointaeError(f"{path}: not a UTF-8 text file (byte {e.start}); a config must be YAML") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise PointaeError(f"{path}{line}: invalid YAML") from None
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise PointaeError(f"{path}: a config file must be a mapping of sections")
    return d


def load_config(
    paths: str | Path | list[str | Path] | None = None,
    overrides: list[str] | None = None,
    base: RunConfig | dict | None = None,
) -> RunConfig:
    """Build a :class:`RunConfig`: ``base`` (defaults), then each YAML file, then overrides.

    Parameters
    ----------
    paths
        Zero or more YAML files, applied in order.
    overrides
        Dotted ``section.key=value`` strings (values parsed as YAML).
    base
        Starting point (a config or a nested dict); the dataclass defaults when ``None``.

    Raises
    ------
    PointaeError
        Unknown key (naming the file), wrong type, or invalid value.
    """
    cfg = copy.deepcopy(base) if isinstance(base, RunConfig) else config_from_dict(base)
    return apply_layers(cfg, paths, overrides).validate()


def apply_layers(cfg, paths: str | Path | list[str | Path] | None = None, overrides: list[str] | None = None):
    """Merge YAML files (in order), then dotted ``section.key=value`` overrides, into the config
    dataclass ``cfg`` (in place; any config dataclass: a :class:`RunConfig`, the imputer's run
    config). Unknown keys and wrong types are one-line errors naming the file or ``--set``."""
    if paths is None:
        paths = []
    elif isinstance(paths, (str, Path)):
        paths = [paths]
    for p in paths:
        try:
            _merge(cfg, read_yaml(p))
        except PointaeError as e:
            msg = str(e)
            raise PointaeError(msg if msg.startswith(str(p)) else f"{p}: {msg}") from None
    upd: dict = {}
    for o in overrides or []:
        _deep_update(upd, parse_override(o))
    if upd:
        try:
            _merge(cfg, upd)
        except PointaeError as e:
            raise PointaeError(f"--set: {e}") from None
    return cfg


def save_config(cfg: RunConfig, path: str | Path) -> None:
    """Write the resolved config as YAML, atomically."""
    from pointae.errors import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))


__all__ = [
    "DataConfig",
    "ModelConfig",
    "TaskConfig",
    "TrainConfig",
    "RunConfig",
    "apply_layers",
    "load_config",
    "config_from_dict",
    "parse_override",
    "save_config",
    "read_yaml",
    "REPR_NAMES",
    "TASK_NAMES",
    "TASK_LOSSES",
    "ENCODER_NAMES",
    "encoder_overrides",
]
