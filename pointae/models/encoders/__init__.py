"""Registered encoders (importing this package registers them all)."""

from __future__ import annotations

from pointae.models.encoders.map_cnn import MapCNN

__all__ = ["MapCNN"]
