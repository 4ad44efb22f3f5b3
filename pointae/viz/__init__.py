"""Plotting helpers (matplotlib maps; open3d structures imported lazily)."""
