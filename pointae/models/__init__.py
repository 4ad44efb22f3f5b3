"""Models: interchangeable encoders (map / graph / voxel), valid-by-construction decoders,
the autoencoder and the task models, all built through :func:`build_model`.
"""

from __future__ import annotations

from pointae.models.autoencoder import AEOutput, AutoEncoder
from pointae.models.builders import TASKS, build_model, param_count
from pointae.models.decoder import CoordDecoder, MapDecoder
from pointae.models.encoders import *  # noqa: F403  (registers the built-in encoders)
from pointae.models.registry import (
    DECODERS,
    ENCODERS,
    build_decoder,
    build_encoder,
    register_decoder,
    register_encoder,
)
from pointae.models.task_models import TASK_MODELS, GraphPairNet, MapUNet

__all__ = [
    "AEOutput",
    "AutoEncoder",
    "CoordDecoder",
    "DECODERS",
    "GraphPairNet",
    "MapUNet",
    "TASK_MODELS",
    "ENCODERS",
    "MapDecoder",
    "TASKS",
    "build_decoder",
    "build_encoder",
    "build_model",
    "param_count",
    "register_decoder",
    "register_encoder",
]
