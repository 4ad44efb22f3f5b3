"""Registries of encoders and decoders: adding one is one file plus one decorator line.

An encoder is an ``nn.Module`` with a class attribute ``repr`` (``"map"``, ``"graph"`` or
``"voxel"``: the representation it reads), ``__init__(self, n_loci, latent_dim, **hparams)``
and ``forward(x) -> (B, latent_dim)``. A decoder has ``__init__(self, n_loci, latent_dim,
**hparams)`` and ``forward(z: (B, latent_dim)) -> (B, L, L)`` (a valid distance map).

Examples
--------
>>> from pointae.models import build_encoder
>>> enc = build_encoder("map", n_loci=16, latent_dim=4, widths=(4, 4, 4, 4))
>>> enc.repr
'map'
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable

from torch import nn

from pointae.errors import PointaeError

ENCODERS: dict[str, type[nn.Module]] = {}
DECODERS: dict[str, type[nn.Module]] = {}
_BUILTINS = ("pointae.models.encoders", "pointae.models.decoder")
# Whole models with their own configuration and training (not an encoder + decoder pair), by
# import path ("module:attribute"), so listing them imports nothing: name -> tasks it serves,
# config dataclass, ``fit(cfg, traces=None, log=print) -> run dir`` and ``load(run)``.
MODELS: dict[str, dict] = {}


def register_model(name: str, *, tasks: tuple[str, ...], config: str, fit: str, load: str) -> None:
    """Register a whole model (e.g. the imputer) under ``name`` for ``pointae train --model NAME``."""
    spec = {"tasks": tuple(tasks), "config": config, "fit": fit, "load": load}
    if name in MODELS and MODELS[name] != spec:
        raise PointaeError(f"model name {name!r} already registered")
    MODELS[name] = spec


def model_part(name: str, part: str):
    """The ``config``, ``fit`` or ``load`` of the registered model ``name`` (imported on demand)."""
    if name not in MODELS:
        raise PointaeError(f"unknown model {name!r}; registered: {', '.join(sorted(MODELS))}")
    module, _, attr = MODELS[name][part].partition(":")
    return getattr(importlib.import_module(module), attr)


register_model(
    "imputer",
    tasks=("inpaint",),
    config="pointae.impute.fit:ImputerRunConfig",
    fit="pointae.impute.api:fit_imputer_run",
    load="pointae.impute.api:load_imputer",
)


def _load_builtins() -> None:
    for mod in _BUILTINS:
        importlib.import_module(mod)


def register_encoder(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: register an encoder under ``name`` (the name used in configs/CLI)."""

    def deco(cls: type[nn.Module]) -> type[nn.Module]:
        if getattr(cls, "repr", None) not in ("map", "graph", "voxel"):
            raise PointaeError(f"encoder {cls.__name__} needs a class attribute repr = 'map'|'graph'|'voxel'")
        if name in ENCODERS and ENCODERS[name] is not cls:
            raise PointaeError(f"encoder name {name!r} already registered by {ENCODERS[name].__name__}")
        ENCODERS[name] = cls
        cls.registry_name = name
        return cls

    return deco


def register_decoder(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: register a decoder under ``name``."""

    def deco(cls: type[nn.Module]) -> type[nn.Module]:
        if name in DECODERS and DECODERS[name] is not cls:
            raise PointaeError(f"decoder name {name!r} already registered by {DECODERS[name].__name__}")
        DECODERS[name] = cls
        cls.registry_name = name
        return cls

    return deco


def _build(kind: str, table: dict, name: str, n_loci: int, latent_dim: int, hp: dict) -> nn.Module:
    _load_builtins()
    if name not in table:
        raise PointaeError(f"unknown {kind} {name!r}; registered: {', '.join(sorted(table))}")
    return _construct(f"{kind} {name!r}", table[name], n_loci, latent_dim, hp)


def _construct(what: str, cls: type, n_loci: int, latent_dim: int, hp: dict) -> nn.Module:
    """``cls(n_loci, latent_dim, **hp)``, with unknown hyperparameters as a one-line PointaeError."""
    accepted = inspect.signature(cls.__init__).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        unknown = sorted(set(hp) - set(accepted))
        if unknown:
            ok = [p for p in accepted if p not in ("self", "n_loci", "latent_dim")]
            raise PointaeError(
                f"{what} got unknown hyperparameter(s) {', '.join(unknown)}; accepted: {', '.join(ok)}"
            )
    if n_loci < 2 or latent_dim < 1:
        raise PointaeError(f"need n_loci >= 2 and latent_dim >= 1, got {n_loci} and {latent_dim}")
    return cls(n_loci, latent_dim, **hp)


def build_encoder(name: str, n_loci: int, latent_dim: int, **hp) -> nn.Module:
    """Instantiate the registered encoder ``name``; unknown hyperparameters are a PointaeError."""
    return _build("encoder", ENCODERS, name, n_loci, latent_dim, hp)


def build_decoder(name: str, n_loci: int, latent_dim: int, **hp) -> nn.Module:
    """Instantiate the registered decoder ``name``; unknown hyperparameters are a PointaeError."""
    return _build("decoder", DECODERS, name, n_loci, latent_dim, hp)
