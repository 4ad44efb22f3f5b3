"""Registries of encoders and decoders: adding one is one file plus one decorator line.

The names live in :data:`pointae.registry.encoders` and :data:`pointae.registry.decoders`
(the built-ins are declared there by import path, so listing them needs no torch).

An encoder is an ``nn.Module`` with a class attribute ``repr`` (a name of
:data:`pointae.registry.representations`: the representation it reads),
``__init__(self, n_loci, latent_dim, **hparams)`` and ``forward(x) -> (B, latent_dim)``.
A decoder has ``__init__(self, n_loci, latent_dim, **hparams)`` and
``forward(z: (B, latent_dim)) -> (B, L, L)`` (a valid distance map).

Examples
--------
>>> from pointae.models import build_encoder
>>> enc = build_encoder("map", n_loci=16, latent_dim=4, widths=(4, 4, 4, 4))
>>> enc.repr
'map'
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from torch import nn

from pointae import registry
from pointae.errors import PointaeError

#: encoder name -> class, a live view of :data:`pointae.registry.encoders`
ENCODERS = registry.encoders
#: decoder name -> class, a live view of :data:`pointae.registry.decoders`
DECODERS = registry.decoders
#: whole models with their own configuration and training (not an encoder + decoder pair), e.g.
#: the imputer: a live view of :data:`pointae.registry.models` (name -> its ``load`` function;
#: ``meta(name)`` holds ``tasks``, ``config`` and ``fit`` import paths)
MODELS = registry.models


def register_model(name: str, *, tasks: tuple[str, ...], config: str, fit: str, load: str) -> None:
    """Register a whole model (e.g. the imputer) under ``name`` for ``pointae train --model NAME``.

    ``config`` (a dataclass), ``fit`` (``fit(cfg, traces=None, log=print) -> run dir``) and ``load``
    (``load(run)``) are import paths ``"module:attr"``, so listing models imports nothing.
    """
    registry.models.add(name, path=load, tasks=tuple(tasks), config=config, fit=fit)


def model_part(name: str, part: str):
    """The ``config``, ``fit`` or ``load`` of the registered model ``name`` (imported on demand)."""
    name = registry.models.check(name)
    if part == "load":
        return registry.models.get(name)
    return registry.resolve(registry.models.meta(name)[part])


def _load_builtins() -> None:
    """Kept for callers of the old API: the registries import built-ins on first use."""


def register_encoder(name: str, decoder: str = "map") -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: register an encoder under ``name`` (the name used in configs/CLI).

    The class declares the representation it reads as a class attribute ``repr`` (any name of
    :data:`pointae.registry.representations`); ``decoder`` is its default decoder.
    """

    def deco(cls: type[nn.Module]) -> type[nn.Module]:
        registry.encoders.add(name, cls, decoder=getattr(cls, "default_decoder", decoder))
        cls.registry_name = name
        return cls

    return deco


def register_decoder(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: register a decoder under ``name``."""

    def deco(cls: type[nn.Module]) -> type[nn.Module]:
        registry.decoders.add(name, cls)
        cls.registry_name = name
        return cls

    return deco


def _build(
    kind: str, table: registry.Registry, name: str, n_loci: int, latent_dim: int, hp: dict
) -> nn.Module:
    return _construct(f"{kind} {name!r}", table.get(table.check(name)), n_loci, latent_dim, hp)


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
    return _build("encoder", registry.encoders, name, n_loci, latent_dim, hp)


def build_decoder(name: str, n_loci: int, latent_dim: int, **hp) -> nn.Module:
    """Instantiate the registered decoder ``name``; unknown hyperparameters are a PointaeError."""
    return _build("decoder", registry.decoders, name, n_loci, latent_dim, hp)
