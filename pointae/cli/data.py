"""Data commands: ``info``, ``convert``."""
