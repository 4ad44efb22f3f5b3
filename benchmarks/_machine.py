"""One machine/load line for every benchmark's output (imported as ``from _machine import machine_info``;
Python puts a script's own folder first on ``sys.path``)."""

from __future__ import annotations

import os
import platform


def cpu_name() -> str:
    """The CPU model (``/proc/cpuinfo``'s "model name" where there is one)."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(threads: int | None = None) -> str:
    """Python, CPU, core count, torch version and threads, and the load average right now."""
    try:  # openmm_chains.py may run in an environment without torch
        import torch
    except ImportError:
        torch_part = f"no torch, threads={threads}"
    else:
        t = torch.get_num_threads() if threads is None else threads
        torch_part = f"torch {torch.__version__} threads={t}"
    return (
        f"python {platform.python_version()}, {cpu_name()}, "
        f"cpu_count={os.cpu_count()}, {torch_part}, "
        f"loadavg={tuple(round(x, 2) for x in os.getloadavg())}"
    )
