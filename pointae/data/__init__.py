"""Data model, file formats, representations and corruptions."""

from pointae.data.traces import Traces

__all__ = ["Traces"]
