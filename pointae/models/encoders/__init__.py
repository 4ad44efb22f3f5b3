"""Registered encoders (importing this package registers them all)."""

from __future__ import annotations

from pointae.models.encoders.graph_gnn import GraphGNN
from pointae.models.encoders.map_cnn import MapCNN
from pointae.models.encoders.voxel_cnn import VoxelCNN

__all__ = ["GraphGNN", "MapCNN", "VoxelCNN"]
