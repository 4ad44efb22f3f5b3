"""Loop-extrusion polymer simulator: batched Langevin dynamics in torch with ground-truth labels.

Public API: :func:`simulate`, :func:`simulate_mixture`, :data:`PRESETS`, :data:`DEFAULTS`,
:func:`average_map_figure`.
"""

from __future__ import annotations

from pointae.sim.figures import average_map_figure
from pointae.sim.presets import DEFAULTS, PRESET_HELP, PRESETS
from pointae.sim.run import simulate, simulate_mixture

__all__ = ["simulate", "simulate_mixture", "PRESETS", "PRESET_HELP", "DEFAULTS", "average_map_figure"]
