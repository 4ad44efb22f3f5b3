"""Simulation parameters: defaults and the named presets (experimental conditions).

Every key of :data:`DEFAULTS` can be overridden per call (``simulate(..., dt=0.1)``) or on the
command line (``--set dt=0.1``). Lengths are in monomer bond lengths ``b`` and energies in kT unless
the key says ``_bp`` (base pairs) or ``nm``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pointae import registry
from pointae.errors import PointaeError

#: Parameters shared by all presets (see docs/simulate.md for the meaning and effect of each).
DEFAULTS: dict[str, Any] = {
    # resolution / geometry
    "locus_bp": 30_000,  # locus size when no region is given (a region sets it to length / n_loci)
    "monomers_per_locus": 1,  # coarse default: 30 kb monomers for 30 kb loci (anchor work: 600 bp)
    "extension_loci": 8,  # simulated flanks on both sides, trimmed before output
    "nm_per_bead": 150.0,  # output scale: nm per monomer bond length b
    # force field
    "bond_k": 3.0,
    "angle_k": 0.0,
    "ev_strength": 3.0,
    "ev_radius": 1.05,
    "ev_potential": "quadratic",  # or "polychrom"
    "confine_density": 0.1,
    "confine_k": 1.0,
    "attract_strength": 0.0,
    "attract_radius": 1.6,
    # loop extrusion (Fudenberg et al. 2016 values expressed in bp, scaled to the monomer size)
    "lefs": True,
    "lef_separation_bp": 120_000,  # 200 monomers x 600 bp
    "lef_lifetime_bp": 180_000,  # lifetime 300 steps x 600 bp per step and leg
    "lef_k": 12.0,  # LEF leg-leg bond stiffness (rms 0.5 b)
    "steps_per_lef": 10,  # 3D steps per LEF step (each rebuilds the per-chain LEF operator)
    "barriers": True,
    "ctcf_mu": 3.0,  # occupancy = logistic((strength - mu) / divide)
    "ctcf_divide": 20.0,
    "synthetic_occupancy": 0.9,
    "release": 0.0,  # per-step release of a captured leg
    "blocks": False,  # block attraction on synthetic domains (tads preset)
    # integrator
    "dt": 0.15,
    "lambda_c": 0.05,  # mobility floor (coarse-mode acceleration); ideal and swollen use 0.02
    "integrator": "lm",  # Leimkuhler-Matthews (bias O(dt^2)); "euler": exponential Euler (O(dt))
    "metropolis": False,  # Metropolis-adjusted (MALA) proposals: exact at any dt, but see docs
    "chains": 128,  # chains integrated at once (memory vs burn-in amortisation)
    "burn_in": "auto",  # 3D steps, or "auto": burn_factor x measured decorrelation time
    "interval": "auto",  # 3D steps between saved frames of one chain, or "auto"
    "rotate": True,  # random rotation per saved frame (exact symmetry); tau from invariant series
    "burn_factor": 5.0,
    "interval_factor": 3.0,
    "pilot_steps": 100,  # initial window for measuring the decorrelation time (doubles, up to 32x)
    "max_states": 12,  # loop_state keeps the most frequent states, the rest become "other"
}

#: The built-in named conditions: overrides of :data:`DEFAULTS` (their names and one-line help are
#: declared in :data:`pointae.registry.presets`).
BUILTIN_PRESETS: dict[str, dict[str, Any]] = {
    "wt": {},
    "no-cohesin": {"lefs": False},
    "no-ctcf": {"barriers": False},
    "tads": {"lefs": False, "blocks": True, "attract_strength": 0.8},
    # the ideal chain is sampled exactly at any dt < 2 (linear forces only): take large steps
    "ideal": {"lefs": False, "ev_strength": 0.0, "confine_density": None, "lambda_c": 0.02, "dt": 1.0},
    # free self-avoiding chains are the most dt-sensitive (docs/simulate.md): small steps
    "swollen": {"lefs": False, "ev_strength": 3.0, "confine_density": None, "lambda_c": 0.02, "dt": 0.05},
    "globule": {"lefs": False, "confine_density": 0.5},
}

#: preset name -> parameter overrides: a live read-only view of :data:`pointae.registry.presets`
#: (the built-in entries point at :data:`BUILTIN_PRESETS`; plugins register their own)
PRESETS: Mapping[str, dict[str, Any]] = registry.presets


class _PresetHelp(Mapping):
    """preset name -> one-line description (the registry entries' ``help``)."""

    def __getitem__(self, name: str) -> str:
        return registry.presets.meta(name).get("help", "")

    def __iter__(self):
        return iter(registry.presets.names())

    def __len__(self) -> int:
        return len(registry.presets.names())


PRESET_HELP: Mapping[str, str] = _PresetHelp()


def resolve_params(preset: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Parameters for ``preset`` with ``overrides`` applied; unknown names raise PointaeError."""
    params = dict(DEFAULTS)
    params.update(registry.presets.get(registry.presets.check(preset)))
    for k, v in (overrides or {}).items():
        if k not in DEFAULTS:
            raise PointaeError(f"unknown simulation parameter {k!r}; known: {', '.join(sorted(DEFAULTS))}")
        params[k] = v
    return params


def parse_value(text: str) -> Any:
    """Parse a ``--set`` value: int, float, bool (true/false), none, or the string itself."""
    t = text.strip()
    low = t.lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    for conv in (int, float):
        try:
            return conv(t.replace("_", ""))
        except ValueError:
            pass
    return t
